package modbus

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sitelink/sitelink/hal"
	"github.com/sitelink/sitelink/hal/haltest"
)

// Fake controller layout, the same as unit 3 of testdata/slave.py: coil
// 400 enable, holding 100 state index, input 200 energy uint32 Wh, input
// 202 power int32 W.
const (
	fakeUnit       = 3
	fakeEnable     = 400
	fakeState      = 100
	fakeEnergy     = 200
	fakePower      = 202
	stateA, stateB = 0, 1
	stateC, stateF = 2, 5
)

func fakeControllerMap() ControllerMap {
	return ControllerMap{
		State:  Register{Function: FuncReadHoldingRegisters, Address: fakeState, Type: TypeUint16},
		Enable: Enable{Coil: true, Address: fakeEnable},
		Energy: &Register{Function: FuncReadInputRegisters, Address: fakeEnergy, Type: TypeUint32},
		Power:  &Register{Function: FuncReadInputRegisters, Address: fakePower, Type: TypeInt32},
	}
}

func newFakeController(t *testing.T) *fakeDevice {
	t.Helper()
	dev := newFakeDevice()
	dev.setCoil(fakeUnit, fakeEnable, false)
	dev.set(fakeUnit, FuncReadHoldingRegisters, fakeState, stateA)
	dev.setUint32(fakeUnit, FuncReadInputRegisters, fakeEnergy, 5000)
	dev.setUint32(fakeUnit, FuncReadInputRegisters, fakePower, 0)
	return dev
}

func openFakeStation(t *testing.T, dev *fakeDevice, mod func(*ControllerConfig)) *Station {
	t.Helper()
	cfg := ControllerConfig{
		Number:         "7",
		Bus:            dev,
		Unit:           fakeUnit,
		Map:            fakeControllerMap(),
		Interval:       time.Hour, // tests poll explicitly
		ConfirmTimeout: 2 * time.Second,
	}
	if mod != nil {
		mod(&cfg)
	}
	st, err := OpenController(cfg)
	if err != nil {
		t.Fatalf("OpenController: %v", err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return st
}

func poll(t *testing.T, st *Station) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), haltest.Timeout)
	defer cancel()
	_ = st.Poll(ctx)
}

func TestControllerSemanticsFake(t *testing.T) {
	haltest.TestStation(t, func(t *testing.T) (hal.Station, haltest.Controls) {
		dev := newFakeController(t)
		st := openFakeStation(t, dev, nil)
		setState := func(v uint16) {
			dev.set(fakeUnit, FuncReadHoldingRegisters, fakeState, v)
			poll(t, st)
		}
		return st, haltest.Controls{
			Plug:   func() { setState(stateB) },
			Unplug: func() { setState(stateA) },
			Fault:  func(string) { setState(stateF) },
			Clear:  func() { setState(stateB) },
		}
	})
}

func TestControllerStartsWithEnableOff(t *testing.T) {
	dev := newFakeController(t)
	dev.setCoil(fakeUnit, fakeEnable, true) // left on by a previous run
	st := openFakeStation(t, dev, nil)
	if dev.coil(fakeUnit, fakeEnable) {
		t.Fatal("OpenController left the enable coil on")
	}
	r := st.Read()
	if r.Contactor || r.Fault != "" || r.CP != hal.CPA || r.EnergyWh != 5000 {
		t.Fatalf("after open: %+v", r)
	}
}

func TestControllerSwitchesOffUnexpectedEnable(t *testing.T) {
	dev := newFakeController(t)
	st := openFakeStation(t, dev, nil)
	dev.setCoil(fakeUnit, fakeEnable, true) // someone else switched it on
	poll(t, st)
	if dev.coil(fakeUnit, fakeEnable) || st.Read().Contactor {
		t.Fatalf("poll left an uncommanded enable on (reading %+v)", st.Read())
	}
}

