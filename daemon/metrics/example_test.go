package metrics_test

import (
	"os"
	"time"

	"github.com/sitelink/sitelink/daemon/metrics"
)

func ExampleSet() {
	var s metrics.Set
	s.Gauge("sitelink_connected", "1 while the broker connection is up.", 1)
	s.Inc("sitelink_relay_requests_total", "Callbacks served.", "endpoint", "StopCallback", "verdict", "Approved")
	s.ObserveDuration("sitelink_relay_request_seconds", "Time to answer a callback.", 120*time.Millisecond, "endpoint", "StopCallback")
	_, _ = s.WriteTo(os.Stdout)
	// Output:
	// # HELP sitelink_connected 1 while the broker connection is up.
	// # TYPE sitelink_connected gauge
	// sitelink_connected 1
	// # HELP sitelink_relay_request_seconds Time to answer a callback.
	// # TYPE sitelink_relay_request_seconds summary
	// sitelink_relay_request_seconds_sum{endpoint="StopCallback"} 0.12
	// sitelink_relay_request_seconds_count{endpoint="StopCallback"} 1
	// # HELP sitelink_relay_requests_total Callbacks served.
	// # TYPE sitelink_relay_requests_total counter
	// sitelink_relay_requests_total{endpoint="StopCallback",verdict="Approved"} 1
}
