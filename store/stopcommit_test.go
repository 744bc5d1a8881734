package store

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"
)

// BenchmarkStopShapedCommit measures a commit shaped like the edge's stop
// (read a session, two transitions, two events, one inbox entry) against a
// single-event commit in the same run: the difference is what the extra
// dirty pages cost at fsync.
func BenchmarkStopShapedCommit(b *testing.B) {
	st, err := Open(filepath.Join(b.TempDir(), "s.db"), Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	payload := make([]byte, 900)
	for i := 0; i < 2000; i++ { // some history
		s := Session{SparkTransactionID: fmt.Sprintf("old-%d", i), Station: "5", State: Settled, NayaxTransactionID: int64(i + 1)}
		_ = st.Update(func(tx *Tx) error { return tx.PutSession(&s) })
	}
	b.Run("single-event", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			_ = st.Update(func(tx *Tx) error {
				_, err := tx.Enqueue("n", "session", time.Now(), func(uint64, string) ([]byte, error) { return payload, nil })
				return err
			})
		}
	})
	b.Run("stop-shaped", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			id := fmt.Sprintf("s-%d", i)
			s := Session{SparkTransactionID: id, Station: "5", State: Charging, NayaxTransactionID: int64(100000 + i)}
			_ = st.Update(func(tx *Tx) error { return tx.PutSession(&s) })
			b.StartTimer()
			err := st.Update(func(tx *Tx) error {
				cur, err := tx.Session(id)
				if err != nil {
					return err
				}
				for _, to := range []State{Stopping, Stopped} {
					cur.State = to
					if err := tx.PutSession(&cur); err != nil {
						return err
					}
					if _, err := tx.Enqueue("n", "session", time.Now(), func(uint64, string) ([]byte, error) { return payload, nil }); err != nil {
						return err
					}
				}
				return tx.PutInbox(InboxEntry{ID: "cmd-" + id, Type: "stop", At: time.Now(), Reply: payload[:200]})
			})
			b.StopTimer()
			if err != nil {
				b.Fatal(err)
			}
		}
	})
}
