package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/google/uuid"
	bolt "go.etcd.io/bbolt"
	"go.yaml.in/yaml/v3"

	"github.com/sitelink/sitelink/daemon/config"
	"github.com/sitelink/sitelink/daemon/demo"
	"github.com/sitelink/sitelink/daemon/edge"
	"github.com/sitelink/sitelink/daemon/localapi"
	"github.com/sitelink/sitelink/daemon/nayax/seeds"
	"github.com/sitelink/sitelink/daemon/wire"
	"github.com/sitelink/sitelink/store"
)

// The edge's figures (issue 15 items 1 and 7):
//
//	stop     a StopCallback's round trip through a real daemon, against a
//	         bare paho echo plus one bare bbolt commit
//	drain    the outbox drain against a bare paho publisher
//	health   at a ledger of a million sessions: the health event's ledger
//	         reads, a /metrics scrape, and the stop path (also with a
//	         scrape at the same moment), against the same at 1,000
//	process  `sitelink run` as a process: cold start and resident memory,
//	         fresh and with the large ledger, against a bare Go process
//
// Every daemon runs on the shared broker with simulated stations and a
// real ledger (fsync on every commit). A stand-in for the relay answers
// each settlement and cancel at once, as Nayax would, so sessions end
// and the ledger keeps few open sessions, as a site's does.
func init() {
	register("stop", runStop)
	register("drain", runDrain)
	register("health", runHealth)
	register("process", runProcess)
}

// edgeSizes are the sizes of a full run and of a short one.
type edgeSizes struct {
	stops, warmup int // stop group
	drainEvents   int // per round
	drainRounds   int
	ledger        int // sessions in the large ledger
	healthStops   int // per daemon and kind
	scrapes       int // per daemon
	starts        int // cold starts of each kind
	settle        time.Duration
	healthReads   int
	dropCaches    bool
	releaseBuild  bool
	ledgerLabel   string
}

func edgeSizesOf(e *env) edgeSizes {
	if e.Short {
		return edgeSizes{stops: 10, warmup: 2, drainEvents: 2000, drainRounds: 1, ledger: 2_000, healthStops: 4, scrapes: 5,
			starts: 1, settle: 500 * time.Millisecond, healthReads: 200, ledgerLabel: "2k"}
	}
	return edgeSizes{stops: 500, warmup: 10, drainEvents: 20_000, drainRounds: 3, ledger: 1_000_000, healthStops: 150, scrapes: 50,
		starts: 3, settle: 5 * time.Second, healthReads: 5000, dropCaches: true, releaseBuild: true, ledgerLabel: "1M"}
}

// ---- configuration and the in-process daemon ----

// edgeConfig is the demo site's configuration (daemon/demo) for node on
// the shared broker, its data under dir: three simulated stations on two
// terminals, or only station 5 on its terminal when one is set. Nayax's
// answers come from the stand-in at once; its retries are pushed past
// the run so that none lands in a figure.
func edgeConfig(e *env, node, dir string, one bool) *config.Edge {
	c := demo.Config(e.Broker.URL, dir)
	c.Node.ID = node
	c.Node.APISocket = filepath.Join(dir, "api.sock")
	c.Policy.PlugTimeout = config.Default().Policy.PlugTimeout // the demo's is short
	c.Policy.ResultTimeout = config.Duration(time.Hour)
	if one {
		c.Terminals = c.Terminals[:1]
		c.Terminals[0].Stations = []string{"5"}
		c.Stations = c.Stations[:1]
	}
	return c
}

// edgeDaemon is an edge daemon running in this process.
type edgeDaemon struct {
	cfg        *config.Edge
	topics     wire.Topics
	api        *localapi.Client
	metricsURL string
	cancel     context.CancelFunc
	done       chan error
}

// edgeStart runs the daemon of cfg and waits until it is connected.
func edgeStart(cfg *config.Edge) (*edgeDaemon, error) {
	d, err := edge.New(edge.Options{Config: cfg, Version: "bench"})
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	ed := &edgeDaemon{cfg: cfg, topics: wire.Topics{Prefix: cfg.MQTT.TopicPrefix, Node: cfg.Node.ID},
		api: localapi.NewClient(cfg.Node.APISocket), cancel: cancel, done: make(chan error, 1)}
	if cfg.Node.MetricsListen != "" {
		ed.metricsURL = "http://" + cfg.Node.MetricsListen + "/metrics"
	}
	go func() { ed.done <- d.Run(ctx) }()
	err = edgeWait(30*time.Second, "daemon "+cfg.Node.ID+" connected", func() (bool, error) {
		select {
		case err := <-ed.done:
			ed.done <- err
			return false, fmt.Errorf("daemon exited: %v", err)
		default:
		}
		st, err := ed.api.Status()
		return err == nil && st.Connected, nil
	})
	if err != nil {
		ed.stop()
		return nil, err
	}
	return ed, nil
}

func (d *edgeDaemon) stop() {
	d.cancel()
	select {
	case <-d.done:
	case <-time.After(20 * time.Second):
	}
}

// quiet waits until the daemon's outbox is empty.
func (d *edgeDaemon) quiet() error {
	return edgeWait(30*time.Second, d.cfg.Node.ID+" outbox empty", func() (bool, error) {
		st, err := d.api.Status()
		return err == nil && st.OutboxDepth == 0, nil
	})
}

