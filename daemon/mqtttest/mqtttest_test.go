package mqtttest

import (
	"fmt"
	"maps"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
)

const wait = 10 * time.Second

// kinds runs f against mosquitto (if installed) and the embedded broker.
func kinds(t *testing.T, f func(t *testing.T, start func(t *testing.T) *Broker)) {
	t.Run(KindMosquitto, func(t *testing.T) {
		bin := findMosquitto()
		if bin == "" {
			t.Skip("mosquitto not installed")
		}
		f(t, func(t *testing.T) *Broker { return startMosquitto(t, bin) })
	})
	t.Run(KindEmbedded, func(t *testing.T) {
		f(t, func(t *testing.T) *Broker { return startEmbedded(t) })
	})
}

type client struct {
	paho.Client
	msgs chan paho.Message
}

func connect(t *testing.T, url, id string, clean bool) *client {
	t.Helper()
	c := &client{msgs: make(chan paho.Message, 100)}
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

// barrier makes a QoS 1 round trip on c's connection, after which the
// broker has finished with c's earlier packets (mochi acknowledges before
// fanning out; mosquitto does not need it).
func (c *client) barrier(t *testing.T) {
	t.Helper()
	await(t, "barrier", c.Publish("test/barrier", 1, false, ""))
}

func (c *client) next(t *testing.T) paho.Message {
	t.Helper()
	select {
	case m := <-c.msgs:
		return m
	case <-time.After(wait):
		t.Fatalf("no message within %v", wait)
		return nil
	}
}

// collect reads one message per topic in want, in any order, skipping
// duplicates, and checks payloads and QoS.
func (c *client) collect(t *testing.T, want map[string]string) map[string]paho.Message {
	t.Helper()
	got := map[string]paho.Message{}
	for len(got) < len(want) {
		m := c.next(t)
		if m.Qos() != 1 {
			t.Fatalf("got %s with QoS %d, want 1", m.Topic(), m.Qos())
		}
		got[m.Topic()] = m
	}
	payloads := map[string]string{}
	for k, m := range got {
		payloads[k] = string(m.Payload())
	}
	if !maps.Equal(payloads, want) {
		t.Fatalf("got %v, want %v", payloads, want)
	}
	return got
}

func TestStart(t *testing.T) {
	kinds(t, func(t *testing.T, start func(t *testing.T) *Broker) {
		b := start(t)
		host, port, err := net.SplitHostPort(b.Addr)
		if err != nil || host != "127.0.0.1" || port == "0" {
			t.Fatalf("Addr = %q, want 127.0.0.1:PORT", b.Addr)
		}
		if b.URL != "tcp://"+b.Addr {
			t.Errorf("URL = %q, want tcp://%s", b.URL, b.Addr)
		}
		c, err := net.DialTimeout("tcp", b.Addr, time.Second)
		if err != nil {
			t.Fatalf("dial %s: %v", b.Addr, err)
		}
		c.Close()
	})
}

func TestPublishSubscribe(t *testing.T) {
	kinds(t, func(t *testing.T, start func(t *testing.T) *Broker) {
		b := start(t)
		pub := connect(t, b.URL, "pub", true)
		await(t, "publish", pub.Publish("site/state", 1, true, "kept"))
		pub.barrier(t)

		sub := connect(t, b.URL, "sub", true)
		await(t, "subscribe", sub.Subscribe("site/#", 1, nil))
		if m := sub.next(t); m.Topic() != "site/state" || string(m.Payload()) != "kept" || !m.Retained() {
			t.Fatalf("got %s %q retained=%v, want the retained site/state", m.Topic(), m.Payload(), m.Retained())
		}
		sub.barrier(t)

		await(t, "publish", pub.Publish("site/live", 1, false, "now"))
		if m := sub.next(t); m.Topic() != "site/live" || string(m.Payload()) != "now" || m.Retained() || m.Qos() != 1 {
			t.Fatalf("got %s %q retained=%v qos=%d, want live site/live at QoS 1", m.Topic(), m.Payload(), m.Retained(), m.Qos())
		}
	})
}

// TestStopRestart checks what tests of outages rely on: clients lose the
// connection on Stop, and after Restart on the same address a persistent
// session gets the QoS 1 messages queued while it was away, and retained
// messages are still there.
func TestStopRestart(t *testing.T) {
	kinds(t, func(t *testing.T, start func(t *testing.T) *Broker) {
		b := start(t)
		addr := b.Addr

		lost := make(chan error, 1)
		edge := paho.NewClient(paho.NewClientOptions().AddBroker(b.URL).SetClientID("edge").
			SetCleanSession(false).SetAutoReconnect(false).
			SetConnectionLostHandler(func(_ paho.Client, err error) { lost <- err }))
		await(t, "connect edge", edge.Connect())
		t.Cleanup(func() { edge.Disconnect(0) })
		await(t, "subscribe", edge.Subscribe("cmd/#", 1, nil))

		// Online when the broker stops: the edge must notice.
		b.Stop()
		b.Stop() // idempotent
		select {
		case <-lost:
		case <-time.After(wait):
			t.Fatal("client did not lose its connection on Stop")
		}
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			t.Fatal("stopped broker accepts connections")
		}

		b.Restart()
		if b.Addr != addr {
			t.Fatalf("restarted on %s, want %s", b.Addr, addr)
		}
		// Offline while messages are queued for it and while the broker
		// restarts again.
		pub := connect(t, b.URL, "relay", true)
		await(t, "publish", pub.Publish("cmd/stop", 1, false, "stop-1"))
		await(t, "publish", pub.Publish("cmd/state", 1, true, "retained-1"))
		pub.barrier(t)
		pub.Disconnect(250)
		b.Stop()
		b.Restart()

		// No Subscribe: the broker remembers the session.
		again := connect(t, b.URL, "edge", false)
		again.collect(t, map[string]string{"cmd/stop": "stop-1", "cmd/state": "retained-1"})

		late := connect(t, b.URL, "late", true)
		await(t, "subscribe", late.Subscribe("cmd/state", 1, nil))
		if m := late.next(t); string(m.Payload()) != "retained-1" || !m.Retained() {
			t.Fatalf("after restart got %s %q retained=%v, want retained cmd/state", m.Topic(), m.Payload(), m.Retained())
		}
	})
}

