package mqtttest

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
)

// Message is one MQTT message a Recorder saw.
type Message struct {
	Topic   string
	Payload []byte
}

// Recorder is a cloud-side paho client that keeps every message matching
// its filter, for tests that assert what crossed the broker. It uses a
// persistent session and reconnects by itself, so it also sees what was
// queued for it while a broker was restarted.
type Recorder struct {
	t    testing.TB
	c    paho.Client
	mu   sync.Mutex
	msgs []Message
	wake chan struct{}
}

// Record connects a Recorder with client id id, subscribed to filter
// (which must end in "/#"), and waits until the subscription is live.
func Record(t testing.TB, url, id, filter string) *Recorder {
	t.Helper()
	return record(t, url, id, filter, RecordOptions{})
}

func record(t testing.TB, url, id, filter string, ro RecordOptions) *Recorder {
	t.Helper()
	r := &Recorder{t: t, wake: make(chan struct{}, 1)}
	id = strings.NewReplacer("/", "-", " ", "-").Replace(id)
	if len(id) > 60 {
		id = id[:60]
	}
	o := paho.NewClientOptions().AddBroker(url).SetClientID(id).SetCleanSession(false).
		SetAutoReconnect(true).SetMaxReconnectInterval(200 * time.Millisecond).SetConnectRetry(true).
		SetConnectRetryInterval(100 * time.Millisecond).SetOrderMatters(true)
	ro.apply(o, url)
	o.SetOnConnectHandler(func(c paho.Client) { c.Subscribe(filter, 1, nil) })
	o.SetDefaultPublishHandler(func(_ paho.Client, m paho.Message) {
		r.mu.Lock()
		r.msgs = append(r.msgs, Message{m.Topic(), append([]byte(nil), m.Payload()...)})
		r.mu.Unlock()
		select {
		case r.wake <- struct{}{}:
		default:
		}
	})
	r.c = paho.NewClient(o)
	if tok := r.c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("recorder connect: %v", tok.Error())
	}
	t.Cleanup(func() { r.c.Disconnect(100) })
	base := strings.TrimSuffix(strings.TrimSuffix(filter, "#"), "/")
	if base == "" {
		base = "mqtttest"
	}
	probe := fmt.Sprintf("%s/probe/%s", base, id)
	r.Await(10*time.Second, 0, "recorder subscribed", func(m Message) bool {
		if m.Topic == "" { // a poke: the subscription may not be live yet
			r.c.Publish(probe, 1, false, []byte("probe")).WaitTimeout(time.Second)
		}
		return m.Topic == probe
	})
	return r
}

// Publish sends a QoS 1 message and waits for its PUBACK.
func (r *Recorder) Publish(topic string, payload []byte) {
	r.t.Helper()
	r.publish(topic, false, payload)
}

// PublishRetained sends a retained QoS 1 message (a desired config, a
// state) and waits for its PUBACK.
func (r *Recorder) PublishRetained(topic string, payload []byte) {
	r.t.Helper()
	r.publish(topic, true, payload)
}

func (r *Recorder) publish(topic string, retained bool, payload []byte) {
	r.t.Helper()
	if tok := r.c.Publish(topic, 1, retained, payload); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		r.t.Fatalf("publish %s: %v", topic, tok.Error())
	}
}

// All returns every message so far.
func (r *Recorder) All() []Message {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Message(nil), r.msgs...)
}

// Mark is the index of the next message, for Await.
func (r *Recorder) Mark() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.msgs)
}

// Await returns the first message from index from on that f accepts, or
// fails the test after d. f is also called with a zero Message on every
// wake-up so it can poke (e.g. publish a probe).
func (r *Recorder) Await(d time.Duration, from int, what string, f func(Message) bool) Message {
	r.t.Helper()
	deadline := time.After(d)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		f(Message{})
		for _, m := range r.All()[from:] {
			if f(m) {
				return m
			}
		}
		select {
		case <-r.wake:
		case <-tick.C:
		case <-deadline:
			r.t.Fatalf("timed out waiting for %s", what)
		}
	}
}
