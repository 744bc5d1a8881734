package config

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

const examplePath = "../../configs/edge.example.yaml"

// minimal is the smallest valid configuration but for its price; test
// cases append to it.
const minimal = `node: {id: n1}
stations: [{number: "1"}]
`

// priced returns a site's src (it names a node) with a price appended
// when it has no tariff section of its own, so that fixtures that are about something else describe a
// site that can take money (a site without a price is refused). Appended
// last, it moves no line a case expects a problem on.
func priced(src string) string {
	if tariffLine.MatchString(src) || !strings.Contains(src, "node:") {
		return src
	}
	if src != "" && !strings.HasSuffix(src, "\n") {
		src += "\n"
	}
	return src + "tariff: {price_per_kwh: 0.39}\n"
}

var tariffLine = regexp.MustCompile(`(?m)^tariff:`)

// problemsOf parses src and returns its problems as "path: reason" strings
// (without lines, which TestProblemLines covers).
func problemsOf(t *testing.T, src string) []string {
	t.Helper()
	e, err := ParseEdge([]byte(priced(src)))
	if err == nil {
		if e == nil {
			t.Fatal("ParseEdge returned nil *Edge and nil error")
		}
		return nil
	}
	if e != nil {
		t.Errorf("ParseEdge returned an *Edge along with error %v", err)
	}
	var probs Problems
	if !errors.As(err, &probs) {
		t.Fatalf("error %T %v is not Problems", err, err)
	}
	if !errors.Is(err, ErrInvalid) {
		t.Errorf("errors.Is(err, ErrInvalid) = false")
	}
	out := make([]string, len(probs))
	for i, p := range probs {
		p.Line = 0
		out[i] = p.String()
	}
	return out
}

func mustParse(t *testing.T, src string) *Edge {
	t.Helper()
	e, err := ParseEdge([]byte(priced(src)))
	if err != nil {
		t.Fatalf("ParseEdge: unexpected problems:\n%v", err)
	}
	return e
}

func TestExampleFile(t *testing.T) {
	e, err := LoadEdge(examplePath)
	if err != nil {
		t.Fatalf("example config has problems:\n%v", err)
	}
	want := Default()
	want.Node.ID = "site-0042"
	// configs/mosquitto.conf's node listener: client certificates.
	want.MQTT.Broker = "ssl://mqtt.example.com:8883"
	want.MQTT.TLS = TLS{CAFile: "/etc/sitelink/ca.crt", CertFile: "/etc/sitelink/node.crt", KeyFile: "/etc/sitelink/node.key"}
	want.Terminals = []Terminal{{
		MachineID: 71234996, HwSerial: "0434334921100366",
		Flow: FlowPreAuthorization, Stations: []string{"5", "6"}, Start: StartRemote, Stop: StopCallback,
	}}
	want.Stations = []Station{
		{Number: "5", Driver: DriverSim, Sim: &Sim{Vehicle: VehiclePresent, PowerKW: 7.4, TimeScale: 1}, MaxPowerKW: 22},
		{Number: "6", Driver: DriverSim, Sim: &Sim{Vehicle: VehicleAbsent, PowerKW: 11, TimeScale: 1}, MaxPowerKW: 22},
	}
	want.Tariff = Tariff{Currency: "EUR", DecimalPlace: 2, PricePerKWh: 0.39, SessionFee: 0}
	if !reflect.DeepEqual(*e, want) {
		t.Errorf("example config:\n got %+v\nwant %+v", *e, want)
	}
	if got := e.DBPath(); got != "/var/lib/sitelink/sitelink.db" {
		t.Errorf("DBPath = %q", got)
	}
}