func TestControllerDeadAtStartRecovers(t *testing.T) {
	dev := newFakeController(t)
	dev.setCoil(fakeUnit, fakeEnable, true)
	dev.setErr(ErrTimeout)
	st := openFakeStation(t, dev, nil)
	r := st.Read()
	if !strings.HasPrefix(r.Fault, "modbus: ") || !strings.Contains(r.Fault, "no response") || r.CP != hal.CPUnknown {
		t.Fatalf("dead controller: reading %+v, want fault \"modbus: ...no response\"", r)
	}
	ctx := context.Background()
	if err := st.SetContactor(ctx, true); !errors.Is(err, hal.ErrFaulted) {
		t.Fatalf("SetContactor(true) on a dead controller = %v, want hal.ErrFaulted", err)
	}
	if err := st.SetContactor(ctx, false); !errors.Is(err, hal.ErrNotConfirmed) || !errors.Is(err, ErrTimeout) {
		t.Fatalf("SetContactor(false) on a dead controller = %v, want hal.ErrNotConfirmed wrapping ErrTimeout", err)
	}
	drainChanges(st)
	dev.setErr(nil)
	poll(t, st)
	select {
	case <-st.Changes():
	default:
		t.Fatal("recovery did not notify Changes")
	}
	if r := st.Read(); r.Fault != "" || r.CP != hal.CPA || r.Contactor {
		t.Fatalf("after recovery: %+v", r)
	}
	if dev.coil(fakeUnit, fakeEnable) {
		t.Fatal("the enable left on before the outage was not switched off on recovery")
	}
}

func TestControllerStuckEnable(t *testing.T) {
	dev := newFakeController(t)
	st := openFakeStation(t, dev, func(c *ControllerConfig) { c.ConfirmTimeout = 200 * time.Millisecond })
	dev.set(fakeUnit, FuncReadHoldingRegisters, fakeState, stateB)
	poll(t, st)
	dev.setStuck(true)
	if err := st.SetContactor(context.Background(), true); !errors.Is(err, hal.ErrNotConfirmed) {
		t.Fatalf("SetContactor(true) with a stuck output = %v, want hal.ErrNotConfirmed", err)
	}
	if st.Read().Contactor {
		t.Fatal("stuck output reported as closed")
	}
}

func TestControllerStateFaults(t *testing.T) {
	tests := []struct {
		name  string
		value uint16
		cp    hal.CPState
		fault string // prefix
	}{
		{"E", 4, hal.CPE, "controller reports CP state E"},
		{"F", 5, hal.CPF, "controller reports CP state F"},
		{"unknown value", 9, hal.CPUnknown, "modbus: unknown CP state value: 9"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dev := newFakeController(t)
			st := openFakeStation(t, dev, nil)
			dev.set(fakeUnit, FuncReadHoldingRegisters, fakeState, tt.value)
			poll(t, st)
			r := st.Read()
			if r.CP != tt.cp || !strings.HasPrefix(r.Fault, tt.fault) {
				t.Fatalf("state %d: reading %+v, want CP %q fault %q...", tt.value, r, tt.cp, tt.fault)
			}
			if err := st.SetContactor(context.Background(), true); !errors.Is(err, hal.ErrFaulted) {
				t.Fatalf("SetContactor(true) = %v, want hal.ErrFaulted", err)
			}
		})
	}
}

func TestDecodeState(t *testing.T) {
	tests := []struct {
		v        float64
		encoding string
		want     hal.CPState
		wantErr  bool
	}{
		{0, StateIndex, hal.CPA, false},
		{2, StateIndex, hal.CPC, false},
		{5, StateIndex, hal.CPF, false},
		{6, StateIndex, hal.CPUnknown, true},
		{-1, StateIndex, hal.CPUnknown, true},
		{1.5, StateIndex, hal.CPUnknown, true},
		{'A', StateASCII, hal.CPA, false},
		{'C', StateASCII, hal.CPC, false},
		{'F' << 8, StateASCII, hal.CPF, false}, // character in the high byte
		{'G', StateASCII, hal.CPUnknown, true},
		{0, StateASCII, hal.CPUnknown, true},
		{'a', StateASCII, hal.CPUnknown, true},
		{1, StateIndex1, hal.CPA, false},
		{4, StateIndex1, hal.CPD, false},
		{6, StateIndex1, hal.CPF, false},
		{0, StateIndex1, hal.CPUnknown, true},
		{7, StateIndex1, hal.CPUnknown, true},
	}
	for _, tt := range tests {
		got, err := decodeState(tt.v, tt.encoding)
		if got != tt.want || (err != nil) != tt.wantErr {
			t.Errorf("decodeState(%v, %s) = %q, %v; want %q, error %v", tt.v, tt.encoding, got, err, tt.want, tt.wantErr)
		}
		if err != nil && !errors.Is(err, ErrUnknownState) {
			t.Errorf("decodeState(%v, %s) error %v is not ErrUnknownState", tt.v, tt.encoding, err)
		}
	}
}

