package link_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/sitelink/sitelink/daemon/link"
	"github.com/sitelink/sitelink/daemon/mqtttest"
)

// Deadlines are generous: tests wait for events, never for durations, so
// a slow machine makes them slower, not flaky.
const (
	eventTimeout = 20 * time.Second
	// quiet is how long a test waits to see that something does not
	// happen; only used where the opposite would show up at once.
	quiet = 300 * time.Millisecond
)

// site is one Link under test and what its callbacks saw.
type site struct {
	t     *testing.T
	l     *link.Link
	ups   chan *link.Conn
	downs chan error
	msgs  chan paho.Message
	wills atomic.Int32
	done  chan error // Run's result
}

// options returns fast-retrying options for broker url, with the
// callbacks feeding s's channels. Tests adjust them before start.
func (s *site) options(url string) link.Options {
	return link.Options{
		Broker:         url,
		ClientID:       clientID(s.t),
		CleanSession:   true,
		ConnectTimeout: 5 * time.Second,
		BackoffMin:     20 * time.Millisecond,
		BackoffMax:     200 * time.Millisecond,
		Will: func() (string, []byte, error) {
			n := s.wills.Add(1)
			return "link/will", fmt.Appendf(nil, "%d", n), nil
		},
		Subs: map[string]link.Handler{
			"link/in/#": func(_ *link.Conn, m paho.Message) { s.msgs <- m },
		},
		OnUp:   func(c *link.Conn) error { s.ups <- c; return nil },
		OnDown: func(err error) { s.downs <- err },
		Logger: slog.New(slog.NewTextHandler(tWriter{s.t}, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
}

func newSite(t *testing.T) *site {
	return &site{
		t: t, ups: make(chan *link.Conn, 100), downs: make(chan error, 1000),
		msgs: make(chan paho.Message, 100), done: make(chan error, 1),
	}
}

// start runs a Link with o until the test ends.
func (s *site) start(o link.Options) {
	s.l = link.New(o)
	ctx, cancel := context.WithCancel(context.Background())
	go func() { s.done <- s.l.Run(ctx) }()
	s.t.Cleanup(func() {
		cancel()
		select {
		case <-s.done:
		case <-time.After(eventTimeout):
			s.t.Errorf("Run did not return within %v of its context's end", eventTimeout)
		}
	})
}

// up waits for the next OnUp.
func (s *site) up(what string) *link.Conn {
	s.t.Helper()
	select {
	case c := <-s.ups:
		return c
	case <-time.After(eventTimeout):
		s.t.Fatalf("%s: no OnUp within %v", what, eventTimeout)
		return nil
	}
}

// down waits for the next OnDown.
func (s *site) down(what string) error {
	s.t.Helper()
	select {
	case err := <-s.downs:
		return err
	case <-time.After(eventTimeout):
		s.t.Fatalf("%s: no OnDown within %v", what, eventTimeout)
		return nil
	}
}

// msg waits for the next message on link/in/#.
func (s *site) msg(what string) paho.Message {
	s.t.Helper()
	select {
	case m := <-s.msgs:
		return m
	case <-time.After(eventTimeout):
		s.t.Fatalf("%s: no message within %v", what, eventTimeout)
		return nil
	}
}

// drainDowns discards the OnDown calls so far.
func (s *site) drainDowns() {
	for {
		select {
		case <-s.downs:
		default:
			return
		}
	}
}

func closed(t *testing.T, what string, c *link.Conn) {
	t.Helper()
	select {
	case <-c.Done():
	case <-time.After(eventTimeout):
		t.Fatalf("%s: Done not closed within %v", what, eventTimeout)
	}
}

func ctxTimeout(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// deadURL is a broker URL on which nothing listens: connections are
// refused at once.
func deadURL(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return "tcp://" + addr
}

func clientID(t *testing.T) string {
	id := strings.NewReplacer("/", "-", " ", "-").Replace(t.Name())
	if len(id) > 60 {
		id = id[len(id)-60:]
	}
	return id
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// TestConnect: routes and subscriptions are in place before OnUp, the
// connection OnUp gets is the one Conn and Wait hand out, and the will is
// asked for on every attempt.
func TestConnect(t *testing.T) {
	b := mqtttest.Start(t)
	s := newSite(t)
	o := s.options(b.URL)
	echoed := make(chan error, 1)
	o.OnUp = func(c *link.Conn) error {
		// Published from OnUp to our own subscription: it comes back
		// only if the subscription was made before OnUp.
		echoed <- c.PublishWait(context.Background(), "link/in/birth", false, []byte("hello"))
		s.ups <- c
		return nil
	}
	s.start(o)
	c := s.up("first connection")
	if err := <-echoed; err != nil {
		t.Fatalf("PublishWait from OnUp: %v", err)
	}
	if m := s.msg("own birth"); m.Topic() != "link/in/birth" || string(m.Payload()) != "hello" {
		t.Fatalf("got %s %q, want link/in/birth hello", m.Topic(), m.Payload())
	}
	// The link hands the connection out once OnUp has returned: Wait
	// for that first, then it is what Conn says.
	if got, err := s.l.Wait(ctxTimeout(t, eventTimeout)); err != nil || got != c {
		t.Fatalf("Wait = %p, %v; want OnUp's %p", got, err, c)
	}
	if got := s.l.Conn(); got != c || !s.l.Connected() {
		t.Fatalf("Conn() = %p (connected %v), want OnUp's %p", got, s.l.Connected(), c)
	}
	if c.Dead() {
		t.Fatal("live connection reports Dead")
	}
	if n := s.wills.Load(); n != 1 {
		t.Fatalf("Will called %d times for one attempt, want 1", n)
	}
	select {
	case err := <-s.downs:
		t.Fatalf("OnDown(%v) on a healthy connection", err)
	default:
	}
}

// TestOutage: the broker stops (OnDown, the connection dead, publishing
// refused, Wait blocks, attempts go on with backoff) and comes back on
// the same port (a new connection, OnUp again, waiters released).
func TestOutage(t *testing.T) {
	b := mqtttest.Start(t)
	r := mqtttest.Record(t, b.URL, "rec-"+clientID(t), "link/out/#")
	s := newSite(t)
	s.start(s.options(b.URL))
	c1 := s.up("first connection")

	b.Stop()
	if err := s.down("broker stopped"); err == nil {
		t.Fatal("OnDown(nil) for a lost connection")
	}
	closed(t, "connection to a stopped broker", c1)
	if s.l.Connected() || s.l.Conn() != nil {
		t.Fatal("Connected after OnDown")
	}
	if err := c1.PublishWait(context.Background(), "link/out/x", false, nil); !errors.Is(err, link.ErrDown) {
		t.Fatalf("PublishWait on a lost connection = %v, want ErrDown", err)
	}
	if _, err := s.l.Wait(ctxTimeout(t, quiet)); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Wait while down = %v, want context.DeadlineExceeded", err)
	}
	// Attempts go on while the broker is away, each one reported.
	for i := range 3 {
		if err := s.down(fmt.Sprintf("attempt %d while down", i+1)); err == nil {
			t.Fatal("OnDown(nil) for a failed attempt")
		}
	}
	waited := make(chan *link.Conn, 1)
	go func() {
		c, _ := s.l.Wait(ctxTimeout(t, 2*eventTimeout))
		waited <- c
	}()

	b.Restart()
	c2 := s.up("after restart")
	if c2 == c1 {
		t.Fatal("OnUp got the old connection")
	}
	select {
	case c := <-waited:
		if c != c2 {
			t.Fatalf("Wait returned %p, want the new connection %p", c, c2)
		}
	case <-time.After(eventTimeout):
		t.Fatal("Wait not released by the new connection")
	}
	mark := r.Mark()
	if err := c2.PublishWait(ctxTimeout(t, eventTimeout), "link/out/back", false, []byte("1")); err != nil {
		t.Fatalf("PublishWait after restart: %v", err)
	}
	r.Await(eventTimeout, mark, "message after restart", func(m mqtttest.Message) bool { return m.Topic == "link/out/back" })
	if n := s.wills.Load(); n < 5 {
		t.Fatalf("Will called %d times, want one per attempt (at least 5)", n)
	}
}

// TestOnUpError: a failing OnUp drops the connection it was given, is
// reported to OnDown and retried.
func TestOnUpError(t *testing.T) {
	b := mqtttest.Start(t)
	s := newSite(t)
	o := s.options(b.URL)
	var calls atomic.Int32
	first := make(chan *link.Conn, 1)
	o.OnUp = func(c *link.Conn) error {
		if calls.Add(1) == 1 {
			first <- c
			return errors.New("birth refused")
		}
		s.ups <- c
		return nil
	}
	s.start(o)
	if err := s.down("OnUp failed"); err == nil || !strings.Contains(err.Error(), "on connect: birth refused") {
		t.Fatalf("OnDown(%v), want the OnUp error", err)
	}
	closed(t, "connection whose OnUp failed", <-first)
	if c := s.up("retry"); c.Dead() {
		t.Fatal("second connection dead")
	}
}

// TestReconfigure: new settings (another broker) drop the connection and
// connect at once with them; WaitGen tells when, and the generations
// advance.
func TestReconfigure(t *testing.T) {
	b1, b2 := mqtttest.Start(t), mqtttest.Start(t)
	r2 := mqtttest.Record(t, b2.URL, "rec-"+clientID(t), "link/out/#")
	s := newSite(t)
	o := s.options(b1.URL)
	s.start(o)
	c1 := s.up("first broker")
	if err := s.l.WaitGen(ctxTimeout(t, eventTimeout), 0); err != nil {
		t.Fatalf("WaitGen(0) on the first connection: %v", err)
	}

	o.Broker = b2.URL
	g1 := s.l.Reconfigure(o)
	if g1 < 1 {
		t.Fatalf("Reconfigure returned generation %d, want >= 1", g1)
	}
	if err := s.l.WaitGen(ctxTimeout(t, eventTimeout), g1); err != nil {
		t.Fatalf("WaitGen(%d): %v", g1, err)
	}
	closed(t, "connection with the old settings", c1)
	if err := s.down("reconfigured"); err == nil || !strings.Contains(err.Error(), "new settings") {
		t.Fatalf("OnDown(%v), want the reconfiguration", err)
	}
	c2 := s.up("second broker")
	if got := s.l.Options().Broker; got != b2.URL {
		t.Fatalf("Options().Broker = %s, want %s", got, b2.URL)
	}
	mark := r2.Mark()
	if err := c2.PublishWait(ctxTimeout(t, eventTimeout), "link/out/moved", false, []byte("1")); err != nil {
		t.Fatalf("PublishWait on the new broker: %v", err)
	}
	r2.Await(eventTimeout, mark, "message on the new broker", func(m mqtttest.Message) bool { return m.Topic == "link/out/moved" })

	// Back to the first broker: the generation advances again, and an
	// older one is satisfied by the newer connection.
	o.Broker = b1.URL
	g2 := s.l.Reconfigure(o)
	if g2 <= g1 {
		t.Fatalf("second Reconfigure returned generation %d, want > %d", g2, g1)
	}
	if err := s.l.WaitGen(ctxTimeout(t, eventTimeout), g2); err != nil {
		t.Fatalf("WaitGen(%d): %v", g2, err)
	}
	if err := s.l.WaitGen(ctxTimeout(t, quiet), g1); err != nil {
		t.Fatalf("WaitGen(%d) with generation %d up: %v", g1, g2, err)
	}
}

// TestReconfigureFails: settings that cannot connect leave WaitGen waiting
// (the caller's trial times out) and restoring the previous settings
// brings the link back, as the edge's fleet configuration does.
func TestReconfigureFails(t *testing.T) {
	b := mqtttest.Start(t)
	s := newSite(t)
	s.start(s.options(b.URL))
	c1 := s.up("first connection")
	prev := s.l.Options()

	bad := prev
	bad.Broker = deadURL(t)
	g := s.l.Reconfigure(bad)
	if err := s.l.WaitGen(ctxTimeout(t, 2*time.Second), g); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("WaitGen for unreachable settings = %v, want context.DeadlineExceeded", err)
	}
	closed(t, "connection with the old settings", c1)
	if s.l.Connected() {
		t.Fatal("Connected with unreachable settings")
	}
	if err := s.down("reconfigured"); err == nil || !strings.Contains(err.Error(), "new settings") {
		t.Fatalf("OnDown(%v), want the reconfiguration first", err)
	}
	if err := s.down("unreachable broker"); err == nil || !strings.Contains(err.Error(), "refused") {
		t.Fatalf("OnDown(%v), want the refused connection", err)
	}

	g2 := s.l.Reconfigure(prev)
	if g2 <= g {
		t.Fatalf("rollback generation %d, want > %d", g2, g)
	}
	if err := s.l.WaitGen(ctxTimeout(t, eventTimeout), g2); err != nil {
		t.Fatalf("WaitGen after restoring the settings: %v", err)
	}
	if c := s.up("restored"); c == c1 || c.Dead() {
		t.Fatal("restored connection is the old or a dead one")
	}
}

// TestReconfigureCutsBackoff: new settings are tried at once, even in the
// middle of a long backoff wait.
func TestReconfigureCutsBackoff(t *testing.T) {
	b := mqtttest.Start(t)
	s := newSite(t)
	o := s.options(deadURL(t))
	o.BackoffMin, o.BackoffMax = time.Hour, time.Hour
	s.start(o)
	s.down("unreachable broker") // now waiting at least half an hour

	o.Broker = b.URL
	g := s.l.Reconfigure(o)
	if err := s.l.WaitGen(ctxTimeout(t, eventTimeout), g); err != nil {
		t.Fatalf("WaitGen with a reachable broker during a 1 h backoff: %v", err)
	}
}

// TestReconfigureWhileConnecting: settings that change while a connection
// is being made (OnUp running) discard that connection, closing its Done
// for whoever OnUp gave it to, and the next one uses the new settings.
func TestReconfigureWhileConnecting(t *testing.T) {
	b1, b2 := mqtttest.Start(t), mqtttest.Start(t)
	s := newSite(t)
	o := s.options(b1.URL)
	inOnUp := make(chan *link.Conn)
	release := make(chan struct{})
	var calls atomic.Int32
	o.OnUp = func(c *link.Conn) error {
		if calls.Add(1) == 1 {
			inOnUp <- c
			<-release
		}
		s.ups <- c
		return nil
	}
	s.start(o)
	var c1 *link.Conn
	select {
	case c1 = <-inOnUp:
	case <-time.After(eventTimeout):
		t.Fatal("no OnUp")
	}
	o.Broker = b2.URL
	g := s.l.Reconfigure(o)
	close(release)
	if err := s.l.WaitGen(ctxTimeout(t, eventTimeout), g); err != nil {
		t.Fatalf("WaitGen(%d): %v", g, err)
	}
	closed(t, "connection made with the old settings", c1)
	if s.up("stale") != c1 {
		t.Fatal("first OnUp out of order")
	}
	if c2 := s.up("new settings"); c2 == c1 || s.l.Conn() != c2 {
		t.Fatal("the link kept the connection made with the old settings")
	}
	if got := s.l.Options().Broker; got != b2.URL {
		t.Fatalf("Options().Broker = %s, want %s", got, b2.URL)
	}
}

// TestShutdown publishes the retained offline message, disconnects and
// ends Run without reconnecting.
func TestShutdown(t *testing.T) {
	b := mqtttest.Start(t)
	s := newSite(t)
	s.start(s.options(b.URL))
	c := s.up("connection")

	if err := s.l.Shutdown("link/out/state", []byte("offline"), 5*time.Second); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	closed(t, "connection after Shutdown", c)
	select {
	case err := <-s.done:
		if err != nil {
			t.Fatalf("Run after Shutdown = %v, want nil", err)
		}
		s.done <- err // for the cleanup
	case <-time.After(eventTimeout):
		t.Fatal("Run still running after Shutdown")
	}
	// A newcomer gets the retained offline message.
	r := mqtttest.Record(t, b.URL, "rec-"+clientID(t), "link/out/#")
	r.Await(eventTimeout, 0, "retained offline state", func(m mqtttest.Message) bool {
		return m.Topic == "link/out/state" && string(m.Payload) == "offline"
	})
	if s.l.Connected() {
		t.Fatal("Connected after Shutdown")
	}
	select {
	case c := <-s.ups:
		t.Fatalf("OnUp(%p) after Shutdown", c)
	default:
	}
	if err := s.l.Shutdown("link/out/state", []byte("offline"), time.Second); !errors.Is(err, link.ErrDown) {
		t.Fatalf("second Shutdown = %v, want ErrDown", err)
	}
}

// TestShutdownDuringOnUp: Shutdown called while a connection is being
// made (OnUp has the connection but has not returned, so the link does
// not hand it out yet) waits for it and publishes the offline state on
// it, after the birth, instead of failing with ErrDown. It was a flake
// of TestShutdown: Shutdown right after OnUp got "mqtt: not connected".
func TestShutdownDuringOnUp(t *testing.T) {
	b := mqtttest.Start(t)
	s := newSite(t)
	o := s.options(b.URL)
	release := make(chan struct{})
	o.OnUp = func(c *link.Conn) error {
		if err := c.PublishWait(context.Background(), "link/out/state", true, []byte("online")); err != nil {
			return err
		}
		s.ups <- c
		<-release
		return nil
	}
	s.start(o)
	c := s.up("connection")
	// Widens the window the flake needed: Shutdown starts while OnUp
	// still runs. The assertions hold whichever comes first.
	time.AfterFunc(50*time.Millisecond, func() { close(release) })
	if err := s.l.Shutdown("link/out/state", []byte("offline"), 5*time.Second); err != nil {
		t.Fatalf("Shutdown while OnUp runs: %v", err)
	}
	closed(t, "connection after Shutdown", c)
	r := mqtttest.Record(t, b.URL, "rec-"+clientID(t), "link/out/#")
	r.Await(eventTimeout, 0, "retained offline state", func(m mqtttest.Message) bool {
		return m.Topic == "link/out/state" && string(m.Payload) == "offline"
	})
	select {
	case err := <-s.done:
		s.done <- err
	case <-time.After(eventTimeout):
		t.Fatal("Run still running after Shutdown")
	}
}

// TestShutdownWhileDown: without a connection there is nothing to
// publish on; Shutdown says so and Run ends anyway.
func TestShutdownWhileDown(t *testing.T) {
	s := newSite(t)
	s.start(s.options(deadURL(t)))
	s.down("unreachable broker")
	if err := s.l.Shutdown("link/out/state", []byte("offline"), time.Second); !errors.Is(err, link.ErrDown) {
		t.Fatalf("Shutdown while down = %v, want ErrDown", err)
	}
	select {
	case err := <-s.done:
		s.done <- err
	case <-time.After(eventTimeout):
		t.Fatal("Run still running after Shutdown")
	}
}

// TestManualAck: with ManualAck and a persistent session, a QoS 1 message
// the consumer did not ack is redelivered on the next connection, and
// one it acked is not.
func TestManualAck(t *testing.T) {
	b := mqtttest.Start(t)
	r := mqtttest.Record(t, b.URL, "rec-"+clientID(t), "link/out/#")
	s := newSite(t)
	o := s.options(b.URL)
	o.CleanSession, o.ManualAck = false, true
	s.start(o)
	c := s.up("first connection")

	r.Publish("link/in/1", []byte("one"))
	if m := s.msg("first delivery"); m.Topic() != "link/in/1" {
		t.Fatalf("got %s, want link/in/1", m.Topic())
	} // not acked: as if the node crashed before committing it
	barrier(t, c)
	c.Abort(errors.New("test: drop"))
	s.up("second connection")
	m := s.msg("redelivery")
	if m.Topic() != "link/in/1" || string(m.Payload()) != "one" {
		t.Fatalf("got %s %q, want link/in/1 redelivered", m.Topic(), m.Payload())
	}
	m.Ack()

	r.Publish("link/in/2", []byte("two"))
	if m := s.msg("second message"); m.Topic() != "link/in/2" {
		t.Fatalf("got %s, want link/in/2", m.Topic())
	} else {
		m.Ack()
	}
	barrier(t, s.l.Conn())
	s.l.Conn().Abort(errors.New("test: drop"))
	s.up("third connection")
	r.Publish("link/in/3", []byte("three"))
	// The broker redelivers in-flight messages before new ones: the next
	// message is 3 only if 1 and 2 were acked.
	if m := s.msg("after acks"); m.Topic() != "link/in/3" {
		t.Fatalf("got %s %q after acking everything, want link/in/3", m.Topic(), m.Payload())
	}
}

// barrier makes sure the broker has what c sent before (a PUBACK goes
// out from paho's own goroutine): a round trip on the same connection.
func barrier(t *testing.T, c *link.Conn) {
	t.Helper()
	if err := c.PublishWait(ctxTimeout(t, eventTimeout), "link/out/barrier", false, nil); err != nil {
		t.Fatalf("barrier: %v", err)
	}
}

// TestPublishWaitCtx: an ended ctx ends PublishWait.
func TestPublishWaitCtx(t *testing.T) {
	b := mqtttest.Start(t)
	s := newSite(t)
	s.start(s.options(b.URL))
	c := s.up("connection")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	// The PUBACK may win the race against the ended context now and then,
	// never 20 times in a row.
	for range 20 {
		if err := c.PublishWait(ctx, "link/out/x", false, nil); err != nil {
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("PublishWait with an ended context = %v, want context.Canceled", err)
			}
			return
		}
	}
	t.Fatal("PublishWait ignored an ended context 20 times")
}
