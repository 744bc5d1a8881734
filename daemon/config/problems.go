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
// "stations[1].number" and, when known, the line in the file) and why.
type Problem struct {
	Path   string // key path, e.g. "terminals[0].stations[1]"; empty for the whole file
	Line   int    // 1-based line in the YAML file; 0 when unknown
	Reason string // what is wrong, e.g. `unknown station "9"`
}

// String renders the problem as "line N: path: reason"; the line prefix is
// left out when the line is unknown, the path when the problem concerns the
// whole file.
func (p Problem) String() string {
	var b strings.Builder
	if p.Line > 0 {
		fmt.Fprintf(&b, "line %d: ", p.Line)
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