func edgeWait(timeout time.Duration, what string, f func() (bool, error)) error {
	deadline := time.Now().Add(timeout)
	for {
		ok, err := f()
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// edgeFreePort returns a loopback address nobody listens on (for
// node.metrics_listen, which takes a fixed address).
func edgeFreePort() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// ---- the cloud side: commands, replies, the relay's stand-in, the echo ----

// edgeCloud sends commands to daemons and takes their replies by id, and
// stands in for the relay: it answers every settlement and cancel request
// with Nayax's approval.
type edgeCloud struct {
	c, echo paho.Client
	prefix  string

	mu       sync.Mutex
	waiting  map[string]chan wire.Reply
	answered map[string]chan struct{} // node → one per result the node took
}

const edgeEchoReplies = "sitelink/v1/nodes/bench-echo/replies"

func edgeNewCloud(e *env, id string) (*edgeCloud, error) {
	c := &edgeCloud{prefix: wire.DefaultPrefix, waiting: map[string]chan wire.Reply{}, answered: map[string]chan struct{}{}}
	c.c = paho.NewClient(paho.NewClientOptions().AddBroker(e.Broker.URL).SetClientID(id).SetCleanSession(true))
	if err := edgeTok(c.c.Connect()); err != nil {
		return nil, fmt.Errorf("cloud connect: %w", err)
	}
	subs := map[string]paho.MessageHandler{
		c.prefix + "/nodes/+/replies":                               c.onReply,
		c.prefix + "/nodes/+/events/" + wire.EventSettlementRequest: c.onRequest,
		c.prefix + "/nodes/+/events/" + wire.EventCancelRequest:     c.onRequest,
	}
	for f, h := range subs {
		if err := edgeTok(c.c.Subscribe(f, 1, h)); err != nil {
			c.close()
			return nil, err
		}
	}
	// The floor's responder: a bare paho client that decodes the command
	// and publishes a reply, QoS 1 both ways like the daemon.
	c.echo = paho.NewClient(paho.NewClientOptions().AddBroker(e.Broker.URL).SetClientID(id + "-echo").SetCleanSession(true))
	if err := edgeTok(c.echo.Connect()); err != nil {
		c.close()
		return nil, fmt.Errorf("echo connect: %w", err)
	}
	err := edgeTok(c.echo.Subscribe("bench/echo/req", 1, func(cl paho.Client, m paho.Message) {
		var cmd wire.Command
		if json.Unmarshal(m.Payload(), &cmd) != nil {
			return
		}
		rep, _ := json.Marshal(wire.Reply{ID: cmd.ID, Type: cmd.Type, Body: wire.Answer{Status: wire.Status{Verdict: "Approved"}}})
		go cl.Publish(cmd.ReplyTo, 1, false, rep)
	}))
	if err != nil {
		c.close()
		return nil, err
	}
	return c, nil
}

func (c *edgeCloud) close() {
	if c.echo != nil {
		c.echo.Disconnect(100)
	}
	c.c.Disconnect(100)
}

func edgeTok(t paho.Token) error {
	if !t.WaitTimeout(10 * time.Second) {
		return errors.New("mqtt: no answer from the broker in 10s")
	}
	return t.Error()
}

func (c *edgeCloud) onReply(_ paho.Client, m paho.Message) {
	r, err := wire.DecodeReply(m.Payload())
	if err != nil {
		return
	}
	c.mu.Lock()
	ch := c.waiting[r.ID]
	delete(c.waiting, r.ID)
	c.mu.Unlock()
	if ch != nil {
		ch <- r
	}
}

// onRequest answers a settlement or cancel request as the relay would
// once Nayax approved it.
func (c *edgeCloud) onRequest(cl paho.Client, m paho.Message) {
	var ev wire.Event
	if json.Unmarshal(m.Payload(), &ev) != nil {
		return
	}
	var body struct {
		Call  string `json:"call"`
		Spark string `json:"SparkTransactionId"`
	}
	_ = json.Unmarshal(ev.Body, &body)
	raw, _ := json.Marshal(wire.Result{EventID: ev.ID, Call: body.Call, Outcome: wire.OutcomeApproved,
		Status: &wire.Status{Verdict: "Approved"}, SparkTransactionID: body.Spark})
	t := wire.Topics{Prefix: c.prefix, Node: ev.Node}
	id := "result-" + ev.ID
	ch := make(chan wire.Reply, 1)
	c.mu.Lock()
	c.waiting[id] = ch
	done := c.answeredLocked(ev.Node)
	c.mu.Unlock()
	env, _ := json.Marshal(wire.Command{ID: id, Type: wire.CommandResult, ReplyTo: t.Replies(), Body: raw})
	go func() {
		cl.Publish(t.Command(wire.CommandResult), 1, false, env)
		select {
		case <-ch:
			done <- struct{}{}
		case <-time.After(30 * time.Second):
		}
	}()
}

func (c *edgeCloud) answeredLocked(node string) chan struct{} {
	ch := c.answered[node]
	if ch == nil {
		ch = make(chan struct{}, 1024)
		c.answered[node] = ch
	}
	return ch
}

// roundTrip publishes a command and returns the time until its reply.
// Only the round trip is timed; the PUBACK is awaited after.
func (c *edgeCloud) roundTrip(topic, id, typ, replyTo string, body []byte) (time.Duration, wire.Reply, error) {
	payload, _ := json.Marshal(wire.Command{ID: id, Type: typ, ReplyTo: replyTo, Body: body})
	ch := make(chan wire.Reply, 1)
	c.mu.Lock()
	c.waiting[id] = ch
	c.mu.Unlock()
	start := time.Now()
	tok := c.c.Publish(topic, 1, false, payload)
	select {
	case r := <-ch:
		took := time.Since(start)
		return took, r, edgeTok(tok)
	case <-time.After(10 * time.Second):
		c.mu.Lock()
		delete(c.waiting, id)
		c.mu.Unlock()
		return 0, wire.Reply{}, fmt.Errorf("no reply to %s %s in 10s", typ, id)
	}
}

func (c *edgeCloud) echoTrip(id string, body []byte) (time.Duration, error) {
	d, _, err := c.roundTrip("bench/echo/req", id, wire.CommandStop, edgeEchoReplies, body)
	return d, err
}

// edgeSeed is a Nayax seed request with fields replaced.
func edgeSeed(name string, set map[string]any) []byte {
	var m map[string]any
	d := json.NewDecoder(bytes.NewReader(seeds.Get(name)))
	d.UseNumber()
	if err := d.Decode(&m); err != nil {
		panic(err)
	}
	for k, v := range set {
		m[k] = v
	}
	b, _ := json.Marshal(m)
	return b
}

// edgeTxn is one paid session played against a daemon.
type edgeTxn struct {
	spark string
	nayax int64
}

// edgeNayaxSeq numbers the benchmark's Nayax transactions: a Nayax id
// names one session in a ledger.
var edgeNayaxSeq atomic.Int64

func edgeTxnN(tag string, i int) edgeTxn {
	return edgeTxn{spark: fmt.Sprintf("bench-%s-%d", tag, i), nayax: 1_000_000 + edgeNayaxSeq.Add(1)}
}

// charge authorizes t on station 5 and waits until the vehicle draws
// energy and the daemon's outbox is empty: a stop comes minutes later.
func (c *edgeCloud) charge(d *edgeDaemon, t edgeTxn) error {
	body := edgeSeed("001_transactioncallback_request.json", map[string]any{
		"SparkTransactionId": t.spark, "NayaxTransactionId": t.nayax, "ServiceStationNumber": "5"})
	_, r, err := c.roundTrip(d.topics.Command(wire.CommandAuthorize), "a-"+t.spark, wire.CommandAuthorize, d.topics.Replies(), body)
	if err != nil {
		return err
	}
	if r.Body.Status.Verdict != "Approved" {
		return fmt.Errorf("authorize %s: %s %s", t.spark, r.Body.Status.Verdict, r.Body.Status.ErrorDescription)
	}
	err = edgeWait(30*time.Second, t.spark+" charging", func() (bool, error) {
		ss, err := d.api.Sessions(3)
		if err != nil {
			return false, nil
		}
		for _, s := range ss {
			if s.SparkTransactionID == t.spark {
				return s.State == string(store.Charging), nil
			}
		}
		return false, nil
	})
	if err != nil {
		return err
	}
	return d.quiet()
}

func (c *edgeCloud) stopBody(t edgeTxn) []byte {
	return edgeSeed("000_stopcallback_request.json", map[string]any{
		"SparkTransactionId": t.spark, "NayaxTransactionId": t.nayax, "ServiceStationNumber": "5"})
}

// stop sends t's StopCallback and returns its round trip.
func (c *edgeCloud) stop(d *edgeDaemon, t edgeTxn) (time.Duration, error) {
	c.mu.Lock()
	done := c.answeredLocked(d.cfg.Node.ID)
	c.mu.Unlock()
	for len(done) > 0 {
		<-done
	}
	took, r, err := c.roundTrip(d.topics.Command(wire.CommandStop), "s-"+t.spark, wire.CommandStop, d.topics.Replies(), c.stopBody(t))
	if err != nil {
		return 0, err
	}
	if r.Body.Status.Verdict != "Approved" {
		return 0, fmt.Errorf("stop %s: %s %s", t.spark, r.Body.Status.Verdict, r.Body.Status.ErrorDescription)
	}
	return took, nil
}

// settle waits until Nayax's answer to the session's settlement (or
// cancel) was taken and its events are out.
func (c *edgeCloud) settle(d *edgeDaemon) error {
	c.mu.Lock()
	done := c.answeredLocked(d.cfg.Node.ID)
	c.mu.Unlock()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		return fmt.Errorf("%s: no settlement or cancel answered in 10s", d.cfg.Node.ID)
	}
	return d.quiet()
}

// ---- statistics and formatting ----

// edgeQ is the q-quantile of ds (nearest rank).
func edgeQ(ds []time.Duration, q float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(q*float64(len(s))+0.999999) - 1
	return s[max(0, min(i, len(s)-1))]
}

func edgeMs(d time.Duration) string {
	switch {
	case d < 100*time.Microsecond:
		return fmt.Sprintf("%.1f µs", float64(d)/1e3)
	case d < 10*time.Millisecond:
		return fmt.Sprintf("%.2f ms", float64(d)/1e6)
	case d < time.Second:
		return fmt.Sprintf("%.0f ms", float64(d)/1e6)
	default:
		return fmt.Sprintf("%.1f s", d.Seconds())
	}
}

func edgeRatio(a, b time.Duration) float64 {
	if b <= 0 {
		return 0
	}
	return float64(a) / float64(b)
}

// ---- stop ----

// edgeCommitFloor commits one small record with fsync to a bare bbolt
// file in dir, opened as the ledger is (map freelist, not synced).
type edgeCommitFloor struct {
	db *bolt.DB
	n  uint64
}

func edgeOpenCommitFloor(dir string) (*edgeCommitFloor, error) {
	db, err := bolt.Open(filepath.Join(dir, "floor.db"), 0o600, &bolt.Options{FreelistType: bolt.FreelistMapType, NoFreelistSync: true})
	if err != nil {
		return nil, err
	}
	return &edgeCommitFloor{db: db}, nil
}

func (f *edgeCommitFloor) commit() (time.Duration, error) {
	f.n++
	var k [8]byte
	for i := range k {
		k[i] = byte(f.n >> (56 - 8*i))
	}
	v := make([]byte, 200)
	start := time.Now()
	err := f.db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists([]byte("floor"))
		if err != nil {
			return err
		}
		return b.Put(k[:], v)
	})
	return time.Since(start), err
}

