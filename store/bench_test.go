package store_test

import (
	"testing"
	"time"

	"github.com/sitelink/sitelink/store"
	"github.com/sitelink/sitelink/store/storetest"
)

// payload300 is the size of a typical event envelope.
var payload300 = make([]byte, 300)

func build300(uint64, string) ([]byte, error) { return payload300, nil }

// BenchmarkEnqueue measures Enqueue with one commit (fsync) per event and
// with 256 events per commit, as a session engine batching transitions
// would; the nosync variant shows the CPU cost alone.
func BenchmarkEnqueue(b *testing.B) {
	for _, bc := range []struct {
		name   string
		batch  int
		noSync bool
	}{{"commit=1", 1, false}, {"commit=256", 256, false}, {"commit=256/nosync", 256, true}} {
		b.Run(bc.name, func(b *testing.B) {
			s := storetest.Open(b, store.Options{NoSync: bc.noSync})
			at := time.Now()
			b.ReportAllocs()
			b.ResetTimer()
			for done := 0; done < b.N; {
				n := min(bc.batch, b.N-done)
				err := s.Update(func(tx *store.Tx) error {
					for i := 0; i < n; i++ {
						if _, err := tx.Enqueue("edge-1", "session", at, build300); err != nil {
							return err
						}
					}
					return nil
				})
				if err != nil {
					b.Fatal(err)
				}
				done += n
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
		})
	}
}

// BenchmarkOutboxDrain measures the drain loop: read 256, delete 256. The
// nosync variant shows the CPU cost alone, without the disk's fsync.
func BenchmarkOutboxDrain(b *testing.B) {
	b.Run("fsync", func(b *testing.B) { benchDrain(b, false) })
	b.Run("nosync", func(b *testing.B) { benchDrain(b, true) })
}

func benchDrain(b *testing.B, noSync bool) {
	const batch = 256
	s := storetest.Open(b, store.Options{NoSync: noSync})
	at := time.Now()
	for done := 0; done < b.N; {
		n := min(4096, b.N-done)
		err := s.Update(func(tx *store.Tx) error {
			for i := 0; i < n; i++ {
				if _, err := tx.Enqueue("edge-1", "session", at, build300); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
		done += n
	}
	b.ReportAllocs()
	b.ResetTimer()
	var last uint64
	seqs := make([]uint64, 0, batch)
	for drained := 0; drained < b.N; {
		es, err := s.OutboxAfter(last, batch)
		if err != nil {
			b.Fatal(err)
		}
		if len(es) == 0 {
			b.Fatalf("outbox empty after %d of %d", drained, b.N)
		}
		seqs = seqs[:0]
		for _, e := range es {
			seqs = append(seqs, e.Seq)
		}
		if err := s.OutboxDelete(seqs...); err != nil {
			b.Fatal(err)
		}
		last = es[len(es)-1].Seq
		drained += len(es)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}
