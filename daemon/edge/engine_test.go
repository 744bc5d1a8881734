package edge

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/sitelink/sitelink/daemon/config"
	"github.com/sitelink/sitelink/daemon/nayax"
	"github.com/sitelink/sitelink/daemon/queue"
	"github.com/sitelink/sitelink/daemon/wire"
	"github.com/sitelink/sitelink/hal"
	"github.com/sitelink/sitelink/hal/sim"
	"github.com/sitelink/sitelink/store"
)

// rig is an engine on a real bbolt ledger and simulated stations, driven
// directly: no broker, no link, no goroutines. Commands go through
// engine.handle exactly as paho would hand them over; replies are taken
// from the replier's queue.
type rig struct {
	t    *testing.T
	e    *engine
	st   *store.Store
	sims map[string]*sim.Station
	now  time.Time
	n    int
}

func newRig(t *testing.T, edit func(*config.Edge)) *rig {
	t.Helper()
	return newRigAt(t, t.TempDir(), edit, nil)
}

// newRigAt is newRig on the ledger in dir (a restart when dir was used
// before), with wrap, if set, standing between each simulator and the
// engine.
func newRigAt(t *testing.T, dir string, edit func(*config.Edge), wrap func(hal.Station) hal.Station) *rig {
	t.Helper()
	cfg := testConfig(t, "tcp://127.0.0.1:1", dir) // never dialled
	cfg.Policy.ContactorTimeout = config.Duration(200 * time.Millisecond)
	if edit != nil {
		edit(cfg)
		if p := cfg.Validate(); len(p) > 0 {
			t.Fatalf("config invalid: %v", p)
		}
	}
	st, err := store.Open(filepath.Join(dir, "sitelink.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	r := &rig{t: t, st: st, sims: map[string]*sim.Station{}, now: time.Now()}
	override := map[string]hal.Station{}
	for _, sc := range cfg.Stations {
		s := sim.New(sim.Config{Number: sc.Number, VehiclePresent: true, PowerKW: 22, TimeScale: 1})
		r.sims[sc.Number], override[sc.Number] = s, s
		if wrap != nil {
			override[sc.Number] = wrap(s)
		}
	}
	log := slog.New(slog.DiscardHandler)
	stations := newStationSet(log, override, func(string) {}, nil)
	if err := stations.open(cfg); err != nil {
		t.Fatal(err)
	}
	var running atomic.Pointer[config.Edge]
	running.Store(cfg)
	r.e = newEngine(engineDeps{log: log, st: st, stations: stations, cfg: &running,
		topics: wire.Topics{Prefix: cfg.MQTT.TopicPrefix, Node: cfg.Node.ID},
		cmds:   queue.New[inbound](), calls: newCalls(), changes: queue.New[string]()})
	if err := r.e.reconcile(r.now); err != nil {
		t.Fatal(err)
	}
	return r
}

// fakeMessage is a command as paho delivers it.
type fakeMessage struct {
	topic   string
	payload []byte
	acked   bool
}

func (m *fakeMessage) Duplicate() bool   { return false }
func (m *fakeMessage) Qos() byte         { return 1 }
func (m *fakeMessage) Retained() bool    { return false }
func (m *fakeMessage) Topic() string     { return m.topic }
func (m *fakeMessage) MessageID() uint16 { return 1 }
func (m *fakeMessage) Payload() []byte   { return m.payload }
func (m *fakeMessage) Ack()              { m.acked = true }

var _ paho.Message = (*fakeMessage)(nil)

// command hands the engine a command of type typ with body (any JSON
// value, or raw bytes) and returns the reply body it committed.
func (r *rig) command(typ string, body any) map[string]any {
	r.t.Helper()
	r.n++
	raw, ok := body.([]byte)
	if !ok {
		raw, _ = json.Marshal(body)
	}
	env, _ := json.Marshal(map[string]any{"id": fmt.Sprintf("cmd-%d", r.n), "type": typ, "body": json.RawMessage(raw)})
	r.e.handle(inbound{msg: &fakeMessage{topic: r.e.topics.Command(typ), payload: env}})
	out := r.e.out.Drain()
	if len(out) != 1 {
		r.t.Fatalf("%s: %d replies queued, want 1", typ, len(out))
	}
	var reply struct{ Body map[string]any }
	if err := json.Unmarshal(out[0].payload, &reply); err != nil {
		r.t.Fatalf("%s: reply %s: %v", typ, out[0].payload, err)
	}
	return reply.Body
}

// sessions returns every session in the ledger by SparkTransactionId.
func (r *rig) sessions() map[string]store.Session {
	r.t.Helper()
	out := map[string]store.Session{}
	err := r.st.View(func(tx *store.Tx) error {
		return tx.Sessions(1000, func(s store.Session) bool { out[s.SparkTransactionID] = s; return true })
	})
	if err != nil {
		r.t.Fatal(err)
	}
	return out
}

// events returns the types of the events queued in the outbox.
func (r *rig) events() []string {
	r.t.Helper()
	es, err := r.st.OutboxHead(1000)
	if err != nil {
		r.t.Fatal(err)
	}
	var out []string
	for _, e := range es {
		out = append(out, e.Type)
	}
	return out
}

// TestAuthorizeOutcomes drives every outcome of authorize without a
// broker: the answer Nayax gets, the session left in the ledger, whether
// the hold is released at once (a cancel-request queued), and whether
// energy may flow (contactor).
func TestAuthorizeOutcomes(t *testing.T) {
	const other = "0c1d2e3f-0000-4000-8000-000000000001"
	cases := []struct {
		name    string
		edit    func(*config.Edge)
		setup   func(r *rig)
		body    func(t *testing.T) any
		verdict string
		code    int
		state   store.State // of seedSpark; "" = no session
		cancel  bool        // a cancel-request is queued for the hold
		closed  string      // station whose contactor must be closed ("" = none)
	}{
		{name: "approved: session authorized, contactor closed",
			body: func(t *testing.T) any { return authBody(t, "5", nil) }, verdict: "Approved", state: store.Authorized, closed: "5"},
		{name: "station taken from a single-station terminal",
			edit: func(c *config.Edge) { c.Terminals[0].Stations = []string{"6"} },
			body: func(t *testing.T) any { return authBody(t, "", map[string]any{"ServiceStationNumber": nil}) }, verdict: "Approved", state: store.Authorized, closed: "6"},
		{name: "body of the wrong shape", body: func(t *testing.T) any { return []byte(`{"SparkTransactionId":"x","Amount":"ten"}`) }, verdict: "Declined", code: nayax.CodeValidation},
		{name: "identifier longer than Nayax sends",
			body:    func(t *testing.T) any { return authBody(t, "5", map[string]any{"CardLast4Digits": "123456789"}) },
			verdict: "Declined", code: nayax.CodeValidation},
		{name: "unknown machine",
			body:    func(t *testing.T) any { return authBody(t, "5", map[string]any{"MachineId": 1, "HwSerial": "999"}) },
			verdict: "Declined", code: nayax.CodeUnknownMachine},
		{name: "MachineId and HwSerial name different terminals",
			edit: func(c *config.Edge) {
				c.Terminals[0].Stations = []string{"5"}
				c.Terminals = append(c.Terminals, config.Terminal{MachineID: 5550001, HwSerial: "0555000000001", Flow: "pre-authorization", Stations: []string{"6"}})
			},
			body:    func(t *testing.T) any { return authBody(t, "5", map[string]any{"MachineId": 5550001}) },
			verdict: "Declined", code: nayax.CodeUnknownMachine},
		{name: "not approved, no session: nothing to do",
			body: func(t *testing.T) any {
				return authBody(t, "5", map[string]any{"AuthStatus": map[string]any{"Verdict": "Declined", "ErrorCode": 5, "ErrorDescription": "insufficient funds"}})
			},
			verdict: "Approved"},
		{name: "no station named on a two-station terminal: declined, hold released",
			body:    func(t *testing.T) any { return authBody(t, "", map[string]any{"ServiceStationNumber": nil}) },
			verdict: "Declined", code: nayax.CodeMissingMandatory, state: store.Cancelling, cancel: true},
		{name: "station not served by the terminal: declined, hold released",
			edit: func(c *config.Edge) { c.Terminals[0].Stations = []string{"5"} },
			body: func(t *testing.T) any { return authBody(t, "6", nil) }, verdict: "Declined", code: nayax.CodeValidation, state: store.Cancelling, cancel: true},
		{name: "zero amount", body: func(t *testing.T) any { return authBody(t, "5", map[string]any{"Amount": 0}) }, verdict: "Declined", code: nayax.CodeValidation},
		{name: "station faulted: declined, hold released",
			setup: func(r *rig) { r.sims["5"].Fault("door open") },
			body:  func(t *testing.T) any { return authBody(t, "5", nil) }, verdict: "Declined", code: nayax.CodeGeneral, state: store.Cancelling, cancel: true},
		{name: "contactor closed without a session: declined, hold released",
			setup: func(r *rig) { _ = r.sims["5"].SetContactor(context.Background(), true) },
			body:  func(t *testing.T) any { return authBody(t, "5", nil) }, verdict: "Declined", code: nayax.CodeGeneral, state: store.Cancelling, cancel: true, closed: "5"},
		{name: "station busy with another session: declined, hold released",
			setup: func(r *rig) {
				if v := verdictOf(r.command("authorize", authBody(r.t, "5", map[string]any{"SparkTransactionId": other, "NayaxTransactionId": 42}))); v != "Approved" {
					r.t.Fatalf("first session: %s", v)
				}
			},
			body: func(t *testing.T) any { return authBody(t, "5", nil) }, verdict: "Declined", code: nayax.CodeValidation, state: store.Cancelling, cancel: true, closed: "5"},
		{name: "NayaxTransactionId of another session",
			setup: func(r *rig) {
				r.command("authorize", authBody(r.t, "6", map[string]any{"SparkTransactionId": other}))
			},
			body: func(t *testing.T) any { return authBody(t, "5", nil) }, verdict: "Declined", code: nayax.CodeValidation, closed: "6"},
		{name: "contactor will not close: declined, session ended and hold released",
			setup: func(r *rig) { r.sims["5"].SetStuck(true) },
			body:  func(t *testing.T) any { return authBody(t, "5", nil) }, verdict: "Declined", code: nayax.CodeGeneral, state: store.Cancelling, cancel: true},
		{name: "replay of an active session: same answer, nothing new",
			setup: func(r *rig) { r.command("authorize", authBody(r.t, "5", nil)) },
			body:  func(t *testing.T) any { return authBody(t, "5", nil) }, verdict: "Approved", state: store.Authorized, closed: "5"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, tc.edit)
			if tc.setup != nil {
				tc.setup(r)
			}
			before := len(r.events())
			reply := r.command("authorize", tc.body(t))
			v, code := verdict(reply)
			if v != tc.verdict || (tc.verdict == "Declined" && code != float64(tc.code)) {
				t.Fatalf("reply %v: want %s %v", reply, tc.verdict, tc.code)
			}
			s, have := r.sessions()[seedSpark]
			if got := s.State; (tc.state == "") == have || got != tc.state {
				t.Fatalf("session %s (exists %v), want %q", got, have, tc.state)
			}
			cancels := slices.Contains(r.events()[before:], wire.EventCancelRequest)
			if cancels != tc.cancel {
				t.Fatalf("cancel-request queued = %v, want %v (events %v)", cancels, tc.cancel, r.events()[before:])
			}
			for n, s := range r.sims {
				if on := s.Read().Contactor; on != (n == tc.closed) {
					t.Errorf("station %s contactor closed = %v", n, on)
				}
			}
		})
	}
}

