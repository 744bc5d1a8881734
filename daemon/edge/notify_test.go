package edge

import (
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/sitelink/sitelink/daemon/config"
	"github.com/sitelink/sitelink/hal/sim"
	"github.com/sitelink/sitelink/store"
)

// The watchdog is pinged at half its interval and the status line is
// refreshed every statusEvery, both driven by the engine's clock.
func TestHeartbeat(t *testing.T) {
	st, err := store.Open(filepath.Join(t.TempDir(), "sitelink.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	var pings int
	var lines []string
	o := Options{
		Watchdog:         func() { pings++ },
		WatchdogInterval: 2 * time.Second,
		Status:           func(s string) { lines = append(lines, s) },
	}
	stations := stationsOf("5", "6")
	t0 := time.Unix(1_700_000_000, 0)
	hb := newHeartbeat(o, func() string { return statusLine(false, "", stations, st) }, t0)
	for ms := 0; ms <= 10_000; ms += 250 {
		hb.beat(t0.Add(time.Duration(ms) * time.Millisecond))
	}
	// At 0, 1 s, 2 s … 10 s.
	if pings != 11 {
		t.Errorf("pings = %d, want 11", pings)
	}
	if want := []string{"buffering, 2 stations, outbox 0"}; len(lines) != 1 || lines[0] != want[0] {
		t.Errorf("status lines = %q, want %q", lines, want)
	}

	cases := []struct {
		name  string
		up    bool
		why   string
		order []string
		want  string
	}{
		{"connected", true, "", []string{"5", "6"}, "connected, 2 stations, outbox 0"},
		{"one station", true, "", []string{"5"}, "connected, 1 station, outbox 0"},
		{"down with reason", false, "broker unreachable: EOF", []string{"5"}, "buffering (broker unreachable: EOF), 1 station, outbox 0"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := statusLine(c.up, c.why, stationsOf(c.order...), st); got != c.want {
				t.Errorf("statusLine = %q, want %q", got, c.want)
			}
		})
	}

	t.Run("watchdog off", func(t *testing.T) {
		called := false
		newHeartbeat(Options{Watchdog: func() { called = true }}, func() string { return "" }, t0).beat(t0.Add(time.Hour))
		if called {
			t.Error("watchdog pinged with a zero interval")
		}
	})
}

// stationsOf is a station set of simulated stations with these numbers.
func stationsOf(numbers ...string) *stationSet {
	ss := newStationSet(slog.New(slog.DiscardHandler), nil, func(string) {}, nil)
	for _, n := range numbers {
		ss.install(config.Station{Number: n, Driver: config.DriverSim}, built{st: sim.New(sim.Config{Number: n})})
	}
	return ss
}
