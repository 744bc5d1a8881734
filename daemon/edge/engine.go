package edge

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/sitelink/sitelink/daemon/billing"
	"github.com/sitelink/sitelink/daemon/config"
	"github.com/sitelink/sitelink/daemon/guard"
	"github.com/sitelink/sitelink/daemon/metrics"
	"github.com/sitelink/sitelink/daemon/queue"
	"github.com/sitelink/sitelink/daemon/retry"
	"github.com/sitelink/sitelink/daemon/wire"
	"github.com/sitelink/sitelink/hal"
	"github.com/sitelink/sitelink/store"
)

// tick is how often the engine looks at timers and energy. Station changes
// wake it at once; the tick only drives timeouts and energy bookkeeping.
const tick = 250 * time.Millisecond

// engine owns every session transition. It runs on one goroutine, so a
// session is never changed by two parties at once; store commits serialize
// the rest. It is built from the values it needs (engineDeps), never with
// a pointer back to the daemon, so its decisions can be driven directly
// in tests: a real store, fake stations, no broker.
type engine struct {
	engineDeps

	out *queue.Queue[outbound] // replies for the replier goroutine

	// last seen station state, for station events and edge detection.
	seen map[string]hal.Reading
	// lastCheckpoint per session: when energy was last persisted.
	lastCheckpoint map[string]time.Time
	// retryStop per session: when a contactor that would not open is
	// tried again, and the backoff so far.
	retryStop map[string]stopRetry
	// reserved are the stations held for a Device Start between its
	// InfoQuery and its TransactionNotify (device.go).
	reserved reservations
	// lastHealth is when the last health event was queued (health.go).
	lastHealth time.Time
	// pending are station changes of a new configuration that wait for
	// their stations to be free (reconfig.go).
	pending pendingChange
	// recent answers re-deliveries of commands that changed nothing
	// (recent.go); commits counts the ledger commits, so that handle
	// tells a command that acted from one that did not.
	recent  *recent
	commits uint64

	stopOnce sync.Once
	stopReq  chan struct{}
	stopped  chan struct{}
}

// engineDeps is what the engine is built with. Queues are made by the
// daemon before the engine, so paho handlers, station watchers and gpio
// buttons can hand work over from the first moment.
type engineDeps struct {
	log      *slog.Logger
	st       *store.Store
	stations *stationSet
	// cfg is the running configuration; the engine is its only writer
	// once running (reconfigure), everyone else Loads it.
	cfg    *atomic.Pointer[config.Edge]
	topics wire.Topics

	cmds    *queue.Queue[inbound] // commands from the broker (paho handler)
	calls   *calls                // work from the local API, buttons, the fleet
	changes *queue.Queue[string]  // station numbers whose state changed

	poke      func()          // new events are in the outbox (wakes the pump)
	connected func() bool     // the MQTT link is up (health events wait for it)
	rebirth   func()          // republish the retained online state
	waiting   chan []string   // station changes still waiting, for the fleet (latest wins)
	beat      func(time.Time) // every tick: watchdog and status line
	// noops counts the commands answered without acting and logs them
	// once per interval (nil: counted, not logged).
	noops *guard.Refusals

	cortinaRefused *cortinaRefusals // Cortina cancels refused (cancel.go), for the metrics
	answers        *lastAnswers     // Nayax's last answer of each kind (payments.go), for the metrics
	// timings holds the latency histograms the engine and the replier
	// record (commands.go), for the metrics.
	timings *metrics.Set
}

// calls carries work from other goroutines (local API, gpio buttons, the
// fleet) to the engine goroutine. It exists before the engine, so a button
// pressed during start-up waits for it, and it is closed when the engine
// stops (or never ran), so no caller waits forever.
type calls struct {
	q    *queue.Queue[func(*engine)]
	done chan struct{}
	once sync.Once
}

func newCalls() *calls {
	return &calls{q: queue.New[func(*engine)](), done: make(chan struct{})}
}

// errShutdown: the engine is gone (or never came), nothing was done.
var errShutdown = errors.New("daemon is shutting down")

