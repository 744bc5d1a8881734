package edge

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sitelink/sitelink/daemon/config"
	"github.com/sitelink/sitelink/daemon/localapi"
	"github.com/sitelink/sitelink/daemon/mqtttest"
	"github.com/sitelink/sitelink/daemon/wire"
)

// TestNodeIDConflict: two daemons with one node.id and one ledger (a
// cloned SD card) on one broker. Each connection of one drops the other
// (one connection per client id). Both find out, say so once in the log,
// in the status, the metrics and the retained state, and reconnect only
// at the conflict backoff's pace instead of every few hundred
// milliseconds; what happens meanwhile waits in the outbox. Once the
// clone stops, the other holds the broker and the conflict ends.
func TestNodeIDConflict(t *testing.T) {
	// The conflict backoff waits 0.5-1 s, then 1-2 s: at least 1 s
	// between attempts once a conflict is known, where reconnect_max
	// (200 ms below) alone lets the two fight several times a second.
	oldMin, oldMax, oldClear := conflictMin, conflictMax, conflictClear
	conflictMin, conflictMax, conflictClear = time.Second, 2*time.Second, 3*time.Second
	t.Cleanup(func() { conflictMin, conflictMax, conflictClear = oldMin, oldMax, oldClear })

	a := startSite(t)
	// Quick reconnects, so that a fight would show: 4 attempts a second
	// or more each.
	a.cfg.MQTT.ReconnectMin, a.cfg.MQTT.ReconnectMax = config.Duration(50*time.Millisecond), config.Duration(200*time.Millisecond)
	// The clone: the same config (node id) and a copy of the ledger,
	// taken with the daemon stopped.
	a.stop()
	dirB := t.TempDir()
	copyLedger(t, a.cfg.DBPath(), filepath.Join(dirB, filepath.Base(a.cfg.DBPath())))
	logA, logB := newCountingLog(t, "A"), newCountingLog(t, "B")
	a.launch(logA.logger)
	b := &site{t: t, broker: a.broker, cfg: testConfig(t, a.broker.URL, dirB), topics: a.topics, cloud: a.cloud}
	b.cfg.MQTT.ReconnectMin, b.cfg.MQTT.ReconnectMax = a.cfg.MQTT.ReconnectMin, a.cfg.MQTT.ReconnectMax
	b.launch(logB.logger)

	sites := map[string]*site{"A": a, "B": b}
	logs := map[string]*countingLog{"A": logA, "B": logB}
	for name, s := range sites {
		waitFor(t, 30*time.Second, name+" reports the node.id conflict", func() bool {
			st, err := s.api.Status()
			return err == nil && st.NodeIDConflict != nil
		})
	}
	// Meanwhile the site goes on: a station's fault is an event that
	// waits in the outbox while the link is away.
	a.sims["6"].Fault("meter silent")

	// Attempts over a window: every attempt takes a connect epoch.
	const window = 6 * time.Second
	e0 := map[string]int64{}
	for name, s := range sites {
		e0[name] = conflictStatus(t, s).Epoch
	}
	time.Sleep(window)
	for name, s := range sites {
		st := conflictStatus(t, s)
		// Waits of at least 1 s (0.5 s for the very first): at most
		// window/1s + 2 attempts; the fight makes 20 or more.
		if n := st.Epoch - e0[name]; n > int64(window/time.Second)+2 {
			t.Errorf("%s: %d connection attempts in %v during a known conflict: still fighting", name, n, window)
		}
		if st.NodeIDConflict == nil || st.NodeIDConflicts != 1 {
			t.Errorf("%s: status conflict %+v, %d detections; want one conflict, still on", name, st.NodeIDConflict, st.NodeIDConflicts)
		} else if st.NodeIDConflict.OtherInstance == "" || st.NodeIDConflict.OtherInstance == st.Instance {
			t.Errorf("%s: other instance %q, own %q", name, st.NodeIDConflict.OtherInstance, st.Instance)
		}
		m, err := s.api.Metrics()
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{"\nsitelink_node_id_conflict 1\n", "\nsitelink_node_id_conflicts_total 1\n"} {
			if !strings.Contains(m, want) {
				t.Errorf("%s: metrics lack %q", name, strings.TrimSpace(want))
			}
		}
		if n := logs[name].conflicts.Load(); n != 1 {
			t.Errorf("%s: %d node.id conflict error lines, want 1 for one conflict", name, n)
		}
	}
	// The retained state says so, for the fleet.
	a.cloud.Await(5*time.Second, 0, "a state with node_id_conflict", func(m mqtttest.Message) bool {
		st, err := wire.DecodeState(m.Payload)
		return err == nil && m.Topic == a.topics.State() && st.NodeIDConflict && st.Instance != ""
	})

	// The clone goes away: A gets the broker to itself after its
	// current wait, and the conflict ends once it has held it for
	// conflictClear.
	b.stop()
	waitFor(t, 20*time.Second, "A's conflict over", func() bool {
		st, err := a.api.Status()
		return err == nil && st.Connected && st.NodeIDConflict == nil
	})
	st := conflictStatus(t, a)
	if st.NodeIDConflicts != 1 {
		t.Errorf("A: %d detections after the conflict, want 1", st.NodeIDConflicts)
	}
	m, err := a.api.Metrics()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(m, "\nsitelink_node_id_conflict 0\n") {
		t.Error("A: sitelink_node_id_conflict not 0 after the conflict")
	}
	waitFor(t, 10*time.Second, "A's outbox delivered", func() bool { return conflictStatus(t, a).OutboxDepth == 0 })
	if n := logA.conflicts.Load(); n != 1 {
		t.Errorf("A: %d node.id conflict error lines, want 1", n)
	}
	// And its retained state no longer claims one.
	mark := a.cloud.Mark()
	a.cloud.Publish(a.topics.Command(wire.CommandRebirth), conflictJSON(t, wire.Command{ID: "rebirth-1", Type: wire.CommandRebirth}))
	a.cloud.Await(5*time.Second, mark, "a state without node_id_conflict", func(m mqtttest.Message) bool {
		st, err := wire.DecodeState(m.Payload)
		return err == nil && m.Topic == a.topics.State() && st.Online && !st.NodeIDConflict && st.Instance == conflictStatus(t, a).Instance
	})
	// Stable now: no more attempts.
	e := conflictStatus(t, a).Epoch
	time.Sleep(conflictQuiet)
	if got := conflictStatus(t, a); got.Epoch != e || !got.Connected {
		t.Errorf("A after the conflict: epoch %d -> %d, connected %v; want one stable connection", e, got.Epoch, got.Connected)
	}
}

