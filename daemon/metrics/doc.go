// Package metrics is the project's one home for Prometheus metrics: a
// thin layer over the Prometheus client library (client_golang) that
// keeps call sites to one line. Record into a Set (Gauge, Set, Inc, Add,
// ObserveDuration), then serve it with Write, which adds the process_ and
// go_ metrics (resident memory, CPU, file descriptors, goroutines, GC).
//
// # Why client_golang
//
// Measured on the sitelink binary (amd64, 2026-12-06): with
// client_golang v1.25.0 it grows from 12.38 to 14.33 MB as the Makefile
// builds it (-trimpath -ldflags "-s -w"), +1.95 MB (from 17.98 to 20.86
// MB, +2.9 MB, with a plain go build); VictoriaMetrics/metrics v1.45.0
// would have added 172 KB (248 KB unstripped). Idle RSS of `sitelink
// run` (sitelink-bench -only process) went from 12.7 to 14.4 MB, almost
// all of it mapped binary (file 10.1 -> 11.6 MB, anon 2.6 -> 2.8 MB),
// under the 20 MB target. The small one was
// not taken because its output does not pass `promtool check metrics`:
// HELP lines carry no text (every family fails "no help text"), and its
// own process_ and go_ metrics break the naming rules
// (go_cgo_calls_count as a counter, process_io_*_total as gauges), so
// using it would mean rewriting its output by hand again. client_golang's
// exposition is the reference promtool checks against, histograms carry
// le buckets that histogram_quantile reads, and the process collector
// reads /proc as node dashboards expect.
//
// # The Set
//
// A Set's series are counters and gauges set or added at any time
// (values read from atomics elsewhere are Set at scrape time), and
// histograms with DurationBuckets (Observe, ObserveDuration): every
// latency is a histogram, so p99 comes from
// histogram_quantile(0.99, rate(name_bucket[5m])).
//
// Output is sorted (families by name, series by label values, labels by
// name) so that two scrapes of the same state are byte-identical and
// tests can compare text.
//
// # Caveats
//
// Names are checked, and a bad metric or label name, an odd number of
// label arguments, one name used with two types or two sets of label
// names panics: names are constants in the caller's code, so the first
// test that records the metric catches the mistake. The first non-empty
// help of a counter or gauge is kept; a histogram's help is the one of
// its first observation. Label values are free text and escaped, but keep
// them to words without spaces.
//
// Units are base units in names: _seconds, _bytes, _joules, _watts;
// counters end in _total.
//
// A Set grows with every new label combination and never forgets one (a
// histogram costs 18 series), so label values must come from small, fixed
// sets (endpoint names, outcomes, station numbers), never from ids.
package metrics
