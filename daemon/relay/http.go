package relay

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/sitelink/sitelink/daemon/guard"
	"github.com/sitelink/sitelink/daemon/nayax"
	"github.com/sitelink/sitelink/daemon/wire"
)

func newID() string { return uuid.NewString() }

// endpoint is one inbound Nayax call.
type endpoint struct {
	name    string
	cortina bool
	handle  func(ctx context.Context, body []byte) answer
	// shape, if set, is the endpoint's own answer to a request refused
	// before its handler ran (too large, not JSON, over the rate): the
	// Device Start calls answer in their schemas, e.g. InfoQuery with
	// ServiceStationAvailability 3.
	shape func(nayax.Status) answer
}

// refused is the endpoint's answer to a request refused for err before
// its handler ran.
func (ep endpoint) refused(err error) answer {
	if ep.shape != nil {
		return ep.shape(nayax.DeclineFor(err))
	}
	return refusal(ep.cortina, err, "", "")
}

// answer is what the relay writes back to Nayax, with its verdict taken
// where the answer is made (never parsed back) for the metric label.
type answer struct {
	body    any
	verdict string
}

// sparkAnswer is a Spark answer the relay makes itself; empty ids are
// left out.
func sparkAnswer(st nayax.Status, sparkID, station string) answer {
	return answer{nayax.StopCallbackOutcome{Status: st, SparkTransactionId: sparkID, ServiceStationNumber: station}, st.Verdict}
}

// cortinaAnswer is a Cortina answer the relay makes itself.
func cortinaAnswer(st nayax.CortinaStatus) answer {
	return answer{nayax.CortinaResponse{Status: st}, st.Verdict}
}

// nodeAnswer is the site controller's answer, passed on as it came.
func nodeAnswer(a wire.Answer) answer { return answer{a, a.Status.Verdict} }

