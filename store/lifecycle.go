package store

import (
	"fmt"
	"strings"
)

//go:generate go test -run TestLifecycleREADME -update-readme .

// None is the state of a session not yet recorded: the from-state of its
// first transition. No session is ever stored in it.
const None State = ""

// Edge is one allowed transition and what causes it.
type Edge struct {
	From, To State
	When     string
}

// lifecycle is the one table of DESIGN.md §2's lifecycle as the engine
// runs it, with what the project added: interrupted sessions (shutdown,
// crash), needs-reconciliation and the operator's resolution of it, Cortina Cancel at any point, and the
// release of an authorization the site refuses (a new session, a Remote
// Start whose station faulted meanwhile, or a declined or closed one
// that Nayax authorized late). Each pair
// appears once; When names every trigger of that pair.
var lifecycle = []Edge{
	{None, Requested, "Remote Start: start button, `sitelink start`, `start` command"},
	{None, Authorized, "Approved TransactionCallback for a transaction authorized on the terminal"},
	{None, Cancelling, "Approved TransactionCallback the site refuses (no such station, station busy or faulted): release the hold"},
	{None, NeedsReconciliation, "a refused authorization whose cancel cannot be built"},

	{Requested, Authorized, "Approved TransactionCallback"},
	{Requested, Declined, "Declined TransactionCallback, DeclineCallback, TimeoutCallback, trigger declined by Nayax"},
	{Requested, Closed, "no answer to the trigger, local stop, or controller restart"},
	{Requested, Cancelled, "Cortina Cancel/Void"},
	{Requested, Cancelling, "Approved TransactionCallback the site refuses (station faulted or busy): release the hold"},
	{Requested, NeedsReconciliation, "the same, but the cancel cannot be built"},

	{Authorized, Charging, "vehicle draws energy"},
	{Authorized, Stopping, "plug timeout, StopCallback, unplug, local stop, fault, contactor failed to close or opened, Cortina Cancel/Void, late Decline/TimeoutCallback"},
	{Authorized, Interrupted, "shutdown, or restart after a crash"},

	{Charging, Stopping, "StopCallback, unplug, local stop, fault, contactor opened, Cortina Cancel/Void, late Decline/TimeoutCallback"},
	{Charging, Interrupted, "shutdown, or restart after a crash"},

	{Stopping, Stopped, "contactor confirmed open, or given up on (energy taken at the stop)"},
	{Stopping, Interrupted, "shutdown, or restart after a crash"},

	{Interrupted, Stopped, "start-up reconcile, with the energy the meter vouches for"},
	{Interrupted, Cancelled, "Cortina Cancel/Void"},

	{Stopped, Settling, "energy ≥ `min_energy_wh` and a price above 0: Settlement / ExternalSettlement"},
	{Stopped, Cancelling, "less energy, or a price that rounds to 0: CancelTransaction / ExternalCancel"},
	{Stopped, Cancelled, "Nayax cancelled it (Cortina Cancel/Void)"},
	{Stopped, Closed, "never authorized: no money to release"},
	{Stopped, NeedsReconciliation, "Nayax ended the authorization (late Decline/TimeoutCallback), no terminal for the station, or the request cannot be built"},

	{Settling, Settled, "Nayax settled (or answered \"already done\")"},
	{Settling, Cancelled, "Cortina Cancel/Void while the settlement was on its way"},
	{Settling, NeedsReconciliation, "refused 5 times or unconfirmed for 24 h, or declined"},

	{Settled, NeedsReconciliation, "Cortina Cancel/Void after the settlement: money was taken for a cancelled transaction"},

	{Cancelling, Cancelled, "Nayax released the hold (or answered \"already done\"), or Cortina Cancel/Void"},
	{Cancelling, NeedsReconciliation, "51 (external cancel failed) or another decline"},

	{Declined, Cancelling, "late Approved TransactionCallback: release the hold"},
	{Declined, NeedsReconciliation, "the same, but the cancel cannot be built"},

	{Closed, Cancelling, "late Approved TransactionCallback: release the hold"},
	{Closed, NeedsReconciliation, "the same, but the cancel cannot be built"},

	{NeedsReconciliation, Reconciled, "an operator resolved it (`sitelink resolve`, `resolve` command), with a note"},
	{Reconciled, NeedsReconciliation, "Cortina Cancel/Void after the operator's resolution: whatever was settled by hand, Nayax now calls it cancelled"},
}

