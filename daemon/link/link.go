package link

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/sitelink/sitelink/daemon/retry"
)

// Sentinel errors of the link.
var (
	// ErrTimeout means the broker did not complete an operation in time.
	ErrTimeout = errors.New("mqtt: timeout")
	// ErrDown means there is no connection to the broker right now.
	ErrDown = errors.New("mqtt: not connected")
)

// Handler receives a message and the connection it came on (answer on
// that one: it is live before Link.Conn reports it, since a persistent
// session delivers queued messages right after CONNACK). It runs on paho's
// router goroutine, so it must not block; with ManualAck the handler (or
// whoever it hands the message to) must call msg.Ack() once the message is
// safely handled.
type Handler func(c *Conn, msg paho.Message)

// Options configure a Link.
type Options struct {
	Broker         string      // tcp://host:port, ssl://…, ws://…
	ClientID       string      // the node id on the edge
	Username       string      // optional
	Password       string      // optional (read from a file by the caller)
	TLS            *tls.Config // optional
	CleanSession   bool        // false on the edge: the broker queues commands while we are away
	ManualAck      bool        // ack only after the message is handled (paho AutoAckDisabled)
	KeepAlive      time.Duration
	ConnectTimeout time.Duration
	BackoffMin     time.Duration
	BackoffMax     time.Duration
	// ConflictMin and ConflictMax bound the waits between attempts while
	// the owner says another client uses this client id (Contested): the
	// broker keeps one of the two, so each attempt kicks the other off.
	// Defaults 2 min and 15 min.
	ConflictMin time.Duration
	ConflictMax time.Duration
	// Will is called before every connection attempt and returns the last
	// will; the edge bumps its connect epoch there. May be nil.
	Will func() (topic string, payload []byte, err error)
	// Subs are subscribed (QoS 1) on every connection, before OnUp runs.
	Subs map[string]Handler
	// OnUp runs on the link's goroutine once a connection is established
	// and subscribed: publish the birth here. An error drops the connection.
	OnUp func(c *Conn) error
	// OnDown is told when an established connection is lost, or when an
	// attempt to establish one failed.
	OnDown func(err error)
	Logger *slog.Logger
}

// Link keeps one MQTT connection up: connect, subscribe, hold, and on loss
// reconnect with retry's capped, jittered exponential backoff. Each
// connection gets a fresh paho client so that nothing paho kept in memory
// is resent behind our back: the outbox owns redelivery.
type Link struct {
	o   Options
	log *slog.Logger

	mu      sync.Mutex
	cur     *Conn
	changed chan struct{} // closed and replaced whenever cur changes
	stopped bool
	gen     int64         // bumped by Reconfigure
	kick    chan struct{} // closed by Reconfigure: stop waiting, connect now
	// attempt is open while Run makes a connection (from CONNECT until
	// it is installed as cur or dropped); handoff is set while Shutdown
	// waits for it, so that Run installs it for Shutdown to close rather
	// than dropping it without the offline state.
	attempt chan struct{}
	handoff bool
	// contested is set by Contested; conflicts counts the waits made
	// since, for the conflict backoff.
	contested bool
	conflicts int
}

// Why the link drops a connection of its own accord.
var (
	errReconfigured = errors.New("reconnecting with new settings")
	errStopped      = errors.New("shut down")
)

// Conn is one established connection. It is valid until Done is closed.
type Conn struct {
	gen     int64 // the settings generation it was made with
	client  paho.Client
	done    chan struct{}
	once    sync.Once
	err     error
	timeout time.Duration
}

// New returns a link; Run connects it.
func New(o Options) *Link {
	o = o.withDefaults()
	log := o.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return &Link{o: o, log: log, changed: make(chan struct{}), kick: make(chan struct{})}
}

func (o Options) withDefaults() Options {
	if o.KeepAlive <= 0 {
		o.KeepAlive = 30 * time.Second
	}
	if o.ConnectTimeout <= 0 {
		o.ConnectTimeout = 10 * time.Second
	}
	if o.BackoffMin <= 0 {
		o.BackoffMin = time.Second
	}
	if o.BackoffMax < o.BackoffMin {
		o.BackoffMax = max(60*time.Second, o.BackoffMin)
	}
	if o.ConflictMin <= 0 {
		o.ConflictMin = 2 * time.Minute
	}
	if o.ConflictMax < o.ConflictMin {
		o.ConflictMax = max(15*time.Minute, o.ConflictMin)
	}
	return o
}

func (o Options) backoff() retry.Backoff {
	return retry.Backoff{Min: o.BackoffMin, Max: o.BackoffMax}
}

