package edge

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/sitelink/sitelink/daemon/config"
	"github.com/sitelink/sitelink/hal"
	"github.com/sitelink/sitelink/hal/modbus"
	"github.com/sitelink/sitelink/hal/sim"
)

// stationSet owns the site's station drivers, their meters and the serial
// buses they share. It is built at start-up and changed only on the engine
// goroutine (a configuration that redefines stations, replace); every
// reader, the engine included, goes through its methods. Readers get
// drivers out (get, list, each) and call them without the lock; open,
// close and replace build and close hardware under the write lock, which
// holds readers (API, metrics, the state payload) for that long.
type stationSet struct {
	log *slog.Logger
	// override supplies drivers by station number instead of building
	// them from the config (tests, hardware wiring); never closed here.
	override map[string]hal.Station
	// changed is told when a station signals a change (runs on the
	// station's watcher goroutine: it must not block).
	changed func(station string)
	// button runs f on the engine for a gpio station's start or stop
	// button and logs what it returns.
	button func(station, what string, f func(*engine) error)
	// reopen is the buses' schedule for a missing serial port (zero:
	// modbus.DefaultBackoff); set before open.
	reopen modbus.Backoff

	mu        sync.RWMutex
	stations  map[string]hal.Station
	order     []string // station numbers in config order
	sims      map[string]*sim.Station
	meterOf   map[string]*modbus.Meter      // meters the daemon polls, by station
	builtFrom map[string]config.Station     // the definition each station was opened with
	runStop   map[string]context.CancelFunc // stops a station's watcher and meter loop
	buses     map[string]*modbus.Bus
	runCtx    context.Context // set by start: lives while the daemon runs
	spawn     func(func())    // set by start: runs a goroutine Run waits for
}

func newStationSet(log *slog.Logger, override map[string]hal.Station, changed func(string), button func(station, what string, f func(*engine) error)) *stationSet {
	return &stationSet{log: log, override: override, changed: changed, button: button,
		stations: map[string]hal.Station{}, sims: map[string]*sim.Station{}, meterOf: map[string]*modbus.Meter{},
		builtFrom: map[string]config.Station{}, runStop: map[string]context.CancelFunc{}, buses: map[string]*modbus.Bus{}}
}

// get returns station n's driver.
func (ss *stationSet) get(n string) (hal.Station, bool) {
	ss.mu.RLock()
	defer ss.mu.RUnlock()
	st, ok := ss.stations[n]
	return st, ok
}

// list returns the station numbers in order and their drivers (a copy:
// callers may call the drivers without holding anything).
func (ss *stationSet) list() ([]string, map[string]hal.Station) {
	ss.mu.RLock()
	defer ss.mu.RUnlock()
	return slices.Clone(ss.order), maps.Clone(ss.stations)
}

// each calls f for every station in order, on a snapshot.
func (ss *stationSet) each(f func(n string, st hal.Station)) {
	order, sts := ss.list()
	for _, n := range order {
		f(n, sts[n])
	}
}

// busStat is one serial bus's port figures.
type busStat struct {
	name string
	modbus.BusStats
}

// busStats returns every open bus's port figures, by name.
func (ss *stationSet) busStats() []busStat {
	ss.mu.RLock()
	defer ss.mu.RUnlock()
	out := make([]busStat, 0, len(ss.buses))
	for _, name := range slices.Sorted(maps.Keys(ss.buses)) {
		out = append(out, busStat{name, ss.buses[name].Stats()})
	}
	return out
}

// count is how many stations the daemon drives.
func (ss *stationSet) count() int {
	ss.mu.RLock()
	defer ss.mu.RUnlock()
	return len(ss.order)
}

// driver is the configured driver of an installed station.
func (ss *stationSet) driver(n string) string {
	ss.mu.RLock()
	defer ss.mu.RUnlock()
	return ss.builtFrom[n].Driver
}

// sim returns station n's simulator; exists says whether n is a station
// at all (simulated or not).
func (ss *stationSet) sim(n string) (s *sim.Station, exists bool) {
	ss.mu.RLock()
	defer ss.mu.RUnlock()
	_, exists = ss.stations[n]
	return ss.sims[n], exists
}

// definition is the configuration station n was opened with.
func (ss *stationSet) definition(n string) config.Station {
	ss.mu.RLock()
	defer ss.mu.RUnlock()
	return ss.builtFrom[n]
}

