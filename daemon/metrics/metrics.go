package metrics

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/common/expfmt"
)

// ContentType is the Content-Type of the text format WriteTo and Write
// produce (Prometheus text format 0.0.4).
const ContentType = "text/plain; version=0.0.4; charset=utf-8"

// Type is a metric family's type as written on its # TYPE line.
type Type string

// Family types.
const (
	Counter   Type = "counter"
	Gauge     Type = "gauge"
	Histogram Type = "histogram"
)

// DurationBuckets are the upper bounds, in seconds, of every histogram a
// Set records: from half a millisecond (an edge command answered from
// memory) to 30 s (a Nayax call with its retries), about ×2.5 apart, so
// that histogram_quantile(0.99, ...) is within one bucket of the truth.
var DurationBuckets = []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}

// Set is a collection of metric families. The zero value is ready to use;
// it is safe for concurrent use. It is a prometheus.Collector, so it can
// also be registered with a client_golang registry.
type Set struct {
	mu   sync.Mutex
	fams map[string]*family
}

type family struct {
	help   string
	typ    Type
	labels []string           // label names, in the order of the first call
	series map[string]*series // by label values joined with \xff
	hist   *prometheus.HistogramVec
}

type series struct {
	values []string
	value  float64
	hist   prometheus.Observer // histograms only
}

// Set sets a gauge (or a counter read from elsewhere, such as an atomic)
// to v. labels are name, value pairs.
func (s *Set) Set(name, help string, typ Type, v float64, labels ...string) {
	if typ != Counter && typ != Gauge {
		panic(fmt.Sprintf("metrics: Set of %s as %s: only counters and gauges are set", name, typ))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.series(name, help, typ, labels).value = v
}

// Gauge sets a gauge to v.
func (s *Set) Gauge(name, help string, v float64, labels ...string) {
	s.Set(name, help, Gauge, v, labels...)
}

// Add adds delta to a counter, creating it at 0 first.
func (s *Set) Add(name, help string, delta float64, labels ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.series(name, help, Counter, labels).value += delta
}

// Inc adds one to a counter.
func (s *Set) Inc(name, help string, labels ...string) { s.Add(name, help, 1, labels...) }

// Observe records one observation of a histogram with DurationBuckets:
// name_bucket{le}, name_sum and name_count.
func (s *Set) Observe(name, help string, v float64, labels ...string) {
	s.mu.Lock()
	h := s.series(name, help, Histogram, labels).hist
	s.mu.Unlock()
	h.Observe(v)
}

// ObserveDuration records d, in seconds (Prometheus' base unit), in a
// histogram.
func (s *Set) ObserveDuration(name, help string, d time.Duration, labels ...string) {
	s.Observe(name, help, d.Seconds(), labels...)
}

// series finds or creates one series; s.mu is held. The first call for a
// name fixes its type and label names; the first non-empty help is kept.
func (s *Set) series(name, help string, typ Type, kv []string) *series {
	// Every callback and stop records a few series that exist already:
	// found without building their key, or checking names, once more.
	if f := s.fams[name]; f != nil && f.typ == typ && len(kv) == 2*len(f.labels) {
		var buf [128]byte
		key := buf[:0]
		for i, l := range f.labels {
			if kv[2*i] != l {
				key = nil
				break
			}
			if i > 0 {
				key = append(key, '\xff')
			}
			key = append(key, kv[2*i+1]...)
		}
		if key != nil {
			if sr := f.series[string(key)]; sr != nil {
				if f.help == "" {
					f.help = help
				}
				return sr
			}
		}
	}
	if !validName(name, true) {
		panic(fmt.Sprintf("metrics: invalid metric name %q", name))
	}
	if len(kv)%2 != 0 {
		panic(fmt.Sprintf("metrics: odd number of label arguments %q", kv))
	}
	names := make([]string, 0, len(kv)/2)
	values := make([]string, 0, len(kv)/2)
	for i := 0; i < len(kv); i += 2 {
		if !validName(kv[i], false) || strings.HasPrefix(kv[i], "__") || (typ == Histogram && kv[i] == "le") {
			panic(fmt.Sprintf("metrics: invalid label name %q", kv[i]))
		}
		names = append(names, kv[i])
		values = append(values, kv[i+1])
	}
	if s.fams == nil {
		s.fams = map[string]*family{}
	}
	f := s.fams[name]
	if f == nil {
		f = &family{help: help, typ: typ, labels: names, series: map[string]*series{}}
		if typ == Histogram {
			// The help of a histogram is fixed here: pass it on every call.
			f.hist = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: name, Help: help, Buckets: DurationBuckets}, names)
		}
		s.fams[name] = f
	} else if f.typ != typ {
		panic(fmt.Sprintf("metrics: %s recorded as %s and as %s", name, f.typ, typ))
	} else if !slices.Equal(f.labels, names) {
		panic(fmt.Sprintf("metrics: %s recorded with labels %q and %q", name, f.labels, names))
	}
	if f.help == "" {
		f.help = help
	}
	key := strings.Join(values, "\xff")
	sr := f.series[key]
	if sr == nil {
		sr = &series{values: values}
		if f.hist != nil {
			sr.hist = f.hist.WithLabelValues(values...)
		}
		f.series[key] = sr
	}
	return sr
}

