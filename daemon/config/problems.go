package config

import (
	"errors"
	"fmt"
	"strings"
)

// Errors of this package, for errors.Is.
var (
	// ErrInvalid matches every Problems value, so a caller can tell "the
	// configuration is wrong" (operator's fault, print the problems) from
	// "the file could not be read" without a type assertion.
	ErrInvalid = errors.New("invalid configuration")

	// ErrEmptySecret is returned by ReadSecret for a file that holds no
	// secret, so that a forgotten provisioning step fails at start-up
	// instead of signing with an empty key.
	ErrEmptySecret = errors.New("empty secret")
)

// Problem is one thing wrong with a configuration: where (a key path such as
// "stations[1].number" and, when known, the file and the line in it) and why.
type Problem struct {
	File   string // the configuration file, when read from one; empty for a document in memory
	Path   string // key path, e.g. "terminals[0].stations[1]"; empty for the whole file
	Line   int    // 1-based line in the YAML file; 0 when unknown
	Reason string // what is wrong, e.g. `unknown station "9"`
	// Warning marks a problem that does not stop the daemon here: what
	// only the target machine has (a serial port, a file) when the check
	// runs elsewhere (`sitelink config check -elsewhere`).
	Warning bool
}

// String renders the problem as a compiler would, "FILE:LINE: path:
// reason" ("FILE:LINE: warning: path: reason" for a warning). Without a
// file the position is "line N: "; the line is left out when unknown, the
// path when the problem concerns the whole file.
func (p Problem) String() string {
	var b strings.Builder
	switch {
	case p.File != "" && p.Line > 0:
		fmt.Fprintf(&b, "%s:%d: ", p.File, p.Line)
	case p.File != "":
		fmt.Fprintf(&b, "%s: ", p.File)
	case p.Line > 0:
		fmt.Fprintf(&b, "line %d: ", p.Line)
	}
	if p.Warning {
		b.WriteString("warning: ")
	}
	if p.Path != "" {
		b.WriteString(p.Path)
		b.WriteString(": ")
	}
	b.WriteString(p.Reason)
	return b.String()
}

// Problems is every problem found in a configuration. It is an error so that
// ParseEdge can return it directly; the message has one problem per line, so
// `sitelink config check` can print it as it is.
type Problems []Problem

// Error joins the problems, one per line.
func (p Problems) Error() string {
	lines := make([]string, len(p))
	for i, pr := range p {
		lines[i] = pr.String()
	}
	return strings.Join(lines, "\n")
}

// Is reports whether target is ErrInvalid.
func (p Problems) Is(target error) bool { return target == ErrInvalid }

// Errors returns the problems that are not warnings, or nil.
func (p Problems) Errors() Problems {
	var errs Problems
	for _, pr := range p {
		if !pr.Warning {
			errs = append(errs, pr)
		}
	}
	return errs
}

// inFile sets the file of every problem.
func (p Problems) inFile(file string) Problems {
	for i := range p {
		p[i].File = file
	}
	return p
}
