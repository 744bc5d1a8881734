package demo

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/sitelink/sitelink/daemon/broker"
	"github.com/sitelink/sitelink/daemon/config"
	"github.com/sitelink/sitelink/daemon/edge"
	"github.com/sitelink/sitelink/daemon/localapi"
	"github.com/sitelink/sitelink/daemon/nayax/seeds"
	"github.com/sitelink/sitelink/daemon/wire"
)

// Options configure a demo run.
type Options struct {
	Out     io.Writer     // the transcript
	Keep    bool          // keep everything running until ctx ends
	Charge  time.Duration // how long the vehicle charges (real time); default 3s
	Logger  *slog.Logger  // daemon logs; nil = discard
	Version string
}

// Node is the demo site's node id.
const Node = "demo-site"

// Run starts an embedded broker and an edge daemon with two simulated
// stations, then plays the cloud: authorize a card on station 5, let it
// charge, send Nayax's StopCallback seed, and print every message.
func Run(ctx context.Context, o Options) error {
	if o.Charge <= 0 {
		o.Charge = 3 * time.Second
	}
	t := &transcript{w: o.Out, start: time.Now()}

	b, err := broker.Start(broker.Options{Addr: "127.0.0.1:0"})
	if err != nil {
		return fmt.Errorf("start embedded broker: %w", err)
	}
	defer b.Close()
	dir, err := os.MkdirTemp("", "sitelink-demo-")
	if err != nil {
		return err
	}
	if !o.Keep {
		defer os.RemoveAll(dir)
	}
	cfg := Config(b.URL(), dir)
	t.say("embedded MQTT broker on %s; data in %s", b.URL(), dir)

	d, err := edge.New(edge.Options{Config: cfg, Version: o.Version, Logger: o.Logger})
	if err != nil {
		return err
	}
	edgeCtx, stopEdge := context.WithCancel(context.Background())
	edgeDone := make(chan error, 1)
	go func() { edgeDone <- d.Run(edgeCtx) }()
	defer func() {
		stopEdge()
		<-edgeDone
	}()

	cloud, err := newCloud(b.URL(), cfg.MQTT.TopicPrefix, t)
	if err != nil {
		return err
	}
	defer cloud.close()
	topics := wire.Topics{Prefix: cfg.MQTT.TopicPrefix, Node: Node}

	t.step("waiting for the site controller's birth message")
	if _, err := cloud.await(ctx, 10*time.Second, 0, func(m msg) bool {
		return m.topic == topics.State() && bytes.Contains(m.payload, []byte(`"online":true`))
	}); err != nil {
		return fmt.Errorf("edge did not come online: %w", err)
	}

	t.step("card tapped on the terminal for station 5: Nayax's TransactionCallback becomes an `authorize` command")
	auth := withStation(seeds.Get("001_transactioncallback_request.json"), "5")
	reply, err := cloud.command(ctx, topics, "demo-authorize-1", "authorize", auth)
	if err != nil {
		return err
	}
	if !approved(reply) {
		return fmt.Errorf("authorize was not approved: %s", reply)
	}
	if _, err := cloud.await(ctx, 10*time.Second, 0, func(m msg) bool {
		return m.topic == topics.Event("session") && bytes.Contains(m.payload, []byte(`"to":"charging"`))
	}); err != nil {
		return fmt.Errorf("session did not start charging: %w", err)
	}
	t.step("charging for %s (the simulated clock runs 60x)", o.Charge)
	select {
	case <-time.After(o.Charge):
	case <-ctx.Done():
		return ctx.Err()
	}
	api := localapi.NewClient(cfg.Node.APISocket)
	if sts, err := api.Stations(); err == nil {
		for _, s := range sts {
			t.say("station %s: CP %s, contactor %s, %.2f kW, meter %.1f Wh", s.Number, s.CPState, onOff(s.Contactor), s.PowerW/1000, s.EnergyWh)
		}
	}

	t.step("card tapped again: Nayax's StopCallback (seed 000, verbatim) becomes a `stop` command")
	reply, err = cloud.command(ctx, topics, "demo-stop-1", "stop", seeds.Get("000_stopcallback_request.json"))
	if err != nil {
		return err
	}
	if !approved(reply) {
		return fmt.Errorf("stop was not approved: %s", reply)
	}
	t.say("Nayax gets back: %s", reply)
	if _, err := cloud.await(ctx, 10*time.Second, 0, func(m msg) bool {
		return m.topic == topics.Event("session") && bytes.Contains(m.payload, []byte(`"to":"stopped"`))
	}); err != nil {
		return fmt.Errorf("session did not stop: %w", err)
	}

	t.step("the same StopCallback again (Nayax retries): same answer, no second action")
	if _, err := cloud.command(ctx, topics, "demo-stop-1", "stop", seeds.Get("000_stopcallback_request.json")); err != nil {
		return err
	}

	sessions, err := api.Sessions(1)
	if err != nil {
		return err
	}
	if len(sessions) == 0 {
		return errors.New("no session in the ledger")
	}
	final, _ := json.MarshalIndent(sessions[0], "  ", "  ")
	t.step("final session record (sitelink sessions -json)")
	fmt.Fprintf(o.Out, "  %s\n", final)

	if o.Keep {
		t.step("still running; try: sitelink status -socket %s   (Ctrl-C to stop)", cfg.Node.APISocket)
		<-ctx.Done()
	}
	t.step("done")
	return nil
}

