package modbus

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sitelink/sitelink/hal"
	"github.com/sitelink/sitelink/hal/haltest"
)

// These tests talk RTU over a real pty pair to pymodbus serving the map in
// testdata/slave.py: unit 1 an SDM630, unit 2 an ABB B23, units 3 and 4
// charge controllers, unit 9 nobody.

func newRigMeter(t *testing.T, r *rig, unit byte, profile string) *Meter {
	t.Helper()
	p, ok := ProfileByName(profile)
	if !ok {
		t.Fatalf("no profile %s", profile)
	}
	m, err := NewMeter(MeterConfig{Bus: r.bus, Unit: unit, Profile: p})
	if err != nil {
		t.Fatalf("NewMeter: %v", err)
	}
	return m
}

func TestPymodbusMeters(t *testing.T) {
	r := startRig(t)
	ctx := context.Background()
	sdm := newRigMeter(t, r, 1, "sdm630")
	abb := newRigMeter(t, r, 2, "abb-b2x")
	dead := newRigMeter(t, r, 9, "sdm630")

	t.Run("two meters on one bus", func(t *testing.T) {
		for _, tt := range []struct {
			m              *Meter
			energyWh, powW float64
		}{
			{sdm, 1234.5 * 1000, 11040},
			{abb, 987654 * 10, 7400},
		} {
			rd, err := tt.m.ReadOnce(ctx)
			if err != nil {
				t.Fatalf("%s: ReadOnce: %v", tt.m.Name(), err)
			}
			if rd.EnergyWh != tt.energyWh || rd.PowerW != tt.powW || !rd.Valid || rd.Flag != "" {
				t.Fatalf("%s: reading %+v, want %v Wh at %v W", tt.m.Name(), rd, tt.energyWh, tt.powW)
			}
		}
	})

	t.Run("concurrent polls share the bus", func(t *testing.T) {
		var wg sync.WaitGroup
		errs := make(chan error, 20)
		for _, m := range []*Meter{sdm, abb} {
			for range 5 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					if _, err := m.ReadOnce(ctx); err != nil {
						errs <- fmt.Errorf("%s: %w", m.Name(), err)
					}
				}()
			}
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
	})

	t.Run("a silent unit faults only its meter", func(t *testing.T) {
		rd, err := dead.ReadOnce(ctx)
		if !errors.Is(err, ErrTimeout) || !errors.Is(rd.Err, ErrTimeout) || rd.Valid {
			t.Fatalf("unit 9: reading %+v, error %v; want ErrTimeout", rd, err)
		}
		for _, m := range []*Meter{sdm, abb} {
			if rd, err := m.ReadOnce(ctx); err != nil || rd.Err != nil {
				t.Fatalf("%s after unit 9 timed out: %+v, %v", m.Name(), rd, err)
			}
		}
	})

	t.Run("exception response", func(t *testing.T) {
		_, err := r.bus.ReadRegisters(ctx, 1, FuncReadInputRegisters, 0x0100, 2)
		var ex *ExceptionError
		if !errors.As(err, &ex) || ex.Code != ExceptionIllegalAddress || !errors.Is(err, ErrException) {
			t.Fatalf("read of an unmapped register = %v, want exception 2", err)
		}
		if !strings.Contains(err.Error(), "unit 1") {
			t.Fatalf("error %q does not name the unit", err)
		}
		// A meter whose profile points at a missing register is faulted
		// by the exception.
		p := Profile{Name: "wrong", Energy: Register{Function: FuncReadInputRegisters, Address: 0x0100, Type: TypeFloat32}}
		m, err := NewMeter(MeterConfig{Bus: r.bus, Unit: 1, Profile: p})
		if err != nil {
			t.Fatal(err)
		}
		if rd, err := m.ReadOnce(ctx); !errors.Is(err, ErrException) || rd.Err == nil {
			t.Fatalf("meter on a missing register: %+v, %v", rd, err)
		}
	})

	t.Run("meter recovers after the device answers again", func(t *testing.T) {
		before, err := abb.ReadOnce(ctx)
		if err != nil {
			t.Fatal(err)
		}
		r.do(t, "mute 2")
		rd, err := abb.ReadOnce(ctx)
		if !errors.Is(err, ErrTimeout) || rd.EnergyWh != before.EnergyWh || !rd.Valid {
			t.Fatalf("muted: %+v, %v; want ErrTimeout with the energy kept", rd, err)
		}
		if got := abb.Last(); got.Err == nil {
			t.Fatal("Last() shows no error while the meter is muted")
		}
		if _, err := sdm.ReadOnce(ctx); err != nil {
			t.Fatalf("unit 1 while unit 2 is muted: %v", err)
		}
		r.do(t, "unmute 2")
		r.do(t, "setu64 2 hr 0x5000 987655") // +10 Wh
		rd, err = abb.ReadOnce(ctx)
		if err != nil || rd.Err != nil || rd.EnergyWh != before.EnergyWh+10 {
			t.Fatalf("unmuted: %+v, %v; want %v Wh", rd, err, before.EnergyWh+10)
		}
	})

	t.Run("energy integrity over the wire", func(t *testing.T) {
		base, err := sdm.ReadOnce(ctx)
		if err != nil {
			t.Fatal(err)
		}
		r.do(t, "setf 1 ir 0x0048 10.0") // far below: a replaced meter
		if rd, err := sdm.ReadOnce(ctx); err != nil || rd.Flag != FlagReplaced || rd.EnergyWh != base.EnergyWh {
			t.Fatalf("register dropped: %+v, %v; want flag %q and energy kept", rd, err, FlagReplaced)
		}
		r.do(t, "setf 1 ir 0x0048 1234.0") // a little below
		if rd, err := sdm.ReadOnce(ctx); err != nil || rd.Flag != FlagBackwards || rd.EnergyWh != base.EnergyWh {
			t.Fatalf("register went back: %+v, %v; want flag %q", rd, err, FlagBackwards)
		}
		r.do(t, "setf 1 ir 0x0048 99999.0") // far above
		if rd, err := sdm.ReadOnce(ctx); err != nil || rd.Flag != FlagJump || rd.EnergyWh != base.EnergyWh {
			t.Fatalf("register jumped: %+v, %v; want flag %q", rd, err, FlagJump)
		}
		r.do(t, "setf 1 ir 0x0048 1234.51") // +10 Wh: plausible
		rd, err := sdm.ReadOnce(ctx)
		if err != nil || rd.Flag != "" || rd.EnergyWh <= base.EnergyWh || rd.EnergyWh > base.EnergyWh+11 {
			t.Fatalf("plausible increment: %+v, %v; want about %v Wh", rd, err, base.EnergyWh+10)
		}
	})

	t.Run("writes reach the device", func(t *testing.T) {
		if err := r.bus.WriteCoil(ctx, 3, 400, true); err != nil {
			t.Fatalf("WriteCoil: %v", err)
		}
		if got := r.do(t, "get 3 co 400 1"); got != "1" {
			t.Fatalf("pymodbus coil 400 = %q after WriteCoil(true)", got)
		}
		if bits, err := r.bus.ReadCoils(ctx, 3, 400, 1); err != nil || !bits[0] {
			t.Fatalf("ReadCoils = %v, %v", bits, err)
		}
		if err := r.bus.WriteCoil(ctx, 3, 400, false); err != nil {
			t.Fatalf("WriteCoil: %v", err)
		}
		if err := r.bus.WriteRegister(ctx, 4, 300, 0x1234); err != nil {
			t.Fatalf("WriteRegister: %v", err)
		}
		if got := r.do(t, "get 4 hr 300 1"); got != "4660" {
			t.Fatalf("pymodbus holding 300 = %q after WriteRegister(0x1234)", got)
		}
		if err := r.bus.WriteRegister(ctx, 4, 0x7777, 1); !errors.Is(err, ErrException) {
			t.Fatalf("write to an unmapped register = %v, want an exception", err)
		}
		if err := r.bus.WriteRegister(ctx, 4, 300, 0); err != nil {
			t.Fatal(err)
		}
	})
}

