package edge

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/sitelink/sitelink/daemon/config"
	"github.com/sitelink/sitelink/daemon/localapi"
	"github.com/sitelink/sitelink/daemon/mqtttest"
	"github.com/sitelink/sitelink/daemon/wire"
	"github.com/sitelink/sitelink/hal"
	"github.com/sitelink/sitelink/hal/sim"
)

const testNode = "site-test"

// site is an edge daemon under test with its simulated stations, on a real
// broker, plus a cloud-side client that records every message.
type site struct {
	t      *testing.T
	broker *mqtttest.Broker
	cfg    *config.Edge
	sims   map[string]*sim.Station
	topics wire.Topics
	api    *localapi.Client
	cloud  *mqtttest.Recorder
	// options, if set, adjusts the daemon's options before launch.
	options func(*Options)

	cancel context.CancelFunc
	done   chan error
}

func testConfig(t testing.TB, brokerURL, dir string) *config.Edge {
	t.Helper()
	c := config.Default()
	c.Node.ID = testNode
	c.Node.DataDir = dir
	c.Node.APISocket = filepath.Join(dir, "api.sock")
	c.MQTT.Broker = brokerURL
	c.MQTT.ReconnectMin = config.Duration(100 * time.Millisecond)
	c.MQTT.ReconnectMax = config.Duration(500 * time.Millisecond)
	c.MQTT.ConnectTimeout = config.Duration(3 * time.Second)
	c.Terminals = []config.Terminal{{MachineID: 71234996, HwSerial: "0434334921100366", Flow: "pre-authorization", Stations: []string{"5", "6"}}}
	c.Stations = []config.Station{
		{Number: "5", Driver: "sim", Sim: &config.Sim{Vehicle: "present", PowerKW: 22, TimeScale: 600}},
		{Number: "6", Driver: "sim", Sim: &config.Sim{Vehicle: "absent", PowerKW: 11, TimeScale: 600}},
	}
	c.Policy.EnergyCheckpoint = config.Duration(200 * time.Millisecond)
	c.Tariff.PricePerKWh = 0.39
	if p := c.Validate(); len(p) > 0 {
		t.Fatalf("test config invalid: %v", p)
	}
	return &c
}

// startSite starts a broker and a daemon. The daemon is stopped (ctx
// cancelled) in cleanup.
func startSite(t *testing.T) *site {
	t.Helper()
	b := mqtttest.Start(t)
	s := &site{t: t, broker: b, cfg: testConfig(t, b.URL, t.TempDir())}
	s.topics = wire.Topics{Prefix: s.cfg.MQTT.TopicPrefix, Node: testNode}
	s.cloud = mqtttest.Record(t, b.URL, "cloud-"+t.Name(), s.cfg.MQTT.TopicPrefix+"/#")
	s.start()
	return s
}

func (s *site) start() {
	s.t.Helper()
	s.launch(testLogger(s.t))
	waitFor(s.t, 10*time.Second, "daemon connected", func() bool {
		st, err := s.api.Status()
		return err == nil && st.Connected
	})
}