// Handler serves Nayax's callbacks and nothing else: the public listener's
// router is this allow-list. Paths are matched case-insensitively, with or
// without the /api prefix and a trailing slash; anything else, /metrics and
// /healthz under any spelling included, is 404 (they are served by
// MetricsHandler on their own listener). Every request counts against its
// source's rate first; every refusal is counted, never logged one by one.
func (r *Relay) Handler() http.Handler {
	startShape := func(st nayax.Status) answer { return answer{nayax.StartSessionResponse{Status: st}, st.Verdict} }
	notifyShape := func(st nayax.Status) answer { return answer{nayax.TransactionNotifyResponse{Status: st}, st.Verdict} }
	stopShape := func(st nayax.Status) answer { return answer{nayax.StopNotifyResponse{Status: st}, st.Verdict} }
	eps := map[string]endpoint{
		"/stopcallback":           {name: "StopCallback", handle: r.stopCallback},
		"/transactioncallback":    {name: "TransactionCallback", handle: r.transactionCallback},
		"/declinecallback":        {name: "DeclineCallback", handle: r.declineCallback},
		"/timeoutcallback":        {name: "TimeoutCallback", handle: r.timeoutCallback},
		"/startsession":           {name: "StartSession", handle: r.startSession, shape: startShape},
		"/infoquery":              {name: "InfoQuery", handle: r.infoQuery, shape: infoRefusal},
		"/availabilitycheck":      {name: "AvailabilityCheck", handle: r.infoQuery, shape: infoRefusal},
		"/transactionnotify":      {name: "TransactionNotify", handle: r.transactionNotify, shape: notifyShape},
		"/stopnotify":             {name: "StopNotify", handle: r.stopNotify, shape: stopShape},
		"/cortina/prepaid/cancel": {name: "CortinaCancel", cortina: true, handle: func(ctx context.Context, b []byte) answer { return r.cortina(ctx, b, false) }},
		"/cortina/prepaid/void":   {name: "CortinaVoid", cortina: true, handle: func(ctx context.Context, b []byte) answer { return r.cortina(ctx, b, true) }},
	}
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		start := time.Now()
		p := strings.TrimSuffix(strings.ToLower(req.URL.Path), "/")
		p = strings.TrimPrefix(p, "/api")
		ep, ok := eps[p]
		if !r.sources.Allow(req.RemoteAddr) {
			r.refuse(guard.ReasonRate)
			w.Header().Set("Retry-After", "1")
			if !ok {
				http.Error(w, "too many requests", http.StatusTooManyRequests)
				return
			}
			// Declined 992 in the endpoint's dialect: should Nayax itself
			// ever be over the limit, its log says why.
			const msg = "relay: too many requests from this source; retry later"
			out := sparkAnswer(nayax.Declined(nayax.CodeTimeout, msg), "", "")
			switch {
			case ep.cortina:
				out = cortinaAnswer(nayax.CortinaDeclined(nayax.CortinaTimeout, msg))
			case ep.shape != nil:
				out = ep.shape(nayax.Declined(nayax.CodeTimeout, msg))
			}
			w.Header().Set("Content-Type", "application/json; charset=utf-8")
			w.WriteHeader(http.StatusTooManyRequests)
			_ = json.NewEncoder(w).Encode(out.body)
			r.countRequest(ep.name, verdictRateLimited, time.Since(start))
			return
		}
		if !ok {
			r.refuse(reasonNotFound)
			http.NotFound(w, req)
			return
		}
		if req.Method != http.MethodPost {
			r.refuse(reasonMethod)
			w.Header().Set("Allow", http.MethodPost)
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		verdict := verdictUnauthorized
		defer func() { r.countRequest(ep.name, verdict, time.Since(start)) }()
		if !r.authorized(req) {
			// No Nayax shape: whoever this is, it is not Nayax.
			r.refuse(reasonUnauthorized)
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		var out answer
		body, err := io.ReadAll(io.LimitReader(req.Body, nayax.MaxBody+1))
		switch {
		case err != nil:
			r.refuse(reasonUnreadable)
			out = ep.refused(errors.New("could not read the body"))
		case len(body) > nayax.MaxBody:
			r.refuse(reasonTooLarge)
			out = ep.refused(fmt.Errorf("body larger than %d bytes", nayax.MaxBody))
		case !jsonContent(req.Header.Get("Content-Type")):
			r.refuse(reasonContentType)
			out = ep.refused(errors.New("content type must be application/json"))
		default:
			ctx, cancel := context.WithTimeout(req.Context(), r.o.AckBudget)
			out = ep.handle(ctx, body)
			cancel()
		}
		verdict = verdictLabel(out.verdict)
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		if a, ok := out.body.(wire.Answer); ok {
			// A node's answer, the usual one: as Encode writes it.
			_, _ = w.Write(append(wire.AnswerJSON(a), '\n'))
			return
		}
		_ = json.NewEncoder(w).Encode(out.body)
	})
}

// MetricsHandler serves GET /metrics and GET /healthz, for the metrics
// listener (Options.MetricsListen), which scrapers and load balancers
// reach and Nayax's side of the internet does not.
func (r *Relay) MetricsHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, _ *http.Request) { r.writeMetrics(w) })
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { r.health(w) })
	return mux
}

// jsonContent accepts what Nayax's specs list: application/json,
// text/json and application/*+json.
func jsonContent(ct string) bool {
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return false
	}
	return mt == "application/json" || mt == "text/json" || (strings.HasPrefix(mt, "application/") && strings.HasSuffix(mt, "+json"))
}

func (r *Relay) authorized(req *http.Request) bool {
	for _, h := range r.o.CallbackHeaders {
		got := req.Header.Get(h.Name)
		if subtle.ConstantTimeCompare([]byte(got), []byte(h.Value)) != 1 {
			return false
		}
	}
	return true
}

// refusal is the one answer to a body that could not be read or did not
// decode: Declined with the decoder's code (a format error otherwise) in
// the endpoint's dialect, echoing the ids that did decode.
func refusal(cortina bool, err error, sparkID, station string) answer {
	if cortina {
		return cortinaAnswer(nayax.CortinaDeclineFor(err))
	}
	return sparkAnswer(nayax.DeclineFor(err), sparkID, station)
}

