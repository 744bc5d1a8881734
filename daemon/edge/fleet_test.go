package edge

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/sitelink/sitelink/daemon/billing"
	"github.com/sitelink/sitelink/daemon/config"
	"github.com/sitelink/sitelink/daemon/localapi"
	"github.com/sitelink/sitelink/daemon/mqtttest"
	"github.com/sitelink/sitelink/daemon/wire"
	"github.com/sitelink/sitelink/store"
)

// fleetFile is the local file of the fleet tests: the daemon builds its
// own sim stations from it (a station change must rebuild them).
const fleetFile = `node: {id: %s, data_dir: %s, api_socket: %s}
mqtt: {broker: %q, group: north, reconnect_min: 100ms, reconnect_max: 500ms, connect_timeout: 3s}
terminals:
  - {machine_id: 71234996, hw_serial: "0434334921100366", stations: ["5", "6"]}
stations:
  - {number: "5", driver: sim, sim: {vehicle: present, power_kw: 22, time_scale: 600}}
  - {number: "6", driver: sim, sim: {vehicle: absent, power_kw: 11, time_scale: 600}}
policy: {energy_checkpoint: 200ms}
tariff: {currency: EUR, decimal_place: 2, price_per_kwh: 0.39}
`

// fleetSite is a daemon started from a file, as `sitelink run` starts it.
type fleetSite struct {
	*site
	dir, file string
	d         *Daemon
	trial     time.Duration
}

func startFleetSite(t *testing.T, b *mqtttest.Broker) *fleetSite {
	t.Helper()
	return startFleetSiteTrial(t, b, 3*time.Second)
}

func startFleetSiteTrial(t *testing.T, b *mqtttest.Broker, trial time.Duration) *fleetSite {
	t.Helper()
	dir := t.TempDir()
	f := &fleetSite{site: &site{t: t, broker: b}, dir: dir, file: filepath.Join(dir, "sitelink.yaml"), trial: trial}
	f.writeFile(fmt.Sprintf(fleetFile, testNode, filepath.Join(dir, "data"), filepath.Join(dir, "api.sock"), b.URL))
	f.topics = wire.Topics{Prefix: "sitelink/v1", Node: testNode}
	f.cloud = mqtttest.Record(t, b.URL, "cloud-"+t.Name(), "sitelink/v1/#")
	f.launchFile()
	return f
}

func (f *fleetSite) writeFile(s string) {
	f.t.Helper()
	if err := os.WriteFile(f.file, []byte(s), 0o600); err != nil {
		f.t.Fatal(err)
	}
}

// launchFile starts the daemon from the file and waits for its link.
func (f *fleetSite) launchFile() {
	f.t.Helper()
	cfg, err := config.LoadEdge(f.file)
	if err != nil {
		f.t.Fatal(err)
	}
	f.cfg = cfg
	d, err := New(Options{Config: cfg, ConfigFile: f.file, ConfigTrial: f.trial, Version: "test", Logger: testLogger(f.t)})
	if err != nil {
		f.t.Fatal(err)
	}
	f.d = d
	ctx, cancel := context.WithCancel(context.Background())
	f.cancel, f.done = cancel, make(chan error, 1)
	go func() { f.done <- d.Run(ctx) }()
	f.t.Cleanup(f.stop)
	f.api = localapi.NewClient(cfg.Node.APISocket)
	waitFor(f.t, 10*time.Second, "daemon connected", func() bool {
		st, err := f.api.Status()
		return err == nil && st.Connected
	})
}

// charge authorizes the seed transaction on station 5 and waits until it
// charges (the daemon's own sim station: no test handle on it).
func (f *fleetSite) charge() {
	f.t.Helper()
	if v, code := verdict(f.command("auth-1", "authorize", authBody(f.t, "5", nil))); v != "Approved" {
		f.t.Fatalf("authorize: %s %v", v, code)
	}
	f.waitState(seedSpark, "charging")
}

