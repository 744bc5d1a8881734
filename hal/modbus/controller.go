package modbus

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/sitelink/sitelink/hal"
)

// Encodings of the controller's CP state register.
const (
	StateIndex  = "index"  // 0..5 mean A..F
	StateIndex1 = "index1" // 1..6 mean A..F (Bender)
	StateASCII  = "ascii"  // the character 'A'..'F' in the low byte (or the high byte if the low one is 0)
)

// Limits of a charging current limit: IEC 61851-1 signals 6 A to 80 A
// with the CP duty cycle.
const (
	MinCurrentA = 6
	MaxCurrentA = 80
)

// Defaults of ControllerConfig.
const (
	DefaultConfirmTimeout = 3 * time.Second
	// confirmRetry is the pause between two read-backs of the enable
	// output while waiting for it to reach the commanded position.
	confirmRetry = 50 * time.Millisecond
)

// Enable is the controller output that allows charging: a coil (written
// with function 0x05, read back with 0x01) or a holding register (written
// 1 or 0 with 0x06, read back with 0x03; any non-zero value reads as on).
// With Current the register is the controller's current limit, as on
// controllers without an enable of their own: on writes
// ControllerConfig.MaxCurrentA, off writes 0.
type Enable struct {
	Coil    bool
	Current bool
	Address uint16
}

// CurrentLimit is the holding register that takes the charging current
// limit in whole amperes (written with 0x06, read back with 0x03).
type CurrentLimit struct {
	Address uint16
}

// ControllerMap is where a charge controller keeps its state and output.
type ControllerMap struct {
	// State is the IEC 61851 CP state register (function 3 or 4,
	// usually uint16).
	State Register
	// StateEncoding is StateIndex, StateIndex1 or StateASCII; empty
	// means StateIndex.
	StateEncoding string
	// Enable is the output that lets the controller close its contactor.
	Enable Enable
	// MaxCurrent is the controller's current limit register, if it has
	// one: OpenController writes ControllerConfig.MaxCurrentA to it, and
	// SetMaxCurrent changes it.
	MaxCurrent *CurrentLimit
	// Energy is the controller's own energy register (scaled to Wh),
	// if it has one and no separate meter is configured.
	Energy *Register
	// Power is the controller's active power register (scaled to W);
	// only read together with Energy.
	Power *Register
}

// ControllerConfig describes one charge controller on a bus.
type ControllerConfig struct {
	// Number is the station number (Nayax's ServiceStationNumber).
	Number string
	// Bus is the controller's bus (a *Bus, or a fake in tests).
	Bus Client
	// Unit is the controller's Modbus address, 1..247.
	Unit byte
	// Map says where state, enable, energy and power are.
	Map ControllerMap
	// Meter, if set, is a separate energy meter for this station; it is
	// polled with the controller (do not Run it as well) and overrides
	// Map.Energy and Map.Power.
	Meter *Meter
	// Interval is the polling period; 0 means DefaultInterval.
	Interval time.Duration
	// ConfirmTimeout bounds SetContactor: the write and the read-backs
	// until the enable output shows the commanded position; 0 means
	// DefaultConfirmTimeout.
	ConfirmTimeout time.Duration
	// MaxCurrentA is the charging current limit in amperes written to
	// Map.MaxCurrent at start (0: leave the controller's own setting);
	// MinCurrentA..MaxCurrentA. Required with Map.Enable.Current.
	MaxCurrentA int
	// MaxPowerKW and ToleranceWh configure the energy integrity check of
	// Map.Energy, as in MeterConfig.
	MaxPowerKW  float64
	ToleranceWh float64
	// Logger receives fault and recovery lines, at most one per LogEvery;
	// nil discards.
	Logger *slog.Logger
	// Now is the clock for readings; nil means time.Now.
	Now func() time.Time
}

