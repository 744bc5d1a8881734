package gpio

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync"
	"time"

	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/gpio/gpioreg"
	"periph.io/x/host/v3/sysfs"

	"github.com/sitelink/sitelink/hal"
)

// Sentinel errors of the gpio driver. Errors from Open wrap one of them
// together with the station number, the line's role and its name.
var (
	// ErrInvalidConfig means the Config cannot describe a station: an
	// empty number or line name, a negative duration, an unknown pull, or
	// an input-only setting on the contactor output.
	ErrInvalidConfig = errors.New("invalid gpio station config")
	// ErrNoLine means no GPIO line is registered under a configured name:
	// a typo, a board without that line, or Init not called before Open.
	// `sitelink hw` (Lines) lists the names this machine offers.
	ErrNoLine = errors.New("no such gpio line")
	// ErrLineInUse means a configured line is already used, by another
	// role of the same station or by another open Station: two stations
	// must never share a contactor or steal each other's edges.
	ErrLineInUse = errors.New("gpio line already in use")
	// ErrSysfsLine means the name resolves to a line of the deprecated
	// sysfs GPIO interface. sitelink drives only character-device lines;
	// use the kernel's line name (as `sitelink hw` lists it) instead.
	ErrSysfsLine = errors.New("gpio line is a sysfs line")
)

// DefaultFeedbackTimeout is how long SetContactor waits for the
// contactor's auxiliary contact when Config.FeedbackTimeout is zero: a
// typical contactor moves within 20-100 ms, so 500 ms means "broken", not
// "slow".
const DefaultFeedbackTimeout = 500 * time.Millisecond

// edgeWait bounds every WaitForEdge call. periph gives no portable "wait
// forever": gpioioctl waits forever on 0 and returns at once on -1,
// gpiotest does the opposite. A bounded wait in a loop also lets Close
// stop a watcher, and a timed-out wait doubles as a resync point (see
// watch).
const edgeWait = 100 * time.Millisecond

// Pull selects the internal bias resistor of an input line.
type Pull string

// Pull values; the strings are what configuration files use.
const (
	// PullAuto pulls towards the inactive level: down for an active-high
	// input, up for an active-low one, so that a disconnected wire reads
	// "not active".
	PullAuto Pull = ""
	// PullUp and PullDown request the internal pull-up or pull-down.
	PullUp   Pull = "up"
	PullDown Pull = "down"
	// PullNone requests no internal resistor: the wiring brings its own.
	PullNone Pull = "none"
)

// Pin names one GPIO line and how to interpret it.
type Pin struct {
	// Name is the line's name in periph's gpioreg, e.g. "GPIO17" (the
	// kernel's line name for character-device lines).
	Name string
	// ActiveLow inverts the line: the logical value is the inverse of
	// the electrical level, for outputs and inputs alike.
	ActiveLow bool
	// Debounce is how long an input's level must hold before it counts.
	// Zero counts every edge. Not allowed on the contactor output.
	Debounce time.Duration
	// Pull is the input's bias; empty means PullAuto. Not allowed on the
	// contactor output.
	Pull Pull
}

// Config describes one station wired to GPIO lines.
type Config struct {
	// Number is the station number (Nayax's ServiceStationNumber).
	Number string
	// Contactor drives the contactor coil (logical on = closed). Required.
	Contactor Pin
	// ContactorFeedback is the contactor's auxiliary contact (logical on
	// = closed). When set, SetContactor waits until it follows the
	// command and Reading.Contactor reports it.
	ContactorFeedback *Pin
	// Vehicle reads "vehicle connected" (CP state B) from a controller
	// that exposes it as a digital output.
	Vehicle *Pin
	// Charging reads "vehicle charging" (CP state C).
	Charging *Pin
	// Fault reads a station fault (CP state F): an RCD trip, an
	// over-temperature switch, an emergency stop loop. While it is active
	// the contactor is held open.
	Fault *Pin
	// StartButton and StopButton are push buttons on the station.
	StartButton, StopButton *Pin
	// FeedbackTimeout bounds the wait for ContactorFeedback; zero means
	// DefaultFeedbackTimeout.
	FeedbackTimeout time.Duration
	// OnStart and OnStop are called on a debounced button press, each
	// call in its own goroutine so that a slow handler never blocks the
	// driver. nil ignores the button.
	OnStart, OnStop func()
	// Logger receives the driver's logs; nil discards them.
	Logger *slog.Logger
}

