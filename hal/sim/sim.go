package sim

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/sitelink/sitelink/hal"
)

// Sentinel errors of the simulated station.
var (
	// ErrInvalidPower means SetPower was given a negative or non-finite
	// power.
	ErrInvalidPower = errors.New("invalid power")
)

// DefaultNumber is the station number used when Config.Number is empty,
// so that a Station always has the non-empty number hal.Station promises.
const DefaultNumber = "1"

// Config describes a simulated station.
type Config struct {
	// Number is the station number (Nayax's ServiceStationNumber); empty
	// means DefaultNumber.
	Number string
	// VehiclePresent plugs a vehicle in from the start.
	VehiclePresent bool
	// PowerKW is the power the vehicle draws while charging; negative
	// or non-finite values mean 0.
	PowerKW float64
	// TimeScale is how many simulated seconds pass per real second for
	// the energy meter (the demo uses 60). Zero, negative or non-finite
	// means 1.
	TimeScale float64
	// ContactorDelay is how long the simulated contactor takes to move;
	// SetContactor waits that long (real time) before confirming.
	ContactorDelay time.Duration
	// Now is the clock for energy and Reading.At; nil means time.Now.
	// Tests pass a fake clock to make energy deterministic.
	Now func() time.Time
}

// Station is a simulated charging point. It is safe for concurrent use.
type Station struct {
	number    string
	timeScale float64
	delay     time.Duration
	now       func() time.Time
	changes   chan struct{}

	mu        sync.Mutex
	plugged   bool
	powerKW   float64
	contactor bool   // confirmed position
	target    bool   // commanded position
	gen       uint64 // increments with every command; a pending move applies only if still current
	stuck     bool
	fault     string
	closed    bool
	energyWh  float64
	last      time.Time // time up to which energyWh is integrated
}

var _ hal.Station = (*Station)(nil)

// New returns a simulated station in the safe state: contactor open.
func New(cfg Config) *Station {
	s := &Station{
		number:    cfg.Number,
		timeScale: cfg.TimeScale,
		delay:     cfg.ContactorDelay,
		now:       cfg.Now,
		changes:   make(chan struct{}, 1),
		plugged:   cfg.VehiclePresent,
		powerKW:   cfg.PowerKW,
	}
	if s.number == "" {
		s.number = DefaultNumber
	}
	if !(s.timeScale > 0) || math.IsInf(s.timeScale, 0) {
		s.timeScale = 1
	}
	if !validPower(s.powerKW) {
		s.powerKW = 0
	}
	if s.now == nil {
		s.now = time.Now
	}
	s.last = s.now()
	return s
}

func validPower(kw float64) bool { return kw >= 0 && !math.IsInf(kw, 0) }

// Number returns the configured station number.
func (s *Station) Number() string { return s.number }

// Changes delivers a coalesced notification whenever CP state, contactor
// or fault changed. Energy and power alone do not notify. The channel is
// never closed.
func (s *Station) Changes() <-chan struct{} { return s.changes }

// Read returns the current snapshot, integrating energy up to now.
func (s *Station) Read() hal.Reading {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.advanceLocked()
	return hal.Reading{
		CP:        s.cpLocked(),
		Contactor: s.contactor,
		EnergyWh:  s.energyWh,
		PowerW:    s.powerWLocked(),
		Fault:     s.fault,
		At:        now,
	}
}

