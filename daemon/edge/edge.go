package edge

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/sitelink/sitelink/daemon/config"
	"github.com/sitelink/sitelink/daemon/guard"
	"github.com/sitelink/sitelink/daemon/link"
	"github.com/sitelink/sitelink/daemon/metrics"
	"github.com/sitelink/sitelink/daemon/queue"
	"github.com/sitelink/sitelink/daemon/wire"
	"github.com/sitelink/sitelink/hal"
	"github.com/sitelink/sitelink/hal/modbus"
	"github.com/sitelink/sitelink/store"
)

// Options configure a Daemon.
type Options struct {
	Config  *config.Edge
	Version string
	Logger  *slog.Logger // nil = discard
	// Stations overrides the drivers built from the config (tests and
	// hardware wiring); keys are station numbers.
	Stations map[string]hal.Station
	// Store options; LockTimeout etc. Zero values take the store defaults.
	Store store.Options
	// Ready is called once stations are safe, the store is open and the
	// API serves: the systemd READY point. May be nil.
	Ready func()
	// Status receives short human status lines (systemd STATUS=). May be nil.
	Status func(string)
	// Watchdog, if set with a positive WatchdogInterval, is called from
	// the session engine's goroutine at half the interval (systemd
	// WATCHDOG=1): a stuck engine stops the pings and gets restarted.
	Watchdog         func()
	WatchdogInterval time.Duration
	// ConfigFile is the file Config was read from: the base under the
	// fleet's configuration, read again by Reload. Empty: Config itself.
	ConfigFile string
	// ConfigTrial bounds how long a changed mqtt section may take to
	// bring the link back before it is rolled back (DefaultConfigTrial).
	ConfigTrial time.Duration
	// MetricsTimeouts are node.metrics_listen's server timeouts; zero
	// fields take DefaultMetricsTimeouts'.
	MetricsTimeouts HTTPTimeouts
	// BusReopen is the schedule on which a missing serial port is tried
	// again; zero fields take modbus.DefaultBackoff's (tests shorten it).
	BusReopen modbus.Backoff
}

// Daemon is the edge daemon. Run is its composition root: it builds each
// piece from the values it needs, starts them in order and stops them in
// reverse; no piece holds a pointer back to the Daemon.
type Daemon struct {
	o   Options
	log *slog.Logger
	// cfg is the running configuration: set by the fleet's load at
	// start-up, then swapped whole only by the engine (fleet config,
	// SIGHUP); read anywhere.
	cfg    atomic.Pointer[config.Edge]
	topics wire.Topics
	fleet  *fleet // exists from New, so Reload can answer before Run
}