// validName: [a-zA-Z_:][a-zA-Z0-9_:]* for metrics, no colons for labels
// (the classic names: Prometheus 2's text parser reads nothing else).
func validName(s string, colon bool) bool {
	if s == "" {
		return false
	}
	for i, c := range s {
		ok := c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			(colon && c == ':') || (i > 0 && c >= '0' && c <= '9')
		if !ok {
			return false
		}
	}
	return true
}

// Describe sends nothing: a Set is an unchecked collector, its families
// appear as they are first recorded.
func (s *Set) Describe(chan<- *prometheus.Desc) {}

// Collect sends every series of the Set.
func (s *Set) Collect(ch chan<- prometheus.Metric) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for name, f := range s.fams {
		if f.hist != nil {
			f.hist.Collect(ch)
			continue
		}
		desc := prometheus.NewDesc(name, f.help, f.labels, nil)
		vt := prometheus.GaugeValue
		if f.typ == Counter {
			vt = prometheus.CounterValue
		}
		for _, sr := range f.series {
			ch <- prometheus.MustNewConstMetric(desc, vt, sr.value, sr.values...)
		}
	}
}

// WriteTo writes the Set's families (and nothing else) in the text
// format, sorted by name and then by label values.
func (s *Set) WriteTo(w io.Writer) (int64, error) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(s)
	return write(w, reg)
}

// process holds the process_ and go_ collectors: one per process, shared
// by every scrape.
var process = sync.OnceValue(func() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), collectors.NewGoCollector())
	return reg
})

// Write writes sets and the process's own metrics (process_resident_memory_bytes,
// process_cpu_seconds_total, process_open_fds, go_goroutines,
// go_memstats_*, go_gc_duration_seconds, ...) as one exposition: what a
// /metrics endpoint serves. A family recorded in two sets is an error.
func Write(w io.Writer, sets ...*Set) error {
	reg := prometheus.NewRegistry()
	for _, s := range sets {
		if s != nil {
			reg.MustRegister(s)
		}
	}
	_, err := write(w, prometheus.Gatherers{process(), reg})
	return err
}

func write(w io.Writer, g prometheus.Gatherer) (int64, error) {
	mfs, err := g.Gather()
	if err != nil {
		return 0, fmt.Errorf("metrics: %w", err)
	}
	var n int64
	for _, mf := range mfs {
		if mf.GetHelp() == "" {
			mf.Help = nil // no "# HELP name" line with nothing after it
		}
		k, err := expfmt.MetricFamilyToText(w, mf)
		n += int64(k)
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// Bool is 1 for true and 0 for false, for 0/1 gauges.
func Bool(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
