package edge

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/sitelink/sitelink/daemon/billing"
	"github.com/sitelink/sitelink/daemon/config"
	"github.com/sitelink/sitelink/daemon/nayax"
	"github.com/sitelink/sitelink/daemon/retry"
	"github.com/sitelink/sitelink/daemon/wire"
	"github.com/sitelink/sitelink/store"
)

// requestEvent is the event that carries a request kind to the relay.
var requestEvent = map[string]string{
	billing.KindStart:      wire.EventStartRequest,
	billing.KindSettlement: wire.EventSettlementRequest,
	billing.KindCancel:     wire.EventCancelRequest,
}

// terminalOf is the configured terminal a session's money requests name:
// the one it was authorized at, else the one paying for its station.
func (e *engine) terminalOf(s *store.Session) (config.Terminal, bool) {
	// The terminal the transaction was made at, as the session recorded
	// it, even if its station has moved to another terminal since.
	if t, ok := e.conf().TerminalFor(s.MachineID, s.HwSerial); ok {
		return t, true
	}
	return e.conf().TerminalOf(s.Station)
}

// endOfService runs in the transaction that records `stopped`: the
// settle-or-cancel decision and its request event commit together, so a
// decided cancel is never lost and goes out as soon as the link is up.
func (e *engine) endOfService(tx *store.Tx, s *store.Session, now time.Time) error {
	if billing.NayaxCancelled(s.StopReason) {
		// Nayax cancelled it (Cortina Cancel/Void, contactor slow to
		// open): nothing of ours to settle or cancel.
		s.Request = nil
		return e.transition(tx, s, store.Cancelled, s.StopReason, now)
	}
	if billing.AuthorizationDead(s.StopReason) {
		s.Request = nil
		return e.transition(tx, s, store.NeedsReconciliation, s.StopReason+": check the transaction at Nayax", now)
	}
	if s.NayaxTransactionID == 0 {
		// Never authorized: no money to release.
		return e.transition(tx, s, store.Closed, "no authorization to settle or cancel", now)
	}
	term, ok := e.terminalOf(s)
	if !ok {
		return e.transition(tx, s, store.NeedsReconciliation, "no terminal configured for station "+s.Station, now)
	}
	p := e.conf().Policy
	d, err := billing.Decide(*s, term, e.sessionTariff(s), p.MinEnergyWh)
	if d.Kind == billing.KindSettlement {
		// Kept even when the request cannot be built: the operator who
		// settles it by hand needs the amount.
		s.AmountMinor = d.Amount
	}
	if err != nil {
		return e.transition(tx, s, store.NeedsReconciliation, "cannot build the Nayax request: "+err.Error(), now)
	}
	if d.Kind == billing.KindSettlement && billing.TooLateToSettle(authorizedAt(s), now) {
		return e.transition(tx, s, store.NeedsReconciliation, tooLate+"; "+d.Why, now)
	}
	s.Request = &store.Request{Kind: d.Kind, Call: d.Call, Body: d.Body, FirstAt: now.UTC()}
	if err := e.transition(tx, s, d.To, d.Why, now); err != nil {
		return err
	}
	return e.sendRequest(tx, s, now)
}

// sendRequest queues (again) the session's pending request as an event.
func (e *engine) sendRequest(tx *store.Tx, s *store.Session, now time.Time) error {
	r := s.Request
	typ := requestEvent[r.Kind]
	node := e.conf().Node.ID
	entry, err := tx.Enqueue(node, typ, now, func(seq uint64, _ string) ([]byte, error) {
		return wire.EventPayload(node, seq, typ, now.UTC(), json.RawMessage(r.Body))
	})
	if err != nil {
		return err
	}
	r.EventIDs = append(r.EventIDs, entry.ID)
	r.Attempts++
	r.NextAt = now.Add(time.Duration(e.conf().Policy.ResultTimeout)).UTC()
	if r.Kind == billing.KindStart {
		// A start is sent once; the session waits for the card until the
		// terminal gives up, plus the result timeout.
		r.NextAt = now.Add(time.Duration(e.conf().Policy.TriggerTimeout) + time.Duration(e.conf().Policy.ResultTimeout)).UTC()
	}
	s.UpdatedAt = now.UTC()
	return tx.PutSession(s)
}