// SetContactor commands the contactor and waits ContactorDelay (or ctx)
// for it to move. Closing fails with hal.ErrFaulted while faulted and
// hal.ErrClosed after Close; a stuck contactor yields hal.ErrNotConfirmed.
// If ctx ends first the move still completes in the background, as a real
// contactor whose coil was already switched would.
func (s *Station) SetContactor(ctx context.Context, on bool) error {
	s.mu.Lock()
	if on {
		if err := s.refuseCloseLocked(); err != nil {
			s.mu.Unlock()
			return err
		}
	}
	s.target = on
	s.gen++
	gen := s.gen
	if s.delay <= 0 {
		s.moveLocked(gen)
		err := s.resultLocked(on)
		s.mu.Unlock()
		return err
	}
	s.mu.Unlock()

	done := make(chan struct{})
	time.AfterFunc(s.delay, func() {
		s.mu.Lock()
		s.moveLocked(gen)
		s.mu.Unlock()
		close(done)
	})
	select {
	case <-done:
	case <-ctx.Done():
		return fmt.Errorf("set contactor %v: %w", on, ctx.Err())
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.resultLocked(on)
}

// refuseCloseLocked returns why the contactor may not close, if it may not.
func (s *Station) refuseCloseLocked() error {
	switch {
	case s.closed:
		return hal.ErrClosed
	case s.fault != "":
		return fmt.Errorf("%w: %s", hal.ErrFaulted, s.fault)
	}
	return nil
}

// moveLocked lets the contactor follow the command of generation gen,
// unless a newer command superseded it, the contactor is stuck, or a
// fault or Close since then forbids closing.
func (s *Station) moveLocked(gen uint64) {
	if gen != s.gen || s.stuck || s.contactor == s.target {
		return
	}
	if s.target && s.refuseCloseLocked() != nil {
		return
	}
	s.update(func() { s.contactor = s.target })
}

// resultLocked says whether the contactor is confirmed at on, and if not,
// why.
func (s *Station) resultLocked(on bool) error {
	if s.contactor == on {
		return nil
	}
	if on {
		if err := s.refuseCloseLocked(); err != nil {
			return err
		}
	}
	return fmt.Errorf("set contactor %v: %w", on, hal.ErrNotConfirmed)
}

// Halt opens the contactor.
func (s *Station) Halt() error {
	if err := s.SetContactor(context.Background(), false); err != nil {
		return fmt.Errorf("halt station %s: %w", s.number, err)
	}
	return nil
}

// Close halts the station; afterwards closing the contactor fails with
// hal.ErrClosed. Close may be called more than once.
func (s *Station) Close() error {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	return s.Halt()
}

// Plug connects the simulated vehicle.
func (s *Station) Plug() { s.mutate(func() { s.plugged = true }) }

// Unplug disconnects the simulated vehicle. The contactor stays where it
// is; the vehicle simply stops drawing power.
func (s *Station) Unplug() { s.mutate(func() { s.plugged = false }) }

// Fault puts the station in state F with the given reason and forces the
// contactor open, cancelling any pending move.
func (s *Station) Fault(reason string) {
	if reason == "" {
		reason = "simulated fault"
	}
	s.mutate(func() {
		s.fault = reason
		s.target = false
		s.gen++
		s.contactor = false
	})
}

// Clear ends a fault. The contactor stays open.
func (s *Station) Clear() { s.mutate(func() { s.fault = "" }) }

// SetPower sets the power the vehicle draws while charging, in kW. Zero
// makes a plugged vehicle with closed contactor fall back to state B.
func (s *Station) SetPower(kw float64) error {
	if !validPower(kw) {
		return fmt.Errorf("set power %v kW: %w", kw, ErrInvalidPower)
	}
	s.mutate(func() { s.powerKW = kw })
	return nil
}

// SetStuck makes the contactor stop following commands (or follow them
// again): SetContactor then returns hal.ErrNotConfirmed for any move.
func (s *Station) SetStuck(stuck bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stuck = stuck
}

// mutate applies f under the lock, integrating energy first so that the
// old state is billed up to now.
func (s *Station) mutate(f func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.update(f)
}

// update applies f with s.mu held and notifies Changes if the CP state,
// contactor or fault changed.
func (s *Station) update(f func()) {
	s.advanceLocked()
	cp, contactor, fault := s.cpLocked(), s.contactor, s.fault
	f()
	if cp != s.cpLocked() || contactor != s.contactor || fault != s.fault {
		select {
		case s.changes <- struct{}{}:
		default:
		}
	}
}

// advanceLocked integrates energy up to the clock's now and returns it.
// A clock that goes backwards adds nothing, so the register never
// decreases and no interval is counted twice.
func (s *Station) advanceLocked() time.Time {
	now := s.now()
	if !now.After(s.last) {
		return now
	}
	if s.cpLocked() == hal.CPC {
		s.energyWh += s.powerKW * 1000 * s.timeScale * now.Sub(s.last).Hours()
	}
	s.last = now
	return now
}

func (s *Station) cpLocked() hal.CPState {
	switch {
	case s.fault != "":
		return hal.CPF
	case !s.plugged:
		return hal.CPA
	case s.contactor && s.powerKW > 0:
		return hal.CPC
	}
	return hal.CPB
}

func (s *Station) powerWLocked() float64 {
	if s.cpLocked() != hal.CPC {
		return 0
	}
	return s.powerKW * 1000
}
