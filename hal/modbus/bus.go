package modbus

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.bug.st/serial"
)

// Defaults of BusConfig.
const (
	DefaultBaud    = 9600
	DefaultTimeout = 500 * time.Millisecond
	// MinGap is the least silence between two transactions. The RTU
	// t3.5 is 3.5 character times, but above 19200 baud the standard
	// fixes it at 1.75 ms, and USB adapters add jitter; 2 ms covers both.
	MinGap = 2 * time.Millisecond
	// readSlice bounds one blocking read so that a cancelled context ends
	// a transaction early instead of after the full timeout.
	readSlice = 50 * time.Millisecond
)

// BusConfig describes one RS-485 serial port and its line settings. Every
// device on the bus must use the same settings.
type BusConfig struct {
	// Name identifies the bus in logs and errors; empty means Port.
	Name string
	// Port is the serial device, e.g. /dev/ttyUSB0 or a
	// /dev/serial/by-id/... link (stable across reboots).
	Port string
	// Baud is the bit rate; 0 means DefaultBaud.
	Baud int
	// Parity is "N", "E" or "O"; empty means "N" (the factory setting of
	// Eastron meters; the Modbus standard's default is "E").
	Parity string
	// StopBits is 1 or 2; 0 means 1.
	StopBits int
	// DataBits is 7 or 8; 0 means 8 (RTU needs 8).
	DataBits int
	// Timeout bounds the wait for a response after the request was sent;
	// 0 means DefaultTimeout.
	Timeout time.Duration
	// Gap is the silence kept between the end of one transaction and the
	// start of the next; 0 means 3.5 character times, at least MinGap.
	Gap time.Duration
	// Reopen is the schedule of attempts to open the port again after it
	// went missing; zero fields take DefaultBackoff's.
	Reopen Backoff
}

// DefaultBackoff is the reopen schedule of a missing port: a USB adapter
// re-enumerates within seconds, an unplugged one may be gone for hours,
// and a port tried every 30 s costs nothing.
var DefaultBackoff = Backoff{Min: time.Second, Max: 30 * time.Second, Jitter: 0.2}

// Backoff is the schedule of a missing port's reopen attempts: Min after
// the port was lost, doubling up to Max, each wait shortened by a random
// share of up to Jitter of it so that buses lost together (a USB hub
// unplugged) do not retry in step.
type Backoff struct {
	Min, Max time.Duration
	// Jitter is the largest share of a wait cut off at random, 0 to 1.
	Jitter float64
}

func (b Backoff) withDefaults() Backoff {
	if b.Min <= 0 {
		b.Min = DefaultBackoff.Min
	}
	if b.Max <= 0 {
		b.Max = max(DefaultBackoff.Max, b.Min)
	}
	b.Max = max(b.Max, b.Min)
	if b.Jitter <= 0 || b.Jitter > 1 {
		b.Jitter = DefaultBackoff.Jitter
	}
	return b
}

// Delay is the wait before reopen attempt n (0 is the first after the
// loss): Min·2ⁿ, at most Max, less r·Jitter of it; r is a random number
// in [0, 1). The result is never above Max nor below (1−Jitter)·Min.
// Zero fields take DefaultBackoff's.
func (b Backoff) Delay(n int, r float64) time.Duration {
	b = b.withDefaults()
	d := b.Max
	if n < 32 { // beyond, the doubling is past any Max anyway
		d = min(b.Min<<max(n, 0), b.Max)
		if d <= 0 { // overflowed
			d = b.Max
		}
	}
	r = min(max(r, 0), 1)
	return d - time.Duration(float64(d)*b.Jitter*r)
}