func TestDefaults(t *testing.T) {
	def := Default()
	if def.Node.ID != "" || def.Stations != nil || def.Terminals != nil {
		t.Errorf("Default has node id, stations or terminals: %+v", def)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"data_dir", def.Node.DataDir, "/var/lib/sitelink"},
		{"api_socket", def.Node.APISocket, "/run/sitelink/api.sock"},
		{"broker", def.MQTT.Broker, "tcp://127.0.0.1:1883"},
		{"topic_prefix", def.MQTT.TopicPrefix, "sitelink/v1"},
		{"group", def.MQTT.Group, "default"},
		{"keepalive", def.MQTT.KeepAlive, Duration(30 * time.Second)},
		{"connect_timeout", def.MQTT.ConnectTimeout, Duration(10 * time.Second)},
		{"reconnect_min", def.MQTT.ReconnectMin, Duration(time.Second)},
		{"reconnect_max", def.MQTT.ReconnectMax, Duration(time.Minute)},
		{"retention", def.Storage.Retention, Duration(90 * 24 * time.Hour)},
		{"compact_free_percent", def.Storage.CompactFreePercent, 50},
		{"compact_min_mb", def.Storage.CompactMinMB, 32},
		{"plug_timeout", def.Policy.PlugTimeout, Duration(120 * time.Second)},
		{"min_energy_wh", def.Policy.MinEnergyWh, 10.0},
		{"contactor_timeout", def.Policy.ContactorTimeout, Duration(2 * time.Second)},
		{"energy_checkpoint", def.Policy.EnergyCheckpoint, Duration(10 * time.Second)},
		{"budget_stop_at", def.Policy.BudgetStopAt, 98.0},
		{"currency", def.Tariff.Currency, "EUR"},
		{"decimal_place", def.Tariff.DecimalPlace, 2},
		{"price_per_kwh", def.Tariff.PricePerKWh, 0.0},
		{"session_fee", def.Tariff.SessionFee, 0.0},
		{"sim", DefaultSim(), Sim{Vehicle: "present", PowerKW: 7.4, TimeScale: 1}},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("default %s = %v, want %v", c.name, c.got, c.want)
		}
	}
}