// do runs f on the engine goroutine and waits for it (or ctx).
func (c *calls) do(ctx context.Context, f func(*engine)) error {
	done := make(chan struct{})
	c.q.Push(func(e *engine) { f(e); close(done) })
	select {
	case <-done:
		return nil
	case <-c.done:
		return errShutdown
	case <-ctx.Done():
		return ctx.Err()
	}
}

// close fails every waiting and later call.
func (c *calls) close() { c.once.Do(func() { close(c.done) }) }

// stopRetry is when a contactor that would not open is tried again, and
// how many times it was tried.
type stopRetry struct {
	at time.Time
	n  int
}

// contactorRetry spaces the attempts to open a contactor that would not:
// 1 s, 2 s, 4 s … a minute, so a welded contactor does not stall every
// other command (switching runs on the engine goroutine).
var contactorRetry = retry.Backoff{Min: time.Second, Max: time.Minute}

// stuckStopLimit is how many failed attempts to open a contactor a stop
// waits before the money is decided anyway (on the energy frozen at the
// stop): a welded contactor must not hold the customer's money.
const stuckStopLimit = 5

func newEngine(d engineDeps) *engine {
	if d.poke == nil {
		d.poke = func() {}
	}
	if d.connected == nil {
		d.connected = func() bool { return false }
	}
	if d.rebirth == nil {
		d.rebirth = func() {}
	}
	if d.beat == nil {
		d.beat = func(time.Time) {}
	}
	if d.noops == nil {
		d.noops = guard.NewRefusals(nil, 0, "", 0)
	}
	if d.answers == nil {
		d.answers = newLastAnswers()
	}
	if d.cortinaRefused == nil {
		d.cortinaRefused = &cortinaRefusals{}
	}
	if d.timings == nil {
		d.timings = &metrics.Set{}
	}
	return &engine{
		recent:         newRecent(recentNoops),
		engineDeps:     d,
		out:            queue.New[outbound](),
		retryStop:      map[string]stopRetry{},
		reserved:       reservations{},
		seen:           map[string]hal.Reading{},
		pending:        pendingChange{stations: map[string]bool{}, buses: map[string]bool{}},
		lastCheckpoint: map[string]time.Time{},
		stopReq:        make(chan struct{}),
		stopped:        make(chan struct{}),
	}
}

// conf is the running configuration; never modify it.
func (e *engine) conf() *config.Edge { return e.cfg.Load() }

func (e *engine) run(ctx context.Context) {
	defer close(e.stopped)
	defer e.calls.close()
	defer func() {
		// A bug must not leave energy flowing: open every contactor,
		// then let the process die (systemd restarts it).
		if p := recover(); p != nil {
			e.stations.halt()
			panic(p)
		}
	}()
	t := time.NewTicker(tick)
	defer t.Stop()
	e.beat(time.Now())
	for {
		select {
		case <-e.stopReq:
			e.halt(time.Now())
			return
		case <-ctx.Done():
			e.halt(time.Now())
			return
		case <-e.changes.Wake():
			e.stationChanges(time.Now())
		case <-e.cmds.Wake():
			for _, in := range e.cmds.Drain() {
				e.handle(in)
			}
		case <-e.calls.q.Wake():
			for _, f := range e.calls.q.Drain() {
				f(e)
			}
		case now := <-t.C:
			e.timers(now)
			e.beat(now)
		}
	}
}

// shutdown asks the engine to open every contactor, record the sessions it
// interrupts, and stop; it returns when that is committed.
func (e *engine) shutdown() {
	e.stopOnce.Do(func() { close(e.stopReq) })
	<-e.stopped
}

// commit runs fn in one store transaction and wakes the pump if events were
// queued. Every transition goes through here: committed before anyone is
// told.
func (e *engine) commit(fn func(tx *store.Tx) error) error {
	err := e.st.Update(fn)
	if err == nil {
		e.commits++
		e.poke()
	}
	return err
}

