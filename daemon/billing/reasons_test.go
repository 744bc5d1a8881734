package billing

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"strconv"
	"strings"
	"testing"
)

// TestStopReasonsDocumented: every stop reason the engine records is a row
// of README's stop reason table, so an operator can look up any reason a
// session shows.
func TestStopReasonsDocumented(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	f, err := parser.ParseFile(token.NewFileSet(), "reasons.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	var n int
	for _, d := range f.Decls {
		g, ok := d.(*ast.GenDecl)
		if !ok || g.Tok != token.CONST {
			continue
		}
		for _, spec := range g.Specs {
			v := spec.(*ast.ValueSpec)
			for i, name := range v.Names {
				if !name.IsExported() || !strings.HasPrefix(name.Name, "Stop") || i >= len(v.Values) {
					continue
				}
				lit, ok := v.Values[i].(*ast.BasicLit)
				if !ok {
					continue // built from another constant
				}
				text, _ := strconv.Unquote(lit.Value)
				if text == StopNayaxCancel {
					text += " Cancel" // documented with its detail
				}
				n++
				if !strings.Contains(string(readme), "| `"+text+"`") && !strings.Contains(string(readme), ", `"+text+"`") {
					t.Errorf("%s (%q) is not in README's stop reason table", name.Name, text)
				}
			}
		}
	}
	if n < 15 {
		t.Fatalf("found %d stop reasons in reasons.go: the parse is wrong", n)
	}
}