// stateInfo is what the engine and the ledger's indexes need to know of a
// state besides its edges.
type stateInfo struct {
	active bool // holds its station
	final  bool // holds no station and waits for nothing: out of the open index
}

// states lists every recorded state in lifecycle order.
var states = []struct {
	State
	stateInfo
}{
	{Requested, stateInfo{active: true}},
	{Authorized, stateInfo{active: true}},
	{Charging, stateInfo{active: true}},
	{Stopping, stateInfo{active: true}},
	{Interrupted, stateInfo{}},
	{Stopped, stateInfo{}},
	{Settling, stateInfo{}},
	{Cancelling, stateInfo{}},
	{Settled, stateInfo{final: true}},
	{Cancelled, stateInfo{final: true}},
	{Declined, stateInfo{final: true}},
	{Closed, stateInfo{final: true}},
	{NeedsReconciliation, stateInfo{final: true}},
	{Reconciled, stateInfo{final: true}},
}

var (
	stateIndex = func() map[State]stateInfo {
		m := make(map[State]stateInfo, len(states))
		for _, s := range states {
			m[s.State] = s.stateInfo
		}
		return m
	}()
	edgeIndex = func() map[[2]State]Edge {
		m := make(map[[2]State]Edge, len(lifecycle))
		for _, e := range lifecycle {
			m[[2]State{e.From, e.To}] = e
		}
		return m
	}()
)

// Active reports whether a session in this state holds its station.
func (s State) Active() bool { return stateIndex[s].active }

// Final reports whether a session in this state is finished: it holds no
// station and waits for no answer. Declined and closed sessions can still
// move on to release an authorization Nayax granted late.
func (s State) Final() bool { return stateIndex[s].final }

// Known reports whether s is a state of the lifecycle (None is not).
func (s State) Known() bool {
	_, ok := stateIndex[s]
	return ok
}

// States returns every recorded state, in lifecycle order.
func States() []State {
	out := make([]State, len(states))
	for i, s := range states {
		out[i] = s.State
	}
	return out
}

// Transitions returns the lifecycle's edges, in table order.
func Transitions() []Edge { return append([]Edge(nil), lifecycle...) }

// CanTransition reports whether a session may move from one state to
// another. The ledger does not enforce it (PutSession stores any state):
// the engine decides what to do with a refused transition.
func CanTransition(from, to State) bool {
	_, ok := edgeIndex[[2]State{from, to}]
	return ok
}

// CheckTransition returns nil for an allowed transition, else a
// *TransitionError naming both states.
func CheckTransition(from, to State) error {
	if CanTransition(from, to) {
		return nil
	}
	return &TransitionError{From: from, To: to}
}

// TransitionError is a transition the lifecycle does not allow.
type TransitionError struct {
	From, To State
}

func (e *TransitionError) Error() string {
	return fmt.Sprintf("session lifecycle: no transition from %s to %s", stateName(e.From), stateName(e.To))
}

// stateName quotes a state for messages and the README; None reads "(new)".
func stateName(s State) string {
	if s == None {
		return "(new)"
	}
	return "`" + string(s) + "`"
}

// Markers around the generated lifecycle section of README.md.
const (
	LifecycleBegin = "<!-- lifecycle:begin (generated from store/lifecycle.go by `go generate ./store`; do not edit) -->"
	LifecycleEnd   = "<!-- lifecycle:end -->"
)

// LifecycleMarkdown renders the lifecycle table as the README section,
// markers included, so the README is generated from the table and a test
// can tell when it drifted.
func LifecycleMarkdown() string {
	var b strings.Builder
	names := func(keep func(State) bool) string {
		var out []string
		for _, s := range States() {
			if keep(s) {
				out = append(out, stateName(s))
			}
		}
		return strings.Join(out, ", ")
	}
	b.WriteString(LifecycleBegin + "\n")
	b.WriteString("A session moves only along these edges (`store.CanTransition`); any other\n")
	b.WriteString("transition is refused and logged as a bug.\n\n")
	b.WriteString("- holding the station: " + names(State.Active) + "\n")
	b.WriteString("- final (no station, nothing pending): " + names(State.Final) + "\n\n")
	b.WriteString("| from | to | when |\n|---|---|---|\n")
	for _, e := range lifecycle {
		fmt.Fprintf(&b, "| %s | %s | %s |\n", stateName(e.From), stateName(e.To), e.When)
	}
	b.WriteString(LifecycleEnd + "\n")
	return b.String()
}
