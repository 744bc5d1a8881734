package edge

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/sitelink/sitelink/daemon/billing"
	"github.com/sitelink/sitelink/daemon/config"
	"github.com/sitelink/sitelink/daemon/link"
	"github.com/sitelink/sitelink/daemon/nayax"
	"github.com/sitelink/sitelink/daemon/wire"
	"github.com/sitelink/sitelink/store"
)

// replyTimeout bounds the wait for a reply's PUBACK. A command whose
// reply was not acknowledged is not acked either: the broker redelivers it
// on the next connection and the inbox answers it again.
const replyTimeout = 5 * time.Second

// inbound is a command message, the connection it arrived on and when
// (the start of sitelink_command_handling_seconds and
// sitelink_command_answer_seconds).
type inbound struct {
	conn *link.Conn
	msg  paho.Message
	at   time.Time
	typ  string // the command's type, once decoded
}

// newInbound stamps a command message with its arrival.
func newInbound(c *link.Conn, m paho.Message) inbound {
	return inbound{conn: c, msg: m, at: time.Now()}
}

// outbound is a reply to publish on the connection its command came on,
// and the command to ack once the broker has the reply.
type outbound struct {
	conn    *link.Conn
	msg     paho.Message
	topic   string
	payload []byte
	at      time.Time // the command's arrival
	typ     string    // its type label
	poke    bool      // events were committed with it: wake the pump once it is out
}

// Latencies of commands, by type: from the message's arrival at the
// daemon to its reply handed to the publisher (the engine's work: queue,
// dedupe, act, ledger commit), and to the broker's acknowledgement of
// the reply (the whole answer at the edge; a StopCallback is type="stop").
const (
	mCommandHandling = "sitelink_command_handling_seconds"
	mCommandAnswer   = "sitelink_command_answer_seconds"
)

// onCommand is the paho handler: queue and return, never block.
func (e *engine) onCommand(c *link.Conn, m paho.Message) { e.cmds.Push(newInbound(c, m)) }

