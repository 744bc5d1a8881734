package relay

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"time"
	"unicode/utf8"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/sitelink/sitelink/daemon/link"
	"github.com/sitelink/sitelink/daemon/nayax"
	"github.com/sitelink/sitelink/daemon/wire"
)

// delivery is one event message and the connection it came on; paho's
// handler queues it and returns, workers take it.
type delivery struct {
	conn *link.Conn
	msg  paho.Message
}

func (r *Relay) onEvent(c *link.Conn, m paho.Message) { r.events.Push(delivery{c, m}) }

func (r *Relay) worker(ctx context.Context) {
	for {
		d, ok := r.events.Pop()
		if !ok {
			select {
			case <-r.events.Wake():
				continue
			case <-ctx.Done():
				return
			}
		}
		r.handleEvent(ctx, d)
	}
}

// callTimeout bounds one event's Nayax call including retries.
const callTimeout = 60 * time.Second

// handleEvent calls Nayax for one request event and publishes the answer
// to the node as a `result` command; only then is the event acked, so a
// replica that dies mid-call loses nothing (the broker redelivers).
func (r *Relay) handleEvent(ctx context.Context, d delivery) {
	m := d.msg
	if d.conn.Dead() {
		return // its connection is gone, and with it the delivery
	}
	nodeID, _, typ, ok := wire.ParseNodeTopic(r.o.Prefix, m.Topic())
	ev, err := wire.DecodeEvent(m.Payload())
	if !ok || err != nil {
		r.log.Warn("dropping unreadable event", "topic", m.Topic(), "err", err)
		m.Ack()
		return
	}
	// Never two concurrent calls for one request: a redelivery, or a
	// node's resend while this replica is still calling Nayax for the same
	// transaction, waits and is acked with the first (its node takes any
	// of its event ids' results).
	key := requestKey(ev)
	r.mu.Lock()
	if dups, busy := r.busy[key]; busy {
		r.busy[key] = append(dups, m)
		r.mu.Unlock()
		return
	}
	r.busy[key] = []paho.Message{}
	r.mu.Unlock()
	published := false
	defer func() {
		r.mu.Lock()
		dups := r.busy[key]
		delete(r.busy, key)
		r.mu.Unlock()
		if published {
			m.Ack()
			for _, d := range dups {
				d.Ack()
			}
		}
	}()

	res := r.callNayax(ctx, typ, ev)
	body, _ := json.Marshal(res)
	topics := wire.Topics{Prefix: r.o.Prefix, Node: nodeID}
	cmd, _ := json.Marshal(wire.Command{ID: "result-" + ev.ID, Type: wire.CommandResult, ReplyTo: topics.RelayReplies(r.o.ID), Body: body})
	// The result goes out on the connection the event came on: if that
	// one is gone, so is the event (clean session), and the node sends
	// its request again.
	c := d.conn
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	err = c.PublishWait(pctx, topics.Command(wire.CommandResult), false, cmd)
	cancel()
	if err != nil {
		// A connection that cannot deliver is dropped rather than left
		// holding an unacked event forever.
		r.log.Warn("result not published; dropping the events connection so the node's retry gets through", "event", ev.ID, "err", err)
		c.Abort(err)
		return
	}
	published = true
	r.log.Info("nayax call done", "event", ev.ID, "call", res.Call, "outcome", res.Outcome, "attempts", res.Attempts)
}

// requestKey names the Nayax request an event carries: its call and
// transaction, or the event id when it names no transaction.
func requestKey(ev wire.Event) string {
	call, fields, err := splitRequest(ev.Body)
	var spark string
	if err == nil {
		_ = json.Unmarshal(fields["SparkTransactionId"], &spark)
	}
	if spark == "" {
		return ev.ID
	}
	return call + "|" + spark
}

// splitRequest splits a request event's body into the call it names and
// the Nayax request (the body without the call).
func splitRequest(body json.RawMessage) (call string, fields map[string]json.RawMessage, err error) {
	if err := json.Unmarshal(body, &fields); err != nil {
		return "", nil, err
	}
	_ = json.Unmarshal(fields[wire.RequestCall], &call)
	delete(fields, wire.RequestCall)
	return call, fields, nil
}

