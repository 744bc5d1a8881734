package modbus

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"
)

// fakeDevice is an in-memory Client for unit tests of the meter and the
// station logic; the wire is tested against pymodbus over a pty.
type fakeDevice struct {
	mu    sync.Mutex
	regs  map[regKey]uint16 // holding (3) and input (4) registers
	coils map[regKey]bool   // function is 1
	err   error             // while set, every transaction fails with it
	stuck bool              // writes are acknowledged but change nothing
	reads int
}

type regKey struct {
	unit, function byte
	addr           uint16
}

func newFakeDevice() *fakeDevice {
	return &fakeDevice{regs: map[regKey]uint16{}, coils: map[regKey]bool{}}
}

var _ Client = (*fakeDevice)(nil)

func (f *fakeDevice) set(unit, function byte, addr uint16, words ...uint16) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, w := range words {
		f.regs[regKey{unit, function, addr + uint16(i)}] = w
	}
}

func (f *fakeDevice) setUint32(unit, function byte, addr uint16, v uint32) {
	f.set(unit, function, addr, uint16(v>>16), uint16(v))
}

func (f *fakeDevice) setCoil(unit byte, addr uint16, on bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.coils[regKey{unit, FuncReadCoils, addr}] = on
}

func (f *fakeDevice) coil(unit byte, addr uint16) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.coils[regKey{unit, FuncReadCoils, addr}]
}

func (f *fakeDevice) setErr(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.err = err
}

func (f *fakeDevice) setStuck(stuck bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.stuck = stuck
}

func (f *fakeDevice) ReadRegisters(ctx context.Context, unit, function byte, addr, count uint16) ([]uint16, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reads++
	if f.err != nil {
		return nil, f.err
	}
	out := make([]uint16, count)
	for i := range out {
		w, ok := f.regs[regKey{unit, function, addr + uint16(i)}]
		if !ok {
			return nil, &ExceptionError{Function: function, Code: ExceptionIllegalAddress}
		}
		out[i] = w
	}
	return out, nil
}

func (f *fakeDevice) ReadCoils(ctx context.Context, unit byte, addr, count uint16) ([]bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return nil, f.err
	}
	out := make([]bool, count)
	for i := range out {
		v, ok := f.coils[regKey{unit, FuncReadCoils, addr + uint16(i)}]
		if !ok {
			return nil, &ExceptionError{Function: FuncReadCoils, Code: ExceptionIllegalAddress}
		}
		out[i] = v
	}
	return out, nil
}

func (f *fakeDevice) WriteCoil(ctx context.Context, unit byte, addr uint16, on bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	k := regKey{unit, FuncReadCoils, addr}
	if f.err != nil {
		return f.err
	}
	if _, ok := f.coils[k]; !ok {
		return &ExceptionError{Function: FuncWriteSingleCoil, Code: ExceptionIllegalAddress}
	}
	if !f.stuck {
		f.coils[k] = on
	}
	return nil
}

func (f *fakeDevice) WriteRegister(ctx context.Context, unit byte, addr, value uint16) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	k := regKey{unit, FuncReadHoldingRegisters, addr}
	if f.err != nil {
		return f.err
	}
	if _, ok := f.regs[k]; !ok {
		return &ExceptionError{Function: FuncWriteSingleRegister, Code: ExceptionIllegalAddress}
	}
	if !f.stuck {
		f.regs[k] = value
	}
	return nil
}

// fakeClock is a settable clock for readings, the jump check and log
// limiting.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// logRecorder is a slog.Handler that keeps the records it gets.
type logRecorder struct {
	mu   sync.Mutex
	recs []slog.Record
}

func (h *logRecorder) Enabled(context.Context, slog.Level) bool { return true }

func (h *logRecorder) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.recs = append(h.recs, r.Clone())
	return nil
}

func (h *logRecorder) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *logRecorder) WithGroup(string) slog.Handler      { return h }

// messages returns the messages logged at level or above.
func (h *logRecorder) messages(level slog.Level) []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []string
	for _, r := range h.recs {
		if r.Level >= level {
			out = append(out, r.Message)
		}
	}
	return out
}

// attr returns the value of key in the i-th record at level or above.
func (h *logRecorder) attr(t *testing.T, level slog.Level, i int, key string) (slog.Value, bool) {
	t.Helper()
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, r := range h.recs {
		if r.Level < level {
			continue
		}
		if n == i {
			var v slog.Value
			found := false
			r.Attrs(func(a slog.Attr) bool {
				if a.Key == key {
					v, found = a.Value, true
					return false
				}
				return true
			})
			return v, found
		}
		n++
	}
	t.Fatalf("no record %d at level %v", i, level)
	return slog.Value{}, false
}