// handle processes one command message: decode, dedupe by id, act, commit
// the reply with the effect, hand it to the replier, which acks the
// message once the reply is out. A command that changed nothing is
// answered from memory (recent) when it comes again, never from the
// ledger.
func (e *engine) handle(in inbound) {
	m := in.msg
	now := time.Now()
	if in.at.IsZero() {
		in.at = now
	}
	_, _, typ, _ := wire.ParseNodeTopic(e.topics.Prefix, m.Topic())
	cmd, derr := wire.DecodeCommand(m.Payload(), typ)
	in.typ = cmd.Type
	if cmd.ID == "" {
		// Nothing to answer to: log (without the payload, it may hold
		// anything) and drop.
		e.log.Warn("dropping unreadable command", "topic", m.Topic(), "bytes", len(m.Payload()), "err", derr)
		m.Ack()
		return
	}
	replyTo := e.replyTopic(cmd.ReplyTo)

	// A replayed id gets the stored reply and nothing else: from the
	// ledger's inbox for a command that acted, from memory for one that
	// changed nothing.
	var prior store.InboxEntry
	err := store.ErrNotFound // an id the inbox cannot hold costs no transaction
	if e.st.InboxMayHave(cmd.ID) {
		err = e.st.View(func(tx *store.Tx) error {
			var err error
			prior, err = tx.Inbox(cmd.ID)
			return err
		})
	}
	if errors.Is(err, store.ErrNotFound) {
		if r, ok := e.recent.get(cmd.ID); ok {
			prior, err = r, nil
		}
	}
	if err == nil {
		reply := prior.Reply
		if prior.Type != cmd.Type {
			// The same id for another command: answer, never act.
			reply = e.encodeReply(cmd, declined(cmd, nayax.CodeValidation, fmt.Sprintf("command id %q was already used for a %q command", cmd.ID, prior.Type)))
		}
		e.noops.Refuse(noopReplay)
		e.log.Debug("replayed command answered from inbox", "id", cmd.ID, "type", cmd.Type)
		e.reply(in, replyTo, reply)
		return
	}
	if !errors.Is(err, store.ErrNotFound) {
		e.log.Error("inbox lookup", "id", cmd.ID, "err", err)
		return // not acked: the broker redelivers
	}

	var body wire.Answer
	var fx func(tx *store.Tx) error
	commits := e.commits
	switch {
	case derr != nil:
		body = declined(cmd, nayax.CodeValidation, "malformed command: "+derr.Error())
	case cmd.Deadline != nil && now.After(*cmd.Deadline) && cmd.Type == wire.CommandAuthorize && flowOf(cmd.Body) == wire.FlowDeviceStart:
		// The relay told Nayax Declined: the hold is released, not served.
		body, fx = e.lateDeviceStart(cmd, now)
	case cmd.Deadline != nil && now.After(*cmd.Deadline) && cmd.Type != wire.CommandStop:
		// The sender gave up (the relay answered Nayax with 992): acting
		// now would surprise everyone. Stops are exempt: stopping late is
		// always safe.
		body = declined(cmd, nayax.CodeTimeout, "command expired at "+cmd.Deadline.UTC().Format(time.RFC3339)+" before this node received it; nothing done")
	default:
		body, fx = e.dispatch(cmd, now)
	}
	reply := e.encodeReply(cmd, body)
	entry := store.InboxEntry{ID: cmd.ID, Type: cmd.Type, At: now.UTC(), Reply: reply}
	if fx == nil && e.commits == commits {
		// Nothing committed, so nothing moved money or a contactor
		// (both are recorded first): the reply needs no commit before
		// the ack, and a flood of such commands never reaches the
		// ledger or waits for its fsync.
		e.recent.put(entry)
		e.reply(in, replyTo, reply)
		e.noops.Refuse(noopReason(cmd.Type))
		e.log.Debug("command answered without acting", "id", cmd.ID, "type", cmd.Type, "verdict", body.Status.Verdict)
		return
	}
	err = e.st.Update(func(tx *store.Tx) error {
		if fx != nil {
			if err := fx(tx); err != nil {
				return err
			}
		}
		return tx.PutInbox(entry)
	})
	var refused *store.TransitionError
	if errors.As(err, &refused) {
		// A bug (transition logged it), not a passing fault: redelivery
		// would be refused the same way forever. Answer it, once.
		body = declined(cmd, nayax.CodeGeneral, "internal error: "+refused.Error())
		reply = e.encodeReply(cmd, body)
		entry.Reply = reply
		err = e.st.Update(func(tx *store.Tx) error { return tx.PutInbox(entry) })
	}
	if err != nil {
		e.log.Error("commit command", "id", cmd.ID, "type", cmd.Type, "err", err)
		return // not acked: redelivered, and the inbox has no entry, so it is retried
	}
	// The reply first (someone waits for it), then the events: the
	// replier wakes the pump once the broker has the reply, and the
	// engine yields so that the replier, just readied on this CPU, hands
	// the reply to paho now rather than after whatever the engine does
	// next (on a small machine, waiting for another CPU to pick it up
	// costs a tenth of a millisecond).
	e.replyThenPoke(in, replyTo, reply, true)
	runtime.Gosched()
	e.log.Info("command handled", "id", cmd.ID, "type", cmd.Type, "verdict", body.Status.Verdict)
}

// encodeReply is the one serialization of a reply: the bytes committed to
// the inbox (a replayed id gets them back) and published.
func (e *engine) encodeReply(cmd wire.Command, body wire.Answer) []byte {
	reply, err := wire.ReplyPayload(wire.Reply{ID: cmd.ID, Type: cmd.Type, Body: body})
	if err != nil { // cannot happen: an Answer is strings and ints
		panic(err)
	}
	return reply
}

// replyTopic confines replies to this node's own replies topics
// (P/nodes/N/replies and P/nodes/N/replies/{relay}, wire's parse of
// them): a reply_to anywhere else could act on a node, cost the
// connection (a topic the broker refuses), or be denied by the ACL.
func (e *engine) replyTopic(t string) string {
	node, kind, _, ok := wire.ParseNodeTopic(e.topics.Prefix, t)
	if !ok || node != e.topics.Node || kind != wire.KindReplies || len(t) > 512 ||
		strings.IndexFunc(t, func(r rune) bool { return r < 0x20 || r == 0x7f || r == 0xfeff }) >= 0 {
		return e.topics.Replies()
	}
	return t
}

// reply hands a reply to the replier goroutine; the engine never calls
// into paho itself (a Publish can block on a congested connection).
func (e *engine) reply(in inbound, topic string, payload []byte) {
	e.replyThenPoke(in, topic, payload, false)
}