func TestControllerEnergy(t *testing.T) {
	dev := newFakeController(t)
	st := openFakeStation(t, dev, nil)
	dev.set(fakeUnit, FuncReadHoldingRegisters, fakeState, stateC)
	dev.setUint32(fakeUnit, FuncReadInputRegisters, fakeEnergy, 5010)
	dev.setUint32(fakeUnit, FuncReadInputRegisters, fakePower, 7400)
	poll(t, st)
	if r := st.Read(); r.EnergyWh != 5010 || r.PowerW != 7400 || r.Fault != "" {
		t.Fatalf("reading %+v, want 5010 Wh at 7400 W", r)
	}
	// A register going backwards is flagged by the meter and never
	// reaches the station's reading.
	dev.setUint32(fakeUnit, FuncReadInputRegisters, fakeEnergy, 10)
	poll(t, st)
	if r := st.Read(); r.EnergyWh != 5010 || r.Fault != "" {
		t.Fatalf("after the register dropped: %+v, want 5010 Wh kept and no fault", r)
	}
}

func TestControllerMeterFault(t *testing.T) {
	dev := newFakeController(t)
	meterDev := newFakeDevice()
	meterDev.setUint32(1, FuncReadHoldingRegisters, 0, 1000)
	meterDev.setUint32(1, FuncReadHoldingRegisters, 2, 0)
	m, err := NewMeter(MeterConfig{Bus: meterDev, Unit: 1, Profile: whProfile})
	if err != nil {
		t.Fatal(err)
	}
	st := openFakeStation(t, dev, func(c *ControllerConfig) { c.Meter = m })
	if r := st.Read(); r.EnergyWh != 1000 || r.Fault != "" {
		t.Fatalf("with a meter: %+v, want 1000 Wh from the meter", r)
	}
	meterDev.setErr(ErrCRC)
	poll(t, st)
	r := st.Read()
	if !strings.HasPrefix(r.Fault, "modbus meter: ") || r.EnergyWh != 1000 {
		t.Fatalf("meter failing: %+v, want a meter fault and 1000 Wh kept", r)
	}
	if err := st.SetContactor(context.Background(), true); !errors.Is(err, hal.ErrFaulted) {
		t.Fatalf("SetContactor(true) with a dead meter = %v, want hal.ErrFaulted", err)
	}
	meterDev.setErr(nil)
	poll(t, st)
	if r := st.Read(); r.Fault != "" {
		t.Fatalf("meter recovered: fault %q remains", r.Fault)
	}
}

func TestOpenControllerInvalid(t *testing.T) {
	dev := newFakeController(t)
	good := ControllerConfig{Number: "1", Bus: dev, Unit: fakeUnit, Map: fakeControllerMap()}
	tests := []struct {
		name string
		mod  func(*ControllerConfig)
	}{
		{"no number", func(c *ControllerConfig) { c.Number = "" }},
		{"no bus", func(c *ControllerConfig) { c.Bus = nil }},
		{"unit 0", func(c *ControllerConfig) { c.Unit = 0 }},
		{"bad state register", func(c *ControllerConfig) { c.Map.State.Type = "" }},
		{"bad encoding", func(c *ControllerConfig) { c.Map.StateEncoding = "bcd" }},
		{"power without energy", func(c *ControllerConfig) { c.Map.Energy = nil }},
		{"bad energy register", func(c *ControllerConfig) { c.Map.Energy = &Register{Function: 4, Type: "int128"} }},
		{"max current below 6 A", func(c *ControllerConfig) { c.MaxCurrentA = 5 }},
		{"max current above 80 A", func(c *ControllerConfig) { c.MaxCurrentA = 81 }},
		{"current enable on a coil", func(c *ControllerConfig) { c.Map.Enable = Enable{Coil: true, Current: true}; c.MaxCurrentA = 16 }},
		{"current enable without a max current", func(c *ControllerConfig) { c.Map.Enable = Enable{Current: true, Address: 7} }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := good
			tt.mod(&cfg)
			if _, err := OpenController(cfg); !errors.Is(err, ErrBadConfig) {
				t.Fatalf("OpenController = %v, want ErrBadConfig", err)
			}
		})
	}
}

