package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/sitelink/sitelink/daemon/mqtttest"
	"github.com/sitelink/sitelink/hal/modbus/modbustest"
)

// runCLI runs `sitelink args...` in process: its exit code (0 for nil, 1
// for an error that is no exitCode, printed as main prints it) and output.
func runCLI(args ...string) (code int, stdout, stderr string) {
	var out, errb bytes.Buffer
	err := run(args, &out, &errb)
	var ec exitCode
	switch {
	case err == nil:
	case errors.As(err, &ec):
		code = int(ec)
	default:
		code = 1
		errb.WriteString("sitelink: " + err.Error())
	}
	return code, out.String(), errb.String()
}

// The operating commands against a live daemon: flags before or after
// the action word, -json that parses, and errors that say what is wrong.
// Station 5 is simulated with the default max_power_kw (22).
func TestCLI(t *testing.T) {
	b := mqtttest.Start(t)
	cfg, socket := writeConfig(t, b.URL)
	startDaemon(t, cfg, socket)
	sock := []string{"-socket", socket}
	with := func(args ...string) []string { return append(args, sock...) }
	long := strings.Repeat("x", 201)
	tests := []struct {
		name   string
		args   []string
		code   int
		stdout string         // substring of stdout
		stderr string         // substring of stderr
		json   map[string]any // with -json: these top-level fields (of the first element of a list)
	}{
		{name: "sim flags before the action", args: with("sim", "-station", "5", "plug"), stdout: "station 5: plug"},
		{name: "sim flags after the action", args: with("sim", "unplug", "-station", "5"), stdout: "station 5: unplug"},
		{name: "sim flags around the action", args: append([]string{"sim", "-station", "5", "power"}, with("11", "-json")...),
			json: map[string]any{"station": "5", "action": "power", "kw": 11.0}},
		{name: "sim power beyond the station", args: with("sim", "power", "1000", "-station", "5"), code: 1, stderr: "power 1000 kW: station 5 takes 0 to 22 kW"},
		{name: "sim power not a number", args: with("sim", "-station", "5", "power", "lots"), code: 2, stderr: `power "lots": want a number of kW`},
		{name: "sim power NaN", args: with("sim", "-station", "5", "power", "NaN"), code: 2, stderr: "want a number of kW"},
		{name: "sim power without kW", args: with("sim", "-station", "5", "power"), code: 2, stderr: "usage: sitelink sim -station N power KW"},
		{name: "sim fault reason too long", args: with("sim", "fault", "-station", "5", "-reason", long), code: 2, stderr: "-reason: 201 characters, at most 200"},
		{name: "sim reason without fault", args: with("sim", "plug", "-station", "5", "-reason", "x"), code: 2, stderr: "-reason goes with fault"},
		{name: "sim unknown action", args: with("sim", "-station", "5", "explode"), code: 1, stderr: `unknown sim action "explode"`},
		{name: "sim unknown station", args: with("sim", "plug", "-station", "6"), code: 1, stderr: `unknown station "6"`},
		{name: "sim without a station", args: with("sim", "plug"), code: 2, stderr: "usage: sitelink sim"},
		{name: "stop unknown station", args: with("stop", "-station", "6"), code: 1, stderr: `unknown station "6"`},
		{name: "stop without a session", args: with("stop", "-station", "5"), code: 1, stderr: "station 5 has no active session"},
		{name: "status stray word", args: with("status", "now"), code: 2, stderr: `unexpected "now"`},
		{name: "status -json after -socket", args: with("status", "-json"), json: map[string]any{"node": node, "connected": true}},
		{name: "stations -json", args: with("stations", "-json"), json: map[string]any{"number": "5", "driver": "sim"}},
		{name: "outbox -json", args: with("outbox", "-json", "-n", "5")},
		{name: "start -json", args: with("start", "-station", "5", "-json"), json: map[string]any{"station": "5"}},
		{name: "sessions -json", args: with("sessions", "-json"), json: map[string]any{"station": "5", "state": "requested"}},
		{name: "stop -json", args: with("stop", "-json", "-station", "5"), json: map[string]any{"station": "5"}},
		{name: "start negative amount", args: with("start", "-station", "5", "-amount", "-1"), code: 2, stderr: "usage: sitelink start"},
		{name: "config show -json", args: append([]string{"config", "show", "-json"}, sock...), json: map[string]any{"node": node}},
		{name: "version -json", args: []string{"version", "-json"}, json: map[string]any{"version": version}},
		{name: "hw lines -json", args: []string{"hw", "lines", "-json"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errs := runCLI(tt.args...)
			if code != tt.code {
				t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", code, tt.code, out, errs)
			}
			if !strings.Contains(out, tt.stdout) {
				t.Errorf("stdout lacks %q:\n%s", tt.stdout, out)
			}
			if !strings.Contains(errs, tt.stderr) {
				t.Errorf("stderr lacks %q:\n%s", tt.stderr, errs)
			}
			if !strings.Contains(strings.Join(tt.args, " "), "-json") {
				return
			}
			var v any
			if err := json.Unmarshal([]byte(out), &v); err != nil {
				t.Fatalf("-json output is not JSON: %v\n%s", err, out)
			}
			if a, ok := v.([]any); ok && len(a) > 0 {
				v = a[0]
			}
			for k, want := range tt.json {
				m, _ := v.(map[string]any)
				if got := m[k]; got != want {
					t.Errorf("%s = %v, want %v in\n%s", k, got, want, out)
				}
			}
		})
	}
}

// `hw meter -json` reads the meter once and prints the reading as JSON.
func TestHWMeterJSON(t *testing.T) {
	r := modbustest.Start(t)
	r.SetFloat(1, "ir", 0x0048, 12.5) // import energy, kWh
	r.SetFloat(1, "ir", 0x0034, 3700) // total power, W
	code, out, errs := runCLI("hw", "meter", "-port", r.Port, "-unit", "1", "-profile", "sdm630",
		"-baud", "19200", "-timeout", modbustest.BusTimeout.String(), "-json")
	if code != 0 {
		t.Fatalf("exit %d: %s%s", code, out, errs)
	}
	var got struct {
		Unit     int     `json:"unit"`
		Profile  string  `json:"profile"`
		EnergyWh float64 `json:"energy_wh"`
		PowerW   float64 `json:"power_w"`
	}
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out)
	}
	if got.Unit != 1 || got.Profile != "sdm630" || got.EnergyWh != 12500 || got.PowerW != 3700 {
		t.Errorf("reading %+v, want unit 1, sdm630, 12500 Wh, 3700 W", got)
	}
}