// emit queues an event in the outbox inside tx.
func (e *engine) emit(tx *store.Tx, typ string, body any, now time.Time) error {
	node := e.conf().Node.ID
	_, err := tx.Enqueue(node, typ, now, func(seq uint64, _ string) ([]byte, error) {
		return wire.EventPayload(node, seq, typ, now.UTC(), body)
	})
	return err
}

// transition moves s to state `to` inside tx and emits the session event.
// A move the lifecycle table does not allow is a bug: it is logged loudly
// and refused (the transaction rolls back, the session stays as it was),
// never a panic that would stop the engine and every station with it.
func (e *engine) transition(tx *store.Tx, s *store.Session, to store.State, reason string, now time.Time) error {
	from := s.State
	if err := store.CheckTransition(from, to); err != nil {
		e.log.Error("BUG: refused session transition", "spark_transaction_id", s.SparkTransactionID,
			"from", string(from), "to", string(to), "reason", reason, "err", err)
		return err
	}
	if s.Tariff == nil {
		// The first record of a session fixes its price, exactly.
		t, err := e.conf().Tariff.Exact()
		if err != nil {
			e.log.Error("BUG: the configured tariff is not exact", "err", err)
			return err
		}
		s.Tariff = &t
	}
	s.State = to
	s.UpdatedAt = now.UTC()
	s.History = append(s.History, store.Transition{State: to, At: s.UpdatedAt, Reason: reason})
	if reason != "" && s.StopReason == "" && (to == store.Stopping || to == store.Stopped || to == store.Interrupted || to == store.Closed) {
		s.StopReason = reason
	}
	if err := tx.PutSession(s); err != nil {
		return err
	}
	// The session is marshalled with its event, in one pass (wire.SessionEventOf).
	ev := wire.SessionEventOf[eventSession]{From: string(from), To: string(to), Reason: reason, Session: publicSession(*s, e.sessionTariff(s))}
	return e.emit(tx, wire.EventSession, ev, now)
}

// publicSession strips what must not leave the controller (card digest
// and last digits) and what only operators need (history), and adds the
// money as decimals (t is the session's tariff).
func publicSession(s store.Session, t store.Tariff) eventSession {
	s.CardDigest = ""
	s.CardLast4 = ""
	s.History = nil
	if s.Request != nil {
		r := *s.Request
		r.Body = nil // the event that carries it is enough
		s.Request = &r
	}
	p := eventSession{Session: s,
		AuthorizedAmount: json.Number(store.FormatDecimal(s.AuthorizedMinor, t.DecimalPlace)),
		Amount:           json.Number(store.FormatDecimal(s.AmountMinor, t.DecimalPlace)),
	}
	if s.Tariff != nil {
		p.Tariff = &eventTariff{Tariff: *s.Tariff,
			PricePerKWh: json.Number(store.FormatDecimal(s.Tariff.PricePerKWhMicro, store.PriceDecimals)),
			SessionFee:  json.Number(store.FormatDecimal(s.Tariff.SessionFeeMicro, store.PriceDecimals)),
		}
	}
	return p
}

// eventSession is the session a `session` event carries: the ledger's
// record with its integer money (authorized_minor, amount_minor;
// tariff.price_per_kwh_micro, session_fee_micro) and, for the consumers
// of earlier releases, the same money as exact decimals under the names
// it had when the ledger kept floats (authorized_amount, amount; tariff
// price_per_kwh, session_fee), with the same JSON numbers ("0.59").
type eventSession struct {
	store.Session
	AuthorizedAmount json.Number  `json:"authorized_amount"`
	Amount           json.Number  `json:"amount"`
	Tariff           *eventTariff `json:"tariff,omitempty"` // over Session.Tariff
}

type eventTariff struct {
	store.Tariff
	PricePerKWh json.Number `json:"price_per_kwh"`
	SessionFee  json.Number `json:"session_fee"`
}