// backoff is the wait before a request is sent again after attempts
// (policy.retry_min doubled, capped at policy.retry_max, jittered).
func (e *engine) backoff(attempts int) time.Duration {
	p := e.conf().Policy
	return retry.Backoff{Min: p.RetryMin.D(), Max: p.RetryMax.D()}.Delay(attempts)
}

// retryRequests re-sends requests whose answer did not come in time.
func (e *engine) retryRequests(now time.Time) {
	var due []store.Session
	err := e.st.View(func(tx *store.Tx) error {
		open, err := tx.OpenSessions()
		for _, s := range open {
			if s.Request != nil && !now.Before(s.Request.NextAt) {
				due = append(due, s)
			}
		}
		return err
	})
	if err != nil {
		e.log.Error("list pending requests", "err", err)
		return
	}
	for i := range due {
		s := &due[i]
		err := e.commit(func(tx *store.Tx) error {
			cur, err := tx.Session(s.SparkTransactionID)
			if err != nil || cur.Request == nil {
				return err
			}
			// Still in the outbox (the link is down): it has not been
			// sent, so there is nothing to time out. Wait; never pile up
			// copies that would all leave at once on reconnect.
			if tooLateToSettle(&cur, now) {
				// Never sent in time (the link was down): too late now.
				return e.giveUpSettlement(tx, &cur, tooLate, now)
			}
			if waiting, err := e.unsent(tx, cur.Request); err != nil || waiting {
				cur.Request.NextAt = now.Add(time.Duration(e.conf().Policy.ResultTimeout)).UTC()
				if err != nil {
					return err
				}
				return tx.PutSession(&cur)
			}
			return e.retry(tx, &cur, "no answer from Nayax within "+time.Duration(e.conf().Policy.ResultTimeout).String(), now)
		})
		if err != nil {
			e.log.Error("retry request", "spark_transaction_id", s.SparkTransactionID, "err", err)
		}
	}
}

// resendAwaiting sends again, now, every settlement and cancel whose
// latest event left the outbox but got no result: a relay replica came
// online, and the event may have reached no one (relayWatch). One that
// was answered and waits out a backoff (Nayax asked for time) is left to
// its schedule; a start is never sent twice. Its cost is the open
// sessions, not the history.
func (e *engine) resendAwaiting(now time.Time) {
	var due []string
	err := e.st.View(func(tx *store.Tx) error {
		open, err := tx.OpenSessions()
		for _, s := range open {
			if awaitingAnswer(s.Request) {
				due = append(due, s.SparkTransactionID)
			}
		}
		return err
	})
	if err != nil {
		e.log.Error("list pending requests", "err", err)
		return
	}
	for _, id := range due {
		err := e.commit(func(tx *store.Tx) error {
			cur, err := tx.Session(id)
			if err != nil || !awaitingAnswer(cur.Request) {
				return err
			}
			if waiting, err := e.unsent(tx, cur.Request); err != nil || waiting {
				return err // the pump delivers it
			}
			return e.retry(tx, &cur, "a relay came online: the last event may have reached no one", now)
		})
		if err != nil {
			e.log.Error("resend request", "spark_transaction_id", id, "err", err)
		}
	}
}

// awaitingAnswer: r is a settlement or cancel whose latest event got no
// result yet.
func awaitingAnswer(r *store.Request) bool {
	return r != nil && r.Kind != billing.KindStart && len(r.EventIDs) > 0 &&
		!slices.Contains(r.Answered, r.EventIDs[len(r.EventIDs)-1])
}

// unsent reports whether the request's latest event is still in the
// outbox.
func (e *engine) unsent(tx *store.Tx, r *store.Request) (bool, error) {
	if len(r.EventIDs) == 0 {
		return false, nil
	}
	id := r.EventIDs[len(r.EventIDs)-1]
	seq, err := strconv.ParseUint(id[strings.LastIndexByte(id, '-')+1:], 10, 64)
	if err != nil {
		return false, nil
	}
	return tx.Queued(seq)
}