// Station is a charge controller on Modbus RTU as a hal.Station: it polls
// the CP state, the enable output and the energy, and switches the enable
// output with read-back confirmation. It is safe for concurrent use.
type Station struct {
	cfg     ControllerConfig
	log     *slog.Logger
	meter   *Meter // nil: no energy source
	changes chan struct{}
	io      chan struct{} // one token: polls and commands do not interleave

	cancel context.CancelFunc
	done   chan struct{}

	mu        sync.Mutex
	cp        hal.CPState
	contactor bool  // position last read back
	target    bool  // commanded position
	maxA      int   // current limit in A (ControllerConfig.MaxCurrentA, then SetMaxCurrent)
	commsErr  error // controller did not answer properly
	limitErr  error // the current limit register does not hold maxA (limitRegister)
	meterErr  error // the meter failed, or has no valid energy yet
	energyWh  float64
	powerW    float64
	at        time.Time
	closed    bool
	lim       *limiter
	errs      int
	owedInfo  bool
}

var _ hal.Station = (*Station)(nil)

// OpenController checks the configuration, switches the enable output off
// (the fail-safe start), polls once and starts polling every Interval. A
// controller that does not answer is not an error: the station starts
// faulted and recovers by itself when the controller answers; the output
// is switched off then.
func OpenController(c ControllerConfig) (*Station, error) {
	c, meter, err := c.withDefaults()
	if err != nil {
		return nil, fmt.Errorf("open modbus controller: %w", err)
	}
	log := c.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Station{
		cfg:     c,
		log:     log.With("station", c.Number, "unit", c.Unit),
		meter:   meter,
		changes: make(chan struct{}, 1),
		io:      make(chan struct{}, 1),
		cancel:  cancel,
		done:    make(chan struct{}),
		lim:     newLimiter(),
		maxA:    c.MaxCurrentA,
	}
	if meter != nil && meter != c.Meter {
		meter.lim = s.lim // the controller's own register: one device, one log budget
	}
	if err := s.SetContactor(ctx, false); err != nil {
		s.log.Warn("modbus controller: enable output not confirmed off at start; retrying while polling", "err", err)
	}
	// The first poll writes the current limit (poll keeps it written).
	_ = s.Poll(ctx)
	go s.run(ctx)
	return s, nil
}

