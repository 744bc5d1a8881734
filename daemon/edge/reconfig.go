package edge

import (
	"maps"
	"slices"
	"time"

	"github.com/sitelink/sitelink/daemon/config"
	"github.com/sitelink/sitelink/hal"
)

// reconfigure makes next the running configuration, on the engine
// goroutine so that no command sees half of it. Stations whose definition
// changed wait until no session holds them (applyStations on every tick).
func (e *engine) reconfigure(next *config.Edge, stations []string, now time.Time) {
	old := e.cfg.Swap(next)
	e.queueStations(stations, old, next, now)
}

// reportWaiting tells the fleet which station changes still wait: the
// newest list replaces one it has not read yet (the engine never blocks).
func (e *engine) reportWaiting() {
	if e.waiting == nil {
		return
	}
	w := e.pendingStations()
	select {
	case <-e.waiting:
	default:
	}
	e.waiting <- w
}

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
	e.reportWaiting()
}

// pendingStations lists the stations still waiting, sorted.
func (e *engine) pendingStations() []string {
	return slices.Sorted(maps.Keys(e.pending.stations))
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
	cfg := e.conf()
	usesBus := func(n string) bool {
		for _, sc := range []config.Station{e.stations.definition(n), stationOf(cfg, n)} {
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
	order, _ := e.stations.list()
	for _, n := range order {
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
		for _, n := range order {
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
	e.stations.replace(cfg, ready, buses)
	for n := range ready {
		delete(e.pending.stations, n)
		e.seen[n] = hal.Reading{}
		if _, ok := e.stations.get(n); ok {
			e.changes.Push(n)
		} else {
			delete(e.seen, n)
		}
	}
	if reopen {
		clear(e.pending.buses)
	}
	e.log.Info("stations reconfigured", "stations", slices.Sorted(maps.Keys(ready)), "waiting", e.pendingStations())
	e.reportWaiting()
}

func stationOf(cfg *config.Edge, n string) config.Station {
	sc, _ := cfg.Station(n)
	return sc
}