// replyThenPoke is reply, and with poke the pump is woken once the reply
// is out: the events committed with it wait for it.
func (e *engine) replyThenPoke(in inbound, topic string, payload []byte, poke bool) {
	// noopReason bounds the label to the known types (a topic can name
	// anything).
	typ := noopReason(in.typ)
	e.timings.ObserveDuration(mCommandHandling, "Time from a command's arrival to its reply handed to the publisher (queue, dedupe, act, ledger commit), by type.",
		time.Since(in.at), "type", typ)
	e.out.Push(outbound{conn: in.conn, msg: in.msg, topic: topic, payload: payload, at: in.at, typ: typ, poke: poke})
}

// replier publishes replies in order on the connection their command came
// on, and acks each command once its reply is acknowledged. A reply whose
// connection died is dropped with its command unacked: the broker
// redelivers the command and the inbox answers it.
func (e *engine) replier(ctx context.Context) {
	type sent struct {
		o   outbound
		tok paho.Token
	}
	var flight []sent
	for {
		select {
		case <-e.out.Wake():
		case <-ctx.Done():
			e.poke() // whatever a last reply held back
			return
		}
		poke := false
		for _, o := range e.out.Drain() {
			poke = poke || o.poke
			if o.conn.Dead() {
				continue
			}
			flight = append(flight, sent{o, o.conn.Publish(o.topic, false, o.payload)})
		}
		// One deadline for the batch: on a stalled connection the batch,
		// and the events held behind it, wait replyTimeout in all, not
		// replyTimeout per reply.
		wctx, cancel := context.WithTimeout(ctx, replyTimeout)
		for _, f := range flight {
			err := f.o.conn.WaitToken(wctx, f.tok)
			if err != nil {
				e.log.Warn("reply not acknowledged; the command stays unacked for redelivery", "topic", f.o.topic, "err", err)
				continue
			}
			f.o.msg.Ack()
			e.timings.ObserveDuration(mCommandAnswer, "Time from a command's arrival to the broker's acknowledgement of its reply, by type (type=\"stop\" is a StopCallback's answer at the edge).",
				time.Since(f.o.at), "type", f.o.typ)
		}
		cancel()
		flight = flight[:0]
		if poke {
			// Events committed with these replies: their turn now
			// (a reply that timed out waited replyTimeout at most).
			e.poke()
		}
	}
}

// dispatch runs a decoded command. It returns the reply body and, for
// effects that must commit with the inbox entry, a function run in that
// transaction.
func (e *engine) dispatch(cmd wire.Command, now time.Time) (wire.Answer, func(tx *store.Tx) error) {
	switch cmd.Type {
	case wire.CommandAuthorize:
		return e.authorize(cmd, now)
	case wire.CommandStop:
		return e.stopCommand(cmd, now)
	case wire.CommandDecline, wire.CommandTimeout:
		return e.declineCommand(cmd, now)
	case wire.CommandCancel:
		return e.cancelCommand(cmd, now)
	case wire.CommandResult:
		return e.resultCommand(cmd, now)
	case wire.CommandStart:
		return e.startCommand(cmd, now)
	case wire.CommandInfo:
		return e.infoCommand(cmd, now)
	case wire.CommandStopNotify:
		return e.stopNotifyCommand(cmd, now)
	case wire.CommandResolve:
		return e.resolveCommand(cmd, now)
	case wire.CommandRebirth:
		e.rebirth()
		return approved(), nil
	default:
		return declined(cmd, nayax.CodeNotConfigured, fmt.Sprintf("command type %q is not supported by this node", cmd.Type)), nil
	}
}

// declined builds a Nayax-shaped Declined body for any command.
func declined(cmd wire.Command, code int, desc string) wire.Answer {
	out := wire.Answer{Status: sparkStatus(nayax.Declined(code, desc))}
	var ids struct {
		SparkTransactionId   json.RawMessage
		ServiceStationNumber json.RawMessage
	}
	if json.Unmarshal(cmd.Body, &ids) == nil {
		var s string
		if json.Unmarshal(ids.SparkTransactionId, &s) == nil && s != "" {
			out.SparkTransactionId = s
		}
		s = ""
		if json.Unmarshal(ids.ServiceStationNumber, &s) == nil && s != "" {
			out.ServiceStationNumber = s
		}
	}
	return out
}

func decodeFailure(cmd wire.Command, err error) wire.Answer {
	st := nayax.DeclineFor(err)
	return declined(cmd, st.Code(), st.ErrorDescription)
}

