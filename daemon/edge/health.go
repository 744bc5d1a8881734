package edge

import (
	"time"

	"github.com/sitelink/sitelink/daemon/wire"
	"github.com/sitelink/sitelink/store"
)

// healthInterval is how often the engine publishes a `health` event. A
// variable so tests can shorten it (set before the daemon starts).
var healthInterval = 5 * time.Minute

// healthEvent is the body of a `health` event: the essentials of
// GET /metrics, for fleets that watch MQTT rather than scrape sites.
type healthEvent struct {
	Connected       bool                `json:"connected"`
	OutboxDepth     int                 `json:"outbox_depth"`
	Stations        []healthStation     `json:"stations"`
	SessionsByState map[store.State]int `json:"sessions_by_state"`
}

type healthStation struct {
	Number  string `json:"number"`
	CPState string `json:"cp_state"`
	Fault   string `json:"fault,omitempty"` // why, while faulted
}

// healthTick runs on the engine's timer tick and queues a health event
// once healthInterval has passed since the last one (the first comes one
// interval after start).
//
// Nothing is queued while the broker is unreachable: a backlog of stale
// health reports would only delay the events that matter when the link
// returns. The next tick after reconnecting sends one at once, which
// also tells the fleet how deep the outbox got.
func (e *engine) healthTick(now time.Time) {
	if e.lastHealth.IsZero() {
		e.lastHealth = now
		return
	}
	if now.Sub(e.lastHealth) < healthInterval || !e.connected() {
		return
	}
	e.lastHealth = now
	h, err := e.health()
	if err != nil {
		e.log.Error("health event", "err", err)
		return
	}
	if err := e.commit(func(tx *store.Tx) error { return e.emit(tx, wire.EventHealth, h, now) }); err != nil {
		e.log.Error("health event", "err", err)
	}
}

func (e *engine) health() (healthEvent, error) {
	order, sts := e.stations.list()
	h := healthEvent{Connected: e.connected(), Stations: make([]healthStation, 0, len(order))}
	var err error
	if h.OutboxDepth, err = e.st.OutboxLen(); err != nil {
		return h, err
	}
	if h.SessionsByState, err = e.st.Counts(); err != nil {
		return h, err
	}
	for _, n := range order {
		r := sts[n].Read()
		h.Stations = append(h.Stations, healthStation{Number: n, CPState: string(r.CP), Fault: r.Fault})
	}
	return h, nil
}