// Config is the demo site's configuration.
func Config(brokerURL, dir string) *config.Edge {
	c := config.Default()
	c.Node.ID = Node
	c.Node.DataDir = dir
	c.Node.APISocket = filepath.Join(dir, "api.sock")
	c.MQTT.Broker = brokerURL
	c.MQTT.ReconnectMin = config.Duration(200 * time.Millisecond)
	c.Terminals = []config.Terminal{{MachineID: 71234996, HwSerial: "0434334921100366", Flow: "pre-authorization", Stations: []string{"5", "6"}}}
	c.Stations = []config.Station{
		{Number: "5", Driver: "sim", Sim: &config.Sim{Vehicle: "present", PowerKW: 22, TimeScale: 60}},
		{Number: "6", Driver: "sim", Sim: &config.Sim{Vehicle: "absent", PowerKW: 11, TimeScale: 60}},
	}
	c.Tariff.PricePerKWh = 0.39
	return &c
}

func withStation(body []byte, station string) []byte {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(body, &m); err != nil {
		return body
	}
	m["ServiceStationNumber"], _ = json.Marshal(station)
	out, _ := json.Marshal(m)
	return out
}

func approved(reply []byte) bool {
	var r struct{ Status nayaxStatus }
	return json.Unmarshal(reply, &r) == nil && r.Status.Verdict == "Approved"
}

type nayaxStatus struct{ Verdict string }

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}

// transcript prints what happens, with time since start.
type transcript struct {
	mu    sync.Mutex
	w     io.Writer
	start time.Time
}

func (t *transcript) line(prefix, format string, a ...any) {
	t.mu.Lock()
	defer t.mu.Unlock()
	fmt.Fprintf(t.w, "%6.2fs %s %s\n", time.Since(t.start).Seconds(), prefix, fmt.Sprintf(format, a...))
}
func (t *transcript) step(f string, a ...any) { t.line("==", f, a...) }
func (t *transcript) say(f string, a ...any)  { t.line("  ", f, a...) }

type msg struct {
	topic   string
	payload []byte
}

// cloud is the scripted stand-in for the relay: it watches every topic and
// sends commands the way the relay will.
type cloud struct {
	c      paho.Client
	t      *transcript
	prefix string

	mu   sync.Mutex
	seen []msg
	wake chan struct{}
}

func newCloud(url, prefix string, t *transcript) (*cloud, error) {
	cl := &cloud{t: t, prefix: prefix, wake: make(chan struct{}, 1)}
	o := paho.NewClientOptions().AddBroker(url).SetClientID("demo-cloud").SetAutoReconnect(false)
	o.SetDefaultPublishHandler(func(_ paho.Client, m paho.Message) { cl.onMessage(m.Topic(), m.Payload()) })
	cl.c = paho.NewClient(o)
	if err := waitTok(cl.c.Connect()); err != nil {
		return nil, fmt.Errorf("cloud client connect: %w", err)
	}
	if err := waitTok(cl.c.Subscribe(prefix+"/#", 1, nil)); err != nil {
		return nil, fmt.Errorf("cloud client subscribe: %w", err)
	}
	return cl, nil
}

