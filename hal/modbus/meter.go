package modbus

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"sync"
	"time"
)

// Defaults of MeterConfig.
const (
	DefaultInterval = time.Second
	// DefaultMaxPowerKW is 22 kW, the most an AC station delivers on
	// three phases at 32 A (the configuration's default as well).
	DefaultMaxPowerKW  = 22.0
	DefaultToleranceWh = 50.0
	// LogEvery is the least time between two log lines of one device:
	// a dead meter polled every second must not flood the journal.
	LogEvery = time.Minute
	// rebaseAfter is how many consecutive readings must agree with each
	// other, and not with the accepted energy, before the guard follows
	// them (a replaced or reset meter).
	rebaseAfter = 3
	// replacedMinDropWh is the least drop that can mean a replaced meter
	// rather than a register going backwards.
	replacedMinDropWh = 1000.0
)

// Energy integrity flags: why a reading's energy register was not
// applied.
const (
	FlagBackwards = "backwards" // below the accepted value
	FlagReplaced  = "replaced"  // far below (less than half): a new or reset meter
	FlagJump      = "jump"      // more than MaxPowerKW × elapsed + ToleranceWh above
	FlagNegative  = "negative"  // a negative register
)

// Reading is one poll of a meter.
type Reading struct {
	// EnergyWh is the energy sessions may use: it starts at the first
	// register value and then only grows by plausible increments. A
	// flagged or failed poll leaves it unchanged.
	EnergyWh float64
	// PowerW is the active power of the last successful poll.
	PowerW float64
	// RawEnergyWh is what the energy register said in the last
	// successful poll, flagged or not.
	RawEnergyWh float64
	// Valid reports whether EnergyWh holds a register value at all: false
	// until the first acceptable reading.
	Valid bool
	// Flag is non-empty when this poll's energy register was rejected
	// (FlagBackwards, FlagJump, FlagReplaced, FlagNegative).
	Flag string
	// Err is non-nil when this poll failed: the meter is faulted until a
	// poll succeeds again.
	Err error
	// At is when the poll finished.
	At time.Time
}

// MeterConfig describes one energy meter on a bus.
type MeterConfig struct {
	// Name identifies the meter in logs; empty means "unit N".
	Name string
	// Bus is the bus the meter is on (a *Bus, or a fake in tests).
	Bus Reader
	// Unit is the meter's Modbus address, 1..247.
	Unit byte
	// Profile says where energy and power are.
	Profile Profile
	// Interval is the polling period of Run; 0 means DefaultInterval.
	Interval time.Duration
	// MaxPowerKW is the most the metered circuit can draw; an energy
	// increment beyond MaxPowerKW × elapsed + ToleranceWh is a jump.
	// 0 means DefaultMaxPowerKW.
	MaxPowerKW float64
	// ToleranceWh is added to the allowed increment for register
	// resolution (Eastron counts in 10 Wh steps, a float32 of a large kWh
	// total is coarser still); 0 means DefaultToleranceWh.
	ToleranceWh float64
	// Logger receives fault, recovery and integrity lines, at most one per
	// LogEvery; nil discards.
	Logger *slog.Logger
	// Now is the clock for Reading.At, the jump check and log limiting;
	// nil means time.Now.
	Now func() time.Time
}

// Meter polls one energy meter. It is safe for concurrent use.
type Meter struct {
	cfg MeterConfig
	log *slog.Logger

	pollMu sync.Mutex // one poll at a time

	mu       sync.Mutex
	guard    energyGuard
	last     Reading
	lim      *limiter
	errs     int  // failed polls in the current fault
	owedInfo bool // a recovery happened but its log line was suppressed
}