// open opens every bus and station of cfg and halts them all: nothing
// delivers energy until a session says so. On error what was opened is
// closed again.
func (ss *stationSet) open(cfg *config.Edge) error {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	for _, b := range cfg.Buses {
		bus, err := ss.openBus(b)
		if err != nil {
			ss.closeLocked()
			return fmt.Errorf("buses: %s: %w", b.Name, err)
		}
		ss.buses[b.Name] = bus
	}
	for _, sc := range cfg.Stations {
		b, err := ss.build(cfg, sc, true)
		if err != nil {
			ss.closeLocked()
			return fmt.Errorf("station %s: %w", sc.Number, err)
		}
		ss.install(sc, b)
	}
	for _, n := range ss.order {
		if err := ss.stations[n].Halt(); err != nil {
			ss.log.Error("halt station at start-up", "station", n, "err", err)
		}
	}
	return nil
}

// close closes every station and bus.
func (ss *stationSet) close() {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	ss.closeLocked()
}

func (ss *stationSet) closeLocked() {
	for _, n := range ss.order {
		st, ok := ss.stations[n]
		if !ok {
			continue // not opened (start-up failed before it)
		}
		if err := st.Close(); err != nil {
			ss.log.Warn("close station", "station", n, "err", err)
		}
	}
	for name, b := range ss.buses {
		if err := b.Close(); err != nil {
			ss.log.Warn("close bus", "bus", name, "err", err)
		}
	}
}

// halt opens every contactor (shutdown, a panicking engine).
func (ss *stationSet) halt() {
	ss.each(func(n string, st hal.Station) {
		if err := st.Halt(); err != nil {
			ss.log.Error("halt station", "station", n, "err", err)
		}
	})
}

// start runs every station's watcher and meter loop until ctx ends;
// spawn runs a goroutine the daemon waits for.
func (ss *stationSet) start(ctx context.Context, spawn func(func())) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	ss.runCtx, ss.spawn = ctx, spawn
	for _, n := range ss.order {
		ss.startLocked(n)
	}
}

// startLocked runs what station n needs while the daemon runs: its change
// watcher and its meter's polling loop, stopped by the cancel kept in
// runStop.
func (ss *stationSet) startLocked(n string) {
	if ss.runCtx == nil {
		return // not running yet: start does it
	}
	ctx, cancel := context.WithCancel(ss.runCtx)
	ss.runStop[n] = cancel
	st, m := ss.stations[n], ss.meterOf[n]
	ss.spawn(func() {
		for {
			select {
			case <-st.Changes():
				ss.changed(n)
			case <-ctx.Done():
				return
			}
		}
	})
	if m != nil {
		ss.spawn(func() { m.Run(ctx) })
	}
}

// built is one station's hardware as build made it.
type built struct {
	st    hal.Station
	sim   *sim.Station  // set for sim stations (the local API drives them)
	meter *modbus.Meter // a meter the daemon polls (sim and gpio stations)
}

// build opens the hardware of one station definition; its buses must be
// open. readMeter takes one meter reading before returning (the start-up
// reconcile needs the energy a meter vouches for).
func (ss *stationSet) build(cfg *config.Edge, sc config.Station, readMeter bool) (built, error) {
	var b built
	if st, ok := ss.override[sc.Number]; ok {
		b.st = st
		b.sim, _ = st.(*sim.Station)
		return b, nil
	}
	var err error
	switch sc.Driver {
	case config.DriverSim:
		c := sim.Config{Number: sc.Number, VehiclePresent: true, PowerKW: 7.4, TimeScale: 1}
		if sc.Sim != nil {
			c.VehiclePresent = sc.Sim.Vehicle != config.VehicleAbsent
			c.PowerKW = sc.Sim.PowerKW
			c.TimeScale = sc.Sim.TimeScale
		}
		b.sim = sim.New(c)
		b.st = b.sim
	case config.DriverGPIO:
		b.st, err = ss.openGPIO(sc)
	case config.DriverModbus:
		b.st, err = ss.openModbus(cfg, sc)
	default:
		err = fmt.Errorf("driver %q not supported by this build", sc.Driver)
	}
	if err != nil {
		return b, err
	}
	// A meter block gives a sim or gpio station its energy (a modbus
	// controller polls its own).
	if sc.Meter != nil && sc.Driver != config.DriverModbus {
		m, err := ss.newMeter(sc)
		if err != nil {
			_ = b.st.Close()
			return b, fmt.Errorf("meter: %w", err)
		}
		b.meter = m
		b.st = metered{Station: b.st, m: m}
		if readMeter {
			ctx, cancel := context.WithTimeout(context.Background(), 2*max(busTimeout(cfg, sc.Meter.Bus), time.Second))
			_, _ = m.ReadOnce(ctx)
			cancel()
		}
	}
	return b, nil
}

