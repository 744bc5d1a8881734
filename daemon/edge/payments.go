package edge

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/sitelink/sitelink/daemon/config"
	"github.com/sitelink/sitelink/daemon/nayax"
	"github.com/sitelink/sitelink/daemon/wire"
	"github.com/sitelink/sitelink/store"
)

// Request kinds and the events that carry them to the relay.
const (
	kindStart      = "start"
	kindSettlement = "settlement"
	kindCancel     = "cancel"
)

var requestEvent = map[string]string{
	kindStart:      "start-request",
	kindSettlement: "settlement-request",
	kindCancel:     "cancel-request",
}

// Settlement retry budget: Nayax accepts an ExternalSettlement within 48 h
// and asks for at most 5 attempts in 24 h after a failure (code 50).
const (
	settleMaxAttempts = 5
	settleWindow      = 24 * time.Hour
)

// Stop reasons the engine records; reasonKind maps them to the cancel
// reason table.
const (
	stopPlugTimeout    = "no vehicle within plug timeout"
	stopNoDraw         = "vehicle drew no energy within plug timeout"
	stopUnplugged      = "vehicle unplugged"
	stopCard           = "StopCallback (card presented)"
	stopLocal          = "stopped locally"
	stopFault          = "station fault"
	stopContactorOpen  = "contactor opened outside a stop"
	stopShutdown       = "shutdown"
	stopInterrupted    = "interrupted"
	stopDaemonRestart  = "daemon restarted"
	stopStartRefused   = "station unavailable"
	stopStartNoAnswer  = "no card presented before the trigger timed out"
	stopStartFailed    = "Nayax did not accept the start request"
	stopNotAuthorizing = "authorized after the session was closed"
	stopNayaxCancel    = "Nayax" // + " Cancel" / " Void": Cortina told us
)

func reasonKind(s *store.Session) ReasonKind {
	if s.EnergyWh > 0 {
		return ReasonBelowMinimum
	}
	r := s.StopReason
	switch {
	case strings.HasPrefix(r, stopPlugTimeout), strings.HasPrefix(r, stopNoDraw):
		return ReasonNoVehicle
	case strings.HasPrefix(r, stopFault), strings.HasPrefix(r, stopContactorFailed), strings.HasPrefix(r, stopContactorOpen), strings.HasPrefix(r, stopStartRefused):
		return ReasonStationFault
	case strings.HasPrefix(r, stopUnplugged):
		return ReasonUnplugged
	case strings.HasPrefix(r, stopCard), strings.HasPrefix(r, stopLocal):
		return ReasonUserStop
	}
	return ReasonInterrupted
}

// terminalOf is the configured terminal that pays for the session's
// station.
func (e *engine) terminalOf(s *store.Session) (config.Terminal, bool) {
	for _, t := range e.conf().Terminals {
		if t.HasStation(s.Station) {
			return t, true
		}
	}
	return e.conf().TerminalFor(s.MachineID, s.HwSerial)
}