func TestDefaultsApplied(t *testing.T) {
	tests := []struct {
		name  string
		src   string
		check func(t *testing.T, e *Edge)
	}{
		{"minimal gets every default", minimal, func(t *testing.T, e *Edge) {
			want := Default()
			want.Node.ID = "n1"
			want.Tariff.PricePerKWh = 0.39 // priced()
			sim := DefaultSim()
			want.Stations = []Station{{Number: "1", Driver: DriverSim, Sim: &sim, MaxPowerKW: DefaultMaxPowerKW}}
			if !reflect.DeepEqual(*e, want) {
				t.Errorf("got %+v\nwant %+v", *e, want)
			}
		}},
		{"partial block keeps sibling defaults", minimal + "mqtt: {broker: \"ssl://b.example:8883\"}\n", func(t *testing.T, e *Edge) {
			if e.MQTT.Broker != "ssl://b.example:8883" || e.MQTT.TopicPrefix != "sitelink/v1" || e.MQTT.KeepAlive != Duration(30*time.Second) {
				t.Errorf("mqtt = %+v", e.MQTT)
			}
		}},
		{"empty block keeps defaults", minimal + "mqtt:\n  tls:\npolicy:\n", func(t *testing.T, e *Edge) {
			if e.MQTT != Default().MQTT || e.Policy != Default().Policy {
				t.Errorf("mqtt = %+v, policy = %+v", e.MQTT, e.Policy)
			}
		}},
		{"per-element terminal flow", "node: {id: n1}\nstations: [{number: \"1\"}, {number: \"2\"}]\nterminals:\n  - {machine_id: 1, stations: [\"1\"]}\n  - {machine_id: 2, flow: pre-selection, stations: [\"2\"]}\n", func(t *testing.T, e *Edge) {
			if e.Terminals[0].Flow != FlowPreAuthorization || e.Terminals[1].Flow != FlowPreSelection {
				t.Errorf("flows = %q, %q", e.Terminals[0].Flow, e.Terminals[1].Flow)
			}
		}},
		{"per-element sim defaults", "node: {id: n1}\nstations:\n  - {number: \"1\", sim: {power_kw: 22}}\n  - {number: \"2\", sim: {vehicle: absent}}\n  - {number: \"3\", sim: }\n", func(t *testing.T, e *Edge) {
			want := []Sim{
				{Vehicle: VehiclePresent, PowerKW: 22, TimeScale: 1},
				{Vehicle: VehicleAbsent, PowerKW: 7.4, TimeScale: 1},
				DefaultSim(),
			}
			for i, s := range e.Stations {
				if s.Driver != DriverSim || s.Sim == nil || *s.Sim != want[i] {
					t.Errorf("stations[%d] = %+v sim %+v, want sim %+v", i, s, s.Sim, want[i])
				}
			}
			if e.Stations[0].Sim == e.Stations[2].Sim {
				t.Error("stations share a Sim")
			}
		}},
		{"explicit empty string overrides", minimal + "mqtt: {username: \"\", password_file: \"\"}\n", func(t *testing.T, e *Edge) {
			if e.MQTT.Username != "" {
				t.Errorf("username = %q", e.MQTT.Username)
			}
		}},
		{"anchors and merge keys", "node: {id: n1}\nstations:\n  - &st {number: \"1\", sim: {power_kw: 22, time_scale: 60}}\n  - <<: *st\n    number: \"2\"\n  - <<: [{number: \"3\"}, *st]\n", func(t *testing.T, e *Edge) {
			if len(e.Stations) != 3 {
				t.Fatalf("stations = %+v", e.Stations)
			}
			for i, n := range []string{"1", "2", "3"} {
				s := e.Stations[i]
				if s.Number != n || s.Sim == nil || s.Sim.PowerKW != 22 || s.Sim.TimeScale != 60 {
					t.Errorf("stations[%d] = %+v sim %+v", i, s, s.Sim)
				}
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.check(t, mustParse(t, tt.src))
		})
	}
}

func TestTolerance(t *testing.T) {
	tests := []struct {
		name  string
		src   string
		check func(e *Edge) bool
	}{
		{"unquoted hw_serial keeps leading zero", "hw_serial: 0434334921100366", func(e *Edge) bool { return e.Terminals[0].HwSerial == "0434334921100366" }},
		{"quoted hw_serial", `hw_serial: "0434334921100366"`, func(e *Edge) bool { return e.Terminals[0].HwSerial == "0434334921100366" }},
		{"hw_serial that looks like a float", "hw_serial: 1e5", func(e *Edge) bool { return e.Terminals[0].HwSerial == "1e5" }},
		{"machine_id as integer", "machine_id: 71234996", func(e *Edge) bool { return e.Terminals[0].MachineID == 71234996 }},
		{"machine_id as string", `machine_id: "71234996"`, func(e *Edge) bool { return e.Terminals[0].MachineID == 71234996 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := "node: {id: n1}\nstations: [{number: 5}]\nterminals:\n  - stations: [5]\n    " + tt.src + "\n"
			e := mustParse(t, src)
			if e.Stations[0].Number != "5" || !e.Terminals[0].HasStation("5") {
				t.Errorf("number: 5 not read as \"5\": %+v %+v", e.Stations, e.Terminals)
			}
			if !tt.check(e) {
				t.Errorf("terminal = %+v", e.Terminals[0])
			}
		})
	}
	e := mustParse(t, minimal+"tariff: {price_per_kwh: \"0.39\", decimal_place: \"3\"}\n")
	if e.Tariff.PricePerKWh != 0.39 || e.Tariff.DecimalPlace != 3 {
		t.Errorf("quoted numbers: tariff = %+v", e.Tariff)
	}
}

func TestTerminalOf(t *testing.T) {
	e := &Edge{Terminals: []Terminal{
		{MachineID: 1, Stations: []string{"5", "6"}},
		{MachineID: 2, Stations: []string{"7"}},
	}}
	for _, tc := range []struct {
		station string
		want    int64 // MachineID, 0 for none
	}{{"5", 1}, {"6", 1}, {"7", 2}, {"8", 0}, {"", 0}} {
		got, ok := e.TerminalOf(tc.station)
		if ok != (tc.want != 0) || got.MachineID != tc.want {
			t.Errorf("TerminalOf(%q) = %d, %v; want %d", tc.station, got.MachineID, ok, tc.want)
		}
	}
}

func TestTerminalFor(t *testing.T) {
	e := &Edge{Terminals: []Terminal{
		{MachineID: 71234996, HwSerial: "0434334921100366", Stations: []string{"5"}},
		{MachineID: 0, HwSerial: "00777", Stations: []string{"6"}},
		{MachineID: 42, HwSerial: "abc1", Stations: []string{"7"}},
	}}
	tests := []struct {
		name    string
		id      int64
		serial  string
		want    int // index into e.Terminals, -1 for none
		station string
	}{
		{"machine id", 71234996, "", 0, "5"},
		{"serial as configured", 0, "0434334921100366", 0, "5"},
		{"serial without leading zero", 0, "434334921100366", 0, "5"},
		{"serial with extra zeros", 0, "000434334921100366", 0, "5"},
		{"serial only terminal", 0, "777", 1, "6"},
		{"serial case-insensitive", 0, "ABC1", 2, "7"},
		{"serial with spaces", 0, " 777 ", 1, "6"},
		{"blank serial matches nothing", 0, "   ", -1, ""},
		{"id matches, serial does not", 42, "999", 2, "7"},
		{"id wins over serial", 42, "434334921100366", 2, "7"},
		{"unknown id and serial", 5, "5", -1, ""},
		{"zero id matches nothing", 0, "", -1, ""},
		{"negative id", -1, "", -1, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := e.TerminalFor(tt.id, tt.serial)
			if tt.want < 0 {
				if ok {
					t.Errorf("TerminalFor(%d, %q) = %+v, want no match", tt.id, tt.serial, got)
				}
				return
			}
			if !ok || !reflect.DeepEqual(got, e.Terminals[tt.want]) {
				t.Errorf("TerminalFor(%d, %q) = %+v, %v; want terminals[%d]", tt.id, tt.serial, got, ok, tt.want)
			}
			if !got.HasStation(tt.station) || got.HasStation("nope") {
				t.Errorf("HasStation wrong for %+v", got)
			}
		})
	}
}

