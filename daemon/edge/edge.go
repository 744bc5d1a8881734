package edge

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/sitelink/sitelink/daemon/config"
	"github.com/sitelink/sitelink/daemon/link"
	"github.com/sitelink/sitelink/daemon/wire"
	"github.com/sitelink/sitelink/hal"
	"github.com/sitelink/sitelink/hal/modbus"
	"github.com/sitelink/sitelink/hal/sim"
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
}

// Daemon is the edge daemon: store, stations, MQTT link, outbox pump,
// session engine and local API.
type Daemon struct {
	o Options
	// cfg is the running configuration. It is replaced whole (fleet
	// config, SIGHUP) on the engine goroutine, and read anywhere.
	cfg    atomic.Pointer[config.Edge]
	log    *slog.Logger
	topics wire.Topics

	st *store.Store

	// The station set (stations.go): written on the engine goroutine
	// under hwMu, read by others under it.
	hwMu      sync.RWMutex
	stations  map[string]hal.Station
	order     []string // station numbers in config order
	sims      map[string]*sim.Station
	meterOf   map[string]*modbus.Meter      // meters the daemon polls, by station
	builtFrom map[string]config.Station     // the definition each station was opened with
	runStop   map[string]context.CancelFunc // stops a station's watcher and meter loop
	buses     map[string]*modbus.Bus
	runCtx    context.Context // lives while the daemon runs
	spawn     func(func())    // runs a goroutine Run waits for

	fleet *fleet
	link  *link.Link
	pump  *pump
	eng   *engine

	mu    sync.Mutex
	epoch int64
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
		sims:   map[string]*sim.Station{},
	}
	d.cfg.Store(o.Config)
	d.fleet = newFleet(d)
	return d, nil
}

// conf returns the running configuration; never modify it.
func (d *Daemon) conf() *config.Edge { return d.cfg.Load() }

