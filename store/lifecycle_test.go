package store_test

import (
	"errors"
	"flag"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/sitelink/sitelink/store"
)

var updateREADME = flag.Bool("update-readme", false, "rewrite README.md's lifecycle section from the table")

// declaredStates parses the package source for every constant of type
// State, so that a state added to session.go without a place in the
// lifecycle table fails the test.
func declaredStates(t *testing.T) []store.State {
	t.Helper()
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	var out []store.State
	fset := token.NewFileSet()
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range f.Decls {
			g, ok := d.(*ast.GenDecl)
			if !ok || g.Tok != token.CONST {
				continue
			}
			for _, spec := range g.Specs {
				v := spec.(*ast.ValueSpec)
				if id, ok := v.Type.(*ast.Ident); !ok || id.Name != "State" {
					continue
				}
				for i, n := range v.Names {
					lit, ok := v.Values[i].(*ast.BasicLit)
					if !ok || lit.Kind != token.STRING {
						t.Fatalf("%s: state %s is not a string literal", name, n.Name)
					}
					if s := store.State(strings.Trim(lit.Value, "\"`")); s != store.None {
						out = append(out, s)
					}
				}
			}
		}
	}
	return out
}

// TestLifecycleTable walks the whole table: its shape, every listed edge
// allowed, every other pair refused, every state reachable from a new
// session, and every unfinished state able to finish.
func TestLifecycleTable(t *testing.T) {
	states := store.States()
	edges := store.Transitions()

	declared := declaredStates(t)
	if len(declared) < 10 {
		t.Fatalf("found only %d State constants in the source: %v", len(declared), declared)
	}
	for _, s := range declared {
		if !s.Known() {
			t.Errorf("state %q is declared but has no place in the lifecycle table", s)
		}
	}
	for i, s := range states {
		if !slices.Contains(declared, s) {
			t.Errorf("lifecycle lists %q, which is not a declared State", s)
		}
		if slices.Contains(states[:i], s) {
			t.Errorf("state %q listed twice", s)
		}
		if s.Active() && s.Final() {
			t.Errorf("state %q is both active and final", s)
		}
	}
	if store.None.Known() || slices.Contains(states, store.None) {
		t.Error("None must not be a recorded state")
	}

	listed := map[[2]store.State]bool{}
	for _, e := range edges {
		name := fmt.Sprintf("%q→%q", e.From, e.To)
		if listed[[2]store.State{e.From, e.To}] {
			t.Errorf("%s listed twice", name)
		}
		listed[[2]store.State{e.From, e.To}] = true
		switch {
		case e.From != store.None && !e.From.Known(), !e.To.Known():
			t.Errorf("%s: unknown state", name)
		case e.From == e.To:
			t.Errorf("%s: a transition to the same state records nothing", name)
		case strings.TrimSpace(e.When) == "" || strings.ContainsAny(e.When, "|\n"):
			t.Errorf("%s: When %q must be one non-empty table cell", name, e.When)
		}
		// A session that left its station never takes it again: only a
		// new session does.
		if e.From != store.None && !e.From.Active() && e.To.Active() {
			t.Errorf("%s: a session that released its station takes it again", name)
		}
		if !store.CanTransition(e.From, e.To) || store.CheckTransition(e.From, e.To) != nil {
			t.Errorf("%s is listed but refused", name)
		}
	}

	all := append([]store.State{store.None}, states...)
	for _, from := range all {
		for _, to := range append(all, "bogus") {
			if listed[[2]store.State{from, to}] {
				continue
			}
			if store.CanTransition(from, to) {
				t.Errorf("%q→%q is not listed but allowed", from, to)
			}
			var te *store.TransitionError
			if err := store.CheckTransition(from, to); !errors.As(err, &te) || te.From != from || te.To != to {
				t.Errorf("CheckTransition(%q, %q) = %v, want a TransitionError naming both", from, to, err)
			}
		}
	}

	next := map[store.State][]store.State{}
	for _, e := range edges {
		next[e.From] = append(next[e.From], e.To)
	}
	reach := func(from store.State) map[store.State]bool {
		seen := map[store.State]bool{from: true}
		for queue := []store.State{from}; len(queue) > 0; queue = queue[1:] {
			for _, to := range next[queue[0]] {
				if !seen[to] {
					seen[to] = true
					queue = append(queue, to)
				}
			}
		}
		return seen
	}
	fromNew := reach(store.None)
	for _, s := range states {
		if !fromNew[s] {
			t.Errorf("state %q cannot be reached from a new session", s)
		}
		if s.Final() {
			continue
		}
		finishes := false
		for r := range reach(s) {
			finishes = finishes || r.Final()
		}
		if !finishes {
			t.Errorf("state %q can never finish", s)
		}
	}
}

