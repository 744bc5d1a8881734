package modbus

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"math"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.bug.st/serial"

	"github.com/sitelink/sitelink/hal/modbus/modbustest"
)

func TestBusConfigDefaults(t *testing.T) {
	tests := []struct {
		name string
		in   BusConfig
		gap  time.Duration
	}{
		{"9600 8N1", BusConfig{Port: "/dev/x"}, 3645833 * time.Nanosecond}, // 3.5 x 10 bits / 9600
		{"9600 8E1", BusConfig{Port: "/dev/x", Parity: "e"}, 4010416 * time.Nanosecond},
		{"115200 uses the floor", BusConfig{Port: "/dev/x", Baud: 115200}, MinGap},
		{"explicit gap", BusConfig{Port: "/dev/x", Gap: 10 * time.Millisecond}, 10 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := tt.in.withDefaults()
			if err != nil {
				t.Fatal(err)
			}
			if (c.Gap-tt.gap).Abs() > time.Microsecond || c.Timeout != DefaultTimeout || c.DataBits != 8 || c.StopBits != 1 || c.Name != "/dev/x" {
				t.Fatalf("defaults %+v, want gap %v", c, tt.gap)
			}
		})
	}
	for _, bad := range []BusConfig{
		{},
		{Port: "/dev/x", Parity: "M"},
		{Port: "/dev/x", StopBits: 3},
		{Port: "/dev/x", DataBits: 5},
		{Port: "/dev/x", Baud: -1},
		{Port: "/dev/x", Timeout: -time.Second},
	} {
		if _, err := OpenBus(bad, nil); !errors.Is(err, ErrBadConfig) {
			t.Errorf("OpenBus(%+v) = %v, want ErrBadConfig", bad, err)
		}
	}
	missing := filepath.Join(t.TempDir(), "nonexistent")
	_, err := OpenBus(BusConfig{Name: "rs485-9", Port: missing}, nil)
	if want := "open modbus bus: rs485-9 (" + missing + "): no such file or directory"; !errors.Is(err, ErrPortUnavailable) || err.Error() != want {
		t.Errorf("OpenBus of a missing device = %v, want %q", err, want)
	}
}

// A missing port is no error for StartBus: the bus starts, its
// transactions fail at once naming the port, and it retries in the
// background until Close.
func TestStartBusMissingPort(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "ttyUSB0")
	b, err := StartBus(BusConfig{Name: "rs485-1", Port: missing, Reopen: Backoff{Min: 5 * time.Millisecond, Max: 10 * time.Millisecond}}, nil)
	if err != nil {
		t.Fatalf("StartBus of a missing port: %v", err)
	}
	defer b.Close()
	start := time.Now()
	_, err = b.ReadRegisters(context.Background(), 1, FuncReadInputRegisters, 0x0048, 2)
	if want := "rs485-1 (" + missing + "): no such file or directory"; !errors.Is(err, ErrPortUnavailable) || err.Error() != want {
		t.Fatalf("read on a missing port = %v, want %q", err, want)
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("read on a missing port took %v; it must fail at once", d)
	}
	deadline := time.Now().Add(5 * time.Second)
	for b.Stats().ReopenFailures < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("no retries: %+v", b.Stats())
		}
		time.Sleep(5 * time.Millisecond)
	}
	if st := b.Stats(); st.Up || st.Err == nil {
		t.Fatalf("stats of a missing port: %+v", st)
	}
	if _, err := StartBus(BusConfig{Port: missing, Parity: "M"}, nil); !errors.Is(err, ErrBadConfig) {
		t.Fatalf("StartBus of a bad config = %v, want ErrBadConfig", err)
	}
}