func (f *edgeCommitFloor) close() { _ = f.db.Close() }

func runStop(ctx context.Context, e *env) ([]Row, error) {
	sz := edgeSizesOf(e)
	cloud, err := edgeNewCloud(e, "bench-stop-cloud")
	if err != nil {
		return nil, err
	}
	defer cloud.close()
	d, err := edgeStart(edgeConfig(e, "bench-stop", filepath.Join(e.Dir, "site"), true))
	if err != nil {
		return nil, err
	}
	defer d.stop()
	floor, err := edgeOpenCommitFloor(e.Dir)
	if err != nil {
		return nil, err
	}
	defer floor.close()

	var stops, echoes, commits, floors []time.Duration
	for i := range sz.warmup + sz.stops {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		t := edgeTxnN("stop", i)
		if err := cloud.charge(d, t); err != nil {
			return nil, err
		}
		// The floors right before the stop, in the same quiet moment.
		echo, err := cloud.echoTrip("e-"+t.spark, cloud.stopBody(t))
		if err != nil {
			return nil, err
		}
		commit, err := floor.commit()
		if err != nil {
			return nil, err
		}
		stop, err := cloud.stop(d, t)
		if err != nil {
			return nil, err
		}
		if err := cloud.settle(d); err != nil {
			return nil, err
		}
		if i < sz.warmup {
			continue
		}
		stops, echoes, commits, floors = append(stops, stop), append(echoes, echo), append(commits, commit), append(floors, echo+commit)
	}
	n := fmt.Sprintf("%d stops", len(stops))
	return []Row{
		{Figure: "stop path p50 (StopCallback → contactor open → commit → reply)", Sitelink: edgeMs(edgeQ(stops, .5)),
			Floor: fmt.Sprintf("%s (echo %s + commit %s)", edgeMs(edgeQ(floors, .5)), edgeMs(edgeQ(echoes, .5)), edgeMs(edgeQ(commits, .5))),
			Ratio: edgeRatio(edgeQ(stops, .5), edgeQ(floors, .5)), Target: "≤ 1.3×",
			Note: n + "; floor: bare paho echo + bare bbolt commit (fsync), interleaved"},
		{Figure: "stop path p99", Sitelink: edgeMs(edgeQ(stops, .99)),
			Floor: fmt.Sprintf("%s (echo %s, commit %s)", edgeMs(edgeQ(floors, .99)), edgeMs(edgeQ(echoes, .99)), edgeMs(edgeQ(commits, .99))),
			Ratio: edgeRatio(edgeQ(stops, .99), edgeQ(floors, .99)), Target: "≤ 2×", Note: n},
		{Figure: "stop path p50 vs the bare echo alone", Sitelink: edgeMs(edgeQ(stops, .5)), Floor: edgeMs(edgeQ(echoes, .5)),
			Ratio: edgeRatio(edgeQ(stops, .5), edgeQ(echoes, .5)), Target: "-"},
		{Figure: "stop path p99 vs the bare echo alone", Sitelink: edgeMs(edgeQ(stops, .99)), Floor: edgeMs(edgeQ(echoes, .99)),
			Ratio: edgeRatio(edgeQ(stops, .99), edgeQ(echoes, .99)), Target: "-"},
	}, nil
}