func TestRestartRunning(t *testing.T) {
	kinds(t, func(t *testing.T, start func(t *testing.T) *Broker) {
		b := start(t)
		b.Restart()
		connect(t, b.URL, "c", true)
	})
}

// TestQueueDepth checks that a persistent session queues far more than
// mosquitto's default 1000 messages, as an outbox drained into an offline
// relay needs.
func TestQueueDepth(t *testing.T) {
	kinds(t, func(t *testing.T, start func(t *testing.T) *Broker) {
		const n = 5000
		b := start(t)
		sub := connect(t, b.URL, "relay", false)
		await(t, "subscribe", sub.Subscribe("ev/#", 1, nil))
		sub.barrier(t)
		sub.Disconnect(250)

		pub := connect(t, b.URL, "edge", true)
		toks := make([]paho.Token, n)
		for i := range toks {
			toks[i] = pub.Publish("ev/session", 1, false, fmt.Sprint(i))
		}
		for i, tok := range toks {
			await(t, fmt.Sprint("publish ", i), tok)
		}
		pub.barrier(t)

		got := make(map[string]bool, n)
		var mu sync.Mutex
		done := make(chan struct{})
		opts := paho.NewClientOptions().AddBroker(b.URL).SetClientID("relay").
			SetCleanSession(false).SetAutoReconnect(false).SetOrderMatters(false).
			SetDefaultPublishHandler(func(_ paho.Client, m paho.Message) {
				mu.Lock()
				defer mu.Unlock()
				got[string(m.Payload())] = true
				if len(got) == n {
					close(done)
				}
			})
		c := paho.NewClient(opts)
		await(t, "reconnect relay", c.Connect())
		t.Cleanup(func() { c.Disconnect(0) })
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			mu.Lock()
			defer mu.Unlock()
			t.Fatalf("received %d of %d queued messages", len(got), n)
		}
	})
}