func TestTerminalConflict(t *testing.T) {
	term := Terminal{MachineID: 71234996, HwSerial: "0434334921100366"}
	tests := []struct {
		name   string
		t      Terminal
		id     int64
		serial string
		want   string
	}{
		{"both agree", term, 71234996, "0434334921100366", ""},
		{"serial without leading zero", term, 71234996, "434334921100366", ""},
		{"serial in another case", Terminal{HwSerial: "abc1"}, 0, " ABC1", ""},
		{"only the id given", term, 71234996, "", ""},
		{"only the serial given", term, 0, "434334921100366", ""},
		{"nothing given", term, 0, "", ""},
		{"blank serial is no evidence", term, 71234996, "  ", ""},
		{"other machine", term, 5, "434334921100366", "MachineId"},
		{"negative id is another machine", term, -1, "", "MachineId"},
		{"other serial", term, 71234996, "434334921100367", "HwSerial"},
		{"all-zero serial is a serial", term, 0, "000", "HwSerial"},
		{"terminal without id", Terminal{HwSerial: "0434334921100366"}, 5, "434334921100366", ""},
		{"terminal without serial", Terminal{MachineID: 7}, 7, "999", ""},
		{"id checked before serial", term, 5, "1", "MachineId"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.t.Conflict(tt.id, tt.serial); got != tt.want {
				t.Errorf("%+v.Conflict(%d, %q) = %q, want %q", tt.t, tt.id, tt.serial, got, tt.want)
			}
		})
	}
}

func TestStation(t *testing.T) {
	e := mustParse(t, "node: {id: n1}\nstations: [{number: \"5\"}, {number: \"6\", sim: {vehicle: absent}}]\n")
	s, ok := e.Station("6")
	if !ok || s.Number != "6" || s.Sim == nil || s.Sim.Vehicle != VehicleAbsent {
		t.Errorf("Station(6) = %+v, %v", s, ok)
	}
	if _, ok := e.Station("05"); ok {
		t.Error("Station(05) matched")
	}
}