// The reopen schedule: 1 s doubling to 30 s by default, jitter only ever
// shortens a wait, and every wait stays within its bounds.
func TestBackoffDelay(t *testing.T) {
	tests := []struct {
		name string
		b    Backoff
		n    int
		r    float64
		want time.Duration
	}{
		{"default first", Backoff{}, 0, 0, time.Second},
		{"default doubles", Backoff{}, 1, 0, 2 * time.Second},
		{"default fourth", Backoff{}, 4, 0, 16 * time.Second},
		{"default capped", Backoff{}, 5, 0, 30 * time.Second},
		{"default far out", Backoff{}, 1000, 0, 30 * time.Second},
		{"default jitter at most 20%", Backoff{}, 0, 0.999999, 800*time.Millisecond + 200*time.Nanosecond},
		{"half jitter", Backoff{}, 2, 0.5, 3600 * time.Millisecond},
		{"custom", Backoff{Min: 50 * time.Millisecond, Max: 300 * time.Millisecond, Jitter: 0.5}, 3, 0, 300 * time.Millisecond},
		{"custom jitter", Backoff{Min: 50 * time.Millisecond, Max: 300 * time.Millisecond, Jitter: 0.5}, 1, 1, 50 * time.Millisecond},
		{"max below min", Backoff{Min: time.Second, Max: time.Millisecond}, 3, 0, time.Second},
		{"negative attempt", Backoff{}, -1, 0, time.Second},
		{"r out of range", Backoff{}, 0, 7, 800 * time.Millisecond},
		{"huge min", Backoff{Min: time.Duration(1) << 61, Max: time.Duration(1) << 62}, 40, 0, time.Duration(1) << 62},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.b.Delay(tt.n, tt.r); (got - tt.want).Abs() > time.Microsecond {
				t.Fatalf("Delay(%d, %v) = %v, want %v", tt.n, tt.r, got, tt.want)
			}
		})
	}
	// Whatever the draw, waits never exceed Max nor drop under (1-J)·Min.
	b := DefaultBackoff
	for n := range 40 {
		for _, r := range []float64{0, 0.25, 0.5, 0.75, 0.9999} {
			d := b.Delay(n, r)
			if d > b.Max || d < time.Duration(float64(b.Min)*(1-b.Jitter)) {
				t.Fatalf("Delay(%d, %v) = %v, outside [%v, %v]", n, r, d, time.Duration(float64(b.Min)*(1-b.Jitter)), b.Max)
			}
		}
	}
}

// memPort is an in-memory port for the Bus mechanics that a well-behaved
// slave never shows: split responses, silence mid-frame, port failures.
// The wire itself is tested against pymodbus over a pty.
type memPort struct {
	mu      sync.Mutex
	cond    *sync.Cond
	in      []byte   // bytes the Bus can read
	replies [][]byte // queued, one per request written; may be split
	writes  [][]byte
	timeout time.Duration
	closed  bool
	failed  error // Read fails with it
	flushes int
}

func newMemPort() *memPort {
	p := &memPort{}
	p.cond = sync.NewCond(&p.mu)
	return p
}

func (p *memPort) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.writes = append(p.writes, append([]byte(nil), b...))
	if len(p.replies) > 0 {
		p.in = append(p.in, p.replies[0]...)
		p.replies = p.replies[1:]
		p.cond.Broadcast()
	}
	return len(b), nil
}

// Read returns at most 3 bytes at a time, so every response arrives in
// pieces, and honours the read timeout like go.bug.st/serial (0, nil).
func (p *memPort) Read(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	deadline := time.Now().Add(p.timeout)
	t := time.AfterFunc(p.timeout, func() { p.mu.Lock(); p.cond.Broadcast(); p.mu.Unlock() })
	defer t.Stop()
	for len(p.in) == 0 && !p.closed && p.failed == nil && time.Now().Before(deadline) {
		p.cond.Wait()
	}
	switch {
	case p.closed:
		return 0, io.ErrClosedPipe
	case p.failed != nil:
		return 0, p.failed
	}
	n := copy(b[:min(len(b), 3)], p.in)
	p.in = p.in[n:]
	return n, nil
}

func (p *memPort) SetReadTimeout(d time.Duration) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.timeout = d
	return nil
}

func (p *memPort) ResetInputBuffer() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.in = nil
	p.flushes++
	return nil
}

func (p *memPort) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	p.cond.Broadcast()
	return nil
}

func (p *memPort) reply(frames ...[]byte) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.replies = append(p.replies, frames...)
}

