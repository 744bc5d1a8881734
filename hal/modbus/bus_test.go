package modbus

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"math"
	"path/filepath"
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
	if _, err := OpenBus(BusConfig{Port: filepath.Join(t.TempDir(), "nonexistent")}, nil); err == nil {
		t.Error("OpenBus of a missing device succeeded")
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
		opened := 0
		b.open = func() (port, error) { opened++; return p2, nil }
		p1.failed = errors.New("device unplugged")
		if _, err := b.ReadRegisters(ctx, 1, FuncReadInputRegisters, 0x0048, 2); err == nil {
			t.Fatal("read on a failed port succeeded")
		}
		// Within a second the port is not retried.
		if _, err := b.ReadRegisters(ctx, 1, FuncReadInputRegisters, 0x0048, 2); err == nil || opened != 0 {
			t.Fatalf("immediate retry: %v, %d opens", err, opened)
		}
		b.lastOpen = time.Now().Add(-2 * time.Second) // as if a second passed
		p2.reply(energy)
		if _, err := b.ReadRegisters(ctx, 1, FuncReadInputRegisters, 0x0048, 2); err != nil || opened != 1 {
			t.Fatalf("after reopen: %v, %d opens", err, opened)
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
