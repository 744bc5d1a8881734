package config

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

// layersFile is the local file under the desired configs of the layer tests.
// The line numbers matter: problems in the file carry them.
const layersFile = `node: {id: site-1}
terminals:
  - machine_id: 71234996
    stations: ["5", "6"]
stations:
  - number: "5"
    sim: {power_kw: 7.4}
  - number: "6"
    sim: {vehicle: absent, power_kw: 11}
policy: {min_energy_wh: 5}
tariff: {price_per_kwh: 0.39}
`

// desired wraps a config object into a desired document and parses it, so
// that the layer tests go through ParseDesired as the daemon does.
func desired(t testing.TB, version int64, cfg string) *Desired {
	t.Helper()
	d, err := ParseDesired(fmt.Appendf(nil, `{"version":%d,"config":%s}`, version, cfg))
	if err != nil {
		t.Fatalf("ParseDesired(%s): %v", cfg, err)
	}
	return &d
}

// settingsByKey indexes Settings by key, failing on a key listed twice.
func settingsByKey(t testing.TB, e *Edge, prov Provenance) map[string]Setting {
	t.Helper()
	m := map[string]Setting{}
	for _, s := range Settings(e, prov) {
		if _, dup := m[s.Key]; dup {
			t.Errorf("Settings lists %s twice", s.Key)
		}
		m[s.Key] = s
	}
	return m
}

// checkProblems compares err with want: same paths and lines in the same
// order, and each reason containing the wanted one.
func checkProblems(t *testing.T, err error, want []Problem) {
	t.Helper()
	var got Problems
	if !errors.As(err, &got) {
		t.Fatalf("error %T %v is not Problems", err, err)
	}
	if !errors.Is(err, ErrInvalid) {
		t.Errorf("errors.Is(err, ErrInvalid) = false")
	}
	ok := len(got) == len(want)
	for i := 0; ok && i < len(want); i++ {
		ok = got[i].Path == want[i].Path && got[i].Line == want[i].Line &&
			strings.Contains(got[i].Reason, want[i].Reason)
	}
	if !ok {
		t.Errorf("problems:\n%s\nwant (reason as a substring):\n%s", fmtProblems(got), fmtProblems(want))
	}
}

func fmtProblems(ps []Problem) string {
	var b strings.Builder
	for _, p := range ps {
		fmt.Fprintf(&b, "  %q line %d: %s\n", p.Path, p.Line, p.Reason)
	}
	return b.String()
}

func TestParseDesired(t *testing.T) {
	// A valid document of exactly MaxDesired bytes: trailing blanks are
	// valid JSON.
	const small = `{"version":1,"config":{}}`
	atLimit := small + strings.Repeat(" ", MaxDesired-len(small))
	tests := []struct {
		name        string
		payload     string
		wantVersion int64
		wantConfig  string
		wantErr     string // substring; "" means success
	}{
		{"valid", `{"version":3,"config":{"tariff":{"price_per_kwh":0.4}}}`, 3, `{"tariff":{"price_per_kwh":0.4}}`, ""},
		{"keys in any order", `{"config":{},"version":7}`, 7, `{}`, ""},
		{"largest int64 version", `{"version":9223372036854775807,"config":{}}`, 9223372036854775807, `{}`, ""},
		{"exactly MaxDesired bytes", atLimit, 1, `{}`, ""},

		{"not JSON", `{"version":1,`, 0, "", "not a JSON object"},
		{"a list", `[{"version":1,"config":{}}]`, 0, "", "not a JSON object"},
		{"a string", `"version"`, 0, "", "not a JSON object"},
		{"empty", ``, 0, "", "not a JSON object"},
		{"null", `null`, 0, "", "version: required"},
		{"empty object", `{}`, 0, "", "version: required"},
		{"missing version", `{"config":{}}`, 0, "", "version: required"},
		{"version 0", `{"version":0,"config":{}}`, 0, "", "version: must be a positive integer"},
		{"version -1", `{"version":-1,"config":{}}`, 0, "", "version: must be a positive integer"},
		{"version 1.5", `{"version":1.5,"config":{}}`, 0, "", "version: must be a positive integer"},
		{"version 1e2", `{"version":1e2,"config":{}}`, 0, "", "version: must be a positive integer"},
		{"version string", `{"version":"3","config":{}}`, 0, "", `version: must be a positive integer, got "\"3\""`},
		{"version null", `{"version":null,"config":{}}`, 0, "", "version: must be a positive integer"},
		{"version overflows", `{"version":9223372036854775808,"config":{}}`, 0, "", "version: must be a positive integer"},
		{"unknown key", `{"version":1,"config":{},"note":"x"}`, 0, "", `"note": unknown key`},
		{"missing config", `{"version":1}`, 0, "", "config: required, an object"},
		{"config null", `{"version":1,"config":null}`, 0, "", "config: required, an object"},
		{"config list", `{"version":1,"config":[]}`, 0, "", "config: required, an object"},
		{"config string", `{"version":1,"config":"{}"}`, 0, "", "config: required, an object"},
		{"config number", `{"version":1,"config":1}`, 0, "", "config: required, an object"},
		{"too large", atLimit + " ", 0, "", fmt.Sprintf("document too large (%d bytes, at most %d)", MaxDesired+1, MaxDesired)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := ParseDesired([]byte(tt.payload))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("err = %v", err)
			}
			if d.Version != tt.wantVersion || string(d.Config) != tt.wantConfig {
				t.Errorf("got version %d config %s, want %d %s", d.Version, d.Config, tt.wantVersion, tt.wantConfig)
			}
		})
	}
}