func TestMosquittoVersion(t *testing.T) {
	bin := findMosquitto()
	if bin == "" {
		t.Skip("mosquitto not installed")
	}
	out, _ := exec.Command(bin, "-h").CombinedOutput() // -h exits non-zero
	first, _, _ := strings.Cut(string(out), "\n")
	if !strings.HasPrefix(first, "mosquitto version ") {
		t.Fatalf("mosquitto -h: %q", first)
	}
	t.Log(first)
}

func TestMosquittoLogOnFailure(t *testing.T) {
	bin := findMosquitto()
	if bin == "" {
		t.Skip("mosquitto not installed")
	}
	b := startMosquitto(t, bin)
	connect(t, b.URL, "logged", true)
	b.Stop()
	data, err := os.ReadFile(b.logPath())
	if err != nil {
		t.Fatalf("read mosquitto log: %v", err)
	}
	if !strings.Contains(string(data), "logged") {
		t.Errorf("mosquitto log does not mention the client:\n%s", data)
	}
	if got := tail(b.logPath(), 2); strings.Count(got, "\n") != 2 {
		t.Errorf("tail(2) = %q, want 2 lines", got)
	}
}

// fakeTB records Fatal instead of failing the real test.
type fakeTB struct {
	testing.TB
	mu    sync.Mutex
	fatal string
	logs  []string
}

func (f *fakeTB) Helper() {}

func (f *fakeTB) Fatal(args ...any) {
	f.mu.Lock()
	f.fatal = fmt.Sprint(args...)
	f.mu.Unlock()
	runtime.Goexit()
}

func (f *fakeTB) Fatalf(format string, args ...any) { f.Fatal(fmt.Sprintf(format, args...)) }

func (f *fakeTB) Log(args ...any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.logs = append(f.logs, fmt.Sprint(args...))
}

func TestFallback(t *testing.T) {
	tests := []struct {
		name      string
		require   string
		wantFatal bool
	}{
		{"Required", "1", true},
		{"NotRequired", "", false},
		{"OtherValue", "yes", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv(RequireEnv, tt.require)
			f := &fakeTB{TB: t}
			var b *Broker
			done := make(chan struct{})
			go func() {
				defer close(done)
				b = start(f, "")
			}()
			<-done
			if tt.wantFatal {
				if !strings.Contains(f.fatal, "mosquitto required") {
					t.Fatalf("Fatal = %q, want \"mosquitto required\"", f.fatal)
				}
				return
			}
			if f.fatal != "" {
				t.Fatalf("Fatal: %s", f.fatal)
			}
			if b.Kind != KindEmbedded {
				t.Fatalf("Kind = %q, want %q", b.Kind, KindEmbedded)
			}
			if len(f.logs) == 0 || !strings.Contains(f.logs[0], "falling back") {
				t.Errorf("logs = %q, want a note about the fallback", f.logs)
			}
			connect(t, b.URL, "c", true)
		})
	}
}

// TestRestartPortBusy checks that Restart waits for a port that another
// process holds for a moment.
func TestRestartPortBusy(t *testing.T) {
	bin := findMosquitto()
	if bin == "" {
		t.Skip("mosquitto not installed")
	}
	b := startMosquitto(t, bin)
	b.Stop()
	l, err := net.Listen("tcp", b.Addr)
	if err != nil {
		t.Fatalf("occupy %s: %v", b.Addr, err)
	}
	release := time.AfterFunc(300*time.Millisecond, func() { l.Close() })
	defer release.Stop()
	b.Restart()
	connect(t, b.URL, "c", true)
	if !strings.Contains(tail(b.logPath(), 100), "in use") {
		t.Log("the port was free before mosquitto tried it; retry path not exercised")
	}
}
