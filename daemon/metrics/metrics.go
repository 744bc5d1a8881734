package metrics

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// ContentType is the Content-Type of the text format WriteTo produces.
const ContentType = "text/plain; version=0.0.4; charset=utf-8"

// Type is a metric family's type as written on its # TYPE line.
type Type string

// Family types.
const (
	Counter Type = "counter"
	Gauge   Type = "gauge"
	// Summary here has no quantiles: only name_sum and name_count.
	Summary Type = "summary"
)

// Set is a collection of metric families. The zero value is ready to use;
// it is safe for concurrent use.
type Set struct {
	mu   sync.Mutex
	fams map[string]*family
}

type family struct {
	help   string
	typ    Type
	series map[string]*series // by rendered label set
}

type series struct {
	labels string // rendered, e.g. {a="1",b="x"}; "" without labels
	value  float64
	count  uint64 // summaries only
}

// Set sets a gauge (or a counter read from elsewhere, such as an atomic)
// to v. labels are name, value pairs.
func (s *Set) Set(name, help string, typ Type, v float64, labels ...string) {
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

// Observe records one observation of a summary: name_sum grows by v and
// name_count by one.
func (s *Set) Observe(name, help string, v float64, labels ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sr := s.series(name, help, Summary, labels)
	sr.value += v
	sr.count++
}

// ObserveDuration records d, in seconds (Prometheus' base unit).
func (s *Set) ObserveDuration(name, help string, d time.Duration, labels ...string) {
	s.Observe(name, help, d.Seconds(), labels...)
}

// series finds or creates one series; s.mu is held.
func (s *Set) series(name, help string, typ Type, labels []string) *series {
	if !validName(name, true) {
		panic(fmt.Sprintf("metrics: invalid metric name %q", name))
	}
	if s.fams == nil {
		s.fams = map[string]*family{}
	}
	f := s.fams[name]
	if f == nil {
		f = &family{help: help, typ: typ, series: map[string]*series{}}
		s.fams[name] = f
	} else if f.typ != typ {
		panic(fmt.Sprintf("metrics: %s recorded as %s and as %s", name, f.typ, typ))
	}
	key := renderLabels(labels)
	sr := f.series[key]
	if sr == nil {
		sr = &series{labels: key}
		f.series[key] = sr
	}
	return sr
}

// renderLabels renders name, value pairs as {a="x",b="y"}, names in the
// order given. The rendering is also the series key, so callers must pass
// labels in a consistent order (they are code, so they do).
func renderLabels(kv []string) string {
	if len(kv) == 0 {
		return ""
	}
	if len(kv)%2 != 0 {
		panic(fmt.Sprintf("metrics: odd number of label arguments %q", kv))
	}
	var b strings.Builder
	b.WriteByte('{')
	for i := 0; i < len(kv); i += 2 {
		if !validName(kv[i], false) || strings.HasPrefix(kv[i], "__") {
			panic(fmt.Sprintf("metrics: invalid label name %q", kv[i]))
		}
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(kv[i])
		b.WriteString(`="`)
		b.WriteString(labelEscaper.Replace(kv[i+1]))
		b.WriteByte('"')
	}
	b.WriteByte('}')
	return b.String()
}

var (
	labelEscaper = strings.NewReplacer(`\`, `\\`, "\n", `\n`, `"`, `\"`)
	helpEscaper  = strings.NewReplacer(`\`, `\\`, "\n", `\n`)
)

// validName: [a-zA-Z_:][a-zA-Z0-9_:]* for metrics, no colons for labels.
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

// WriteTo writes every family in the text format, sorted by name and then
// by label set.
func (s *Set) WriteTo(w io.Writer) (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	cw := &countWriter{w: w}
	bw := bufio.NewWriter(cw)
	names := make([]string, 0, len(s.fams))
	for n := range s.fams {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		f := s.fams[n]
		if f.help != "" {
			fmt.Fprintf(bw, "# HELP %s %s\n", n, helpEscaper.Replace(f.help))
		}
		fmt.Fprintf(bw, "# TYPE %s %s\n", n, f.typ)
		keys := make([]string, 0, len(f.series))
		for k := range f.series {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			sr := f.series[k]
			if f.typ == Summary {
				fmt.Fprintf(bw, "%s_sum%s %s\n", n, k, formatValue(sr.value))
				fmt.Fprintf(bw, "%s_count%s %d\n", n, k, sr.count)
				continue
			}
			fmt.Fprintf(bw, "%s%s %s\n", n, k, formatValue(sr.value))
		}
	}
	err := bw.Flush()
	return cw.n, err
}

// formatValue writes floats as Prometheus does: shortest representation,
// +Inf, -Inf, NaN.
func formatValue(v float64) string {
	switch {
	case math.IsInf(v, 1):
		return "+Inf"
	case math.IsInf(v, -1):
		return "-Inf"
	case math.IsNaN(v):
		return "NaN"
	}
	return strconv.FormatFloat(v, 'g', -1, 64)
}

// Bool is 1 for true and 0 for false, for 0/1 gauges.
func Bool(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}
