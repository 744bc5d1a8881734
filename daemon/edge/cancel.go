package edge

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
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
	// An id is guessable: the cancel must also name the session's
	// machine (or another terminal of this node), its site and its
	// amount. A mismatch is answered like an unknown id, so a guesser
	// learns nothing, and nothing stops.
	if field := e.cortinaMismatch(req, &s); field != "" {
		e.cortinaRefused.add(field)
		e.log.Warn("Cortina cancel refused: its transaction id names a session, its "+field+" does not",
			"spark_transaction_id", s.SparkTransactionID, "mismatch", field)
		return unknown, nil
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
	case s.State == store.Reconciled:
		// An operator settled it by hand (maybe took the money); Nayax
		// now calls it cancelled: the operator looks again.
		return out(nayax.CortinaApproved("cancelled after it was resolved by hand; flagged for reconciliation")), func(tx *store.Tx) error {
			return e.transition(tx, &s, store.NeedsReconciliation, "cancelled after it was resolved by hand ("+reason+"): check the resolution against Nayax", now)
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

// Fields of a Cortina cancel that can disagree with the session its id
// names (cortinaMismatch), the label of sitelink_cortina_cancels_refused_total.
const (
	mismatchMachine = "machine"
	mismatchSite    = "site"
	mismatchAmount  = "amount"
)

// cortinaMismatch returns which of a Cortina cancel's machine, site and
// amount does not agree with s, the session its id named, or "":
//   - MachineInfo.Id / DeviceInfo.HwSerial must name s's terminal, or
//     another terminal of this node, and nothing else (both identifiers,
//     when given, the same terminal);
//   - BasicInfo.SiteId must equal s's SiteId when both are known;
//   - BasicInfo.Amount and PaymentInfo.AuthAmount, each where present,
//     must be s's authorized amount, exactly, in s's currency decimals;
//     a 0 counts as absent only while s is `requested` (a Remote Start
//     whose card never authorized: no money is held, and a failed
//     authorization may be reported with no amount).
func (e *engine) cortinaMismatch(req nayax.CortinaCancel, s *store.Session) string {
	if !e.cortinaMachine(req, s) {
		return mismatchMachine
	}
	if req.SiteId.Valid() && s.SiteID != "" && !sameSiteID(req.SiteId, s.SiteID) {
		return mismatchSite
	}
	dp := e.sessionTariff(s).DecimalPlace
	for _, a := range []nayax.Amount{req.Amount, req.AuthAmount} {
		if !a.Valid || (a.V == 0 && s.State == store.Requested) {
			continue
		}
		if v, err := billing.ParseAmount(a.Decimal(), dp); err != nil || v != s.AuthorizedMinor {
			return mismatchAmount
		}
	}
	return ""
}

// cortinaMachine reports whether the cancel's machine is s's terminal
// (an identifier equal to the session's, none different) or a terminal
// of this node's configuration (without naming two terminals).
func (e *engine) cortinaMachine(req nayax.CortinaCancel, s *store.Session) bool {
	id, serial := req.MachineId.V, req.HwSerial.S
	own := terminalOfSession(s)
	if own.Conflict(id, serial) == "" &&
		((id != 0 && id == own.MachineID) || (nayax.NormSerial(serial) != "" && nayax.SameSerial(serial, own.HwSerial))) {
		return true
	}
	t, ours := e.conf().TerminalFor(id, serial)
	return ours && t.Conflict(id, serial) == ""
}

// sameSiteID compares a Cortina SiteId with the session's, recorded from
// the TransactionCallback as Nayax wrote it: as numbers when both are
// (2, "2" and "02" are one site), else as text.
func sameSiteID(got nayax.Literal, recorded string) bool {
	rec, err := nayax.ParseLiteral(recorded)
	if err != nil {
		return false
	}
	a, b := strings.TrimSpace(got.Value()), strings.TrimSpace(rec.Value())
	x, errA := strconv.ParseInt(a, 10, 64)
	y, errB := strconv.ParseInt(b, 10, 64)
	if errA == nil && errB == nil {
		return x == y
	}
	return a == b
}

// cortinaRefusals counts the Cortina cancels refused by cortinaMismatch,
// by the field that disagreed; the engine adds, the metrics read.
type cortinaRefusals struct {
	machine, site, amount atomic.Int64
}

func (c *cortinaRefusals) add(field string) {
	switch field {
	case mismatchMachine:
		c.machine.Add(1)
	case mismatchSite:
		c.site.Add(1)
	case mismatchAmount:
		c.amount.Add(1)
	}
}

// opOf reads the relay's "Operation" marker (Cancel or Void).
func opOf(body []byte) (string, error) {
	var v struct{ Operation string }
	err := jsonUnmarshal(body, &v)
	return v.Operation, err
}
