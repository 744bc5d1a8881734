package relay_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sitelink/sitelink/daemon/config"
	"github.com/sitelink/sitelink/daemon/edge"
	"github.com/sitelink/sitelink/daemon/link"
	"github.com/sitelink/sitelink/daemon/localapi"
	"github.com/sitelink/sitelink/daemon/mqtttest"
	"github.com/sitelink/sitelink/daemon/nayax"
	"github.com/sitelink/sitelink/daemon/nayaxsim"
	"github.com/sitelink/sitelink/daemon/relay"
	"github.com/sitelink/sitelink/daemon/wire"
)

const (
	prefix  = "sitelink/v1"
	machine = 71234996
	serial  = "0434334921100366"
	// cardKey is the fleet's card key every relay of a test shares
	// (relay.card_key_file).
	cardKey = "test fleet card key: 32+ bytes of secret"
)

// logBuf collects every log line of the test's daemons, to assert what
// never reaches them (card data).
type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// env is a whole chain on one real broker: nayaxsim ⇄ relay(s) ⇄ MQTT ⇄ edge.
type env struct {
	t      *testing.T
	broker *mqtttest.Broker
	sim    *nayaxsim.Sim
	logs   *logBuf
	log    *slog.Logger
	cloud  *mqtttest.Recorder // sees every message on the broker
	// shipped, when set, is the broker as configs/mosquitto.conf ships
	// it (broker is nil then): edges connect to its node listener with a
	// node certificate, relays and the cloud recorder to its cloud
	// listener with cloud certificates.
	shipped *mqtttest.Shipped
}

func newEnv(t *testing.T) *env {
	t.Helper()
	e := &env{t: t, broker: mqtttest.Start(t), logs: &logBuf{}}
	e.log = slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	sim, err := nayaxsim.Start(nayaxsim.Options{Logger: e.log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close() })
	e.sim = sim
	e.cloud = mqtttest.Record(t, e.broker.URL, "spy-"+t.Name(), "#")
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("logs:\n%s", e.logs.String())
		}
	})
	return e
}

type relayProc struct {
	r     *relay.Relay
	url   string // the public listener: Nayax's callbacks only
	admin string // the metrics listener: /metrics and /healthz
	stop  func()
}

// adminURLs maps a relay's public URL to its metrics listener's URL.
// Tests name a relay by its public URL (waitRoute, scrape, metricValue);
// /healthz and /metrics are served only on the other listener.
var adminURLs sync.Map

// adminURL is the metrics listener's URL of the relay whose public URL
// is url.
func adminURL(t testing.TB, url string) string {
	t.Helper()
	a, ok := adminURLs.Load(url)
	if !ok {
		t.Fatalf("no relay started at %s", url)
	}
	return a.(string)
}

// startRelay starts a relay replica; its Nayax client talks to nayaxsim.
func (e *env) startRelay(id string, budget time.Duration, headers ...relay.Header) *relayProc {
	e.t.Helper()
	return e.startRelayWith(id, budget, nil, headers...)
}

// startRelayWith is startRelay with the Nayax client's config adjusted.
func (e *env) startRelayWith(id string, budget time.Duration, edit func(*nayax.ClientConfig), headers ...relay.Header) *relayProc {
	e.t.Helper()
	return e.startRelayOpts(id, budget, edit, nil, headers...)
}

