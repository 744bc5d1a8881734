package main

import (
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"
	"sync"

	"periph.io/x/conn/v3/gpio/gpioreg"

	"github.com/sitelink/sitelink/daemon/config"
	"github.com/sitelink/sitelink/hal/gpio"
)

const configCheckUsage = "usage: sitelink config check [-elsewhere] [-json] FILE"

// checkedProblem is one line of `sitelink config check -json`. The field
// names are a contract for scripts: add fields, never rename them.
type checkedProblem struct {
	File     string `json:"file"`
	Line     int    `json:"line"`     // 0: the problem has no line (the whole file, or a file that cannot be read)
	Key      string `json:"key"`      // key path, e.g. "mqtt.tls.key_file"; empty for the whole file
	Problem  string `json:"problem"`  // what is wrong
	Severity string `json:"severity"` // "error" (the daemon refuses to start) or "warning"
}

// cmdConfigCheck checks an edge or relay configuration file and what it
// names on this host, as the daemon does when it starts (config.CheckHost):
// every problem as FILE:LINE: key: problem, or with -json as an array.
// Exit status 1 when there is an error, 0 with warnings only.
func cmdConfigCheck(args []string, stdout, stderr io.Writer) error {
	fs := flags("config check", stderr)
	elsewhere := fs.Bool("elsewhere", false, "the check runs on another machine than the target: files and serial ports missing here are warnings, GPIO lines are not looked up")
	asJSON := fs.Bool("json", false, "print the problems as a JSON array of {file, line, key, problem, severity}")
	if err := fs.Parse(args); err != nil {
		return exitCode(2)
	}
	// Flags may also follow the file.
	if fs.NArg() > 1 {
		file := fs.Arg(0)
		if err := fs.Parse(fs.Args()[1:]); err != nil || fs.NArg() != 0 {
			fmt.Fprintln(stderr, configCheckUsage)
			return exitCode(2)
		}
		args = []string{file}
	} else {
		args = fs.Args()
	}
	if len(args) != 1 {
		fmt.Fprintln(stderr, configCheckUsage)
		return exitCode(2)
	}
	path := args[0]

	o := config.CheckOptions{Elsewhere: *elsewhere}
	var pins gpioLookup
	if !*elsewhere {
		o.GPIOLine = pins.exists
	}
	kind, probs, err := config.CheckHost(path, o)
	if err != nil {
		probs = config.Problems{{File: path, Reason: err.Error()}}
	}
	errs := len(probs.Errors())

	if *asJSON {
		out := make([]checkedProblem, 0, len(probs))
		for _, p := range probs {
			sev := "error"
			if p.Warning {
				sev = "warning"
			}
			out = append(out, checkedProblem{File: p.File, Line: p.Line, Key: p.Path, Problem: p.Reason, Severity: sev})
		}
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(out); err != nil {
			return err
		}
	} else {
		for _, p := range probs {
			fmt.Fprintln(stderr, p)
		}
		if errs == 0 {
			if pins.found {
				fmt.Fprintf(stdout, "%s: GPIO lines found on this host\n", path)
			}
			fmt.Fprintf(stdout, "%s: ok (%s config)%s\n", path, kind, plural(len(probs), ", %d warning"))
		}
	}
	if errs > 0 {
		return exitCode(1)
	}
	return nil
}

// plural formats n with format (which has one %d), adding an "s" for more
// than one; "" for 0.
func plural(n int, format string) string {
	switch n {
	case 0:
		return ""
	case 1:
		return fmt.Sprintf(format, n)
	}
	return fmt.Sprintf(format, n) + "s"
}

// gpioLookup looks GPIO lines up on this host, if it has GPIO chips (a
// build machine has none: nothing to check there, and no line is
// reported missing).
type gpioLookup struct {
	once   sync.Once
	usable bool
	found  bool // some line was looked up
}

func (g *gpioLookup) exists(name string) bool {
	g.once.Do(func() {
		chips, _ := filepath.Glob("/dev/gpiochip*")
		g.usable = len(chips) > 0 && gpio.Init() == nil
	})
	if !g.usable {
		return true
	}
	g.found = true
	return gpioreg.ByName(name) != nil
}