// retry sends the request again if its budget allows, else gives up as
// the kind requires: a start closes the session, a settlement goes to
// reconciliation, a cancel never gives up.
func (e *engine) retry(tx *store.Tx, s *store.Session, why string, now time.Time) error {
	r := s.Request
	switch r.Kind {
	case billing.KindStart:
		s.Request = nil
		return e.transition(tx, s, store.Closed, billing.StopStartNoAnswer, now)
	case billing.KindSettlement:
		if billing.Spent(r, now) {
			return e.giveUpSettlement(tx, s, why, now)
		}
		if tooLateToSettle(s, now) {
			return e.giveUpSettlement(tx, s, tooLate, now)
		}
	}
	e.log.Warn("sending Nayax request again", "spark_transaction_id", s.SparkTransactionID, "call", r.Call, "attempt", r.Attempts+1, "why", why)
	if err := e.sendRequest(tx, s, now); err != nil {
		return err
	}
	// Silence from Nayax grows the wait too (capped, jittered).
	r.NextAt = r.NextAt.Add(e.backoff(r.Attempts - 1))
	return tx.PutSession(s)
}

// schedule sets when a request that failed is sent again: after a capped,
// jittered backoff (Nayax asked to be left alone for a while), or never
// for a settlement whose budget is spent.
func (e *engine) schedule(tx *store.Tx, s *store.Session, why string, refused bool, now time.Time) error {
	r := s.Request
	if refused {
		r.Failures++
	}
	if tooLateToSettle(s, now) {
		return e.giveUpSettlement(tx, s, tooLate+"; last: "+why, now)
	}
	if r.Kind == billing.KindSettlement && billing.Spent(r, now) {
		return e.giveUpSettlement(tx, s, why, now)
	}
	r.NextAt = now.Add(e.backoff(r.Attempts)).UTC()
	e.log.Warn("Nayax request failed; will retry", "spark_transaction_id", s.SparkTransactionID, "call", r.Call, "attempts", r.Attempts, "next_at", r.NextAt, "why", why)
	return tx.PutSession(s)
}

// tooLate says why a settlement is not sent past billing.SettleDeadline.
const tooLate = "authorized more than 48 h ago: Nayax no longer takes a settlement"

// tooLateToSettle: s has a settlement pending that Nayax would no longer
// take (billing.SettleDeadline after the authorization).
func tooLateToSettle(s *store.Session, now time.Time) bool {
	return s.Request != nil && s.Request.Kind == billing.KindSettlement && billing.TooLateToSettle(authorizedAt(s), now)
}

// authorizedAt is when the session was authorized (its creation, for one
// that never recorded it).
func authorizedAt(s *store.Session) time.Time {
	for _, h := range s.History {
		if h.State == store.Authorized {
			return h.At
		}
	}
	return s.CreatedAt
}

func (e *engine) giveUpSettlement(tx *store.Tx, s *store.Session, why string, now time.Time) error {
	r := s.Request
	s.Request = nil
	return e.transition(tx, s, store.NeedsReconciliation, fmt.Sprintf("settlement not confirmed after %d attempts (%d refused) since %s (%s)", r.Attempts, r.Failures, r.FirstAt.Format(time.RFC3339), why), now)
}

// resultCommand records Nayax's answer to one of our requests.
func (e *engine) resultCommand(cmd wire.Command, now time.Time) (wire.Answer, func(tx *store.Tx) error) {
	ok := approved()
	r, err := wire.DecodeResult(cmd.Body)
	if err != nil {
		return declined(cmd, nayax.CodeValidation, "result: "+err.Error()), nil
	}
	var s store.Session
	var found bool
	err = e.st.View(func(tx *store.Tx) error {
		open, err := tx.OpenSessions()
		for _, o := range open {
			if o.Request != nil && slices.Contains(o.Request.EventIDs, r.EventID) {
				s, found = o, true
			}
		}
		return err
	})
	if err != nil {
		return declined(cmd, nayax.CodeGeneral, "ledger unavailable"), nil
	}
	if !found || slices.Contains(s.Request.Answered, r.EventID) {
		// A late or repeated result for a request already answered: the
		// first result for an event is the one that counts.
		e.log.Info("result for no pending request", "event", r.EventID, "outcome", r.Outcome)
		return ok, nil
	}
	ans := &store.Answer{Call: r.Call, Outcome: string(r.Outcome), At: now.UTC()}
	if r.Status != nil {
		ans.Code, ans.Description = resultCode(r), strings.TrimSpace(r.Status.ErrorDescription+" "+r.Status.StatusMessage)
	}
	if r.Error != "" {
		ans.Description = r.Error
	}
	if kind := s.Request.Kind; (kind == billing.KindSettlement || kind == billing.KindCancel) && r.Outcome != wire.OutcomeError && r.Outcome != wire.OutcomeRefused {
		// Every answer Nayax gave to the money request is kept whole
		// (the last one wins: a retry's answer supersedes).
		p := &store.PaymentRecord{Call: r.Call, Code: ans.Code, At: ans.At}
		if r.Status != nil {
			p.Verdict = r.Status.Verdict
		}
		if rec := r.Record; rec != nil {
			p.AuthCode, p.NayaxRRN, p.FiscalRrn = rec.AuthCode, rec.NayaxRRN, rec.FiscalRrn
			p.Amount, p.SeTime, p.MachineAuTime = rec.Amount, rec.SeTime, rec.MachineAuTime
		}
		s.Payment = p
	}
	return ok, func(tx *store.Tx) error {
		s.LastAnswer = ans
		s.AddAnswer(*ans)
		e.answers.note(ans)
		s.Request.Answered = append(s.Request.Answered, r.EventID)
		return e.applyResult(tx, &s, r, now)
	}
}