// unknownMachine is the answer to a call for a terminal the registry
// (P/terminals) gives to no site controller.
func unknownMachine() nayax.Status {
	return nayax.Declined(nayax.CodeUnknownMachine, "unknown machine: no site controller serves this terminal")
}

// stopCallback: the edge decides (it owns the session); the relay only
// finds it and keeps within Nayax's 5 s.
func (r *Relay) stopCallback(ctx context.Context, body []byte) answer {
	req, err := nayax.DecodeStopCallback(body)
	if err != nil {
		return refusal(false, err, req.SparkTransactionId.S, req.ServiceStationNumber.S)
	}
	out := func(st nayax.Status) answer {
		return sparkAnswer(st, req.SparkTransactionId.S, req.ServiceStationNumber.S)
	}
	n, ok := r.routes.lookup(req.MachineId.V, req.HwSerial.S)
	if !ok {
		return out(unknownMachine())
	}
	rep, err := r.send(ctx, n, wire.CommandStop, req.Forward(r.cardKey))
	switch {
	case err == nil:
		return nodeAnswer(rep.Body)
	case errors.Is(err, errOffline):
		return out(nayax.Declined(nayax.CodeTimeout, "station controller offline; stop queued"))
	case errors.Is(err, errNoAnswer):
		return out(nayax.Declined(nayax.CodeTimeout, "station controller did not answer in time; stop queued"))
	default:
		r.log.Error("stop not delivered", "node", n.ID, "err", err)
		return out(nayax.Declined(nayax.CodeTimeout, "relay cannot reach the site broker; stop not queued"))
	}
}

// acknowledge handles the callbacks Nayax only needs acknowledged
// (TransactionCallback, Decline, Timeout): the edge's answer when it comes
// within the budget, otherwise 200 with the command left queued.
func (r *Relay) acknowledge(ctx context.Context, typ, sparkID string, machineID int64, hwSerial string, fwd func(node) json.RawMessage) answer {
	out := func(st nayax.Status) answer { return sparkAnswer(st, sparkID, "") }
	n, ok := r.routes.lookup(machineID, hwSerial)
	if !ok {
		return out(unknownMachine())
	}
	rep, err := r.send(ctx, n, typ, fwd(n))
	switch {
	case err == nil:
		return nodeAnswer(rep.Body)
	case errors.Is(err, errOffline), errors.Is(err, errNoAnswer):
		st := nayax.Approved("No Errors")
		st.StatusMessage = "queued for the station controller (" + err.Error() + ")"
		return out(st)
	default:
		r.log.Error("callback not delivered", "type", typ, "node", n.ID, "err", err)
		return out(nayax.Declined(nayax.CodeTimeout, "relay cannot reach the site broker"))
	}
}

// transactionCallback forwards the authorized transaction to the node
// that owns its terminal with the ticket that lets that node, and no
// other, settle or cancel it (tickets.go).
func (r *Relay) transactionCallback(ctx context.Context, body []byte) answer {
	req, err := nayax.DecodeTransactionCallback(body)
	if err != nil {
		return refusal(false, err, req.SparkTransactionId.S, "")
	}
	fwd := req.Forward(r.cardKey)
	return r.acknowledge(ctx, wire.CommandAuthorize, req.SparkTransactionId.S, req.MachineId.V, req.HwSerial.S, func(n node) json.RawMessage {
		if !req.NayaxTransactionId.Valid || req.NayaxTransactionId.V == 0 {
			return fwd // nothing to settle or cancel
		}
		return withTicket(fwd, r.ticket(n.ID, req.NayaxTransactionId.V, req.SparkTransactionId.S, req.Amount.Decimal()))
	})
}

func (r *Relay) declineCallback(ctx context.Context, body []byte) answer {
	return ackDecoded(r, ctx, wire.CommandDecline, body, nayax.DecodeDeclineCallback,
		func(q nayax.DeclineCallbackRequest) (string, int64, string) {
			return q.SparkTransactionId.S, q.MachineId.V, q.HwSerial.S
		})
}