// Input roles, used in errors, logs and Lines.
const (
	roleContactor = "contactor"
	roleFeedback  = "contactor feedback"
	roleVehicle   = "vehicle"
	roleCharging  = "charging"
	roleFault     = "fault"
	roleStart     = "start button"
	roleStop      = "stop button"
)

// Fault reasons reported in Reading.Fault.
const faultMismatch = "contactor feedback mismatch"

// hooks let the package's tests observe the watchers without sleeping.
type hooks struct {
	// settled is called by a watcher, outside any lock, each time a
	// debounce window ends: level is the settled logical level, counted
	// whether it changed the station's state.
	settled func(role string, level, counted bool)
}

// input is one watched input line.
type input struct {
	role      string
	name      string
	pin       gpio.PinIn
	activeLow bool
	debounce  time.Duration
	pull      gpio.Pull

	level bool // debounced logical level; guarded by Station.mu
}

func (in *input) logical(l gpio.Level) bool { return bool(l) != in.activeLow }

// Station is a charging point wired to GPIO lines. It is safe for
// concurrent use.
type Station struct {
	number          string
	log             *slog.Logger
	feedbackTimeout time.Duration
	onStart         func()
	onStop          func()
	hooks           hooks
	faultActive     string // Reading.Fault while the fault input is active

	out          gpio.PinOut
	outName      string
	outActiveLow bool

	feedback, vehicle, charging, fault, start, stop *input
	inputs                                          []*input

	changes   chan struct{}
	quit      chan struct{} // closed by Close: watchers return
	watchers  sync.WaitGroup
	callbacks sync.WaitGroup // OnStart/OnStop calls in flight (not waited for by Close)
	closeOnce sync.Once

	mu            sync.Mutex
	commanded     bool          // commanded contactor position
	wake          chan struct{} // closed and replaced when the feedback or the command changes
	waiters       int           // SetContactor calls waiting for feedback
	mismatch      bool          // feedback disagreed with the command for too long
	internal      string        // sticky fault after a panic in a watcher
	closed        bool          // Close began: closing the contactor is refused
	stopped       bool          // watchers are gone: feedback no longer moves
	supervise     *time.Timer   // armed while feedback disagrees with no one waiting
	superviseGen  uint64
	spinWarnedFor map[string]bool
}

var _ hal.Station = (*Station)(nil)

// Open resolves every line of c by name, drives the contactor off before
// anything else, configures the inputs for edge detection and starts one
// watcher goroutine per input. On error every line it claimed is released
// and the contactor, if it was resolved, stays off.
func Open(c Config) (*Station, error) { return open(c, hooks{}) }

