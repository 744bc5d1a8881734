package edge

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/sitelink/sitelink/daemon/config"
	"github.com/sitelink/sitelink/daemon/guard"
	"github.com/sitelink/sitelink/daemon/nayax"
)

// commandID hands the engine a command with the given id and returns the
// reply exactly as published.
func (r *rig) commandID(id, typ string, body any) []byte {
	r.t.Helper()
	raw, _ := json.Marshal(body)
	env, _ := json.Marshal(map[string]any{"id": id, "type": typ, "body": json.RawMessage(raw)})
	r.e.handle(inbound{msg: &fakeMessage{topic: r.e.topics.Command(typ), payload: env}})
	out := r.e.out.Drain()
	if len(out) != 1 {
		r.t.Fatalf("%s %s: %d replies queued, want 1", typ, id, len(out))
	}
	return out[0].payload
}

// replyVerdict is the verdict and code of a published reply.
func replyVerdict(t *testing.T, payload []byte) (string, float64) {
	t.Helper()
	var reply struct{ Body map[string]any }
	if err := json.Unmarshal(payload, &reply); err != nil {
		t.Fatalf("reply %s: %v", payload, err)
	}
	return verdict(reply.Body)
}

// maxFloodLedger is the bound on the ledger file after the flood: what a
// few sessions take. Before commands that change nothing were kept out of
// the ledger, 20,000 of them grew it to 8 MiB (an inbox entry each for
// 72 h, up to 10,000 kept) and evicted the replies of the commands that
// had acted.
const maxFloodLedger = 64 << 10

// A flood of stops for unknown transactions never reaches the ledger: its
// file and inbox stay as they were, no commit waits for an fsync, while
// legitimate commands act, and replayed ids of those that acted are still
// answered from the ledger, also after a restart.
func TestInboxBoundedUnderFlood(t *testing.T) {
	dir := t.TempDir()
	r := newRigAt(t, dir, nil, nil)
	auth := r.commandID("auth-1", "authorize", authBody(t, "5", nil))
	if v, _ := replyVerdict(t, auth); v != "Approved" || !r.sims["5"].Read().Contactor {
		t.Fatalf("authorize: %s", auth)
	}
	dbPath := filepath.Join(dir, "sitelink.db")
	size := func() int64 {
		fi, err := os.Stat(dbPath)
		if err != nil {
			t.Fatal(err)
		}
		return fi.Size()
	}
	before, commits := size(), r.e.commits

	const flood = 20000
	floodReply := map[int][]byte{}
	tmpl, _ := json.Marshal(stopBody(t, map[string]any{"SparkTransactionId": "00000000-0000-4000-8000-FLOOD0000000"}))
	start := time.Now()
	for i := range flood {
		id := fmt.Sprintf("flood-%d", i)
		body := json.RawMessage(bytes.Replace(tmpl, []byte("FLOOD0000000"), fmt.Appendf(nil, "%012d", i), 1))
		got := r.commandID(id, "stop", body)
		if i%1000 == 0 || i >= flood-3 {
			if v, code := replyVerdict(t, got); v != "Declined" || code != nayax.CodeUnknownTransaction {
				t.Fatalf("%s: %s, want Declined 27", id, got)
			}
			floodReply[i] = got
		}
	}
	took := time.Since(start)
	if r.e.commits != commits {
		t.Errorf("the flood made %d ledger commits, want none", r.e.commits-commits)
	}
	if after := size(); after > maxFloodLedger || after != before {
		t.Errorf("ledger %d bytes after the flood, was %d; want it unchanged and under %d", after, before, maxFloodLedger)
	}
	if n := r.e.recent.len(); n != recentNoops {
		t.Errorf("%d replies remembered in memory, want the last %d", n, recentNoops)
	}
	if got := r.e.noops.Totals()["stop"]; got != flood {
		t.Errorf("noop stops counted %d, want %d", got, flood)
	}
	t.Logf("%d unknown-transaction stops in %v (%v each); ledger %d bytes before, %d after", flood, took.Round(time.Millisecond), took/flood, before, size())

	// A recent no-op id is answered the same, from memory; another type
	// under its id is refused.
	last := flood - 1
	if got := r.commandID(fmt.Sprintf("flood-%d", last), "stop", stopBody(t, nil)); !bytes.Equal(got, floodReply[last]) {
		t.Errorf("replayed flood id: %s, first reply %s", got, floodReply[last])
	}
	if v, code := replyVerdict(t, r.commandID(fmt.Sprintf("flood-%d", last), "cancel", map[string]any{})); v != "Declined" || code != nayax.CodeValidation {
		t.Errorf("flood id reused for another type: %s %v", v, code)
	}
	// The acted-on authorize is still answered from the ledger, byte for
	// byte, without acting again.
	if got := r.commandID("auth-1", "authorize", authBody(t, "5", nil)); !bytes.Equal(got, auth) {
		t.Errorf("replayed authorize: %s, first reply %s", got, auth)
	}
	if r.e.commits != commits {
		t.Errorf("replays committed")
	}

	// The real stop acts and is kept durably.
	stop := r.commandID("stop-1", "stop", stopBody(t, nil))
	if v, _ := replyVerdict(t, stop); v != "Approved" || r.sims["5"].Read().Contactor {
		t.Fatalf("legitimate stop after the flood: %s", stop)
	}
	if s := r.session(); s.State.Active() {
		t.Fatalf("session %s after the stop", s.State)
	}
	_ = r.st.Close()
	counts := rawKeyCounts(t, dbPath)
	if n := counts["inbox"] + counts["inbox_recent"]; n != 2 {
		t.Errorf("inbox %d keys; want 2 (the authorize and the stop)", n)
	}

	// After a restart, both acted-on ids are answered from the ledger.
	r2 := newRigAt(t, dir, nil, nil)
	c0 := r2.e.commits
	for _, c := range []struct {
		id, typ string
		body    any
		want    []byte
	}{
		{"auth-1", "authorize", authBody(t, "5", nil), auth},
		{"stop-1", "stop", stopBody(t, nil), stop},
	} {
		if got := r2.commandID(c.id, c.typ, c.body); !bytes.Equal(got, c.want) {
			t.Errorf("%s after a restart: %s, want %s", c.id, got, c.want)
		}
	}
	if r2.sims["5"].Read().Contactor || r2.e.commits != c0 {
		t.Error("a replay after the restart acted")
	}
}

