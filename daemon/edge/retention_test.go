package edge

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sitelink/sitelink/daemon/config"
	"github.com/sitelink/sitelink/daemon/mqtttest"
	"github.com/sitelink/sitelink/daemon/wire"
	"github.com/sitelink/sitelink/store"
)

// oldSessions writes sessions into the ledger at path: finished ones
// changed days ago (by name: "settled-200" is a settled session last
// changed 200 days before now).
func oldSessions(t *testing.T, path string, now time.Time, names ...string) {
	t.Helper()
	st, err := store.Open(path, store.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	err = st.Update(func(tx *store.Tx) error {
		for k, n := range names {
			i := strings.LastIndexByte(n, '-')
			state := n[:i]
			days, err := strconv.Atoi(n[i+1:])
			if err != nil {
				return fmt.Errorf("%s: %w", n, err)
			}
			at := now.AddDate(0, 0, -days)
			s := store.Session{SparkTransactionID: n, Station: "5", State: store.State(state), NayaxTransactionID: int64(k + 1),
				CreatedAt: at.Add(-time.Hour), UpdatedAt: at}
			if err := tx.PutSession(&s); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func archivedIDs(t *testing.T, dir string) []string {
	t.Helper()
	ss, err := store.ArchivedSessions(dir, store.ArchiveQuery{}, func(e *store.ArchiveLineError) { t.Error(e) })
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, s := range ss {
		ids = append(ids, s.SparkTransactionID)
	}
	slices.Sort(ids)
	return ids
}

// A pass archives what storage.retention says, as the running
// configuration has it now; with retention 0 nothing leaves.
func TestRetentionPass(t *testing.T) {
	dir := t.TempDir()
	cfg := config.Default()
	cfg.Node.DataDir = dir
	now := time.Date(2026, 9, 1, 12, 0, 0, 0, time.UTC)
	oldSessions(t, cfg.DBPath(), now, "settled-200", "cancelled-91", "needs-reconciliation-300", "settling-100", "settled-89", "closed-30")
	st, err := store.Open(cfg.DBPath(), cfg.StoreOptions(store.Options{NoSync: true}))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var p atomic.Pointer[config.Edge]
	p.Store(&cfg)
	r := &retention{log: testLogger(t), st: st, cfg: &p, now: func() time.Time { return now }}

	r.pass(context.Background())
	if got, want := archivedIDs(t, cfg.ArchiveDir()), []string{"cancelled-91", "settled-200"}; !slices.Equal(got, want) {
		t.Errorf("after 90d: archived %v, want %v", got, want)
	}

	// Retention off: nothing more leaves, however old.
	off := cfg
	off.Storage.Retention = 0
	p.Store(&off)
	now = now.AddDate(1, 0, 0)
	r.pass(context.Background())
	if got := archivedIDs(t, cfg.ArchiveDir()); len(got) != 2 {
		t.Errorf("with retention 0: archived %v", got)
	}

	// Shorter, from a reload: the rest of the finished ones go.
	short := cfg
	short.Storage.Retention = config.Duration(7 * 24 * time.Hour)
	p.Store(&short)
	r.pass(context.Background())
	if got, want := archivedIDs(t, cfg.ArchiveDir()), []string{"cancelled-91", "closed-30", "settled-200", "settled-89"}; !slices.Equal(got, want) {
		t.Errorf("after 7d: archived %v, want %v", got, want)
	}
	counts, err := st.Counts()
	if err != nil {
		t.Fatal(err)
	}
	if want := map[store.State]int{store.NeedsReconciliation: 1, store.Settling: 1}; fmt.Sprint(counts) != fmt.Sprint(want) {
		t.Errorf("counts %v, want %v", counts, want)
	}
}

// The daemon archives the ledger's old sessions on its own soon after it
// starts, and says so in its metrics; the sessions that stay are still
// listed and the archived ones are not.
func TestRetentionDaemon(t *testing.T) {
	old := retentionFirst
	retentionFirst = 10 * time.Millisecond
	t.Cleanup(func() { retentionFirst = old })
	b := mqtttest.Start(t)
	s := &site{t: t, broker: b, cfg: testConfig(t, b.URL, t.TempDir())}
	s.topics = wire.Topics{Prefix: s.cfg.MQTT.TopicPrefix, Node: testNode}
	s.cloud = mqtttest.Record(t, b.URL, "cloud-"+t.Name(), s.cfg.MQTT.TopicPrefix+"/#")
	oldSessions(t, s.cfg.DBPath(), time.Now(), "settled-120", "declined-95", "needs-reconciliation-400", "settled-3")
	s.start()

	// The archive file is written (and synced) before the batch leaves the
	// ledger, so wait for both: the ledger's delete commits just after.
	waitFor(t, 10*time.Second, "old sessions archived and gone from the ledger", func() bool {
		list, err := s.api.Sessions(100)
		return err == nil && len(list) == 2 && len(archivedIDs(t, filepath.Join(s.cfg.Node.DataDir, "archive"))) == 2
	})
	if got, want := archivedIDs(t, s.cfg.ArchiveDir()), []string{"declined-95", "settled-120"}; !slices.Equal(got, want) {
		t.Errorf("archived %v, want %v", got, want)
	}
	list, err := s.api.Sessions(100)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, x := range list {
		ids = append(ids, x.SparkTransactionID)
	}
	slices.Sort(ids)
	if want := []string{"needs-reconciliation-400", "settled-3"}; !slices.Equal(ids, want) {
		t.Errorf("sessions listed %v, want %v", ids, want)
	}
	text, err := s.api.Metrics()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"sitelink_sessions_archived_total 2", "sitelink_ledger_compactions_total 0", "# TYPE sitelink_ledger_bytes gauge", "# TYPE sitelink_ledger_free_bytes gauge"} {
		if !strings.Contains(text, "\n"+want+"\n") {
			t.Errorf("metrics lack %q", want)
		}
	}
}