// meterAt is a station whose meter register already reads wh (a real
// meter's lifetime count), on top of what the simulator delivers.
type meterAt struct {
	hal.Station
	wh float64
}

func (m meterAt) Read() hal.Reading {
	r := m.Station.Read()
	r.EnergyWh += m.wh
	return r
}

// A Remote Start left requested by a restart, on a meter that reads
// 123 kWh, then approved late: the hold is released with a cancel, never
// settled for the meter's lifetime count.
func TestLateApprovalAfterRestartCancels(t *testing.T) {
	dir := t.TempDir()
	wrap := func(s hal.Station) hal.Station { return meterAt{s, 123_456} }
	r := newRigAt(t, dir, nil, wrap)
	s, err := r.e.startSession("5", 0, r.now)
	if err != nil {
		t.Fatal(err)
	}
	_ = r.st.Close()

	r = newRigAt(t, dir, nil, wrap) // the restart closes it
	if got := r.sessions()[s.SparkTransactionID]; got.State != store.Closed || got.EnergyWh != 0 {
		t.Fatalf("after restart: %s with %v Wh, want closed with 0", got.State, got.EnergyWh)
	}
	before := len(r.events())
	reply := r.command("authorize", authBody(t, "5", map[string]any{"SparkTransactionId": s.SparkTransactionID}))
	if v, _ := verdict(reply); v != "Declined" {
		t.Fatalf("late approval answered %v", reply)
	}
	got := r.sessions()[s.SparkTransactionID]
	if got.State != store.Cancelling || got.Request == nil || got.Request.Kind != "cancel" || got.Amount != 0 {
		t.Fatalf("late approval left %s, request %+v, amount %v; want cancelling with a cancel", got.State, got.Request, got.Amount)
	}
	if evs := r.events()[before:]; !slices.Contains(evs, wire.EventCancelRequest) || slices.Contains(evs, wire.EventSettlementRequest) {
		t.Fatalf("events %v: want a cancel-request and no settlement", evs)
	}
}

