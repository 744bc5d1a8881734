package relay

import (
	"net/http"
	"time"

	"github.com/sitelink/sitelink/daemon/guard"
	"github.com/sitelink/sitelink/daemon/metrics"
	"github.com/sitelink/sitelink/daemon/nayax"
	"github.com/sitelink/sitelink/daemon/wire"
)

// Metric names the relay records as it goes; the rest are read at scrape
// time.
const (
	mRequests      = "sitelink_relay_requests_total"
	mRequestTime   = "sitelink_relay_request_seconds"
	mNayaxCalls    = "sitelink_relay_nayax_calls_total"
	mNayaxTime     = "sitelink_relay_nayax_call_seconds"
	mNayaxAttempts = "sitelink_relay_nayax_attempts_total"
	// Requests answered from memory, results re-published, results
	// dropped: see served.go and events.go.
	mServedFromMemory = "sitelink_relay_events_served_from_memory_total"
	mResultRetries    = "sitelink_relay_result_publish_retries_total"
	mResultsDropped   = "sitelink_relay_results_dropped_total"
	// What the relay believes nothing of: claims in node states that
	// the registry contradicts, requests for other nodes' money.
	mClaimsIgnored = "sitelink_relay_claims_ignored_total"
	mNodeRefused   = "sitelink_relay_node_requests_refused_total"
	mEventsDropped = "sitelink_relay_events_dropped_total"

	// Their help, for the series written at 0 from the start (relay.go)
	// as for the counts: promtool wants help on every family.
	hClaimsIgnored = "Terminals a site controller's state claims that P/terminals gives to nobody or to another node, by reason; the claim is ignored."
	hEventsDropped = "Request events dropped before any work, by reason (a node over its rate, the queue full, unreadable); a readable one is sent again by its node."
	hNodeRefused   = "Site requests the relay refused to send to Nayax, by reason (a ticket missing or not this node's, another transaction, over the authorized or maximum amount, another node's terminal)."
)

// Verdict labels of callbacks that got no Nayax verdict.
const (
	verdictUnauthorized = "unauthorized" // the callback headers did not match
	verdictRateLimited  = "rate_limited" // over its source's rate: 429
	verdictOther        = "other"        // an answer without a known verdict
)

// Reasons a request or connection is refused: the reason label of
// sitelink_relay_refused_total and the keys of the summary log line.
const (
	reasonUnauthorized       = "unauthorized"       // 401: callback headers missing or wrong
	reasonNotFound           = "not_found"          // 404: not a callback path
	reasonMethod             = "method_not_allowed" // 405: a callback path, not POST
	reasonTooLarge           = "body_too_large"     // Declined: larger than nayax.MaxBody
	reasonContentType        = "content_type"       // Declined: not JSON
	reasonUnreadable         = "body_unreadable"    // Declined: the body could not be read (timeout, reset)
	reasonMetricsConnections = "metrics_connection_limit"
)

// refusalReasons are written even at 0, so that an alert on their rate
// has a series from the start.
var refusalReasons = []string{reasonUnauthorized, guard.ReasonRate, guard.ReasonConnections, reasonNotFound, reasonMethod,
	reasonTooLarge, reasonContentType, reasonUnreadable, reasonMetricsConnections}

// refuse counts one refusal; the summary line is guard's, once per
// interval.
func (r *Relay) refuse(reason string) { r.refused.Refuse(reason) }

// countRequest records one answered callback.
func (r *Relay) countRequest(endpoint, verdict string, d time.Duration) {
	r.metrics.Inc(mRequests, "Nayax callbacks answered, by endpoint and verdict.", "endpoint", endpoint, "verdict", verdict)
	r.metrics.ObserveDuration(mRequestTime, "Time to answer a Nayax callback, by endpoint.", d, "endpoint", endpoint)
}

// countCall records one outbound Nayax call (with its retries) made for a
// site's request event.
func (r *Relay) countCall(res wire.Result, d time.Duration) {
	call := callLabel(res.Call)
	r.metrics.Inc(mNayaxCalls, "Outbound Nayax calls, by call and outcome.", "call", call, "outcome", string(res.Outcome))
	r.metrics.ObserveDuration(mNayaxTime, "Time an outbound Nayax call took, retries included, by call and outcome.", d, "call", call, "outcome", string(res.Outcome))
	r.metrics.Add(mNayaxAttempts, "HTTP attempts made for outbound Nayax calls, by call.", float64(res.Attempts), "call", call)
}

// callLabel is the call label of a result: a call the relay makes, or
// "other". A result's call can come from a site's request (a refused one
// keeps what the site wrote), so the label set must not follow it.
func callLabel(call string) string {
	switch call {
	case nayax.CallTriggerTransaction, nayax.CallSettlement, nayax.CallExternalSettlement, nayax.CallCancelTransaction, nayax.CallExternalCancel:
		return call
	}
	return "other"
}

// verdictLabel is the label of an answer's verdict. Only Nayax's two
// verdicts become labels: an answer is partly the site's text, and label
// values must come from a small set.
func verdictLabel(v string) string {
	switch v {
	case nayax.VerdictApproved, nayax.VerdictDeclined:
		return v
	}
	return verdictOther
}

// writeMetrics serves GET /metrics: the recorded counters and latency
// histograms (callbacks by endpoint, Nayax calls by call and outcome) plus the
// connection state, read now into the same set so the output stays one
// sorted exposition.
func (r *Relay) writeMetrics(w http.ResponseWriter) {
	const up = "1 while the relay's broker connection is up, by link."
	r.metrics.Gauge("sitelink_relay_connected", up, metrics.Bool(r.link.Connected()), "link", "callbacks")
	r.metrics.Gauge("sitelink_relay_connected", up, metrics.Bool(r.evlink.Connected()), "link", "events")
	nodes, terminals := r.routes.counts()
	r.metrics.Gauge("sitelink_relay_nodes", "Site controllers whose retained state the relay holds.", float64(nodes))
	online, conflicts := r.routes.nodeStates()
	r.metrics.Gauge("sitelink_relay_nodes_online", "Site controllers whose retained state says online: stops to the others are queued and answered 992.", float64(online))
	r.metrics.Gauge("sitelink_relay_nodes_id_conflict", "Site controllers whose state says a second daemon uses their node id (a cloned SD card).", float64(conflicts))
	r.metrics.Gauge("sitelink_relay_terminals", "Terminals P/terminals gives an owner: the routes of callbacks.", float64(terminals))
	r.metrics.Gauge("sitelink_relay_results_unpublished", "Nayax answers waiting for a broker connection to reach their node.", float64(r.unpublished.Len()))
	r.metrics.Gauge("sitelink_relay_answers_remembered", "Recent Nayax answers kept to answer repeated events from memory.", float64(r.served.len()))
	const refused = "Requests and connections the public listener refused, by reason (logged once per interval, never one by one)."
	totals := r.refused.Totals()
	for _, reason := range refusalReasons {
		r.metrics.Set("sitelink_relay_refused_total", refused, metrics.Counter, float64(totals[reason]), "reason", reason)
	}
	if c := r.conns.Load(); c != nil {
		r.metrics.Gauge("sitelink_relay_connections_open", "Connections open on the public listener (relay.max_connections caps them).", float64(c.Open()))
	}
	r.metrics.Gauge("sitelink_relay_rate_sources", "Source addresses whose request rate the relay tracks.", float64(r.sources.Len()))
	w.Header().Set("Content-Type", metrics.ContentType)
	_ = metrics.Write(w, &r.metrics) // with the process_ and go_ metrics

}
