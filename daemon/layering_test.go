package daemon

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/sitelink/sitelink"

// A rule forbids the packages matched by from (minus except) to import a
// package matched by forbid (minus allow): through any chain of imports,
// or only directly if direct is set. Patterns are module-relative import
// paths; "x/..." matches x and everything below it, "..." every package
// of the module. Only non-test imports count: a test may use anything.
type rule struct {
	name          string
	from, except  []string
	forbid, allow []string
	direct        bool
	why           string
}

// testHelpers are packages for tests only; no product code imports them.
var testHelpers = []string{"daemon/mqtttest", "store/storetest", "hal/haltest", "hal/modbus/modbustest"}

var rules = []rule{
	{
		name:   "relay",
		from:   []string{"daemon/relay/..."},
		forbid: []string{"store/...", "hal/...", "daemon/edge/..."},
		why:    "the relay runs in the cloud: it has no ledger, no hardware and none of the edge's logic, and meets the edge only through daemon/wire",
	},
	{
		name:   "hal",
		from:   []string{"hal/..."},
		forbid: []string{"daemon/..."},
		why:    "station hardware knows nothing of sessions, MQTT or configuration files; the edge drives it",
	},
	{
		name: "leaves",
		// store/storetest exists to build stores for tests, so it
		// imports store; the helpers rule keeps it out of the product.
		from:   []string{"daemon/wire/...", "store/...", "daemon/retry/...", "daemon/queue/..."},
		except: []string{"store/storetest"},
		forbid: []string{"..."},
		direct: true,
		why:    "the MQTT contract, the ledger and the shared rules are leaves that anyone can import without dragging anything else along",
	},
	{
		name:   "nayax",
		from:   []string{"daemon/nayax/..."},
		forbid: []string{"..."},
		// The Nayax client retries by the one backoff rule, a leaf.
		allow:  []string{"daemon/retry"},
		direct: true,
		why:    "the Nayax protocol is a leaf like the MQTT contract: both the edge and the relay speak it",
	},
	{
		name:   "link",
		from:   []string{"daemon/link/..."},
		forbid: []string{"daemon/config/..."},
		why:    "the MQTT link is a plain client; config builds its Options (config.MQTT.LinkOptions), not the other way round",
	},
	{
		name:   "test helpers",
		from:   []string{"..."},
		except: testHelpers,
		forbid: testHelpers,
		why:    "test helpers spawn brokers, write temporary files and import testing; they must not end up in the product",
	},
}

// match reports whether the module-relative path p matches pattern.
func match(pattern, p string) bool {
	if pattern == "..." {
		return true
	}
	if base, ok := strings.CutSuffix(pattern, "/..."); ok {
		return p == base || strings.HasPrefix(p, base+"/")
	}
	return p == pattern
}

func matchAny(patterns []string, p string) bool {
	return slices.ContainsFunc(patterns, func(pat string) bool { return match(pat, p) })
}

// graph maps a module-relative package path to its non-test imports
// inside the module. Paths outside the module cannot import it back, so
// they are left out.
type graph map[string][]string

// violations returns, for every package r applies to, each forbidden
// package it reaches with the shortest import chain that reaches it.
func (g graph) violations(r rule) []string {
	var out []string
	for _, p := range slices.Sorted(maps.Keys(g)) {
		if !matchAny(r.from, p) || matchAny(r.except, p) {
			continue
		}
		// Breadth-first, so each chain reported is a shortest one.
		parent := map[string]string{p: ""}
		queue := []string{p}
		for len(queue) > 0 {
			cur := queue[0]
			queue = queue[1:]
			for _, imp := range g[cur] {
				if _, seen := parent[imp]; seen {
					continue
				}
				parent[imp] = cur
				if matchAny(r.forbid, imp) && !matchAny(r.allow, imp) {
					out = append(out, chain(parent, imp))
				}
				if !r.direct {
					queue = append(queue, imp)
				}
			}
		}
	}
	return out
}

// chain spells the import chain that ends at p: "a → b → p".
func chain(parent map[string]string, p string) string {
	var c []string
	for ; p != ""; p = parent[p] {
		c = append(c, p)
	}
	slices.Reverse(c)
	return strings.Join(c, " → ")
}

// moduleGraph lists the module's packages with the go command, as built
// for this machine's GOOS and GOARCH.
func moduleGraph(t *testing.T) graph {
	t.Helper()
	cmd := exec.Command("go", "list", "-json=ImportPath,Imports", module+"/...")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, stderr.String())
	}
	g := graph{}
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p struct {
			ImportPath string
			Imports    []string
		}
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("go list output: %v", err)
		}
		rel, ok := internal(p.ImportPath)
		if !ok {
			continue
		}
		g[rel] = []string{}
		for _, imp := range p.Imports {
			if r, ok := internal(imp); ok {
				g[rel] = append(g[rel], r)
			}
		}
	}
	return g
}