// approved is the plain Approved answer.
func approved() wire.Answer { return wire.Answer{Status: sparkStatus(nayax.Approved("No Errors"))} }

// sparkStatus and cortinaStatus put Nayax's Status, in either dialect,
// into the answer the relay hands back to Nayax as it is.
func sparkStatus(st nayax.Status) wire.Status {
	return wire.Status{Verdict: st.Verdict, ErrorCode: st.ErrorCode, ErrorDescription: st.ErrorDescription, StatusMessage: st.StatusMessage}
}

func cortinaStatus(st nayax.CortinaStatus) wire.Status {
	return wire.Status{Verdict: st.Verdict, Code: st.Code, CustomDeclineCode: st.CustomDeclineCode, StatusMessage: st.StatusMessage}
}

// authorize handles TransactionCallback (+ ServiceStationNumber): an
// Approved card opens a session and closes the contactor.
func (e *engine) authorize(cmd wire.Command, now time.Time) (wire.Answer, func(tx *store.Tx) error) {
	dec, err := nayax.DecodeTransactionCallback(cmd.Body)
	if err != nil {
		return decodeFailure(cmd, err), nil
	}
	req := authRequest{dec, wire.TicketOf(cmd.Body), flowOf(cmd.Body)}
	sparkID := req.SparkTransactionId.S
	out := func(st nayax.Status) wire.Answer {
		return wire.Answer{SparkTransactionId: sparkID, Status: sparkStatus(st)}
	}
	if msg := tooLong(req.TransactionCallbackRequest); msg != "" {
		return out(nayax.Declined(nayax.CodeValidation, msg)), nil
	}
	term, ok := e.conf().TerminalFor(req.MachineId.V, req.HwSerial.S)
	if !ok {
		return out(nayax.Declined(nayax.CodeUnknownMachine, fmt.Sprintf("unknown machine (MachineId %d, HwSerial %q) for this site", req.MachineId.V, req.HwSerial.S))), nil
	}
	// Both identifiers, when given, must name the same terminal: a session
	// recorded under a serial that is not the terminal's could never be
	// stopped by the customer's real StopCallback.
	if term.Conflict(req.MachineId.V, req.HwSerial.S) != "" {
		return out(nayax.Declined(nayax.CodeUnknownMachine, "MachineId and HwSerial name different terminals")), nil
	}

	// Existing session for this transaction (replay with a new command id,
	// or the Remote Start session we requested).
	var existing store.Session
	var have bool
	var key []byte
	err = e.st.View(func(tx *store.Tx) error {
		key = append([]byte(nil), tx.CardKey()...)
		var err error
		if sparkID != "" {
			existing, err = tx.Session(sparkID)
		} else {
			existing, err = tx.SessionByNayax(req.NayaxTransactionId.V)
		}
		if err == nil {
			have = true
		} else if !errors.Is(err, store.ErrNotFound) {
			return err
		}
		// The same Nayax transaction under another SparkTransactionId
		// cannot be two sessions.
		if req.NayaxTransactionId.Valid && sparkID != "" {
			other, err := tx.SessionByNayax(req.NayaxTransactionId.V)
			if err == nil && other.SparkTransactionID != sparkID {
				return fmt.Errorf("%w: NayaxTransactionId belongs to session %s", errConflict, other.SparkTransactionID)
			}
		}
		return nil
	})
	if errors.Is(err, errConflict) {
		return out(nayax.Declined(nayax.CodeValidation, err.Error())), nil
	}
	if err != nil {
		return out(nayax.Declined(nayax.CodeGeneral, "ledger unavailable")), nil
	}
	approved := req.AuthStatus.IsApproved() // case and spaces as Nayax may send them
	if have && existing.State != store.Requested {
		if approved && existing.NayaxTransactionID == 0 && existing.State.Final() {
			// Our start request timed out or the controller restarted,
			// and the card was authorized after all: release the hold.
			return out(nayax.Declined(nayax.CodeGeneral, "session already closed; the authorization is being cancelled")),
				e.refuse(req, term, existing.Station, &existing, key, billing.StopNotAuthorizing, now)
		}
		// Same transaction again (a new command id): answer from the
		// session, never act twice.
		if strings.HasPrefix(existing.StopReason, billing.StopContactorFailed) {
			return out(nayax.Declined(nayax.CodeGeneral, fmt.Sprintf("station %s could not start: %s", existing.Station, existing.StopReason))), nil
		}
		if strings.HasPrefix(existing.StopReason, billing.StopStartRefused) {
			// Refused the first time, and its hold is being released:
			// the same answer again, never "service may start".
			return out(nayax.Declined(nayax.CodeValidation, existing.StopReason)), nil
		}
		return out(nayax.Approved("No Errors")), nil
	}

	if !approved {
		if have {
			s := existing
			return out(nayax.Approved("No Errors")), func(tx *store.Tx) error {
				s.Request = nil
				return e.transition(tx, &s, store.Declined, "card declined: "+req.AuthStatus.ErrorDescription, now)
			}
		}
		return out(nayax.Approved("No Errors")), nil
	}

	station := req.ServiceStationNumber.S
	if have {
		station = existing.Station
	}
	if station == "" && len(term.Stations) == 1 {
		station = term.Stations[0]
	}
	if station == "" {
		return out(nayax.Declined(nayax.CodeMissingMandatory, "ServiceStationNumber: required (the terminal serves several stations)")),
			e.refuse(req, term, "", existingPtr(have, &existing), key, "no station named", now)
	}
	if !term.HasStation(station) {
		return out(nayax.Declined(nayax.CodeValidation, fmt.Sprintf("ServiceStationNumber: station %q is not served by this terminal", station))),
			e.refuse(req, term, "", existingPtr(have, &existing), key, "station "+station+" is not served by this terminal", now)
	}
	deviceStart := req.flow == wire.FlowDeviceStart
	if deviceStart {
		// TransactionNotify: only on a Device Start terminal, and only
		// on the station's reservation (two consumers cannot pay for
		// one station); otherwise the hold is released at once.
		why := ""
		switch {
		case !term.DeviceStart():
			why = "this terminal is not set up for Device Start (terminals[].start)"
		case cmd.Deadline != nil && cmd.Deadline.Sub(now) < e.contactorTimeout()+deviceStartMargin:
			// Recording and closing the contactor may take up to the
			// contactor timeout: an Approved after the relay's deadline
			// would reach no one (Nayax was told Declined), and the
			// station would charge on a refused transaction.
			why = "too little of the relay's answer budget left to start the station"
		case !have:
			why = e.claimReservation(station, sparkID, now)
		}
		if why != "" {
			return out(nayax.Declined(nayax.CodeValidation, why)), e.refuse(req, term, station, existingPtr(have, &existing), key, why, now)
		}
	}
	hw, ok := e.stations.get(station)
	if !ok {
		return out(nayax.Declined(nayax.CodeValidation, fmt.Sprintf("ServiceStationNumber: unknown station %q", station))),
			e.refuse(req, term, "", existingPtr(have, &existing), key, "unknown station "+station, now)
	}
	authorized, dp, aerr := e.authorizedMinor(req.TransactionCallbackRequest, existingPtr(have, &existing))
	if aerr != nil {
		return out(nayax.Declined(nayax.CodeValidation, fmt.Sprintf("Amount: must be whole minor units of the currency (at most %d decimals) and at most %s, got %s",
			dp, store.FormatDecimal(store.MaxScaled, dp), req.Amount.Decimal()))), nil
	}
	if authorized <= 0 {
		return out(nayax.Declined(nayax.CodeValidation, "Amount: must be greater than 0")), nil
	}
	var busy *store.Session
	err = e.st.View(func(tx *store.Tx) error {
		cur, err := tx.ActiveSession(station)
		if err == nil && cur.SparkTransactionID != sparkID {
			busy = &cur
			return nil
		}
		if errors.Is(err, store.ErrNotFound) {
			return nil
		}
		return err
	})
	if err != nil {
		return out(nayax.Declined(nayax.CodeGeneral, "ledger unavailable")), nil
	}
	if busy != nil {
		return out(nayax.Declined(nayax.CodeValidation, fmt.Sprintf("station %s is busy with another session", station))),
			e.refuse(req, term, station, existingPtr(have, &existing), key, "station busy", now)
	}
	// After the busy check: another session's closed contactor is not a
	// weld.
	r := hw.Read()
	if r.Fault == "" && r.Contactor && !(have && existing.State.Active()) {
		r.Fault = "contactor closed without a session (welded?)"
	}
	if r.Fault != "" {
		return out(nayax.Declined(nayax.CodeGeneral, fmt.Sprintf("station %s is faulted: %s", station, r.Fault))),
			e.refuse(req, term, station, existingPtr(have, &existing), key, "station faulted: "+r.Fault, now)
	}

	s := existing
	if !have {
		if sparkID == "" {
			sparkID = newSparkID()
		}
		origin := store.OriginExternal
		if deviceStart {
			origin = store.OriginDeviceStart
		}
		s = store.Session{SparkTransactionID: sparkID, Station: station, Origin: origin, CreatedAt: now.UTC()}
	}
	fillAuthorization(&s, req, term, key, authorized)
	// The station is this session's: whatever reservation it had ends.
	delete(e.reserved, station)
	s.MeterStartWh = r.EnergyWh
	s.EnergyWh = 0

	// Record first: money before energy.
	if err := e.commit(func(tx *store.Tx) error {
		return e.transition(tx, &s, store.Authorized, "card authorized", now)
	}); err != nil {
		e.log.Error("record authorization", "spark_transaction_id", sparkID, "err", err)
		return out(nayax.Declined(nayax.CodeGeneral, "ledger unavailable")), nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), e.contactorTimeout())
	herr := hw.SetContactor(ctx, true)
	cancel()
	if herr != nil {
		e.log.Error("contactor did not close", "station", station, "err", herr)
		_, _ = e.stop(&s, billing.StopContactorFailed+": "+herr.Error(), now)
		return out(nayax.Declined(nayax.CodeGeneral, fmt.Sprintf("station %s could not start: %v", station, herr))), nil
	}
	return out(nayax.Approved("No Errors")), nil
}

