package store

import (
	"context"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// dump is every key and value of every bucket of the file, for comparing
// a ledger before and after a compaction.
func dump(t *testing.T, db *bolt.DB) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := db.View(func(tx *bolt.Tx) error {
		return tx.ForEach(func(name []byte, b *bolt.Bucket) error {
			return b.ForEach(func(k, v []byte) error {
				if string(name) == string(bucketMeta) && string(k) == string(metaCompactions) {
					return nil
				}
				out[string(name)+"/"+string(k)] = string(v)
				return nil
			})
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// sparseLedger writes a ledger at path whose sessions were mostly
// archived: most of its file is free pages. It returns its contents.
func sparseLedger(t *testing.T, path string) map[string]string {
	t.Helper()
	st, err := Open(path, Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	old := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	pad := strings.Repeat("p", 1500) // a session's history and answers
	for i := 0; i < 4000; i += 500 {
		err := st.Update(func(tx *Tx) error {
			for j := i; j < i+500; j++ {
				s := Session{SparkTransactionID: fmt.Sprintf("s-%05d", j), Station: "1", State: Settled,
					NayaxTransactionID: int64(j + 1), StopReason: pad, CreatedAt: old.Add(time.Duration(j) * time.Minute)}
				if j%10 == 0 {
					s.State, s.CreatedAt = NeedsReconciliation, time.Now() // stays
				}
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
	if _, err := st.NextEpoch(); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Archive(context.Background(), old.AddDate(1, 0, 0), ArchiveOptions{Pause: time.Microsecond, Batch: MaxArchiveBatch}); err != nil {
		t.Fatal(err)
	}
	l, err := st.LedgerStats()
	if err != nil {
		t.Fatal(err)
	}
	if l.FreePercent() < 60 {
		t.Fatalf("fixture: only %.0f%% of %d bytes free", l.FreePercent(), l.FileBytes)
	}
	return dump(t, st.db)
}

// Open compacts a file past the threshold: smaller, every record as it
// was, the compaction counted; below the threshold it leaves it alone.
func TestCompactAtOpen(t *testing.T) {
	for _, tc := range []struct {
		name    string
		percent int
		min     int64
		want    bool
	}{
		{"due", 50, 1 << 20, true},
		{"off", 0, 0, false},
		{"too little free", 99, 0, false},
		{"file too small", 50, 1 << 40, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "sitelink.db")
			want := sparseLedger(t, path)
			before, _ := fileSize(path)
			st, err := Open(path, Options{NoSync: true, CompactFreePercent: tc.percent, CompactMinBytes: tc.min})
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			after, _ := fileSize(path)
			l, err := st.LedgerStats()
			if err != nil {
				t.Fatal(err)
			}
			if got := l.Compactions == 1; got != tc.want || (after < before/2) != tc.want {
				t.Errorf("compactions %d, file %d → %d bytes; want compacted: %v", l.Compactions, before, after, tc.want)
			}
			if got := dump(t, st.db); !maps.Equal(got, want) {
				t.Errorf("records changed: %d keys, want %d", len(got), len(want))
			}
			checkIndexes(t, st)
			if _, err := os.Stat(path + compactSuffix); !os.IsNotExist(err) {
				t.Errorf("%s left behind: %v", compactSuffix, err)
			}
			// A second open finds nothing to do.
			_ = st.Close()
			st, err = Open(path, Options{NoSync: true, CompactFreePercent: tc.percent, CompactMinBytes: tc.min})
			if err != nil {
				t.Fatal(err)
			}
			if l2, _ := st.LedgerStats(); l2.Compactions != l.Compactions {
				t.Errorf("second open compacted again (%d)", l2.Compactions)
			}
		})
	}
}

// A crash at any step of a compaction leaves one complete ledger under
// the ledger's name, old or new, with every record, and no copy behind
// once it is opened again. An unfinished copy of any content (a crash in
// the middle of writing it) is removed.
func TestCompactCrashAtEveryStep(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns a process per step")
	}
	for _, step := range []string{"compact-copied", "compact-renamed", "compact-done", "garbage copy"} {
		t.Run(step, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "sitelink.db")
			want := sparseLedger(t, path)
			before, _ := fileSize(path)
			if step == "garbage copy" {
				if err := os.WriteFile(path+compactSuffix, []byte("half a bbolt file"), 0o600); err != nil {
					t.Fatal(err)
				}
			} else {
				crashChild(t, "TestCompactCrashChild", path, step, 1)
			}
			st, err := Open(path, Options{NoSync: true})
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			if got := dump(t, st.db); !maps.Equal(got, want) {
				t.Errorf("records changed: %d keys, want %d", len(got), len(want))
			}
			checkIndexes(t, st)
			if _, err := os.Stat(path + compactSuffix); !os.IsNotExist(err) {
				t.Errorf("%s left behind: %v", compactSuffix, err)
			}
			after, _ := fileSize(path)
			if compacted := after < before/2; compacted != (step == "compact-renamed" || step == "compact-done") {
				t.Errorf("file %d → %d bytes after a crash at %s", before, after, step)
			}
		})
	}
}

func TestCompactCrashChild(t *testing.T) {
	path, _ := crashEnv(t)
	st, err := Open(path, Options{CompactFreePercent: 50})
	if err != nil {
		t.Fatal(err)
	}
	_ = st.Close()
}