// rigController opens a station on unit 3 (coil enable, index state in a
// holding register) or unit 4 (register enable, ASCII state in an input
// register) and returns it with controls that change the state register
// in pymodbus and poll.
func rigController(t *testing.T, r *rig, unit byte) (*Station, haltest.Controls) {
	t.Helper()
	var m ControllerMap
	var setState func(cp byte)
	switch unit {
	case 3:
		m = ControllerMap{
			State:  Register{Function: FuncReadHoldingRegisters, Address: 100, Type: TypeUint16},
			Enable: Enable{Coil: true, Address: 400},
			Energy: &Register{Function: FuncReadInputRegisters, Address: 200, Type: TypeUint32},
			Power:  &Register{Function: FuncReadInputRegisters, Address: 202, Type: TypeInt32},
		}
		setState = func(cp byte) { r.do(t, "set 3 hr 100 %d", cp-'A') }
		r.do(t, "set 3 co 400 0")
	case 4:
		m = ControllerMap{
			State:         Register{Function: FuncReadInputRegisters, Address: 100, Type: TypeUint16},
			StateEncoding: StateASCII,
			Enable:        Enable{Address: 300},
		}
		setState = func(cp byte) { r.do(t, "set 4 ir 100 %d", cp) }
		r.do(t, "set 4 hr 300 0")
	}
	setState('A')
	st, err := OpenController(ControllerConfig{
		Number: fmt.Sprint(unit), Bus: r.bus, Unit: unit, Map: m,
		Interval: 200 * time.Millisecond, ConfirmTimeout: 2 * rigTimeout,
	})
	if err != nil {
		t.Fatalf("OpenController: %v", err)
	}
	t.Cleanup(func() { _ = st.Close() })
	to := func(cp byte) func() {
		return func() {
			setState(cp)
			ctx, cancel := context.WithTimeout(context.Background(), haltest.Timeout)
			defer cancel()
			if err := st.Poll(ctx); err != nil {
				t.Fatalf("Poll: %v", err)
			}
		}
	}
	return st, haltest.Controls{
		Plug:   to('B'),
		Unplug: to('A'),
		Fault:  func(string) { to('F')() },
		Clear:  to('B'),
	}
}