// withDefaults fills the zero fields and checks the rest.
func (c BusConfig) withDefaults() (BusConfig, error) {
	if c.Port == "" {
		return c, fmt.Errorf("%w: bus port is empty", ErrBadConfig)
	}
	if c.Name == "" {
		c.Name = c.Port
	}
	if c.Baud == 0 {
		c.Baud = DefaultBaud
	}
	if c.Parity == "" {
		c.Parity = "N"
	}
	c.Parity = strings.ToUpper(c.Parity)
	c.Reopen = c.Reopen.withDefaults()
	if c.StopBits == 0 {
		c.StopBits = 1
	}
	if c.DataBits == 0 {
		c.DataBits = 8
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	switch {
	case c.Baud < 0:
		return c, fmt.Errorf("%w: bus %s: baud %d", ErrBadConfig, c.Name, c.Baud)
	case c.Parity != "N" && c.Parity != "E" && c.Parity != "O":
		return c, fmt.Errorf("%w: bus %s: parity %q (want N, E or O)", ErrBadConfig, c.Name, c.Parity)
	case c.StopBits != 1 && c.StopBits != 2:
		return c, fmt.Errorf("%w: bus %s: stop bits %d (want 1 or 2)", ErrBadConfig, c.Name, c.StopBits)
	case c.DataBits != 7 && c.DataBits != 8:
		return c, fmt.Errorf("%w: bus %s: data bits %d (want 8, or 7)", ErrBadConfig, c.Name, c.DataBits)
	case c.Timeout < 0:
		return c, fmt.Errorf("%w: bus %s: timeout %v", ErrBadConfig, c.Name, c.Timeout)
	case c.Gap < 0:
		return c, fmt.Errorf("%w: bus %s: gap %v", ErrBadConfig, c.Name, c.Gap)
	}
	if c.Gap == 0 {
		c.Gap = max(c.charTime()*7/2, MinGap)
	}
	return c, nil
}

// charTime is the time one character takes on the line: start bit, data
// bits, parity bit, stop bits.
func (c BusConfig) charTime() time.Duration {
	bits := 1 + c.DataBits + c.StopBits
	if c.Parity != "N" {
		bits++
	}
	return time.Duration(bits) * time.Second / time.Duration(c.Baud)
}

func (c BusConfig) mode() *serial.Mode {
	m := &serial.Mode{BaudRate: c.Baud, DataBits: c.DataBits, Parity: serial.NoParity, StopBits: serial.OneStopBit}
	switch c.Parity {
	case "E":
		m.Parity = serial.EvenParity
	case "O":
		m.Parity = serial.OddParity
	}
	if c.StopBits == 2 {
		m.StopBits = serial.TwoStopBits
	}
	return m
}

// port is the part of serial.Port a Bus uses.
type port interface {
	io.ReadWriter
	SetReadTimeout(time.Duration) error
	ResetInputBuffer() error
	Close() error
}

// Reader reads registers: what a Meter needs. *Bus implements it; tests
// pass fakes.
type Reader interface {
	ReadRegisters(ctx context.Context, unit, function byte, addr, count uint16) ([]uint16, error)
}

// Client is what a controller Station needs: registers, coils and the
// two single writes. *Bus implements it.
type Client interface {
	Reader
	ReadCoils(ctx context.Context, unit byte, addr, count uint16) ([]bool, error)
	WriteCoil(ctx context.Context, unit byte, addr uint16, on bool) error
	WriteRegister(ctx context.Context, unit byte, addr, value uint16) error
}

var _ Client = (*Bus)(nil)

// Bus is one serial port shared by the devices on its RS-485 line. It runs
// one transaction at a time (a master may not talk over a pending
// response) and keeps the inter-frame silence between them. It is safe for
// concurrent use.
//
// A port that is missing, or fails (a USB adapter unplugged: EIO, ENXIO,
// a hang-up), is closed and reopened by a goroutine of its own on the
// BusConfig.Reopen schedule until it opens again; meanwhile every
// transaction fails at once with a *PortError, which faults the devices
// on this bus and no other.
type Bus struct {
	cfg  BusConfig
	log  *slog.Logger
	lim  *limiter             // port failure lines
	open func() (port, error) // reopens the port after a port failure; nil: never

	sem       chan struct{} // one token: the right to use the line
	lastEnd   time.Time     // end of the last transaction; guarded by sem
	closeOnce sync.Once
	closeErr  error
	done      chan struct{}  // closed by Close: ends the reopen loop
	reopens   sync.WaitGroup // the reopen loop, if running

	attempts atomic.Uint64 // reopen attempts
	failures atomic.Uint64 // reopen attempts that failed

	// delay, if set, replaces the Reopen schedule (tests record it).
	delay func(n int) time.Duration

	mu         sync.Mutex // guards what follows, never held during I/O
	port       port       // nil while missing, until reopened
	lost       *PortError // why port is nil
	reopening  bool       // the reopen loop runs
	reopenedAt time.Time  // when the loop last opened the port
	streak     int        // the attempt that did
	closed     bool
}

// PortError is the error of a bus whose serial port is missing or failed:
// it names the bus and the port, e.g. "rs485-1 (/dev/ttyUSB0): no such
// file or directory". It matches ErrPortUnavailable with errors.Is and
// unwraps to the system's error.
type PortError struct {
	Bus, Port string
	// Op is what failed on an open port ("read", "write", ...); empty
	// when the port could not be opened.
	Op  string
	Err error
}

// Error names the bus and its port first: the thing a technician checks.
func (e *PortError) Error() string {
	name := e.Port
	if e.Bus != "" && e.Bus != e.Port {
		name = e.Bus + " (" + e.Port + ")"
	}
	if e.Op != "" {
		return name + ": " + e.Op + ": " + e.Err.Error()
	}
	return name + ": " + e.Err.Error()
}

// Unwrap returns the system's error (errors.Is(err, fs.ErrNotExist) for
// a missing device node).
func (e *PortError) Unwrap() error { return e.Err }

// Is makes every PortError match ErrPortUnavailable.
func (e *PortError) Is(target error) bool { return target == ErrPortUnavailable }

// errHangup stands for go.bug.st/serial's "Port has been closed" on a
// read the Bus did not close: the device went away under an open port.
var errHangup = errors.New("hang-up: the device went away")

// OpenBus opens and configures the serial port, and fails if it cannot
// (a *PortError naming the port): for one-off use such as a command-line
// probe. The daemon uses StartBus. One Bus per port: every Meter and
// Station on the line shares it. A nil log discards. If the port fails
// later (a USB adapter unplugged), transactions fail and the Bus reopens
// the port on the BusConfig.Reopen schedule until it works again.
func OpenBus(c BusConfig, log *slog.Logger) (*Bus, error) {
	c, err := c.withDefaults()
	if err != nil {
		return nil, fmt.Errorf("open modbus bus: %w", err)
	}
	open := func() (port, error) { return serial.Open(c.Port, c.mode()) }
	p, err := open()
	if err != nil {
		return nil, fmt.Errorf("open modbus bus: %w", &PortError{Bus: c.Name, Port: c.Port, Err: err})
	}
	b := newBus(p, c, log)
	b.open = open
	b.logOpen()
	return b, nil
}

// StartBus is OpenBus for a daemon: a port that cannot be opened now (a
// USB adapter not enumerated yet, or unplugged) is no error. The Bus
// starts without it, its transactions fail with a *PortError, and it
// keeps trying to open the port on the BusConfig.Reopen schedule until
// Close. Only a bad configuration is an error.
func StartBus(c BusConfig, log *slog.Logger) (*Bus, error) {
	c, err := c.withDefaults()
	if err != nil {
		return nil, fmt.Errorf("open modbus bus: %w", err)
	}
	open := func() (port, error) { return serial.Open(c.Port, c.mode()) }
	p, err := open()
	b := newBus(p, c, log)
	b.open = open
	if err != nil {
		b.port = nil
		b.mu.Lock()
		b.lostLocked(&PortError{Bus: c.Name, Port: c.Port, Err: err})
		b.mu.Unlock()
		b.log.Warn("modbus port unavailable; its devices are faulted until it opens", "port", c.Port, "err", err,
			"retry_min", c.Reopen.Min, "retry_max", c.Reopen.Max)
		return b, nil
	}
	b.logOpen()
	return b, nil
}

func (b *Bus) logOpen() {
	c := b.cfg
	b.log.Info("modbus bus open", "port", c.Port, "baud", c.Baud, "parity", c.Parity,
		"stop_bits", c.StopBits, "timeout", c.Timeout, "gap", c.Gap)
}

// newBus wraps an open port; c must have its defaults filled.
func newBus(p port, c BusConfig, log *slog.Logger) *Bus {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Bus{
		cfg:  c,
		log:  log.With("bus", c.Name),
		lim:  newLimiter(),
		sem:  make(chan struct{}, 1),
		done: make(chan struct{}),
		port: p,
	}
}

// BusStats are a bus's port figures for metrics.
type BusStats struct {
	// Up is true while the port is open.
	Up bool
	// ReopenAttempts counts the reopen loop's attempts to open the port
	// again since the Bus was made; ReopenFailures those that failed.
	ReopenAttempts, ReopenFailures uint64
	// Err is why the port is missing while it is (a *PortError).
	Err error
}

// Stats returns the port figures without touching the port.
func (b *Bus) Stats() BusStats {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := BusStats{Up: b.port != nil && !b.closed, ReopenAttempts: b.attempts.Load(), ReopenFailures: b.failures.Load()}
	if b.port == nil && b.lost != nil {
		s.Err = b.lost
	}
	return s
}

// Name returns the bus name from the configuration.
func (b *Bus) Name() string { return b.cfg.Name }

// Config returns the configuration with defaults filled in.
func (b *Bus) Config() BusConfig { return b.cfg }

// Close closes the port. A transaction in progress ends with
// ErrBusClosed; later ones fail with it. Close may be called more than
// once.
func (b *Bus) Close() error {
	b.closeOnce.Do(func() {
		b.mu.Lock()
		b.closed = true
		p := b.port
		b.port = nil
		b.mu.Unlock()
		close(b.done)
		if p != nil {
			b.closeErr = p.Close()
		}
		// At most one open call long: the loop waits on done otherwise.
		b.reopens.Wait()
		b.log.Info("modbus bus closed")
	})
	if b.closeErr != nil {
		return fmt.Errorf("close modbus bus %s: %w", b.cfg.Name, b.closeErr)
	}
	return nil
}

// ReadRegisters reads count holding (function 0x03) or input (0x04)
// registers from addr.
func (b *Bus) ReadRegisters(ctx context.Context, unit, function byte, addr, count uint16) ([]uint16, error) {
	if function != FuncReadHoldingRegisters && function != FuncReadInputRegisters {
		return nil, fmt.Errorf("read registers: %w: function 0x%02X is no register read", ErrInvalidRequest, function)
	}
	data, err := b.Transact(ctx, ReadRequest(unit, function, addr, count))
	if err != nil {
		return nil, err
	}
	return Words(data), nil
}

// ReadCoils reads count coils (function 0x01) from addr.
func (b *Bus) ReadCoils(ctx context.Context, unit byte, addr, count uint16) ([]bool, error) {
	data, err := b.Transact(ctx, ReadRequest(unit, FuncReadCoils, addr, count))
	if err != nil {
		return nil, err
	}
	return Bits(data, int(count)), nil
}

// WriteCoil switches one coil (function 0x05) and checks the echo.
func (b *Bus) WriteCoil(ctx context.Context, unit byte, addr uint16, on bool) error {
	_, err := b.Transact(ctx, WriteCoilRequest(unit, addr, on))
	return err
}

// WriteRegister writes one holding register (function 0x06) and checks
// the echo.
func (b *Bus) WriteRegister(ctx context.Context, unit byte, addr, value uint16) error {
	_, err := b.Transact(ctx, WriteRegisterRequest(unit, addr, value))
	return err
}

// Transact runs one request/response transaction and returns the
// response data as DecodeResponse does. It waits for the line (or ctx),
// keeps the inter-frame gap, discards stale input, sends the request and
// reads until the response is complete or the timeout passes. Errors wrap
// the request's description, except a *PortError: a missing port is the
// bus's fault, not the request's, and is returned as it is.
func (b *Bus) Transact(ctx context.Context, req Request) ([]byte, error) {
	data, err := b.transact(ctx, req)
	if err != nil {
		if pe := (*PortError)(nil); errors.As(err, &pe) {
			return nil, err
		}
		return nil, fmt.Errorf("%s on %s: %w", req, b.cfg.Name, err)
	}
	return data, nil
}

func (b *Bus) transact(ctx context.Context, req Request) ([]byte, error) {
	frame, err := req.Encode()
	if err != nil {
		return nil, err
	}
	select {
	case b.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	defer func() {
		b.lastEnd = time.Now()
		<-b.sem
	}()
	if err := b.waitGap(ctx); err != nil {
		return nil, err
	}
	p, err := b.usablePort()
	if err != nil {
		return nil, err
	}
	// A late answer to a timed-out request, or noise, must not be taken
	// for the start of this response.
	if err := p.ResetInputBuffer(); err != nil {
		return nil, b.fail(p, "flush input", err)
	}
	if _, err := p.Write(frame); err != nil {
		return nil, b.fail(p, "write", err)
	}
	// Timeout is the device's time to answer. Write returns when the
	// frame is queued, so add the time the line needs to carry the request
	// and the response (255 bytes take 266 ms at 9600 baud).
	onLine := time.Duration(len(frame)+req.ResponseLen(nil)) * b.cfg.charTime()
	deadline := time.Now().Add(b.cfg.Timeout + onLine)
	resp, err := b.readResponse(ctx, p, req, deadline)
	if err != nil {
		return nil, err
	}
	if len(resp) == 0 {
		return nil, ErrTimeout
	}
	return req.DecodeResponse(resp)
}

// usablePort returns the open port, or why there is none: the reopen
// loop, not a transaction, opens it again. The caller holds sem.
func (b *Bus) usablePort() (port, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch {
	case b.closed:
		return nil, ErrBusClosed
	case b.port != nil:
		return b.port, nil
	case b.lost != nil:
		return nil, b.lost
	}
	return nil, &PortError{Bus: b.cfg.Name, Port: b.cfg.Port, Err: errors.New("not open")}
}

// fail handles an I/O error of port p: after Close it is ErrBusClosed;
// otherwise the port is closed and dropped, and the reopen loop started.
// The caller holds sem.
func (b *Bus) fail(p port, op string, err error) error {
	if se := (*serial.PortError)(nil); errors.As(err, &se) && se.Code() == serial.PortClosed {
		err = errHangup
	}
	pe := &PortError{Bus: b.cfg.Name, Port: b.cfg.Port, Op: op, Err: err}
	b.mu.Lock()
	closed := b.closed
	if !closed && b.port == p {
		b.port = nil
		b.lostLocked(pe)
	}
	b.mu.Unlock()
	if closed {
		return fmt.Errorf("%s: %w", op, ErrBusClosed)
	}
	_ = p.Close()
	if ok, suppressed := b.lim.allow(time.Now()); ok {
		b.log.Warn("modbus port failed; its devices are faulted until it is reopened", "op", op, "err", err,
			"retry_min", b.cfg.Reopen.Min, "retry_max", b.cfg.Reopen.Max, "suppressed_lines", suppressed)
	}
	return pe
}

// lostLocked records why the port is gone and starts the reopen loop if
// it is not running. The caller holds mu and has set port to nil.
func (b *Bus) lostLocked(pe *PortError) {
	b.lost = pe
	if b.reopening || b.closed || b.open == nil {
		return
	}
	// A port that fails again soon after it was reopened (a flaky
	// adapter, a device that opens but does not work) goes on backing
	// off instead of starting over at Min.
	start := 0
	if !b.reopenedAt.IsZero() && time.Since(b.reopenedAt) < b.cfg.Reopen.Max {
		start = b.streak + 1
	}
	b.reopening = true
	b.reopens.Add(1)
	go b.reopen(start)
}

// reopen tries to open the port on the Reopen schedule, from attempt
// start, until it opens or the Bus is closed. One runs per Bus at a time;
// it takes no line token, so transactions keep failing fast while it
// waits.
func (b *Bus) reopen(start int) {
	defer b.reopens.Done()
	for n := start; ; n++ {
		d := b.cfg.Reopen.Delay(n, rand.Float64())
		if b.delay != nil {
			d = b.delay(n)
		}
		t := time.NewTimer(d)
		select {
		case <-b.done:
			t.Stop()
			b.mu.Lock()
			b.reopening = false
			b.mu.Unlock()
			return
		case <-t.C:
		}
		b.attempts.Add(1)
		p, err := b.open()
		b.mu.Lock()
		if b.closed {
			b.reopening = false
			b.mu.Unlock()
			if err == nil {
				_ = p.Close()
			}
			return
		}
		if err != nil {
			b.failures.Add(1)
			b.lost = &PortError{Bus: b.cfg.Name, Port: b.cfg.Port, Err: err}
			b.mu.Unlock()
			if ok, suppressed := b.lim.allow(time.Now()); ok {
				b.log.Warn("modbus port still unavailable; retrying", "port", b.cfg.Port, "err", err,
					"attempts", n+1-start, "suppressed_lines", suppressed)
			}
			continue
		}
		b.port, b.lost, b.reopening = p, nil, false
		b.reopenedAt, b.streak = time.Now(), n
		b.mu.Unlock()
		// Always logged: recovery is rare (the schedule, which a flapping
		// port does not reset, bounds it) and an operator looks for it.
		b.log.Info("modbus port reopened", "port", b.cfg.Port, "attempts", n+1-start)
		return
	}
}

// waitGap keeps the line silent for Gap after the previous transaction.
func (b *Bus) waitGap(ctx context.Context) error {
	wait := time.Until(b.lastEnd.Add(b.cfg.Gap))
	if wait <= 0 {
		return nil
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// readResponse reads from p until the response to req is complete, the
// deadline passes or ctx ends, and returns what arrived.
func (b *Bus) readResponse(ctx context.Context, p port, req Request, deadline time.Time) ([]byte, error) {
	buf := make([]byte, 0, maxADU)
	tmp := make([]byte, maxADU)
	for {
		need := req.ResponseLen(buf)
		if len(buf) >= need {
			return buf, nil
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		left := time.Until(deadline)
		if left <= 0 {
			return buf, nil
		}
		if err := p.SetReadTimeout(min(left, readSlice)); err != nil {
			return nil, b.fail(p, "set read timeout", err)
		}
		n, err := p.Read(tmp[:need-len(buf)])
		if err != nil {
			return nil, b.fail(p, "read", err)
		}
		buf = append(buf, tmp[:n]...)
	}
}
