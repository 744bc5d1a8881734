package store

import (
	"encoding/binary"
	"fmt"
	"maps"
	"path/filepath"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// The counts PutSession keeps agree with a full scan of the ledger after
// every transition, after a reopen, and after the migration that starts
// them on a file written before they existed.
func TestCountsKeptIncrementally(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.db")
	st, err := Open(path, Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	check := func(when string) {
		t.Helper()
		got, err := st.Counts()
		if err != nil {
			t.Fatal(err)
		}
		var want map[State]int
		if err := st.db.View(func(tx *bolt.Tx) error { want, err = scanCounts(tx); return err }); err != nil {
			t.Fatal(err)
		}
		if !maps.Equal(got, want) {
			t.Fatalf("%s: counts %v, a scan says %v", when, got, want)
		}
	}
	put := func(s Session) {
		t.Helper()
		if err := st.Update(func(tx *Tx) error { return tx.PutSession(&s) }); err != nil {
			t.Fatal(err)
		}
	}
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	// Every lifecycle path, through each of its states, for a few
	// sessions at once; a rewrite in the same state counts once.
	paths := [][]State{
		{Requested, Authorized, Charging, Stopping, Stopped, Settling, Settled},
		{Authorized, Stopped, Cancelling, Cancelled},
		{Requested, Declined},
		{Authorized, Charging, Stopped, Settling, NeedsReconciliation},
	}
	for round := range 3 {
		for i, p := range paths {
			for _, state := range p {
				s := Session{SparkTransactionID: fmt.Sprintf("s-%d-%d", round, i), Station: fmt.Sprint(i), State: state, CreatedAt: t0.Add(time.Duration(round) * time.Hour)}
				put(s)
				put(s) // the same state again (a checkpoint)
				check(fmt.Sprintf("round %d path %d %s", round, i, state))
			}
		}
	}
	_ = st.Close()
	if st, err = Open(path, Options{NoSync: true}); err != nil {
		t.Fatal(err)
	}
	check("after a reopen")

	// A schema-2 file (no counts): the migration counts it once.
	if err := st.db.Update(func(tx *bolt.Tx) error {
		if err := tx.DeleteBucket(bucketSessionCounts); err != nil {
			return err
		}
		return tx.Bucket(bucketMeta).Put(metaSchema, binary.BigEndian.AppendUint64(nil, schemaIntegerMoney))
	}); err != nil {
		t.Fatal(err)
	}
	_ = st.Close()
	if st, err = Open(path, Options{NoSync: true}); err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	check("after migrating schema 2")
	if got, _ := st.Counts(); got[Settled] != 3 || got[Cancelled] != 3 || got[Declined] != 3 || got[NeedsReconciliation] != 3 {
		t.Fatalf("counts %v", got)
	}
}

// BenchmarkCounts: what the health event and /metrics pay for the
// session counts, with a ledger of n sessions.
func BenchmarkCounts(b *testing.B) {
	for _, n := range []int{1000, 100000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			st, err := Open(filepath.Join(b.TempDir(), "s.db"), Options{NoSync: true})
			if err != nil {
				b.Fatal(err)
			}
			defer st.Close()
			for i := 0; i < n; i += 1000 {
				_ = st.Update(func(tx *Tx) error {
					for j := i; j < i+1000 && j < n; j++ {
						s := Session{SparkTransactionID: fmt.Sprintf("s-%d", j), Station: "5", State: Settled, CreatedAt: time.Unix(int64(j), 0)}
						if err := tx.PutSession(&s); err != nil {
							return err
						}
					}
					return nil
				})
			}
			b.Run("kept", func(b *testing.B) {
				for range b.N {
					if _, err := st.Counts(); err != nil {
						b.Fatal(err)
					}
				}
			})
			b.Run("scan", func(b *testing.B) { // what Counts did before schema 3
				for range b.N {
					if err := st.db.View(func(tx *bolt.Tx) error { _, err := scanCounts(tx); return err }); err != nil {
						b.Fatal(err)
					}
				}
			})
		})
	}
}