// rawKeyCounts counts the keys of each bucket of a closed ledger.
func rawKeyCounts(t *testing.T, path string) map[string]int {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	counts := map[string]int{}
	err = db.View(func(tx *bolt.Tx) error {
		return tx.ForEach(func(name []byte, b *bolt.Bucket) error {
			counts[string(name)] = b.Stats().KeyN
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	return counts
}

// startAPI serves the API socket and node.metrics_listen on a free port
// with timeouts to, and returns the metrics address.
func startAPI(t *testing.T, to HTTPTimeouts, refused *guard.Refusals) string {
	t.Helper()
	dir := t.TempDir()
	node := config.Node{APISocket: filepath.Join(dir, "api.sock"), MetricsListen: "127.0.0.1:0"}
	a, err := listenAPI(node, backend{}, to, refused, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []*http.Server{a.srv, a.ms} {
		if s.ReadHeaderTimeout <= 0 || s.ReadTimeout <= 0 || s.WriteTimeout <= 0 || s.IdleTimeout <= 0 || s.MaxHeaderBytes <= 0 {
			t.Fatalf("server without a timeout: %+v", s)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); a.serve(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return a.metricsAddr()
}

// node.metrics_listen closes what a client leaves open: a connection that
// sends nothing or dribbles its headers after the header timeout, one
// kept alive after a request after the idle timeout.
func TestMetricsListenerClosesIdle(t *testing.T) {
	to := HTTPTimeouts{ReadHeader: 300 * time.Millisecond, Idle: 600 * time.Millisecond}
	addr := startAPI(t, to, guard.NewRefusals(nil, 0, "", 0))
	tests := []struct {
		name     string
		send     func(c net.Conn, br *bufio.Reader) // what the client does before waiting
		min, max time.Duration                      // when the server must close, from the end of send
	}{
		{"silent", func(net.Conn, *bufio.Reader) {}, 200 * time.Millisecond, 2 * time.Second},
		{"slow headers", func(c net.Conn, _ *bufio.Reader) {
			fmt.Fprint(c, "GET /metrics HTTP/1.1\r\nHost: x\r\n")
			for range 4 { // 400 ms of dribble: past the header timeout, so the close may come mid-send
				time.Sleep(100 * time.Millisecond)
				if _, err := fmt.Fprint(c, "X-A: 1\r\n"); err != nil {
					return
				}
			}
		}, 0, 2 * time.Second},
		{"idle after a request", func(c net.Conn, br *bufio.Reader) {
			fmt.Fprint(c, "GET /nothing HTTP/1.1\r\nHost: x\r\n\r\n")
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Errorf("request: %v", err)
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusNotFound || resp.Close {
				t.Errorf("request: HTTP %d, close %v; want a kept-alive 404", resp.StatusCode, resp.Close)
			}
		}, 500 * time.Millisecond, 3 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			br := bufio.NewReader(c)
			tt.send(c, br)
			start := time.Now()
			_ = c.SetReadDeadline(time.Now().Add(tt.max + time.Second))
			_, err = io.Copy(io.Discard, br) // until the server closes
			took := time.Since(start)
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				t.Fatalf("connection still open after %v", took)
			}
			if took < tt.min || took > tt.max {
				t.Errorf("closed after %v, want between %v and %v", took, tt.min, tt.max)
			}
		})
	}
}

// node.metrics_listen holds at most metricsConnections; one more is reset
// and counted, and what is held does not keep a scrape out for longer
// than the header timeout.
func TestMetricsListenerCap(t *testing.T) {
	refused := guard.NewRefusals(nil, 0, "", 0)
	addr := startAPI(t, HTTPTimeouts{ReadHeader: 500 * time.Millisecond}, refused)
	for range metricsConnections {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
	}
	waitFor(t, 5*time.Second, "a connection over the cap refused", func() bool {
		if c, err := net.Dial("tcp", addr); err == nil {
			_ = c.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
			_, _ = c.Read(make([]byte, 1))
			c.Close()
		}
		return refused.Totals()[guard.ReasonConnections] > 0
	})
	// The silent connections are closed at the header timeout: a scrape
	// gets through again.
	waitFor(t, 5*time.Second, "a request served", func() bool {
		resp, err := (&http.Client{Timeout: time.Second}).Get("http://" + addr + "/nothing")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusNotFound
	})
}