// Run starts everything in order (store, stations in their safe state,
// reconcile, link, pump, engine, API) and stops it in reverse when ctx
// ends. A cancelled ctx is a clean exit and returns nil.
func (d *Daemon) Run(ctx context.Context) error {
	st, err := store.Open(d.conf().DBPath(), d.o.Store)
	if err != nil {
		return err
	}
	d.st = st
	defer st.Close()

	// The fleet's configuration from the ledger goes over the file
	// before anything is opened with it.
	if err := d.fleet.load(); err != nil {
		return err
	}

	// The engine exists before the stations: a gpio button pressed during
	// start-up reaches it (and gets "shutting down" if start-up fails).
	d.eng = newEngine(d)
	engineRunning := false
	defer func() {
		if !engineRunning {
			close(d.eng.stopped)
		}
	}()
	if err := d.openStations(); err != nil {
		return err
	}
	defer d.closeStations()

	if err := d.eng.reconcile(time.Now()); err != nil {
		return fmt.Errorf("reconcile sessions: %w", err)
	}

	lo, err := d.linkOptions()
	if err != nil {
		return err
	}
	d.link = link.New(lo)
	d.pump = newPump(st, d.link, d.topics, d.log, d.conf().MQTT.ConnectTimeout.D())
	d.eng.pump = d.pump

	api, err := d.listenAPI()
	if err != nil {
		return err
	}

	runCtx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	goRun := func(f func(context.Context)) {
		wg.Add(1)
		go func() { defer wg.Done(); f(runCtx) }()
	}
	goRun(func(c context.Context) { _ = d.link.Run(c) })
	goRun(d.pump.run)
	d.runCtx = runCtx
	d.spawn = func(f func()) {
		wg.Add(1)
		go func() { defer wg.Done(); f() }()
	}
	for _, n := range d.order {
		d.startStation(n)
	}
	goRun(d.fleet.run)
	goRun(d.eng.replier)
	engDone := make(chan struct{})
	engineRunning = true
	go func() { defer close(engDone); d.eng.run(runCtx) }()
	goRun(func(c context.Context) { api.serve(c) })

	d.log.Info("sitelink edge running", "node", d.conf().Node.ID, "stations", d.stationCount(), "version", d.o.Version)
	d.status(fmt.Sprintf("running, %d stations", d.stationCount()))
	if d.o.Ready != nil {
		d.o.Ready()
	}

	<-ctx.Done()
	d.log.Info("shutting down")
	d.status("shutting down")
	// Engine first: it opens every contactor and records interrupted
	// sessions before anything else goes away.
	d.eng.shutdown()
	// Give the pump a moment to publish the last transitions; whatever
	// is left stays in the outbox for the next start.
	d.pump.flush(2 * time.Second)
	// A clean disconnect fires no last will: say offline ourselves.
	if err := d.link.Shutdown(d.topics.State(), d.statePayload(false), 2*time.Second); err != nil && !errors.Is(err, link.ErrDown) {
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

func (d *Daemon) openStations() error {
	d.stations = map[string]hal.Station{}
	d.meterOf = map[string]*modbus.Meter{}
	d.builtFrom = map[string]config.Station{}
	d.runStop = map[string]context.CancelFunc{}
	if err := d.openBuses(); err != nil {
		return err
	}
	for _, sc := range d.conf().Stations {
		b, err := d.buildStation(sc, true)
		if err != nil {
			d.closeStations()
			return fmt.Errorf("station %s: %w", sc.Number, err)
		}
		d.install(sc, b)
	}
	// Fail safe first: nothing delivers energy until a session says so.
	for _, n := range d.order {
		if err := d.stations[n].Halt(); err != nil {
			d.log.Error("halt station at start-up", "station", n, "err", err)
		}
	}
	return nil
}

func (d *Daemon) closeStations() {
	for _, n := range d.order {
		st, ok := d.stations[n]
		if !ok {
			continue // not opened (start-up failed before it)
		}
		if err := st.Close(); err != nil {
			d.log.Warn("close station", "station", n, "err", err)
		}
	}
	d.closeBuses()
}

func (d *Daemon) linkOptions() (link.Options, error) {
	m := d.conf().MQTT
	o, err := m.LinkOptions()
	if err != nil {
		return o, err
	}
	o.ClientID = d.conf().Node.ID
	o.CleanSession = false
	o.ManualAck = true
	o.Logger = d.log
	tc := o.TLS
	if tc != nil && len(tc.Certificates) > 0 {
		// A broker with use_identity_as_username confines the node to
		// topics named after the certificate (DESIGN.md §3). With another
		// name it accepts the connection, then silently drops what the
		// node publishes and never delivers its commands: say so up front.
		if leaf := tc.Certificates[0].Leaf; leaf != nil && leaf.Subject.CommonName != d.conf().Node.ID {
			d.log.Warn("mqtt client certificate names another node; a broker ACL keyed on the certificate identity will not let this node use its topics",
				"cert_common_name", leaf.Subject.CommonName, "node_id", d.conf().Node.ID)
		}
	}
	o.Will = func() (string, []byte, error) {
		e, err := d.st.NextEpoch()
		if err != nil {
			return "", nil, err
		}
		d.mu.Lock()
		d.epoch = e
		d.mu.Unlock()
		return d.topics.State(), d.statePayload(false), nil
	}
	// The node listens to its own state topic to see its birth come back:
	// a broker ACL that does not match this node's identity accepts the
	// connection and then silently drops everything, and a node deaf to
	// its commands must not claim to be connected.
	echo := make(chan int64, 1)
	o.Subs = map[string]link.Handler{
		d.topics.Commands():      d.eng.onCommand,
		d.topics.ConfigDesired(): d.fleet.handler(config.SourceNode),
		wire.GroupConfigDesired(d.topics.Prefix, d.conf().MQTT.Group): d.fleet.handler(config.SourceGroup),
		d.topics.State(): func(_ *link.Conn, m paho.Message) {
			defer m.Ack()
			var st wire.State
			if json.Unmarshal(m.Payload(), &st) == nil && st.Online {
				// Keep the newest: a stale retained birth must not
				// crowd out the one OnUp waits for.
				select {
				case <-echo:
				default:
				}
				echo <- st.Epoch
			}
		},
	}
	o.OnUp = func(c *link.Conn) error {
		epoch := d.Epoch()
		select {
		case <-echo:
		default:
		}
		if err := c.PublishWait(context.Background(), d.topics.State(), true, d.statePayload(true)); err != nil {
			return fmt.Errorf("birth: %w", err)
		}
		timeout := time.After(d.conf().MQTT.ConnectTimeout.D())
		for waiting := true; waiting; {
			select {
			case e := <-echo:
				waiting = e != epoch
			case <-c.Done():
				return errors.New("connection lost before the birth came back")
			case <-timeout:
				return errors.New("the broker accepted the connection but does not deliver this node's own messages: check its ACL and that the username or certificate identity is the node id")
			}
		}
		d.pump.poke()
		d.fleet.poke() // a report the broker has not seen yet
		d.status(d.statusLine(true, ""))
		return nil
	}
	o.OnDown = func(err error) {
		d.status(d.statusLine(false, fmt.Sprintf("broker unreachable: %v", err)))
	}
	return o, nil
}

// rebirth republishes the retained online state (a new config version).
func (d *Daemon) rebirth() {
	if c := d.link.Conn(); c != nil {
		c.Publish(d.topics.State(), true, d.statePayload(true))
	}
}

// Epoch is the connect epoch of the current (or last) connection.
func (d *Daemon) Epoch() int64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.epoch
}

func (d *Daemon) statePayload(online bool) []byte {
	order, _ := d.stationList()
	s := wire.State{
		Online:   online,
		Epoch:    d.Epoch(),
		Version:  d.o.Version,
		Stations: order,
		At:       time.Now().UTC(),
		Machines: []wire.Machine{},
	}
	s.ConfigVersion, s.GroupConfigVersion, s.NodeConfigVersion = d.fleet.versions()
	if d.st != nil {
		s.OutboxDepth, _ = d.st.OutboxLen()
	}
	for _, t := range d.conf().Terminals {
		s.Machines = append(s.Machines, wire.Machine{MachineID: t.MachineID, HwSerial: t.HwSerial})
	}
	b, _ := jsonMarshal(s)
	return b
}
