package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sitelink/sitelink/daemon/localapi"
	"github.com/sitelink/sitelink/daemon/mqtttest"
	"github.com/sitelink/sitelink/daemon/nayax/seeds"
	"github.com/sitelink/sitelink/daemon/wire"
)

// TestMain lets the test binary be the sitelink binary: the process tests
// re-execute it with SITELINK_TEST_MAIN=1, so they kill a real daemon
// process without a separate build step.
func TestMain(m *testing.M) {
	if os.Getenv("SITELINK_TEST_MAIN") == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

const node = "site-proc"

// testCardKey is the relays' card key (relay.card_key_file) in these tests.
const testCardKey = "cmd test fleet card key, 32 bytes or more"

// daemonProc is a `sitelink run` process.
type daemonProc struct {
	t      *testing.T
	cfg    string
	socket string
	cmd    *exec.Cmd
	log    *bytes.Buffer
}

func writeConfig(t *testing.T, brokerURL string) (cfgPath, socket string) {
	dir := t.TempDir()
	socket = filepath.Join(dir, "api.sock")
	cfg := fmt.Sprintf(`node: {id: %s, data_dir: %s, api_socket: %s}
mqtt: {broker: %q, reconnect_min: 100ms, reconnect_max: 500ms, connect_timeout: 3s}
terminals:
  - {machine_id: 71234996, hw_serial: "0434334921100366", flow: pre-authorization, stations: ["5"]}
stations:
  - {number: "5", driver: sim, sim: {vehicle: present, power_kw: 22, time_scale: 600}}
policy: {plug_timeout: 120s, min_energy_wh: 10, energy_checkpoint: 200ms, result_timeout: 2s, retry_min: 100ms, retry_max: 500ms}
tariff: {currency: EUR, decimal_place: 2, price_per_kwh: 0.39}
`, node, filepath.Join(dir, "data"), socket, brokerURL)
	cfgPath = filepath.Join(dir, "sitelink.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return cfgPath, socket
}

// startDaemon starts `sitelink run` with env added to the test's
// environment and waits until it is connected.
func startDaemon(t *testing.T, cfg, socket string, env ...string) *daemonProc {
	t.Helper()
	p := &daemonProc{t: t, cfg: cfg, socket: socket, log: &bytes.Buffer{}}
	p.cmd = exec.Command(os.Args[0], "run", "-config", cfg, "-log-level", "debug")
	p.cmd.Env = append(append(os.Environ(), "SITELINK_TEST_MAIN=1"), env...)
	p.cmd.Stderr = p.log
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if p.cmd.ProcessState == nil {
			_ = p.cmd.Process.Kill()
			_ = p.cmd.Wait()
		}
		if t.Failed() {
			t.Logf("daemon log:\n%s", p.log.String())
		}
	})
	api := localapi.NewClient(socket)
	deadline := time.Now().Add(15 * time.Second)
	for {
		if st, err := api.Status(); err == nil && st.Connected {
			return p
		}
		if time.Now().After(deadline) {
			t.Fatalf("daemon did not come up; log:\n%s", p.log.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func command(t *testing.T, r *mqtttest.Recorder, topics wire.Topics, id, typ string, body []byte) string {
	t.Helper()
	env, _ := json.Marshal(wire.Command{ID: id, Type: typ, ReplyTo: topics.Replies(), Body: body})
	from := r.Mark()
	r.Publish(topics.Command(typ), env)
	var rep wire.Reply
	r.Await(10*time.Second, from, "reply to "+id, func(m mqtttest.Message) bool {
		var err error
		rep, err = wire.DecodeReply(m.Payload)
		return m.Topic == topics.Replies() && err == nil && rep.ID == id
	})
	return rep.Body.Status.Verdict
}

func withStation(t *testing.T, body []byte) []byte {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatal(err)
	}
	m["ServiceStationNumber"] = json.RawMessage(`"5"`)
	out, _ := json.Marshal(m)
	return out
}

// waitSession waits until the newest session is in one of the states
// ("ended" stands for any state after the service: settling, cancelling
// and their ends).
func waitSession(t *testing.T, api *localapi.Client, states ...string) localapi.Session {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	want := map[string]bool{}
	for _, s := range states {
		if s == "ended" {
			for _, e := range []string{"settling", "cancelling", "settled", "cancelled", "needs-reconciliation"} {
				want[e] = true
			}
		}
		want[s] = true
	}
	for {
		ss, err := api.Sessions(10)
		if err == nil && len(ss) > 0 && want[ss[0].State] {
			return ss[0]
		}
		if time.Now().After(deadline) {
			t.Fatalf("session never reached %v: %+v (%v)", states, ss, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A daemon SIGKILLed right after acknowledging a stop comes back with the
// stop on record, the contactor open, and every event delivered.
func TestKilledAfterStopAck(t *testing.T) {
	b := mqtttest.Start(t)
	cfg, socket := writeConfig(t, b.URL)
	topics := wire.Topics{Prefix: "sitelink/v1", Node: node}
	rec := mqtttest.Record(t, b.URL, "cloud-kill", "sitelink/v1/#")
	p := startDaemon(t, cfg, socket)
	api := localapi.NewClient(socket)

	if v := command(t, rec, topics, "auth-1", "authorize", withStation(t, seeds.Get("001_transactioncallback_request.json"))); v != "Approved" {
		t.Fatalf("authorize: %s", v)
	}
	waitSession(t, api, "charging")
	// Enough energy to cost more than 0.00: the session ends by a
	// Settlement, not by the cancel of a free session.
	waitFor(t, "energy above 100 Wh", func() bool {
		ss, err := api.Sessions(1)
		return err == nil && len(ss) == 1 && ss[0].EnergyWh > 100
	})
	if v := command(t, rec, topics, "stop-1", "stop", seeds.Get("000_stopcallback_request.json")); v != "Approved" {
		t.Fatalf("stop: %s", v)
	}
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = p.cmd.Wait()

	startDaemon(t, cfg, socket)
	s := waitSession(t, api, "ended")
	if s.StopReason != "StopCallback (card presented)" || s.EnergyWh <= 0 {
		t.Fatalf("session after kill: %+v", s)
	}
	sts, err := api.Stations()
	if err != nil || len(sts) != 1 || sts[0].Contactor {
		t.Fatalf("stations after restart: %+v %v", sts, err)
	}
	// Every event arrives (at least once; ids dedupe), none missing.
	waitFor(t, "outbox drained", func() bool {
		st, err := api.Status()
		return err == nil && st.OutboxDepth == 0
	})
	var seen = map[uint64]bool{}
	var max uint64
	rec.Await(10*time.Second, 0, "stopped event", func(m mqtttest.Message) bool {
		return strings.HasSuffix(m.Topic, "/events/session") && bytes.Contains(m.Payload, []byte(`"to":"settling"`))
	})
	for _, m := range rec.All() {
		var e wire.Event
		if _, kind, _, ok := wire.ParseNodeTopic("sitelink/v1", m.Topic); ok && kind == "events" && json.Unmarshal(m.Payload, &e) == nil {
			seen[e.Seq] = true
			max = maxU(max, e.Seq)
		}
	}
	for seq := uint64(1); seq <= max; seq++ {
		if !seen[seq] {
			t.Fatalf("event seq %d never delivered (saw up to %d)", seq, max)
		}
	}
	// The replayed stop id is answered from the ledger, not acted on again.
	if v := command(t, rec, topics, "stop-1", "stop", seeds.Get("000_stopcallback_request.json")); v != "Approved" {
		t.Fatalf("replayed stop after restart: %s", v)
	}
}

// SIGTERM: contactors open, the session is recorded as interrupted, the
// offline state is published (a clean disconnect fires no LWT) and the
// process exits 0.
func TestSIGTERM(t *testing.T) {
	b := mqtttest.Start(t)
	cfg, socket := writeConfig(t, b.URL)
	topics := wire.Topics{Prefix: "sitelink/v1", Node: node}
	rec := mqtttest.Record(t, b.URL, "cloud-term", "sitelink/v1/#")
	p := startDaemon(t, cfg, socket)
	api := localapi.NewClient(socket)
	if v := command(t, rec, topics, "auth-1", "authorize", withStation(t, seeds.Get("001_transactioncallback_request.json"))); v != "Approved" {
		t.Fatalf("authorize: %s", v)
	}
	waitSession(t, api, "charging")
	checkOps(t, socket)
	from := rec.Mark()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Wait(); err != nil {
		t.Fatalf("exit after SIGTERM: %v\n%s", err, p.log.String())
	}
	rec.Await(5*time.Second, from, "offline state", func(m mqtttest.Message) bool {
		return m.Topic == topics.State() && bytes.Contains(m.Payload, []byte(`"online":false`))
	})
	rec.Await(5*time.Second, from, "interrupted event", func(m mqtttest.Message) bool {
		return bytes.Contains(m.Payload, []byte(`"to":"interrupted"`))
	})
	startDaemon(t, cfg, socket)
	if s := waitSession(t, api, "ended"); s.StopReason != "shutdown" {
		t.Fatalf("after restart: %+v", s)
	}
}

func TestConfigCheck(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	_ = os.WriteFile(bad, []byte("node: {id: \"a/b\"}\nmqtt: {brokr: x}\nstations:\n  - {number: \"5\"}\n  - {number: \"5\"}\n"), 0o600)
	cases := []struct {
		name string
		file string
		code int
		want []string
	}{
		{"template", "../../configs/sitelink.yaml", 1, []string{"packaged template", "sitelink.yaml:26: node.id: not set yet"}},
		{"bad", bad, 1, []string{"node.id", "mqtt.brokr: unknown key", "stations[1].number: duplicate"}},
		{"missing", filepath.Join(dir, "nope.yaml"), 1, []string{"nope.yaml"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			err := run([]string{"config", "check", c.file}, &out, &errb)
			code := 0
			if ec, ok := err.(exitCode); ok {
				code = int(ec)
			} else if err != nil {
				code = 1
			}
			if code != c.code {
				t.Fatalf("exit %d, want %d; stderr:\n%s", code, c.code, errb.String())
			}
			all := out.String() + errb.String()
			for _, w := range c.want {
				if !strings.Contains(all, w) {
					t.Errorf("output lacks %q:\n%s", w, all)
				}
			}
		})
	}
}

// The newcomer's first command works and tells the whole story.
func TestDemo(t *testing.T) {
	var out, errb bytes.Buffer
	if err := run([]string{"demo"}, &out, &errb); err != nil {
		t.Fatalf("demo: %v\n%s\n%s", err, out.String(), errb.String())
	}
	for _, w := range []string{"POST", "/api/StopCallback", "authorized", "charging", "stopping -> stopped", `"Verdict":"Approved"`, `"state": "settled"`, `"state": "cancelled"`, "Cortina/PrePaid/Cancel", "ExternalCancel",
		"/api/StartSession", "/api/InfoQuery", "Price:0.39 EUR/kWh", "/api/TransactionNotify", "/api/StopNotify", "Nayax received Settlement", `"origin": "device-start"`} {
		if !strings.Contains(out.String(), w) {
			t.Errorf("transcript lacks %q:\n%s", w, out.String())
		}
	}
}

func waitFor(t *testing.T, what string, f func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !f() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func maxU(a, b uint64) uint64 { return max(a, b) }

// checkOps drives the operating commands against a live daemon: the JSON
// field names are a contract for scripts.
func checkOps(t *testing.T, socket string) {
	t.Helper()
	cli := func(args ...string) string {
		t.Helper()
		var out, errb bytes.Buffer
		if err := run(append(args[:1:1], append([]string{"-socket", socket}, args[1:]...)...), &out, &errb); err != nil {
			t.Fatalf("sitelink %v: %v\n%s", args, err, errb.String())
		}
		return out.String()
	}
	fields := func(js string) map[string]bool {
		var v any
		if err := json.Unmarshal([]byte(js), &v); err != nil {
			t.Fatalf("not JSON: %v\n%s", err, js)
		}
		if a, ok := v.([]any); ok && len(a) > 0 {
			v = a[0]
		}
		out := map[string]bool{}
		for k := range v.(map[string]any) {
			out[k] = true
		}
		return out
	}
	for cmd, want := range map[string][]string{
		"status":   {"node", "connected", "epoch", "outbox_depth", "version"},
		"stations": {"number", "contactor", "cp_state", "energy_wh", "power_w", "fault"},
		"sessions": {"spark_transaction_id", "nayax_transaction_id", "station", "state", "energy_wh", "authorized_amount", "amount", "created_at", "updated_at"},
	} {
		got := fields(cli(cmd, "-json"))
		for _, f := range want {
			if !got[f] {
				t.Errorf("sitelink %s -json lacks %q: %v", cmd, f, got)
			}
		}
	}
	if out := cli("sim", "-station", "5", "power", "11"); !strings.Contains(out, "power") {
		t.Fatalf("sim power: %s", out)
	}
	waitFor(t, "power 11 kW", func() bool { return strings.Contains(cli("stations"), "11.00") })
	var errb bytes.Buffer
	if err := run([]string{"sim", "-socket", socket, "-station", "9", "plug"}, &bytes.Buffer{}, &errb); err == nil || !strings.Contains(err.Error(), "unknown station") {
		t.Fatalf("sim on unknown station: %v", err)
	}
}

// sitelink fleet shows each node's presence from the retained states: the
// birth while it runs, its own offline state after a clean stop.
func TestFleet(t *testing.T) {
	b := mqtttest.Start(t)
	cfg, socket := writeConfig(t, b.URL)
	p := startDaemon(t, cfg, socket)
	fleet := func() string {
		t.Helper()
		var out, errb bytes.Buffer
		if err := run([]string{"fleet", "-config", cfg, "-wait", "500ms"}, &out, &errb); err != nil {
			t.Fatalf("fleet: %v\n%s", err, errb.String())
		}
		return out.String()
	}
	if out := fleet(); !strings.Contains(out, node) || !strings.Contains(out, " yes ") {
		t.Fatalf("fleet while running:\n%s", out)
	}
	// An edge config carrying the node's identity is refused: on the
	// shipped broker (use_username_as_clientid) it would take over the
	// daemon's client id and discard its persistent session.
	raw, _ := os.ReadFile(cfg)
	withID := filepath.Join(t.TempDir(), "node.yaml")
	if err := os.WriteFile(withID, []byte(strings.Replace(string(raw), "mqtt: {", "mqtt: {username: "+node+", ", 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	var errb bytes.Buffer
	if err := run([]string{"fleet", "-config", withID, "-wait", "500ms"}, &bytes.Buffer{}, &errb); err == nil || !strings.Contains(err.Error(), "node's own broker identity") {
		t.Fatalf("fleet with the node's identity: %v", err)
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	_ = p.cmd.Wait()
	if out := fleet(); !strings.Contains(out, node) || !strings.Contains(out, " no ") {
		t.Fatalf("fleet after a clean stop:\n%s", out)
	}
}
