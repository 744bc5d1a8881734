package broker_test

import (
	"bytes"
	"errors"
	"log/slog"
	"maps"
	"net"
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/sitelink/sitelink/daemon/broker"
)

const wait = 10 * time.Second

func start(t *testing.T, o broker.Options) *broker.Broker {
	t.Helper()
	b, err := broker.Start(o)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		if err := b.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return b
}

// client is a paho client whose unsolicited and subscribed messages land
// in msgs.
type client struct {
	paho.Client
	msgs chan paho.Message
	seen map[string]bool // topic NUL payload of messages expected so far
}

func connect(t *testing.T, url, id string, clean bool) *client {
	t.Helper()
	c := &client{msgs: make(chan paho.Message, 100), seen: map[string]bool{}}
	opts := paho.NewClientOptions().
		AddBroker(url).
		SetClientID(id).
		SetCleanSession(clean).
		SetAutoReconnect(false).
		SetConnectTimeout(wait).
		SetDefaultPublishHandler(func(_ paho.Client, m paho.Message) {
			select {
			case c.msgs <- m:
			default:
			}
		})
	c.Client = paho.NewClient(opts)
	await(t, "connect "+id, c.Connect())
	t.Cleanup(func() { c.Disconnect(0) })
	return c
}

func await(t *testing.T, what string, tok paho.Token) {
	t.Helper()
	if !tok.WaitTimeout(wait) {
		t.Fatalf("%s: timed out", what)
	}
	if err := tok.Error(); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

func (c *client) subscribe(t *testing.T, filter string) {
	t.Helper()
	await(t, "subscribe "+filter, c.Subscribe(filter, 1, nil))
}

func (c *client) publish(t *testing.T, topic string, retained bool, payload string) {
	t.Helper()
	await(t, "publish "+topic, c.Publish(topic, 1, retained, payload))
}

// barrier makes a QoS 1 round trip on c's connection. mochi handles a
// connection's packets one after another but acknowledges a publish or
// subscribe before it fans out or sends the retained messages; once the
// next packet is acknowledged, that work is done.
func (c *client) barrier(t *testing.T) {
	t.Helper()
	await(t, "barrier", c.Publish("test/barrier", 1, false, ""))
}

// expect waits for the next message and checks it is a QoS 1 message with
// the given topic, payload and retain flag.
//
// Duplicates of messages expected before are skipped: delivery is at
// least once, and mochi acknowledges a QoS 1 publish before fanning it
// out, so a subscriber that subscribes right after a retained publish can
// get it both as retained and as live.
func (c *client) expect(t *testing.T, topic, payload string, retained bool) {
	t.Helper()
	var m paho.Message
	for {
		select {
		case m = <-c.msgs:
		case <-time.After(wait):
			t.Fatalf("no message on %s within %v", topic, wait)
		}
		if !c.seen[m.Topic()+"\x00"+string(m.Payload())] {
			break
		}
	}
	c.seen[topic+"\x00"+payload] = true
	if m.Topic() != topic || !bytes.Equal(m.Payload(), []byte(payload)) || m.Retained() != retained || m.Qos() != 1 {
		t.Fatalf("got %s %q retained=%v qos=%d, want %s %q retained=%v qos=1",
			m.Topic(), m.Payload(), m.Retained(), m.Qos(), topic, payload, retained)
	}
}

// expectSet waits for a QoS 1 message per topic in want, in any order.
// The retain flag is not checked: mochi acknowledges SUBSCRIBE before it
// sends the retained messages, so a message retained right after a
// subscription may reach the session both live and as retained.
func (c *client) expectSet(t *testing.T, want map[string]string) {
	t.Helper()
	got := map[string]string{}
	for len(got) < len(want) {
		select {
		case m := <-c.msgs:
			if m.Qos() != 1 {
				t.Fatalf("got %s %q qos=%d, want qos=1", m.Topic(), m.Payload(), m.Qos())
			}
			got[m.Topic()] = string(m.Payload())
		case <-time.After(wait):
			t.Fatalf("got %v within %v, want %v", got, wait, want)
		}
	}
	if !maps.Equal(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
}

func TestStart(t *testing.T) {
	b := start(t, broker.Options{})
	host, port, err := net.SplitHostPort(b.Addr())
	if err != nil {
		t.Fatalf("Addr %q: %v", b.Addr(), err)
	}
	if host != "127.0.0.1" || port == "0" {
		t.Errorf("Addr = %q, want 127.0.0.1 with a real port", b.Addr())
	}
	if b.URL() != "tcp://"+b.Addr() {
		t.Errorf("URL = %q, want tcp://%s", b.URL(), b.Addr())
	}
	// The port is taken while the broker runs.
	if _, err := broker.Start(broker.Options{Addr: b.Addr()}); err == nil {
		t.Error("second broker on the same address started")
	}
}

func TestPublishSubscribe(t *testing.T) {
	b := start(t, broker.Options{})
	pub := connect(t, b.URL(), "pub", true)
	pub.publish(t, "site/retained", true, "kept")

	sub := connect(t, b.URL(), "sub", true)
	sub.subscribe(t, "site/#")
	sub.expect(t, "site/retained", "kept", true)

	pub.publish(t, "site/live", false, "now")
	sub.expect(t, "site/live", "now", false)

	// An empty retained message clears the retained one.
	pub.publish(t, "site/retained", true, "")
	sub.expect(t, "site/retained", "", false)
	late := connect(t, b.URL(), "late", true)
	late.subscribe(t, "site/retained")
	select {
	case m := <-late.msgs:
		t.Fatalf("cleared retained message delivered: %s %q", m.Topic(), m.Payload())
	case <-time.After(100 * time.Millisecond):
	}
}

// TestPersistentSession checks that a CleanSession=false subscriber gets
// the QoS 1 messages published while it was away, also across a
// Suspend/Resume outage of the broker.
func TestPersistentSession(t *testing.T) {
	for _, outage := range []bool{false, true} {
		name := "Offline"
		if outage {
			name = "OfflineAndBrokerOutage"
		}
		t.Run(name, func(t *testing.T) {
			b := start(t, broker.Options{})
			sub := connect(t, b.URL(), "edge", false)
			sub.subscribe(t, "cmd/#")
			sub.barrier(t)
			sub.Disconnect(250)

			pub := connect(t, b.URL(), "relay", true)
			pub.publish(t, "cmd/stop", false, "stop-1")
			pub.publish(t, "cmd/state", true, "retained-1")
			// Without it the fan-out of cmd/state can race the session
			// takeover below, and mochi loses the message.
			pub.barrier(t)
			if outage {
				pub.Disconnect(250)
				if err := b.Suspend(); err != nil {
					t.Fatalf("Suspend: %v", err)
				}
				if c, err := net.DialTimeout("tcp", b.Addr(), time.Second); err == nil {
					c.Close()
					t.Fatal("suspended broker accepts connections")
				}
				if err := b.Resume(); err != nil {
					t.Fatalf("Resume: %v", err)
				}
			}

			// No Subscribe: the session remembers it.
			again := connect(t, b.URL(), "edge", false)
			// mochi redelivers a session's queue in arbitrary order within
			// a second, so compare as a set.
			again.expectSet(t, map[string]string{"cmd/stop": "stop-1", "cmd/state": "retained-1"})
		})
	}
}

func TestSuspendDropsClients(t *testing.T) {
	b := start(t, broker.Options{})
	lost := make(chan error, 1)
	opts := paho.NewClientOptions().AddBroker(b.URL()).SetClientID("c").SetAutoReconnect(false).
		SetConnectionLostHandler(func(_ paho.Client, err error) { lost <- err })
	c := paho.NewClient(opts)
	await(t, "connect", c.Connect())
	t.Cleanup(func() { c.Disconnect(0) })
	if err := b.Suspend(); err != nil {
		t.Fatalf("Suspend: %v", err)
	}
	if err := b.Suspend(); err != nil {
		t.Fatalf("second Suspend: %v", err)
	}
	select {
	case <-lost:
	case <-time.After(wait):
		t.Fatal("client did not lose its connection")
	}
	if err := b.Resume(); err != nil {
		t.Fatalf("Resume: %v", err)
	}
	if err := b.Resume(); err != nil {
		t.Fatalf("second Resume: %v", err)
	}
	connect(t, b.URL(), "c", true)
}

func TestClose(t *testing.T) {
	b, err := broker.Start(broker.Options{})
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	if err := b.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := b.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if err := b.Suspend(); !errors.Is(err, broker.ErrClosed) {
		t.Errorf("Suspend after Close = %v, want ErrClosed", err)
	}
	if err := b.Resume(); !errors.Is(err, broker.ErrClosed) {
		t.Errorf("Resume after Close = %v, want ErrClosed", err)
	}
	// The port is free again.
	b2 := start(t, broker.Options{Addr: b.Addr()})
	if b2.Addr() != b.Addr() {
		t.Errorf("restarted on %s, want %s", b2.Addr(), b.Addr())
	}
}

// syncBuffer is a bytes.Buffer safe for the broker's concurrent logging.
type syncBuffer struct {
	mu  chan struct{}
	buf bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu <- struct{}{}
	defer func() { <-s.mu }()
	return s.buf.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu <- struct{}{}
	defer func() { <-s.mu }()
	return s.buf.String()
}

func TestLogger(t *testing.T) {
	out := &syncBuffer{mu: make(chan struct{}, 1)}
	b := start(t, broker.Options{Logger: slog.New(slog.NewTextHandler(out, nil))})
	connect(t, b.URL(), "logged", true)
	if err := b.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if !strings.Contains(out.String(), "mochi") {
		t.Errorf("log output has no mochi lines:\n%s", out.String())
	}
}

// TestCloseWhileConnecting checks that Close and Suspend neither hang on
// a connection that never sent CONNECT nor race with connections that
// arrive as they run (run under -race).
func TestCloseWhileConnecting(t *testing.T) {
	for _, suspend := range []bool{false, true} {
		t.Run(map[bool]string{false: "Close", true: "Suspend"}[suspend], func(t *testing.T) {
			b, err := broker.Start(broker.Options{})
			if err != nil {
				t.Fatalf("Start: %v", err)
			}
			t.Cleanup(func() { _ = b.Close() })
			silent, err := net.Dial("tcp", b.Addr())
			if err != nil {
				t.Fatalf("dial: %v", err)
			}
			defer silent.Close()
			connect(t, b.URL(), "c", false)

			stop := make(chan struct{})
			dialed := make(chan struct{})
			go func() {
				defer close(dialed)
				for {
					select {
					case <-stop:
						return
					default:
					}
					if c, err := net.DialTimeout("tcp", b.Addr(), time.Second); err == nil {
						c.Close()
					}
				}
			}()
			done := make(chan error, 1)
			go func() {
				if suspend {
					done <- b.Suspend()
				} else {
					done <- b.Close()
				}
			}()
			select {
			case err := <-done:
				if err != nil {
					t.Fatalf("err = %v", err)
				}
			case <-time.After(wait):
				t.Fatal("hung")
			}
			close(stop)
			<-dialed
		})
	}
}