// install puts a built station in the set (the caller holds mu).
func (ss *stationSet) install(sc config.Station, b built) {
	ss.stations[sc.Number] = b.st
	if b.sim != nil {
		ss.sims[sc.Number] = b.sim
	} else {
		delete(ss.sims, sc.Number)
	}
	ss.meterOf[sc.Number] = b.meter
	ss.builtFrom[sc.Number] = sc
	if !slices.Contains(ss.order, sc.Number) {
		ss.order = append(ss.order, sc.Number)
	}
}

// replace closes the named stations (and buses), opens what cfg defines
// for them and drops the rest. Runs on the engine goroutine with the
// stations idle. A definition that cannot be opened leaves its station
// faulted (broken) instead of failing the others.
func (ss *stationSet) replace(cfg *config.Edge, nums map[string]bool, buses []string) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	for n := range nums {
		if stop := ss.runStop[n]; stop != nil {
			stop()
			delete(ss.runStop, n)
		}
		st, ok := ss.stations[n]
		if !ok {
			continue
		}
		if _, kept := ss.override[n]; kept {
			continue // supplied by the caller, not ours to close
		}
		if err := st.Close(); err != nil {
			ss.log.Warn("close station", "station", n, "err", err)
		}
	}
	for _, name := range buses {
		if b := ss.buses[name]; b != nil {
			if err := b.Close(); err != nil {
				ss.log.Warn("close bus", "bus", name, "err", err)
			}
			delete(ss.buses, name)
		}
	}
	var order []string
	for _, sc := range cfg.Stations {
		if !nums[sc.Number] {
			if _, ok := ss.stations[sc.Number]; ok {
				order = append(order, sc.Number)
			}
			continue
		}
		order = append(order, sc.Number)
		var b built
		err := ss.openStationBuses(cfg, sc)
		if err == nil {
			b, err = ss.build(cfg, sc, false)
		}
		if err != nil {
			ss.log.Error("station change: cannot open the new definition; the station stays out of service", "station", sc.Number, "err", err)
			b = built{st: broken{number: sc.Number, why: "reconfiguration failed: " + err.Error()}}
		}
		ss.install(sc, b)
		if err := b.st.Halt(); err != nil {
			ss.log.Error("halt reconfigured station", "station", sc.Number, "err", err)
		}
		ss.startLocked(sc.Number)
	}
	// Stations removed from the configuration, and those not yet free to
	// change, keep their place after the configured ones.
	for _, n := range ss.order {
		if slices.Contains(order, n) {
			continue
		}
		if nums[n] {
			delete(ss.stations, n)
			delete(ss.sims, n)
			delete(ss.meterOf, n)
			delete(ss.builtFrom, n)
			continue
		}
		order = append(order, n)
	}
	ss.order = order
}

// openStationBuses opens the buses a station needs that are not open yet.
func (ss *stationSet) openStationBuses(cfg *config.Edge, sc config.Station) error {
	for _, name := range sc.Buses() {
		if ss.buses[name] != nil {
			continue
		}
		bc, ok := cfg.Bus(name)
		if !ok {
			return fmt.Errorf("bus %q is not declared", name)
		}
		bus, err := ss.openBus(bc)
		if err != nil {
			return fmt.Errorf("bus %s: %w", name, err)
		}
		ss.buses[name] = bus
	}
	return nil
}

// broken stands in for a station whose new definition could not be
// opened: faulted, so it takes no session, until a corrected
// configuration or a restart.
type broken struct {
	number string
	why    string
}

func (b broken) Number() string { return b.number }
func (b broken) SetContactor(_ context.Context, on bool) error {
	if on {
		return hal.ErrFaulted
	}
	return nil
}
func (b broken) Read() hal.Reading {
	return hal.Reading{CP: hal.CPF, Fault: b.why, At: time.Now()}
}
func (b broken) Changes() <-chan struct{} { return nil }
func (b broken) Halt() error              { return nil }
func (b broken) Close() error             { return nil }