func TestParseLayers(t *testing.T) {
	type want struct {
		path   string
		value  string // fmt.Sprint of the Settings value
		source string
	}
	tests := []struct {
		name        string
		file        string // "" means layersFile
		group, node string // config objects; "" means no such layer
		want        []want
		wantProbs   []Problem // Reason is a substring
	}{
		{
			name: "file only",
			want: []want{
				{"node.id", "site-1", SourceFile},
				{"terminals[0].stations", "[5 6]", SourceFile},
				{"stations[1].sim.power_kw", "11", SourceFile},
				{"tariff.price_per_kwh", "0.39", SourceFile},
				{"mqtt.keepalive", "30s", SourceDefault},
				{"mqtt.broker", "tcp://127.0.0.1:1883", SourceDefault},
				// Left out of blocks the file has: still defaults.
				{"tariff.currency", "EUR", SourceDefault},
				{"policy.plug_timeout", "2m0s", SourceDefault},
				{"stations[0].max_power_kw", "22", SourceFile}, // an element's defaults are the list's
			},
		},
		{
			name:  "group over file",
			group: `{"policy":{"plug_timeout":"60s"},"mqtt":{"keepalive":"10s"}}`,
			want: []want{
				{"policy.plug_timeout", "1m0s", SourceGroup},
				{"mqtt.keepalive", "10s", SourceGroup},
				{"mqtt.broker", "tcp://127.0.0.1:1883", SourceDefault},
				{"node.id", "site-1", SourceFile},
				{"tariff.price_per_kwh", "0.39", SourceFile},
			},
		},
		{
			// A mapping merges key by key: what the file set in it
			// stays the file's.
			name:  "group key beside a file key in one mapping",
			group: `{"policy":{"plug_timeout":"60s"},"tariff":{"session_fee":0.5}}`,
			want: []want{
				{"policy.plug_timeout", "1m0s", SourceGroup},
				{"policy.min_energy_wh", "5", SourceFile},
				{"tariff.session_fee", "0.5", SourceGroup},
				{"tariff.price_per_kwh", "0.39", SourceFile},
				{"tariff.currency", "EUR", SourceDefault},
			},
		},
		{
			name:  "node over group over file",
			group: `{"policy":{"plug_timeout":"60s"},"tariff":{"price_per_kwh":0.45}}`,
			node:  `{"tariff":{"price_per_kwh":0.5}}`,
			want: []want{
				{"tariff.price_per_kwh", "0.5", SourceNode},
				{"policy.plug_timeout", "1m0s", SourceGroup},
				{"node.id", "site-1", SourceFile},
				{"mqtt.keepalive", "30s", SourceDefault},
			},
		},
		{
			// The node's list replaces the file's; its elements start
			// from the defaults, not from the file's elements.
			name: "node list replaces file list",
			node: `{"stations":[{"number":"5","sim":{"power_kw":3.7}},{"number":"6"},{"number":"7"}],` +
				`"terminals":[{"machine_id":71234996,"stations":["5","6","7"]}]}`,
			want: []want{
				{"stations[0].sim.power_kw", "3.7", SourceNode},
				{"stations[0].sim.vehicle", "present", SourceNode},
				{"stations[1].sim.vehicle", "present", SourceNode},
				{"stations[1].sim.power_kw", "7.4", SourceNode},
				{"stations[2].number", "7", SourceNode},
				{"terminals[0].stations", "[5 6 7]", SourceNode},
				{"terminals[0].flow", FlowPreAuthorization, SourceNode},
				{"node.id", "site-1", SourceFile},
			},
		},
		{
			name:  "group list, node scalar",
			group: `{"stations":[{"number":"5"},{"number":"6","sim":{"vehicle":"absent"}}]}`,
			node:  `{"policy":{"plug_timeout":"90s"}}`,
			want: []want{
				{"stations[1].sim.vehicle", "absent", SourceGroup},
				{"stations[1].sim.power_kw", "7.4", SourceGroup}, // not the file's 11
				{"policy.plug_timeout", "1m30s", SourceNode},
				{"terminals[0].stations", "[5 6]", SourceFile},
			},
		},
		{
			name:  "node list over group list",
			group: `{"stations":[{"number":"5"},{"number":"6","max_power_kw":11}]}`,
			node:  `{"stations":[{"number":"6"},{"number":"5"}]}`,
			want: []want{
				{"stations[0].number", "6", SourceNode},
				{"stations[0].max_power_kw", "22", SourceNode},
				{"stations[1].number", "5", SourceNode},
			},
		},
		{
			name:  "null keeps the value below",
			group: `{"stations":null,"tariff":{"price_per_kwh":null}}`,
			want: []want{
				{"stations[1].sim.power_kw", "11", SourceFile},
				{"tariff.price_per_kwh", "0.39", SourceFile},
			},
		},
		{
			// A JSON encoder may escape '/' (PHP does by default).
			name:  "JSON escapes in strings",
			group: `{"buses":[{"name":"rs485-1","port":"\/dev\/ttyUSB0"}],"tariff":{"currency":"\u0043HF"}}`,
			want: []want{
				{"buses[0].port", "/dev/ttyUSB0", SourceGroup},
				{"tariff.currency", "CHF", SourceGroup},
			},
		},

		// Problems.
		{
			name:      "invalid value in node config",
			node:      `{"tariff":{"price_per_kwh":-1}}`,
			wantProbs: []Problem{{Path: "tariff.price_per_kwh", Line: 0, Reason: "must be >= 0, got -1"}},
		},
		{
			name:      "undecodable value in group config",
			group:     `{"policy":{"plug_timeout":120}}`,
			wantProbs: []Problem{{Path: "policy.plug_timeout", Line: 0, Reason: `invalid duration "120": add a unit`}},
		},
		{
			name:      "unknown key in group config",
			group:     `{"tarif":{"price_per_kwh":1}}`,
			wantProbs: []Problem{{Path: "tarif", Line: 0, Reason: "unknown key"}},
		},
		{
			name:      "unknown nested key in node config",
			node:      `{"policy":{"plug_timout":"60s"}}`,
			wantProbs: []Problem{{Path: "policy.plug_timout", Line: 0, Reason: "unknown key"}},
		},
		{
			// The refused values never reach the configuration: the
			// invalid node id and broker are not reported, only refused,
			// and the rest of the config is still checked.
			name:  "file-only keys refused, rest still checked",
			group: `{"node":{"id":"bad/id"},"mqtt":{"broker":"nonsense","tls":{"ca_file":"/etc/ca.pem"},"keepalive":"10s"},"tariff":{"price_per_kwh":-1}}`,
			wantProbs: []Problem{
				{Path: "node", Reason: "set only in the local file, never over MQTT (it identifies this controller)"},
				{Path: "mqtt.broker", Reason: "set only in the local file, never over MQTT"},
				{Path: "mqtt.tls", Reason: "set only in the local file, never over MQTT"},
				{Path: "tariff.price_per_kwh", Reason: "must be >= 0"},
			},
		},
		{
			name: "node config removes a station a terminal names",
			node: `{"stations":[{"number":"5"}]}`,
			// The terminal is the file's: the problem is at its line.
			wantProbs: []Problem{{Path: "terminals[0].stations[1]", Line: 4, Reason: `unknown station "6"`}},
		},
		{
			name:  "problems in the file keep their lines",
			file:  strings.Replace(layersFile, "price_per_kwh: 0.39", "price_per_kwh: -0.39", 1),
			group: `{"policy":{"plug_timeout":"-1s"}}`,
			wantProbs: []Problem{
				{Path: "policy.plug_timeout", Line: 0, Reason: "must be > 0"},
				{Path: "tariff.price_per_kwh", Line: 11, Reason: "must be >= 0"},
			},
		},
		{
			name:      "file syntax error",
			file:      "node: {id: site-1\n",
			group:     `{}`,
			wantProbs: []Problem{{Line: 1, Reason: "invalid YAML: did not find expected ',' or '}'"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := Layers{File: []byte(tt.file)}
			if tt.file == "" {
				l.File = []byte(layersFile)
			}
			if tt.group != "" {
				l.Group = desired(t, 1, tt.group)
			}
			if tt.node != "" {
				l.Node = desired(t, 2, tt.node)
			}
			e, prov, err := ParseLayers(l)
			if tt.wantProbs != nil {
				if err == nil {
					t.Fatalf("no error; want problems:\n%s", fmtProblems(tt.wantProbs))
				}
				if e != nil || prov != nil {
					t.Errorf("ParseLayers returned a config or provenance along with %v", err)
				}
				checkProblems(t, err, tt.wantProbs)
				return
			}
			if err != nil {
				t.Fatalf("ParseLayers: %v", err)
			}
			if probs := e.Validate(); probs != nil {
				t.Errorf("result does not validate: %v", probs)
			}
			settings := settingsByKey(t, e, prov)
			for _, w := range tt.want {
				s, ok := settings[w.path]
				if !ok {
					t.Errorf("%s: not in Settings", w.path)
					continue
				}
				if got := fmt.Sprint(s.Value); got != w.value {
					t.Errorf("%s = %s, want %s", w.path, got, w.value)
				}
				if got := prov.Source(w.path); got != w.source {
					t.Errorf("%s: source %s, want %s", w.path, got, w.source)
				}
			}
		})
	}
}

// TestParseLayersFileOnly refuses each key that only the local file may
// set, from either desired config, even with the value the file has.
func TestParseLayersFileOnly(t *testing.T) {
	tests := []struct {
		cfg, path string
	}{
		{`{"node":{"id":"site-1"}}`, "node"},
		{`{"node":{"metrics_listen":"127.0.0.1:9100"}}`, "node"},
		{`{"node":{}}`, "node"},
		{`{"mqtt":{"broker":"tcp://127.0.0.1:1883"}}`, "mqtt.broker"},
		{`{"mqtt":{"username":"u"}}`, "mqtt.username"},
		{`{"mqtt":{"password_file":"/etc/sitelink/mqtt.pw"}}`, "mqtt.password_file"},
		{`{"mqtt":{"tls":{"ca_file":"/etc/ca.pem"}}}`, "mqtt.tls"},
		{`{"mqtt":{"tls":{}}}`, "mqtt.tls"},
		{`{"mqtt":{"topic_prefix":"sitelink/v1"}}`, "mqtt.topic_prefix"},
		{`{"mqtt":{"group":"g2"}}`, "mqtt.group"},
		{`{"storage":{"retention":"30d"}}`, "storage"},
	}
	for _, tt := range tests {
		for _, layer := range []string{SourceGroup, SourceNode} {
			t.Run(layer+" "+tt.cfg, func(t *testing.T) {
				l := Layers{File: []byte(layersFile)}
				if layer == SourceGroup {
					l.Group = desired(t, 1, tt.cfg)
				} else {
					l.Node = desired(t, 1, tt.cfg)
				}
				e, _, err := ParseLayers(l)
				if err == nil {
					t.Fatalf("accepted; node %+v mqtt %+v", e.Node, e.MQTT)
				}
				checkProblems(t, err, []Problem{{Path: tt.path, Reason: "set only in the local file, never over MQTT"}})
			})
		}
	}
}

func TestParseLayersFileOnlyAsParseEdge(t *testing.T) {
	want, err := ParseEdge([]byte(layersFile))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range []Layers{
		{File: []byte(layersFile)},
		{File: []byte(layersFile), Group: desired(t, 1, `{}`), Node: desired(t, 2, `{}`)},
	} {
		got, _, err := ParseLayers(l)
		if err != nil {
			t.Fatalf("ParseLayers: %v", err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("ParseLayers = %+v\nParseEdge   %+v", got, want)
		}
	}
}

func TestProvenanceSource(t *testing.T) {
	p := Provenance{
		"stations":             SourceNode,
		"tariff.price_per_kwh": SourceGroup,
		"node":                 SourceFile,
	}
	tests := []struct{ path, want string }{
		{"stations", SourceNode},
		{"stations[3].sim.power_kw", SourceNode},
		{"tariff.price_per_kwh", SourceGroup},
		{"tariff.currency", SourceDefault},
		{"tariff", SourceDefault},
		{"node.id", SourceFile},
		{"mqtt.tls.ca_file", SourceDefault},
		{"", SourceDefault},
	}
	for _, tt := range tests {
		if got := p.Source(tt.path); got != tt.want {
			t.Errorf("Source(%q) = %s, want %s", tt.path, got, tt.want)
		}
	}
	if got := Provenance(nil).Source("node.id"); got != SourceDefault {
		t.Errorf("nil Provenance: Source = %s, want default", got)
	}
}

// leaves flattens a YAML-marshalled configuration into its leaf keys and
// values, the way Settings names them: a list of scalars is one leaf, a
// null (nil pointer) is none.
func leaves(prefix string, v any, out map[string]string) {
	switch v := v.(type) {
	case nil:
	case map[string]any:
		for k, c := range v {
			leaves(keyPath(prefix, k), c, out)
		}
	case []any:
		if len(v) > 0 {
			if _, ok := v[0].(map[string]any); !ok {
				out[prefix] = fmt.Sprint(v)
				return
			}
		}
		for i, c := range v {
			leaves(fmt.Sprintf("%s[%d]", prefix, i), c, out)
		}
	default:
		out[prefix] = fmt.Sprint(v)
	}
}

func TestSettings(t *testing.T) {
	file := hwSample + `terminals: [{machine_id: 7, stations: ["1", "2"]}]
tariff: {price_per_kwh: 0.39}
`
	e, prov, err := ParseLayers(Layers{
		File:  []byte(file),
		Group: desired(t, 1, `{"policy":{"plug_timeout":"90s"}}`),
		Node:  desired(t, 2, `{"tariff":{"session_fee":0.25}}`),
	})
	if err != nil {
		t.Fatalf("ParseLayers: %v", err)
	}
	settings := Settings(e, prov)

	// Every leaf once, with its value: compared with the marshalled
	// configuration, an independent walk of the same structs.
	out, err := yaml.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	var tree map[string]any
	if err := yaml.Unmarshal(out, &tree); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{}
	leaves("", tree, want)
	got := map[string]string{}
	for _, s := range settings {
		if _, dup := got[s.Key]; dup {
			t.Errorf("%s listed twice", s.Key)
		}
		got[s.Key] = fmt.Sprint(s.Value)
	}
	for k, v := range want {
		if g, ok := got[k]; !ok {
			t.Errorf("%s missing from Settings", k)
		} else if g != v {
			t.Errorf("%s = %s, want %s", k, g, v)
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("Settings has %s, not a leaf of the configuration", k)
		}
	}

	// In the order of the structs' fields.
	wantFirst := []string{"node.id", "node.data_dir", "node.api_socket", "node.metrics_listen", "mqtt.broker"}
	if len(settings) < len(wantFirst) {
		t.Fatalf("only %d settings", len(settings))
	}
	for i, k := range wantFirst {
		if settings[i].Key != k {
			t.Errorf("settings[%d] = %s, want %s", i, settings[i].Key, k)
		}
	}
	if last := settings[len(settings)-1].Key; last != "tariff.pos_display" {
		t.Errorf("last setting %s, want tariff.pos_display", last)
	}

	// Values as an operator reads them, and their sources.
	by := map[string]Setting{}
	for _, s := range settings {
		by[s.Key] = s
	}
	checks := []struct {
		key    string
		value  any
		source string
	}{
		{"node.id", "n1", SourceFile},
		{"mqtt.keepalive", "30s", SourceDefault},
		{"mqtt.reconnect_max", "1m0s", SourceDefault},
		{"policy.plug_timeout", "1m30s", SourceGroup},
		{"tariff.session_fee", 0.25, SourceNode},
		{"tariff.price_per_kwh", 0.39, SourceFile},
		{"buses[0].timeout", "500ms", SourceFile},
		{"stations[0].gpio.contactor_feedback.debounce", "20ms", SourceFile},
		{"stations[1].modbus.unit", 10, SourceFile},
		{"stations[1].modbus.state.address", uint16(0), SourceFile},
		{"stations[1].modbus.enable.coil", true, SourceFile},
		{"terminals[0].machine_id", int64(7), SourceFile},
		{"terminals[0].stations", []any{"1", "2"}, SourceFile},
	}
	for _, c := range checks {
		s, ok := by[c.key]
		if !ok {
			t.Errorf("%s missing", c.key)
			continue
		}
		if !reflect.DeepEqual(s.Value, c.value) {
			t.Errorf("%s = %#v, want %#v", c.key, s.Value, c.value)
		}
		if s.Source != c.source {
			t.Errorf("%s: source %s, want %s", c.key, s.Source, c.source)
		}
	}
	for _, k := range []string{"stations[0].modbus", "stations[0].sim", "stations[1].gpio.contactor"} {
		for _, s := range settings {
			if s.Key == k || strings.HasPrefix(s.Key, k+".") {
				t.Errorf("Settings has %s under the unset %s", s.Key, k)
			}
		}
	}

	// Default durations too.
	def, prov, err := ParseLayers(Layers{File: []byte(priced(minimal))})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range Settings(def, prov) {
		if s.Key == "policy.plug_timeout" && (s.Value != "2m0s" || s.Source != SourceDefault) {
			t.Errorf("default plug_timeout = %#v from %s, want \"2m0s\" from default", s.Value, s.Source)
		}
	}
}

// diffFile has sim stations and hardware stations on two buses.
const diffFile = `node: {id: site-1}
terminals: [{machine_id: 1, stations: ["5", "6"]}]
buses:
  - {name: rs485-1, port: /dev/ttyUSB0}
  - {name: rs485-2, port: /dev/ttyUSB1}
stations:
  - {number: "5", sim: {power_kw: 7.4}}
  - {number: "6"}
  - number: "1"
    driver: gpio
    gpio: {contactor: {pin: GPIO17}}
    meter: {bus: rs485-1, unit: 1, profile: sdm630}
  - number: "2"
    driver: modbus
    modbus: {bus: rs485-1, unit: 10, state: {function: 4}}
    meter: {bus: rs485-1, unit: 2, profile: sdm120}
  - number: "3"
    driver: modbus
    modbus: {bus: rs485-2, unit: 1, state: {function: 4}, energy: {function: 4, address: 0x0156}}
`

func TestDiff(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(e *Edge)
		want   Change
	}{
		{"no change", func(*Edge) {}, Change{}},
		{"mqtt keepalive", func(e *Edge) { e.MQTT.KeepAlive = Duration(10 * time.Second) }, Change{MQTT: true}},
		{"mqtt broker", func(e *Edge) { e.MQTT.Broker = "tcp://10.0.0.1:1883" }, Change{MQTT: true}},
		{"mqtt tls", func(e *Edge) {
			e.MQTT.Broker = "ssl://127.0.0.1:8883"
			e.MQTT.TLS.ServerName = "broker"
		}, Change{MQTT: true}},
		{"node.id", func(e *Edge) { e.Node.ID = "site-2" }, Change{Restart: []string{"node.id"}}},
		{"node.metrics_listen", func(e *Edge) { e.Node.MetricsListen = "127.0.0.1:9100" }, Change{Restart: []string{"node.metrics_listen"}}},
		{"data_dir and api_socket", func(e *Edge) {
			e.Node.DataDir = "/srv/sitelink"
			e.Node.APISocket = "/run/sl.sock"
		}, Change{Restart: []string{"node.data_dir", "node.api_socket"}}},
		{"topic_prefix", func(e *Edge) { e.MQTT.TopicPrefix = "fleet/v2" }, Change{MQTT: true, Restart: []string{"mqtt.topic_prefix"}}},
		{"mqtt group", func(e *Edge) { e.MQTT.Group = "g2" }, Change{MQTT: true, Restart: []string{"mqtt.group"}}},
		{"sim power of station 5", func(e *Edge) { e.Stations[0].Sim.PowerKW = 11 }, Change{Stations: []string{"5"}}},
		{"max power of station 6", func(e *Edge) { e.Stations[1].MaxPowerKW = 11 }, Change{Stations: []string{"6"}}},
		{"gpio pin of station 1", func(e *Edge) { e.Stations[2].GPIO.Contactor.Pin = "GPIO18" }, Change{Stations: []string{"1"}}},
		{"modbus unit of station 2", func(e *Edge) { e.Stations[3].Modbus.Unit = 11 }, Change{Stations: []string{"2"}}},
		{"bus rs485-1", func(e *Edge) { e.Buses[0].Baud = 19200 }, Change{Stations: []string{"1", "2"}}},
		{"bus rs485-2", func(e *Edge) { e.Buses[1].Gap = Duration(20 * time.Millisecond) }, Change{Stations: []string{"3"}}},
		{"bus order", func(e *Edge) { e.Buses[0], e.Buses[1] = e.Buses[1], e.Buses[0] }, Change{}},
		{"contactor timeout", func(e *Edge) { e.Policy.ContactorTimeout = Duration(3 * time.Second) }, Change{Stations: []string{"2", "3"}, Other: true}},
		{"plug timeout", func(e *Edge) { e.Policy.PlugTimeout = Duration(time.Minute) }, Change{Other: true}},
		{"tariff", func(e *Edge) { e.Tariff.PricePerKWh = 0.45 }, Change{Other: true}},
		{"storage retention", func(e *Edge) { e.Storage.Retention = Duration(30 * 24 * time.Hour) }, Change{Other: true}},
		{"terminal flow", func(e *Edge) { e.Terminals[0].Flow = FlowPreSelection }, Change{Other: true}},
		{"add station", func(e *Edge) {
			sim := DefaultSim()
			e.Stations = append(e.Stations, Station{Number: "7", Driver: DriverSim, Sim: &sim, MaxPowerKW: DefaultMaxPowerKW})
		}, Change{Stations: []string{"7"}, Other: true}},
		{"remove station", func(e *Edge) {
			e.Stations = append(e.Stations[:1:1], e.Stations[2:]...)
			e.Terminals[0].Stations = []string{"5"}
		}, Change{Stations: []string{"6"}, Other: true}},
		{"renumber station", func(e *Edge) {
			e.Stations[1].Number = "8"
			e.Terminals[0].Stations = []string{"5", "8"}
		}, Change{Stations: []string{"6", "8"}, Other: true}},
		{"reorder stations", func(e *Edge) { e.Stations[0], e.Stations[1] = e.Stations[1], e.Stations[0] }, Change{Other: true}},
		{"several at once", func(e *Edge) {
			e.MQTT.KeepAlive = Duration(time.Minute)
			e.Node.ID = "site-2"
			e.Stations[4].Modbus.Interval = Duration(2 * time.Second)
			e.Stations[1].Sim.Vehicle = VehicleAbsent
			e.Tariff.SessionFee = 1
		}, Change{MQTT: true, Restart: []string{"node.id"}, Stations: []string{"3", "6"}, Other: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			old := mustParse(t, diffFile)
			next := mustParse(t, diffFile)
			tt.mutate(next)
			if probs := next.Validate(); probs != nil {
				t.Fatalf("mutated config does not validate (Diff wants valid ones): %v", probs)
			}
			got := Diff(old, next)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Diff = %+v, want %+v", got, tt.want)
			}
			if got.None() != reflect.DeepEqual(tt.want, Change{}) {
				t.Errorf("None() = %v for %+v", got.None(), got)
			}
			// Going back touches the same stations and keys.
			back := Diff(next, old)
			if !reflect.DeepEqual(back, tt.want) {
				t.Errorf("reverse Diff = %+v, want %+v", back, tt.want)
			}
		})
	}
}

