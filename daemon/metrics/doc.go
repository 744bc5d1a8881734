// Package metrics writes the Prometheus text exposition format (0.0.4):
// counters, gauges and summaries without quantiles (a _sum and a _count,
// enough for a mean latency), each with labels.
//
// It exists instead of the Prometheus client library because the edge
// daemon runs on small boards: the client pulls in protobuf and a
// registry the daemon does not need, several megabytes of binary for a
// page of text. A Set is the whole API: record into it, then WriteTo.
//
// Output is sorted (families by name, series by label values) so that
// two scrapes of the same state are byte-identical and tests can compare
// text.
//
// # Caveats
//
// Names are checked, and a bad metric or label name, an odd number of
// label arguments or one name used with two types panics: names are
// constants in the caller's code, so the first test that records the
// metric catches the mistake. Label values are free text and escaped.
//
// There are no histograms and no quantiles; a Set grows with every new
// label combination and never forgets one, so label values must come
// from small, fixed sets (endpoint names, outcomes, station numbers),
// never from ids.
package metrics
