package edge

import (
	"github.com/sitelink/sitelink/daemon/wire"
	"github.com/sitelink/sitelink/store"
)

// recentNoops is how many replies to commands that changed nothing are
// remembered: minutes of a relay's retries at any rate Nayax calls, while
// a flood of commands for unknown transactions costs a few hundred KB of
// memory and nothing in the ledger.
const recentNoops = 1000

// recent remembers the replies to the last recentNoops commands that
// changed nothing (an unknown transaction, a repeat, a refusal), so that
// a re-delivery gets the same answer. They are kept in memory only: the
// ledger's inbox, durable for 72 h, is for commands that moved money or a
// contactor, and a command that changed nothing is answered the same way
// if it comes again after a restart. It is the engine's: no locking.
type recent struct {
	ring []string // ids, oldest overwritten first
	next int
	by   map[string]store.InboxEntry
}

func newRecent(n int) *recent {
	return &recent{ring: make([]string, n), by: make(map[string]store.InboxEntry, n)}
}

// put remembers e, forgetting the oldest entry once full.
func (r *recent) put(e store.InboxEntry) {
	if _, ok := r.by[e.ID]; ok {
		r.by[e.ID] = e
		return
	}
	if old := r.ring[r.next]; old != "" {
		delete(r.by, old)
	}
	r.ring[r.next] = e.ID
	r.by[e.ID] = e
	r.next = (r.next + 1) % len(r.ring)
}

// get returns the remembered reply to the command id.
func (r *recent) get(id string) (store.InboxEntry, bool) {
	e, ok := r.by[id]
	return e, ok
}

func (r *recent) len() int { return len(r.by) }

// Reasons of commands answered without acting, the keys of their summary
// line and the labels of sitelink_commands_noop_total: the command types,
// a replay, or another type (a topic can name anything).
const (
	noopReplay = "replay"
	noopOther  = "other"
)

var noopReasons = []string{
	wire.CommandAuthorize, wire.CommandStop, wire.CommandCancel, wire.CommandDecline, wire.CommandTimeout,
	wire.CommandStart, wire.CommandResult, wire.CommandRebirth, wire.CommandInfo, wire.CommandStopNotify, wire.CommandResolve, noopReplay, noopOther,
}

// noopReason is the label of a command type.
func noopReason(typ string) string {
	for _, r := range noopReasons[:len(noopReasons)-2] {
		if r == typ {
			return r
		}
	}
	return noopOther
}