func open(c Config, h hooks) (st *Station, err error) {
	if err := c.validate(); err != nil {
		return nil, fmt.Errorf("open gpio station %q: %w", c.Number, err)
	}
	s := &Station{
		number:          c.Number,
		log:             c.Logger,
		feedbackTimeout: c.FeedbackTimeout,
		onStart:         c.OnStart,
		onStop:          c.OnStop,
		hooks:           h,
		outName:         c.Contactor.Name,
		outActiveLow:    c.Contactor.ActiveLow,
		changes:         make(chan struct{}, 1),
		quit:            make(chan struct{}),
		wake:            make(chan struct{}),
		spinWarnedFor:   map[string]bool{},
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.log = s.log.With("station", s.number)
	if s.feedbackTimeout == 0 {
		s.feedbackTimeout = DefaultFeedbackTimeout
	}
	wrap := func(role, name string, err error) error {
		return fmt.Errorf("open gpio station %s: %s line %q: %w", s.number, role, name, err)
	}

	var claimed []gpio.PinIO
	defer func() {
		if err != nil {
			release(claimed)
		}
	}()

	// The contactor first: whatever else fails, it ends up off.
	out, err := resolve(c.Contactor.Name)
	if err != nil {
		return nil, wrap(roleContactor, c.Contactor.Name, err)
	}
	if err := claim(out, s, roleContactor); err != nil {
		return nil, wrap(roleContactor, c.Contactor.Name, err)
	}
	claimed = append(claimed, out)
	s.out = out
	if err := s.write(false); err != nil {
		return nil, wrap(roleContactor, c.Contactor.Name, err)
	}

	for _, spec := range []struct {
		role string
		pin  *Pin
		dst  **input
	}{
		{roleFeedback, c.ContactorFeedback, &s.feedback},
		{roleVehicle, c.Vehicle, &s.vehicle},
		{roleCharging, c.Charging, &s.charging},
		{roleFault, c.Fault, &s.fault},
		{roleStart, c.StartButton, &s.start},
		{roleStop, c.StopButton, &s.stop},
	} {
		if spec.pin == nil {
			continue
		}
		p, err := resolve(spec.pin.Name)
		if err != nil {
			return nil, wrap(spec.role, spec.pin.Name, err)
		}
		if err := claim(p, s, spec.role); err != nil {
			return nil, wrap(spec.role, spec.pin.Name, err)
		}
		claimed = append(claimed, p)
		in := &input{
			role:      spec.role,
			name:      spec.pin.Name,
			pin:       p,
			activeLow: spec.pin.ActiveLow,
			debounce:  spec.pin.Debounce,
			pull:      spec.pin.Pull.bias(spec.pin.ActiveLow),
		}
		if err := in.pin.In(in.pull, gpio.BothEdges); err != nil {
			return nil, wrap(spec.role, spec.pin.Name, fmt.Errorf("configure input: %w", err))
		}
		in.level = in.logical(in.pin.Read())
		*spec.dst = in
		s.inputs = append(s.inputs, in)
	}
	if s.fault != nil {
		s.faultActive = fmt.Sprintf("fault input %s active", s.fault.name)
	}

	s.mu.Lock()
	s.superviseLocked() // a welded contactor shows up as a mismatch
	s.mu.Unlock()
	for _, in := range s.inputs {
		s.watchers.Add(1)
		go s.watch(in)
	}
	s.log.Info("gpio station open", "contactor", s.outName, "inputs", len(s.inputs))
	return s, nil
}

func (c *Config) validate() error {
	if c.Number == "" {
		return fmt.Errorf("%w: empty station number", ErrInvalidConfig)
	}
	if c.Contactor.Name == "" {
		return fmt.Errorf("%w: contactor line name is empty", ErrInvalidConfig)
	}
	if c.Contactor.Debounce != 0 || c.Contactor.Pull != PullAuto {
		return fmt.Errorf("%w: contactor is an output: debounce and pull do not apply", ErrInvalidConfig)
	}
	if c.FeedbackTimeout < 0 {
		return fmt.Errorf("%w: negative feedback timeout %v", ErrInvalidConfig, c.FeedbackTimeout)
	}
	for _, in := range []struct {
		role string
		pin  *Pin
	}{
		{roleFeedback, c.ContactorFeedback},
		{roleVehicle, c.Vehicle},
		{roleCharging, c.Charging},
		{roleFault, c.Fault},
		{roleStart, c.StartButton},
		{roleStop, c.StopButton},
	} {
		switch {
		case in.pin == nil:
		case in.pin.Name == "":
			return fmt.Errorf("%w: %s line name is empty", ErrInvalidConfig, in.role)
		case in.pin.Debounce < 0:
			return fmt.Errorf("%w: %s line %q: negative debounce %v", ErrInvalidConfig, in.role, in.pin.Name, in.pin.Debounce)
		case !in.pin.Pull.valid():
			return fmt.Errorf("%w: %s line %q: unknown pull %q (want up, down, none or empty)", ErrInvalidConfig, in.role, in.pin.Name, in.pin.Pull)
		}
	}
	return nil
}

func (p Pull) valid() bool {
	switch p {
	case PullAuto, PullUp, PullDown, PullNone:
		return true
	}
	return false
}

// bias maps p to periph's pull for an input with the given polarity.
func (p Pull) bias(activeLow bool) gpio.Pull {
	switch p {
	case PullUp:
		return gpio.PullUp
	case PullDown:
		return gpio.PullDown
	case PullNone:
		return gpio.Float
	}
	if activeLow {
		return gpio.PullUp
	}
	return gpio.PullDown
}

// resolve finds a line by name, refusing sysfs lines.
func resolve(name string) (gpio.PinIO, error) {
	p := gpioreg.ByName(name)
	if p == nil {
		return nil, ErrNoLine
	}
	if _, ok := realPin(p).(*sysfs.Pin); ok {
		return nil, ErrSysfsLine
	}
	return p, nil
}

// realPin unwraps gpioreg aliases, so that two names of one line are
// recognised as the same line.
func realPin(p gpio.PinIO) gpio.PinIO {
	for {
		r, ok := p.(gpio.RealPin)
		if !ok {
			return p
		}
		p = r.Real()
	}
}

// Number returns the configured station number.
func (s *Station) Number() string { return s.number }

// Changes delivers a coalesced notification whenever CP state, contactor
// or fault changed. The channel is never closed.
func (s *Station) Changes() <-chan struct{} { return s.changes }

// Read returns the station's state as the watchers last settled it.
// EnergyWh and PowerW are always 0: energy comes from a meter.
func (s *Station) Read() hal.Reading {
	s.mu.Lock()
	defer s.mu.Unlock()
	v := s.viewLocked()
	return hal.Reading{CP: v.cp, Contactor: v.contactor, Fault: v.fault, At: time.Now()}
}

// view is the part of a Reading whose changes are notified.
type view struct {
	cp        hal.CPState
	contactor bool
	fault     string
}

func (s *Station) viewLocked() view {
	return view{cp: s.cpLocked(), contactor: s.contactorLocked(), fault: s.faultLocked()}
}

func (s *Station) cpLocked() hal.CPState {
	switch {
	case s.faultLocked() != "":
		return hal.CPF
	case s.vehicle == nil && s.charging == nil:
		return hal.CPUnknown
	case s.charging != nil && s.charging.level:
		return hal.CPC
	case s.vehicle != nil && s.vehicle.level:
		return hal.CPB
	}
	return hal.CPA
}

// contactorLocked is the confirmed position: the auxiliary contact when
// there is one, else the command.
func (s *Station) contactorLocked() bool {
	if s.feedback != nil {
		return s.feedback.level
	}
	return s.commanded
}

func (s *Station) faultLocked() string {
	switch {
	case s.fault != nil && s.fault.level:
		return s.faultActive
	case s.internal != "":
		return s.internal
	case s.mismatch:
		return faultMismatch
	}
	return ""
}

// notifyLocked signals Changes if the notified part of the state differs
// from before.
func (s *Station) notifyLocked(before view) {
	if s.viewLocked() == before {
		return
	}
	select {
	case s.changes <- struct{}{}:
	default:
	}
}

// refuseCloseLocked says why the contactor may not close, if it may not.
// A feedback mismatch does not refuse: retrying is how a contactor that
// failed once proves it works again.
func (s *Station) refuseCloseLocked() error {
	switch {
	case s.closed:
		return hal.ErrClosed
	case s.fault != nil && s.fault.level:
		return fmt.Errorf("%w: %s", hal.ErrFaulted, s.faultActive)
	case s.internal != "":
		return fmt.Errorf("%w: %s", hal.ErrFaulted, s.internal)
	}
	return nil
}

// SetContactor drives the contactor and, with a feedback line, waits up
// to FeedbackTimeout (or ctx) for the auxiliary contact to follow. A
// timeout returns hal.ErrNotConfirmed and reports the fault "contactor
// feedback mismatch"; a close that is not confirmed, or whose wait ctx
// ends, is undone by driving the contactor off again. Closing fails with
// hal.ErrFaulted while the fault input is active and hal.ErrClosed after
// Close; opening is always attempted.
func (s *Station) SetContactor(ctx context.Context, on bool) error {
	s.mu.Lock()
	if on {
		if err := s.refuseCloseLocked(); err != nil {
			s.mu.Unlock()
			return fmt.Errorf("set contactor on: %w", err)
		}
	}
	before := s.viewLocked()
	if err := s.driveLocked(on); err != nil {
		if on {
			_ = s.driveLocked(false)
		}
		s.notifyLocked(before)
		s.mu.Unlock()
		return fmt.Errorf("set contactor %s: %w", onOff(on), err)
	}
	s.notifyLocked(before)
	if s.feedback == nil {
		s.mu.Unlock()
		return nil
	}
	return s.confirmLocked(ctx, on)
}

// confirmLocked waits for the feedback line to report on. It is called
// with s.mu held and returns with it released.
func (s *Station) confirmLocked(ctx context.Context, on bool) error {
	s.waiters++
	s.superviseLocked()
	defer func() {
		s.waiters--
		s.superviseLocked()
		s.mu.Unlock()
	}()
	timer := time.NewTimer(s.feedbackTimeout)
	defer timer.Stop()
	for {
		if s.commanded != on {
			// A later command (or a fault forcing the contactor open)
			// reversed this one; it can no longer be confirmed. A later
			// command for the same position just joins the wait.
			if on {
				if err := s.refuseCloseLocked(); err != nil {
					return fmt.Errorf("set contactor on: %w", err)
				}
			}
			return fmt.Errorf("set contactor %s: superseded by a later command: %w", onOff(on), hal.ErrNotConfirmed)
		}
		if s.feedback.level == on {
			if on && s.mismatch {
				before := s.viewLocked()
				s.mismatch = false
				s.notifyLocked(before)
			}
			return nil
		}
		if s.stopped {
			// Closed: no watcher will report the feedback moving.
			return fmt.Errorf("set contactor %s: station closed, feedback unknown: %w", onOff(on), hal.ErrNotConfirmed)
		}
		changed := s.wake
		s.mu.Unlock()
		var ctxErr error
		select {
		case <-changed:
			s.mu.Lock()
			continue
		case <-timer.C:
		case <-ctx.Done():
			ctxErr = ctx.Err()
		}
		s.mu.Lock()
		if s.commanded != on || s.feedback.level == on {
			continue // decided meanwhile; report that
		}
		before := s.viewLocked()
		if on {
			_ = s.driveLocked(false)
		}
		if ctxErr != nil {
			s.notifyLocked(before)
			return fmt.Errorf("set contactor %s: %w", onOff(on), ctxErr)
		}
		s.mismatch = true
		s.notifyLocked(before)
		s.log.Warn("contactor feedback did not follow", "command", onOff(on), "timeout", s.feedbackTimeout,
			"contactor", s.outName, "feedback", s.feedback.name)
		return fmt.Errorf("set contactor %s: feedback %q did not follow within %v: %w",
			onOff(on), s.feedback.name, s.feedbackTimeout, hal.ErrNotConfirmed)
	}
}

// Halt opens the contactor and waits for its confirmation.
func (s *Station) Halt() error {
	if err := s.SetContactor(context.Background(), false); err != nil {
		return fmt.Errorf("halt station %s: %w", s.number, err)
	}
	return nil
}

// Close halts the station, stops its watchers and drives the contactor off
// once more. Afterwards closing the contactor fails with hal.ErrClosed.
// Close may be called more than once and concurrently; it does not wait
// for OnStart/OnStop calls still running.
func (s *Station) Close() error {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	err := s.Halt()
	s.closeOnce.Do(func() {
		close(s.quit)
		s.watchers.Wait()
		s.mu.Lock()
		s.stopped = true
		s.superviseLocked()
		before := s.viewLocked()
		_ = s.driveLocked(false)
		s.notifyLocked(before)
		s.mu.Unlock()
		unclaimStation(s)
		s.log.Info("gpio station closed")
	})
	return err
}

// driveLocked commands the contactor. The command is recorded even if
// the write fails, so that the station never reports a close it did not
// make, and an open is never undone.
func (s *Station) driveLocked(on bool) error {
	if s.commanded != on {
		s.commanded = on
		s.wakeLocked()
	}
	s.superviseLocked()
	if err := s.write(on); err != nil {
		s.log.Error("drive contactor", "command", onOff(on), "line", s.outName, "err", err)
		return err
	}
	return nil
}

// wakeLocked wakes the SetContactor calls waiting for confirmation.
func (s *Station) wakeLocked() {
	close(s.wake)
	s.wake = make(chan struct{})
}

// write sets the contactor line. A panicking pin driver is turned into an
// error, because write runs with s.mu held and on every fail-safe path.
func (s *Station) write(on bool) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("contactor line %q: panic: %v", s.outName, r)
		}
	}()
	if err := s.out.Out(gpio.Level(on != s.outActiveLow)); err != nil {
		return fmt.Errorf("contactor line %q: %w", s.outName, err)
	}
	return nil
}