// resultCode is Nayax's ErrorCode in a result, nayax.CodeNone if none.
func resultCode(r wire.Result) int {
	if r.Status == nil || r.Status.ErrorCode == nil {
		return nayax.CodeNone
	}
	return *r.Status.ErrorCode
}

func (e *engine) applyResult(tx *store.Tx, s *store.Session, r wire.Result, now time.Time) error {
	kind := s.Request.Kind
	done := r.Outcome == wire.OutcomeApproved || r.Outcome == wire.OutcomeAlreadyDone
	switch {
	case done && kind == billing.KindStart:
		// The terminal waits for the card; the session waits for the
		// TransactionCallback (its deadline was set when sent).
		return tx.PutSession(s)
	case r.Outcome == wire.OutcomeAlreadyDone && (kind == billing.KindSettlement || kind == billing.KindCancel):
		// Our request may have reached Nayax before (a lost result, a
		// resend): "already done" completes it, unless it says the
		// transaction ended the other way.
		s.Request = nil
		fine, why := billing.AlreadyDone(kind, s.LastAnswer.Description)
		switch {
		case !fine:
			return e.transition(tx, s, store.NeedsReconciliation, why, now)
		case kind == billing.KindSettlement:
			return e.transition(tx, s, store.Settled, why, now)
		}
		return e.transition(tx, s, store.Cancelled, why, now)
	case done && kind == billing.KindSettlement:
		s.Request = nil
		return e.transition(tx, s, store.Settled, "Nayax settled", now)
	case done && kind == billing.KindCancel:
		s.Request = nil
		return e.transition(tx, s, store.Cancelled, "Nayax released the hold", now)
	case r.Outcome == wire.OutcomeError:
		if kind == billing.KindStart {
			return e.retry(tx, s, r.Error, now) // closes it
		}
		return e.schedule(tx, s, "no answer from Nayax: "+r.Error, false, now)
	}
	if r.Outcome == wire.OutcomeRefused {
		// Never sent to Nayax, and sending it again changes nothing (the
		// ticket is missing or not ours, a terminal we do not own): an
		// operator must look. A start's hold was never asked for.
		s.Request = nil
		if kind == billing.KindStart {
			return e.transition(tx, s, store.Declined, billing.StopStartFailed+" (the relay refused it: "+r.Error+")", now)
		}
		return e.transition(tx, s, store.NeedsReconciliation, "the relay did not send "+r.Call+" to Nayax: "+r.Error, now)
	}
	// Declined.
	code := resultCode(r)
	switch {
	case kind == billing.KindStart:
		s.Request = nil
		return e.transition(tx, s, store.Declined, fmt.Sprintf("%s (%d)", billing.StopStartFailed, code), now)
	case kind == billing.KindSettlement && code == nayax.CodeExternalSettlementFailed:
		return e.schedule(tx, s, "Nayax answered 50 (external settlement failed)", true, now)
	case kind == billing.KindCancel && code == nayax.CodeExternalCancelFailed:
		s.Request = nil
		return e.transition(tx, s, store.NeedsReconciliation, "Nayax answered 51 (external cancel failed): Nayax's AutoCancel takes over if enabled; check the transaction", now)
	}
	s.Request = nil
	return e.transition(tx, s, store.NeedsReconciliation, fmt.Sprintf("Nayax declined %s with %d: %s", r.Call, code, s.LastAnswer.Description), now)
}