func TestNoneChange(t *testing.T) {
	tests := []struct {
		c    Change
		want bool
	}{
		{Change{}, true},
		{Change{Restart: []string{}, Stations: []string{}}, true},
		{Change{MQTT: true}, false},
		{Change{Restart: []string{"node.id"}}, false},
		{Change{Stations: []string{"5"}}, false},
		{Change{Other: true}, false},
	}
	for _, tt := range tests {
		if got := tt.c.None(); got != tt.want {
			t.Errorf("%+v.None() = %v, want %v", tt.c, got, tt.want)
		}
	}
}

func TestMetricsListen(t *testing.T) {
	tests := []struct {
		listen string
		want   []string
	}{
		{"", nil},
		{"127.0.0.1:9100", nil},
		{":9100", nil},
		{"[::1]:9100", nil},
		{"localhost", []string{`node.metrics_listen: want host:port such as ":8080" or "127.0.0.1:8080", got "localhost"`}},
		{"127.0.0.1:0", []string{`node.metrics_listen: invalid port "0" (want 1 to 65535)`}},
		{"127.0.0.1:http", []string{`node.metrics_listen: invalid port "http" (want 1 to 65535)`}},
		{"127.0.0.1:65536", []string{`node.metrics_listen: invalid port "65536" (want 1 to 65535)`}},
	}
	for _, tt := range tests {
		src := fmt.Sprintf("node: {id: n1, metrics_listen: %q}\nstations: [{number: \"1\"}]\n", tt.listen)
		if got := problemsOf(t, src); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("metrics_listen %q: problems %q, want %q", tt.listen, got, tt.want)
		}
	}
	e := mustParse(t, "node: {id: n1, metrics_listen: \"127.0.0.1:9100\"}\nstations: [{number: \"1\"}]\n")
	if e.Node.MetricsListen != "127.0.0.1:9100" {
		t.Errorf("MetricsListen = %q", e.Node.MetricsListen)
	}
}