// stopCommand handles a StopCallback. Every identifier Nayax gives must
// agree with the session: a forged or mismatched card never stops someone
// else's session.
func (e *engine) stopCommand(cmd wire.Command, now time.Time) (wire.Answer, func(tx *store.Tx) error) {
	req, err := nayax.DecodeStopCallback(cmd.Body)
	if err != nil {
		return decodeFailure(cmd, err), nil
	}
	out := func(st nayax.Status, s *store.Session) wire.Answer {
		o := wire.Answer{Status: sparkStatus(st), SparkTransactionId: req.SparkTransactionId.S, ServiceStationNumber: req.ServiceStationNumber.S}
		if s != nil {
			o.SparkTransactionId = s.SparkTransactionID
			o.ServiceStationNumber = s.Station
		}
		return o
	}
	var s store.Session
	var key []byte
	err = e.st.View(func(tx *store.Tx) error {
		key = append([]byte(nil), tx.CardKey()...)
		if req.SparkTransactionId.S != "" {
			s, err = tx.Session(req.SparkTransactionId.S)
		} else {
			s, err = tx.SessionByNayax(req.NayaxTransactionId.V)
		}
		return err
	})
	if errors.Is(err, store.ErrNotFound) {
		return out(nayax.Declined(nayax.CodeUnknownTransaction, "unknown transaction"), nil), nil
	}
	if err != nil {
		return out(nayax.Declined(nayax.CodeGeneral, "ledger unavailable"), nil), nil
	}
	if s.State == store.Requested {
		return out(nayax.Declined(nayax.CodeValidation, "transaction not authorized yet"), nil), nil
	}
	if msg := e.stopMismatch(req, &s, key); msg != "" {
		e.log.Warn("stop refused", "spark_transaction_id", s.SparkTransactionID, "reason", msg)
		return out(nayax.Declined(nayax.CodeValidation, msg), nil), nil
	}
	if !s.State.Active() {
		// Already stopped: the same answer again.
		return out(nayax.Approved("No Errors"), &s), nil
	}
	// Contactor first; the stop and its reply then commit together.
	herr := e.openContactor(&s)
	record := func(tx *store.Tx) error {
		return e.recordStop(tx, &s, billing.StopCard, herr == nil, now)
	}
	if herr != nil {
		return out(nayax.Declined(nayax.CodeGeneral, "contactor did not confirm opening; station faulted"), &s), record
	}
	return out(nayax.Approved("No Errors"), &s), record
}

