package edge

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/sitelink/sitelink/daemon/link"
	"github.com/sitelink/sitelink/daemon/localapi"
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

// BenchmarkStopPath measures a StopCallback command's round trip (command
// in, contactor open, stop committed with one fsync, reply out) against a
// bare paho request/reply echo on the same broker in the same run, which
// is the floor: the difference is what sitelink adds.
func BenchmarkStopPath(b *testing.B) {
	br := mqtttest.Start(b)
	cfg := testConfig(b, br.URL, b.TempDir())
	cfg.Stations = cfg.Stations[:1]
	cfg.Terminals[0].Stations = []string{"5"}
	d, err := New(Options{Config: cfg, Version: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	defer func() { cancel(); <-done }()
	topics := wire.Topics{Prefix: cfg.MQTT.TopicPrefix, Node: cfg.Node.ID}

	replies := make(chan []byte, 16)
	c := paho.NewClient(paho.NewClientOptions().AddBroker(br.URL).SetClientID("bench-cloud").
		SetDefaultPublishHandler(func(_ paho.Client, m paho.Message) { replies <- m.Payload() }))
	if t := c.Connect(); !t.WaitTimeout(10*time.Second) || t.Error() != nil {
		b.Fatal(t.Error())
	}
	defer c.Disconnect(100)
	for _, f := range []string{topics.Replies(), "bench/echo/reply"} {
		if t := c.Subscribe(f, 1, nil); !t.WaitTimeout(10*time.Second) || t.Error() != nil {
			b.Fatal(t.Error())
		}
	}
	// The floor: a bare paho responder echoing requests.
	echo := paho.NewClient(paho.NewClientOptions().AddBroker(br.URL).SetClientID("bench-echo"))
	if t := echo.Connect(); !t.WaitTimeout(10*time.Second) || t.Error() != nil {
		b.Fatal(t.Error())
	}
	defer echo.Disconnect(100)
	echo.Subscribe("bench/echo/req", 1, func(cl paho.Client, m paho.Message) {
		go cl.Publish("bench/echo/reply", 1, false, m.Payload())
	}).WaitTimeout(10 * time.Second)

	roundTrip := func(topic string, payload []byte) time.Duration {
		start := time.Now()
		if t := c.Publish(topic, 1, false, payload); !t.WaitTimeout(10*time.Second) || t.Error() != nil {
			b.Fatal(t.Error())
		}
		select {
		case <-replies:
		case <-time.After(10 * time.Second):
			b.Fatal("no reply")
		}
		return time.Since(start)
	}
	api := localapi.NewClient(cfg.Node.APISocket)
	waitFor(b, 10*time.Second, "connected", func() bool { st, err := api.Status(); return err == nil && st.Connected })

	var stop, floor time.Duration
	for i := 0; i < b.N; i++ {
		spark := fmt.Sprintf("bench-%d", i)
		auth := authBody(b, "5", map[string]any{"SparkTransactionId": spark, "NayaxTransactionId": 1000 + i})
		env := func(id, typ string, body any) []byte {
			raw, _ := json.Marshal(body)
			e, _ := json.Marshal(wire.Command{ID: id, Type: typ, ReplyTo: topics.Replies(), Body: raw})
			return e
		}
		roundTrip(topics.Command("authorize"), env("a"+spark, "authorize", auth))
		// Let the authorization's aftermath (station event, charging
		// transition, outbox deletes) settle: a stop comes minutes later.
		waitFor(b, 10*time.Second, "charging, outbox drained", func() bool {
			st, err := api.Status()
			return err == nil && st.OutboxDepth == 0 && st.Published >= uint64(6*i+3)
		})
		stopEnv := env("s"+spark, "stop", stopBody(b, map[string]any{"SparkTransactionId": spark, "NayaxTransactionId": 1000 + i}))
		floor += roundTrip("bench/echo/req", stopEnv)
		stop += roundTrip(topics.Command("stop"), stopEnv)
	}
	b.ReportMetric(float64(stop.Microseconds())/float64(b.N), "stop-µs/op")
	b.ReportMetric(float64(floor.Microseconds())/float64(b.N), "bare-echo-µs/op")
	b.ReportMetric(stop.Seconds()/floor.Seconds(), "ratio-to-bare")
}

// BenchmarkHealthEvent: the engine goroutine's health report at a ledger
// of n finished sessions. It must not grow with n: the goroutine that
// builds it is the one that answers stops.
func BenchmarkHealthEvent(b *testing.B) {
	for _, n := range []int{1000, 100000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			r := newRig(b, nil)
			t0 := time.Now().Add(-time.Hour)
			for i := 0; i < n; i += 2000 {
				err := r.st.Update(func(tx *store.Tx) error {
					for j := i; j < i+2000 && j < n; j++ {
						s := store.Session{SparkTransactionID: fmt.Sprintf("old-%d", j), Station: "5", State: store.Settled, CreatedAt: t0.Add(time.Duration(j) * time.Millisecond)}
						if err := tx.PutSession(&s); err != nil {
							return err
						}
					}
					return nil
				})
				if err != nil {
					b.Fatal(err)
				}
			}
			b.ResetTimer()
			for range b.N {
				h, err := r.e.health()
				if err != nil || h.SessionsByState[store.Settled] != n {
					b.Fatalf("health %+v: %v", h.SessionsByState, err)
				}
			}
		})
	}
}
