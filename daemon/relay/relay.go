package relay

import (
	"context"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"golang.org/x/time/rate"

	"github.com/sitelink/sitelink/daemon/guard"
	"github.com/sitelink/sitelink/daemon/link"
	"github.com/sitelink/sitelink/daemon/metrics"
	"github.com/sitelink/sitelink/daemon/nayax"
	"github.com/sitelink/sitelink/daemon/queue"
	"github.com/sitelink/sitelink/daemon/wire"
)

// Caller sends one call to Nayax's Spark API (nayax.Client does).
type Caller interface {
	Do(ctx context.Context, call string, body json.RawMessage) (nayax.Response, error)
}

// Header is a static custom header Nayax sends with every callback; a
// callback without it is refused (401).
type Header struct{ Name, Value string }

// Options configure a relay replica.
type Options struct {
	ID        string // replica id: MQTT client id and reply topic suffix
	Prefix    string // MQTT topic prefix, e.g. sitelink/v1
	Group     string // shared subscription group for events; empty: a secret one derived from CardKey
	Listen    string // HTTP listen address (":8080")
	AckBudget time.Duration
	// Callback headers required on every inbound call (at most two).
	// New refuses to build a relay without them unless
	// InsecureAllowUnauthenticatedCallbacks is set (nayaxsim, the demo).
	CallbackHeaders                       []Header
	InsecureAllowUnauthenticatedCallbacks bool
	// MaxStartAmount caps the Amount of a node's remote start (a decimal
	// in the currency's main unit, DefaultMaxStartAmount when empty): a
	// stolen controller cannot make a terminal ask a card for more.
	MaxStartAmount string
	// TLS serves HTTPS directly when set.
	TLS *tls.Config
	// Link to the broker; ClientID, Subs, ManualAck, OnUp are set by the
	// relay.
	Link   link.Options
	Nayax  Caller
	Logger *slog.Logger
	// Workers bounds concurrent outbound Nayax calls (default 8).
	Workers int
	// RememberAnswers bounds the recent Nayax answers kept to answer a
	// repeated event from memory (default 20000; negative: none).
	RememberAnswers int
	// TriggerTimeout is the TransactionTimeout of a TriggerTransaction
	// whose start request names none (sites normally do).
	TriggerTimeout time.Duration

	// MetricsListen is where GET /metrics and GET /healthz are served
	// ("127.0.0.1:9101"): never on Listen, which faces the internet, so
	// that no alias of them is reachable from there. Empty: nowhere.
	MetricsListen string
	// RateLimit is the requests a second one source may make to Listen,
	// RateBurst at once (DefaultRateLimit and DefaultRateBurst when
	// zero; rate.Inf: no limit); beyond it a request is answered 429.
	RateLimit rate.Limit
	RateBurst int
	// MaxConnections caps the connections open at once on Listen
	// (DefaultMaxConnections when zero); one more is reset at once.
	MaxConnections int
	// RefusalLogEvery is the interval of the summary line of refused
	// requests (guard.DefaultEvery when zero): they are counted in
	// sitelink_relay_refused_total and never logged one by one.
	RefusalLogEvery time.Duration
	// TokenID and TokenSecret (the cipher key: the 32 rightmost
	// characters of the Secret Token, nayax.CipherKey) answer Device
	// Start's StartSession; without a secret StartSession is Declined.
	TokenID     int32
	TokenSecret []byte
	// CardKey is the fleet secret (relay.card_key_file, at least
	// nayax.MinCardKey bytes, the same on every replica) that keys
	// Nayax's CardHash before it goes on MQTT. Required: New refuses to
	// build a relay without it.
	CardKey []byte
}

// Defaults of the limits on the public listener. Nayax calls from a
// handful of addresses, each callback once per event: a fleet of 10,000
// stations averages under one a second and peaks in the tens, so 200 a
// second per source is ten times any peak and still caps what one source
// can make the relay do. 1024 connections fit the unit's LimitNOFILE
// with room for the broker and Nayax connections.
const (
	DefaultRateLimit      = 200
	DefaultRateBurst      = 400
	DefaultMaxConnections = 1024
	// DefaultMaxStartAmount is relay.max_start_amount's default: above
	// a charging session's usual pre-authorization in EUR, GBP or USD.
	DefaultMaxStartAmount = "150"
)