// forceOffLocked opens the contactor outside any command: a fault, a
// panic, a feedback mismatch. A SetContactor(true) waiting for
// confirmation is superseded.
func (s *Station) forceOffLocked(why string) {
	if !s.commanded {
		return
	}
	_ = s.driveLocked(false)
	s.log.Warn("contactor forced off", "why", why)
}

// superviseLocked arms or disarms the mismatch timer: while no
// SetContactor waits and the feedback disagrees with the command, the
// disagreement becomes a fault after FeedbackTimeout (a contactor that
// drops out or welds outside a command).
func (s *Station) superviseLocked() {
	need := s.feedback != nil && !s.stopped && s.waiters == 0 && !s.mismatch &&
		s.feedback.level != s.commanded
	if !need {
		if s.supervise != nil {
			s.supervise.Stop()
			s.supervise = nil
			s.superviseGen++
		}
		return
	}
	if s.supervise != nil {
		return
	}
	s.superviseGen++
	gen := s.superviseGen
	s.supervise = time.AfterFunc(s.feedbackTimeout, func() {
		defer s.recoverPanic("contactor supervision", true)
		s.superviseExpired(gen)
	})
}

func (s *Station) superviseExpired(gen uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if gen != s.superviseGen || s.supervise == nil {
		return
	}
	s.supervise = nil
	if s.stopped || s.waiters > 0 || s.mismatch || s.feedback.level == s.commanded {
		return
	}
	before := s.viewLocked()
	s.mismatch = true
	s.log.Warn("contactor feedback disagrees with command", "command", onOff(s.commanded),
		"feedback", onOff(s.feedback.level), "for", s.feedbackTimeout)
	s.forceOffLocked(faultMismatch)
	s.notifyLocked(before)
}

