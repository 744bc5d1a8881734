package edge

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
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
}

// Daemon is the edge daemon: store, stations, MQTT link, outbox pump,
// session engine and local API.
type Daemon struct {
	o      Options
	cfg    *config.Edge
	log    *slog.Logger
	topics wire.Topics

	st       *store.Store
	stations map[string]hal.Station
	order    []string // station numbers in config order
	sims     map[string]*sim.Station
	buses    map[string]*modbus.Bus
	meters   []*modbus.Meter // meters the daemon polls (those of sim and gpio stations)
	link     *link.Link
	pump     *pump
	eng      *engine

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
		cfg:    o.Config,
		log:    log,
		topics: wire.Topics{Prefix: o.Config.MQTT.TopicPrefix, Node: o.Config.Node.ID},
		sims:   map[string]*sim.Station{},
	}
	return d, nil
}

// Run starts everything in order (store, stations in their safe state,
// reconcile, link, pump, engine, API) and stops it in reverse when ctx
// ends. A cancelled ctx is a clean exit and returns nil.
func (d *Daemon) Run(ctx context.Context) error {
	st, err := store.Open(d.cfg.DBPath(), d.o.Store)
	if err != nil {
		return err
	}
	d.st = st
	defer st.Close()

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
	d.pump = newPump(st, d.link, d.topics, d.log, d.cfg.MQTT.ConnectTimeout.D())
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
	goRun(d.eng.watchStations)
	for _, m := range d.meters {
		goRun(m.Run)
	}
	goRun(d.eng.replier)
	engDone := make(chan struct{})
	engineRunning = true
	go func() { defer close(engDone); d.eng.run(runCtx) }()
	goRun(func(c context.Context) { api.serve(c) })

	d.log.Info("sitelink edge running", "node", d.cfg.Node.ID, "stations", len(d.order), "version", d.o.Version)
	d.status(fmt.Sprintf("running, %d stations", len(d.order)))
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
	if err := d.openBuses(); err != nil {
		return err
	}
	for _, sc := range d.cfg.Stations {
		d.order = append(d.order, sc.Number)
		if st, ok := d.o.Stations[sc.Number]; ok {
			d.stations[sc.Number] = st
			if s, ok := st.(*sim.Station); ok {
				d.sims[sc.Number] = s
			}
			continue
		}
		switch sc.Driver {
		case "sim":
			c := sim.Config{Number: sc.Number, VehiclePresent: true, PowerKW: 7.4, TimeScale: 1}
			if sc.Sim != nil {
				c.VehiclePresent = sc.Sim.Vehicle != "absent"
				c.PowerKW = sc.Sim.PowerKW
				c.TimeScale = sc.Sim.TimeScale
			}
			s := sim.New(c)
			d.stations[sc.Number] = s
			d.sims[sc.Number] = s
		case "gpio", "modbus":
			var st hal.Station
			var err error
			if sc.Driver == "gpio" {
				st, err = d.openGPIO(sc)
			} else {
				st, err = d.openModbus(sc)
			}
			if err != nil {
				d.closeStations()
				return fmt.Errorf("station %s: %w", sc.Number, err)
			}
			d.stations[sc.Number] = st
		default:
			d.closeStations()
			return fmt.Errorf("station %s: driver %q not supported by this build", sc.Number, sc.Driver)
		}
	}
	// A meter block gives a sim or gpio station its energy (a modbus
	// controller polls its own).
	for _, sc := range d.cfg.Stations {
		if sc.Meter == nil || sc.Driver == "modbus" {
			continue
		}
		m, err := d.newMeter(sc)
		if err != nil {
			d.closeStations()
			return fmt.Errorf("station %s: meter: %w", sc.Number, err)
		}
		d.meters = append(d.meters, m)
		d.stations[sc.Number] = metered{Station: d.stations[sc.Number], m: m}
		// One reading before the start-up reconcile, so that a session
		// interrupted by a crash ends with the energy the meter vouches
		// for (a meter that does not answer faults its station instead).
		ctx, cancel := context.WithTimeout(context.Background(), 2*max(d.busTimeout(sc.Meter.Bus), time.Second))
		_, _ = m.ReadOnce(ctx)
		cancel()
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
	m := d.cfg.MQTT
	o, err := link.FromConfig(m)
	if err != nil {
		return o, err
	}
	o.ClientID = d.cfg.Node.ID
	o.CleanSession = false
	o.ManualAck = true
	o.Logger = d.log
	tc := o.TLS
	if tc != nil && len(tc.Certificates) > 0 {
		// A broker with use_identity_as_username confines the node to
		// topics named after the certificate (DESIGN.md §3). With another
		// name it accepts the connection, then silently drops what the
		// node publishes and never delivers its commands: say so up front.
		if leaf := tc.Certificates[0].Leaf; leaf != nil && leaf.Subject.CommonName != d.cfg.Node.ID {
			d.log.Warn("mqtt client certificate names another node; a broker ACL keyed on the certificate identity will not let this node use its topics",
				"cert_common_name", leaf.Subject.CommonName, "node_id", d.cfg.Node.ID)
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
		d.topics.Commands(): d.eng.onCommand,
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
		timeout := time.After(d.cfg.MQTT.ConnectTimeout.D())
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
		d.status(d.statusLine(true, ""))
		return nil
	}
	o.OnDown = func(err error) {
		d.status(d.statusLine(false, fmt.Sprintf("broker unreachable: %v", err)))
	}
	return o, nil
}

// Epoch is the connect epoch of the current (or last) connection.
func (d *Daemon) Epoch() int64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.epoch
}

func (d *Daemon) statePayload(online bool) []byte {
	s := wire.State{
		Online:   online,
		Epoch:    d.Epoch(),
		Version:  d.o.Version,
		Stations: append([]string{}, d.order...),
		At:       time.Now().UTC(),
		Machines: []wire.Machine{},
	}
	if d.st != nil {
		s.OutboxDepth, _ = d.st.OutboxLen()
	}
	for _, t := range d.cfg.Terminals {
		s.Machines = append(s.Machines, wire.Machine{MachineID: t.MachineID, HwSerial: t.HwSerial})
	}
	b, _ := jsonMarshal(s)
	return b
}