// Relay is one stateless replica: it answers Nayax's callbacks by asking
// the owning site controller over MQTT, and turns site events into Nayax
// calls.
type Relay struct {
	o      Options
	log    *slog.Logger
	routes *routes
	link   *link.Link // callbacks: states, commands out, replies in
	evlink *link.Link // events: its own connection, so slow Nayax calls holding unacked events never delay a StopCallback
	events *queue.Queue[delivery]
	upAt   atomic.Int64 // unix nanos of the main link's last connect
	// metrics are the counters behind GET /metrics (metrics.go).
	metrics metrics.Set
	// cardKey keys every card hash the relay forwards (Options.CardKey).
	cardKey nayax.CardKey

	mu      sync.Mutex
	pending map[string]pendingReply   // command id -> waiting HTTP handler
	busy    map[string][]paho.Message // node|request -> duplicate deliveries to ack when done

	// served answers repeated events from memory; unpublished holds the
	// results whose publish failed, for the resender.
	served      *served
	unpublished *queue.Queue[pendingResult]
	epoch       atomic.Int64 // bumped on every events connection: the presence's epoch

	// sources, conns and refused bound and count what strangers can
	// make the public listener do (guard).
	sources *guard.Sources
	conns   atomic.Pointer[guard.Listener]
	refused *guard.Refusals
	// nodeEvents limits each node's request events (onEvent).
	nodeEvents *guard.Sources
	// refusalLog limits the log lines of refused node requests (each is
	// counted in mNodeRefused).
	refusalLog rate.Sometimes

	// regUp hands keepRegistry each new main connection; reseed holds
	// the registry entries to publish again.
	regUp  chan *link.Conn
	reseed *queue.Queue[registryEntry]

	ready chan struct{}
	addr  string
	maddr string // the metrics listener's address, "" if none
}

// rememberFor is how long an answer is kept for repeated events: longer
// than any node's retry schedule for one request.
const rememberFor = 24 * time.Hour