// authorizedMinor is a TransactionCallback's Amount in minor units of the
// session's currency (existing's tariff, else the configured one), with
// those decimal places. It is converted from the decimal Nayax wrote,
// exactly: an amount with more decimals than the currency has, negative
// or beyond store.MaxScaled is an error, never rounded.
func (e *engine) authorizedMinor(req nayax.TransactionCallbackRequest, existing *store.Session) (int64, int, error) {
	dp := e.conf().Tariff.DecimalPlace
	if existing != nil {
		dp = e.sessionTariff(existing).DecimalPlace
	}
	v, err := billing.ParseAmount(req.Amount.Decimal(), dp)
	return v, dp, err
}

// fillAuthorization copies what a TransactionCallback says about the
// money onto the session, the amount converted by authorizedMinor. The
// terminal's identifiers are stored as configured (they agree with the
// request, checked before), so later matches compare like with like.
func fillAuthorization(s *store.Session, req authRequest, term config.Terminal, key []byte, authorized int64) {
	s.NayaxTransactionID = req.NayaxTransactionId.V
	s.MachineID = cmp.Or(term.MachineID, req.MachineId.V)
	s.HwSerial = cmp.Or(term.HwSerial, req.HwSerial.S)
	s.SiteID = req.SiteId.String()
	s.MachineAuTime = req.MachineAuTime.S
	s.CardDigest = cardDigest(key, req.CardHash.S)
	s.CardLast4 = req.CardLast4Digits.S
	s.AuthorizedMinor = authorized
	s.Ticket = req.ticket
	s.Request = nil // a Remote Start's trigger is answered
}

