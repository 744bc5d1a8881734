// Package daemon has no code of its own: its subpackages are the edge
// daemon, the relay and what they share. Its test guards the layering of
// the whole module (layering_test.go): which package may import which,
// directly or through others, so that the import graph stays as DESIGN.md
// draws it and a shortcut shows up as a failing test naming the chain,
// not in a review months later.
package daemon
