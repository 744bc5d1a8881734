package main

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/sitelink/sitelink/hal/modbus/modbustest"
)

// runHW runs `sitelink hw args...` in process and returns its exit code
// (0 for nil, 1 for an error that is no exitCode) and output.
func runHW(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	err := run(append([]string{"hw"}, args...), &out, &errb)
	var ec exitCode
	switch {
	case err == nil:
	case errors.As(err, &ec):
		code = int(ec)
	default:
		code = 1
		errb.WriteString(err.Error())
	}
	return code, out.String(), errb.String()
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