// cardDigest keys the card hash so the ledger never holds a value that
// could be matched against a card outside this controller. The CardHash
// of a command is already the relay's keyed hash of Nayax's
// (nayax.CardKey.Hash): this is a second key on top, so that what the
// ledger holds is not what travelled on MQTT either.
func cardDigest(key []byte, cardHash string) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(cardHash))
	return hex.EncodeToString(m.Sum(nil))
}

// sessionEnergy is the session's energy from a meter reading: the delta
// since the start, never negative, never less than what was already
// recorded (a meter replaced or reset mid-session does not erase energy).
func sessionEnergy(s *store.Session, r hal.Reading) float64 {
	// 0.1 Wh is finer than any billing meter; more digits are noise.
	delta := math.Round((r.EnergyWh-s.MeterStartWh)*10) / 10
	if delta < s.EnergyWh {
		return s.EnergyWh
	}
	return delta
}

// reconcile runs at start-up, contactors already open: every session that
// was active or interrupted ends now (the daemon cannot know the vehicle
// and card are still there), with the energy the meter vouches for.
func (e *engine) reconcile(now time.Time) error {
	open, err := e.activeSessions()
	if err != nil {
		return err
	}
	for i := range open {
		s := &open[i]
		st, ok := e.stations.get(s.Station)
		err := e.commit(func(tx *store.Tx) error {
			if s.State == store.Requested {
				// Nothing was switched on and no meter reading was
				// taken at its start: it has no energy.
				// A late TransactionCallback for it is cancelled (authorize).
				s.Request = nil
				return e.transition(tx, s, store.Closed, billing.StopInterrupted, now)
			}
			if ok {
				s.EnergyWh = sessionEnergy(s, st.Read())
			}
			if s.State != store.Interrupted {
				if err := e.transition(tx, s, store.Interrupted, billing.StopDaemonRestart, now); err != nil {
					return err
				}
			}
			// Ended by the same settle-or-cancel rule as any stop, in the
			// same transaction.
			if err := e.transition(tx, s, store.Stopped, billing.StopInterrupted, now); err != nil {
				return err
			}
			return e.endOfService(tx, s, now)
		})
		var refused *store.TransitionError
		if errors.As(err, &refused) {
			// A bug (transition logged it): one odd session must not
			// keep the site down. It stays as it is for a human.
			continue
		}
		if err != nil {
			return err
		}
		e.log.Info("ended interrupted session", "spark_transaction_id", s.SparkTransactionID, "station", s.Station, "energy_wh", s.EnergyWh)
	}
	e.stations.each(func(n string, st hal.Station) { e.seen[n] = st.Read() })
	return nil
}

// halt is the shutdown path: contactors open first, then every running
// session is recorded as interrupted.
func (e *engine) halt(now time.Time) {
	e.stations.halt()
	open, err := e.activeSessions()
	if err != nil {
		e.log.Error("list sessions at shutdown", "err", err)
		return
	}
	for i := range open {
		s := &open[i]
		if s.State == store.Interrupted || s.State == store.Requested {
			continue // nothing was switched on for these
		}
		err := e.commit(func(tx *store.Tx) error {
			if st, ok := e.stations.get(s.Station); ok {
				s.EnergyWh = sessionEnergy(s, st.Read())
			}
			return e.transition(tx, s, store.Interrupted, billing.StopShutdown, now)
		})
		if err != nil {
			e.log.Error("record interrupted session", "spark_transaction_id", s.SparkTransactionID, "err", err)
		}
	}
}

// stationChanges handles CP, contactor and fault changes.
func (e *engine) stationChanges(now time.Time) {
	seen := map[string]bool{}
	for _, n := range e.changes.Drain() {
		if seen[n] {
			continue
		}
		seen[n] = true
		e.stationChanged(n, now)
	}
}