// New validates the options; Run does the work.
func New(o Options) (*Daemon, error) {
	if o.Config == nil {
		return nil, errors.New("edge: no config")
	}
	if p := o.Config.Validate(); len(p) > 0 {
		return nil, fmt.Errorf("edge: invalid config:\n%w", p)
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if o.Version == "" {
		o.Version = "dev"
	}
	d := &Daemon{
		o:      o,
		log:    log,
		topics: wire.Topics{Prefix: o.Config.MQTT.TopicPrefix, Node: o.Config.Node.ID},
	}
	d.cfg.Store(o.Config)
	d.fleet = newFleet(log, &d.cfg, o.ConfigFile, o.Config, o.ConfigTrial)
	return d, nil
}

// Run builds, connects and starts everything in order (store, fleet
// configuration, stations in their safe state, link, pump, engine and its
// start-up reconcile, API), and stops it in reverse when ctx ends. A
// cancelled ctx is a clean exit and returns nil.
func (d *Daemon) Run(ctx context.Context) error {
	so := d.o.Store
	if so.LegacyDecimalPlace == nil {
		// A ledger of an older release may hold sessions without a
		// tariff: their amounts were in the configured currency.
		dp := d.cfg.Load().Tariff.DecimalPlace
		so.LegacyDecimalPlace = &dp
	}
	st, err := store.Open(d.cfg.Load().DBPath(), d.cfg.Load().StoreOptions(so))
	if err != nil {
		return err
	}
	defer st.Close()

	// The fleet's configuration from the ledger goes over the file
	// before anything is opened with it.
	if err := d.fleet.load(st); err != nil {
		return err
	}

	// The engine's inputs exist before the engine: a gpio button pressed
	// during start-up waits for it (and gets errShutdown if start-up
	// fails), a command that arrives early waits in its queue.
	calls := newCalls()
	cmds := queue.New[inbound]()
	changes := queue.New[string]()

	stations := newStationSet(d.log, d.o.Stations, changes.Push, func(n, what string, f func(*engine) error) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		var err error
		if xerr := calls.do(ctx, func(e *engine) { err = f(e) }); xerr != nil {
			err = xerr
		}
		if err != nil {
			d.log.Warn("station button", "station", n, "button", what, "err", err)
		}
	})
	stations.reopen = d.o.BusReopen
	if err := stations.open(d.cfg.Load()); err != nil {
		calls.close()
		return err
	}
	defer stations.close()
	// Before the stations close: a button waiting for an engine that
	// never came must not hold up its own station's Close.
	defer calls.close()

	pres := newPresence(d.topics, d.o.Version, &d.cfg, st, stations, d.fleet.versions, d.log)
	relays := newRelayWatch(d.log, d.topics.Prefix, func() {
		calls.q.Push(func(e *engine) { e.resendAwaiting(time.Now()) })
	})
	defer relays.stop()
	// The link's OnUp wakes the pump, which needs the link: OnUp runs only
	// from lnk.Run, spawned below once pump is set.
	var pump *pump
	lo, err := d.linkOptions(pres, relays, cmds, func() {
		pump.poke()
		d.fleet.poke() // a report the broker has not seen yet
	})
	if err != nil {
		return err
	}
	lnk := link.New(lo)
	pres.contested = lnk.Contested
	pump = newPump(st, lnk, d.topics, d.log, d.cfg.Load().MQTT.ConnectTimeout.D())

	rebirth := func() { pres.rebirth(lnk) }
	waiting := make(chan []string, 1)
	// Counted always, logged once per interval: a flood of commands for
	// unknown transactions, or of connections, costs no log per item.
	noops := guard.NewRefusals(d.log, slog.LevelInfo, "commands answered without acting", 0)
	refused := guard.NewRefusals(d.log, slog.LevelWarn, "metrics connections refused", 0)
	hb := newHeartbeat(d.o, func() string { return statusLine(lnk.Connected(), "", stations, st) }, time.Now())
	cortinaRefused := &cortinaRefusals{}
	answers := newLastAnswers()
	if err := answers.seed(st); err != nil {
		return fmt.Errorf("read recent answers: %w", err)
	}
	timings := &metrics.Set{}
	eng := newEngine(engineDeps{
		log: d.log, st: st, stations: stations, cfg: &d.cfg, topics: d.topics,
		cmds: cmds, calls: calls, changes: changes,
		poke: pump.poke, connected: lnk.Connected, rebirth: rebirth,
		waiting: waiting, beat: hb.beat, noops: noops, cortinaRefused: cortinaRefused, timings: timings, answers: answers,
	})
	if err := eng.reconcile(time.Now()); err != nil {
		return fmt.Errorf("reconcile sessions: %w", err)
	}

	api, err := listenAPI(d.cfg.Load().Node, backend{
		st: st, stations: stations, cfg: &d.cfg, link: lnk, pres: pres, pump: pump,
		fleet: d.fleet, exec: calls.do, version: d.o.Version, relays: relays,
		noops: noops, refused: refused, cortinaRefused: cortinaRefused, timings: timings, answers: answers,
	}, d.o.MetricsTimeouts, refused, d.log)
	if err != nil {
		return err
	}

	runCtx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	spawn := func(f func()) {
		wg.Add(1)
		go func() { defer wg.Done(); f() }()
	}
	spawn(func() { _ = lnk.Run(runCtx) })
	spawn(func() { pump.run(runCtx) })
	stations.start(runCtx, spawn)
	spawn(func() {
		d.fleet.run(runCtx, fleetIO{link: lnk, exec: calls.do, waiting: waiting, rebirth: rebirth, reported: d.topics.ConfigReported()})
	})
	spawn(func() { eng.replier(runCtx) })
	spawn(func() { noops.Run(runCtx) })
	spawn(func() { refused.Run(runCtx) })
	spawn(func() { (&retention{log: d.log, st: st, cfg: &d.cfg, now: time.Now}).run(runCtx) })
	engDone := make(chan struct{})
	go func() { defer close(engDone); eng.run(runCtx) }()
	spawn(func() { api.serve(runCtx) })

	d.log.Info("sitelink edge running", "node", d.cfg.Load().Node.ID, "stations", stations.count(), "version", d.o.Version)
	d.status(fmt.Sprintf("running, %d stations", stations.count()))
	if d.o.Ready != nil {
		d.o.Ready()
	}

	<-ctx.Done()
	d.log.Info("shutting down")
	d.status("shutting down")
	// Engine first: it opens every contactor and records interrupted
	// sessions before anything else goes away.
	eng.shutdown()
	// Give the pump a moment to publish the last transitions; whatever
	// is left stays in the outbox for the next start.
	pump.flush(2 * time.Second)
	// A clean disconnect fires no last will: say offline ourselves.
	if err := lnk.Shutdown(d.topics.State(), pres.payload(false), 2*time.Second); err != nil && !errors.Is(err, link.ErrDown) {
		d.log.Warn("publish offline state", "err", err)
	}
	stop()
	<-engDone
	api.close()
	wg.Wait()
	return nil
}

