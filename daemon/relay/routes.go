package relay

import (
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/sitelink/sitelink/daemon/nayax"
	"github.com/sitelink/sitelink/daemon/wire"
)

// node is what the relay knows of a site controller from its retained
// state message: whether it is online, and what it claims.
type node struct {
	ID       string
	Online   bool
	Epoch    int64
	At       time.Time
	Machines []wire.Machine
	// Conflict: its state says a second daemon uses this node id
	// (wire.State.NodeIDConflict).
	Conflict bool
}

// Reasons a node's claim to a terminal is ignored (metric labels).
const (
	claimUnregistered = "unregistered" // no P/terminals message names the terminal
	claimOtherOwner   = "other-owner"  // P/terminals gives it to another node
)

// routes maps Nayax machine ids and HW serials to the nodes that own them.
// Ownership comes only from the retained P/terminals/+ messages, which the
// fleet's operator writes and nodes cannot (the broker's ACL): a node's
// state says whether it is online, and the terminals it lists there are
// claims, compared with the registry and reported, never followed. Every
// replica builds its own copy from the retained messages, so any replica
// can answer for any node.
//
// Lookups and updates cost O(1) (the terminals of one message), never a
// scan of the fleet: the indexes map a machine id or normalized serial to
// the registry keys that name it (one, unless an operator gave one
// terminal two entries; then the newest wins).
type routes struct {
	log *slog.Logger
	// claim counts one ignored claim, by reason (set by the relay);
	// claimLog bounds the log lines of them (a node that keeps changing
	// its claims cannot flood the log; the metric counts them all).
	claim    func(reason string)
	claimLog rate.Sometimes

	mu        sync.RWMutex
	nodes     map[string]node
	terms     map[string]wire.Terminal // registry key -> owner
	byMachine map[int64][]string
	bySerial  map[string][]string
	// machineOwner and serialOwner are owner's answer for each machine
	// id and normalized serial, worked out again for the terminals of a
	// registry message when it is applied: a callback's lookup is one
	// map read.
	machineOwner map[int64]string
	serialOwner  map[string]string
	disputed     map[string]string // node -> its ignored claims as last logged
	// seen is the broker connection on which each registry key was
	// last received.
	seen map[string]any
}

func newRoutes(log *slog.Logger) *routes {
	return &routes{log: log, claim: func(string) {}, claimLog: rate.Sometimes{First: 20, Interval: time.Minute}, nodes: map[string]node{}, terms: map[string]wire.Terminal{},
		byMachine: map[int64][]string{}, bySerial: map[string][]string{}, machineOwner: map[int64]string{}, serialOwner: map[string]string{},
		disputed: map[string]string{}, seen: map[string]any{}}
}

// normSerial is the routing key of a serial: nayax.NormSerial, the one
// serial rule ("0434334921100366" and 434334921100366 are one terminal;
// "" claims nothing).
func normSerial(s string) string { return nayax.NormSerial(s) }

// setTerminal records the owner of the terminal under registry key (or
// its removal, t.Removed); nil (a cleared retained message) forgets the
// key. A message older than the one held is not applied: stale reports
// the held one, which the caller publishes again so that the broker's
// retained copy converges on the newest.
func (r *routes) setTerminal(key string, t *wire.Terminal, conn any) (stale *wire.Terminal) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.seen[key] = conn
	if old, ok := r.terms[key]; ok && t != nil && old.At.After(t.At) {
		return &old
	}
	if old, ok := r.terms[key]; ok {
		if old.MachineID > 0 {
			r.byMachine[old.MachineID] = dropKey(r.byMachine[old.MachineID], key)
			if len(r.byMachine[old.MachineID]) == 0 {
				delete(r.byMachine, old.MachineID)
			}
		}
		if s := normSerial(old.HwSerial); s != "" {
			r.bySerial[s] = dropKey(r.bySerial[s], key)
			if len(r.bySerial[s]) == 0 {
				delete(r.bySerial, s)
			}
		}
		delete(r.terms, key)
		defer r.reown(old.MachineID, old.HwSerial)
	}
	if t == nil {
		return nil
	}
	r.terms[key] = *t
	if t.Removed {
		return nil
	}
	defer r.reown(t.MachineID, t.HwSerial)
	if t.MachineID > 0 {
		r.byMachine[t.MachineID] = append(r.byMachine[t.MachineID], key)
	}
	if s := normSerial(t.HwSerial); s != "" {
		r.bySerial[s] = append(r.bySerial[s], key)
	}
	if keys := r.keysOf(t.MachineID, t.HwSerial); len(keys) > 1 {
		r.log.Warn("two entries of P/terminals name one terminal; the newest counts: remove the stale one",
			"keys", strings.Join(keys, ","), "machine_id", t.MachineID, "hw_serial", t.HwSerial)
	}
	return nil
}

// unseen returns the registry entries (removals included) held but not
// received on broker connection conn: a while after it came up, the
// broker has lost them (restarted without its data), and the relay puts
// them back.
func (r *routes) unseen(conn any) map[string]wire.Terminal {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := map[string]wire.Terminal{}
	for k, t := range r.terms {
		if r.seen[k] != conn {
			out[k] = t
		}
	}
	return out
}

