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

// Bounds on what one site can make the replicas do: request events a
// second per node (a site after an outage sends its pending requests at
// once: tens, not thousands), and the events queued for the workers.
// An event over a bound is acknowledged and dropped, and counted; its
// node sends it again after its result timeout.
const (
	nodeEventRate  = 20
	nodeEventBurst = 200
	maxQueued      = 20000
)

// onEvent queues a request event for the workers; it runs in paho's
// router, so it only checks the bounds and pushes.
func (r *Relay) onEvent(c *link.Conn, m paho.Message) {
	nodeID, _, _, ok := wire.ParseNodeTopic(r.o.Prefix, m.Topic())
	reason := ""
	switch {
	case !ok:
		reason = "topic"
	case !r.nodeEvents.AllowKey(nodeID):
		reason = "node_rate"
	case r.events.Len() >= maxQueued:
		reason = "queue_full"
	}
	if reason != "" {
		r.metrics.Inc(mEventsDropped, hEventsDropped, "reason", reason)
		m.Ack()
		return
	}
	r.events.Push(delivery{c, m})
}

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
		// A start is checked against the terminal registry: wait until
		// it has arrived, or a replica that just connected would refuse
		// a site's start for a terminal it has not learned yet.
		if _, _, typ, _ := wire.ParseNodeTopic(r.o.Prefix, d.msg.Topic()); typ == wire.EventStartRequest {
			for !r.routesReady() {
				select {
				case <-time.After(50 * time.Millisecond):
				case <-ctx.Done():
					return
				}
			}
		}
		r.handleEvent(ctx, d)
	}
}

// callTimeout bounds one event's Nayax call including retries.
const callTimeout = 60 * time.Second

// handleEvent calls Nayax for one request event and publishes the answer
// to the node as a `result` command. The event is acked once the result is
// published or handed to the resender, which keeps publishing it while
// this replica lives: an answer Nayax gave is never dropped, so the node
// never sends the request again for want of it. A replica that dies
// mid-call loses nothing: the event was not acked and its node re-sends.
func (r *Relay) handleEvent(ctx context.Context, d delivery) {
	m := d.msg
	if d.conn.Dead() {
		return // its connection is gone, and with it the delivery
	}
	nodeID, _, typ, ok := wire.ParseNodeTopic(r.o.Prefix, m.Topic())
	ev, err := wire.DecodeEvent(m.Payload())
	if !ok || err != nil {
		r.metrics.Inc(mEventsDropped, hEventsDropped, "reason", "unreadable")
		r.refusalLog.Do(func() { r.log.Warn("dropping unreadable event", "topic", m.Topic(), "err", err) })
		m.Ack()
		return
	}
	request := requestOf(ev)
	if res, ok := r.served.lookup(nodeID, ev.ID, request, time.Now()); ok {
		// Answered before (by this replica or a peer): Nayax is not
		// called again for the same request.
		r.metrics.Inc(mServedFromMemory, "Request events answered from the memory of recent answers instead of calling Nayax again, by call.", "call", callLabel(res.Call))
		r.publishResult(ctx, d.conn, nodeID, res)
		m.Ack()
		return
	}
	// Never two concurrent calls for one request: a redelivery, or a
	// node's resend while this replica is still calling Nayax for the same
	// transaction, waits and is acked with the first (its node takes any
	// of its event ids' results).
	key := nodeID + "|" + ev.ID
	if request != "" {
		key = nodeID + "|" + request
	}
	r.mu.Lock()
	if dups, busy := r.busy[key]; busy {
		r.busy[key] = append(dups, m)
		r.mu.Unlock()
		return
	}
	r.busy[key] = []paho.Message{}
	r.mu.Unlock()
	defer func() {
		r.mu.Lock()
		dups := r.busy[key]
		delete(r.busy, key)
		r.mu.Unlock()
		m.Ack()
		for _, d := range dups {
			d.Ack()
		}
	}()

	res := r.callNayax(ctx, nodeID, typ, ev)
	res.SparkTransactionID = sparkOf(ev)
	r.served.remember(nodeID, request, res, time.Now())
	r.publishResult(ctx, d.conn, nodeID, res)
	r.log.Info("nayax call done", "event", ev.ID, "call", res.Call, "outcome", res.Outcome, "attempts", res.Attempts)
}

// resultPublishTimeout bounds one attempt to publish a result.
const resultPublishTimeout = 10 * time.Second

// publishResult sends res to its node, on the connection the event came on
// when it can; if that fails, the resender takes the result over.
func (r *Relay) publishResult(ctx context.Context, c *link.Conn, nodeID string, res wire.Result) {
	cmd := resultCommand(r.o.Prefix, r.o.ID, nodeID, res)
	pctx, cancel := context.WithTimeout(ctx, resultPublishTimeout)
	err := c.PublishWait(pctx, cmd.topic, false, cmd.payload)
	cancel()
	if err == nil {
		return
	}
	r.log.Warn("result not published; will keep trying while this relay runs", "event", res.EventID, "node", nodeID, "err", err)
	r.metrics.Inc(mResultRetries, "Results whose first publish failed and were handed to the resender.")
	// A connection that cannot deliver is dropped rather than kept.
	c.Abort(err)
	r.unpublished.Push(cmd)
}

// pendingResult is a result command ready to publish.
type pendingResult struct {
	topic   string
	payload []byte
	event   string
}

func resultCommand(prefix, relay, nodeID string, res wire.Result) pendingResult {
	body, _ := json.Marshal(res)
	topics := wire.Topics{Prefix: prefix, Node: nodeID}
	cmd, _ := wire.CommandPayload(wire.Command{ID: "result-" + res.EventID, Type: wire.CommandResult, ReplyTo: topics.RelayReplies(relay), Body: body})
	return pendingResult{topic: topics.Command(wire.CommandResult), payload: cmd, event: res.EventID}
}