// A welded contactor must not hold the customer's money: after
// stuckStopLimit failed opens the money is decided on the energy frozen at
// the stop, and the contactor, now unsupervised, keeps being opened until
// it is. The engine's clock is driven by hand: minutes of retries, no wait.
func TestWeldedContactorDecidesMoney(t *testing.T) {
	r := newRig(t, nil)
	if v, _ := verdict(r.command("authorize", authBody(t, "5", nil))); v != "Approved" {
		t.Fatal("authorize")
	}
	time.Sleep(20 * time.Millisecond) // some energy at 22 kW
	r.sims["5"].SetStuck(true)
	if v, _ := verdict(r.command("stop", stopBody(t, nil))); v != "Declined" {
		t.Fatal("a stop whose contactor did not open was answered Approved")
	}
	s := r.sessions()[seedSpark]
	if s.State != store.Stopping {
		t.Fatalf("after the stop: %s, want stopping", s.State)
	}
	frozen := s.EnergyWh
	now := r.now
	attempts := 0
	for ; attempts < 2*stuckStopLimit && r.sessions()[seedSpark].State == store.Stopping; attempts++ {
		now = now.Add(time.Minute)
		r.e.timers(now)
	}
	got := r.sessions()[seedSpark]
	if got.State != store.Settling && got.State != store.Cancelling {
		t.Fatalf("after %d minutes of failed opens: %s, want the money decided", attempts, got.State)
	}
	if attempts != stuckStopLimit {
		t.Errorf("money decided after %d attempts, want %d", attempts, stuckStopLimit)
	}
	if got.EnergyWh != frozen {
		t.Fatalf("energy after the stop was billed: %v -> %v", frozen, got.EnergyWh)
	}
	if !r.sims["5"].Read().Contactor {
		t.Fatal("the stuck contactor opened by itself?")
	}
	r.sims["5"].SetStuck(false)
	now = now.Add(time.Minute)
	r.e.timers(now)
	if r.sims["5"].Read().Contactor {
		t.Fatal("the unsupervised contactor was not opened once it could be")
	}
}
