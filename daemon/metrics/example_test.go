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
	// # TYPE sitelink_relay_request_seconds histogram
	// sitelink_relay_request_seconds_bucket{endpoint="StopCallback",le="0.0005"} 0
	// sitelink_relay_request_seconds_bucket{endpoint="StopCallback",le="0.001"} 0
	// sitelink_relay_request_seconds_bucket{endpoint="StopCallback",le="0.0025"} 0
	// sitelink_relay_request_seconds_bucket{endpoint="StopCallback",le="0.005"} 0
	// sitelink_relay_request_seconds_bucket{endpoint="StopCallback",le="0.01"} 0
	// sitelink_relay_request_seconds_bucket{endpoint="StopCallback",le="0.025"} 0
	// sitelink_relay_request_seconds_bucket{endpoint="StopCallback",le="0.05"} 0
	// sitelink_relay_request_seconds_bucket{endpoint="StopCallback",le="0.1"} 0
	// sitelink_relay_request_seconds_bucket{endpoint="StopCallback",le="0.25"} 1
	// sitelink_relay_request_seconds_bucket{endpoint="StopCallback",le="0.5"} 1
	// sitelink_relay_request_seconds_bucket{endpoint="StopCallback",le="1"} 1
	// sitelink_relay_request_seconds_bucket{endpoint="StopCallback",le="2.5"} 1
	// sitelink_relay_request_seconds_bucket{endpoint="StopCallback",le="5"} 1
	// sitelink_relay_request_seconds_bucket{endpoint="StopCallback",le="10"} 1
	// sitelink_relay_request_seconds_bucket{endpoint="StopCallback",le="30"} 1
	// sitelink_relay_request_seconds_bucket{endpoint="StopCallback",le="+Inf"} 1
	// sitelink_relay_request_seconds_sum{endpoint="StopCallback"} 0.12
	// sitelink_relay_request_seconds_count{endpoint="StopCallback"} 1
	// # HELP sitelink_relay_requests_total Callbacks served.
	// # TYPE sitelink_relay_requests_total counter
	// sitelink_relay_requests_total{endpoint="StopCallback",verdict="Approved"} 1
}