// recoverPanic, deferred in every goroutine the driver starts, turns a
// panic into the safe state: contactor off, logged, and for the driver's
// own goroutines a sticky fault, since an input is no longer watched.
func (s *Station) recoverPanic(where string, sticky bool) {
	r := recover()
	if r == nil {
		return
	}
	s.log.Error("panic in gpio station, contactor driven off", "in", where, "panic", r, "stack", string(debug.Stack()))
	s.mu.Lock()
	defer s.mu.Unlock()
	before := s.viewLocked()
	if sticky && s.internal == "" {
		s.internal = fmt.Sprintf("internal error: %s panicked", where)
	}
	s.forceOffLocked("panic in " + where)
	s.notifyLocked(before)
}

// watch follows one input until Close: it waits for an edge, lets the
// level settle for the pin's debounce time and commits it.
func (s *Station) watch(in *input) {
	defer s.watchers.Done()
	defer s.recoverPanic("watcher of "+in.role+" line "+in.name, true)
	for {
		if s.stopping() {
			return
		}
		if !s.waitEdge(in, edgeWait) {
			// No edge: resync with the line, in case the kernel dropped
			// events (its per-line buffer overflows on long bounce
			// bursts). One read per edgeWait, not a busy poll.
			if in.logical(in.pin.Read()) == s.levelOf(in) {
				continue
			}
		}
		level, ok := s.settle(in)
		if !ok {
			return
		}
		counted := s.commit(in, level)
		if s.hooks.settled != nil {
			s.hooks.settled(in.role, level, counted)
		}
	}
}

