package relay

import (
	"net/http"
	"time"

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
)

// Verdict labels of callbacks that got no Nayax verdict.
const (
	verdictUnauthorized = "unauthorized" // the callback headers did not match
	verdictOther        = "other"        // an answer without a known verdict
)

// countRequest records one answered callback.
func (r *Relay) countRequest(endpoint, verdict string, d time.Duration) {
	r.metrics.Inc(mRequests, "Nayax callbacks answered, by endpoint and verdict.", "endpoint", endpoint, "verdict", verdict)
	r.metrics.ObserveDuration(mRequestTime, "Time to answer a Nayax callback, by endpoint.", d, "endpoint", endpoint)
}

// countCall records one outbound Nayax call (with its retries) made for a
// site's request event.
func (r *Relay) countCall(res wire.Result, d time.Duration) {
	r.metrics.Inc(mNayaxCalls, "Outbound Nayax calls, by call and outcome.", "call", res.Call, "outcome", string(res.Outcome))
	r.metrics.ObserveDuration(mNayaxTime, "Time an outbound Nayax call took, retries included, by call and outcome.", d, "call", res.Call, "outcome", string(res.Outcome))
	r.metrics.Add(mNayaxAttempts, "HTTP attempts made for outbound Nayax calls, by call.", float64(res.Attempts), "call", res.Call)
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

// writeMetrics serves GET /metrics: the recorded counters plus the
// connection state, read now into the same set so the output stays one
// sorted exposition.
func (r *Relay) writeMetrics(w http.ResponseWriter) {
	const up = "1 while the relay's broker connection is up, by link."
	r.metrics.Gauge("sitelink_relay_connected", up, metrics.Bool(r.link.Connected()), "link", "callbacks")
	r.metrics.Gauge("sitelink_relay_connected", up, metrics.Bool(r.evlink.Connected()), "link", "events")
	r.metrics.Gauge("sitelink_relay_nodes", "Site controllers the relay has a route to.", float64(len(r.routes.all())))
	r.metrics.Gauge("sitelink_relay_results_unpublished", "Nayax answers waiting for a broker connection to reach their node.", float64(r.unpublished.Len()))
	r.metrics.Gauge("sitelink_relay_answers_remembered", "Recent Nayax answers kept to answer repeated events from memory.", float64(r.served.len()))
	w.Header().Set("Content-Type", metrics.ContentType)
	_, _ = r.metrics.WriteTo(w)
}