// withDefaults checks c, fills defaults and builds the energy meter.
func (c ControllerConfig) withDefaults() (ControllerConfig, *Meter, error) {
	switch {
	case c.Number == "":
		return c, nil, fmt.Errorf("%w: station number is empty", ErrBadConfig)
	case c.Bus == nil:
		return c, nil, fmt.Errorf("%w: station %s: no bus", ErrBadConfig, c.Number)
	case c.Unit == 0 || c.Unit > MaxUnit:
		return c, nil, fmt.Errorf("%w: station %s: unit %d (want 1..%d)", ErrBadConfig, c.Number, c.Unit, MaxUnit)
	case c.Interval < 0 || c.ConfirmTimeout < 0:
		return c, nil, fmt.Errorf("%w: station %s: interval %v, confirm timeout %v", ErrBadConfig, c.Number, c.Interval, c.ConfirmTimeout)
	case c.Map.StateEncoding != "" && c.Map.StateEncoding != StateIndex && c.Map.StateEncoding != StateIndex1 && c.Map.StateEncoding != StateASCII:
		return c, nil, fmt.Errorf("%w: station %s: state encoding %q (want index, index1 or ascii)", ErrBadConfig, c.Number, c.Map.StateEncoding)
	case c.MaxCurrentA != 0 && (c.MaxCurrentA < MinCurrentA || c.MaxCurrentA > MaxCurrentA):
		return c, nil, fmt.Errorf("%w: station %s: max current %d A (want %d..%d)", ErrBadConfig, c.Number, c.MaxCurrentA, MinCurrentA, MaxCurrentA)
	case c.Map.Enable.Current && c.Map.Enable.Coil:
		return c, nil, fmt.Errorf("%w: station %s: a current limit enable is a register, not a coil", ErrBadConfig, c.Number)
	case c.Map.Enable.Current && c.MaxCurrentA == 0:
		return c, nil, fmt.Errorf("%w: station %s: the enable is the current limit register: a max current is required", ErrBadConfig, c.Number)
	case c.Map.Power != nil && c.Map.Energy == nil && c.Meter == nil:
		return c, nil, fmt.Errorf("%w: station %s: a power register needs an energy register", ErrBadConfig, c.Number)
	}
	if err := c.Map.State.Validate(); err != nil {
		return c, nil, fmt.Errorf("%w: station %s: state register: %w", ErrBadConfig, c.Number, err)
	}
	if c.Map.StateEncoding == "" {
		c.Map.StateEncoding = StateIndex
	}
	if c.Interval == 0 {
		c.Interval = DefaultInterval
	}
	if c.ConfirmTimeout == 0 {
		c.ConfirmTimeout = DefaultConfirmTimeout
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	meter := c.Meter
	if meter == nil && c.Map.Energy != nil {
		p := Profile{Name: "controller", Energy: *c.Map.Energy}
		if c.Map.Power != nil {
			p.Power = *c.Map.Power
		}
		m, err := NewMeter(MeterConfig{
			Name: "station " + c.Number, Bus: c.Bus, Unit: c.Unit, Profile: p,
			MaxPowerKW: c.MaxPowerKW, ToleranceWh: c.ToleranceWh, Logger: c.Logger, Now: c.Now,
		})
		if err != nil {
			return c, nil, fmt.Errorf("station %s: %w", c.Number, err)
		}
		meter = m
	}
	return c, meter, nil
}

// Number returns the configured station number.
func (s *Station) Number() string { return s.cfg.Number }

// Changes delivers a coalesced notification whenever the CP state, the
// contactor or the fault changed. The channel is never closed.
func (s *Station) Changes() <-chan struct{} { return s.changes }

// Read returns the latest snapshot without touching the bus.
func (s *Station) Read() hal.Reading {
	s.mu.Lock()
	defer s.mu.Unlock()
	return hal.Reading{
		CP:        s.cp,
		Contactor: s.contactor,
		EnergyWh:  s.energyWh,
		PowerW:    s.powerW,
		Fault:     s.faultLocked(),
		At:        s.at,
	}
}

// faultLocked says why the station is faulted, or "".
func (s *Station) faultLocked() string {
	switch {
	case s.commsErr != nil:
		return "modbus: " + s.commsErr.Error()
	case s.limitErr != nil:
		return "modbus: " + s.limitErr.Error()
	case s.meterErr != nil:
		return "modbus meter: " + s.meterErr.Error()
	case s.cp == hal.CPE:
		return "controller reports CP state E (no power or short circuit)"
	case s.cp == hal.CPF:
		return "controller reports CP state F (fault)"
	}
	return ""
}

// SetContactor switches the enable output and returns once a read-back
// shows it in the commanded position, within ConfirmTimeout. Closing is
// refused with hal.ErrFaulted while faulted and hal.ErrClosed after
// Close. A write or read-back that fails returns hal.ErrNotConfirmed
// wrapping the bus error. If closing fails, the station treats the output
// as commanded off, so polling switches it off should the command have
// taken effect after all.
func (s *Station) SetContactor(ctx context.Context, on bool) error {
	if on {
		if err := s.refuseClose(); err != nil {
			return err
		}
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.ConfirmTimeout)
	defer cancel()
	select {
	case s.io <- struct{}{}:
	case <-ctx.Done():
		return fmt.Errorf("set contactor %v: %w: %w", on, hal.ErrNotConfirmed, ctx.Err())
	}
	defer func() { <-s.io }()
	if on {
		// A poll may have found a fault while this command waited.
		if err := s.refuseClose(); err != nil {
			return err
		}
	}
	s.mu.Lock()
	s.target = on
	s.mu.Unlock()
	err := s.switchEnable(ctx, on)
	if err != nil && on {
		s.mu.Lock()
		s.target = false
		s.mu.Unlock()
	}
	if err != nil {
		return fmt.Errorf("set contactor %v: %w", on, err)
	}
	s.log.Debug("modbus controller enable confirmed", "on", on)
	return nil
}

// refuseClose returns why the contactor may not close, if it may not.
func (s *Station) refuseClose() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return hal.ErrClosed
	}
	if f := s.faultLocked(); f != "" {
		return fmt.Errorf("%w: %s", hal.ErrFaulted, f)
	}
	return nil
}

