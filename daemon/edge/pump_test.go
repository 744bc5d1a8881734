package edge

import (
	"context"
	"encoding/binary"
	"path/filepath"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/sitelink/sitelink/daemon/link"
	"github.com/sitelink/sitelink/daemon/mqtttest"
	"github.com/sitelink/sitelink/daemon/wire"
	"github.com/sitelink/sitelink/store"
)

// TestPumpDrainsBacklog: a backlog several times ackFlushBatch (deletes
// committed by the pump's flusher while it publishes on) reaches the
// broker whole and in order, once each on a steady connection, and
// leaves the outbox empty in the file.
func TestPumpDrainsBacklog(t *testing.T) {
	br := mqtttest.Start(t)
	topics := wire.Topics{Prefix: "sitelink/v1", Node: "pump"}
	path := filepath.Join(t.TempDir(), "s.db")
	st, err := store.Open(path, store.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	const n = 3*ackFlushBatch + 77
	for done := 0; done < n; done += 500 {
		err := st.Update(func(tx *store.Tx) error {
			for j := done; j < min(done+500, n); j++ {
				if _, err := tx.Enqueue("pump", "session", time.Now(), func(seq uint64, _ string) ([]byte, error) {
					return binary.BigEndian.AppendUint64(nil, seq), nil
				}); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}

	var mu sync.Mutex
	var got []uint64
	sub := paho.NewClient(paho.NewClientOptions().AddBroker(br.URL).SetClientID("pump-sub").SetCleanSession(true).SetOrderMatters(true))
	if tok := sub.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("connect: %v", tok.Error())
	}
	defer sub.Disconnect(100)
	tok := sub.Subscribe(topics.Event("session"), 1, func(_ paho.Client, m paho.Message) {
		mu.Lock()
		got = append(got, binary.BigEndian.Uint64(m.Payload()))
		mu.Unlock()
	})
	if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe: %v", tok.Error())
	}

	l := link.New(link.Options{Broker: br.URL, ClientID: "pump", CleanSession: true})
	p := newPump(st, l, topics, nil, 10*time.Second)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); _ = l.Run(ctx) }()
	go func() { defer wg.Done(); p.run(ctx) }()
	deadline := time.Now().Add(60 * time.Second)
	for {
		mu.Lock()
		received := len(got)
		mu.Unlock()
		left, err := st.OutboxLen()
		if err != nil {
			t.Fatal(err)
		}
		if left == 0 && received >= n {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 60s: %d left in the outbox, %d of %d received", left, received, n)
		}
		time.Sleep(10 * time.Millisecond)
	}
	_ = l.Shutdown("", nil, time.Second)
	cancel()
	wg.Wait()

	mu.Lock()
	defer mu.Unlock()
	lost, dup := 0, 0
	seen := map[uint64]int{}
	for _, s := range got {
		seen[s]++
	}
	for s := uint64(1); s <= n; s++ {
		switch c := seen[s]; {
		case c == 0:
			lost++
		case c > 1:
			dup += c - 1
		}
	}
	for i := 1; i < len(got); i++ {
		if got[i] < got[i-1] {
			t.Errorf("out of order: %d after %d", got[i], got[i-1])
			break
		}
	}
	if lost != 0 || dup != 0 || len(seen) != n {
		t.Errorf("%d events: %d lost, %d duplicated, %d distinct", n, lost, dup, len(seen))
	}
	if got := p.published.Load(); got != n {
		t.Errorf("published counter %d, want %d", got, n)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	st, err = store.Open(path, store.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	if left, err := st.OutboxLen(); err != nil || left != 0 {
		t.Errorf("reopened: %d entries left in the outbox (%v)", left, err)
	}
	if es, err := st.OutboxAfter(0, 10); err != nil || len(es) != 0 {
		t.Errorf("reopened: OutboxAfter = %d entries (%v)", len(es), err)
	}
}
