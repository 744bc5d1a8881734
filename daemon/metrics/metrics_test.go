package metrics_test

import (
	"math"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sitelink/sitelink/daemon/metrics"
	"github.com/sitelink/sitelink/daemon/metrics/metricstest"
)

func text(t *testing.T, s *metrics.Set) string {
	t.Helper()
	var b strings.Builder
	n, err := s.WriteTo(&b)
	if err != nil {
		t.Fatal(err)
	}
	if n != int64(b.Len()) {
		t.Errorf("WriteTo returned %d, wrote %d bytes", n, b.Len())
	}
	return b.String()
}

func TestFormat(t *testing.T) {
	tests := []struct {
		name   string
		record func(s *metrics.Set)
		want   string
	}{
		{"empty", func(*metrics.Set) {}, ""},
		{"gauge without labels", func(s *metrics.Set) {
			s.Gauge("sitelink_connected", "1 while connected.", 1)
		}, "# HELP sitelink_connected 1 while connected.\n# TYPE sitelink_connected gauge\nsitelink_connected 1\n"},
		{"no help line when help is empty", func(s *metrics.Set) {
			s.Gauge("x", "", 2.5)
		}, "# TYPE x gauge\nx 2.5\n"},
		{"counter adds", func(s *metrics.Set) {
			s.Inc("req_total", "Requests.", "endpoint", "a")
			s.Add("req_total", "Requests.", 2, "endpoint", "a")
			s.Inc("req_total", "Requests.", "endpoint", "b")
		}, "# HELP req_total Requests.\n# TYPE req_total counter\nreq_total{endpoint=\"a\"} 3\nreq_total{endpoint=\"b\"} 1\n"},
		{"families and series sorted", func(s *metrics.Set) {
			s.Gauge("b", "", 1, "k", "z")
			s.Gauge("b", "", 2, "k", "a")
			s.Gauge("a", "", 3)
		}, "# TYPE a gauge\na 3\n# TYPE b gauge\nb{k=\"a\"} 2\nb{k=\"z\"} 1\n"},
		{"special values", func(s *metrics.Set) {
			s.Gauge("v", "", math.Inf(1), "k", "1")
			s.Gauge("v", "", math.Inf(-1), "k", "2")
			s.Gauge("v", "", math.NaN(), "k", "3")
			s.Gauge("v", "", 1e-7, "k", "4")
		}, "# TYPE v gauge\nv{k=\"1\"} +Inf\nv{k=\"2\"} -Inf\nv{k=\"3\"} NaN\nv{k=\"4\"} 1e-07\n"},
		{"labels sorted by name", func(s *metrics.Set) {
			s.Gauge("m", "", 1, "z", "1", "a", "2")
		}, "# TYPE m gauge\nm{a=\"2\",z=\"1\"} 1\n"},
		{"first non-empty help is kept", func(s *metrics.Set) {
			s.Add("r_total", "", 0, "reason", "x")
			s.Inc("r_total", "Refusals.", "reason", "y")
			s.Inc("r_total", "", "reason", "y")
		}, "# HELP r_total Refusals.\n# TYPE r_total counter\nr_total{reason=\"x\"} 0\nr_total{reason=\"y\"} 2\n"},
		{"set replaces a counter read elsewhere", func(s *metrics.Set) {
			s.Set("pub_total", "", metrics.Counter, 7)
			s.Set("pub_total", "", metrics.Counter, 9)
		}, "# TYPE pub_total counter\npub_total 9\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var s metrics.Set
			tt.record(&s)
			if got := text(t, &s); got != tt.want {
				t.Errorf("got\n%s\nwant\n%s", got, tt.want)
			}
		})
	}
}

func TestEscaping(t *testing.T) {
	tests := []struct {
		name, help, value string
		want              string
	}{
		{"quote", "h", `say "hi"`, "# HELP m h\n# TYPE m gauge\nm{l=\"say \\\"hi\\\"\"} 1\n"},
		{"backslash", `a\b`, `c:\dir`, "# HELP m a\\\\b\n# TYPE m gauge\nm{l=\"c:\\\\dir\"} 1\n"},
		{"newline", "two\nlines", "x\ny", "# HELP m two\\nlines\n# TYPE m gauge\nm{l=\"x\\ny\"} 1\n"},
		{"help keeps quotes", `a "b"`, "v", "# HELP m a \"b\"\n# TYPE m gauge\nm{l=\"v\"} 1\n"},
		{"utf-8 untouched", "h", "Zürich ⚡", "# HELP m h\n# TYPE m gauge\nm{l=\"Zürich ⚡\"} 1\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var s metrics.Set
			s.Gauge("m", tt.help, 1, "l", tt.value)
			if got := text(t, &s); got != tt.want {
				t.Errorf("got\n%q\nwant\n%q", got, tt.want)
			}
		})
	}
}