func TestLoadEdge(t *testing.T) {
	dir := t.TempDir()

	missing := filepath.Join(dir, "missing.yaml")
	_, err := LoadEdge(missing)
	if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), missing) {
		t.Errorf("missing file: err = %v, want ErrNotExist naming the path", err)
	}
	if errors.Is(err, ErrInvalid) {
		t.Error("read error matches ErrInvalid")
	}

	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("node: {idd: x}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = LoadEdge(bad)
	var probs Problems
	if !errors.As(err, &probs) || len(probs) != 4 {
		t.Errorf("bad file: err = %v, want 4 problems (node.idd, node.id, stations, price)", err)
	}

	good := filepath.Join(dir, "good.yaml")
	if err := os.WriteFile(good, []byte(priced(minimal)), 0o600); err != nil {
		t.Fatal(err)
	}
	if e, err := LoadEdge(good); err != nil || e.Node.ID != "n1" {
		t.Errorf("good file: %+v, %v", e, err)
	}
}

// TestYAMLRoundTrip checks that a marshalled configuration reads back the
// same, which the daemon relies on when it stores config versions.
func TestYAMLRoundTrip(t *testing.T) {
	e, err := LoadEdge(examplePath)
	if err != nil {
		t.Fatal(err)
	}
	out, err := yaml.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	back := mustParse(t, string(out))
	if !reflect.DeepEqual(e, back) {
		t.Errorf("round trip:\n got %+v\nwant %+v\nyaml:\n%s", back, e, out)
	}

	// Plain yaml.Unmarshal (not strict) also understands Duration.
	var plain Edge
	if err := yaml.Unmarshal(out, &plain); err != nil || plain.Policy.PlugTimeout != Duration(2*time.Minute) {
		t.Errorf("yaml.Unmarshal: %+v, %v", plain.Policy, err)
	}
}

func TestProblemString(t *testing.T) {
	tests := []struct {
		p    Problem
		want string
	}{
		{Problem{Path: "node.id", Reason: "required"}, "node.id: required"},
		{Problem{Path: "stations[1].number", Line: 12, Reason: `duplicate station number "5"`}, `line 12: stations[1].number: duplicate station number "5"`},
		{Problem{Line: 3, Reason: "invalid YAML: x"}, "line 3: invalid YAML: x"},
	}
	for _, tt := range tests {
		if got := tt.p.String(); got != tt.want {
			t.Errorf("String() = %q, want %q", got, tt.want)
		}
	}
	ps := Problems{tests[0].p, tests[1].p}
	if got, want := ps.Error(), tests[0].want+"\n"+tests[1].want; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}

