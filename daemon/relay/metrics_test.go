package relay_test

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sitelink/sitelink/daemon/metrics"
	"github.com/sitelink/sitelink/daemon/metrics/metricstest"
	"github.com/sitelink/sitelink/daemon/nayax/seeds"
	"github.com/sitelink/sitelink/daemon/relay"
)

func scrape(t *testing.T, url string) map[string]bool {
	t.Helper()
	lines := map[string]bool{}
	for _, l := range strings.Split(strings.TrimSuffix(scrapeText(t, url), "\n"), "\n") {
		lines[l] = true
	}
	return lines
}

// scrapeText is the relay's /metrics as served.
func scrapeText(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(adminURL(t, url) + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != metrics.ContentType {
		t.Fatalf("GET /metrics: HTTP %d, %s: %s", resp.StatusCode, resp.Header.Get("Content-Type"), b)
	}
	return string(b)
}

func requireLines(t *testing.T, got map[string]bool, want ...string) {
	t.Helper()
	for _, w := range want {
		if !got[w] {
			t.Errorf("metrics lack %q", w)
		}
	}
	if t.Failed() {
		var all []string
		for l := range got {
			all = append(all, l)
		}
		t.Logf("metrics:\n%s", strings.Join(all, "\n"))
	}
}

// A paid session through the relay shows in its metrics: the callbacks by
// endpoint and verdict, and the outbound settlement by call and outcome.
func TestRelayMetrics(t *testing.T) {
	e := newEnv(t)
	site := e.startEdge("site-metrics", t.TempDir())
	r := e.startRelay("relay-1", 4*time.Second)
	waitRoute(t, r.url)
	e.sim.SetRelay(r.url)

	first := e.tap("5", "alice", 20)
	waitFor(t, 10*time.Second, "energy above the minimum", func() bool {
		return sessionOf(t, site.api, first.Txn.SparkTransactionID, "charging").EnergyWh >= 20
	})
	if stop := e.tap("5", "alice", 0); stop.Kind != "stop" {
		t.Fatalf("second tap: %+v", stop)
	}
	sessionOf(t, site.api, first.Txn.SparkTransactionID, "settled")
	// The call is counted before its result goes to the site, so the
	// settled session implies the count.
	text := scrapeText(t, r.url)
	metricstest.Promtool(t, text)
	got := map[string]bool{}
	for _, l := range strings.Split(strings.TrimSuffix(text, "\n"), "\n") {
		got[l] = true
		if labels, _, ok := strings.Cut(l, "}"); ok && !strings.HasPrefix(l, "#") && strings.Contains(labels, " ") {
			t.Errorf("a label value with a space: %q", l)
		}
	}
	requireLines(t, got,
		"# TYPE sitelink_relay_requests_total counter",
		`sitelink_relay_requests_total{endpoint="TransactionCallback",verdict="Approved"} 1`,
		`sitelink_relay_requests_total{endpoint="StopCallback",verdict="Approved"} 1`,
		"# TYPE sitelink_relay_request_seconds histogram",
		`sitelink_relay_request_seconds_count{endpoint="StopCallback"} 1`,
		`sitelink_relay_request_seconds_bucket{endpoint="StopCallback",le="+Inf"} 1`,
		`sitelink_relay_nayax_calls_total{call="ExternalSettlement",outcome="approved"} 1`,
		"# TYPE sitelink_relay_nayax_call_seconds histogram",
		`sitelink_relay_nayax_call_seconds_count{call="ExternalSettlement",outcome="approved"} 1`,
		`sitelink_relay_nayax_call_seconds_bucket{call="ExternalSettlement",outcome="approved",le="+Inf"} 1`,
		"# TYPE process_resident_memory_bytes gauge",
		"# TYPE go_goroutines gauge",
		`sitelink_relay_nayax_attempts_total{call="ExternalSettlement"} 1`,
		`sitelink_relay_connected{link="callbacks"} 1`,
		`sitelink_relay_connected{link="events"} 1`,
		"sitelink_relay_nodes 1",
	)
}

// Refused callbacks are counted as unauthorized; declines by their verdict.
func TestRelayMetricsRefused(t *testing.T) {
	e := newEnv(t)
	e.startEdge("site-metrics-hdr", t.TempDir())
	r := e.startRelay("relay-1", 2*time.Second, relay.Header{Name: "X-A", Value: "1"})
	waitRoute(t, r.url)
	if code, _ := post(t, r.url, "/api/StopCallback", "application/json", seeds.Get("000_stopcallback_request.json")); code != 401 {
		t.Fatalf("no header: HTTP %d", code)
	}
	if code, _ := post(t, r.url, "/api/StopCallback", "text/plain", seeds.Get("000_stopcallback_request.json"), "X-A", "1"); code != 200 {
		t.Fatalf("wrong content type: HTTP %d", code)
	}
	requireLines(t, scrape(t, r.url),
		`sitelink_relay_requests_total{endpoint="StopCallback",verdict="unauthorized"} 1`,
		`sitelink_relay_requests_total{endpoint="StopCallback",verdict="Declined"} 1`,
		`sitelink_relay_request_seconds_count{endpoint="StopCallback"} 2`,
	)
}