func TestTransitionErrorNamesBothStates(t *testing.T) {
	for _, tc := range []struct {
		from, to store.State
		want     string
	}{
		{store.Settled, store.Charging, "session lifecycle: no transition from `settled` to `charging`"},
		{store.None, store.Settled, "session lifecycle: no transition from (new) to `settled`"},
		{store.NeedsReconciliation, store.Settled, "session lifecycle: no transition from `needs-reconciliation` to `settled`"},
		{store.Charging, store.None, "session lifecycle: no transition from `charging` to (new)"},
	} {
		err := store.CheckTransition(tc.from, tc.to)
		if err == nil || err.Error() != tc.want {
			t.Errorf("CheckTransition(%q, %q) = %v, want %q", tc.from, tc.to, err, tc.want)
		}
	}
}

// TestLifecycleREADME keeps README.md's lifecycle section equal to the
// table; -update-readme (go generate ./store) rewrites it.
func TestLifecycleREADME(t *testing.T) {
	const path = "../README.md"
	doc, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	want := store.LifecycleMarkdown()
	got, err := lifecycleSection(string(doc))
	if err != nil {
		t.Fatalf("%s: %v; paste this section (under \"## How it works\", as \"### Session lifecycle\"):\n\n%s", path, err, want)
	}
	if got == want {
		return
	}
	if !*updateREADME {
		t.Fatalf("%s: the lifecycle section differs from store/lifecycle.go; run `go generate ./store`. Want:\n\n%s", path, want)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(strings.Replace(string(doc), got, want, 1)), fi.Mode()); err != nil {
		t.Fatal(err)
	}
}

// lifecycleSection returns the generated section of doc, markers
// included. The begin marker is matched by its prefix, so a reworded
// marker is still found and rewritten.
func lifecycleSection(doc string) (string, error) {
	begin := strings.Index(doc, "<!-- lifecycle:begin")
	if begin < 0 {
		return "", errors.New("no `<!-- lifecycle:begin` marker")
	}
	if strings.Count(doc, "<!-- lifecycle:begin") > 1 {
		return "", errors.New("more than one `<!-- lifecycle:begin` marker")
	}
	n := strings.Index(doc[begin:], store.LifecycleEnd+"\n")
	if n < 0 {
		return "", fmt.Errorf("no %s line after the begin marker", store.LifecycleEnd)
	}
	return doc[begin : begin+n+len(store.LifecycleEnd)+1], nil
}

func TestLifecycleSection(t *testing.T) {
	md := store.LifecycleMarkdown()
	for _, tc := range []struct {
		name, doc, want string
		ok              bool
	}{
		{"current", "# x\n\n" + md + "\n## y\n", md, true},
		{"stale", "# x\n<!-- lifecycle:begin old words -->\n| a | b |\n" + store.LifecycleEnd + "\nrest\n",
			"<!-- lifecycle:begin old words -->\n| a | b |\n" + store.LifecycleEnd + "\n", true},
		{"missing", "# x\n", "", false},
		{"no end", "# x\n<!-- lifecycle:begin -->\n| a |\n", "", false},
		{"end before begin", store.LifecycleEnd + "\n<!-- lifecycle:begin -->\n", "", false},
		{"twice", md + md, "", false},
	} {
		got, err := lifecycleSection(tc.doc)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("%s: lifecycleSection = %q, %v; want %q (ok %v)", tc.name, got, err, tc.want, tc.ok)
		}
	}
	// The generated section lists every edge as a row.
	for _, e := range store.Transitions() {
		if !strings.Contains(md, e.When+" |\n") {
			t.Errorf("markdown lacks the row for %q→%q", e.From, e.To)
		}
	}
}
