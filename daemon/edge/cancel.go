package edge

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/sitelink/sitelink/daemon/billing"
	"github.com/sitelink/sitelink/daemon/nayax"
	"github.com/sitelink/sitelink/daemon/wire"
	"github.com/sitelink/sitelink/store"
)

// cancelCommand handles a Cortina Prepaid Cancel/Void: Nayax tells us the
// transaction is cancelled (failed authorization, selection timeout, vend
// failure). The session is aborted — contactor off if on — and ends
// `cancelled`, with no settlement and no cancel request of our own.
func (e *engine) cancelCommand(cmd wire.Command, now time.Time) (wire.Answer, func(tx *store.Tx) error) {
	out := func(st nayax.CortinaStatus) wire.Answer { return wire.Answer{Status: cortinaStatus(st)} }
	req, err := nayax.DecodeCortinaCancel(cmd.Body)
	if err != nil {
		return out(nayax.CortinaDeclineFor(err)), nil
	}
	unknown := out(nayax.CortinaDeclined(nayax.CortinaUnknownTransaction, "unknown transaction"))
	s, err := e.find(func(tx *store.Tx) (store.Session, error) { return cortinaSession(tx, req) })
	if errors.Is(err, store.ErrNotFound) {
		return unknown, nil
	}
	if err != nil {
		return out(nayax.CortinaDeclined(nayax.CortinaGeneral, "ledger unavailable")), nil
	}
	// The machine named must be the session's terminal, or another
	// terminal of this node: never another site's.
	if terminalOfSession(&s).Conflict(req.MachineId.V, req.HwSerial.S) != "" {
		if _, ours := e.conf().TerminalFor(req.MachineId.V, req.HwSerial.S); !ours {
			return unknown, nil
		}
	}
	op := "Cancel"
	if o, _ := opOf(cmd.Body); o != "" {
		op = o
	}
	reason := fmt.Sprintf("%s %s", billing.StopNayaxCancel, op)
	if req.ReasonText.S != "" {
		reason += ": " + req.ReasonText.S
	}
	switch {
	case s.State == store.Cancelled:
		return out(nayax.CortinaApproved("already cancelled")), nil
	case s.State == store.Settling || s.State == store.Cancelling:
		// Nayax cancelled it while our own request was on its way: its
		// word stands; a late answer to our request finds nothing pending.
		return out(nayax.CortinaApproved("cancelled")), func(tx *store.Tx) error {
			s.Request = nil
			return e.transition(tx, &s, store.Cancelled, reason, now)
		}
	case s.State == store.Settled:
		// Money was taken for a transaction Nayax now calls cancelled:
		// Nayax gets its Approved, a human gets the session.
		return out(nayax.CortinaApproved("cancelled after settlement; flagged for reconciliation")), func(tx *store.Tx) error {
			return e.transition(tx, &s, store.NeedsReconciliation, "cancelled after settlement ("+reason+"): money was taken for a transaction Nayax cancelled", now)
		}
	case s.State.Final():
		// Declined, closed, cancelled, in reconciliation: nothing left
		// to abort.
		return out(nayax.CortinaApproved("transaction already ended: " + string(s.State))), nil
	case s.State.Active() && s.State != store.Requested:
		if err := e.openContactor(&s); err != nil {
			return out(nayax.CortinaDeclined(nayax.CortinaGeneral, "station could not stop: contactor did not confirm opening")), func(tx *store.Tx) error {
				if err := e.recordStopThen(tx, &s, reason, false, false, now); err != nil {
					return err
				}
				// Whatever the contactor does next, Nayax's cancel
				// decides the money (endOfService reads it).
				s.StopReason = reason
				return tx.PutSession(&s)
			}
		}
	}
	return out(nayax.CortinaApproved("cancelled")), func(tx *store.Tx) error {
		if s.State.Active() && s.State != store.Requested {
			if err := e.recordStopThen(tx, &s, reason, true, false, now); err != nil {
				return err
			}
		}
		return e.transition(tx, &s, store.Cancelled, reason, now)
	}
}

// maxCortinaID bounds the identifiers a Cortina cancel may name (36: a
// UUID, FLOWS.md).
const maxCortinaID = 36

// cortinaSession finds the session a Cortina Cancel/Void names, in
// FLOWS.md's order: NayaxTransactionId when non-zero, else
// BasicInfo.TransactionId (our SparkTransactionId echoed, or Nayax's id as
// a number), else PaymentInfo.SrvTranId (the same two ways).
func cortinaSession(tx *store.Tx, req nayax.CortinaCancel) (store.Session, error) {
	if id := req.NayaxTransactionId.V; id != 0 {
		return tx.SessionByNayax(id)
	}
	for _, id := range []string{strings.TrimSpace(req.TransactionId.S), strings.TrimSpace(req.SrvTranId.S)} {
		if id == "" || len(id) > maxCortinaID {
			continue
		}
		s, err := tx.Session(id)
		if err == nil || !errors.Is(err, store.ErrNotFound) {
			return s, err
		}
		// A number is Nayax's id (exactly: never through float64).
		if n, perr := strconv.ParseInt(id, 10, 64); perr == nil && n > 0 {
			s, err := tx.SessionByNayax(n)
			if err == nil || !errors.Is(err, store.ErrNotFound) {
				return s, err
			}
		}
	}
	return store.Session{}, store.ErrNotFound
}

// opOf reads the relay's "Operation" marker (Cancel or Void).
func opOf(body []byte) (string, error) {
	var v struct{ Operation string }
	err := jsonUnmarshal(body, &v)
	return v.Operation, err
}