// launch starts the daemon with fresh simulated stations and returns once
// its local API answers.
func (s *site) launch(log *slog.Logger) {
	s.t.Helper()
	s.sims = map[string]*sim.Station{}
	stations := map[string]hal.Station{}
	for _, sc := range s.cfg.Stations {
		if sc.Driver != "sim" {
			continue // built by the daemon from its config
		}
		st := sim.New(sim.Config{Number: sc.Number, VehiclePresent: sc.Sim.Vehicle == "present", PowerKW: sc.Sim.PowerKW, TimeScale: sc.Sim.TimeScale})
		s.sims[sc.Number] = st
		stations[sc.Number] = st
	}
	o := Options{Config: s.cfg, Version: "test", Stations: stations, Logger: log}
	if s.options != nil {
		s.options(&o)
	}
	d, err := New(o)
	if err != nil {
		s.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel, s.done = cancel, make(chan error, 1)
	go func() { s.done <- d.Run(ctx) }()
	s.t.Cleanup(s.stop)
	s.api = localapi.NewClient(s.cfg.Node.APISocket)
	waitFor(s.t, 10*time.Second, "local API", func() bool {
		_, err := s.api.Status()
		return err == nil
	})
}

// stop shuts the daemon down (idempotent).
func (s *site) stop() {
	if s.cancel == nil {
		return
	}
	s.cancel()
	select {
	case err := <-s.done:
		if err != nil {
			s.t.Errorf("daemon exited with %v", err)
		}
	case <-time.After(15 * time.Second):
		s.t.Error("daemon did not stop")
	}
	s.cancel = nil
}

// command sends a command and returns the reply body.
func (s *site) command(id, typ string, body any) map[string]any {
	s.t.Helper()
	raw, ok := body.([]byte)
	if !ok {
		raw, _ = json.Marshal(body)
	}
	env, _ := json.Marshal(wire.Command{ID: id, Type: typ, ReplyTo: s.topics.Replies(), Body: raw})
	return s.rawCommand(typ, env, id)
}

func (s *site) rawCommand(typ string, payload []byte, id string) map[string]any {
	s.t.Helper()
	from := s.cloud.Mark()
	s.cloud.Publish(s.topics.Command(typ), payload)
	m := s.cloud.Await(10*time.Second, from, "reply to "+id, func(m mqtttest.Message) bool {
		var r wire.Reply
		return m.Topic == s.topics.Replies() && json.Unmarshal(m.Payload, &r) == nil && r.ID == id
	})
	var r struct{ Body map[string]any }
	if err := json.Unmarshal(m.Payload, &r); err != nil {
		s.t.Fatal(err)
	}
	return r.Body
}

func (s *site) session(id string) localapi.Session {
	s.t.Helper()
	ss, err := s.api.Sessions(1000)
	if err != nil {
		s.t.Fatal(err)
	}
	for _, x := range ss {
		if x.SparkTransactionID == id {
			return x
		}
	}
	s.t.Fatalf("session %s not in the ledger", id)
	return localapi.Session{}
}

func (s *site) waitState(id, state string) localapi.Session {
	s.t.Helper()
	var got localapi.Session
	waitFor(s.t, 10*time.Second, "session "+id+" "+state, func() bool {
		got = s.session(id)
		return got.State == state
	})
	return got
}

// waitEnded waits until the session has ended its service: stopped and
// handed to the money path (settling or cancelling), or further.
func (s *site) waitEnded(id string) localapi.Session {
	s.t.Helper()
	var got localapi.Session
	waitFor(s.t, 10*time.Second, "session "+id+" ended", func() bool {
		got = s.session(id)
		return ended(got.State)
	})
	return got
}

func ended(state string) bool {
	switch state {
	case "settling", "cancelling", "settled", "cancelled", "needs-reconciliation", "closed":
		return true
	}
	return false
}

func verdict(body map[string]any) (string, float64) {
	st, _ := body["Status"].(map[string]any)
	v, _ := st["Verdict"].(string)
	code, _ := st["ErrorCode"].(float64)
	return v, code
}

func waitFor(t testing.TB, d time.Duration, what string, f func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !f() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// events returns the decoded events of one type (all types if typ == "").
func events(r *mqtttest.Recorder, prefix, typ string) []wire.Event {
	var out []wire.Event
	for _, m := range r.All() {
		_, kind, et, ok := wire.ParseNodeTopic(prefix, m.Topic)
		if !ok || kind != "events" || (typ != "" && et != typ) {
			continue
		}
		var e wire.Event
		if err := json.Unmarshal(m.Payload, &e); err != nil {
			panic(fmt.Sprintf("bad event on %s: %v", m.Topic, err))
		}
		out = append(out, e)
	}
	return out
}