// ---- drain ----

func runDrain(ctx context.Context, e *env) ([]Row, error) {
	sz := edgeSizesOf(e)
	const window = 256 // the edge's pump window (daemon/edge pumpWindow)
	payload := bytes.Repeat([]byte("x"), 250)
	var bareN, pumpN int
	var bareT, pumpT time.Duration
	for round := range sz.drainRounds {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		// The floor: bare paho, QoS 1, the same window, the same topic.
		d, err := edgeBarePublish(e, fmt.Sprintf("bench-drain-bare-%d", round), "sitelink/v1/nodes/bench-drain/events/session", payload, sz.drainEvents, window)
		if err != nil {
			return nil, err
		}
		bareN, bareT = bareN+sz.drainEvents, bareT+d

		// The daemon: a ledger whose outbox holds the backlog, then the
		// daemon started on it; the rate is taken from its counter of
		// acknowledged events while the outbox empties.
		cfg := edgeConfig(e, "bench-drain", filepath.Join(e.Dir, fmt.Sprintf("site-%d", round)), true)
		if err := edgeFillOutbox(cfg, sz.drainEvents, payload); err != nil {
			return nil, err
		}
		n, took, err := edgeDrain(cfg, sz.drainEvents)
		if err != nil {
			return nil, err
		}
		pumpN, pumpT = pumpN+n, pumpT+took
	}
	pump := float64(pumpN) / pumpT.Seconds()
	bare := float64(bareN) / bareT.Seconds()
	return []Row{{Figure: "outbox drain (events/s)", Sitelink: fmt.Sprintf("%.0f/s", pump), Floor: fmt.Sprintf("%.0f/s", bare),
		Ratio: pump / bare, Target: "≥ 0.85×",
		Note: fmt.Sprintf("%d × %d events; floor: bare paho QoS 1, %d in flight", sz.drainRounds, sz.drainEvents, window)}}, nil
}