func TestPymodbusController(t *testing.T) {
	r := startRig(t)
	for _, unit := range []byte{3, 4} {
		t.Run(fmt.Sprintf("unit %d", unit), func(t *testing.T) {
			haltest.TestStation(t, func(t *testing.T) (hal.Station, haltest.Controls) {
				return rigController(t, r, unit)
			})
		})
	}

	t.Run("enable reaches the device", func(t *testing.T) {
		st, ctl := rigController(t, r, 3)
		ctl.Plug()
		if err := st.SetContactor(context.Background(), true); err != nil {
			t.Fatal(err)
		}
		if got := r.do(t, "get 3 co 400 1"); got != "1" {
			t.Fatalf("pymodbus coil 400 = %q with the contactor on", got)
		}
		if err := st.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		if got := r.do(t, "get 3 co 400 1"); got != "0" {
			t.Fatalf("pymodbus coil 400 = %q after Close", got)
		}
	})

	t.Run("starts with enable off", func(t *testing.T) {
		r.do(t, "set 4 hr 300 1") // left on by a previous run
		st2, err := OpenController(ControllerConfig{
			Number: "4b", Bus: r.bus, Unit: 4, Interval: time.Hour,
			Map: ControllerMap{State: Register{Function: FuncReadInputRegisters, Address: 100, Type: TypeUint16}, StateEncoding: StateASCII, Enable: Enable{Address: 300}},
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = st2.Close() })
		if got := r.do(t, "get 4 hr 300 1"); got != "0" {
			t.Fatalf("enable register = %q after OpenController, want 0", got)
		}
	})

	t.Run("comms loss faults and recovers", func(t *testing.T) {
		st, ctl := rigController(t, r, 3)
		ctl.Plug()
		ctx := context.Background()
		r.do(t, "mute 3")
		if err := st.Poll(ctx); !errors.Is(err, ErrTimeout) {
			t.Fatalf("Poll of a muted controller = %v, want ErrTimeout", err)
		}
		if f := st.Read().Fault; !strings.HasPrefix(f, "modbus: ") {
			t.Fatalf("fault %q, want modbus: ...", f)
		}
		if err := st.SetContactor(ctx, true); !errors.Is(err, hal.ErrFaulted) {
			t.Fatalf("SetContactor(true) while muted = %v, want hal.ErrFaulted", err)
		}
		r.do(t, "unmute 3")
		if err := st.Poll(ctx); err != nil {
			t.Fatalf("Poll after unmute: %v", err)
		}
		if rd := st.Read(); rd.Fault != "" || rd.CP != hal.CPB {
			t.Fatalf("after recovery: %+v", rd)
		}
	})

	t.Run("station with a separate meter", func(t *testing.T) {
		m := newRigMeter(t, r, 1, "sdm630")
		r.do(t, "set 4 ir 100 %d", 'B')
		st, err := OpenController(ControllerConfig{
			Number: "41", Bus: r.bus, Unit: 4, Interval: time.Hour, Meter: m,
			Map: ControllerMap{State: Register{Function: FuncReadInputRegisters, Address: 100, Type: TypeUint16}, StateEncoding: StateASCII, Enable: Enable{Address: 300}},
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = st.Close() })
		rd := st.Read()
		if rd.Fault != "" || rd.CP != hal.CPB || rd.EnergyWh < 1000*1000 || rd.PowerW != 11040 {
			t.Fatalf("reading %+v, want state B and the SDM630's energy and power", rd)
		}
	})
}