// settle waits until the input's level has held for its debounce time,
// restarting the wait on every edge, and returns that level. ok is false
// when Close interrupted it.
func (s *Station) settle(in *input) (level bool, ok bool) {
	level = in.logical(in.pin.Read())
	if in.debounce <= 0 {
		return level, true
	}
	held := time.Now()
	for {
		remaining := in.debounce - time.Since(held)
		if remaining <= 0 {
			// Quiet for the whole window; a last read catches an edge
			// that the kernel may have dropped.
			now := in.logical(in.pin.Read())
			if now == level {
				return level, true
			}
			level, held = now, time.Now()
			continue
		}
		if s.stopping() {
			return level, false
		}
		if s.waitEdge(in, min(remaining, edgeWait)) {
			level, held = in.logical(in.pin.Read()), time.Now()
		}
	}
}

// waitEdge waits up to d (> 0) for an edge. A pin that returns false long
// before its timeout (a misconfigured or failing line) would make the
// watcher spin; waitEdge sleeps out the rest instead and warns once.
func (s *Station) waitEdge(in *input, d time.Duration) bool {
	start := time.Now()
	if in.pin.WaitForEdge(d) {
		return true
	}
	if early := d - time.Since(start); early > d/2 {
		s.mu.Lock()
		warned := s.spinWarnedFor[in.role]
		s.spinWarnedFor[in.role] = true
		s.mu.Unlock()
		if !warned {
			s.log.Warn("gpio line returns from WaitForEdge early; edges may be missed", "role", in.role, "line", in.name)
		}
		t := time.NewTimer(early)
		defer t.Stop()
		select {
		case <-t.C:
		case <-s.quit:
		}
	}
	return false
}

