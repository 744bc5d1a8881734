package main

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/sitelink/sitelink/hal/modbus/modbustest"
)

// runHW runs `sitelink hw args...` in process (runCLI).
func runHW(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	return runCLI(append([]string{"hw"}, args...)...)
}

func TestHWMeter(t *testing.T) {
	r := modbustest.Start(t)
	r.SetFloat(1, "ir", 0x0048, 12.5) // import energy, kWh
	r.SetFloat(1, "ir", 0x0034, 3700) // total power, W
	meter := []string{"meter", "-port", r.Port, "-unit", "1", "-profile", "sdm630",
		"-baud", "19200", "-parity", "N", "-stop-bits", "1", "-timeout", modbustest.BusTimeout.String()}

	// The rig's helpers fail the test given to Start: no subtests.
	code, out, errs := runHW(t, meter...)
	if code != 0 {
		t.Fatalf("exit %d: %s%s", code, out, errs)
	}
	for _, want := range []string{"12.5 kWh", "12500 Wh", "3700 W"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}

	r.Mute(1)
	code, out, errs = runHW(t, meter...)
	if code == 0 {
		t.Fatalf("exit 0 for a muted unit:\n%s", out)
	}
	if !strings.Contains(errs, "timeout") || !strings.Contains(errs, "did not answer") {
		t.Errorf("stderr does not explain the timeout:\n%s", errs)
	}
	if strings.Contains(out, "kWh") {
		t.Errorf("a failed read printed a reading:\n%s", out)
	}
}

func TestHWUsage(t *testing.T) {
	tests := []struct {
		name     string
		args     []string
		code     int
		stderr   string // substring
		noStdout bool
	}{
		{name: "pin set without force is refused", args: []string{"pin", "-set", "GPIO17", "high"},
			code: 2, stderr: "bypasses every safety of the daemon", noStdout: true},
		{name: "pin set with a bad level", args: []string{"pin", "-set", "GPIO17", "up", "-force"},
			code: 2, stderr: "want high or low", noStdout: true},
		{name: "pin without an action", args: []string{"pin"}, code: 2, stderr: "usage:", noStdout: true},
		{name: "meter without port", args: []string{"meter", "-profile", "sdm630"}, code: 2, stderr: "usage:", noStdout: true},
		{name: "meter with an unknown profile", args: []string{"meter", "-port", "/dev/null", "-profile", "nope"},
			code: 2, stderr: "sdm630", noStdout: true},
		{name: "scan without port", args: []string{"scan"}, code: 2, stderr: "usage:", noStdout: true},
		{name: "scan with bad units", args: []string{"scan", "-port", "/dev/null", "-units", "0-300"}, code: 2, stderr: "-units 0-300", noStdout: true},
		{name: "unknown subcommand", args: []string{"frobnicate"}, code: 2, stderr: "hw lines", noStdout: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errs := runHW(t, tt.args...)
			if code != tt.code {
				t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", code, tt.code, out, errs)
			}
			if !strings.Contains(errs, tt.stderr) {
				t.Errorf("stderr lacks %q:\n%s", tt.stderr, errs)
			}
			if tt.noStdout && out != "" {
				t.Errorf("stdout: %s", out)
			}
		})
	}
}

func TestHWLines(t *testing.T) {
	code, out, errs := runHW(t, "lines")
	if code != 0 {
		t.Fatalf("exit %d\nstdout: %s\nstderr: %s", code, out, errs)
	}
	// On a host with GPIO chips it is a table; without, the note.
	if !strings.HasPrefix(out, "NAME") && !strings.Contains(out, "no GPIO chips on this host") &&
		!strings.Contains(out, "no GPIO lines registered") {
		t.Errorf("neither a table nor the note:\n%s", out)
	}
}

func TestHWScan(t *testing.T) {
	r := modbustest.Start(t)
	// Unit 1 is an SDM630, unit 2 an ABB B23, unit 9 is silent.
	scan := []string{"scan", "-port", r.Port, "-baud", "19200", "-units", "1-2,9", "-timeout", modbustest.BusTimeout.String()}

	code, out, errs := runHW(t, scan...)
	if code != 0 {
		t.Fatalf("exit %d: %s%s", code, out, errs)
	}
	t.Logf("stderr: %sstdout:\n%s", errs, out)
	if !strings.Contains(errs, "scanning 3 units") || !strings.Contains(errs, "if none answers") {
		t.Errorf("stderr does not say what the scan costs:\n%s", errs)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 4 || !strings.HasPrefix(lines[0], "UNIT") ||
		!strings.HasPrefix(lines[1], "1 ") || !strings.Contains(lines[1], "sdm630") || !strings.Contains(lines[1], "meter") ||
		!strings.HasPrefix(lines[2], "2 ") || !strings.Contains(lines[2], "abb-b2x") ||
		lines[3] != "2 of 3 units answered" {
		t.Errorf("table:\n%s", out)
	}

	// Without the silent unit: its timeout was tested above.
	code, out, errs = runHW(t, "scan", "-port", r.Port, "-baud", "19200", "-units", "1-2", "-timeout", modbustest.BusTimeout.String(), "-json")
	if code != 0 {
		t.Fatalf("-json: exit %d: %s%s", code, out, errs)
	}
	var got []struct {
		Unit        int      `json:"unit"`
		Meters      []string `json:"meters"`
		Controllers []string `json:"controllers"`
	}
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("-json output: %v\n%s", err, out)
	}
	if len(got) != 2 || got[0].Unit != 1 || !slices.Contains(got[0].Meters, "sdm630") ||
		got[1].Unit != 2 || !slices.Equal(got[1].Meters, []string{"abb-b2x"}) || len(got[1].Controllers) != 0 {
		t.Errorf("-json: %+v", got)
	}
}

func TestParseUnits(t *testing.T) {
	tests := []struct {
		in   string
		want []byte
		err  bool
	}{
		{in: "1-3", want: []byte{1, 2, 3}},
		{in: "5,1-2,2", want: []byte{1, 2, 5}},
		{in: "247", want: []byte{247}},
		{in: "0-3", err: true},
		{in: "1-248", err: true},
		{in: "3-1", err: true},
		{in: "a", err: true},
		{in: "1-b", err: true},
	}
	for _, tt := range tests {
		got, err := parseUnits(tt.in)
		if (err != nil) != tt.err || !slices.Equal(got, tt.want) {
			t.Errorf("parseUnits(%q) = %v, %v; want %v, error %v", tt.in, got, err, tt.want, tt.err)
		}
	}
}