func (cl *cloud) close() { cl.c.Disconnect(100) }

func (cl *cloud) onMessage(topic string, payload []byte) {
	p := append([]byte(nil), payload...)
	cl.mu.Lock()
	cl.seen = append(cl.seen, msg{topic, p})
	cl.mu.Unlock()
	select {
	case cl.wake <- struct{}{}:
	default:
	}
	if strings.Contains(topic, "/commands/") {
		return // our own commands, already printed as sent
	}
	cl.t.line("<-", "%s  %s", strings.TrimPrefix(topic, cl.prefix+"/"), describe(topic, p))
}

// describe makes one readable line out of a message.
func describe(topic string, p []byte) string {
	switch {
	case strings.Contains(topic, "/events/session"):
		var e struct {
			Body struct {
				From, To, Reason string
				Session          struct {
					Station  string  `json:"station"`
					EnergyWh float64 `json:"energy_wh"`
				}
			}
		}
		if json.Unmarshal(p, &e) == nil {
			s := fmt.Sprintf("station %s: %s -> %s", e.Body.Session.Station, dash(e.Body.From), e.Body.To)
			if e.Body.Reason != "" {
				s += " (" + e.Body.Reason + ")"
			}
			return fmt.Sprintf("%s, %.1f Wh", s, e.Body.Session.EnergyWh)
		}
	case strings.Contains(topic, "/events/station"):
		var e struct {
			Body struct {
				Number    string  `json:"number"`
				CP        string  `json:"cp_state"`
				Contactor bool    `json:"contactor"`
				Fault     string  `json:"fault"`
				EnergyWh  float64 `json:"energy_wh"`
			}
		}
		if json.Unmarshal(p, &e) == nil {
			return fmt.Sprintf("station %s: CP %s, contactor %s, meter %.1f Wh %s", e.Body.Number, e.Body.CP, onOff(e.Body.Contactor), e.Body.EnergyWh, e.Body.Fault)
		}
	}
	var buf bytes.Buffer
	if json.Compact(&buf, p) == nil {
		return buf.String()
	}
	return fmt.Sprintf("(%d bytes)", len(p))
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// await waits for a message matching f among those seen since index from.
func (cl *cloud) await(ctx context.Context, d time.Duration, from int, f func(msg) bool) (msg, error) {
	deadline := time.After(d)
	for {
		cl.mu.Lock()
		for _, m := range cl.seen[from:] {
			if f(m) {
				cl.mu.Unlock()
				return m, nil
			}
		}
		cl.mu.Unlock()
		select {
		case <-cl.wake:
		case <-deadline:
			return msg{}, errors.New("timed out")
		case <-ctx.Done():
			return msg{}, ctx.Err()
		}
	}
}

func (cl *cloud) mark() int {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	return len(cl.seen)
}

// command publishes a command envelope and returns the reply body.
func (cl *cloud) command(ctx context.Context, topics wire.Topics, id, typ string, body []byte) ([]byte, error) {
	replyTo := topics.Replies()
	env, _ := json.Marshal(wire.Command{ID: id, Type: typ, ReplyTo: replyTo, Body: body})
	cl.t.line("->", "%s  %s", strings.TrimPrefix(topics.Command(typ), cl.prefix+"/"), env)
	from := cl.mark()
	if err := waitTok(cl.c.Publish(topics.Command(typ), 1, false, env)); err != nil {
		return nil, err
	}
	m, err := cl.await(ctx, 10*time.Second, from, func(m msg) bool {
		var r wire.Reply
		return m.topic == replyTo && json.Unmarshal(m.payload, &r) == nil && r.ID == id
	})
	if err != nil {
		return nil, fmt.Errorf("no reply to %s %s: %w", typ, id, err)
	}
	var r wire.Reply
	_ = json.Unmarshal(m.payload, &r)
	return r.Body, nil
}

func waitTok(t paho.Token) error {
	if !t.WaitTimeout(10 * time.Second) {
		return errors.New("mqtt: timeout")
	}
	return t.Error()
}