func (d *Daemon) status(s string) {
	if d.o.Status != nil {
		d.o.Status(s)
	}
}

// linkOptions builds the node's link: its identity, a persistent session
// with manual acks (a command is acked once its reply is out), the will,
// and the subscriptions; up runs once the birth came back.
func (d *Daemon) linkOptions(pres *presence, relays *relayWatch, cmds *queue.Queue[inbound], up func()) (link.Options, error) {
	cfg := d.cfg.Load()
	o, err := cfg.MQTT.LinkOptions()
	if err != nil {
		return o, err
	}
	o.ClientID = cfg.Node.ID
	o.CleanSession = false
	o.ManualAck = true
	o.Logger = d.log
	tc := o.TLS
	if tc != nil && len(tc.Certificates) > 0 {
		// A broker with use_identity_as_username confines the node to
		// topics named after the certificate (DESIGN.md §3). With another
		// name it accepts the connection, then silently drops what the
		// node publishes and never delivers its commands: say so up front.
		if leaf := tc.Certificates[0].Leaf; leaf != nil && leaf.Subject.CommonName != cfg.Node.ID {
			d.log.Warn("mqtt client certificate names another node; a broker ACL keyed on the certificate identity will not let this node use its topics",
				"cert_common_name", leaf.Subject.CommonName, "node_id", cfg.Node.ID)
		}
	}
	o.Will = pres.will
	o.ConflictMin, o.ConflictMax = conflictMin, conflictMax
	o.Subs = map[string]link.Handler{
		d.topics.Commands():      func(c *link.Conn, m paho.Message) { cmds.Push(newInbound(c, m)) },
		d.topics.ConfigDesired(): d.fleet.handler(config.SourceNode),
		wire.GroupConfigDesired(d.topics.Prefix, cfg.MQTT.Group): d.fleet.handler(config.SourceGroup),
		d.topics.State():                pres.onState,
		wire.AllRelays(d.topics.Prefix): relays.onPresence,
	}
	o.OnUp = func(c *link.Conn) error {
		if err := pres.birth(c, d.cfg.Load().MQTT.ConnectTimeout.D()); err != nil {
			return err
		}
		if up != nil {
			up()
		}
		d.status(statusLine(true, "", pres.stations, pres.st))
		return nil
	}
	o.OnDown = func(err error) {
		why := fmt.Sprintf("broker unreachable: %v", err)
		if cf, _ := pres.Conflict(); cf.Active {
			why = "node.id conflict: another daemon uses this node id; " + why
		}
		d.status(statusLine(false, why, pres.stations, pres.st))
	}
	return o, nil
}