// authRequest is a TransactionCallback as the relay forwarded it, with
// the relay's ticket for the transaction (wire.Ticket): kept with the
// session, unread, and sent with its settlement or cancel, without which
// the relay sends neither.
type authRequest struct {
	nayax.TransactionCallbackRequest
	ticket json.RawMessage
	flow   string // wire.FlowDeviceStart for a TransactionNotify, else ""
}

// refuse returns the transaction work that releases an authorization we
// will not serve (station busy, faulted, unknown, or the session already
// closed): Nayax holds the customer's money until told, so a refused
// card gets a cancel request like any session without service.
func (e *engine) refuse(req authRequest, term config.Terminal, station string, existing *store.Session, key []byte, why string, now time.Time) func(tx *store.Tx) error {
	if !req.NayaxTransactionId.Valid || req.NayaxTransactionId.V == 0 {
		return nil
	}
	// An amount we cannot hold exactly cannot be released either: such an
	// authorization is only answered Declined, as before.
	authorized, _, err := e.authorizedMinor(req.TransactionCallbackRequest, existing)
	if err != nil || authorized <= 0 {
		e.log.Warn("not releasing an authorization without a valid amount", "nayax_transaction_id", req.NayaxTransactionId.V,
			"amount", req.Amount.Decimal(), "why", why)
		return nil
	}
	return func(tx *store.Tx) error {
		var s store.Session
		if existing != nil {
			s = *existing
		} else {
			if station == "" && len(term.Stations) > 0 {
				station = term.Stations[0]
			}
			id := req.SparkTransactionId.S
			if id == "" {
				id = newSparkID()
			}
			origin := store.OriginExternal
			if req.flow == wire.FlowDeviceStart {
				origin = store.OriginDeviceStart
			}
			s = store.Session{SparkTransactionID: id, Station: station, Origin: origin, CreatedAt: now.UTC()}
		}
		fillAuthorization(&s, req, term, key, authorized)
		// Nothing was delivered under an authorization we refuse: only
		// its cancel can follow, whatever a meter said before.
		s.EnergyWh, s.MeterStartWh = 0, 0
		s.StopReason = billing.StopStartRefused + ": " + why
		e.log.Warn("releasing an authorization this site cannot serve", "spark_transaction_id", s.SparkTransactionID, "why", why)
		return e.endOfService(tx, &s, now)
	}
}

func existingPtr(have bool, s *store.Session) *store.Session {
	if have {
		return s
	}
	return nil
}

// errConflict: an identifier already belongs to another session.
var errConflict = errors.New("conflict")

// tooLong rejects identifiers longer than Nayax ever sends: they end up in
// the ledger and in events, which have a size limit.
func tooLong(req nayax.TransactionCallbackRequest) string {
	for _, f := range []struct {
		name string
		v    string
		max  int
	}{
		{"SparkTransactionId", req.SparkTransactionId.S, 128},
		{"HwSerial", req.HwSerial.S, 64},
		{"SiteId", req.SiteId.String(), 32},
		{"MachineAuTime", req.MachineAuTime.S, 32},
		{"CardHash", req.CardHash.S, 256},
		{"CardLast4Digits", req.CardLast4Digits.S, 8},
		{"ServiceStationNumber", req.ServiceStationNumber.S, 64},
	} {
		if len(f.v) > f.max {
			return fmt.Sprintf("%s: longer than %d characters", f.name, f.max)
		}
	}
	return ""
}