// callNayax sends the request an event carries. The event body is the
// exact Nayax request plus "call" naming the endpoint.
func (r *Relay) callNayax(ctx context.Context, typ string, ev wire.Event) wire.Result {
	res := wire.Result{EventID: ev.ID}
	call, fields, err := splitRequest(ev.Body)
	if err != nil {
		res.Outcome, res.Error = wire.OutcomeError, "event body is not a JSON object"
		return res
	}
	res.Call = call
	if res.Call == "" && typ == wire.EventStartRequest {
		res.Call = nayax.CallTriggerTransaction
	}
	if !allowedCall(typ, res.Call) {
		res.Outcome, res.Error = wire.OutcomeError, "call "+res.Call+" does not fit a "+typ+" event"
		return res
	}
	if res.Call == nayax.CallTriggerTransaction {
		// A start that waited (an outage) past the terminal's own timeout
		// would wake a terminal for a session the site already closed.
		var t struct{ TransactionTimeout int }
		_ = json.Unmarshal(ev.Body, &t)
		wait := time.Duration(t.TransactionTimeout) * time.Second
		if wait <= 0 {
			wait = max(r.o.TriggerTimeout, time.Minute)
		}
		if !ev.At.IsZero() && time.Since(ev.At) > wait {
			res.Outcome, res.Error = wire.OutcomeError, "start request expired before it could be sent ("+time.Since(ev.At).Round(time.Second).String()+" old)"
			return res
		}
	}
	if _, ok := fields["TransactionTimeout"]; !ok && res.Call == nayax.CallTriggerTransaction && r.o.TriggerTimeout > 0 {
		fields["TransactionTimeout"], _ = json.Marshal(int(r.o.TriggerTimeout / time.Second))
	}
	body, _ := json.Marshal(fields)
	cctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	start := time.Now()
	defer func() { r.countCall(res, time.Since(start)) }()
	resp, err := r.o.Nayax.Do(cctx, res.Call, body)
	res.Attempts = resp.Attempts
	if err != nil {
		res.Outcome, res.Error = wire.OutcomeError, err.Error()
		if errors.Is(err, nayax.ErrBadRequest) {
			res.Outcome = wire.OutcomeDeclined
		}
		return res
	}
	// Only the verdict goes back: Nayax's answers carry card details
	// (brand, last digits) that the site does not need.
	st := resp.Status
	res.Status = &wire.Status{Verdict: st.Verdict, ErrorCode: st.ErrorCode, ErrorDescription: st.ErrorDescription, StatusMessage: st.StatusMessage}
	res.Outcome = classify(res.Call, st)
	if res.Call != nayax.CallTriggerTransaction {
		res.Record = recordOf(resp.Body)
	}
	return res
}

// maxRecordField bounds each payment record field taken from Nayax's
// answer (its identifiers are a few dozen characters at most).
const maxRecordField = 64

// recordOf takes the receipt fields of Nayax's answer to a settlement or
// cancel (AuthCode, NayaxRRN, FiscalRrn, Amount, SeTime, MachineAuTime),
// each as Nayax wrote it, string or number; nothing else of the answer
// (card brand, digits) goes to the site. nil if the answer has none.
func recordOf(body json.RawMessage) *wire.PaymentRecord {
	var m map[string]json.RawMessage
	if json.Unmarshal(body, &m) != nil {
		return nil
	}
	text := func(name string) string {
		raw := m[name]
		var s string
		switch {
		case len(raw) > 0 && raw[0] == '"':
			if json.Unmarshal(raw, &s) != nil {
				return ""
			}
		case len(raw) > 0 && (raw[0] == '-' || (raw[0] >= '0' && raw[0] <= '9')):
			s = string(raw)
		}
		if len(s) > maxRecordField || !utf8.ValidString(s) {
			return ""
		}
		return strings.TrimSpace(s)
	}
	r := wire.PaymentRecord{AuthCode: text("AuthCode"), NayaxRRN: text("NayaxRRN"), FiscalRrn: text("FiscalRrn"),
		Amount: text("Amount"), SeTime: text("SeTime"), MachineAuTime: text("MachineAuTime")}
	if r == (wire.PaymentRecord{}) {
		return nil
	}
	return &r
}

func allowedCall(typ, call string) bool {
	switch typ {
	case wire.EventStartRequest:
		return call == nayax.CallTriggerTransaction
	case wire.EventSettlementRequest:
		return call == nayax.CallSettlement || call == nayax.CallExternalSettlement
	case wire.EventCancelRequest:
		return call == nayax.CallCancelTransaction || call == nayax.CallExternalCancel
	}
	return false
}

// classify reads Nayax's verdict. "Already cancelled/completed" answers to
// a retried request mean the first attempt succeeded (DESIGN.md §3).
func classify(call string, st nayax.Status) wire.Outcome {
	if st.IsApproved() {
		return wire.OutcomeApproved
	}
	desc := strings.ToLower(st.ErrorDescription + " " + st.StatusMessage)
	cancel := call == nayax.CallCancelTransaction || call == nayax.CallExternalCancel
	switch st.Code() {
	case nayax.CodeAlreadyCancelled:
		// "Already cancelled" completes a cancel; to a settlement it says
		// the money is gone: a human must look.
		if cancel {
			return wire.OutcomeAlreadyDone
		}
	case nayax.CodeExternalSettlementFailed, nayax.CodeExternalCancelFailed:
		if strings.Contains(desc, "already") {
			return wire.OutcomeAlreadyDone
		}
	}
	return wire.OutcomeDeclined
}
