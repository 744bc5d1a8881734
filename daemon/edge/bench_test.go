package edge

import (
	"context"
	"fmt"
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

// BenchmarkOutboxDrain measures how fast the pump empties a backlog into a
// local mosquitto, against bare paho publishing the same messages with the
// same window in the same run (the ceiling). Target: >= 10,000 events/s.
func BenchmarkOutboxDrain(b *testing.B) {
	br := mqtttest.Start(b)
	const n = 20000
	payload := make([]byte, 300)
	for i := range payload {
		payload[i] = 'x'
	}
	topics := wire.Topics{Prefix: "sitelink/v1", Node: "bench"}

	var bare, pumped time.Duration
	for i := 0; i < b.N; i++ {
		bare += barePaho(b, br.URL, topics.Event("session"), payload, n)

		st, err := store.Open(filepath.Join(b.TempDir(), fmt.Sprintf("b%d.db", i)), store.Options{})
		if err != nil {
			b.Fatal(err)
		}
		for done := 0; done < n; done += 256 {
			err := st.Update(func(tx *store.Tx) error {
				for j := 0; j < 256 && done+j < n; j++ {
					if _, err := tx.Enqueue("bench", "session", time.Now(), func(uint64, string) ([]byte, error) { return payload, nil }); err != nil {
						return err
					}
				}
				return nil
			})
			if err != nil {
				b.Fatal(err)
			}
		}
		l := link.New(link.Options{Broker: br.URL, ClientID: fmt.Sprintf("bench-%d", i), CleanSession: true})
		p := newPump(st, l, topics, nil, 10*time.Second)
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		wg.Add(2)
		go func() { defer wg.Done(); _ = l.Run(ctx) }()
		if _, err := l.Wait(ctx); err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		go func() { defer wg.Done(); p.run(ctx) }()
		for {
			if left, _ := st.OutboxLen(); left == 0 {
				break
			}
			time.Sleep(time.Millisecond)
		}
		pumped += time.Since(start)
		_ = l.Shutdown("", nil, time.Second)
		cancel()
		wg.Wait()
		st.Close()
	}
	b.ReportMetric(float64(n*b.N)/pumped.Seconds(), "events/s")
	b.ReportMetric(float64(n*b.N)/bare.Seconds(), "bare-paho-msg/s")
	b.ReportMetric(bare.Seconds()/pumped.Seconds(), "ratio-to-bare")
}

// barePaho publishes n QoS 1 messages with up to pumpWindow in flight and
// returns how long it took until all were acknowledged.
func barePaho(b *testing.B, url, topic string, payload []byte, n int) time.Duration {
	c := paho.NewClient(paho.NewClientOptions().AddBroker(url).SetClientID("bench-bare").SetCleanSession(true))
	if t := c.Connect(); !t.WaitTimeout(10*time.Second) || t.Error() != nil {
		b.Fatalf("connect: %v", t.Error())
	}
	defer c.Disconnect(100)
	start := time.Now()
	window := make(chan paho.Token, pumpWindow)
	go func() {
		for i := 0; i < n; i++ {
			window <- c.Publish(topic, 1, false, payload)
		}
		close(window)
	}()
	for t := range window {
		if !t.WaitTimeout(10*time.Second) || t.Error() != nil {
			b.Fatalf("publish: %v", t.Error())
		}
	}
	return time.Since(start)
}