// startRelayOpts is startRelayWith with the relay's options adjusted too.
func (e *env) startRelayOpts(id string, budget time.Duration, edit func(*nayax.ClientConfig), opts func(*relay.Options), headers ...relay.Header) *relayProc {
	e.t.Helper()
	o := e.sim.Options()
	cc := nayax.ClientConfig{
		BaseURL: e.sim.URL(), IntegratorID: o.IntegratorID, SignKey: o.SignKey,
		TokenID: o.TokenID, TokenSecret: o.TokenSecret, Timeout: 2 * time.Second, Attempts: 3,
		BackoffMin: 20 * time.Millisecond, BackoffMax: 100 * time.Millisecond, Logger: e.log,
	}
	if edit != nil {
		edit(&cc)
	}
	client, err := nayax.NewClient(cc)
	if err != nil {
		e.t.Fatal(err)
	}
	ro := relay.Options{
		ID: id, Prefix: prefix, Group: "relays", Listen: "127.0.0.1:0", MetricsListen: "127.0.0.1:0", AckBudget: budget,
		CallbackHeaders: headers, InsecureAllowUnauthenticatedCallbacks: len(headers) == 0, Nayax: client, TokenID: o.TokenID, TokenSecret: o.TokenSecret, Logger: e.log.With("relay", id), CardKey: []byte(cardKey),
		Link: link.Options{BackoffMin: 50 * time.Millisecond, BackoffMax: 300 * time.Millisecond, ConnectTimeout: 3 * time.Second},
	}
	if e.shipped != nil {
		ro.Link.Broker, ro.Link.TLS = e.shipped.CloudURL, e.shipped.CloudCA.ClientConfig(e.t, id)
		ro.Link.TLS.ServerName = "127.0.0.1"
	} else {
		ro.Link.Broker = e.broker.URL
	}
	if opts != nil {
		opts(&ro)
	}
	r, err := relay.New(ro)
	if err != nil {
		e.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	p := &relayProc{r: r, url: "http://" + r.Addr(), admin: "http://" + r.MetricsAddr()}
	adminURLs.Store(p.url, p.admin)
	e.t.Cleanup(func() { adminURLs.Delete(p.url) })
	var once sync.Once
	p.stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				e.t.Errorf("relay %s: %v", id, err)
			}
		})
	}
	e.t.Cleanup(p.stop)
	waitFor(e.t, 10*time.Second, "relay "+id+" healthy", func() bool {
		resp, err := http.Get(p.admin + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
	return p
}

type edgeProc struct {
	node string
	api  *localapi.Client
	cfg  *config.Edge
	stop func()
}

// startEdge starts a site controller owning the standard terminal with
// simulated stations 5 (vehicle present) and 6 (no vehicle).
func (e *env) startEdge(node string, dir string) *edgeProc {
	e.t.Helper()
	return e.startEdgeWith(node, dir, nil)
}

// startEdgeWith is startEdge with the config adjusted by edit.
func (e *env) startEdgeWith(node string, dir string, edit func(*config.Edge)) *edgeProc {
	e.t.Helper()
	c := config.Default()
	c.Node.ID = node
	c.Node.DataDir = dir
	c.Node.APISocket = filepath.Join(dir, "api.sock")
	if e.shipped != nil {
		cert, key := e.shipped.NodeCA.IssueClient(e.t, node)
		c.MQTT.Broker = e.shipped.NodesURL
		c.MQTT.TLS = config.TLS{CAFile: e.shipped.NodeCA.CAFile, CertFile: cert, KeyFile: key}
	} else {
		c.MQTT.Broker = e.broker.URL
	}
	c.MQTT.ReconnectMin = config.Duration(50 * time.Millisecond)
	c.MQTT.ReconnectMax = config.Duration(300 * time.Millisecond)
	c.MQTT.ConnectTimeout = config.Duration(3 * time.Second)
	c.Terminals = []config.Terminal{{MachineID: machine, HwSerial: serial, Flow: "pre-authorization", Stations: []string{"5", "6"}}}
	c.Stations = []config.Station{
		{Number: "5", Driver: "sim", Sim: &config.Sim{Vehicle: "present", PowerKW: 22, TimeScale: 600}},
		{Number: "6", Driver: "sim", Sim: &config.Sim{Vehicle: "absent", PowerKW: 11, TimeScale: 600}},
	}
	c.Tariff.PricePerKWh = 0.39
	c.Policy.ResultTimeout = config.Duration(3 * time.Second)
	c.Policy.EnergyCheckpoint = config.Duration(100 * time.Millisecond)
	c.Policy.RetryMin = config.Duration(100 * time.Millisecond)
	c.Policy.RetryMax = config.Duration(400 * time.Millisecond)
	if edit != nil {
		edit(&c)
	}
	if p := c.Validate(); len(p) > 0 {
		e.t.Fatalf("edge config: %v", p)
	}
	// The fleet's operator gives the node its terminals: the relay
	// routes by nothing else.
	for _, term := range c.Terminals {
		e.own(node, term.MachineID, term.HwSerial)
	}
	d, err := edge.New(edge.Options{Config: &c, Version: "test", Logger: e.log.With("node", node)})
	if err != nil {
		e.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	p := &edgeProc{node: node, api: localapi.NewClient(c.Node.APISocket), cfg: &c}
	var once sync.Once
	p.stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				e.t.Errorf("edge %s: %v", node, err)
			}
		})
	}
	e.t.Cleanup(p.stop)
	waitFor(e.t, 10*time.Second, "edge "+node+" connected", func() bool {
		st, err := p.api.Status()
		return err == nil && st.Connected
	})
	return p
}

// own publishes the registry entry (P/terminals) that gives a terminal
// to node, as `sitelink fleet terminals` does.
func (e *env) own(node string, machineID int64, hwSerial string) {
	e.t.Helper()
	topic, payload, err := wire.TerminalMessage(prefix, wire.Terminal{Node: node, MachineID: machineID, HwSerial: hwSerial})
	if err != nil {
		e.t.Fatal(err)
	}
	e.cloud.PublishRetained(topic, payload)
}

// post sends a callback as Nayax would.
func post(t *testing.T, url, path, contentType string, body []byte, header ...string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
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

// waitRoute waits until a relay knows the terminal (retained births).
func waitRoute(t *testing.T, url string) {
	t.Helper()
	health := adminURL(t, url) + "/healthz"
	waitFor(t, 10*time.Second, "relay knows the node", func() bool {
		resp, err := http.Get(health)
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return !strings.Contains(string(b), `"nodes":0`) && !strings.Contains(string(b), `"terminals":0`)
	})
}

// relayHealth is the relay's /healthz document (numbers as float64).
func relayHealth(t *testing.T, url string) map[string]any {
	t.Helper()
	resp, err := http.Get(adminURL(t, url) + "/healthz")
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	var h map[string]any
	if json.NewDecoder(io.LimitReader(resp.Body, 1<<16)).Decode(&h) != nil {
		return nil
	}
	return h
}

func session(t *testing.T, api *localapi.Client, state string) localapi.Session {
	t.Helper()
	var got localapi.Session
	waitFor(t, 10*time.Second, "a session in state "+state, func() bool {
		ss, err := api.Sessions(5)
		if err != nil || len(ss) == 0 {
			return false
		}
		got = ss[0]
		return got.State == state
	})
	return got
}

func contactor(t *testing.T, api *localapi.Client, station string) bool {
	t.Helper()
	sts, err := api.Stations()
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range sts {
		if s.Number == station {
			return s.Contactor
		}
	}
	t.Fatalf("no station %s", station)
	return false
}

func httpGet(url string) (int, error) {
	resp, err := http.Get(url)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

func bytesReader(b []byte) *bytes.Reader { return bytes.NewReader(b) }

func jsonNum(n int64) string { return fmt.Sprint(n) }

func toString(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	default:
		return fmt.Sprint(x)
	}
}