// switchEnable writes the enable output and reads it back until it shows
// on or ctx ends. The caller holds io.
func (s *Station) switchEnable(ctx context.Context, on bool) error {
	if err := s.writeEnable(ctx, on); err != nil {
		s.noteComms(err)
		return fmt.Errorf("%w: %w", hal.ErrNotConfirmed, err)
	}
	for {
		got, err := s.readEnable(ctx)
		if err == nil {
			s.update(func() { s.contactor = got })
			if got == on {
				return nil
			}
		} else if ctx.Err() == nil {
			s.noteComms(err)
		}
		t := time.NewTimer(confirmRetry)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			if err != nil {
				return fmt.Errorf("%w: %w", hal.ErrNotConfirmed, err)
			}
			return fmt.Errorf("%w: output still reads %v", hal.ErrNotConfirmed, got)
		}
	}
}

func (s *Station) writeEnable(ctx context.Context, on bool) error {
	e := s.cfg.Map.Enable
	if e.Coil {
		return s.cfg.Bus.WriteCoil(ctx, s.cfg.Unit, e.Address, on)
	}
	v := uint16(0)
	if on {
		v = 1
		if e.Current {
			s.mu.Lock()
			v = uint16(s.maxA)
			s.mu.Unlock()
		}
	}
	return s.cfg.Bus.WriteRegister(ctx, s.cfg.Unit, e.Address, v)
}

// SetMaxCurrent changes the charging current limit to amps
// (MinCurrentA..MaxCurrentA) and returns once a read-back shows it, within
// ConfirmTimeout. Where the enable is the current limit register, the
// limit is written now only while charging is enabled; otherwise the next
// enable writes it.
func (s *Station) SetMaxCurrent(ctx context.Context, amps int) error {
	m := s.cfg.Map
	switch {
	case m.MaxCurrent == nil && !m.Enable.Current:
		return fmt.Errorf("set max current: %w: station %s has no current limit register", ErrBadConfig, s.cfg.Number)
	case amps < MinCurrentA || amps > MaxCurrentA:
		return fmt.Errorf("set max current: %w: %d A (want %d..%d)", ErrBadConfig, amps, MinCurrentA, MaxCurrentA)
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.ConfirmTimeout)
	defer cancel()
	select {
	case s.io <- struct{}{}:
	case <-ctx.Done():
		return fmt.Errorf("set max current: %w: %w", hal.ErrNotConfirmed, ctx.Err())
	}
	defer func() { <-s.io }()
	s.mu.Lock()
	s.maxA = amps
	target := s.target
	s.mu.Unlock()
	addr := m.Enable.Address
	if m.MaxCurrent != nil {
		addr = m.MaxCurrent.Address
	}
	if m.Enable.Current && addr == m.Enable.Address && !target {
		return nil
	}
	if err := s.cfg.Bus.WriteRegister(ctx, s.cfg.Unit, addr, uint16(amps)); err != nil {
		return fmt.Errorf("set max current %d A: %w: %w", amps, hal.ErrNotConfirmed, err)
	}
	w, err := s.cfg.Bus.ReadRegisters(ctx, s.cfg.Unit, FuncReadHoldingRegisters, addr, 1)
	switch {
	case err != nil:
		return fmt.Errorf("set max current %d A: %w: %w", amps, hal.ErrNotConfirmed, err)
	case int(w[0]) != amps:
		return fmt.Errorf("set max current %d A: %w: register reads %d", amps, hal.ErrNotConfirmed, w[0])
	}
	s.update(func() { s.limitErr = nil })
	return nil
}