// NewMeter checks the configuration and returns a meter that has not
// been polled yet: Last reports Valid false until the first poll.
func NewMeter(c MeterConfig) (*Meter, error) {
	switch {
	case c.Bus == nil:
		return nil, fmt.Errorf("new meter: %w: no bus", ErrBadConfig)
	case c.Unit == 0 || c.Unit > MaxUnit:
		return nil, fmt.Errorf("new meter: %w: unit %d (want 1..%d)", ErrBadConfig, c.Unit, MaxUnit)
	case c.Interval < 0, c.MaxPowerKW < 0, c.ToleranceWh < 0,
		math.IsNaN(c.MaxPowerKW), math.IsInf(c.MaxPowerKW, 0), math.IsNaN(c.ToleranceWh), math.IsInf(c.ToleranceWh, 0):
		return nil, fmt.Errorf("new meter: %w: interval %v, max power %v kW, tolerance %v Wh", ErrBadConfig, c.Interval, c.MaxPowerKW, c.ToleranceWh)
	}
	if err := c.Profile.Validate(); err != nil {
		return nil, fmt.Errorf("new meter: %w: %w", ErrBadConfig, err)
	}
	if c.Name == "" {
		c.Name = fmt.Sprintf("unit %d", c.Unit)
	}
	if c.Interval == 0 {
		c.Interval = DefaultInterval
	}
	if c.MaxPowerKW == 0 {
		c.MaxPowerKW = DefaultMaxPowerKW
	}
	if c.ToleranceWh == 0 {
		c.ToleranceWh = DefaultToleranceWh
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	log := c.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Meter{
		cfg:   c,
		log:   log.With("meter", c.Name, "unit", c.Unit, "profile", c.Profile.Name),
		guard: energyGuard{maxW: c.MaxPowerKW * 1000, tolWh: c.ToleranceWh},
		lim:   newLimiter(),
	}, nil
}

// Name returns the configured name.
func (m *Meter) Name() string { return m.cfg.Name }

// Run polls every Interval until ctx ends. Failures are recorded in the
// Reading and logged (rate-limited); Run never stops on them.
func (m *Meter) Run(ctx context.Context) {
	t := time.NewTicker(m.cfg.Interval)
	defer t.Stop()
	for {
		_, _ = m.ReadOnce(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Last returns the latest poll without touching the bus.
func (m *Meter) Last() Reading {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.last
}

// ReadOnce polls the meter now, applies the energy integrity check and
// returns the new Reading, with its Err also returned. If ctx ends during
// the poll, nothing is recorded.
func (m *Meter) ReadOnce(ctx context.Context) (Reading, error) {
	m.pollMu.Lock()
	defer m.pollMu.Unlock()
	energy, power, err := m.poll(ctx)
	if err != nil && ctx.Err() != nil {
		return m.Last(), err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.cfg.Now()
	r := m.last
	r.At, r.Err, r.Flag = now, err, ""
	if err != nil {
		m.errs++
		m.logf(now, slog.LevelWarn, "modbus meter faulted", "err", err, "failed_polls", m.errs)
		m.last = r
		return r, err
	}
	if m.errs > 0 {
		m.owedInfo = true
		if m.logf(now, slog.LevelInfo, "modbus meter recovered", "failed_polls", m.errs) {
			m.owedInfo = false
		}
		m.errs = 0
	} else if m.owedInfo && m.logf(now, slog.LevelInfo, "modbus meter answering again") {
		m.owedInfo = false
	}
	flag, rebased := m.guard.apply(energy, now)
	r.EnergyWh, r.Valid, r.RawEnergyWh, r.PowerW, r.Flag = m.guard.energy, m.guard.have, energy, power, flag
	switch {
	case rebased:
		m.logf(now, slog.LevelWarn, "modbus meter energy register rebased: readings agree on a new baseline; the difference is not counted",
			"flag", flag, "raw_wh", energy, "energy_wh", r.EnergyWh)
	case flag != "":
		m.logf(now, slog.LevelWarn, "modbus meter energy reading rejected", "flag", flag, "raw_wh", energy, "energy_wh", r.EnergyWh)
	}
	m.last = r
	return r, nil
}

// poll reads energy and, if the profile has it, power.
func (m *Meter) poll(ctx context.Context) (energy, power float64, err error) {
	energy, err = m.cfg.Profile.Energy.Read(ctx, m.cfg.Bus, m.cfg.Unit)
	if err != nil {
		return 0, 0, fmt.Errorf("energy: %w", err)
	}
	if !m.cfg.Profile.Power.IsZero() {
		power, err = m.cfg.Profile.Power.Read(ctx, m.cfg.Bus, m.cfg.Unit)
		if err != nil {
			return 0, 0, fmt.Errorf("power: %w", err)
		}
	}
	return energy, power, nil
}

// logf logs through the meter's limiter and reports whether it did.
// m.mu is held.
func (m *Meter) logf(now time.Time, level slog.Level, msg string, args ...any) bool {
	ok, suppressed := m.lim.allow(now)
	if !ok {
		return false
	}
	if suppressed > 0 {
		args = append(args, "suppressed_lines", suppressed)
	}
	m.log.Log(context.Background(), level, msg, args...)
	return true
}

// energyGuard decides which energy register values sessions may use. It
// accepts an increment only when it is plausible: not negative and no
// more than the circuit could have drawn since the last accepted value.
// A register that settles on a new baseline (replaced or reset meter, a
// glitch that stuck) is followed after rebaseAfter consistent readings,
// without counting the step itself: energy is never invented.
type energyGuard struct {
	maxW  float64
	tolWh float64

	have   bool
	energy float64   // accepted energy, Wh
	ref    float64   // register value energy last advanced to
	refAt  time.Time // when ref was read

	candRaw float64 // latest rejected value
	candAt  time.Time
	candN   int // consecutive rejected values that agree with each other
}

// plausible reports whether the register may have moved by d Wh in
// elapsed.
func (g *energyGuard) plausible(d float64, elapsed time.Duration) bool {
	return d >= 0 && d <= g.maxW*max(elapsed, 0).Hours()+g.tolWh
}

// apply feeds one register value read at at. It returns why the value
// was rejected ("" if it was applied) and whether the guard rebased onto
// the new baseline with it.
func (g *energyGuard) apply(raw float64, at time.Time) (flag string, rebased bool) {
	if raw < 0 || math.IsNaN(raw) || math.IsInf(raw, 0) {
		return FlagNegative, false
	}
	if !g.have {
		g.have, g.energy, g.ref, g.refAt, g.candN = true, raw, raw, at, 0
		return "", false
	}
	d := raw - g.ref
	if g.plausible(d, at.Sub(g.refAt)) {
		g.energy += d
		g.ref, g.refAt, g.candN = raw, at, 0
		return "", false
	}
	switch {
	case d > 0:
		flag = FlagJump
	case raw < g.ref/2 && -d >= replacedMinDropWh:
		flag = FlagReplaced
	default:
		flag = FlagBackwards
	}
	if g.candN > 0 && g.plausible(raw-g.candRaw, at.Sub(g.candAt)) {
		g.candN++
	} else {
		g.candN = 1
	}
	g.candRaw, g.candAt = raw, at
	if g.candN >= rebaseAfter {
		g.ref, g.refAt, g.candN = raw, at, 0
		return flag, true
	}
	return flag, false
}

// limiter lets one log line through per period and counts the rest. One
// limiter per device: a station shares its own with the meter it builds
// from the controller's energy register.
type limiter struct {
	every time.Duration

	mu         sync.Mutex
	last       time.Time
	suppressed int
}

func newLimiter() *limiter { return &limiter{every: LogEvery} }

// allow reports whether a line may be logged at now, and how many were
// suppressed since the last one that was.
func (l *limiter) allow(now time.Time) (bool, int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.last.IsZero() && now.Sub(l.last) < l.every {
		l.suppressed++
		return false, 0
	}
	n := l.suppressed
	l.last, l.suppressed = now, 0
	return true, n
}