// desired publishes a retained desired config for src ("group" or "node").
func (f *fleetSite) desired(src string, version int64, cfg string) {
	f.t.Helper()
	topic := f.topics.ConfigDesired()
	if src == config.SourceGroup {
		topic = wire.GroupConfigDesired("sitelink/v1", "north")
	}
	f.cloud.PublishRetained(topic, fmt.Appendf(nil, `{"version":%d,"config":%s}`, version, cfg))
}

// report waits for a config report after mark that matches.
func (f *fleetSite) report(from int, what string, ok func(wire.ReportedConfig) bool) wire.ReportedConfig {
	f.t.Helper()
	var r wire.ReportedConfig
	f.cloud.Await(10*time.Second, from, what, func(m mqtttest.Message) bool {
		if m.Topic != f.topics.ConfigReported() {
			return false
		}
		r = wire.ReportedConfig{}
		return json.Unmarshal(m.Payload, &r) == nil && ok(r)
	})
	return r
}

// setting returns the value and source of one key of the running config.
// epoch is the daemon's connect epoch, from its local API.
func (f *fleetSite) epoch() int64 {
	st, err := f.api.Status()
	if err != nil {
		f.t.Fatal(err)
	}
	return st.Epoch
}

func (f *fleetSite) setting(key string) (any, string) {
	f.t.Helper()
	v, err := f.api.Config()
	if err != nil {
		f.t.Fatal(err)
	}
	for _, s := range v.Settings {
		if s.Key == key {
			return s.Value, s.Source
		}
	}
	f.t.Fatalf("no setting %s", key)
	return nil, ""
}

func (f *fleetSite) wantSetting(key string, value any, source string) {
	f.t.Helper()
	v, src := f.setting(key)
	if fmt.Sprint(v) != fmt.Sprint(value) || src != source {
		f.t.Fatalf("%s = %v (%s), want %v (%s)", key, v, src, value, source)
	}
}

// reports counts the distinct reports seen (the recorder sees the
// retained one again whenever it reconnects).
func (f *fleetSite) reports() int {
	seen := map[string]bool{}
	for _, m := range f.cloud.All() {
		if m.Topic == f.topics.ConfigReported() {
			seen[string(m.Payload)] = true
		}
	}
	return len(seen)
}