// stopMismatch returns why a StopCallback does not belong to s, or "".
func (e *engine) stopMismatch(req nayax.StopCallbackRequest, s *store.Session, key []byte) string {
	if req.NayaxTransactionId.Valid && s.NayaxTransactionID != 0 && req.NayaxTransactionId.V != s.NayaxTransactionID {
		return "NayaxTransactionId does not match the session"
	}
	if f := terminalOfSession(s).Conflict(req.MachineId.V, req.HwSerial.S); f != "" {
		// The card may be presented at another terminal of this site;
		// both identifiers must then name that one terminal of ours.
		if t, ours := e.conf().TerminalFor(req.MachineId.V, req.HwSerial.S); !ours || t.Conflict(req.MachineId.V, req.HwSerial.S) != "" {
			return f + " does not match the session's terminal nor another of this site's"
		}
	}
	if req.ServiceStationNumber.S != "" && req.ServiceStationNumber.S != s.Station {
		return "ServiceStationNumber does not match the session's station"
	}
	if s.CardDigest == "" || !hmacEqual(cardDigest(key, req.CardHash.S), s.CardDigest) {
		return "CardHash does not match the card that started the session"
	}
	return ""
}

// declineCommand handles DeclineCallback / TimeoutCallback. For a session
// we requested (Remote Start) it ends without money. For one already
// authorized or charging the authorization is dead: the station stops at
// once (contactor first), the session ends with the energy so far and goes
// to reconciliation, since Nayax no longer holds money to settle.
func (e *engine) declineCommand(cmd wire.Command, now time.Time) (wire.Answer, func(tx *store.Tx) error) {
	var sparkID, serial string
	var machine int64
	if cmd.Type == wire.CommandDecline {
		req, err := nayax.DecodeDeclineCallback(cmd.Body)
		if err != nil {
			return decodeFailure(cmd, err), nil
		}
		sparkID, machine, serial = req.SparkTransactionId.S, req.MachineId.V, req.HwSerial.S
	} else {
		req, err := nayax.DecodeTimeoutCallback(cmd.Body)
		if err != nil {
			return decodeFailure(cmd, err), nil
		}
		sparkID, machine, serial = req.SparkTransactionId.S, req.MachineId.V, req.HwSerial.S
	}
	out := func(st nayax.Status) wire.Answer {
		return wire.Answer{SparkTransactionId: sparkID, Status: sparkStatus(st)}
	}
	s, err := e.find(func(tx *store.Tx) (store.Session, error) { return tx.Session(sparkID) })
	if errors.Is(err, store.ErrNotFound) {
		return out(nayax.Declined(nayax.CodeUnknownTransaction, "unknown transaction")), nil
	}
	if err != nil {
		return out(nayax.Declined(nayax.CodeGeneral, "ledger unavailable")), nil
	}
	switch {
	case s.State == store.Requested:
		return out(nayax.Approved("No Errors")), func(tx *store.Tx) error {
			s.Request = nil
			return e.transition(tx, &s, store.Declined, cmd.Type+" callback", now)
		}
	case !s.State.Active():
		return out(nayax.Approved("No Errors")), nil
	case terminalOfSession(&s).Conflict(machine, serial) != "":
		// Another terminal's callback never ends this session.
		return out(nayax.Declined(nayax.CodeValidation, "the callback names another terminal than the session's")), nil
	}
	reason := fmt.Sprintf("%s (%s callback)", billing.StopAuthorizationDead, cmd.Type)
	e.log.Warn("authorization ended under a running session; stopping it", "spark_transaction_id", s.SparkTransactionID, "station", s.Station, "callback", cmd.Type)
	herr := e.openContactor(&s)
	return out(nayax.Approved("No Errors")), func(tx *store.Tx) error {
		// The reason decides the end (endOfService), also when a stuck
		// contactor finishes the stop later.
		s.StopReason = reason
		if err := tx.PutSession(&s); err != nil {
			return err
		}
		return e.recordStop(tx, &s, reason, herr == nil, now)
	}
}
