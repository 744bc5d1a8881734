package store_test

import (
	"fmt"
	"log"
	"os"
	"path/filepath"
	"time"

	"github.com/sitelink/sitelink/store"
)

// A session transition and the event announcing it commit together, with
// one fsync; a drain later publishes the event and deletes it.
func Example() {
	dir, err := os.MkdirTemp("", "sitelink")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	s, err := store.Open(filepath.Join(dir, "sitelink.db"), store.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()

	now := time.Date(2025, 3, 14, 9, 26, 53, 0, time.UTC)
	err = s.Update(func(tx *store.Tx) error {
		sess := store.Session{SparkTransactionID: "7f9c2ba4", Station: "bay-1", State: store.Requested, CreatedAt: now}
		if err := tx.PutSession(&sess); err != nil {
			return err
		}
		_, err := tx.Enqueue("edge-1", "start-request", now, func(seq uint64, id string) ([]byte, error) {
			return fmt.Appendf(nil, `{"id":%q,"node":"edge-1","seq":%d,"type":"start-request"}`, id, seq), nil
		})
		return err
	})
	if err != nil {
		log.Fatal(err)
	}

	batch, err := s.OutboxAfter(0, 256)
	if err != nil {
		log.Fatal(err)
	}
	for _, e := range batch {
		fmt.Printf("publish %s: %s\n", e.ID, e.Payload)
	}
	if err := s.OutboxDelete(batch[0].Seq); err != nil {
		log.Fatal(err)
	}
	n, _ := s.OutboxLen()
	fmt.Println("left:", n)
	// Output:
	// publish edge-1-1: {"id":"edge-1-1","node":"edge-1","seq":1,"type":"start-request"}
	// left: 0
}