// endOfService runs in the transaction that records `stopped`: the
// settle-or-cancel decision and its request event commit together, so a
// decided cancel is never lost and goes out as soon as the link is up.
func (e *engine) endOfService(tx *store.Tx, s *store.Session, now time.Time) error {
	if strings.HasPrefix(s.StopReason, stopNayaxCancel+" ") {
		// Nayax cancelled it (Cortina Cancel/Void, contactor slow to
		// open): nothing of ours to settle or cancel.
		s.Request = nil
		return e.transition(tx, s, store.Cancelled, s.StopReason, now)
	}
	if s.NayaxTransactionID == 0 {
		// Never authorized: no money to release.
		return e.transition(tx, s, store.Closed, "no authorization to settle or cancel", now)
	}
	term, ok := e.terminalOf(s)
	if !ok {
		return e.transition(tx, s, store.NeedsReconciliation, "no terminal configured for station "+s.Station, now)
	}
	var (
		kind, call string
		body       json.RawMessage
		err        error
		to         store.State
		why        string
	)
	if min := e.conf().Policy.MinEnergyWh; s.EnergyWh > 0 && s.EnergyWh >= min {
		t := e.conf().Tariff
		if s.Tariff != nil {
			t = config.Tariff(*s.Tariff)
		}
		s.Amount = Amount(s.EnergyWh, s.AuthorizedAmount, t)
		kind, to = kindSettlement, store.Settling
		why = fmt.Sprintf("%.1f Wh delivered: settle %.*f %s", s.EnergyWh, t.DecimalPlace, s.Amount, t.Currency)
		call, body, err = SettlementRequest(*s, term, s.Amount)
	} else {
		k := reasonKind(s)
		code, text := Reason(k)
		kind, to = kindCancel, store.Cancelling
		why = fmt.Sprintf("no service provided (%s %s): release the hold", code, text)
		call, body, err = CancelRequest(*s, term, k)
	}
	if err != nil {
		return e.transition(tx, s, store.NeedsReconciliation, "cannot build the Nayax request: "+err.Error(), now)
	}
	s.Request = &store.Request{Kind: kind, Call: call, Body: body, FirstAt: now.UTC()}
	if err := e.transition(tx, s, to, why, now); err != nil {
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
	if r.Kind == kindStart {
		// A start is sent once; the session waits for the card until the
		// terminal gives up, plus the result timeout.
		r.NextAt = now.Add(time.Duration(e.conf().Policy.TriggerTimeout) + time.Duration(e.conf().Policy.ResultTimeout)).UTC()
	}
	s.UpdatedAt = now.UTC()
	return tx.PutSession(s)
}

// backoff is capped exponential with jitter, from the attempt count.
func (e *engine) backoff(attempts int) time.Duration {
	lo, hi := e.conf().Policy.RetryMin.D(), e.conf().Policy.RetryMax.D()
	d := lo
	for i := 1; i < attempts && d < hi; i++ {
		d *= 2
	}
	d = min(d, hi)
	return d/2 + rand.N(d/2+1)
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
	case kindStart:
		s.Request = nil
		return e.transition(tx, s, store.Closed, stopStartNoAnswer, now)
	case kindSettlement:
		if spent(r, now) {
			return e.giveUpSettlement(tx, s, why, now)
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
	if r.Kind == kindSettlement && spent(r, now) {
		return e.giveUpSettlement(tx, s, why, now)
	}
	r.NextAt = now.Add(e.backoff(r.Attempts)).UTC()
	e.log.Warn("Nayax request failed; will retry", "spark_transaction_id", s.SparkTransactionID, "call", r.Call, "attempts", r.Attempts, "next_at", r.NextAt, "why", why)
	return tx.PutSession(s)
}

// spent: Nayax refused the settlement (50) settleMaxAttempts times, or
// the window since the first attempt has passed. Attempts that never got
// an answer do not count: an outage must not spend the budget.
func spent(r *store.Request, now time.Time) bool {
	return r.Failures >= settleMaxAttempts || now.Sub(r.FirstAt) >= settleWindow
}

func (e *engine) giveUpSettlement(tx *store.Tx, s *store.Session, why string, now time.Time) error {
	r := s.Request
	s.Request = nil
	return e.transition(tx, s, store.NeedsReconciliation, fmt.Sprintf("settlement not confirmed after %d attempts (%d refused) since %s (%s)", r.Attempts, r.Failures, r.FirstAt.Format(time.RFC3339), why), now)
}

// result is the relay's report of Nayax's answer (relay.Result).
type result struct {
	EventID  string `json:"event_id"`
	Call     string `json:"call"`
	Outcome  string `json:"outcome"`
	Status   *nayax.Status
	Error    string `json:"error"`
	Attempts int    `json:"attempts"`
}

// resultCommand records Nayax's answer to one of our requests.
func (e *engine) resultCommand(cmd wire.Command, now time.Time) (any, func(tx *store.Tx) error) {
	ok := map[string]any{"Status": nayax.Approved("No Errors")}
	var r result
	if err := json.Unmarshal(cmd.Body, &r); err != nil || r.EventID == "" {
		return declined(cmd, nayax.CodeValidation, "result: event_id required"), nil
	}
	var s store.Session
	var found bool
	err := e.st.View(func(tx *store.Tx) error {
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
	if !found {
		// A late or repeated result for a request already answered.
		e.log.Info("result for no pending request", "event", r.EventID, "outcome", r.Outcome)
		return ok, nil
	}
	ans := &store.Answer{Call: r.Call, Outcome: r.Outcome, At: now.UTC()}
	if r.Status != nil {
		ans.Code, ans.Description = r.Status.Code(), strings.TrimSpace(r.Status.ErrorDescription+" "+r.Status.StatusMessage)
	}
	if r.Error != "" {
		ans.Description = r.Error
	}
	return ok, func(tx *store.Tx) error {
		s.LastAnswer = ans
		return e.applyResult(tx, &s, r, now)
	}
}

func (e *engine) applyResult(tx *store.Tx, s *store.Session, r result, now time.Time) error {
	kind := s.Request.Kind
	done := r.Outcome == "approved" || r.Outcome == "already-done"
	switch {
	case done && kind == kindStart:
		// The terminal waits for the card; the session waits for the
		// TransactionCallback (its deadline was set when sent).
		return tx.PutSession(s)
	case done && kind == kindSettlement:
		s.Request = nil
		return e.transition(tx, s, store.Settled, "Nayax settled", now)
	case done && kind == kindCancel:
		s.Request = nil
		return e.transition(tx, s, store.Cancelled, "Nayax released the hold", now)
	case r.Outcome == "error":
		if kind == kindStart {
			return e.retry(tx, s, r.Error, now) // closes it
		}
		return e.schedule(tx, s, "no answer from Nayax: "+r.Error, false, now)
	}
	// Declined.
	code := 0
	if r.Status != nil {
		code = r.Status.Code()
	}
	switch {
	case kind == kindStart:
		s.Request = nil
		return e.transition(tx, s, store.Declined, fmt.Sprintf("%s (%d)", stopStartFailed, code), now)
	case kind == kindSettlement && code == nayax.CodeExternalSettlementFailed:
		return e.schedule(tx, s, "Nayax answered 50 (external settlement failed)", true, now)
	case kind == kindCancel && code == nayax.CodeExternalCancelFailed:
		s.Request = nil
		return e.transition(tx, s, store.NeedsReconciliation, "Nayax answered 51 (external cancel failed): Nayax's AutoCancel takes over if enabled; check the transaction", now)
	}
	s.Request = nil
	return e.transition(tx, s, store.NeedsReconciliation, fmt.Sprintf("Nayax declined %s with %d: %s", r.Call, code, s.LastAnswer.Description), now)
}

// startSession opens a Remote Start: a requested session and its
// start-request event, committed together. It runs on the engine.
func (e *engine) startSession(station string, amount float64, now time.Time) (store.Session, error) {
	hw, ok := e.stations.get(station)
	if !ok {
		return store.Session{}, fmt.Errorf("unknown station %q", station)
	}
	var term config.Terminal
	found := false
	for _, t := range e.conf().Terminals {
		if t.HasStation(station) {
			term, found = t, true
		}
	}
	if !found {
		return store.Session{}, fmt.Errorf("station %s has no payment terminal", station)
	}
	if r := hw.Read(); r.Fault != "" {
		return store.Session{}, fmt.Errorf("station %s is faulted: %s", station, r.Fault)
	} else if r.Contactor {
		return store.Session{}, fmt.Errorf("station %s: contactor closed without a session (welded?)", station)
	}
	if amount <= 0 {
		amount = e.conf().Policy.StartAmount
	}
	s := store.Session{SparkTransactionID: newSparkID(), Station: station, Origin: "remote", CreatedAt: now.UTC(),
		MachineID: term.MachineID, HwSerial: term.HwSerial, AuthorizedAmount: amount}
	call, body, err := TriggerRequest(s.SparkTransactionID, term, amount, time.Duration(e.conf().Policy.TriggerTimeout))
	if err != nil {
		return store.Session{}, err
	}
	s.Request = &store.Request{Kind: kindStart, Call: call, Body: body, FirstAt: now.UTC()}
	err = e.commit(func(tx *store.Tx) error {
		if cur, err := tx.ActiveSession(station); err == nil {
			return fmt.Errorf("station %s is busy with session %s", station, cur.SparkTransactionID)
		} else if !errors.Is(err, store.ErrNotFound) {
			return err
		}
		if err := e.transition(tx, &s, store.Requested, "remote start", now); err != nil {
			return err
		}
		return e.sendRequest(tx, &s, now)
	})
	return s, err
}

// startCommand: an app backend asks for a Remote Start.
func (e *engine) startCommand(cmd wire.Command, now time.Time) (any, func(tx *store.Tx) error) {
	var req struct {
		ServiceStationNumber nayax.Text
		Amount               nayax.Amount
	}
	if err := json.Unmarshal(cmd.Body, &req); err != nil {
		return declined(cmd, nayax.CodeValidation, "start: "+err.Error()), nil
	}
	if req.ServiceStationNumber.S == "" {
		return declined(cmd, nayax.CodeMissingMandatory, "ServiceStationNumber: required"), nil
	}
	s, err := e.startSession(req.ServiceStationNumber.S, req.Amount.V, now)
	if err != nil {
		return declined(cmd, nayax.CodeValidation, err.Error()), nil
	}
	return map[string]any{"SparkTransactionId": s.SparkTransactionID, "ServiceStationNumber": s.Station, "Status": nayax.Approved("No Errors")}, nil
}

// stopStation ends the active session of a station from the site (a stop
// button, `sitelink` on the controller): the same stop as a card's. It
// runs on the engine.
func (e *engine) stopStation(station string, now time.Time) error {
	var s store.Session
	err := e.st.View(func(tx *store.Tx) error {
		var err error
		s, err = tx.ActiveSession(station)
		return err
	})
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("station %s has no active session", station)
	}
	if err != nil {
		return err
	}
	if s.State == store.Requested {
		return e.commit(func(tx *store.Tx) error {
			s.Request = nil
			return e.transition(tx, &s, store.Closed, stopLocal, now)
		})
	}
	_, err = e.stop(&s, stopLocal, now)
	return err
}

// selfTest switches a station's contactor on and off and checks the
// driver confirms both, for a technician commissioning a site. It refuses
// while the station has a session. It runs on the engine.
func (e *engine) selfTest(station string) (string, error) {
	hw, ok := e.stations.get(station)
	if !ok {
		return "", fmt.Errorf("unknown station %q", station)
	}
	var busy bool
	err := e.st.View(func(tx *store.Tx) error {
		_, err := tx.ActiveSession(station)
		busy = err == nil
		if errors.Is(err, store.ErrNotFound) {
			return nil
		}
		return err
	})
	if err != nil {
		return "", err
	}
	if busy {
		return "", fmt.Errorf("station %s has a session; self-test refused", station)
	}
	var report strings.Builder
	for _, on := range []bool{true, false} {
		start := time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), e.contactorTimeout())
		err := hw.SetContactor(ctx, on)
		cancel()
		if err != nil {
			_ = hw.Halt()
			return report.String(), fmt.Errorf("contactor %s: %w", onOff(on), err)
		}
		fmt.Fprintf(&report, "contactor %s: confirmed in %s\n", onOff(on), time.Since(start).Round(time.Millisecond))
	}
	r := hw.Read()
	fmt.Fprintf(&report, "CP state %s, meter %.1f Wh, power %.0f W, fault %q\n", r.CP, r.EnergyWh, r.PowerW, r.Fault)
	return report.String(), nil
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}