// Reconfigure replaces the connection settings of n (broker, credentials,
// TLS, timing; the client id, session, handlers, will and conflict
// backoff stay) and drops the current connection, so that the next one,
// made at once, uses them.
// It returns the settings generation to pass to WaitGen.
func (l *Link) Reconfigure(n Options) int64 {
	n = n.withDefaults()
	l.mu.Lock()
	l.o.Broker, l.o.Username, l.o.Password, l.o.TLS = n.Broker, n.Username, n.Password, n.TLS
	l.o.KeepAlive, l.o.ConnectTimeout = n.KeepAlive, n.ConnectTimeout
	l.o.BackoffMin, l.o.BackoffMax = n.BackoffMin, n.BackoffMax
	l.gen++
	gen, c := l.gen, l.cur
	close(l.kick)
	l.kick = make(chan struct{})
	l.mu.Unlock()
	if c != nil {
		c.Abort(errReconfigured)
	}
	return gen
}

// Options returns the settings in use now, to restore them exactly with
// Reconfigure (secrets included: files may have changed since).
func (l *Link) Options() Options {
	o, _, _ := l.settings()
	return o
}

// WaitGen blocks until a connection made with settings generation gen (or
// a later one) is up, or ctx ends.
func (l *Link) WaitGen(ctx context.Context, gen int64) error {
	for {
		l.mu.Lock()
		c, ch := l.cur, l.changed
		l.mu.Unlock()
		if c != nil && !c.Dead() && c.gen >= gen {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// settings returns a copy of the options, the generation and the kick
// channel as they are now.
func (l *Link) settings() (Options, int64, chan struct{}) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.o, l.gen, l.kick
}

// Conn returns the live connection, or nil while down.
func (l *Link) Conn() *Conn {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.cur != nil && l.cur.Dead() {
		return nil
	}
	return l.cur
}

// Connected reports whether a connection is up.
func (l *Link) Connected() bool { return l.Conn() != nil }

// Wait blocks until a connection is up or ctx ends.
func (l *Link) Wait(ctx context.Context) (*Conn, error) {
	for {
		l.mu.Lock()
		c, ch := l.cur, l.changed
		l.mu.Unlock()
		if c != nil && !c.Dead() {
			return c, nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

func (l *Link) setConn(c *Conn) {
	l.mu.Lock()
	l.cur = c
	close(l.changed)
	l.changed = make(chan struct{})
	l.mu.Unlock()
}

// Run holds the connection until ctx ends or Shutdown. It returns nil on
// a clean shutdown; callers publish their offline state with Shutdown
// first.
func (l *Link) Run(ctx context.Context) error {
	var p pacer
	gen := int64(-1)
	for ctx.Err() == nil && !l.isStopped() {
		o, g, kick := l.settings()
		if g != gen {
			gen = g
			p = pacer{b: o.backoff()} // new settings deserve a fresh start
		}
		l.mu.Lock()
		l.attempt = make(chan struct{})
		l.mu.Unlock()
		c, err := l.connect(ctx, o, gen)
		if err != nil {
			l.endAttempt()
			wait := l.hold(p.failed())
			l.log.Warn("mqtt connect failed", "broker", o.Broker, "err", err, "retry_in", wait.Round(time.Millisecond))
			if o.OnDown != nil {
				o.OnDown(err)
			}
			if !sleep(ctx, wait, kick) {
				break
			}
			continue
		}
		l.mu.Lock()
		stopped, stale := l.stopped && !l.handoff, l.gen != gen
		if !stopped && !stale {
			// Installed even after Shutdown began if Shutdown waits for
			// it: it publishes the offline state on it and closes it.
			l.cur = c
			close(l.changed)
			l.changed = make(chan struct{})
		}
		l.mu.Unlock()
		l.endAttempt()
		if stopped {
			// Shutdown ran while this connection was being made and
			// no longer waits for it.
			c.Abort(errStopped)
			return nil
		}
		if stale {
			// Reconfigure ran while this connection was being made.
			c.Abort(errReconfigured)
			continue
		}
		l.log.Info("mqtt connected", "broker", o.Broker, "client_id", o.ClientID)
		up := time.Now()
		select {
		case <-c.done:
			l.setConn(nil)
			c.client.Disconnect(0)
			if l.isStopped() {
				l.log.Info("mqtt disconnected", "reason", c.err)
				if o.OnDown != nil {
					o.OnDown(c.err)
				}
				return nil
			}
			wait := l.hold(p.lost(time.Since(up)))
			l.log.Warn("mqtt connection lost", "err", c.err, "lived", time.Since(up).Round(time.Millisecond), "retry_in", wait.Round(time.Millisecond))
			if o.OnDown != nil {
				o.OnDown(c.err)
			}
			if !sleep(ctx, wait, kick) {
				return nil
			}
		case <-ctx.Done():
			// Shutdown publishes the offline state and disconnects; if it
			// has not, do not leave the client behind.
			if l.Conn() == c {
				l.setConn(nil)
				c.client.Disconnect(250)
				c.lost(ctx.Err())
			}
			return nil
		}
	}
	return nil
}

// endAttempt closes the attempt channel: Shutdown stops waiting for it.
func (l *Link) endAttempt() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.attempt != nil {
		close(l.attempt)
		l.attempt = nil
	}
}

// Contested tells the link whether another client uses its client id
// (the owner sees a second daemon under its node id, a cloned SD card).
// A broker keeps one connection per client id and drops the older one,
// so two clients that reconnect at once take turns kicking each other
// off every few seconds, forever. While contested, every wait before a
// new attempt is at least the conflict backoff's (ConflictMin to
// ConflictMax, growing with each wait, jittered): minutes, so that the
// other client keeps the broker meanwhile and the two do not fight. The
// connection up now, if any, is kept. Contested(false) ends it and the
// next conflict starts again from ConflictMin.
func (l *Link) Contested(on bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if on != l.contested {
		l.conflicts = 0
	}
	l.contested = on
}

// hold returns the wait before the next attempt: d, or while contested
// the next wait of the conflict backoff if that is longer.
func (l *Link) hold(d time.Duration) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.contested {
		return d
	}
	l.conflicts++
	return max(d, retry.Backoff{Min: l.o.ConflictMin, Max: l.o.ConflictMax}.Delay(l.conflicts))
}

func (l *Link) isStopped() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.stopped
}

func (l *Link) connect(ctx context.Context, lo Options, gen int64) (*Conn, error) {
	o := paho.NewClientOptions().
		AddBroker(lo.Broker).
		SetClientID(lo.ClientID).
		SetCleanSession(lo.CleanSession).
		SetAutoReconnect(false).
		SetConnectRetry(false).
		SetOrderMatters(true).
		SetAutoAckDisabled(lo.ManualAck).
		SetKeepAlive(lo.KeepAlive).
		SetPingTimeout(lo.ConnectTimeout).
		SetConnectTimeout(lo.ConnectTimeout).
		SetWriteTimeout(lo.ConnectTimeout).
		SetResumeSubs(false)
	if lo.Username != "" {
		o.SetUsername(lo.Username)
		o.SetPassword(lo.Password)
	}
	if lo.TLS != nil {
		o.SetTLSConfig(lo.TLS)
	}
	if plainTCP(lo.Broker) {
		o.SetCustomOpenConnectionFn(dialBuffered)
	}
	if lo.Will != nil {
		topic, payload, err := lo.Will()
		if err != nil {
			return nil, fmt.Errorf("prepare will: %w", err)
		}
		if topic != "" {
			o.SetBinaryWill(topic, payload, 1, true)
		}
	}
	c := &Conn{gen: gen, done: make(chan struct{}), timeout: lo.ConnectTimeout}
	o.SetConnectionLostHandler(func(_ paho.Client, err error) { c.lost(err) })
	// Every message goes to the handlers of the filters that match it
	// (dispatch.go), set before Connect: a persistent session delivers
	// queued messages right after CONNACK, before any SUBSCRIBE is
	// answered. Messages nobody routes are acked and logged, or the
	// broker would redeliver them forever.
	routes := newDispatch(lo.Subs)
	o.SetDefaultPublishHandler(func(_ paho.Client, m paho.Message) {
		if !routes.dispatch(c, m) {
			l.log.Debug("mqtt message without handler", "topic", m.Topic())
			m.Ack()
		}
	})
	client := paho.NewClient(o)
	c.client = client
	if err := c.wait(ctx, client.Connect()); err != nil {
		c.Abort(err)
		return nil, err
	}
	if len(lo.Subs) > 0 {
		filters := make(map[string]byte, len(lo.Subs))
		for f := range lo.Subs {
			filters[f] = 1
		}
		tok := client.SubscribeMultiple(filters, nil)
		if err := c.wait(ctx, tok); err != nil {
			err = fmt.Errorf("subscribe: %w", err)
			c.Abort(err)
			return nil, err
		}
		// A broker ACL that denies a filter answers 0x80 in SUBACK; a
		// node connected but deaf to its commands is worse than a node
		// that says it cannot connect.
		for f, code := range tok.(*paho.SubscribeToken).Result() {
			if code == 0x80 {
				err := fmt.Errorf("subscribe %s: refused by the broker (check its ACL and this node's identity)", f)
				c.Abort(err)
				return nil, err
			}
		}
	}
	if lo.OnUp != nil {
		if err := lo.OnUp(c); err != nil {
			err = fmt.Errorf("on connect: %w", err)
			c.Abort(err)
			return nil, err
		}
	}
	return c, nil
}

// Shutdown publishes a last retained message (the offline state: a clean
// disconnect does not fire the broker's LWT) and disconnects. Call it
// before cancelling Run's context. A connection being made (CONNECT sent,
// or OnUp running) is waited for, up to timeout, and then used: the
// offline state must come after the birth, not race it. ErrDown means
// there was no connection to say it on (the broker's will does).
func (l *Link) Shutdown(topic string, payload []byte, timeout time.Duration) error {
	l.mu.Lock()
	l.stopped = true
	a := l.attempt
	l.handoff = a != nil
	l.mu.Unlock()
	if a != nil {
		t := time.NewTimer(timeout)
		select {
		case <-a:
		case <-t.C:
		}
		t.Stop()
	}
	l.mu.Lock()
	l.handoff = false
	c := l.cur
	if c != nil && c.Dead() {
		c = nil
	}
	l.mu.Unlock()
	l.setConn(nil)
	if c == nil {
		return ErrDown
	}
	var err error
	if topic != "" {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		err = c.wait(ctx, c.client.Publish(topic, 1, true, payload))
		cancel()
	}
	c.client.Disconnect(uint(timeout / time.Millisecond))
	c.lost(errStopped)
	return err
}

func (c *Conn) lost(err error) {
	c.once.Do(func() {
		c.err = err
		close(c.done)
	})
}

// Abort drops the connection, e.g. when a PUBACK never came: the link
// reconnects and the owner republishes what was not acknowledged.
func (c *Conn) Abort(err error) {
	c.client.Disconnect(0)
	c.lost(err)
}

// Dead reports whether the connection is lost.
func (c *Conn) Dead() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// Done is closed when the connection is lost.
func (c *Conn) Done() <-chan struct{} { return c.done }

// Publish sends a message; the returned token completes on PUBACK (QoS 1).
// With a persistent session paho never completes it if the connection is
// lost first, so callers wait with WaitToken (which also watches the
// connection), never on the token alone.
func (c *Conn) Publish(topic string, retained bool, payload []byte) paho.Token {
	return c.client.Publish(topic, 1, retained, payload)
}

// PublishWait publishes with QoS 1 and waits for the PUBACK, the
// connection's loss, ctx, or the connect timeout, whichever comes first.
// paho's Publish itself can block (up to its write timeout) on a congested
// connection, so it runs aside and ctx bounds the whole call.
func (c *Conn) PublishWait(ctx context.Context, topic string, retained bool, payload []byte) error {
	if c.Dead() {
		return ErrDown
	}
	ch := make(chan paho.Token, 1)
	go func() { ch <- c.client.Publish(topic, 1, retained, payload) }()
	select {
	case t := <-ch:
		return c.wait(ctx, t)
	case <-c.done:
		return ErrDown
	case <-ctx.Done():
		return ctx.Err()
	}
}

// WaitToken waits for t with the connection's timeout.
func (c *Conn) WaitToken(ctx context.Context, t paho.Token) error { return c.wait(ctx, t) }

func (c *Conn) wait(ctx context.Context, t paho.Token) error {
	var expired <-chan time.Time
	if d, ok := ctx.Deadline(); !ok || time.Until(d) > c.timeout {
		// ctx ends sooner otherwise (the relay's, every callback): no
		// second timer.
		timer := time.NewTimer(c.timeout)
		defer timer.Stop()
		expired = timer.C
	}
	select {
	case <-t.Done():
		return t.Error()
	case <-c.done:
		// Give a token that raced the loss a last chance.
		select {
		case <-t.Done():
			return t.Error()
		default:
			return ErrDown
		}
	case <-expired:
		return ErrTimeout
	case <-ctx.Done():
		return ctx.Err()
	}
}

// stableAfter is how long a connection must last before a loss counts as
// an accident rather than a refusal.
const stableAfter = 30 * time.Second

// pacer decides how long Run waits before the next attempt, by the one
// backoff rule of retry. A broker that accepts and then drops us (ACL
// kick, a second node with our id) must not make us reconnect every
// second forever: only a connection that lived stableAfter resets the
// backoff; one that died young counts as a failed attempt.
type pacer struct {
	b     retry.Backoff
	fails int // attempts in a row that failed or died young
}

// failed is the wait after an attempt that failed.
func (p *pacer) failed() time.Duration {
	p.fails++
	return p.b.Delay(p.fails)
}

// lost is the wait after an established connection that lived for
// lived was lost.
func (p *pacer) lost(lived time.Duration) time.Duration {
	if lived < stableAfter {
		return p.failed()
	}
	p.fails = 0
	return p.b.Delay(1)
}

// sleep waits d; kick cuts it short. It reports false if ctx ended.
func sleep(ctx context.Context, d time.Duration, kick <-chan struct{}) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-kick:
		return true
	case <-ctx.Done():
		return false
	}
}
