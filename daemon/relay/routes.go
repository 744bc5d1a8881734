package relay

import (
	"log/slog"
	"sync"
	"time"

	"github.com/sitelink/sitelink/daemon/nayax"
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

	mu    sync.RWMutex
	nodes map[string]node
}

func newRoutes(log *slog.Logger) *routes {
	return &routes{log: log, nodes: map[string]node{}}
}

// normSerial is the routing key of a serial: nayax.NormSerial, the one
// serial rule ("0434334921100366" and 434334921100366 are one terminal;
// "" claims nothing).
func normSerial(s string) string { return nayax.NormSerial(s) }

func (n node) claims(machineID int64, serial string) bool {
	for _, m := range n.Machines {
		if (machineID != 0 && m.MachineID == machineID) || (serial != "" && normSerial(m.HwSerial) == serial) {
			return true
		}
	}
	return false
}

// update records a node's state; an empty payload (a cleared retained
// message) forgets the node. A terminal claimed by two nodes is logged: a
// controller was moved or misconfigured, and an operator must know.
func (r *routes) update(id string, st *wire.State) {
	var conflicts []string
	r.mu.Lock()
	if st == nil {
		delete(r.nodes, id)
		r.mu.Unlock()
		return
	}
	n := node{ID: id, Online: st.Online, Epoch: st.Epoch, At: st.At, Machines: st.Machines}
	r.nodes[id] = n
	for _, o := range r.nodes {
		if o.ID == id {
			continue
		}
		for _, m := range n.Machines {
			if o.claims(m.MachineID, normSerial(m.HwSerial)) {
				conflicts = append(conflicts, o.ID)
				break
			}
		}
	}
	r.mu.Unlock()
	for _, other := range conflicts {
		r.log.Warn("two site controllers claim one terminal; the online one with the newest birth gets its callbacks",
			"node", id, "other_node", other)
	}
}

// lookup finds the node for a terminal (machine id first, then serial).
// Among several claimants an online node wins over an offline one, then
// the newest state: a controller moved to new hardware and its old box
// shut down must not take the terminal back with its offline message.
func (r *routes) lookup(machineID int64, hwSerial string) (node, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	best, found := node{}, false
	for _, try := range []struct {
		id     int64
		serial string
	}{{machineID, ""}, {0, normSerial(hwSerial)}} {
		if try.id == 0 && try.serial == "" {
			continue
		}
		for _, n := range r.nodes {
			if !n.claims(try.id, try.serial) {
				continue
			}
			if !found || (n.Online && !best.Online) || (n.Online == best.Online && n.At.After(best.At)) {
				best, found = n, true
			}
		}
		if found {
			return best, true
		}
	}
	return node{}, false
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
