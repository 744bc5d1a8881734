package store

import (
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// Acknowledged entries read as gone at once, are deleted by the next write
// transaction or FlushAcked, and come back after a crash that forgot the
// acknowledgement (published again: at-least-once).
func TestOutboxAckedDeletedLazily(t *testing.T) {
	enqueue := func(t *testing.T, st *Store, n int) []uint64 {
		t.Helper()
		var seqs []uint64
		err := st.Update(func(tx *Tx) error {
			for range n {
				e, err := tx.Enqueue("n", "session", time.Now(), func(uint64, string) ([]byte, error) { return []byte(`{}`), nil })
				if err != nil {
					return err
				}
				seqs = append(seqs, e.Seq)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return seqs
	}
	stored := func(t *testing.T, st *Store) int { // entries in the file
		t.Helper()
		n := 0
		_ = st.View(func(tx *Tx) error {
			n = tx.tx.Bucket(bucketOutbox).Stats().KeyN
			return nil
		})
		return n
	}
	cases := []struct {
		name   string
		then   func(t *testing.T, st *Store) // after acknowledging the first 3 of 5
		stored int                           // entries in the file afterwards
	}{
		{"read as gone, still stored", func(*testing.T, *Store) {}, 5},
		{"deleted by the next write", func(t *testing.T, st *Store) {
			if err := st.Update(func(tx *Tx) error { return tx.PutInbox(InboxEntry{ID: "c", Type: "stop", At: time.Now()}) }); err != nil {
				t.Fatal(err)
			}
		}, 2},
		{"deleted by FlushAcked", func(t *testing.T, st *Store) {
			if err := st.FlushAcked(); err != nil {
				t.Fatal(err)
			}
		}, 2},
		{"a failed write keeps them pending", func(t *testing.T, st *Store) {
			_ = st.Update(func(tx *Tx) error { return ErrInvalid })
		}, 5},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			st, err := Open(filepath.Join(t.TempDir(), "s.db"), Options{NoSync: true})
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			seqs := enqueue(t, st, 5)
			st.OutboxAcked(seqs[:3]...)
			c.then(t, st)
			if n, _ := st.OutboxLen(); n != 2 {
				t.Errorf("OutboxLen %d, want 2", n)
			}
			for name, f := range map[string]func() ([]OutboxEntry, error){
				"OutboxAfter": func() ([]OutboxEntry, error) { return st.OutboxAfter(0, 0) },
				"OutboxHead":  func() ([]OutboxEntry, error) { return st.OutboxHead(0) },
			} {
				es, err := f()
				var got []uint64
				for _, e := range es {
					got = append(got, e.Seq)
				}
				if err != nil || !slices.Equal(got, seqs[3:]) {
					t.Errorf("%s: %v, %v; want %v", name, got, err, seqs[3:])
				}
			}
			_ = st.View(func(tx *Tx) error {
				for i, seq := range seqs {
					if q, _ := tx.Queued(seq); q != (i >= 3) {
						t.Errorf("Queued(%d) = %v", seq, q)
					}
				}
				return nil
			})
			if got := stored(t, st); got != c.stored {
				t.Errorf("%d entries in the file, want %d", got, c.stored)
			}
		})
	}
	t.Run("a crash forgets the acknowledgement", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "s.db")
		st, err := Open(path, Options{NoSync: true})
		if err != nil {
			t.Fatal(err)
		}
		seqs := enqueue(t, st, 5)
		st.OutboxAcked(seqs[:3]...)
		_ = st.db.Close() // not Close: nothing flushed, as after SIGKILL
		st2, err := Open(path, Options{NoSync: true})
		if err != nil {
			t.Fatal(err)
		}
		defer st2.Close()
		if n, _ := st2.OutboxLen(); n != 5 {
			t.Errorf("after the crash OutboxLen %d, want 5 (published again)", n)
		}
	})
	t.Run("Close deletes them", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "s.db")
		st, err := Open(path, Options{NoSync: true})
		if err != nil {
			t.Fatal(err)
		}
		seqs := enqueue(t, st, 5)
		st.OutboxAcked(seqs[:3]...)
		if err := st.Close(); err != nil {
			t.Fatal(err)
		}
		st2, err := Open(path, Options{NoSync: true})
		if err != nil {
			t.Fatal(err)
		}
		defer st2.Close()
		if n, _ := st2.OutboxLen(); n != 2 || stored(t, st2) != 2 {
			t.Errorf("after Close and reopen: OutboxLen %d, %d stored; want 2", n, stored(t, st2))
		}
	})
}