func (r *Relay) timeoutCallback(ctx context.Context, body []byte) answer {
	return ackDecoded(r, ctx, wire.CommandTimeout, body, nayax.DecodeTimeoutCallback,
		func(q nayax.TimeoutCallbackRequest) (string, int64, string) {
			return q.SparkTransactionId.S, q.MachineId.V, q.HwSerial.S
		})
}

// forwarder is a decoded callback: Forward is all of it that may go on
// MQTT, card hashes keyed with the fleet's card key.
type forwarder interface {
	Forward(nayax.CardKey) json.RawMessage
}

// ackDecoded decodes a callback that only needs acknowledging and hands
// it to acknowledge; a decoding failure is Declined with its Spark code.
func ackDecoded[T forwarder](r *Relay, ctx context.Context, typ string, body []byte,
	decode func([]byte) (T, error), ids func(T) (spark string, machine int64, serial string)) answer {
	req, err := decode(body)
	spark, machine, serial := ids(req)
	if err != nil {
		return refusal(false, err, spark, "")
	}
	fwd := req.Forward(r.cardKey)
	return r.acknowledge(ctx, typ, spark, machine, serial, func(node) json.RawMessage { return fwd })
}

// cortina handles Prepaid Cancel/Void: only the allowlisted fields go to
// MQTT; card data stays here and is not logged.
func (r *Relay) cortina(ctx context.Context, body []byte, void bool) answer {
	out := cortinaAnswer
	req, err := nayax.DecodeCortinaCancel(body)
	if err != nil {
		return refusal(true, err, "", "")
	}
	n, ok := r.routes.lookup(req.MachineId.V, req.HwSerial.S)
	if !ok {
		return out(nayax.CortinaDeclined(nayax.CortinaUnknownTransaction, "unknown machine: no site controller serves this terminal"))
	}
	fwd := req.Forward(r.cardKey)
	if void {
		fwd = withField(fwd, "Operation", "Void")
	} else {
		fwd = withField(fwd, "Operation", "Cancel")
	}
	rep, err := r.send(ctx, n, wire.CommandCancel, fwd)
	switch {
	case err == nil:
		return nodeAnswer(rep.Body)
	case errors.Is(err, errOffline):
		return out(nayax.CortinaDeclined(nayax.CortinaTimeout, "station controller offline; cancel queued"))
	case errors.Is(err, errNoAnswer):
		return out(nayax.CortinaDeclined(nayax.CortinaTimeout, "station controller did not answer in time; cancel queued"))
	default:
		r.log.Error("cancel not delivered", "node", n.ID, "err", err)
		return out(nayax.CortinaDeclined(nayax.CortinaTimeout, "relay cannot reach the site broker; cancel not queued"))
	}
}

// withField adds a top-level string field to a JSON object.
func withField(obj json.RawMessage, k, v string) json.RawMessage {
	var m map[string]json.RawMessage
	if json.Unmarshal(obj, &m) != nil {
		return obj
	}
	m[k], _ = json.Marshal(v)
	b, _ := json.Marshal(m)
	return b
}

// routesReady: the main connection is up and the retained registry has
// had a moment to arrive since it connected (before that, every terminal
// would be unknown).
func (r *Relay) routesReady() bool {
	_, terminals := r.routes.counts()
	return r.link.Connected() && (terminals > 0 || time.Since(time.Unix(0, r.upAt.Load())) > time.Second)
}

// health answers load balancers: 200 once both broker connections are up
// and the retained node states have had a moment to arrive (before that,
// every callback would be "unknown machine").
func (r *Relay) health(w http.ResponseWriter) {
	nodes, terminals := r.routes.counts()
	online, _ := r.routes.nodeStates()
	up := r.link.Connected() && r.evlink.Connected()
	warm := r.routesReady()
	st := map[string]any{"relay": r.o.ID, "connected": up, "routes_ready": warm, "nodes": nodes, "nodes_online": online, "terminals": terminals, "at": time.Now().UTC()}
	w.Header().Set("Content-Type", "application/json")
	if !up || !warm {
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	_ = json.NewEncoder(w).Encode(st)
}
