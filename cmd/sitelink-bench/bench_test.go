package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/sitelink/sitelink/daemon/broker"
)

// edgeFigures are the figures the edge's groups must always produce
// (the start of each figure's name).
func edgeFigures() []string {
	sessions := edgeSizesOf(&env{Short: true}).ledgerLabel + " sessions"
	ledger := edgeSizesOf(&env{Short: true}).ledgerLabel + "-session ledger"
	return []string{
		"stop path p50 (",
		"stop path p99",
		"stop path p50 vs the bare echo",
		"stop path p99 vs the bare echo",
		"outbox drain",
		"health event's ledger reads (outbox depth, counts by state), " + sessions,
		"/metrics scrape (node.metrics_listen), " + sessions,
		"stop path p50, " + sessions,
		"stop path p50, " + sessions + ", a /metrics scrape",
		"cold start of `sitelink run` (exec → READY=1), fresh ledger",
		"cold start of `sitelink run` (exec → READY=1), " + ledger,
		"start of `sitelink run` (exec → READY=1), " + ledger + ", page cache warm",
		"RSS of `sitelink run`, idle",
		"RSS of `sitelink run`, " + ledger,
	}
}

// otherFigures are the relay's and the ledger's figures (the start of
// each name).
var otherFigures = []string{
	"relay StopCallbacks/s, ",
	"relay start-up to routes known, ",
	"relay replicas: 2 ",
	"ledger file after ",
	"cold start (Open + ActiveSessions + Counts)",
	"RSS after the cold start",
	"retention pass of one day's sessions",
	"compaction of that ledger at Open",
	"archive after ",
}

// The short run (what CI runs): every group produces its rows, none
// failed, every row has a value, a floor and a target. The ratios are
// not checked: they mean little in seconds on a shared machine.
func TestShortRun(t *testing.T) {
	if os.Getenv("SITELINK_REQUIRE_MOSQUITTO") != "" && findMosquitto() == "" {
		t.Fatal("SITELINK_REQUIRE_MOSQUITTO is set and mosquitto is not installed")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var err error
	out := captureStdout(t, func() { err = run(ctx, true, "", "json") })
	if err != nil {
		t.Fatalf("run: %v\n%s", err, out)
	}
	var rows []Row
	if err := json.Unmarshal(out, &rows); err != nil {
		t.Fatalf("the table is not JSON: %v\n%s", err, out)
	}
	checkRows(t, rows, append(edgeFigures(), otherFigures...))
	for _, f := range []func(io.Writer, []Row) error{writeTable, writeMarkdown} {
		var b bytes.Buffer
		if err := f(&b, rows); err != nil || strings.Count(b.String(), "\n") < len(rows)+2 {
			t.Errorf("table of %d rows: %v\n%s", len(rows), err, b.String())
		}
	}
}

// The edge's groups that talk to the broker most, on the embedded one,
// which the command falls back to where mosquitto is not installed (the
// others use the broker the same way).
func TestShortRunEmbeddedBroker(t *testing.T) {
	emb, err := broker.Start(broker.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer emb.Close()
	br := &benchBroker{URL: emb.URL(), Kind: "embedded", emb: emb}
	dir, err := os.MkdirTemp("", "sitelink-bench-test-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var rows []Row
	for _, r := range runners {
		switch r.name {
		case "stop", "drain":
		default:
			continue
		}
		sub, err := os.MkdirTemp(dir, r.name+"-")
		if err != nil {
			t.Fatal(err)
		}
		got, err := r.run(ctx, &env{Broker: br, Dir: sub, Short: true})
		if err != nil {
			t.Fatalf("%s on the embedded broker: %v", r.name, err)
		}
		rows = append(rows, got...)
	}
	checkRows(t, rows, edgeFigures()[:5])
}

func checkRows(t *testing.T, rows []Row, want []string) {
	t.Helper()
	for _, r := range rows {
		if r.Sitelink == "FAILED" {
			t.Errorf("group %s failed: %s", r.Figure, r.Note)
			continue
		}
		// A figure with nothing to compare with (an archive's size, a
		// compaction's time) says so with "-"; none leaves a cell empty.
		if r.Figure == "" || r.Sitelink == "" || r.Floor == "" {
			t.Errorf("row without a value or floor: %+v", r)
		}
		if r.Floor != "-" && r.Ratio == 0 && !strings.HasPrefix(r.Floor, "target") {
			t.Errorf("row with a floor but no ratio: %+v", r)
		}
		if strings.Contains(r.Sitelink+r.Floor, "NaN") || strings.HasPrefix(r.Sitelink, "0.0 ") {
			t.Errorf("row with no measurement: %+v", r)
		}
	}
	for _, w := range want {
		found := false
		for _, r := range rows {
			found = found || strings.HasPrefix(r.Figure, w)
		}
		if !found {
			t.Errorf("no figure %q in the table", w)
		}
	}
	if t.Failed() {
		var b bytes.Buffer
		_ = writeTable(&b, rows)
		t.Logf("the table:\n%s", b.String())
	}
}

// captureStdout runs f with os.Stdout going to a pipe and returns what
// it wrote there.
func captureStdout(t *testing.T, f func()) []byte {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	saved := os.Stdout
	os.Stdout = w
	got := make(chan []byte)
	go func() { b, _ := io.ReadAll(r); got <- b }()
	defer func() { os.Stdout = saved }()
	f()
	os.Stdout = saved
	_ = w.Close()
	return <-got
}