func dropKey(keys []string, key string) []string {
	return slices.DeleteFunc(keys, func(k string) bool { return k == key })
}

// keysOf lists the registry keys naming a terminal by machine id or
// serial. The caller holds r.mu.
func (r *routes) keysOf(machineID int64, serial string) []string {
	var keys []string
	if machineID > 0 {
		keys = append(keys, r.byMachine[machineID]...)
	}
	if s := normSerial(serial); s != "" {
		for _, k := range r.bySerial[s] {
			if !slices.Contains(keys, k) {
				keys = append(keys, k)
			}
		}
	}
	return keys
}

// owner is the registry's owner of a terminal: by machine id first, then
// by serial; among several entries the newest. The caller holds r.mu.
func (r *routes) owner(machineID int64, serial string) (string, bool) {
	if machineID > 0 {
		if n, ok := r.machineOwner[machineID]; ok {
			return n, true
		}
	}
	if s := normSerial(serial); s != "" {
		n, ok := r.serialOwner[s]
		return n, ok
	}
	return "", false
}

// reown works out owner's answers for a machine id and a serial whose
// registry entries changed. The caller holds r.mu for writing.
func (r *routes) reown(machineID int64, serial string) {
	if machineID > 0 {
		if n, ok := r.newest(r.byMachine[machineID]); ok {
			r.machineOwner[machineID] = n
		} else {
			delete(r.machineOwner, machineID)
		}
	}
	if s := normSerial(serial); s != "" {
		if n, ok := r.newest(r.bySerial[s]); ok {
			r.serialOwner[s] = n
		} else {
			delete(r.serialOwner, s)
		}
	}
}

// newest is the owner in the newest of the registry entries keys.
func (r *routes) newest(keys []string) (string, bool) {
	best, found := wire.Terminal{}, false
	for _, k := range keys {
		if t := r.terms[k]; !found || t.At.After(best.At) {
			best, found = t, true
		}
	}
	return best.Node, found
}

// update records a node's state; nil (a cleared retained message) forgets
// the node. Its machines are checked against the registry: a claim to a
// terminal the registry gives to nobody or to another node is ignored,
// counted, and logged when the node's set of such claims changes (a
// controller moved without its registry entry, a misconfiguration, or a
// stolen key trying to take another site's callbacks).
func (r *routes) update(id string, st *wire.State) {
	r.mu.Lock()
	if st == nil {
		delete(r.nodes, id)
		delete(r.disputed, id)
		r.mu.Unlock()
		return
	}
	r.nodes[id] = node{ID: id, Online: st.Online, Epoch: st.Epoch, At: st.At, Machines: st.Machines, Conflict: st.NodeIDConflict}
	var bad []string
	for _, m := range st.Machines {
		owner, ok := r.owner(m.MachineID, m.HwSerial)
		switch {
		case !ok:
			r.claim(claimUnregistered)
			bad = append(bad, terminalName(m)+" (not in P/terminals)")
		case owner != id:
			r.claim(claimOtherOwner)
			bad = append(bad, terminalName(m)+" (owned by "+owner+")")
		}
	}
	summary := strings.Join(bad, ", ")
	changed := summary != r.disputed[id]
	r.disputed[id] = summary
	r.mu.Unlock()
	if changed && summary != "" {
		r.claimLog.Do(func() {
			r.log.Warn("ignoring a site controller's claim to terminals it does not own; its callbacks go by P/terminals (sitelink fleet terminals)",
				"node", id, "terminals", summary)
		})
	}
}

func terminalName(m wire.Machine) string {
	switch {
	case m.MachineID > 0 && m.HwSerial != "":
		return "machine " + strconv.FormatInt(m.MachineID, 10) + "/serial " + m.HwSerial
	case m.MachineID > 0:
		return "machine " + strconv.FormatInt(m.MachineID, 10)
	}
	return "serial " + m.HwSerial
}

// lookup finds the node that owns a terminal (by machine id first, then
// serial) in the registry, with what its state says (a node that never
// published one is offline).
func (r *routes) lookup(machineID int64, hwSerial string) (node, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	id, ok := r.owner(machineID, hwSerial)
	if !ok {
		return node{}, false
	}
	if n, ok := r.nodes[id]; ok {
		return n, true
	}
	return node{ID: id}, true
}

// ownerOf is owner for callers outside routes.
func (r *routes) ownerOf(machineID int64, serial string) (string, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.owner(machineID, serial)
}

// nodeStates returns how many nodes' last state says online (the relay's
// own view, which decides whether a stop is sent or queued) and how many
// say a second daemon uses their node id (their commands reach whichever
// of the two holds the broker). One pass over the nodes, per scrape.
func (r *routes) nodeStates() (online, conflicts int) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	for _, nd := range r.nodes {
		if nd.Online {
			online++
		}
		if nd.Conflict {
			conflicts++
		}
	}
	return online, conflicts
}

// counts returns the number of nodes with a state and of registered
// terminals.
func (r *routes) counts() (nodes, terminals int) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	for _, t := range r.terms {
		if !t.Removed {
			terminals++
		}
	}
	return len(r.nodes), terminals
}
