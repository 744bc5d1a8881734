package edge

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/sitelink/sitelink/daemon/config"
	"github.com/sitelink/sitelink/hal"
	"github.com/sitelink/sitelink/hal/modbus"
	"github.com/sitelink/sitelink/hal/sim"
)

// The station set. It is built at start-up and changed only on the engine
// goroutine (a configuration that redefines stations), under hwMu; the
// engine reads it without the lock, every other goroutine with it.

// built is one station's hardware as buildStation made it.
type built struct {
	st    hal.Station
	sim   *sim.Station  // set for sim stations (the local API drives them)
	meter *modbus.Meter // a meter the daemon polls (sim and gpio stations)
}

// buildStation opens the hardware of one station definition; its buses
// must be open. readMeter takes one meter reading before returning (the
// start-up reconcile needs the energy a meter vouches for).
func (d *Daemon) buildStation(sc config.Station, readMeter bool) (built, error) {
	var b built
	if st, ok := d.o.Stations[sc.Number]; ok {
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
		b.st, err = d.openGPIO(sc)
	case config.DriverModbus:
		b.st, err = d.openModbus(sc)
	default:
		err = fmt.Errorf("driver %q not supported by this build", sc.Driver)
	}
	if err != nil {
		return b, err
	}
	// A meter block gives a sim or gpio station its energy (a modbus
	// controller polls its own).
	if sc.Meter != nil && sc.Driver != config.DriverModbus {
		m, err := d.newMeter(sc)
		if err != nil {
			_ = b.st.Close()
			return b, fmt.Errorf("meter: %w", err)
		}
		b.meter = m
		b.st = metered{Station: b.st, m: m}
		if readMeter {
			ctx, cancel := context.WithTimeout(context.Background(), 2*max(d.busTimeout(sc.Meter.Bus), time.Second))
			_, _ = m.ReadOnce(ctx)
			cancel()
		}
	}
	return b, nil
}

// install puts a built station in the set (callers hold hwMu or run
// before anything else does).
func (d *Daemon) install(sc config.Station, b built) {
	d.stations[sc.Number] = b.st
	if b.sim != nil {
		d.sims[sc.Number] = b.sim
	} else {
		delete(d.sims, sc.Number)
	}
	d.meterOf[sc.Number] = b.meter
	d.builtFrom[sc.Number] = sc
	if !slices.Contains(d.order, sc.Number) {
		d.order = append(d.order, sc.Number)
	}
}

// startStation runs what a station needs while the daemon runs: its change
// watcher and its meter's polling loop, stopped by the returned context's
// cancel (kept in runStop).
func (d *Daemon) startStation(n string) {
	ctx, cancel := context.WithCancel(d.runCtx)
	d.runStop[n] = cancel
	st, m := d.stations[n], d.meterOf[n]
	d.spawn(func() {
		for {
			select {
			case <-st.Changes():
				d.eng.changes.push(n)
			case <-ctx.Done():
				return
			}
		}
	})
	if m != nil {
		d.spawn(func() { m.Run(ctx) })
	}
}

// stationList returns the station numbers in order and their drivers, for
// goroutines other than the engine's.
func (d *Daemon) stationList() ([]string, map[string]hal.Station) {
	d.hwMu.RLock()
	defer d.hwMu.RUnlock()
	m := make(map[string]hal.Station, len(d.stations))
	for k, v := range d.stations {
		m[k] = v
	}
	return slices.Clone(d.order), m
}

// stationCount is how many stations the daemon drives.
func (d *Daemon) stationCount() int {
	d.hwMu.RLock()
	defer d.hwMu.RUnlock()
	return len(d.order)
}