// edgeBarePublish publishes n QoS 1 messages with up to window in flight
// and returns how long until all were acknowledged.
func edgeBarePublish(e *env, id, topic string, payload []byte, n, window int) (time.Duration, error) {
	c := paho.NewClient(paho.NewClientOptions().AddBroker(e.Broker.URL).SetClientID(id).SetCleanSession(true))
	if err := edgeTok(c.Connect()); err != nil {
		return 0, err
	}
	defer c.Disconnect(100)
	toks := make(chan paho.Token, window)
	start := time.Now()
	go func() {
		for range n {
			toks <- c.Publish(topic, 1, false, payload)
		}
		close(toks)
	}()
	var err error
	for t := range toks {
		if e := edgeTok(t); e != nil && err == nil {
			err = e
		}
	}
	return time.Since(start), err
}

func edgeFillOutbox(cfg *config.Edge, n int, payload []byte) error {
	st, err := store.Open(cfg.DBPath(), store.Options{NoSync: true})
	if err != nil {
		return err
	}
	defer st.Close()
	node := cfg.Node.ID
	for done := 0; done < n; done += 1000 {
		err := st.Update(func(tx *store.Tx) error {
			for j := done; j < min(done+1000, n); j++ {
				_, err := tx.Enqueue(node, wire.EventSession, time.Now(), func(seq uint64, _ string) ([]byte, error) {
					return wire.EventPayload(node, seq, wire.EventSession, time.Now().UTC(), map[string]string{"pad": string(payload)})
				})
				if err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// edgeDrain starts a daemon on a ledger holding a backlog and returns how
// many events it published and how long that took, between the first
// acknowledged event it reports and an empty outbox.
func edgeDrain(cfg *config.Edge, n int) (int, time.Duration, error) {
	d, err := edge.New(edge.Options{Config: cfg, Version: "bench"})
	if err != nil {
		return 0, 0, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	defer func() { cancel(); <-done }()
	api := localapi.NewClient(cfg.Node.APISocket)
	var t0 time.Time
	var p0 uint64
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		st, err := api.Status()
		now := time.Now()
		if err == nil {
			if t0.IsZero() && st.Published > 0 {
				t0, p0 = now, st.Published
			}
			// The counter moves right after each batch's delete.
			if !t0.IsZero() && st.OutboxDepth == 0 && int(st.Published) >= n {
				return int(st.Published - p0), now.Sub(t0), nil
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	return 0, 0, errors.New("drain: the outbox did not empty in 60s")
}

// ---- the large ledger ----

// edgeLedger is a ledger of finished sessions, built once per run and
// shared by the groups that measure with it.
type edgeLedger struct {
	dir   string // node.data_dir holding sitelink.db
	n     int
	took  time.Duration
	bytes int64
}

var edgeLedgers = struct {
	sync.Mutex
	m map[string]*edgeLedger
}{m: map[string]*edgeLedger{}}

// edgeBigLedger builds (once per run) a ledger of n settled sessions as a
// site accumulates them over the years, one every five minutes. The bulk
// build commits without fsync, a few thousand sessions per commit: the
// result is the same file, in seconds instead of hours.
func edgeBigLedger(e *env, n int) (*edgeLedger, error) {
	dir := filepath.Join(filepath.Dir(e.Dir), fmt.Sprintf("ledger-%d", n))
	edgeLedgers.Lock()
	defer edgeLedgers.Unlock()
	if l := edgeLedgers.m[dir]; l != nil {
		return l, nil
	}
	start := time.Now()
	st, err := store.Open(filepath.Join(dir, "sitelink.db"), store.Options{NoSync: true})
	if err != nil {
		return nil, err
	}
	t0 := time.Now().Add(-time.Duration(n+1) * 5 * time.Minute)
	const batch = 5000
	for i := 0; i < n; i += batch {
		err := st.Update(func(tx *store.Tx) error {
			for j := i; j < min(i+batch, n); j++ {
				s := edgeFinished(j, t0.Add(time.Duration(j)*5*time.Minute))
				if err := tx.PutSession(&s); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			st.Close()
			return nil, err
		}
	}
	if err := st.Close(); err != nil {
		return nil, err
	}
	fi, err := os.Stat(filepath.Join(dir, "sitelink.db"))
	if err != nil {
		return nil, err
	}
	l := &edgeLedger{dir: dir, n: n, took: time.Since(start), bytes: fi.Size()}
	edgeLedgers.m[dir] = l
	fmt.Fprintf(os.Stderr, "   a ledger of %d sessions (%s) built in %v\n", n, mb(l.bytes), l.took.Round(time.Millisecond))
	return l, nil
}

// edgeFinished is a settled session with everything a real one keeps:
// its history, Nayax's answer and payment record, its tariff.
func edgeFinished(j int, at time.Time) store.Session {
	at = at.UTC()
	// Time-ordered ids (UUIDv7; Nayax's are random): the bulk build
	// appends instead of rewriting pages all over the file, 2-3× faster.
	spark := uuid.Must(uuid.NewV7()).String()
	nayax := 3_000_000_000 + int64(j)
	wh := 5000 + float64(j%40000)
	amount := int64(wh * 39 / 1000)
	ans := store.Answer{Call: "Settlement", Outcome: "approved", At: at.Add(31 * time.Minute)}
	return store.Session{
		SparkTransactionID: spark, NayaxTransactionID: nayax, Station: []string{"5", "6", "7"}[j%3], State: store.Settled,
		MachineID: 71234996, HwSerial: "0434334921100366", SiteID: "2", MachineAuTime: at.Format("20060102150405000"),
		CardDigest: strings.Repeat("7f2082ba", 8), CardLast4: "1234", AuthorizedMinor: 1500, AmountMinor: amount,
		MeterStartWh: float64(j) * 20000, EnergyWh: wh, StopReason: "stop card (StopCallback)",
		CreatedAt: at, UpdatedAt: ans.At, LastAnswer: &ans, Answers: []store.Answer{ans},
		Payment: &store.PaymentRecord{Call: "Settlement", Verdict: "Approved", AuthCode: "123456", NayaxRRN: fmt.Sprint(900000000 + j),
			Amount: fmt.Sprintf("%d.%02d", amount/100, amount%100), SeTime: at.Add(31 * time.Minute).Format("20060102150405000"), At: ans.At},
		History: []store.Transition{
			{State: store.Authorized, At: at, Reason: "TransactionCallback approved"},
			{State: store.Charging, At: at.Add(20 * time.Second), Reason: "vehicle drawing energy"},
			{State: store.Stopping, At: at.Add(30 * time.Minute), Reason: "stop card (StopCallback)"},
			{State: store.Stopped, At: at.Add(30*time.Minute + time.Second), Reason: "contactor open"},
			{State: store.Settling, At: at.Add(30*time.Minute + time.Second), Reason: "settle the energy delivered"},
			{State: store.Settled, At: ans.At, Reason: "Nayax settled"},
		},
		Tariff: &store.Tariff{Currency: "EUR", DecimalPlace: 2, PricePerKWhMicro: 390000},
	}
}

// ---- health ----

func runHealth(ctx context.Context, e *env) ([]Row, error) {
	sz := edgeSizesOf(e)
	big, err := edgeBigLedger(e, sz.ledger)
	if err != nil {
		return nil, err
	}
	// The floor is a small ledger rather than an empty one: a scrape
	// reads the last 100 sessions, whatever the ledger's size.
	small, err := edgeBigLedger(e, 1000)
	if err != nil {
		return nil, err
	}
	label := sz.ledgerLabel + " sessions"
	floorLabel := " (1k sessions)"
	buildNote := fmt.Sprintf("ledger of %d settled sessions, %s, bulk-built without fsync in %v", big.n, mb(big.bytes), big.took.Round(100*time.Millisecond))

	// The health event's ledger reads (daemon/edge health(): outbox depth
	// and session counts), on the store directly: the event is built on
	// the engine's goroutine, which nothing outside the package can call.
	cfgA := edgeConfig(e, "bench-health-small", small.dir, true)
	cfgB := edgeConfig(e, "bench-health-big", big.dir, true)
	readsA, err := edgeHealthReads(cfgA.DBPath(), sz.healthReads)
	if err != nil {
		return nil, err
	}
	readsB, err := edgeHealthReads(cfgB.DBPath(), sz.healthReads)
	if err != nil {
		return nil, err
	}
	for _, c := range []*config.Edge{cfgA, cfgB} {
		if c.Node.MetricsListen, err = edgeFreePort(); err != nil {
			return nil, err
		}
	}
	cloud, err := edgeNewCloud(e, "bench-health-cloud")
	if err != nil {
		return nil, err
	}
	defer cloud.close()
	a, err := edgeStart(cfgA)
	if err != nil {
		return nil, err
	}
	defer a.stop()
	b, err := edgeStart(cfgB)
	if err != nil {
		return nil, err
	}
	defer b.stop()

	// Scrapes of both, interleaved.
	hc := &http.Client{Timeout: 10 * time.Second}
	var scrapesA, scrapesB []time.Duration
	for range sz.scrapes {
		for _, x := range []struct {
			d  *edgeDaemon
			to *[]time.Duration
		}{{a, &scrapesA}, {b, &scrapesB}} {
			took, err := edgeScrape(hc, x.d.metricsURL)
			if err != nil {
				return nil, err
			}
			*x.to = append(*x.to, took)
		}
	}

	// Stops at both, interleaved, without and with a scrape sent at the
	// same moment as the stop.
	var stopsA, stopsB, stopsAScraped, stopsBScraped []time.Duration
	for i := range sz.healthStops + 2 {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		for k, x := range []struct {
			d      *edgeDaemon
			scrape bool
			to     *[]time.Duration
		}{{a, false, &stopsA}, {b, false, &stopsB}, {a, true, &stopsAScraped}, {b, true, &stopsBScraped}} {
			t := edgeTxnN(fmt.Sprintf("health%d", k), i)
			if err := cloud.charge(x.d, t); err != nil {
				return nil, err
			}
			var scraped chan error
			if x.scrape {
				scraped = make(chan error, 1)
				go func() { _, err := edgeScrape(hc, x.d.metricsURL); scraped <- err }()
			}
			took, err := cloud.stop(x.d, t)
			if err != nil {
				return nil, err
			}
			if scraped != nil {
				if err := <-scraped; err != nil {
					return nil, err
				}
			}
			if err := cloud.settle(x.d); err != nil {
				return nil, err
			}
			if i >= 2 { // the first two warm up
				*x.to = append(*x.to, took)
			}
		}
	}
	n := fmt.Sprintf("%d stops each, interleaved", len(stopsA))
	return []Row{
		{Figure: "health event's ledger reads (outbox depth, counts by state), " + label, Sitelink: edgeMs(edgeQ(readsB, .5)),
			Floor: edgeMs(edgeQ(readsA, .5)) + floorLabel, Ratio: edgeRatio(edgeQ(readsB, .5), edgeQ(readsA, .5)), Target: "≤ 1.3×",
			Note: fmt.Sprintf("p50 of %d, on the store (the event is unexported); %s", len(readsA), buildNote)},
		{Figure: "/metrics scrape (node.metrics_listen), " + label, Sitelink: edgeMs(edgeQ(scrapesB, .5)),
			Floor: edgeMs(edgeQ(scrapesA, .5)) + floorLabel, Ratio: edgeRatio(edgeQ(scrapesB, .5), edgeQ(scrapesA, .5)), Target: "≤ 1.3×, ms",
			Note: fmt.Sprintf("p50 of %d; p99 %s vs %s", len(scrapesA), edgeMs(edgeQ(scrapesB, .99)), edgeMs(edgeQ(scrapesA, .99)))},
		{Figure: "stop path p50, " + label, Sitelink: edgeMs(edgeQ(stopsB, .5)), Floor: edgeMs(edgeQ(stopsA, .5)) + floorLabel,
			Ratio: edgeRatio(edgeQ(stopsB, .5), edgeQ(stopsA, .5)), Target: "≤ 1.3×",
			Note: fmt.Sprintf("%s; p99 %s vs %s", n, edgeMs(edgeQ(stopsB, .99)), edgeMs(edgeQ(stopsA, .99)))},
		{Figure: "stop path p50, " + label + ", a /metrics scrape sent with each stop", Sitelink: edgeMs(edgeQ(stopsBScraped, .5)),
			Floor: edgeMs(edgeQ(stopsB, .5)) + " (no scrape)", Ratio: edgeRatio(edgeQ(stopsBScraped, .5), edgeQ(stopsB, .5)), Target: "≤ 1.3×",
			Note: fmt.Sprintf("p99 %s vs %s; at 1k sessions %s vs %s",
				edgeMs(edgeQ(stopsBScraped, .99)), edgeMs(edgeQ(stopsB, .99)), edgeMs(edgeQ(stopsAScraped, .5)), edgeMs(edgeQ(stopsA, .5)))},
	}, nil
}

// edgeHealthReads times n rounds of what the health event reads from the
// ledger at path, opened as the daemon opens it.
func edgeHealthReads(path string, n int) ([]time.Duration, error) {
	st, err := store.Open(path, store.Options{})
	if err != nil {
		return nil, err
	}
	defer st.Close()
	out := make([]time.Duration, 0, n)
	for range n {
		start := time.Now()
		if _, err := st.OutboxLen(); err != nil {
			return nil, err
		}
		if _, err := st.Counts(); err != nil {
			return nil, err
		}
		out = append(out, time.Since(start))
	}
	return out, nil
}

func edgeScrape(hc *http.Client, url string) (time.Duration, error) {
	start := time.Now()
	resp, err := hc.Get(url)
	if err != nil {
		return 0, err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	took := time.Since(start)
	if err != nil {
		return 0, err
	}
	if resp.StatusCode != http.StatusOK || !bytes.Contains(body, []byte("sitelink_sessions")) {
		return 0, fmt.Errorf("scrape %s: HTTP %d", url, resp.StatusCode)
	}
	return took, nil
}

// ---- process ----

func runProcess(ctx context.Context, e *env) ([]Row, error) {
	sz := edgeSizesOf(e)
	bin, how, err := procSitelink(e.Dir, sz.releaseBuild)
	if err != nil {
		return nil, err
	}
	big, err := edgeBigLedger(e, sz.ledger)
	if err != nil {
		return nil, err
	}
	floorBin, err := procBuild(e.Dir, "cmd/sitelink-bench/floorproc", sz.releaseBuild)
	if err != nil {
		return nil, err
	}
	notify, err := procListenNotify(e.Dir)
	if err != nil {
		return nil, err
	}
	defer notify.Close()

	drop := sz.dropCaches && os.Geteuid() == 0
	cache := "page cache dropped before each start"
	if !drop {
		cache = "page cache warm (not root)"
		if e.Short {
			cache = "page cache warm (short run)"
		}
	}
	// launch starts one process, times exec → READY=1, waits until it is
	// connected, and with settle > 0 reads its memory after that long.
	fresh := 0
	launch := func(what string, cold bool, settle time.Duration) (time.Duration, procMem, error) {
		if err := ctx.Err(); err != nil {
			return 0, procMem{}, err
		}
		if cold && drop {
			procDropCaches()
		}
		var p *proc
		var api *localapi.Client
		var err error
		if what == "floor" {
			notify.drain()
			p, err = procStart(notify, floorBin, []string{e.Broker.URL})
		} else {
			dir, node := big.dir, "bench-process-large"
			if what == "fresh" {
				fresh++
				dir, node = filepath.Join(e.Dir, fmt.Sprintf("fresh-%d", fresh)), "bench-process-fresh"
			}
			cfg := edgeConfig(e, node, dir, false)
			cfg.Node.APISocket = filepath.Join(e.Dir, what+".sock")
			var path string
			if path, err = edgeWriteConfig(cfg, filepath.Join(e.Dir, what+".yaml")); err != nil {
				return 0, procMem{}, err
			}
			api = localapi.NewClient(cfg.Node.APISocket)
			notify.drain()
			p, err = procStart(notify, bin, []string{"run", "-config", path})
		}
		if err != nil {
			return 0, procMem{}, err
		}
		defer p.stop()
		fail := func(err error) (time.Duration, procMem, error) {
			p.stop()
			return 0, procMem{}, fmt.Errorf("%s: %w; its log:\n%s", what, err, p.log.String())
		}
		ready, err := notify.await("READY=1", 5*time.Minute)
		if err != nil {
			return fail(err)
		}
		if api != nil {
			err = edgeWait(30*time.Second, "sitelink connected", func() (bool, error) {
				if p.exited() {
					return false, errors.New("sitelink exited")
				}
				st, err := api.Status()
				return err == nil && st.Connected, nil
			})
		} else {
			_, err = notify.await("STATUS=connected", 30*time.Second)
		}
		if err != nil {
			return fail(err)
		}
		var m procMem
		if settle > 0 {
			time.Sleep(settle)
			if m, err = procMemOf(p.cmd.Process.Pid); err != nil {
				return fail(err)
			}
		}
		return ready.Sub(p.start), m, nil
	}

	// The floor and a fresh ledger, cold (and the fresh one warm right
	// after), a few times; the memory on the last round.
	var floorStarts, freshStarts, warmStarts []time.Duration
	var floorMem, freshMem, largeMem procMem
	for rep := range sz.starts {
		settle := time.Duration(0)
		if rep == sz.starts-1 {
			settle = sz.settle
		}
		d, m, err := launch("floor", true, settle)
		if err != nil {
			return nil, err
		}
		floorStarts, floorMem = append(floorStarts, d), m
		if d, m, err = launch("fresh", true, settle); err != nil {
			return nil, err
		}
		freshStarts, freshMem = append(freshStarts, d), m
		if d, _, err = launch("fresh", false, 0); err != nil {
			return nil, err
		}
		warmStarts = append(warmStarts, d)
	}
	// The large ledger once from the disk, once from the page cache.
	largeCold, largeMem, err := launch("large", true, sz.settle)
	if err != nil {
		return nil, err
	}
	largeWarm, _, err := launch("large", false, 0)
	if err != nil {
		return nil, err
	}

	med := func(ds []time.Duration) time.Duration { return edgeQ(ds, .5) }
	memNote := func(m procMem) string { return fmt.Sprintf("anon %s, file %s", mb(m.Anon), mb(m.File)) }
	label := sz.ledgerLabel + "-session ledger"
	return []Row{
		{Figure: "cold start of `sitelink run` (exec → READY=1), fresh ledger", Sitelink: edgeMs(med(freshStarts)), Floor: edgeMs(med(floorStarts)),
			Ratio: edgeRatio(med(freshStarts), med(floorStarts)), Target: "< 1 s",
			Note: fmt.Sprintf("median of %d; %s; %s; floor: floorproc, READY=1 first thing", sz.starts, cache, how)},
		{Figure: "cold start of `sitelink run` (exec → READY=1), " + label, Sitelink: edgeMs(largeCold), Floor: edgeMs(med(freshStarts)) + " (fresh ledger)",
			Ratio: edgeRatio(largeCold, med(freshStarts)), Target: "< 1 s", Note: fmt.Sprintf("%s; %s", cache, mb(big.bytes))},
		{Figure: "start of `sitelink run` (exec → READY=1), " + label + ", page cache warm", Sitelink: edgeMs(largeWarm),
			Floor: edgeMs(med(warmStarts)) + " (fresh ledger, warm)", Ratio: edgeRatio(largeWarm, med(warmStarts)), Target: "< 1 s",
			Note: "right after the cold one"},
		{Figure: "RSS of `sitelink run`, idle (demo config: 3 simulated stations)", Sitelink: mb(freshMem.RSS), Floor: mb(floorMem.RSS),
			Ratio: float64(freshMem.RSS) / float64(floorMem.RSS), Target: "< 20 MB",
			Note: fmt.Sprintf("VmRSS %v after connecting; %s; floor: floorproc, one paho client", sz.settle, memNote(freshMem))},
		{Figure: "RSS of `sitelink run`, " + label, Sitelink: mb(largeMem.RSS), Floor: mb(freshMem.RSS) + " (fresh ledger)",
			Ratio: float64(largeMem.RSS) / float64(freshMem.RSS), Target: "< 20 MB",
			Note: memNote(largeMem) + " (the ledger's mmap)"},
	}, nil
}

// edgeWriteConfig writes cfg as the YAML file `sitelink run -config` reads.
func edgeWriteConfig(cfg *config.Edge, path string) (string, error) {
	b, err := yaml.Marshal(cfg)
	if err != nil {
		return "", err
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		return "", err
	}
	if _, err := config.LoadEdge(path); err != nil {
		return "", fmt.Errorf("bench config: %w", err)
	}
	return path, nil
}