func (e *engine) stationChanged(n string, now time.Time) {
	st, ok := e.stations.get(n)
	if !ok {
		return // removed by a new configuration after it signalled
	}
	r := st.Read()
	prev := e.seen[n]
	if prev.CP == r.CP && prev.Contactor == r.Contactor && prev.Fault == r.Fault {
		return
	}
	var s store.Session
	var found bool
	err := e.commit(func(tx *store.Tx) error {
		if err := e.emit(tx, wire.EventStation, wire.StationEvent{Number: n, CPState: string(r.CP), Contactor: r.Contactor, Fault: r.Fault, EnergyWh: r.EnergyWh, PowerW: r.PowerW}, now); err != nil {
			return err
		}
		var err error
		s, err = tx.ActiveSession(n)
		if errors.Is(err, store.ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		found = true
		if s.State == store.Authorized && (r.CP.Charging() || r.PowerW > 0) {
			s.EnergyWh = sessionEnergy(&s, r)
			return e.transition(tx, &s, store.Charging, "vehicle drawing energy", now)
		}
		return nil
	})
	if err != nil {
		// Not marked as seen: the next change or tick tries again.
		e.log.Error("record station change", "station", n, "err", err)
		return
	}
	e.seen[n] = r
	if !found {
		return
	}
	switch {
	case r.Fault != "" && (s.State == store.Authorized || s.State == store.Charging):
		e.stop(&s, billing.StopFault+": "+r.Fault, now)
	case prev.CP.VehiclePresent() && r.CP == hal.CPA && (s.State == store.Authorized || s.State == store.Charging):
		e.stop(&s, billing.StopUnplugged, now)
	}
}

// timers: plug timeout, energy checkpoints, and stuck stops.
func (e *engine) timers(now time.Time) {
	e.healthTick(now)
	e.applyStations(now)
	// Meters fault and recover without a change notification.
	order, _ := e.stations.list()
	for _, n := range order {
		e.stationChanged(n, now)
	}
	e.retryRequests(now)
	open, err := e.activeSessions()
	if err != nil {
		e.log.Error("list sessions", "err", err)
		return
	}
	e.unsupervised(open, now)
	plug := time.Duration(e.conf().Policy.PlugTimeout)
	every := time.Duration(e.conf().Policy.EnergyCheckpoint)
	for i := range open {
		s := &open[i]
		st, ok := e.stations.get(s.Station)
		if !ok {
			continue
		}
		r := st.Read()
		if (s.State == store.Authorized || s.State == store.Charging) && !r.Contactor {
			// The contactor opened without a stop (a driver's own
			// protection, or a stop whose commit failed): the session
			// cannot be delivering energy, so end it.
			e.stop(s, billing.StopContactorOpen, now)
			continue
		}
		if (s.State == store.Authorized || s.State == store.Charging) && e.overBudget(s, r) {
			// Checked every tick on the live meter: the overshoot is at
			// most one tick's energy, and the settlement is capped anyway.
			e.stop(s, budgetReason(s, sessionEnergy(s, r), e.sessionTariff(s), e.conf().Policy.BudgetStopAt), now)
			continue
		}
		switch s.State {
		case store.Authorized:
			if plug > 0 && now.Sub(enteredAt(s)) >= plug {
				reason := billing.StopPlugTimeout
				if r.CP.VehiclePresent() {
					reason = billing.StopNoDraw
				}
				e.stop(s, reason, now)
			}
		case store.Stopping:
			// A stop whose contactor would not open: retry with backoff,
			// so a welded contactor does not stall every other command.
			rt := e.retryStop[s.SparkTransactionID]
			if now.Before(rt.at) {
				continue
			}
			rt.n++
			rt.at = now.Add(contactorRetry.Nominal(rt.n))
			e.retryStop[s.SparkTransactionID] = rt
			opened := e.openContactor(s) == nil
			if opened || rt.n >= stuckStopLimit {
				if !opened {
					// The station-level check below keeps trying to open it.
					e.log.Error("contactor will not open; deciding the money on the energy at the stop", "station", s.Station, "spark_transaction_id", s.SparkTransactionID, "attempts", rt.n)
				}
				delete(e.retryStop, s.SparkTransactionID)
				if err := e.commit(func(tx *store.Tx) error { return e.recordStop(tx, s, "", true, now) }); err != nil {
					e.log.Error("record stop", "spark_transaction_id", s.SparkTransactionID, "err", err)
				}
			}
		case store.Charging:
			last, ok := e.lastCheckpoint[s.SparkTransactionID]
			if !ok {
				e.lastCheckpoint[s.SparkTransactionID] = now
				continue
			}
			if now.Sub(last) < every {
				continue
			}
			e.lastCheckpoint[s.SparkTransactionID] = now
			energy := sessionEnergy(s, r)
			if energy == s.EnergyWh {
				continue
			}
			err := e.commit(func(tx *store.Tx) error {
				cur, err := tx.Session(s.SparkTransactionID)
				if err != nil {
					return err
				}
				cur.EnergyWh = max(cur.EnergyWh, energy)
				cur.UpdatedAt = now.UTC()
				return tx.PutSession(&cur)
			})
			if err != nil {
				e.log.Error("energy checkpoint", "spark_transaction_id", s.SparkTransactionID, "err", err)
			}
		}
	}
}

// overBudget reports whether the price of the session's energy so far, at
// the tariff it started with, has reached policy.budget_stop_at percent of
// what the card holder authorized.
// budgetReason is the stop reason of a budget stop: the energy at the
// stop and the overshoot (energy past the point where the price reached
// policy.budget_stop_at), so that an operator sees how close the check
// runs; the settlement is capped at the authorized amount whatever it is.
func budgetReason(s *store.Session, energyWh float64, t store.Tariff, stopAt float64) string {
	over := energyWh - billing.BudgetEnergyWh(s.AuthorizedMinor, t, stopAt)
	if !(over > 0) {
		over = 0
	}
	return fmt.Sprintf("%s (%.1f Wh, overshoot %.1f Wh past policy.budget_stop_at %g %% of %s)",
		billing.StopBudget, energyWh, over, stopAt, store.FormatFixed(s.AuthorizedMinor, t.DecimalPlace))
}

func (e *engine) overBudget(s *store.Session, r hal.Reading) bool {
	return billing.BudgetReached(sessionEnergy(s, r), s.AuthorizedMinor, e.sessionTariff(s), e.conf().Policy.BudgetStopAt)
}

// sessionTariff is the tariff that prices s and gives its amounts' decimal
// places: its own, or the configured one for a session recorded before
// sessions kept their tariff (or not recorded yet).
func (e *engine) sessionTariff(s *store.Session) store.Tariff {
	if s.Tariff != nil {
		return *s.Tariff
	}
	t, err := e.conf().Tariff.Exact()
	if err != nil {
		// Validate refuses such a configuration: unreachable.
		e.log.Error("BUG: the configured tariff is not exact", "err", err)
	}
	return t
}

// stop ends an active session: contactor open first (safe), then one
// commit records stopping→stopped with the final energy. If the contactor
// does not confirm, the session stays `stopping` and the timer retries.
func (e *engine) stop(s *store.Session, reason string, now time.Time) (stopped bool, err error) {
	herr := e.openContactor(s)
	err = e.commit(func(tx *store.Tx) error { return e.recordStop(tx, s, reason, herr == nil, now) })
	return herr == nil, err
}

// openContactor opens the session's contactor and waits for the driver's
// confirmation.
func (e *engine) openContactor(s *store.Session) error {
	delete(e.lastCheckpoint, s.SparkTransactionID)
	st, ok := e.stations.get(s.Station)
	if !ok {
		// A station no longer configured: nothing can confirm it is off.
		e.log.Error("session on a station that is not configured", "station", s.Station, "spark_transaction_id", s.SparkTransactionID)
		return errNoStation
	}
	ctx, cancel := context.WithTimeout(context.Background(), e.contactorTimeout())
	defer cancel()
	if err := st.SetContactor(ctx, false); err != nil {
		e.log.Error("contactor did not open", "station", s.Station, "err", err)
		return err
	}
	return nil
}

// recordStop records the stop inside tx: stopping, and stopped once the
// contactor is confirmed open, with the energy the meter shows now; then,
// in the same transaction, the settle-or-cancel decision (endOfService).
func (e *engine) recordStop(tx *store.Tx, s *store.Session, reason string, opened bool, now time.Time) error {
	return e.recordStopThen(tx, s, reason, opened, true, now)
}

// recordStopThen is recordStop with the end of service optional: a
// session Nayax cancelled itself has nothing to settle or cancel.
func (e *engine) recordStopThen(tx *store.Tx, s *store.Session, reason string, opened, settle bool, now time.Time) error {
	cur, err := tx.Session(s.SparkTransactionID)
	if err != nil {
		return err
	}
	if st, ok := e.stations.get(cur.Station); ok && cur.State != store.Stopping {
		// Energy is final when the stop is decided: a contactor that is
		// slow to open does not bill the customer for more.
		cur.EnergyWh = sessionEnergy(&cur, st.Read())
	}
	if cur.State != store.Stopping {
		if reason == "" {
			reason = "stop"
		}
		if err := e.transition(tx, &cur, store.Stopping, reason, now); err != nil {
			return err
		}
	}
	if opened {
		if err := e.transition(tx, &cur, store.Stopped, "", now); err != nil {
			return err
		}
		if settle {
			if err := e.endOfService(tx, &cur, now); err != nil {
				return err
			}
		}
	}
	*s = cur
	return nil
}

func (e *engine) contactorTimeout() time.Duration {
	if d := time.Duration(e.conf().Policy.ContactorTimeout); d > 0 {
		return d
	}
	return 2 * time.Second
}

func newSparkID() string { return uuid.NewString() }

func jsonMarshal(v any) ([]byte, error) { return json.Marshal(v) }

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }

// errNoStation: the session's station is not in the configuration.
var errNoStation = errors.New("station not configured")

// unsupervised opens any contactor that is closed while no session holds
// its station (a stop decided on a welded contactor, a driver that closed
// on its own): nothing delivers energy unsupervised. Retried with backoff.
func (e *engine) unsupervised(open []store.Session, now time.Time) {
	held := map[string]bool{}
	for _, s := range open {
		if s.State.Active() {
			held[s.Station] = true
		}
	}
	order, sts := e.stations.list()
	for _, n := range order {
		st := sts[n]
		key := "station/" + n
		if held[n] || !st.Read().Contactor {
			delete(e.retryStop, key)
			continue
		}
		rt := e.retryStop[key]
		if now.Before(rt.at) {
			continue
		}
		rt.n++
		rt.at = now.Add(contactorRetry.Nominal(rt.n))
		e.retryStop[key] = rt
		ctx, cancel := context.WithTimeout(context.Background(), e.contactorTimeout())
		err := st.SetContactor(ctx, false)
		cancel()
		if err != nil {
			e.log.Error("contactor closed with no session and will not open", "station", n, "err", err)
		}
	}
}

// find reads one session in a read-only ledger transaction.
func (e *engine) find(get func(*store.Tx) (store.Session, error)) (store.Session, error) {
	var s store.Session
	err := e.st.View(func(tx *store.Tx) error {
		var err error
		s, err = get(tx)
		return err
	})
	return s, err
}

// activeSessions lists the sessions holding a station, and interrupted
// ones.
func (e *engine) activeSessions() (open []store.Session, err error) {
	err = e.st.View(func(tx *store.Tx) error {
		open, err = tx.ActiveSessions()
		return err
	})
	return open, err
}

// enteredAt is when the session entered its current state.
func enteredAt(s *store.Session) time.Time {
	if n := len(s.History); n > 0 && s.History[n-1].State == s.State {
		return s.History[n-1].At
	}
	return s.UpdatedAt
}

func hmacEqual(a, b string) bool { return hmac.Equal([]byte(a), []byte(b)) }

// terminalOfSession is the terminal a session was authorized at, as the
// session recorded it, for matching later calls against it.
func terminalOfSession(s *store.Session) config.Terminal {
	return config.Terminal{MachineID: s.MachineID, HwSerial: s.HwSerial}
}
