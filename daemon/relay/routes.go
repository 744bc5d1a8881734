package relay

import (
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/sitelink/sitelink/daemon/wire"
)

// node is what the relay knows of a site controller from its retained
// state message.
type node struct {
	ID       string
	Online   bool
	Epoch    int64
	At       time.Time
	Machines []wire.Machine
}

// routes maps Nayax machine ids and HW serials to nodes, learned from the
// retained `P/nodes/+/state` births and wills. Every replica builds its
// own copy, so any replica can answer for any node.
type routes struct {
	log *slog.Logger

	mu        sync.RWMutex
	nodes     map[string]node
	byMachine map[int64]string
	bySerial  map[string]string // serial without leading zeros
}

func newRoutes(log *slog.Logger) *routes {
	return &routes{log: log, nodes: map[string]node{}, byMachine: map[int64]string{}, bySerial: map[string]string{}}
}

// normSerial makes "0434334921100366" and 434334921100366 the same key:
// Nayax sends serials as numbers that lose their leading zeros.
func normSerial(s string) string { return strings.TrimLeft(strings.TrimSpace(s), "0") }

// update records a node's state. An empty payload (a cleared retained
// message) forgets the node. When two nodes claim one machine, the newer
// birth wins and the conflict is logged: a controller was moved or
// misconfigured, and an operator must know.
func (r *routes) update(id string, st *wire.State) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if old, ok := r.nodes[id]; ok {
		for _, m := range old.Machines {
			if r.byMachine[m.MachineID] == id {
				delete(r.byMachine, m.MachineID)
			}
			if k := normSerial(m.HwSerial); k != "" && r.bySerial[k] == id {
				delete(r.bySerial, k)
			}
		}
		delete(r.nodes, id)
	}
	if st == nil {
		return
	}
	n := node{ID: id, Online: st.Online, Epoch: st.Epoch, At: st.At, Machines: st.Machines}
	r.nodes[id] = n
	claim := func(kind string, other string, set func()) {
		if other != "" && other != id {
			o := r.nodes[other]
			r.log.Warn("two site controllers claim one terminal; the newer birth wins",
				"terminal", kind, "node", id, "other_node", other, "node_at", n.At, "other_at", o.At)
			if o.At.After(n.At) {
				return
			}
		}
		set()
	}
	for _, m := range st.Machines {
		if m.MachineID != 0 {
			claim("machine_id", r.byMachine[m.MachineID], func() { r.byMachine[m.MachineID] = id })
		}
		if k := normSerial(m.HwSerial); k != "" {
			claim("hw_serial", r.bySerial[k], func() { r.bySerial[k] = id })
		}
	}
}

// lookup finds the node for a terminal, by machine id first.
func (r *routes) lookup(machineID int64, hwSerial string) (node, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	id, ok := r.byMachine[machineID]
	if !ok || machineID == 0 {
		id, ok = r.bySerial[normSerial(hwSerial)]
		if normSerial(hwSerial) == "" {
			ok = false
		}
	}
	if !ok {
		return node{}, false
	}
	return r.nodes[id], true
}

// all returns every known node.
func (r *routes) all() []node {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make([]node, 0, len(r.nodes))
	for _, n := range r.nodes {
		out = append(out, n)
	}
	return out
}
