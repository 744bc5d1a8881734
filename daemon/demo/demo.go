package demo

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/sitelink/sitelink/daemon/broker"
	"github.com/sitelink/sitelink/daemon/config"
	"github.com/sitelink/sitelink/daemon/edge"
	"github.com/sitelink/sitelink/daemon/link"
	"github.com/sitelink/sitelink/daemon/localapi"
	"github.com/sitelink/sitelink/daemon/nayax"
	"github.com/sitelink/sitelink/daemon/nayax/seeds"
	"github.com/sitelink/sitelink/daemon/nayaxsim"
	"github.com/sitelink/sitelink/daemon/relay"
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

// terminal is the demo site's Nayax terminal.
var terminal = nayaxsim.Terminal{MachineID: 71234996, HwSerial: "0434334921100366"}

// deviceTerminal is the demo site's second terminal, set up for Device
// Start and StopNotify: the consumer picks station 7 on it.
var deviceTerminal = nayaxsim.Terminal{MachineID: 71234997, HwSerial: "0434334921100367", DeviceStart: true, StopNotify: true}

// Run starts the whole chain in one process — an embedded broker, the
// Nayax simulator, a relay and a site controller with two simulated
// stations — then plays Nayax: a card authorized on station 5, a vehicle
// charging, Nayax's StopCallback seed posted to the relay; then a second
// card whose transaction Nayax cancels (Cortina Cancel). Every HTTP call
// and MQTT message is printed.
func Run(ctx context.Context, o Options) error {
	if o.Charge <= 0 {
		o.Charge = 3 * time.Second
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
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

	sim, err := nayaxsim.Start(nayaxsim.Options{Logger: log.With("part", "nayaxsim")})
	if err != nil {
		return err
	}
	defer sim.Close()
	so := sim.Options()
	client, err := nayax.NewClient(nayax.ClientConfig{BaseURL: sim.URL(), IntegratorID: so.IntegratorID, SignKey: so.SignKey,
		TokenID: so.TokenID, TokenSecret: so.TokenSecret, Logger: log.With("part", "nayax")})
	if err != nil {
		return err
	}
	// The demo's fleet card key (relay.card_key_file) is new every run:
	// its ledger is too.
	cardKey := make([]byte, 32)
	if _, err := rand.Read(cardKey); err != nil {
		return err
	}
	// nayaxsim sends no custom headers: the demo's relay is the one kind
	// that takes unauthenticated callbacks, on loopback.
	rl, err := relay.New(relay.Options{ID: "demo-relay", Prefix: cfg.MQTT.TopicPrefix, Listen: "127.0.0.1:0", MetricsListen: "127.0.0.1:0", Nayax: client,
		CardKey: cardKey, Logger: log.With("part", "relay"), Link: link.Options{Broker: b.URL(), BackoffMin: 200 * time.Millisecond},
		InsecureAllowUnauthenticatedCallbacks: true, TokenID: so.TokenID, TokenSecret: so.TokenSecret})
	if err != nil {
		return err
	}
	d, err := edge.New(edge.Options{Config: cfg, Version: o.Version, Logger: log.With("part", "edge")})
	if err != nil {
		return err
	}
	stop := runAll(map[string]func(context.Context) error{"relay": rl.Run, "edge": d.Run})
	defer stop()
	relayURL := "http://" + rl.Addr()
	sim.SetRelay(relayURL)
	metricsURL := "http://" + rl.MetricsAddr()
	t.say("Nayax simulator at %s; relay at %s (its /metrics and /healthz at %s)", sim.URL(), relayURL, metricsURL)

	spy, err := newSpy(b.URL(), cfg.MQTT.TopicPrefix, t)
	if err != nil {
		return err
	}
	defer spy.close()
	topics := wire.Topics{Prefix: cfg.MQTT.TopicPrefix, Node: Node}

	// The relay routes a terminal's callbacks only to the node the fleet's
	// registry names, never by what a node claims.
	t.step("the fleet operator gives the terminal to the site controller (sitelink fleet terminals)")
	for _, term := range cfg.Terminals {
		topic, payload, err := wire.TerminalMessage(cfg.MQTT.TopicPrefix, wire.Terminal{Node: Node, MachineID: term.MachineID, HwSerial: term.HwSerial})
		if err != nil {
			return err
		}
		if err := waitTok(spy.c.Publish(topic, 1, true, payload)); err != nil {
			return fmt.Errorf("publish terminal ownership: %w", err)
		}
	}

	t.step("waiting for the site controller's birth message")
	if _, err := spy.await(ctx, 10*time.Second, 0, func(m msg) bool {
		return m.topic == topics.State() && bytes.Contains(m.payload, []byte(`"online":true`))
	}); err != nil {
		return fmt.Errorf("edge did not come online: %w", err)
	}
	if err := waitRelay(ctx, metricsURL); err != nil {
		return err
	}

	// Nayax knows the transaction of its own example (seed 001).
	sim.Register(nayaxsim.Txn{NayaxTransactionID: 2004545072, SparkTransactionID: "12c7cec2-c690-4425-9a1f-db0db60e2d8c", SiteID: 2,
		MachineAuTime: "20240205194122328", MachineID: terminal.MachineID, HwSerial: terminal.HwSerial, Station: "5", Amount: 15})

	t.step("a card is authorized on the terminal for station 5: Nayax posts its TransactionCallback (seed 001) to the relay")
	if err := t.post(ctx, relayURL+"/api/TransactionCallback", withStation(seeds.Get("001_transactioncallback_request.json"), "5"), "Approved"); err != nil {
		return err
	}
	if _, err := spy.await(ctx, 10*time.Second, 0, func(m msg) bool {
		return m.topic == topics.Event(wire.EventSession) && bytes.Contains(m.payload, []byte(`"to":"charging"`))
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

	t.step("the card is presented again: Nayax posts its StopCallback (seed 000, verbatim)")
	if err := t.post(ctx, relayURL+"/api/StopCallback", seeds.Get("000_stopcallback_request.json"), "Approved"); err != nil {
		return err
	}
	t.step("Nayax retries the same StopCallback: same answer, no second action")
	if err := t.post(ctx, relayURL+"/api/StopCallback", seeds.Get("000_stopcallback_request.json"), "Approved"); err != nil {
		return err
	}
	t.step("the site settles the energy delivered: settlement-request → relay → Nayax ExternalSettlement → result")
	if _, err := spy.await(ctx, 15*time.Second, 0, func(m msg) bool {
		return m.topic == topics.Event(wire.EventSession) && bytes.Contains(m.payload, []byte(`"to":"settled"`))
	}); err != nil {
		return fmt.Errorf("session was not settled: %w", err)
	}
	for _, r := range sim.Requests(nayax.CallExternalSettlement) {
		t.say("Nayax received ExternalSettlement %s -> %s", compact(r.Body), compact(r.Answer))
	}

	t.step("another card on station 5 (the simulator taps it), then Nayax cancels that transaction (Cortina Prepaid Cancel)")
	tap, err := sim.Tap(ctx, terminal, "5", "bob", 20)
	if err != nil {
		return fmt.Errorf("tap: %w", err)
	}
	t.say("POST %s/api/TransactionCallback (card bob) -> HTTP %d %s", relayURL, tap.HTTPStatus, compact(tap.Response))
	if _, err := spy.await(ctx, 10*time.Second, 0, func(m msg) bool {
		return m.topic == topics.Event(wire.EventSession) && bytes.Contains(m.payload, []byte(`"to":"charging"`)) && bytes.Contains(m.payload, []byte(tap.Txn.SparkTransactionID))
	}); err != nil {
		return fmt.Errorf("second session did not start: %w", err)
	}
	code, answer, err := sim.CortinaCancel(ctx, tap.Txn.NayaxTransactionID, false, "")
	if err != nil {
		return fmt.Errorf("cortina cancel: %w", err)
	}
	t.say("POST %s/Cortina/PrePaid/Cancel -> HTTP %d %s", relayURL, code, compact(answer))
	if !bytes.Contains(answer, []byte(`"Approved"`)) {
		return fmt.Errorf("Cortina Cancel was not approved: %s", answer)
	}

	t.step("a card for station 6, where no vehicle is plugged in: after the plug timeout the hold is released at once (ExternalCancel)")
	tap, err = sim.Tap(ctx, terminal, "6", "carol", 25)
	if err != nil {
		return fmt.Errorf("tap: %w", err)
	}
	t.say("POST %s/api/TransactionCallback (card carol) -> HTTP %d %s", relayURL, tap.HTTPStatus, compact(tap.Response))
	if _, err := spy.await(ctx, time.Duration(cfg.Policy.PlugTimeout)+15*time.Second, 0, func(m msg) bool {
		return m.topic == topics.Event(wire.EventSession) && bytes.Contains(m.payload, []byte(`"to":"cancelled"`)) && bytes.Contains(m.payload, []byte(tap.Txn.SparkTransactionID))
	}); err != nil {
		return fmt.Errorf("no-vehicle session was not cancelled: %w", err)
	}
	for _, r := range sim.Requests(nayax.CallExternalCancel) {
		t.say("Nayax received ExternalCancel %s -> %s", compact(r.Body), compact(r.Answer))
	}

	t.step("Device Start at the second terminal: dora picks station 7 on its screen; Nayax calls StartSession, InfoQuery, then TransactionNotify")
	tap, err = sim.Tap(ctx, deviceTerminal, "7", "dora", 25)
	if err != nil {
		return fmt.Errorf("device start: %w", err)
	}
	for _, c := range tap.Calls {
		t.say("POST %s/api/%s -> HTTP %d %s", relayURL, c.Call, c.HTTPStatus, compact(c.Response))
	}
	if tap.Kind != nayaxsim.KindAuthorize {
		return fmt.Errorf("Device Start: %s %s", tap.Kind, tap.Reason)
	}
	t.say("the terminal showed %q and pre-authorized %.2f (availability %d: free, now reserved for her)", tap.PosDisplay, tap.InfoAmount, tap.Availability)
	if _, err := spy.await(ctx, 10*time.Second, 0, func(m msg) bool {
		return m.topic == topics.Event(wire.EventSession) && bytes.Contains(m.payload, []byte(`"to":"charging"`)) && bytes.Contains(m.payload, []byte(tap.Txn.SparkTransactionID))
	}); err != nil {
		return fmt.Errorf("Device Start session did not start: %w", err)
	}
	select {
	case <-time.After(o.Charge / 2):
	case <-ctx.Done():
		return ctx.Err()
	}
	t.step("dora taps her card again: Nayax does not match it and sends StopNotify; the site finds her session by the card, answers with its ids, stops it and settles (Settlement)")
	stopTap, err := sim.Tap(ctx, deviceTerminal, "7", "dora", 25)
	if err != nil {
		return fmt.Errorf("stop notify: %w", err)
	}
	for _, c := range stopTap.Calls {
		t.say("POST %s/api/%s -> HTTP %d %s", relayURL, c.Call, c.HTTPStatus, compact(c.Response))
	}
	if stopTap.Kind != nayaxsim.KindStop || stopTap.Reason != "" {
		return fmt.Errorf("StopNotify: %s %s", stopTap.Kind, stopTap.Reason)
	}
	if _, err := spy.await(ctx, 15*time.Second, 0, func(m msg) bool {
		return m.topic == topics.Event(wire.EventSession) && bytes.Contains(m.payload, []byte(`"to":"settled"`)) && bytes.Contains(m.payload, []byte(tap.Txn.SparkTransactionID))
	}); err != nil {
		return fmt.Errorf("Device Start session was not settled: %w", err)
	}
	for _, r := range sim.Requests(nayax.CallSettlement) {
		t.say("Nayax received Settlement %s -> %s", compact(r.Body), compact(r.Answer))
	}

	sessions, err := api.Sessions(3)
	if err != nil {
		return err
	}
	if len(sessions) == 0 {
		return errors.New("no session in the ledger")
	}
	final, _ := json.MarshalIndent(sessions, "  ", "  ")
	t.step("the ledger (sitelink sessions -json)")
	fmt.Fprintf(o.Out, "  %s\n", final)

	if o.Keep {
		t.step("still running; try: sitelink status -socket %s   or   sitelink nayaxsim tap -sim %s -station 5   (Ctrl-C stops)", cfg.Node.APISocket, strings.TrimSuffix(sim.URL(), "/api"))
		<-ctx.Done()
	}
	t.step("done")
	return nil
}

// waitRelay waits until the relay routes the site (it learned the node's
// retained birth); url is its metrics listener's.
func waitRelay(ctx context.Context, url string) error {
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(url + "/healthz")
		if err == nil {
			var h struct{ Nodes, Terminals int }
			_ = json.NewDecoder(resp.Body).Decode(&h)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK && h.Nodes > 0 && h.Terminals > 0 {
				return nil
			}
		}
		select {
		case <-time.After(20 * time.Millisecond):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return errors.New("the relay did not learn the site's route")
}

// runAll runs each part until the returned stop is called.
func runAll(parts map[string]func(context.Context) error) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for _, run := range parts {
		wg.Add(1)
		go func() { defer wg.Done(); _ = run(ctx) }()
	}
	return func() { cancel(); wg.Wait() }
}

// post sends a callback as Nayax does and prints both sides; the answer
// must carry the wanted verdict.
func (t *transcript) post(ctx context.Context, url string, body []byte, verdict string) error {
	t.line("=>", "POST %s  %s", url, compact(body))
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(resp.Body)
	t.line("<=", "HTTP %d  %s", resp.StatusCode, compact(answer))
	if !bytes.Contains(answer, []byte(`"Verdict":"`+verdict+`"`)) {
		return fmt.Errorf("%s answered %s, want %s", url, answer, verdict)
	}
	return nil
}

func compact(b []byte) string {
	var buf bytes.Buffer
	if json.Compact(&buf, b) == nil {
		return buf.String()
	}
	return string(b)
}

// Config is the demo site's configuration.
func Config(brokerURL, dir string) *config.Edge {
	c := config.Default()
	c.Node.ID = Node
	c.Node.DataDir = dir
	c.Node.APISocket = filepath.Join(dir, "api.sock")
	c.MQTT.Broker = brokerURL
	c.MQTT.ReconnectMin = config.Duration(200 * time.Millisecond)
	c.Terminals = []config.Terminal{
		{MachineID: terminal.MachineID, HwSerial: terminal.HwSerial, Flow: config.FlowPreAuthorization, Stations: []string{"5", "6"}},
		{MachineID: deviceTerminal.MachineID, HwSerial: deviceTerminal.HwSerial, Flow: config.FlowPreAuthorization, Stations: []string{"7"},
			Start: config.StartDevice, Stop: config.StopNotify, PreauthAmount: 25},
	}
	c.Stations = []config.Station{
		{Number: "5", Driver: "sim", Sim: &config.Sim{Vehicle: "present", PowerKW: 22, TimeScale: 60}},
		{Number: "6", Driver: "sim", Sim: &config.Sim{Vehicle: "absent", PowerKW: 11, TimeScale: 60}},
		{Number: "7", Driver: "sim", Sim: &config.Sim{Vehicle: "present", PowerKW: 22, TimeScale: 60}},
	}
	c.Tariff.PricePerKWh = 0.39
	c.Policy.PlugTimeout = config.Duration(4 * time.Second) // short, for the demo
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

// spy watches every topic of the deployment and prints what passes.
type spy struct {
	c      paho.Client
	t      *transcript
	prefix string

	mu   sync.Mutex
	seen []msg
	wake chan struct{}
}

func newSpy(url, prefix string, t *transcript) (*spy, error) {
	cl := &spy{t: t, prefix: prefix, wake: make(chan struct{}, 1)}
	o := paho.NewClientOptions().AddBroker(url).SetClientID("demo-spy").SetAutoReconnect(false)
	o.SetDefaultPublishHandler(func(_ paho.Client, m paho.Message) { cl.onMessage(m.Topic(), m.Payload()) })
	cl.c = paho.NewClient(o)
	if err := waitTok(cl.c.Connect()); err != nil {
		return nil, fmt.Errorf("spy connect: %w", err)
	}
	if err := waitTok(cl.c.Subscribe(prefix+"/#", 1, nil)); err != nil {
		return nil, fmt.Errorf("spy subscribe: %w", err)
	}
	return cl, nil
}

func (cl *spy) close() { cl.c.Disconnect(100) }

func (cl *spy) onMessage(topic string, payload []byte) {
	p := append([]byte(nil), payload...)
	cl.mu.Lock()
	cl.seen = append(cl.seen, msg{topic, p})
	cl.mu.Unlock()
	select {
	case cl.wake <- struct{}{}:
	default:
	}
	arrow := "<-" // from the site
	if _, kind, _, _ := wire.ParseNodeTopic(cl.prefix, topic); kind == wire.KindCommands {
		arrow = "->" // to the site, from the relay
	}
	cl.t.line(arrow, "%s  %s", strings.TrimPrefix(topic, cl.prefix+"/"), describe(cl.prefix, topic, p))
}

// describe makes one readable line out of a message.
func describe(prefix, topic string, p []byte) string {
	_, kind, typ, _ := wire.ParseNodeTopic(prefix, topic)
	if ev, err := wire.DecodeEvent(p); kind == wire.KindEvents && err == nil {
		switch typ {
		case wire.EventSession:
			var e wire.SessionEvent
			var s struct {
				Station  string  `json:"station"`
				EnergyWh float64 `json:"energy_wh"`
			}
			if json.Unmarshal(ev.Body, &e) == nil && json.Unmarshal(e.Session, &s) == nil {
				line := fmt.Sprintf("station %s: %s -> %s", s.Station, dash(e.From), e.To)
				if e.Reason != "" {
					line += " (" + e.Reason + ")"
				}
				return fmt.Sprintf("%s, %.1f Wh", line, s.EnergyWh)
			}
		case wire.EventStation:
			var e wire.StationEvent
			if json.Unmarshal(ev.Body, &e) == nil {
				return fmt.Sprintf("station %s: CP %s, contactor %s, meter %.1f Wh %s", e.Number, e.CPState, onOff(e.Contactor), e.EnergyWh, e.Fault)
			}
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
func (cl *spy) await(ctx context.Context, d time.Duration, from int, f func(msg) bool) (msg, error) {
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

func (cl *spy) mark() int {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	return len(cl.seen)
}

func waitTok(t paho.Token) error {
	if !t.WaitTimeout(10 * time.Second) {
		return errors.New("mqtt: timeout")
	}
	return t.Error()
}