func newMemBus(t *testing.T, p *memPort) *Bus {
	t.Helper()
	c, err := BusConfig{Port: "mem", Baud: 19200, Timeout: 200 * time.Millisecond}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	b := newBus(p, c, nil)
	t.Cleanup(func() { _ = b.Close() })
	return b
}

func TestBusMechanics(t *testing.T) {
	ctx := context.Background()
	energy := unhex(t, "01 04 04 44 9A 50 00 F3 5B")

	t.Run("split response and stale input", func(t *testing.T) {
		p := newMemPort()
		b := newMemBus(t, p)
		p.in = []byte{0x01, 0x04} // stale bytes: must be flushed, not parsed
		p.reply(energy)
		w, err := b.ReadRegisters(ctx, 1, FuncReadInputRegisters, 0x0048, 2)
		if err != nil || len(w) != 2 || w[0] != 0x449A || w[1] != 0x5000 {
			t.Fatalf("ReadRegisters = %04X, %v", w, err)
		}
		if p.flushes != 1 || len(p.writes) != 1 {
			t.Fatalf("flushes %d, writes %d; want 1 each", p.flushes, len(p.writes))
		}
	})

	t.Run("silence mid-frame is a short frame", func(t *testing.T) {
		p := newMemPort()
		b := newMemBus(t, p)
		p.reply(energy[:5])
		if _, err := b.ReadRegisters(ctx, 1, FuncReadInputRegisters, 0x0048, 2); !errors.Is(err, ErrShortFrame) {
			t.Fatalf("ReadRegisters = %v, want ErrShortFrame", err)
		}
	})

	t.Run("silence is a timeout", func(t *testing.T) {
		p := newMemPort()
		b := newMemBus(t, p)
		_, err := b.ReadRegisters(ctx, 1, FuncReadInputRegisters, 0x0048, 2)
		if !errors.Is(err, ErrTimeout) {
			t.Fatalf("ReadRegisters = %v, want ErrTimeout", err)
		}
		if want := "read 2 input registers unit 1 @0x0048 on mem: no response"; err.Error() != want {
			t.Fatalf("error %q, want %q", err, want)
		}
	})

	t.Run("gap between transactions", func(t *testing.T) {
		p := newMemPort()
		b := newMemBus(t, p)
		b.cfg.Gap = 30 * time.Millisecond
		p.reply(energy, energy)
		start := time.Now()
		for range 2 {
			if _, err := b.ReadRegisters(ctx, 1, FuncReadInputRegisters, 0x0048, 2); err != nil {
				t.Fatal(err)
			}
		}
		// A lower bound only: the second request waited for the gap.
		if d := time.Since(start); d < b.cfg.Gap {
			t.Fatalf("two transactions took %v, less than the %v gap", d, b.cfg.Gap)
		}
	})

	t.Run("cancelled context", func(t *testing.T) {
		p := newMemPort()
		b := newMemBus(t, p)
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		if _, err := b.ReadRegisters(cctx, 1, FuncReadInputRegisters, 0x0048, 2); !errors.Is(err, context.Canceled) {
			t.Fatalf("ReadRegisters = %v, want context.Canceled", err)
		}
	})

	t.Run("closed bus", func(t *testing.T) {
		p := newMemPort()
		b := newMemBus(t, p)
		if err := b.Close(); err != nil {
			t.Fatal(err)
		}
		if err := b.Close(); err != nil {
			t.Fatalf("second Close: %v", err)
		}
		if _, err := b.ReadRegisters(ctx, 1, FuncReadInputRegisters, 0x0048, 2); !errors.Is(err, ErrBusClosed) {
			t.Fatalf("ReadRegisters after Close = %v, want ErrBusClosed", err)
		}
	})

	t.Run("close during a transaction", func(t *testing.T) {
		p := newMemPort()
		b := newMemBus(t, p)
		b.cfg.Timeout = time.Hour
		done := make(chan error, 1)
		go func() {
			_, err := b.ReadRegisters(ctx, 1, FuncReadInputRegisters, 0x0048, 2)
			done <- err
		}()
		for {
			p.mu.Lock()
			n := len(p.writes)
			p.mu.Unlock()
			if n > 0 {
				break
			}
			time.Sleep(time.Millisecond)
		}
		_ = b.Close()
		if err := <-done; !errors.Is(err, ErrBusClosed) {
			t.Fatalf("transaction cut by Close = %v, want ErrBusClosed", err)
		}
	})

	t.Run("port failure reopens", func(t *testing.T) {
		p1, p2 := newMemPort(), newMemPort()
		b := newMemBus(t, p1)
		b.cfg.Reopen = Backoff{Min: 20 * time.Millisecond, Max: 40 * time.Millisecond, Jitter: 0.1}
		var mu sync.Mutex
		fail := errors.New("no such device")
		opened := 0
		b.open = func() (port, error) {
			mu.Lock()
			defer mu.Unlock()
			opened++
			if opened < 3 {
				return nil, fail // still unplugged
			}
			return p2, nil
		}
		p1.failed = errors.New("input/output error")
		_, err := b.ReadRegisters(ctx, 1, FuncReadInputRegisters, 0x0048, 2)
		if !errors.Is(err, ErrPortUnavailable) || err.Error() != "mem: read: input/output error" {
			t.Fatalf("read on a failed port = %v, want a PortError naming the port", err)
		}
		if !p1.closed {
			t.Fatal("the failed port was not closed")
		}
		// The loop, not the transaction, reopens: this one fails at once.
		if _, err := b.ReadRegisters(ctx, 1, FuncReadInputRegisters, 0x0048, 2); !errors.Is(err, ErrPortUnavailable) {
			t.Fatalf("read while the port is missing = %v", err)
		}
		deadline := time.Now().Add(5 * time.Second)
		for !b.Stats().Up {
			if time.Now().After(deadline) {
				t.Fatalf("port not reopened: %+v", b.Stats())
			}
			time.Sleep(5 * time.Millisecond)
		}
		if st := b.Stats(); st.ReopenAttempts != 3 || st.ReopenFailures != 2 || st.Err != nil {
			t.Fatalf("stats after the reopen: %+v, want 3 attempts, 2 failures", st)
		}
		p2.reply(energy)
		if _, err := b.ReadRegisters(ctx, 1, FuncReadInputRegisters, 0x0048, 2); err != nil {
			t.Fatalf("after reopen: %v", err)
		}
	})

	t.Run("a flapping port keeps backing off", func(t *testing.T) {
		p := newMemPort()
		b := newMemBus(t, p)
		b.cfg.Reopen = Backoff{Min: time.Millisecond, Max: time.Hour}
		var mu sync.Mutex
		var waits []int // attempt numbers the loop waited for
		b.delay = func(n int) time.Duration {
			mu.Lock()
			defer mu.Unlock()
			waits = append(waits, n)
			return time.Millisecond
		}
		opened := 0
		b.open = func() (port, error) {
			mu.Lock()
			defer mu.Unlock()
			opened++
			if opened == 1 {
				return nil, errors.New("not yet")
			}
			q := newMemPort()
			q.failed = errors.New("input/output error") // opens, then fails at once
			return q, nil
		}
		p.failed = errors.New("input/output error")
		for range 3 {
			deadline := time.Now().Add(5 * time.Second)
			for {
				_, err := b.ReadRegisters(ctx, 1, FuncReadInputRegisters, 0x0048, 2)
				if err != nil && strings.Contains(err.Error(), ": read: ") {
					break // a port that was open failed
				}
				if time.Now().After(deadline) {
					t.Fatalf("no reopened port failed: %v", err)
				}
				time.Sleep(time.Millisecond)
			}
		}
		mu.Lock()
		defer mu.Unlock()
		// Lost, one failed attempt, reopened (attempt 1); lost again soon
		// after: attempt 2, then 3, never back to 0.
		if want := []int{0, 1, 2}; !slices.Equal(waits[:3], want) {
			t.Fatalf("attempts waited for %v, want %v first", waits, want)
		}
	})

	t.Run("close stops the reopen loop", func(t *testing.T) {
		p := newMemPort()
		b := newMemBus(t, p)
		b.cfg.Reopen = Backoff{Min: time.Hour, Max: time.Hour}
		b.open = func() (port, error) { return nil, errors.New("gone") }
		p.failed = errors.New("input/output error")
		if _, err := b.ReadRegisters(ctx, 1, FuncReadInputRegisters, 0x0048, 2); !errors.Is(err, ErrPortUnavailable) {
			t.Fatalf("read on a failed port = %v", err)
		}
		done := make(chan struct{})
		go func() { _ = b.Close(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatal("Close waited for the reopen schedule")
		}
		if _, err := b.ReadRegisters(ctx, 1, FuncReadInputRegisters, 0x0048, 2); !errors.Is(err, ErrBusClosed) {
			t.Fatalf("read after Close = %v, want ErrBusClosed", err)
		}
	})

	t.Run("invalid request never reaches the line", func(t *testing.T) {
		p := newMemPort()
		b := newMemBus(t, p)
		if _, err := b.ReadRegisters(ctx, 0, FuncReadInputRegisters, 0, 1); !errors.Is(err, ErrInvalidRequest) {
			t.Fatalf("broadcast read = %v, want ErrInvalidRequest", err)
		}
		if _, err := b.ReadRegisters(ctx, 1, FuncReadCoils, 0, 1); !errors.Is(err, ErrInvalidRequest) {
			t.Fatalf("coil read through ReadRegisters = %v, want ErrInvalidRequest", err)
		}
		if len(p.writes) != 0 {
			t.Fatalf("%d frames written", len(p.writes))
		}
	})
}

// TestBusCRCErrorOverPTY puts a tiny Go fake on the far end of a real pty
// pair: pymodbus cannot be made to send a bad CRC. The fake answers the
// first request with a corrupted frame and the rest correctly, as an
// SDM630 on unit 1.
func TestBusCRCErrorOverPTY(t *testing.T) {
	modbustest.Require(t)
	a, b := modbustest.PTYPair(t)
	far, err := serial.Open(b, &serial.Mode{BaudRate: 19200})
	if err != nil {
		t.Fatalf("open far end: %v", err)
	}
	t.Cleanup(func() { _ = far.Close() })
	regs := map[uint16]uint16{}
	for addr, v := range map[uint16]float32{0x0034: 11040, 0x0048: 1234.5} {
		bits := math.Float32bits(v)
		regs[addr], regs[addr+1] = uint16(bits>>16), uint16(bits)
	}
	go func() {
		corrupt := true
		for {
			req := make([]byte, 8)
			if _, err := io.ReadFull(far, req); err != nil {
				return // closed in cleanup
			}
			addr, count := binary.BigEndian.Uint16(req[2:]), binary.BigEndian.Uint16(req[4:])
			resp := []byte{req[0], req[1], byte(2 * count)}
			for i := range count {
				resp = binary.BigEndian.AppendUint16(resp, regs[addr+i])
			}
			resp = appendCRC(resp)
			if corrupt {
				resp[len(resp)-1] ^= 0xFF
				corrupt = false
			}
			if _, err := far.Write(resp); err != nil {
				return
			}
		}
	}()
	bus, err := OpenBus(BusConfig{Port: a, Baud: 19200, Timeout: rigTimeout}, nil)
	if err != nil {
		t.Fatalf("OpenBus: %v", err)
	}
	t.Cleanup(func() { _ = bus.Close() })
	p, _ := ProfileByName("sdm630")
	m, err := NewMeter(MeterConfig{Bus: bus, Unit: 1, Profile: p})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	r, err := m.ReadOnce(ctx)
	if !errors.Is(err, ErrCRC) || !errors.Is(r.Err, ErrCRC) {
		t.Fatalf("first poll: %+v, %v; want ErrCRC", r, err)
	}
	r, err = m.ReadOnce(ctx)
	if err != nil || r.Err != nil || r.EnergyWh != 1234500 || r.PowerW != 11040 {
		t.Fatalf("after the CRC error: %+v, %v; want a good reading", r, err)
	}
}