func TestMisusePanics(t *testing.T) {
	tests := []struct {
		name string
		f    func(s *metrics.Set)
	}{
		{"bad metric name", func(s *metrics.Set) { s.Gauge("1abc", "", 1) }},
		{"metric name with dash", func(s *metrics.Set) { s.Gauge("a-b", "", 1) }},
		{"empty metric name", func(s *metrics.Set) { s.Gauge("", "", 1) }},
		{"bad label name", func(s *metrics.Set) { s.Gauge("m", "", 1, "a:b", "v") }},
		{"reserved label name", func(s *metrics.Set) { s.Gauge("m", "", 1, "__name__", "v") }},
		{"odd labels", func(s *metrics.Set) { s.Gauge("m", "", 1, "a") }},
		{"type clash", func(s *metrics.Set) { s.Gauge("m", "", 1); s.Inc("m", "") }},
		{"label names clash", func(s *metrics.Set) { s.Gauge("m", "", 1, "a", "1"); s.Gauge("m", "", 1, "b", "1") }},
		{"le on a histogram", func(s *metrics.Set) { s.Observe("h", "h", 1, "le", "1") }},
		{"set of a histogram", func(s *metrics.Set) { s.Set("h", "h", metrics.Histogram, 1) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Error("no panic")
				}
			}()
			var s metrics.Set
			tt.f(&s)
		})
	}
}

func TestConcurrent(t *testing.T) {
	var s metrics.Set
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 100 {
				s.Inc("n_total", "")
				s.Observe("d_seconds", "", 0.5)
				_, _ = s.WriteTo(&strings.Builder{})
			}
		}()
	}
	wg.Wait()
	got := text(t, &s)
	for _, want := range []string{"d_seconds_sum 400\n", "d_seconds_count 800\n", "d_seconds_bucket{le=\"0.5\"} 800\n", "n_total 800\n"} {
		if !strings.Contains(got, want) {
			t.Errorf("no %q in\n%s", want, got)
		}
	}
}

// A latency is a histogram: cumulative buckets at DurationBuckets, +Inf,
// sum and count, so that histogram_quantile gives a p99.
func TestHistogram(t *testing.T) {
	var s metrics.Set
	for _, d := range []time.Duration{300 * time.Microsecond, 2 * time.Millisecond, 2 * time.Millisecond, 40 * time.Second} {
		s.ObserveDuration("lat_seconds", "Latency.", d, "call", "x")
	}
	s.ObserveDuration("lat_seconds", "Latency.", time.Second, "call", "y")
	got := text(t, &s)
	want := []string{
		"# HELP lat_seconds Latency.",
		"# TYPE lat_seconds histogram",
		`lat_seconds_bucket{call="x",le="0.0005"} 1`,
		`lat_seconds_bucket{call="x",le="0.001"} 1`,
		`lat_seconds_bucket{call="x",le="0.0025"} 3`,
		`lat_seconds_bucket{call="x",le="30"} 3`,
		`lat_seconds_bucket{call="x",le="+Inf"} 4`,
		`lat_seconds_sum{call="x"} 40.0043`,
		`lat_seconds_count{call="x"} 4`,
		`lat_seconds_bucket{call="y",le="0.5"} 0`,
		`lat_seconds_bucket{call="y",le="1"} 1`,
		`lat_seconds_count{call="y"} 1`,
	}
	lines := strings.Split(got, "\n")
	for _, w := range want {
		if !slices.Contains(lines, w) {
			t.Errorf("no line %q in\n%s", w, got)
		}
	}
	if n := strings.Count(got, "lat_seconds_bucket{"); n != 2*(len(metrics.DurationBuckets)+1) {
		t.Errorf("%d buckets, want %d", n, 2*(len(metrics.DurationBuckets)+1))
	}
}

// Write serves the sets with the process's own metrics, in one sorted
// exposition.
func TestWriteAddsProcessMetrics(t *testing.T) {
	var a, b metrics.Set
	a.Gauge("sitelink_one", "One.", 1)
	b.Inc("sitelink_two_total", "Two.")
	var out strings.Builder
	if err := metrics.Write(&out, &a, &b, nil); err != nil {
		t.Fatal(err)
	}
	got := out.String()
	for _, want := range []string{
		"\nsitelink_one 1\n", "\nsitelink_two_total 1\n",
		"# TYPE process_resident_memory_bytes gauge\n", "# TYPE process_cpu_seconds_total counter\n",
		"# TYPE process_open_fds gauge\n", "# TYPE go_goroutines gauge\n", "# TYPE go_memstats_heap_inuse_bytes gauge\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("no %q in\n%s", want, got)
		}
	}
	var fams []string
	for _, l := range strings.Split(got, "\n") {
		if f, ok := strings.CutPrefix(l, "# TYPE "); ok {
			fams = append(fams, strings.Fields(f)[0])
		}
	}
	if !slices.IsSorted(fams) {
		t.Errorf("families not sorted: %q", fams)
	}
	metricstest.Promtool(t, got)

	// One family in two sets is an error, not a silent pick.
	b.Gauge("sitelink_one", "One.", 2)
	if err := metrics.Write(&strings.Builder{}, &a, &b); err == nil {
		t.Error("a family in two sets written without error")
	}
}

// BenchmarkInc: the relay counts every callback, the edge every stop,
// into series that exist already.
func BenchmarkInc(b *testing.B) {
	var s metrics.Set
	b.ReportAllocs()
	for range b.N {
		s.Inc("sitelink_relay_requests_total", "Callbacks.", "endpoint", "StopCallback", "verdict", "Approved")
	}
}