// maxUnpublished bounds the results held for the resender; past it the
// oldest is dropped (counted): its node sends the request again after its
// result timeout and the answer comes from memory or from Nayax.
const maxUnpublished = 10000

// resender publishes the results whose first publish failed, on whichever
// of the replica's connections is up, with a capped backoff, until each is
// out or the relay stops.
func (r *Relay) resender(ctx context.Context) {
	wait := time.Second
	for {
		select {
		case <-r.unpublished.Wake():
		case <-ctx.Done():
			return
		}
		held := r.unpublished.Drain()
		for len(held) > 0 {
			if n := len(held) - maxUnpublished; n > 0 {
				r.metrics.Add(mResultsDropped, "Results dropped because too many awaited a broker connection (their nodes ask again).", float64(n))
				held = held[n:]
			}
			c := r.link.Conn()
			if c == nil {
				c = r.evlink.Conn()
			}
			err := errNoBroker
			if c != nil {
				pctx, cancel := context.WithTimeout(ctx, resultPublishTimeout)
				err = c.PublishWait(pctx, held[0].topic, false, held[0].payload)
				cancel()
			}
			if err == nil {
				r.log.Info("result published after a retry", "event", held[0].event)
				held, wait = held[1:], time.Second
				continue
			}
			select {
			case <-time.After(wait):
			case <-ctx.Done():
				return
			}
			wait = min(2*wait, 30*time.Second)
			held = append(held, r.unpublished.Drain()...)
		}
	}
}

// onPeerResult learns the answers other replicas (and this one) published
// to nodes, so that a repeated event dealt to this replica is answered
// from memory. It runs in paho's router: decode and store only.
func (r *Relay) onPeerResult(_ *link.Conn, m paho.Message) {
	defer m.Ack()
	nodeID, kind, typ, ok := wire.ParseNodeTopic(r.o.Prefix, m.Topic())
	if !ok || kind != wire.KindCommands || typ != wire.CommandResult {
		return
	}
	cmd, err := wire.DecodeCommand(m.Payload(), wire.CommandResult)
	if err != nil {
		return
	}
	res, err := wire.DecodeResult(cmd.Body)
	if err != nil {
		return
	}
	request := ""
	if res.SparkTransactionID != "" && res.Call != "" {
		request = res.Call + "|" + res.SparkTransactionID
	}
	r.served.remember(nodeID, request, res, time.Now())
}

// requestOf names the Nayax request an event carries (its call and
// transaction), or "" when it names no transaction.
func requestOf(ev wire.Event) string {
	call, _, err := splitRequest(ev.Body)
	spark := sparkOf(ev)
	if err != nil || spark == "" || call == "" {
		return ""
	}
	return call + "|" + spark
}

// sparkOf is the SparkTransactionId of a request event's body.
func sparkOf(ev wire.Event) string {
	var b struct{ SparkTransactionId string }
	_ = json.Unmarshal(ev.Body, &b)
	return b.SparkTransactionId
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
func (r *Relay) callNayax(ctx context.Context, nodeID, typ string, ev wire.Event) wire.Result {
	res := wire.Result{EventID: ev.ID}
	call, fields, err := splitRequest(ev.Body)
	if err != nil {
		return r.refuseRequest(nodeID, res, refused(refusedBadRequest, "event body is not a JSON object"))
	}
	res.Call = call
	if res.Call == "" && typ == wire.EventStartRequest {
		res.Call = nayax.CallTriggerTransaction
	}
	if !allowedCall(typ, res.Call) {
		return r.refuseRequest(nodeID, res, refused(refusedBadRequest, "call %q does not fit a %s event", res.Call, typ))
	}
	if no := r.checkRequest(nodeID, typ, res.Call, fields); no != nil {
		return r.refuseRequest(nodeID, res, no)
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

// refuseRequest answers a node's request the relay will not send: the
// node gets OutcomeRefused and why, the refusal is counted by reason, and
// logged with the node's id a few times and then once in a while (a node
// that keeps trying cannot fill the log).
func (r *Relay) refuseRequest(nodeID string, res wire.Result, no *refusedRequest) wire.Result {
	res.Outcome, res.Error = wire.OutcomeRefused, "relay refused: "+no.why
	r.metrics.Inc(mNodeRefused, hNodeRefused, "reason", no.reason)
	r.refusalLog.Do(func() {
		r.log.Warn("refused a site's request; not sent to Nayax", "node", nodeID, "event", res.EventID, "call", res.Call, "reason", no.reason, "why", no.why)
	})
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

// classify reads Nayax's verdict. "Already cancelled/completed" answers
// (28, or 50/51 saying "already") to a settlement or cancel are
// already-done: the site reads their text and decides whether they
// complete its request or contradict it (billing.AlreadyDone).
func classify(call string, st nayax.Status) wire.Outcome {
	if st.IsApproved() {
		return wire.OutcomeApproved
	}
	if call == nayax.CallTriggerTransaction {
		return wire.OutcomeDeclined
	}
	desc := strings.ToLower(st.ErrorDescription + " " + st.StatusMessage)
	switch st.Code() {
	case nayax.CodeAlreadyCancelled:
		return wire.OutcomeAlreadyDone
	case nayax.CodeExternalSettlementFailed, nayax.CodeExternalCancelFailed:
		if strings.Contains(desc, "already") {
			return wire.OutcomeAlreadyDone
		}
	}
	return wire.OutcomeDeclined
}