// internal returns the module-relative path of a package of the module.
func internal(importPath string) (string, bool) {
	if importPath == module {
		return ".", true
	}
	return strings.CutPrefix(importPath, module+"/")
}

// TestLayering checks the module's import graph against the rules.
func TestLayering(t *testing.T) {
	g := moduleGraph(t)
	for _, r := range rules {
		t.Run(r.name, func(t *testing.T) {
			applies := false
			for p := range g {
				applies = applies || (matchAny(r.from, p) && !matchAny(r.except, p))
			}
			if !applies {
				t.Fatalf("rule %q applies to no package (renamed or moved?): %v", r.name, r.from)
			}
			for _, v := range g.violations(r) {
				t.Errorf("forbidden import: %s\n\t(%s)", v, r.why)
			}
		})
	}
}

// TestLayeringCatches runs the same rules over made-up import graphs, to
// show that each would catch what it is there for, and only that.
func TestLayeringCatches(t *testing.T) {
	tests := []struct {
		name  string
		edges []string // "a b": a imports b
		want  []string // "rule: chain"
	}{
		{"the real shape is fine", []string{
			"daemon/relay daemon/wire", "daemon/relay daemon/link", "daemon/relay daemon/nayax", "daemon/relay daemon/queue",
			"daemon/link daemon/retry", "daemon/config daemon/link", "daemon/nayax daemon/retry",
			"daemon/edge store", "daemon/edge hal/gpio", "hal/gpio hal", "store/storetest store",
			"daemon/mqtttest daemon/broker",
		}, nil},
		{"relay to the ledger through a shared package", []string{"daemon/relay daemon/queue", "daemon/queue store"},
			[]string{"leaves: daemon/queue → store", "relay: daemon/relay → daemon/queue → store"}},
		{"relay to hardware directly", []string{"daemon/relay hal/gpio"}, []string{"relay: daemon/relay → hal/gpio"}},
		{"relay subpackage to edge", []string{"daemon/relay/x daemon/edge"}, []string{"relay: daemon/relay/x → daemon/edge"}},
		{"hal to the daemon", []string{"hal/sim daemon/wire"}, []string{"hal: hal/sim → daemon/wire"}},
		{"hal through another hal package", []string{"hal/modbus hal", "hal daemon/retry"},
			[]string{"hal: hal → daemon/retry", "hal: hal/modbus → hal → daemon/retry"}},
		{"wire imports anything internal", []string{"daemon/wire daemon/retry"}, []string{"leaves: daemon/wire → daemon/retry"}},
		{"store imports the wire", []string{"store daemon/wire"}, []string{"leaves: store → daemon/wire"}},
		{"nayax imports the wire", []string{"daemon/nayax daemon/wire"}, []string{"nayax: daemon/nayax → daemon/wire"}},
		{"nayax subpackage imports retry", []string{"daemon/nayax/seeds daemon/retry"}, nil},
		{"queue imports retry", []string{"daemon/queue daemon/retry"}, []string{"leaves: daemon/queue → daemon/retry"}},
		{"storetest is no exception for others", []string{"store/storetest store", "store/x daemon/wire"}, []string{"leaves: store/x → daemon/wire"}},
		{"retry stops being a leaf", []string{"daemon/retry daemon/wire"}, []string{"leaves: daemon/retry → daemon/wire"}},
		{"link back on config, indirectly", []string{"daemon/link daemon/x", "daemon/x daemon/config"},
			[]string{"link: daemon/link → daemon/x → daemon/config"}},
		{"product imports a test helper", []string{"cmd/sitelink daemon/demo", "daemon/demo daemon/mqtttest"},
			[]string{"test helpers: cmd/sitelink → daemon/demo → daemon/mqtttest", "test helpers: daemon/demo → daemon/mqtttest"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g := graph{}
			for _, e := range tc.edges {
				from, to, _ := strings.Cut(e, " ")
				g[from] = append(g[from], to)
				if _, ok := g[to]; !ok {
					g[to] = nil
				}
			}
			var got []string
			for _, r := range rules {
				for _, v := range g.violations(r) {
					got = append(got, fmt.Sprintf("%s: %s", r.name, v))
				}
			}
			slices.Sort(got)
			if !slices.Equal(got, tc.want) {
				t.Errorf("violations:\n\t%s\nwant:\n\t%s", strings.Join(got, "\n\t"), strings.Join(tc.want, "\n\t"))
			}
		})
	}
}