// New validates options.
func New(o Options) (*Relay, error) {
	if o.ID == "" || o.Prefix == "" {
		return nil, errors.New("relay: id and topic prefix are required")
	}
	cardKey, err := nayax.NewCardKey(o.CardKey)
	if err != nil {
		return nil, fmt.Errorf("relay: card key: %w", err)
	}
	o.CardKey = nil // one copy of the secret: cardKey's
	if len(o.CallbackHeaders) == 0 && !o.InsecureAllowUnauthenticatedCallbacks {
		return nil, errors.New("relay: callback headers are required (Nayax sends them with every callback); only a test set-up may run without (insecure_allow_unauthenticated_callbacks)")
	}
	if o.MaxStartAmount == "" {
		o.MaxStartAmount = DefaultMaxStartAmount
	}
	if _, err := above("0", o.MaxStartAmount); err != nil {
		return nil, fmt.Errorf("relay: max start amount %q is not a decimal", o.MaxStartAmount)
	}
	if o.AckBudget <= 0 {
		o.AckBudget = 4 * time.Second
	}
	if o.Group == "" {
		// Secret and the same on every replica: mosquitto 2.0 lets any
		// client that knows a group's name join it (its ACL file does not
		// check subscriptions) and then drops the messages it deals to a
		// member that may not read them.
		o.Group = "relays-" + hex.EncodeToString(cardKey.Sum("share-group"))[:32]
	}
	if o.Workers <= 0 {
		o.Workers = 8
	}
	if o.RememberAnswers == 0 {
		o.RememberAnswers = 20000
	}
	if o.Listen == "" {
		o.Listen = ":8080"
	}
	if o.RateLimit == 0 {
		o.RateLimit = DefaultRateLimit
	}
	if o.RateBurst <= 0 {
		o.RateBurst = DefaultRateBurst
	}
	if o.MaxConnections <= 0 {
		o.MaxConnections = DefaultMaxConnections
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	r := &Relay{
		o: o, log: log, routes: newRoutes(log), events: queue.New[delivery](), cardKey: cardKey,
		pending: map[string]pendingReply{}, busy: map[string][]paho.Message{},
		ready: make(chan struct{}), regUp: make(chan *link.Conn, 1), reseed: queue.New[registryEntry](),
		served: newServed(o.RememberAnswers, rememberFor), unpublished: queue.New[pendingResult](),
		sources:    guard.NewSources(o.RateLimit, o.RateBurst, 0),
		refused:    guard.NewRefusals(log, slog.LevelWarn, "requests refused", o.RefusalLogEvery),
		refusalLog: rate.Sometimes{First: 10, Interval: time.Minute},
		nodeEvents: guard.NewSources(nodeEventRate, nodeEventBurst, 0),
	}
	for _, reason := range nodeRefusalReasons {
		r.metrics.Add(mNodeRefused, hNodeRefused, 0, "reason", reason)
	}
	for _, reason := range []string{claimUnregistered, claimOtherOwner} {
		r.metrics.Add(mClaimsIgnored, hClaimsIgnored, 0, "reason", reason)
	}
	r.routes.claim = func(reason string) {
		r.metrics.Inc(mClaimsIgnored, hClaimsIgnored, "reason", reason)
	}
	// Clean sessions: a replica that is down must not keep a share of the
	// events queued for it (mosquitto keeps dealing shared messages to
	// offline persistent members). An event lost with a replica is sent
	// again by its node, which retries every request until it has
	// Nayax's answer.
	lo := o.Link
	lo.ClientID = o.ID
	lo.CleanSession = true
	lo.ManualAck = true
	lo.Logger = log
	all := wire.AllNodes(o.Prefix)
	lo.Subs = map[string]link.Handler{
		all.State():                     r.onState,
		all.RelayReplies(o.ID):          r.onReply,
		all.Command(wire.CommandResult): r.onPeerResult,
		wire.AllTerminals(o.Prefix):     r.onTerminal,
	}
	lo.OnUp = func(c *link.Conn) error {
		r.upAt.Store(time.Now().UnixNano())
		select {
		case r.regUp <- c:
		default: // keepRegistry has not taken the last one: it never blocks the link
			select {
			case <-r.regUp:
			default:
			}
			r.regUp <- c
		}
		return nil
	}
	r.link = link.New(lo)
	eo := o.Link
	eo.ClientID = o.ID + "-events"
	eo.CleanSession = true
	eo.ManualAck = true
	eo.Logger = log.With("link", "events")
	// Presence: announced once the events subscription exists, so a
	// site that sees it knows its next event reaches a replica; the will
	// withdraws it.
	presence := wire.RelayPresence(o.Prefix, o.ID)
	eo.Will = func() (string, []byte, error) {
		b, err := json.Marshal(wire.RelayState{Online: false, Epoch: r.epoch.Add(1), At: time.Now().UTC()})
		return presence, b, err
	}
	eo.OnUp = func(c *link.Conn) error {
		b, _ := json.Marshal(wire.RelayState{Online: true, Epoch: r.epoch.Load(), At: time.Now().UTC()})
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		return c.PublishWait(ctx, presence, true, b)
	}
	eo.Subs = map[string]link.Handler{}
	for _, typ := range []string{wire.EventStartRequest, wire.EventSettlementRequest, wire.EventCancelRequest} {
		eo.Subs[wire.Shared(o.Group, all.Event(typ))] = r.onEvent
	}
	r.evlink = link.New(eo)
	return r, nil
}

// Addr is the HTTP listen address once Run is serving.
func (r *Relay) Addr() string {
	<-r.ready
	return r.addr
}

// MetricsAddr is the metrics listener's address once Run is serving, ""
// without Options.MetricsListen.
func (r *Relay) MetricsAddr() string {
	<-r.ready
	return r.maddr
}

// Ready is closed once the HTTP listeners are open.
func (r *Relay) Ready() <-chan struct{} { return r.ready }

// metricsConnections caps the metrics listener's connections: a scraper
// and a load balancer's health checks need a few.
const metricsConnections = 64

// Run serves until ctx ends; in-flight HTTP requests get a short grace.
func (r *Relay) Run(ctx context.Context) error {
	raw, err := net.Listen("tcp", r.o.Listen)
	if err != nil {
		return fmt.Errorf("relay listen %s: %w", r.o.Listen, err)
	}
	// The cap counts TCP connections, before any TLS handshake: one over
	// it costs no handshake.
	capped := guard.Listen(raw, r.o.MaxConnections, func() { r.refuse(guard.ReasonConnections) })
	r.conns.Store(capped)
	var ln net.Listener = capped
	if r.o.TLS != nil {
		ln = tls.NewListener(ln, r.o.TLS)
	}
	var mln net.Listener
	if r.o.MetricsListen != "" {
		l, err := net.Listen("tcp", r.o.MetricsListen)
		if err != nil {
			_ = ln.Close()
			return fmt.Errorf("relay metrics listen %s: %w", r.o.MetricsListen, err)
		}
		mln = guard.Listen(l, metricsConnections, func() { r.refuse(reasonMetricsConnections) })
		r.maddr = l.Addr().String()
	}
	r.addr = ln.Addr().String()
	close(r.ready)
	// Nayax waits 5 s for an answer: a request that takes longer to
	// arrive or to be answered is not Nayax's, and holds a slot.
	srv := &http.Server{Handler: r.Handler(), ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second,
		WriteTimeout: 10 * time.Second, IdleTimeout: 60 * time.Second, MaxHeaderBytes: 16 << 10}
	msrv := &http.Server{Handler: r.MetricsHandler(), ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 5 * time.Second,
		WriteTimeout: 10 * time.Second, IdleTimeout: 60 * time.Second, MaxHeaderBytes: 8 << 10}
	if len(r.o.CallbackHeaders) == 0 {
		r.log.Warn("INSECURE: no relay.callback_headers (insecure_allow_unauthenticated_callbacks): anyone who can reach this endpoint can post callbacks; for nayaxsim and the demo only")
	}

	runCtx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(5)
	go func() { defer wg.Done(); r.refused.Run(runCtx) }()
	go func() { defer wg.Done(); r.keepRegistry(runCtx) }()
	go func() { defer wg.Done(); _ = r.link.Run(runCtx) }()
	go func() { defer wg.Done(); r.resender(runCtx) }()
	go func() { defer wg.Done(); _ = r.evlink.Run(runCtx) }()
	for i := 0; i < r.o.Workers; i++ {
		wg.Add(1)
		go func() { defer wg.Done(); r.worker(runCtx) }()
	}
	errc := make(chan error, 2)
	go func() { errc <- srv.Serve(ln) }()
	if mln != nil {
		go func() { errc <- msrv.Serve(mln) }()
	}
	r.log.Info("sitelink relay serving", "id", r.o.ID, "listen", r.addr, "metrics_listen", r.maddr,
		"rate_limit", float64(r.o.RateLimit), "rate_burst", r.o.RateBurst, "max_connections", r.o.MaxConnections)

	select {
	case <-ctx.Done():
	case err = <-errc:
	}
	sctx, cancel := context.WithTimeout(context.Background(), r.o.AckBudget+time.Second)
	_ = srv.Shutdown(sctx)
	_ = msrv.Shutdown(sctx)
	cancel()
	// Withdraw the presence: a clean disconnect sends no will.
	off, _ := json.Marshal(wire.RelayState{Online: false, Epoch: r.epoch.Load(), At: time.Now().UTC()})
	_ = r.evlink.Shutdown(wire.RelayPresence(r.o.Prefix, r.o.ID), off, time.Second)
	_ = r.link.Shutdown("", nil, time.Second)
	stop()
	wg.Wait()
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}

// onState learns routes from births and wills; it runs in paho's router,
// so it only parses and updates a map.
func (r *Relay) onState(_ *link.Conn, m paho.Message) {
	defer m.Ack()
	id, kind, _, ok := wire.ParseNodeTopic(r.o.Prefix, m.Topic())
	if !ok || kind != wire.KindState {
		return
	}
	if len(m.Payload()) == 0 {
		r.routes.update(id, nil)
		return
	}
	st, err := wire.DecodeState(m.Payload())
	if err != nil {
		r.log.Warn("ignoring unreadable node state", "node", id, "err", err)
		return
	}
	r.routes.update(id, &st)
}

// onTerminal learns a terminal's owner from the fleet's registry
// (P/terminals/+); it runs in paho's router, so it only parses and
// updates a map. An unreadable entry is ignored and the terminal keeps
// no owner from it.
func (r *Relay) onTerminal(c *link.Conn, m paho.Message) {
	defer m.Ack()
	key, ok := wire.ParseTerminalTopic(r.o.Prefix, m.Topic())
	if !ok {
		return
	}
	if len(m.Payload()) == 0 {
		r.routes.setTerminal(key, nil, c)
		return
	}
	t, err := wire.DecodeTerminal(m.Payload())
	if err != nil {
		r.log.Warn("ignoring unreadable terminal ownership", "topic", m.Topic(), "err", err)
		r.routes.setTerminal(key, nil, c)
		return
	}
	if held := r.routes.setTerminal(key, &t, c); held != nil {
		r.reseed.Push(registryEntry{key, *held})
	}
}

// registryEntry is one P/terminals message to publish again.
type registryEntry struct {
	key string
	t   wire.Terminal
}

// registrySettle is how long after connecting the relay waits for the
// broker's retained registry before it re-seeds what the broker lacks.
const registrySettle = 5 * time.Second

// keepRegistry puts back the terminal registry when the broker has lost
// it (restarted without persistence): a while after each connection, the
// entries this replica holds that the broker did not send are published
// again, retained, with their own times; an older message than the one
// held is answered with the held one. Removals are entries too, so a
// removed terminal never comes back. Without it, a broker that lost its
// data would leave every terminal unrouted until an operator gave them
// again.
func (r *Relay) keepRegistry(ctx context.Context) {
	var settle <-chan time.Time
	var conn *link.Conn
	for {
		select {
		case <-ctx.Done():
			return
		case c := <-r.regUp:
			conn, settle = c, time.After(registrySettle)
			continue
		case <-settle:
			settle = nil
			for key, t := range r.routes.unseen(conn) {
				r.reseed.Push(registryEntry{key, t})
			}
		case <-r.reseed.Wake():
		}
		held := r.reseed.Drain()
		if len(held) > 0 {
			r.log.Info("publishing terminal registry entries the broker lacks or holds older", "entries", len(held))
		}
		for _, e := range held {
			c := r.link.Conn()
			if c == nil {
				break // the next connection's settle re-seeds
			}
			payload, err := json.Marshal(e.t)
			if err != nil {
				continue
			}
			pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			err = c.PublishWait(pctx, wire.TerminalTopic(r.o.Prefix, e.key), true, payload)
			cancel()
			if err != nil {
				r.log.Warn("re-seeding the terminal registry", "key", e.key, "err", err)
			}
		}
	}
}

// onReply hands a node's reply to the HTTP handler waiting for it.
func (r *Relay) onReply(_ *link.Conn, m paho.Message) {
	defer m.Ack()
	rep, err := wire.DecodeReply(m.Payload())
	if err != nil {
		r.log.Warn("ignoring unreadable reply", "topic", m.Topic(), "err", err)
		return
	}
	r.mu.Lock()
	p, ok := r.pending[rep.ID]
	r.mu.Unlock()
	// Only the node the command went to answers it, on the reply topic
	// the command named: another node's reply, on its own topics, is not
	// taken for the victim's.
	if ok && p.topic == m.Topic() {
		select {
		case p.ch <- rep:
		default:
		}
	}
}

// send publishes a command to a node and waits for its reply until
// deadline. It returns errOffline right after the PUBACK when the node is
// known to be offline (the broker queues the command for it).
func (r *Relay) send(ctx context.Context, n node, typ string, body json.RawMessage) (wire.Reply, error) {
	return r.sendCommand(ctx, n, typ, body, nil)
}

// sendCommand is send with the command's deadline (nil: none).
func (r *Relay) sendCommand(ctx context.Context, n node, typ string, body json.RawMessage, deadline *time.Time) (wire.Reply, error) {
	id := newID()
	topics := wire.Topics{Prefix: r.o.Prefix, Node: n.ID}
	replyTo := topics.RelayReplies(r.o.ID)
	env, err := wire.CommandPayload(wire.Command{ID: id, Type: typ, ReplyTo: replyTo, Deadline: deadline, Body: body})
	if err != nil {
		return wire.Reply{}, err
	}
	ch := make(chan wire.Reply, 1)
	r.mu.Lock()
	r.pending[id] = pendingReply{topic: replyTo, ch: ch}
	r.mu.Unlock()
	defer func() {
		r.mu.Lock()
		delete(r.pending, id)
		r.mu.Unlock()
	}()
	c := r.link.Conn()
	if c == nil {
		return wire.Reply{}, errNoBroker
	}
	if err := c.PublishWait(ctx, topics.Command(typ), false, env); err != nil {
		return wire.Reply{}, fmt.Errorf("%w: %v", errNoBroker, err)
	}
	if !n.Online {
		return wire.Reply{}, errOffline
	}
	select {
	case rep := <-ch:
		return rep, nil
	case <-ctx.Done():
		return wire.Reply{}, errNoAnswer
	}
}

// pendingReply is an HTTP handler waiting for the reply of the node its
// command went to, on that node's reply topic for this relay.
type pendingReply struct {
	topic string
	ch    chan wire.Reply
}

var (
	errNoBroker = errors.New("relay cannot reach the broker")
	errOffline  = errors.New("station controller offline")
	errNoAnswer = errors.New("station controller did not answer in time")
)