// levelOf returns the input's committed level. Pins are never touched
// with s.mu held, except the contactor through write.
func (s *Station) levelOf(in *input) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return in.level
}

func (s *Station) stopping() bool {
	select {
	case <-s.quit:
		return true
	default:
		return false
	}
}

// commit records a settled level and reacts to it. It reports whether
// the level changed.
func (s *Station) commit(in *input, level bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if in.level == level {
		return false
	}
	before := s.viewLocked()
	in.level = level
	s.log.Debug("gpio input changed", "role", in.role, "line", in.name, "active", level)
	switch in {
	case s.feedback:
		s.wakeLocked()
		if s.mismatch && level == s.commanded {
			s.mismatch = false
			s.log.Info("contactor feedback agrees again", "position", onOff(level))
		}
	case s.fault:
		if level {
			s.forceOffLocked(s.faultActive)
		}
	case s.start:
		if level {
			s.callback(roleStart, s.onStart)
		}
	case s.stop:
		if level {
			s.callback(roleStop, s.onStop)
		}
	}
	s.superviseLocked()
	s.notifyLocked(before)
	return true
}

// callback runs f in its own goroutine; a panic in it opens the
// contactor but does not fault the station, since the driver itself is
// intact.
func (s *Station) callback(role string, f func()) {
	if f == nil {
		return
	}
	s.callbacks.Add(1)
	go func() {
		defer s.callbacks.Done()
		defer s.recoverPanic(role+" callback", false)
		f()
	}()
}

func onOff(on bool) string {
	if on {
		return "on"
	}
	return "off"
}