func TestValidateProgrammatic(t *testing.T) {
	// Validate must hold on its own for configurations built in code (the
	// demo command does that), including a sim station without a Sim.
	e := Default()
	e.Node.ID = "demo"
	e.Stations = []Station{{Number: "1", Driver: DriverSim}}
	e.Tariff.PricePerKWh = 0.39
	if probs := e.Validate(); probs != nil {
		t.Errorf("Validate = %v", probs)
	}
	e.Tariff.PricePerKWh = nan()
	e.Policy.MinEnergyWh = inf()
	e.Stations[0].Sim = &Sim{Vehicle: VehiclePresent, PowerKW: nan(), TimeScale: 1}
	got := []string{}
	for _, p := range e.Validate() {
		got = append(got, p.String())
	}
	want := []string{
		"stations[0].sim.power_kw: must be > 0 and <= 350, got NaN",
		"policy.min_energy_wh: must be >= 0, got +Inf",
		"tariff.price_per_kwh: must be >= 0, got NaN",
	}
	if !slices.Equal(got, want) {
		t.Errorf("Validate =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestTariffExact: the tariff a session records is the decimals the
// operator wrote, in millionths, never the doubles nearest to them.
func TestTariffExact(t *testing.T) {
	tests := []struct {
		price, fee float64
		wantPrice  int64
		wantFee    int64
		err        string
	}{
		{0.39, 0, 390000, 0, ""},
		{0.3925, 0.5, 392500, 500000, ""},
		{45, 100, 45_000_000, 100_000_000, ""},
		{2.675, 1.005, 2675000, 1005000, ""}, // both below their decimal as doubles
		{999999999.999999, 0.000001, 999999999999999, 1, ""},
		{0.1234567, 0, 0, 0, "tariff.price_per_kwh"},
		{0.39, -1, 0, 0, "tariff.session_fee"},
		{nan(), 0, 0, 0, "tariff.price_per_kwh"},
	}
	for _, tt := range tests {
		got, err := Tariff{Currency: "EUR", DecimalPlace: 2, PricePerKWh: tt.price, SessionFee: tt.fee}.Exact()
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("Exact(%v, %v) = %+v, %v; want an error about %s", tt.price, tt.fee, got, err, tt.err)
			}
			continue
		}
		if err != nil || got.PricePerKWhMicro != tt.wantPrice || got.SessionFeeMicro != tt.wantFee || got.Currency != "EUR" || got.DecimalPlace != 2 {
			t.Errorf("Exact(%v, %v) = %+v, %v; want price %d fee %d", tt.price, tt.fee, got, err, tt.wantPrice, tt.wantFee)
		}
	}
}

// The packaged template (/etc/sitelink/sitelink.yaml) is refused until
// every CHANGE-ME is set, saying so first and then naming each key; with
// the values filled in it is a valid real-hardware site.
func TestPackagedTemplate(t *testing.T) {
	const path = "../../configs/sitelink.yaml"
	_, err := LoadEdge(path)
	var probs Problems
	if !errors.As(err, &probs) || len(probs) == 0 {
		t.Fatalf("LoadEdge(template) = %v, want Problems", err)
	}
	if p := probs[0]; p.Line != 0 || p.File != path || !strings.Contains(p.Reason, "packaged template, not yet edited") || !strings.Contains(p.Reason, "9 values marked CHANGE-ME") {
		t.Errorf("first problem %q, want the template's summary", p)
	}
	var keys []string
	for _, p := range probs[1:] {
		if !strings.HasPrefix(p.Reason, "not set yet: ") || p.Line == 0 {
			t.Errorf("problem %q: want only placeholders, with their lines", p)
		}
		keys = append(keys, p.Path)
	}
	want := []string{"node.id", "mqtt.broker", "terminals[0].machine_id", "terminals[0].hw_serial", "buses[0].port",
		"stations[0].gpio.contactor.pin", "stations[0].meter.profile", "tariff.currency", "tariff.price_per_kwh"}
	if !slices.Equal(keys, want) {
		t.Errorf("placeholders at %v, want %v", keys, want)
	}

	// Filled in, it is a site: one GPIO station billed by an SDM120.
	fill := map[string]string{
		"id": "site-0042", "broker": "mqtt.example.com", "machine_id": "71234001", "hw_serial": "0434334921100366",
		"port": "usb-FTDI_USB-RS485-if00-port0", "contactor": "GPIO17", "meter": "sdm120", "currency": "EUR", "price_per_kwh": "0.39",
	}
	src := mustRead(t, path)
	lines := strings.Split(src, "\n")
	for i, l := range lines {
		if !strings.Contains(l, Placeholder) || strings.HasPrefix(strings.TrimSpace(l), "#") {
			continue
		}
		key := strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(l), "- "))
		key, _, _ = strings.Cut(key, ":")
		v, ok := fill[key]
		if !ok {
			t.Fatalf("no value for line %d: %s", i+1, l)
		}
		lines[i] = strings.Replace(l, Placeholder, v, 1)
	}
	e, err := ParseEdge([]byte(strings.Join(lines, "\n")))
	if err != nil {
		t.Fatalf("filled-in template: %v", err)
	}
	if e.Node.ID != "site-0042" || e.Stations[0].Driver != DriverGPIO || e.Stations[0].Meter.Profile != ProfileSDM120 || e.MQTT.TLS.CertFile == "" {
		t.Errorf("filled-in template: %+v", e)
	}
}
