package edge

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/sitelink/sitelink/daemon/metrics/metricstest"
)

// sampleLine is one sample of the Prometheus text format as this daemon
// writes it: a name, optional labels, one value.
var sampleLine = regexp.MustCompile(`^[a-zA-Z_:][a-zA-Z0-9_:]*(\{([a-zA-Z_][a-zA-Z0-9_]*="([^"\\\n]|\\.)*",?)*\})? \S+$`)

// GET /metrics on the local API reflects link, stations and sessions.
func TestMetricsLocalAPI(t *testing.T) {
	s := startSite(t)
	s.charge()
	s.sims["6"].Fault("meter silent")
	waitFor(t, 5*time.Second, "station 6 faulted", func() bool {
		st, err := s.api.Stations()
		return err == nil && len(st) == 2 && st[1].Fault != ""
	})

	var text string
	waitFor(t, 10*time.Second, "events acknowledged", func() bool {
		var err error
		text, err = s.api.Metrics()
		if err != nil {
			t.Fatal(err)
		}
		// The reply's acknowledgement is timed by the replier, apart
		// from the events (a station's event can go out before it).
		return !strings.Contains(text, "\nsitelink_events_published_total 0\n") &&
			strings.Contains(text, "\n"+`sitelink_command_answer_seconds_count{type="authorize"} 1`+"\n")
	})
	lines := strings.Split(strings.TrimSuffix(text, "\n"), "\n")
	for _, l := range lines {
		if strings.HasPrefix(l, "# HELP ") || strings.HasPrefix(l, "# TYPE ") {
			continue
		}
		if !sampleLine.MatchString(l) {
			t.Errorf("not a sample line: %q", l)
		}
		if labels, _, ok := strings.Cut(l, "}"); ok && strings.Contains(labels, " ") {
			t.Errorf("a label value with a space: %q", l)
		}
	}
	metricstest.Promtool(t, text)
	has := map[string]bool{}
	for _, l := range lines {
		has[l] = true
	}
	for _, want := range []string{
		"# TYPE sitelink_connected gauge",
		"sitelink_connected 1",
		`sitelink_build_info{version="test"} 1`,
		"# TYPE sitelink_events_published_total counter",
		`sitelink_sessions{state="charging"} 1`,
		`sitelink_sessions{state="needs-reconciliation"} 0`,
		`sitelink_station_contactor{station="5"} 1`,
		`sitelink_station_contactor{station="6"} 0`,
		`sitelink_station_cp_state{state="C",station="5"} 1`,
		`sitelink_station_cp_state{state="A",station="5"} 0`,
		`sitelink_station_fault{station="5"} 0`,
		`sitelink_station_fault{station="6"} 1`,
		"# TYPE sitelink_outbox_depth gauge",
		"# TYPE sitelink_outbox_oldest_age_seconds gauge",
		"# TYPE sitelink_station_energy_joules_total counter",
		"# TYPE sitelink_station_power_watts gauge",
		"# TYPE sitelink_command_handling_seconds histogram",
		`sitelink_command_handling_seconds_count{type="authorize"} 1`,
		`sitelink_command_handling_seconds_bucket{type="authorize",le="+Inf"} 1`,
		"# TYPE sitelink_command_answer_seconds histogram",
		`sitelink_command_answer_seconds_count{type="authorize"} 1`,
		"# TYPE process_resident_memory_bytes gauge",
		"# TYPE go_goroutines gauge",
		"# TYPE sitelink_epoch gauge",
		"# TYPE sitelink_commands_noop_total counter",
		`sitelink_commands_noop_total{reason="stop"} 0`,
		`sitelink_metrics_refused_total{reason="connection_limit"} 0`,
		"# TYPE sitelink_cortina_cancels_refused_total counter",
		`sitelink_cortina_cancels_refused_total{mismatch="machine"} 0`,
		`sitelink_cortina_cancels_refused_total{mismatch="amount"} 0`,
	} {
		if !has[want] {
			t.Errorf("metrics lack %q", want)
		}
	}
	if t.Failed() {
		t.Logf("metrics:\n%s", text)
	}
}

// The engine publishes a health event with the essentials.
func TestHealthEvent(t *testing.T) {
	old := healthInterval
	healthInterval = 300 * time.Millisecond
	t.Cleanup(func() { healthInterval = old }) // after the daemon stops (cleanups run last-in first-out)
	s := startSite(t)
	s.sims["6"].Fault("meter silent")

	var h healthEvent
	waitFor(t, 10*time.Second, "a health event showing the fault", func() bool {
		for _, e := range events(s.cloud, s.cfg.MQTT.TopicPrefix, "health") {
			h = healthEvent{}
			if err := json.Unmarshal(e.Body, &h); err != nil {
				t.Fatalf("health body: %v: %s", err, e.Body)
			}
			if len(h.Stations) == 2 && h.Stations[1].Fault != "" {
				return true
			}
		}
		return false
	})
	if !h.Connected {
		t.Error("health says disconnected")
	}
	if h.Stations[0].Number != "5" || h.Stations[1].Number != "6" {
		t.Errorf("stations %+v, want 5 and 6 in config order", h.Stations)
	}
	if h.Stations[1].Fault != "meter silent" || h.Stations[0].Fault != "" {
		t.Errorf("faults %+v", h.Stations)
	}
	if h.Stations[0].CPState == "" {
		t.Error("station 5 has no CP state")
	}
	if h.SessionsByState == nil {
		t.Error("sessions_by_state missing")
	}
}