// Group defaults and node overrides merge over the file; the result
// survives a restart without the broker.
func TestFleetConfigMerge(t *testing.T) {
	b := mqtttest.Start(t)
	f := startFleetSite(t, b)
	from := f.cloud.Mark()
	f.desired("group", 3, `{"tariff":{"price_per_kwh":0.5,"session_fee":1},"policy":{"plug_timeout":"60s"}}`)
	f.report(from, "group v3 applied", func(r wire.ReportedConfig) bool {
		return r.Source == "group" && r.Version == 3 && r.Applied && r.GroupVersion == 3
	})
	from = f.cloud.Mark()
	f.desired("node", 7, `{"tariff":{"price_per_kwh":0.45}}`)
	r := f.report(from, "node v7 applied", func(r wire.ReportedConfig) bool { return r.Source == "node" && r.Version == 7 })
	if !r.Applied || r.Error != "" || r.GroupVersion != 3 || r.NodeVersion != 7 {
		t.Fatalf("report %+v", r)
	}
	for _, c := range []struct {
		key    string
		value  any
		source string
	}{
		{"tariff.price_per_kwh", 0.45, "node"},   // node beats group
		{"tariff.session_fee", 1, "group"},       // group beats file
		{"policy.plug_timeout", "1m0s", "group"}, // group beats default
		{"tariff.currency", "EUR", "file"},
		{"policy.min_energy_wh", 10, "default"},
		{"node.id", testNode, "file"},
	} {
		f.wantSetting(c.key, c.value, c.source)
	}
	f.cloud.Await(5*time.Second, 0, "state with config_version 7", func(m mqtttest.Message) bool {
		var st wire.State
		return m.Topic == f.topics.State() && json.Unmarshal(m.Payload, &st) == nil && st.Online &&
			st.ConfigVersion == 7 && st.GroupConfigVersion == 3 && st.NodeConfigVersion == 7
	})

	// The ledger keeps it: a restart with the broker down runs the same.
	f.stop()
	b.Stop()
	f.cancel = nil
	cfg, _ := config.LoadEdge(f.file)
	d, err := New(Options{Config: cfg, ConfigFile: f.file, Version: "test", Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	defer func() { cancel(); <-done }()
	waitFor(t, 10*time.Second, "local API", func() bool { _, err := f.api.Status(); return err == nil })
	f.wantSetting("tariff.price_per_kwh", 0.45, "node")
	f.wantSetting("policy.plug_timeout", "1m0s", "group")
	hist, err := d.fleet.st.ConfigHistory()
	if err != nil || len(hist) != 2 || hist[0].Version != 3 || hist[1].Version != 7 || !hist[1].Applied {
		t.Fatalf("history %+v, %v", hist, err)
	}
}

// An invalid desired config is reported with its key and reason and
// changes nothing; a stale version is ignored, replays included.
func TestFleetConfigInvalidAndStale(t *testing.T) {
	b := mqtttest.Start(t)
	f := startFleetSite(t, b)
	from := f.cloud.Mark()
	f.desired("node", 2, `{"tariff":{"price_per_kwh":0.41}}`)
	f.report(from, "v2 applied", func(r wire.ReportedConfig) bool { return r.Version == 2 && r.Applied })

	for i, c := range []struct {
		cfg, err string
	}{
		{`{"tariff":{"price_per_kwh":-1}}`, "tariff.price_per_kwh: must be >= 0, got -1"},
		{`{"policy":{"plug_timeout":"soon"}}`, "policy.plug_timeout:"},
		{`{"tarif":{}}`, "tarif: unknown key"},
		{`{"node":{"id":"elsewhere"}}`, "node: set only in the local file"},
		{`{"mqtt":{"broker":"tcp://10.0.0.1:1883"}}`, "mqtt.broker: set only in the local file"},
		{`{"terminals":[{"machine_id":1,"stations":["9"]}]}`, `terminals[0].stations[0]: unknown station "9"`},
	} {
		v := int64(3 + i)
		from := f.cloud.Mark()
		f.desired("node", v, c.cfg)
		r := f.report(from, fmt.Sprintf("v%d refused", v), func(r wire.ReportedConfig) bool { return r.Version == v })
		if r.Applied || !strings.Contains(r.Error, c.err) {
			t.Errorf("%s: report %+v, want error containing %q", c.cfg, r, c.err)
		}
		if r.NodeVersion != 2 {
			t.Errorf("%s: node_version %d, want the running 2", c.cfg, r.NodeVersion)
		}
		f.wantSetting("tariff.price_per_kwh", 0.41, "node")
	}
	// Not JSON at all: refused, version unknown.
	from = f.cloud.Mark()
	f.cloud.PublishRetained(f.topics.ConfigDesired(), []byte(`{"version":`))
	if r := f.report(from, "garbage refused", func(r wire.ReportedConfig) bool { return !r.Applied && r.Version == 0 }); !strings.Contains(r.Error, "not a JSON object") {
		t.Fatalf("garbage: %+v", r)
	}

	// The same garbage again (as on every reconnect) is not re-reported.
	n := f.reports()
	f.cloud.PublishRetained(f.topics.ConfigDesired(), []byte(`{"version":`))

	// Stale: a version at or below the last decided one does nothing.
	f.desired("node", 2, `{"tariff":{"price_per_kwh":0.99}}`)
	time.Sleep(300 * time.Millisecond)
	f.desired("node", 5, `{"tariff":{"price_per_kwh":0.98}}`)
	time.Sleep(300 * time.Millisecond)
	if got := f.reports(); got != n {
		t.Fatalf("%d reports after garbage again and stale versions, want none", got-n)
	}
	f.wantSetting("tariff.price_per_kwh", 0.41, "node")
	from = f.cloud.Mark()
	f.desired("node", 20, `{"tariff":{"price_per_kwh":0.42}}`)
	f.report(from, "v20 applied", func(r wire.ReportedConfig) bool { return r.Version == 20 && r.Applied })
	if got := f.reports(); got != n+1 {
		t.Fatalf("%d reports after stale versions, want 1", got-n)
	}
	f.wantSetting("tariff.price_per_kwh", 0.42, "node")

	// The broker redelivers the retained desired config on every
	// connection: it is not decided again.
	n = f.reports()
	b.Restart()
	waitFor(t, 15*time.Second, "reconnected", func() bool { st, err := f.api.Status(); return err == nil && st.Connected })
	time.Sleep(500 * time.Millisecond)
	if got := f.reports(); got != n {
		t.Fatalf("%d reports after a reconnect, want none", got-n)
	}
	hist, _ := f.d.fleet.st.ConfigHistory()
	applied := 0
	for _, h := range hist {
		if h.Applied {
			applied++
		}
	}
	if applied != 2 {
		t.Fatalf("history %+v: want 2 applied", hist)
	}
}

// A station redefined while it charges keeps its definition until the
// session ends; the session is settled at the price it started with.
func TestFleetStationChangeDeferred(t *testing.T) {
	b := mqtttest.Start(t)
	f := startFleetSite(t, b)
	f.charge()
	waitFor(t, 5*time.Second, "energy", func() bool { return f.session(seedSpark).EnergyWh >= 50 })

	from := f.cloud.Mark()
	station5 := `{"number":"5","driver":"sim","sim":{"vehicle":"present","power_kw":7,"time_scale":600}},
		{"number":"6","driver":"sim","sim":{"vehicle":"absent","power_kw":11,"time_scale":600}}`
	f.desired("node", 1, `{"stations":[`+station5+`],"tariff":{"price_per_kwh":1.00}}`)
	r := f.report(from, "v1 applied", func(r wire.ReportedConfig) bool { return r.Version == 1 })
	if !r.Applied || len(r.Waiting) != 1 || r.Waiting[0] != "5" {
		t.Fatalf("report %+v: want applied, station 5 waiting", r)
	}
	// A later version adds a station: there at once, 5 still waits.
	from = f.cloud.Mark()
	f.desired("node", 2, `{
		"stations":[`+station5+`,{"number":"8","driver":"sim","sim":{"vehicle":"absent","power_kw":3.7}}],
		"terminals":[{"machine_id":71234996,"hw_serial":"0434334921100366","stations":["5","6","8"]}],
		"tariff":{"price_per_kwh":1.00}}`)
	r = f.report(from, "v2 applied", func(r wire.ReportedConfig) bool { return r.Version == 2 })
	if !r.Applied || len(r.Waiting) != 1 || r.Waiting[0] != "5" {
		t.Fatalf("report %+v: want applied, station 5 still waiting", r)
	}
	// Station 8 is new and free: there at once. Station 5 still charges
	// on its old definition.
	sts, err := f.api.Stations()
	if err != nil {
		t.Fatal(err)
	}
	var numbers []string
	for _, s := range sts {
		numbers = append(numbers, s.Number)
		if s.Number == "5" && (s.PowerW != 22000 || s.Session != seedSpark) {
			t.Fatalf("station 5 changed under its session: %+v", s)
		}
	}
	if strings.Join(numbers, ",") != "5,6,8" {
		t.Fatalf("stations %v", numbers)
	}
	if v, _ := f.api.Config(); len(v.WaitingStations) != 1 {
		t.Fatalf("config view waiting %v", v.WaitingStations)
	}

	from = f.cloud.Mark()
	if v, _ := verdict(f.command("stop-1", "stop", stopBody(t, nil))); v != "Approved" {
		t.Fatalf("stop: %s", v)
	}
	s := f.waitEnded(seedSpark)
	// 0.39 EUR/kWh, the price when it started, not 1.00.
	old := store.Tariff{Currency: "EUR", DecimalPlace: 2, PricePerKWhMicro: 390000}
	if want := billing.Amount(s.EnergyWh, s.AuthorizedMinor, old); s.AmountMinor != want || want <= 0 {
		t.Fatalf("amount %d cents for %.1f Wh, want %d (the old price)", s.AmountMinor, s.EnergyWh, want)
	}
	f.report(from, "station 5 done", func(r wire.ReportedConfig) bool { return r.Version == 2 && r.Applied && len(r.Waiting) == 0 })
	waitFor(t, 5*time.Second, "station 5 rebuilt", func() bool {
		v, err := f.api.Config()
		return err == nil && len(v.WaitingStations) == 0
	})
	// The new definition: a session now draws 7 kW.
	if err := f.api.Sim(localapi.SimRequest{Station: "5", Action: "plug"}); err != nil {
		t.Fatal(err)
	}
	if v, code := verdict(f.command("auth-2", "authorize", authBody(t, "5", map[string]any{"SparkTransactionId": "bbbbbbbb-0000-4000-8000-000000000002", "NayaxTransactionId": 2}))); v != "Approved" {
		t.Fatalf("authorize after change: %s %v", v, code)
	}
	waitFor(t, 5*time.Second, "7 kW", func() bool {
		sts, err := f.api.Stations()
		return err == nil && sts[0].Number == "5" && sts[0].PowerW == 7000
	})
}

// A changed mqtt section that brings the link back is kept; one that does
// not is rolled back and the node reconnects with the old one.
func TestFleetMQTTChange(t *testing.T) {
	b := mqtttest.Start(t)
	f := startFleetSite(t, b)
	epoch := f.epoch()
	from := f.cloud.Mark()
	f.desired("node", 1, `{"mqtt":{"keepalive":"45s"}}`)
	r := f.report(from, "keepalive applied", func(r wire.ReportedConfig) bool { return r.Version == 1 })
	if !r.Applied {
		t.Fatalf("report %+v", r)
	}
	if f.epoch() <= epoch {
		t.Fatal("the link did not reconnect with the new settings")
	}
	f.wantSetting("mqtt.keepalive", "45s", "node")

	// A connect timeout no connection can meet (a typo for 1s): tried,
	// rolled back, reported, and the link is back with the old one.
	from = f.cloud.Mark()
	f.desired("node", 2, `{"mqtt":{"keepalive":"45s","connect_timeout":"1us"}}`)
	r = f.report(from, "connect_timeout rolled back", func(r wire.ReportedConfig) bool { return r.Version == 2 })
	if r.Applied || !strings.Contains(r.Error, "mqtt.connect_timeout: the link did not come back within 3s") || r.NodeVersion != 1 {
		t.Fatalf("report %+v", r)
	}
	f.wantSetting("mqtt.connect_timeout", "3s", "file")
	f.wantSetting("mqtt.keepalive", "45s", "node")

	// The broker moved, says the file, but nothing listens there: the
	// reload is rolled back within the trial and the link returns.
	dead := mqtttest.Start(t)
	deadURL := dead.URL
	dead.Stop()
	old, _ := os.ReadFile(f.file)
	f.writeFile(strings.Replace(string(old), b.URL, deadURL, 1))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := f.d.Reload(ctx)
	if err == nil || !strings.Contains(err.Error(), "mqtt.broker: the link did not come back") || !strings.Contains(err.Error(), "rolled back") {
		t.Fatalf("reload: %v", err)
	}
	waitFor(t, 10*time.Second, "link back on the old broker", func() bool { st, err := f.api.Status(); return err == nil && st.Connected })
	f.wantSetting("mqtt.broker", b.URL, "file")
	f.wantSetting("mqtt.keepalive", "45s", "node")
	// Still in service: a command goes through.
	if v, _ := verdict(f.command("auth-9", "authorize", authBody(t, "5", nil))); v != "Approved" {
		t.Fatalf("authorize after rollback: %s", v)
	}
}

// SIGHUP's reload: a good file applies under the fleet's layers, a bad
// one is refused with its problems and the running config stays.
func TestReload(t *testing.T) {
	b := mqtttest.Start(t)
	f := startFleetSite(t, b)
	from := f.cloud.Mark()
	f.desired("node", 4, `{"policy":{"plug_timeout":"30s"}}`)
	f.report(from, "v4", func(r wire.ReportedConfig) bool { return r.Version == 4 && r.Applied })
	orig, _ := os.ReadFile(f.file)
	ctx := context.Background()

	f.writeFile(strings.Replace(string(orig), "price_per_kwh: 0.39", "price_per_kwh: 0.52", 1))
	if err := f.d.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	f.wantSetting("tariff.price_per_kwh", 0.52, "file")
	f.wantSetting("policy.plug_timeout", "30s", "node") // the fleet's layer stays on top

	for _, c := range []struct {
		name, from, to, err string
	}{
		{"unknown key", "tariff:", "tarif:", "tarif: unknown key"},
		{"bad value", "price_per_kwh: 0.52", "price_per_kwh: -2", "tariff.price_per_kwh: must be >= 0"},
		{"node id", "id: " + testNode, "id: other-node", "node.id: cannot change while running"},
		{"syntax", "stations:", "stations: [", "invalid YAML"},
		{"missing secret file", "group: north,", "group: north, username: site, password_file: /nonexistent/mqtt-password,", "mqtt.password_file: "},
	} {
		cur, _ := os.ReadFile(f.file)
		f.writeFile(strings.Replace(string(cur), c.from, c.to, 1))
		err := f.d.Reload(ctx)
		if err == nil || !strings.Contains(err.Error(), c.err) {
			t.Errorf("%s: reload error %v, want %q", c.name, err, c.err)
		}
		f.wantSetting("tariff.price_per_kwh", 0.52, "file")
		f.writeFile(string(cur))
	}
	if st, err := f.api.Status(); err != nil || !st.Connected {
		t.Fatalf("status %+v %v", st, err)
	}
}

// A configuration built in code (tests, the demo) is its own file layer:
// its YAML rendering must parse back to the same configuration.
func TestBaseFileRoundTrip(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []*config.Edge{testConfig(t, "tcp://127.0.0.1:1883", dir), gpioConfig(t, dir)} {
		d, err := New(Options{Config: c})
		if err != nil {
			t.Fatal(err)
		}
		file, err := d.fleet.baseFile()
		if err != nil {
			t.Fatal(err)
		}
		got, _, err := config.ParseLayers(config.Layers{File: file})
		if err != nil {
			t.Fatalf("%v\n%s", err, file)
		}
		if !reflect.DeepEqual(got, c) {
			t.Fatalf("round trip changed the config:\n got %+v\nwant %+v", got, c)
		}
	}
}

// gpioConfig has every kind of block: a bus, a gpio station with a meter,
// a modbus controller.
func gpioConfig(t *testing.T, dir string) *config.Edge {
	t.Helper()
	data := fmt.Sprintf(`node: {id: n1, data_dir: %s, api_socket: %s/api.sock}
buses:
  - {name: rs485-1, port: /dev/ttyUSB0, baud: 9600}
terminals:
  - {machine_id: 1, stations: ["1", "2"]}
stations:
  - number: "1"
    driver: gpio
    gpio: {contactor: {pin: GPIO17}, vehicle: {pin: GPIO27, active_low: true, debounce: 20ms}}
    meter: {bus: rs485-1, unit: 1, profile: sdm630}
  - number: "2"
    driver: modbus
    modbus: {bus: rs485-1, unit: 2, state: {function: 3, address: 0x0100}, enable: {coil: true, address: 0x0000}, energy: {address: 0x0200}}
tariff: {currency: EUR, decimal_place: 2, price_per_kwh: 0.39}
`, dir, dir)
	c, err := config.ParseEdge([]byte(data))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// A station removed while it keeps signalling changes goes away without
// taking the daemon (or the other station's session) with it.
func TestFleetStationRemoved(t *testing.T) {
	b := mqtttest.Start(t)
	f := startFleetSite(t, b)
	f.charge()
	stop := make(chan struct{})
	churned := make(chan int)
	go func() {
		n := 0
		defer func() { churned <- n }()
		for {
			select {
			case <-stop:
				return
			default:
			}
			action := []string{"plug", "unplug"}[n%2]
			if f.api.Sim(localapi.SimRequest{Station: "6", Action: action}) != nil {
				return // gone
			}
			n++
		}
	}()
	time.Sleep(100 * time.Millisecond)
	from := f.cloud.Mark()
	f.desired("node", 1, `{
		"stations":[{"number":"5","driver":"sim","sim":{"vehicle":"present","power_kw":22,"time_scale":600}}],
		"terminals":[{"machine_id":71234996,"hw_serial":"0434334921100366","stations":["5"]}]}`)
	if r := f.report(from, "v1", func(r wire.ReportedConfig) bool { return r.Version == 1 }); !r.Applied || len(r.Waiting) != 0 {
		t.Fatalf("report %+v", r)
	}
	time.Sleep(300 * time.Millisecond)
	close(stop)
	if n := <-churned; n < 2 {
		t.Fatalf("only %d changes on station 6 before its removal", n)
	}
	sts, err := f.api.Stations()
	if err != nil || len(sts) != 1 || sts[0].Number != "5" || sts[0].Session != seedSpark {
		t.Fatalf("stations %+v, %v", sts, err)
	}
	if err := f.api.Sim(localapi.SimRequest{Station: "6", Action: "plug"}); err == nil || !strings.Contains(err.Error(), "unknown station") {
		t.Fatalf("sim on the removed station: %v", err)
	}
	if v, _ := verdict(f.command("stop-1", "stop", stopBody(t, nil))); v != "Approved" {
		t.Fatalf("stop after the change: %s", v)
	}
	f.waitEnded(seedSpark)
}

// A decision cut short by a shutdown (here: during the mqtt trial) is not
// recorded: after the restart the retained version is decided again.
func TestFleetShutdownMidDecision(t *testing.T) {
	b := mqtttest.Start(t)
	f := startFleetSiteTrial(t, b, 20*time.Second)
	f.desired("node", 1, `{"mqtt":{"connect_timeout":"1us"}}`)
	waitFor(t, 10*time.Second, "trial under way", func() bool { st, err := f.api.Status(); return err == nil && !st.Connected })
	f.stop()
	if hist, _ := f.d.fleet.st.ConfigHistory(); len(hist) != 0 {
		t.Fatalf("history after an interrupted decision: %+v", hist)
	}
	from := f.cloud.Mark()
	f.trial = 2 * time.Second
	f.launchFile()
	r := f.report(from, "v1 decided after the restart", func(r wire.ReportedConfig) bool { return r.Version == 1 })
	if r.Applied || !strings.Contains(r.Error, "rolled back") {
		t.Fatalf("report %+v", r)
	}
	f.wantSetting("mqtt.connect_timeout", "3s", "file")
}

// A fleet layer that no longer fits an edited file is dropped at start-up,
// reported once the broker is back, and the other layer still runs.
func TestFleetLayerDroppedAtStart(t *testing.T) {
	b := mqtttest.Start(t)
	f := startFleetSite(t, b)
	from := f.cloud.Mark()
	f.desired("group", 1, `{"tariff":{"price_per_kwh":0.5}}`)
	f.report(from, "group v1", func(r wire.ReportedConfig) bool { return r.Source == "group" && r.Applied })
	from = f.cloud.Mark()
	f.desired("node", 1, `{"terminals":[{"machine_id":71234996,"stations":["6"]}]}`)
	f.report(from, "node v1", func(r wire.ReportedConfig) bool { return r.Source == "node" && r.Applied })
	f.stop()
	// Station 6 leaves the file: the node's terminal list names it.
	old, _ := os.ReadFile(f.file)
	edited := strings.Replace(string(old), `stations: ["5", "6"]`, `stations: ["5"]`, 1)
	edited = strings.Replace(edited, "  - {number: \"6\", driver: sim, sim: {vehicle: absent, power_kw: 11, time_scale: 600}}\n", "", 1)
	if edited == string(old) {
		t.Fatal("file not edited")
	}
	f.writeFile(edited)
	from = f.cloud.Mark()
	f.launchFile()
	r := f.report(from, "node layer dropped", func(r wire.ReportedConfig) bool { return r.Source == "node" && !r.Applied })
	if !strings.Contains(r.Error, "no longer fits the local file") || r.GroupVersion != 1 || r.NodeVersion != 0 {
		t.Fatalf("report %+v", r)
	}
	f.wantSetting("tariff.price_per_kwh", 0.5, "group")
	f.wantSetting("terminals[0].stations", []any{"5"}, "file")
}