// keepLimit makes the controller's own current limit register (a map's
// MaxCurrent, where the enable is not the limit) hold the configured
// limit: read on every poll, written again when it differs. A controller
// that restarted forgets the limit and takes its default (often the
// cable's or its own maximum, above what the circuit takes); so does one
// that was absent when the daemon started. limitErr says why the limit is
// not held (the station is faulted: no charging above the circuit's
// rating); err is a failed transaction. The caller holds io.
func (s *Station) keepLimit(ctx context.Context) (limitErr, err error) {
	m := s.cfg.Map
	s.mu.Lock()
	amps := s.maxA
	s.mu.Unlock()
	if amps == 0 || m.MaxCurrent == nil || m.Enable.Current {
		return nil, nil
	}
	addr := m.MaxCurrent.Address
	w, err := s.cfg.Bus.ReadRegisters(ctx, s.cfg.Unit, FuncReadHoldingRegisters, addr, 1)
	if err != nil {
		return nil, err
	}
	if int(w[0]) == amps {
		return nil, nil
	}
	s.logLimited(slog.LevelWarn, "modbus controller: current limit register differs (controller restarted?); writing it", "register", addr, "reads", w[0], "amps", amps)
	if err := s.cfg.Bus.WriteRegister(ctx, s.cfg.Unit, addr, uint16(amps)); err != nil {
		return nil, err
	}
	if w, err = s.cfg.Bus.ReadRegisters(ctx, s.cfg.Unit, FuncReadHoldingRegisters, addr, 1); err != nil {
		return nil, err
	}
	if int(w[0]) != amps {
		return fmt.Errorf("current limit register %d reads %d A after writing %d A", addr, w[0], amps), nil
	}
	return nil, nil
}

func (s *Station) readEnable(ctx context.Context) (bool, error) {
	e := s.cfg.Map.Enable
	if e.Coil {
		bits, err := s.cfg.Bus.ReadCoils(ctx, s.cfg.Unit, e.Address, 1)
		if err != nil {
			return false, err
		}
		return bits[0], nil
	}
	w, err := s.cfg.Bus.ReadRegisters(ctx, s.cfg.Unit, FuncReadHoldingRegisters, e.Address, 1)
	if err != nil {
		return false, err
	}
	return w[0] != 0, nil
}

// readState reads and decodes the CP state register.
func (s *Station) readState(ctx context.Context) (hal.CPState, error) {
	v, err := s.cfg.Map.State.Read(ctx, s.cfg.Bus, s.cfg.Unit)
	if err != nil {
		return hal.CPUnknown, err
	}
	return decodeState(v, s.cfg.Map.StateEncoding)
}

// decodeState maps a state register value to a CP state.
func decodeState(v float64, encoding string) (hal.CPState, error) {
	states := [...]hal.CPState{hal.CPA, hal.CPB, hal.CPC, hal.CPD, hal.CPE, hal.CPF}
	if v < 0 || v > 0xFFFF || v != float64(int(v)) {
		return hal.CPUnknown, fmt.Errorf("%w: %v", ErrUnknownState, v)
	}
	n := int(v)
	switch encoding {
	case StateASCII:
		c := n & 0xFF
		if c == 0 {
			c = n >> 8
		}
		n = c - 'A'
	case StateIndex1:
		n--
	}
	if n < 0 || n >= len(states) {
		return hal.CPUnknown, fmt.Errorf("%w: %v (%s encoding)", ErrUnknownState, v, encoding)
	}
	return states[n], nil
}

// Poll reads the controller (and the meter) now, as the background loop
// does every Interval, and updates the snapshot. It returns the
// controller's error, which Read also reports as the fault. If the
// enable output reads on while commanded off, Poll switches it off.
func (s *Station) Poll(ctx context.Context) error {
	select {
	case s.io <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-s.io }()
	return s.poll(ctx)
}