func TestControllerProfiles(t *testing.T) {
	if got, want := ControllerProfiles(), []string{"bender-cc613", "phoenix-ev-ser"}; !slices.Equal(got, want) {
		t.Fatalf("ControllerProfiles() = %v, want %v", got, want)
	}
	for _, name := range ControllerProfiles() {
		p, ok := ControllerProfileByName(strings.ToUpper(name))
		if !ok || p.Name != name {
			t.Fatalf("ControllerProfileByName(%q) = %+v, %v", strings.ToUpper(name), p, ok)
		}
		if err := p.Map.State.Validate(); err != nil {
			t.Errorf("%s: state register: %v", name, err)
		}
		if p.Map.MaxCurrent == nil {
			t.Errorf("%s: no current limit register", name)
		}
	}
	if _, ok := ControllerProfileByName("sdm630"); ok {
		t.Fatal("a meter profile is a controller profile")
	}
}

func drainChanges(st hal.Station) {
	select {
	case <-st.Changes():
	default:
	}
}

// The controller's current limit register holds the configured limit
// whenever the station may charge: written by the first poll that
// reaches the controller (even one absent at start), written again when
// the controller forgets it (a restart takes its default), and a
// controller that will not keep it faults the station, so the contactor
// never closes above the circuit's rating.
func TestControllerKeepsCurrentLimit(t *testing.T) {
	const limitReg, amps = 22000, 16
	withLimit := func(c *ControllerConfig) {
		c.MaxCurrentA = amps
		c.Map.MaxCurrent = &CurrentLimit{Address: limitReg}
	}
	limit := func(dev *fakeDevice) uint16 {
		dev.mu.Lock()
		defer dev.mu.Unlock()
		return dev.regs[regKey{fakeUnit, FuncReadHoldingRegisters, limitReg}]
	}
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		run  func(t *testing.T, dev *fakeDevice, st *Station)
	}{
		{"absent at start", func(t *testing.T, dev *fakeDevice, st *Station) {
			dev.setErr(nil)
			poll(t, st)
			if got := limit(dev); got != amps {
				t.Fatalf("limit register %d after the controller appeared, want %d", got, amps)
			}
		}},
		{"controller restarted", func(t *testing.T, dev *fakeDevice, st *Station) {
			dev.setErr(nil)
			poll(t, st)
			dev.set(fakeUnit, FuncReadHoldingRegisters, limitReg, 32) // its default after a restart
			poll(t, st)
			if got := limit(dev); got != amps {
				t.Fatalf("limit register %d after a restart, want %d", got, amps)
			}
			if f := st.Read().Fault; f != "" {
				t.Fatalf("fault %q after the limit was written again", f)
			}
		}},
		{"limit does not stick", func(t *testing.T, dev *fakeDevice, st *Station) {
			dev.setErr(nil)
			dev.mu.Lock()
			dev.stuck = true
			dev.mu.Unlock()
			poll(t, st)
			if f := st.Read().Fault; !strings.Contains(f, "current limit register 22000 reads 32 A after writing 16 A") {
				t.Fatalf("fault %q, want the limit named", f)
			}
			dev.set(fakeUnit, FuncReadHoldingRegisters, fakeState, stateB)
			if err := st.SetContactor(ctx, true); !errors.Is(err, hal.ErrFaulted) {
				t.Fatalf("SetContactor(true) without the limit = %v, want hal.ErrFaulted", err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dev := newFakeController(t)
			dev.set(fakeUnit, FuncReadHoldingRegisters, limitReg, 32)
			dev.setErr(ErrTimeout) // not answering when the daemon starts
			st := openFakeStation(t, dev, withLimit)
			if got := limit(dev); got != 32 {
				t.Fatalf("limit register %d while the controller was silent", got)
			}
			tc.run(t, dev, st)
		})
	}
}