// fuzzLayersFile sets every key a desired config must not change.
const fuzzLayersFile = `node: {id: site-1, data_dir: /srv/sitelink, api_socket: /run/sl.sock, metrics_listen: "127.0.0.1:9100"}
mqtt:
  broker: ssl://broker.example:8883
  topic_prefix: fleet/v1
  group: g1
  username: site-1
  password_file: /etc/sitelink/mqtt.pw
  tls: {ca_file: /etc/sitelink/ca.pem, server_name: broker}
terminals: [{machine_id: 71234996, stations: ["5", "6"]}]
stations:
  - {number: "5", sim: {power_kw: 7.4}}
  - {number: "6", sim: {vehicle: absent}}
tariff: {price_per_kwh: 0.39}
`

// FuzzParseLayers feeds arbitrary desired payloads through ParseDesired and
// ParseLayers: no panic, an accepted result is valid, and nothing from the
// network changes what only the file may set.
func FuzzParseLayers(f *testing.F) {
	for _, seed := range []string{
		`{"version":1,"config":{}}`,
		`{"version":2,"config":{"policy":{"plug_timeout":"60s"},"tariff":{"price_per_kwh":0.45}}}`,
		`{"version":3,"config":{"stations":[{"number":"5"},{"number":"6","sim":{"power_kw":11}},{"number":"7"}],"terminals":[{"machine_id":1,"stations":["5","6","7"]}]}}`,
		`{"version":4,"config":{"mqtt":{"keepalive":"10s","reconnect_max":"2m"}}}`,
		`{"version":5,"config":{"node":{"id":"evil"},"mqtt":{"broker":"tcp://evil:1883","tls":{"ca_file":"/x"}}}}`,
		`{"version":6,"config":{"mqtt":{"topic_prefix":"x","group":"y","username":"u","password_file":"/p"}}}`,
		`{"version":6,"config":{"node":{"metrics_listen":"0.0.0.0:9100"}}}`,
		`{"version":6,"config":{"mqtt":{"broker":"ssl://broker.example:8883"}}}`,
		`{"version":6,"config":{"mqtt":{"topic_prefix":"fleet/v2"}}}`,
		`{"version":6,"config":{"mqtt":{"group":"g2"}}}`,
		`{"version":6,"config":{"mqtt":{"username":"u2"}}}`,
		`{"version":6,"config":{"mqtt":{"password_file":"/p"}}}`,
		`{"version":6,"config":{"mqtt":{"tls":{"server_name":"evil"}}}}`,
		`{"version":7,"config":{"tariff":{"price_per_kwh":-1},"tarif":{}}}`,
		`{"version":8,"config":{"stations":[{"number":"5"}]}}`,
		`{"version":9,"config":{"<<":{"node":{"id":"evil"}},"mqtt":{"<<":{"broker":"tcp://evil:1883"}}}}`,
		`{"version":10,"config":{"buses":[{"name":"b","port":"\/dev\/ttyUSB0"}],"stations":[{"number":"5","driver":"modbus","modbus":{"bus":"b","unit":1,"state":{"function":4},"energy":{"function":4}}},{"number":"6"}]}}`,
		`{"version":11,"config":{"stations":null,"policy":{"plug_timeout":120}}}`,
		`{"version":1.5,"config":{}}`,
		`{"version":1,"config":[]}`,
		`{"version":1}`,
		`[]`,
		``,
	} {
		f.Add([]byte(seed))
	}
	base, err := ParseEdge([]byte(fuzzLayersFile))
	if err != nil {
		f.Fatalf("fuzz base file: %v", err)
	}
	fileLines := bytes.Count([]byte(fuzzLayersFile), []byte("\n"))
	f.Fuzz(func(t *testing.T, payload []byte) {
		d, err := ParseDesired(payload)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("ParseDesired: empty error")
			}
			return
		}
		if d.Version <= 0 || !bytes.HasPrefix(bytes.TrimSpace(d.Config), []byte("{")) {
			t.Fatalf("ParseDesired accepted version %d config %q", d.Version, d.Config)
		}
		for _, l := range []Layers{
			{File: []byte(fuzzLayersFile), Group: &d},
			{File: []byte(fuzzLayersFile), Node: &d},
			{File: []byte(fuzzLayersFile), Group: &d, Node: &d},
		} {
			e, prov, err := ParseLayers(l)
			if err != nil {
				var probs Problems
				if !errors.As(err, &probs) || len(probs) == 0 {
					t.Fatalf("error %T %q is not a non-empty Problems", err, err)
				}
				for _, p := range probs {
					if p.Reason == "" || p.Line < 0 || p.Line > fileLines {
						t.Fatalf("bad problem %#v", p)
					}
				}
				if e != nil || prov != nil {
					t.Fatal("non-nil result with an error")
				}
				continue
			}
			if probs := e.Validate(); probs != nil {
				t.Fatalf("ParseLayers accepted a config that Validate rejects: %v", probs)
			}
			if e.Node != base.Node {
				t.Fatalf("node changed over MQTT: %+v, file has %+v", e.Node, base.Node)
			}
			m, bm := e.MQTT, base.MQTT
			if m.Broker != bm.Broker || m.Username != bm.Username || m.PasswordFile != bm.PasswordFile ||
				m.TLS != bm.TLS || m.TopicPrefix != bm.TopicPrefix || m.Group != bm.Group {
				t.Fatalf("file-only mqtt key changed over MQTT: %+v, file has %+v", m, bm)
			}
			for _, s := range Settings(e, prov) {
				switch s.Source {
				case SourceDefault, SourceFile, SourceGroup, SourceNode:
				default:
					t.Fatalf("%s: unknown source %q", s.Key, s.Source)
				}
				if _, only := networkOnlyFile[s.Key]; (only || strings.HasPrefix(s.Key, "node.") ||
					strings.HasPrefix(s.Key, "mqtt.tls.")) && s.Source != SourceFile && s.Source != SourceDefault {
					t.Fatalf("%s: source %s", s.Key, s.Source)
				}
			}
		}
	})
}

// BenchmarkParseLayers measures deciding a desired config (file plus group
// and node layers, validated) against parsing the file alone, the baseline
// of the same run: a fleet rollout costs the node about one config check.
func BenchmarkParseLayers(b *testing.B) {
	file := []byte(layersFile)
	g := &Desired{Version: 3, Config: []byte(`{"tariff":{"price_per_kwh":0.5,"session_fee":1},"policy":{"plug_timeout":"60s"}}`)}
	n := &Desired{Version: 7, Config: []byte(`{"tariff":{"price_per_kwh":0.45},"stations":[{"number":"5","driver":"sim"},{"number":"6","driver":"sim"}]}`)}
	b.Run("file-alone", func(b *testing.B) {
		for b.Loop() {
			if _, err := ParseEdge(file); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("file+group+node", func(b *testing.B) {
		for b.Loop() {
			if _, _, err := ParseLayers(Layers{File: file, Group: g, Node: n}); err != nil {
				b.Fatal(err)
			}
		}
	})
}