// stationDriver is the configured driver of an installed station.
func (d *Daemon) stationDriver(n string) string {
	d.hwMu.RLock()
	defer d.hwMu.RUnlock()
	return d.builtFrom[n].Driver
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

// pendingChange is a configuration change to stations that waits for them
// to be free.
type pendingChange struct {
	stations map[string]bool // to rebuild, add or remove
	buses    map[string]bool // to reopen or close: their stations go together
}

// queueStations records that stations (and buses) changed with the
// configuration now running, then applies what it can at once.
func (e *engine) queueStations(stations []string, old, next *config.Edge, now time.Time) {
	for _, n := range stations {
		e.pending.stations[n] = true
	}
	for _, b := range old.Buses {
		if nb, ok := next.Bus(b.Name); !ok || nb != b {
			e.pending.buses[b.Name] = true
		}
	}
	e.applyStations(now)
	e.d.fleet.stationsChanged(e.pendingStations())
}

// pendingStations lists the stations still waiting, sorted.
func (e *engine) pendingStations() []string {
	out := make([]string, 0, len(e.pending.stations))
	for n := range e.pending.stations {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

// applyStations rebuilds the pending stations that hold no session. A
// station whose bus is reopened goes with every other station on it, so
// they wait for the last of them.
func (e *engine) applyStations(now time.Time) {
	if len(e.pending.stations) == 0 {
		return
	}
	open, err := e.activeSessions()
	if err != nil {
		e.log.Error("station change: list sessions", "err", err)
		return
	}
	busy := map[string]bool{}
	for _, s := range open {
		if s.State.Active() {
			busy[s.Station] = true
		}
	}
	cfg := e.d.conf()
	usesBus := func(n string) bool {
		for _, sc := range []config.Station{e.d.builtFrom[n], stationOf(cfg, n)} {
			for _, b := range sc.Buses() {
				if e.pending.buses[b] {
					return true
				}
			}
		}
		return false
	}
	ready := map[string]bool{}
	busGroupBusy := false
	for n := range e.pending.stations {
		if busy[n] {
			busGroupBusy = busGroupBusy || usesBus(n)
			continue
		}
		ready[n] = true
	}
	// Every station on a bus to reopen, pending or not, must be idle.
	for n := range e.d.stations {
		if usesBus(n) && busy[n] {
			busGroupBusy = true
		}
	}
	reopen := len(e.pending.buses) > 0 && !busGroupBusy
	for n := range ready {
		if usesBus(n) && !reopen {
			delete(ready, n)
		}
	}
	if reopen {
		for n := range e.d.stations {
			if usesBus(n) {
				ready[n] = true // unchanged itself, but its bus is replaced
			}
		}
	}
	if len(ready) == 0 {
		return
	}
	var buses []string
	if reopen {
		for b := range e.pending.buses {
			buses = append(buses, b)
		}
	}
	e.d.replaceStations(ready, buses)
	for n := range ready {
		delete(e.pending.stations, n)
		e.seen[n] = hal.Reading{}
		if _, ok := e.d.stations[n]; ok {
			e.changes.push(n)
		} else {
			delete(e.seen, n)
		}
	}
	if reopen {
		clear(e.pending.buses)
	}
	e.log.Info("stations reconfigured", "stations", sortedKeys(ready), "waiting", e.pendingStations())
	e.d.fleet.stationsChanged(e.pendingStations())
}

// replaceStations closes the named stations (and buses), opens what the
// running configuration defines for them and drops the rest. Runs on the
// engine goroutine with the stations idle.
func (d *Daemon) replaceStations(nums map[string]bool, buses []string) {
	cfg := d.conf()
	d.hwMu.Lock()
	defer d.hwMu.Unlock()
	for n := range nums {
		if stop := d.runStop[n]; stop != nil {
			stop()
			delete(d.runStop, n)
		}
		st, ok := d.stations[n]
		if !ok {
			continue
		}
		if _, kept := d.o.Stations[n]; kept {
			continue // supplied by the caller, not ours to close
		}
		if err := st.Close(); err != nil {
			d.log.Warn("close station", "station", n, "err", err)
		}
	}
	for _, name := range buses {
		if b := d.buses[name]; b != nil {
			if err := b.Close(); err != nil {
				d.log.Warn("close bus", "bus", name, "err", err)
			}
			delete(d.buses, name)
		}
	}
	var order []string
	for _, sc := range cfg.Stations {
		if !nums[sc.Number] {
			if _, ok := d.stations[sc.Number]; ok {
				order = append(order, sc.Number)
			}
			continue
		}
		order = append(order, sc.Number)
		var b built
		err := d.openStationBuses(cfg, sc)
		if err == nil {
			b, err = d.buildStation(sc, false)
		}
		if err != nil {
			d.log.Error("station change: cannot open the new definition; the station stays out of service", "station", sc.Number, "err", err)
			b = built{st: broken{number: sc.Number, why: "reconfiguration failed: " + err.Error()}}
		}
		d.install(sc, b)
		if err := b.st.Halt(); err != nil {
			d.log.Error("halt reconfigured station", "station", sc.Number, "err", err)
		}
		d.startStation(sc.Number)
	}
	// Stations removed from the configuration, and those not yet free to
	// change, keep their place after the configured ones.
	for _, n := range d.order {
		if slices.Contains(order, n) {
			continue
		}
		if nums[n] {
			delete(d.stations, n)
			delete(d.sims, n)
			delete(d.meterOf, n)
			delete(d.builtFrom, n)
			continue
		}
		order = append(order, n)
	}
	d.order = order
}

// openStationBuses opens the buses a station needs that are not open yet.
func (d *Daemon) openStationBuses(cfg *config.Edge, sc config.Station) error {
	for _, name := range sc.Buses() {
		if d.buses[name] != nil {
			continue
		}
		bc, ok := cfg.Bus(name)
		if !ok {
			return fmt.Errorf("bus %q is not declared", name)
		}
		bus, err := openBus(bc, d)
		if err != nil {
			return fmt.Errorf("bus %s: %w", name, err)
		}
		d.buses[name] = bus
	}
	return nil
}

func stationOf(cfg *config.Edge, n string) config.Station {
	sc, _ := cfg.Station(n)
	return sc
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
