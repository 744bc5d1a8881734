package metrics_test

import (
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sitelink/sitelink/daemon/metrics"
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
		{"summary is sum and count", func(s *metrics.Set) {
			s.ObserveDuration("lat_seconds", "Latency.", 250*time.Millisecond, "call", "x")
			s.ObserveDuration("lat_seconds", "Latency.", time.Second, "call", "x")
		}, "# HELP lat_seconds Latency.\n# TYPE lat_seconds summary\nlat_seconds_sum{call=\"x\"} 1.25\nlat_seconds_count{call=\"x\"} 2\n"},
		{"special values", func(s *metrics.Set) {
			s.Gauge("v", "", math.Inf(1), "k", "1")
			s.Gauge("v", "", math.Inf(-1), "k", "2")
			s.Gauge("v", "", math.NaN(), "k", "3")
			s.Gauge("v", "", 1e-7, "k", "4")
		}, "# TYPE v gauge\nv{k=\"1\"} +Inf\nv{k=\"2\"} -Inf\nv{k=\"3\"} NaN\nv{k=\"4\"} 1e-07\n"},
		{"several labels keep their order", func(s *metrics.Set) {
			s.Gauge("m", "", 1, "z", "1", "a", "2")
		}, "# TYPE m gauge\nm{z=\"1\",a=\"2\"} 1\n"},
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
	want := "# TYPE d_seconds summary\nd_seconds_sum 400\nd_seconds_count 800\n# TYPE n_total counter\nn_total 800\n"
	if got := text(t, &s); got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}