// conflictQuiet is how long TestNodeIDConflict watches for attempts that
// should not happen.
const conflictQuiet = 500 * time.Millisecond

func conflictStatus(t *testing.T, s *site) localapi.Status {
	t.Helper()
	st, err := s.api.Status()
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func conflictJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func copyLedger(t *testing.T, from, to string) {
	t.Helper()
	in, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.Create(to)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}

// countingLog is a test logger (name-tagged) that also counts the
// node.id conflict error lines.
type countingLog struct {
	logger    *slog.Logger
	conflicts atomic.Int64
}

func newCountingLog(t *testing.T, name string) *countingLog {
	c := &countingLog{}
	c.logger = slog.New(countingHandler{Handler: testLogger(t).Handler().WithAttrs([]slog.Attr{slog.String("daemon", name)}), c: c})
	return c
}

type countingHandler struct {
	slog.Handler
	c *countingLog
}

func (h countingHandler) Handle(ctx context.Context, r slog.Record) error {
	if r.Level == slog.LevelError && strings.HasPrefix(r.Message, "node.id conflict:") {
		h.c.conflicts.Add(1)
	}
	return h.Handler.Handle(ctx, r)
}

func (h countingHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return countingHandler{Handler: h.Handler.WithAttrs(as), c: h.c}
}

func (h countingHandler) WithGroup(g string) slog.Handler {
	return countingHandler{Handler: h.Handler.WithGroup(g), c: h.c}
}