// poll does Poll's work; the caller holds io.
func (s *Station) poll(ctx context.Context) error {
	cp, err := s.readState(ctx)
	var on bool
	if err == nil {
		on, err = s.readEnable(ctx)
	}
	s.mu.Lock()
	target := s.target
	s.mu.Unlock()
	if err == nil && on && !target {
		s.logLimited(slog.LevelWarn, "modbus controller: enable output on while commanded off; switching it off")
		if err = s.writeEnable(ctx, false); err == nil {
			on, err = s.readEnable(ctx)
		}
	}
	var limitErr error
	if err == nil {
		limitErr, err = s.keepLimit(ctx)
	}
	if err != nil {
		if ctx.Err() == nil {
			s.noteComms(err)
		}
		return err
	}
	var mr Reading
	if s.meter != nil {
		mr, _ = s.meter.ReadOnce(ctx)
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
	s.update(func() {
		s.cp, s.contactor, s.commsErr, s.limitErr = cp, on, nil, limitErr
		s.at = s.cfg.Now()
		if s.meter != nil {
			switch {
			case mr.Err != nil:
				s.meterErr = mr.Err
			case !mr.Valid:
				s.meterErr = fmt.Errorf("no valid energy reading yet (%s)", mr.Flag)
			default:
				s.meterErr = nil
			}
			if mr.Valid {
				s.energyWh = mr.EnergyWh
			}
			if mr.Err == nil {
				s.powerW = mr.PowerW
			}
		}
	})
	s.noteRecovered()
	return nil
}

// noteComms records a failed transaction with the controller: the
// station is faulted and its CP state unknown until it answers again. The
// contactor keeps its last read-back position, the safe assumption for a
// contactor that may still be closed.
func (s *Station) noteComms(err error) {
	s.update(func() {
		s.commsErr = err
		s.cp = hal.CPUnknown
		s.at = s.cfg.Now()
	})
	s.mu.Lock()
	s.errs++
	n := s.errs
	s.mu.Unlock()
	s.logLimited(slog.LevelWarn, "modbus controller faulted", "err", err, "failed_transactions", n)
}

// noteRecovered logs the end of a fault (rate-limited; a suppressed
// recovery line is logged at the next chance).
func (s *Station) noteRecovered() {
	s.mu.Lock()
	n := s.errs
	s.errs = 0
	if n > 0 {
		s.owedInfo = true
	}
	owed := s.owedInfo
	s.mu.Unlock()
	if owed && s.logLimited(slog.LevelInfo, "modbus controller answering again", "failed_transactions", n) {
		s.mu.Lock()
		s.owedInfo = false
		s.mu.Unlock()
	}
}

// logLimited logs through the station's limiter and reports whether it
// did.
func (s *Station) logLimited(level slog.Level, msg string, args ...any) bool {
	ok, suppressed := s.lim.allow(s.cfg.Now())
	if !ok {
		return false
	}
	if suppressed > 0 {
		args = append(args, "suppressed_lines", suppressed)
	}
	s.log.Log(context.Background(), level, msg, args...)
	return true
}

// update applies f under the lock and notifies Changes if the CP state,
// the contactor or the fault changed.
func (s *Station) update(f func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	cp, contactor, fault := s.cp, s.contactor, s.faultLocked()
	f()
	if cp != s.cp || contactor != s.contactor || fault != s.faultLocked() {
		select {
		case s.changes <- struct{}{}:
		default:
		}
	}
}

// run polls every Interval until ctx ends.
func (s *Station) run(ctx context.Context) {
	defer close(s.done)
	t := time.NewTicker(s.cfg.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			_ = s.Poll(ctx)
		}
	}
}

// Halt switches the enable output off and waits for the read-back.
func (s *Station) Halt() error {
	if err := s.SetContactor(context.Background(), false); err != nil {
		return fmt.Errorf("halt station %s: %w", s.cfg.Number, err)
	}
	return nil
}

// Close stops polling and halts the station; afterwards closing the
// contactor fails with hal.ErrClosed. The bus stays open (other devices
// share it). Close may be called more than once; each call tries to
// switch the output off again.
func (s *Station) Close() error {
	s.mu.Lock()
	already := s.closed
	s.closed = true
	s.mu.Unlock()
	if !already {
		s.cancel()
		<-s.done
	}
	return s.Halt()
}
