package modbus

import (
	"context"
	"errors"
	"log/slog"
	"math"
	"testing"
	"time"
)

// whProfile reads energy as a uint32 in Wh at holding 0 and power as an
// int32 in W at holding 2: exact numbers for the integrity tests.
var whProfile = Profile{
	Name:   "test",
	Energy: Register{Function: FuncReadHoldingRegisters, Address: 0, Type: TypeUint32},
	Power:  Register{Function: FuncReadHoldingRegisters, Address: 2, Type: TypeInt32},
}

func newTestMeter(t *testing.T, dev *fakeDevice, clk *fakeClock, log *slog.Logger) *Meter {
	t.Helper()
	dev.setUint32(1, FuncReadHoldingRegisters, 2, 7400)
	m, err := NewMeter(MeterConfig{Bus: dev, Unit: 1, Profile: whProfile, MaxPowerKW: 22, Now: clk.Now, Logger: log})
	if err != nil {
		t.Fatalf("NewMeter: %v", err)
	}
	return m
}

func TestMeterEnergyIntegrity(t *testing.T) {
	type step struct {
		after    time.Duration
		raw      int64 // register, Wh
		err      error // the device fails instead
		energyWh float64
		flag     string
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"plausible increments apply", []step{
			{0, 100_000, nil, 100_000, ""},
			{time.Minute, 100_300, nil, 100_300, ""}, // 18 kW
			{time.Minute, 100_300, nil, 100_300, ""},
			{time.Minute, 100_650, nil, 100_650, ""}, // 21 kW
		}},
		{"backwards is not applied", []step{
			{0, 100_000, nil, 100_000, ""},
			{time.Second, 99_990, nil, 100_000, FlagBackwards},
			{time.Second, 100_005, nil, 100_005, ""},
		}},
		{"jump is not applied", []step{
			{0, 100_000, nil, 100_000, ""},
			{time.Second, 150_000, nil, 100_000, FlagJump},
			{time.Second, 100_010, nil, 100_010, ""},
		}},
		{"tolerance covers register resolution", []step{
			{0, 100_000, nil, 100_000, ""},
			{time.Second, 100_050, nil, 100_050, ""}, // 6 Wh allowed by power, 50 by tolerance
			{time.Second, 100_200, nil, 100_050, FlagJump},
		}},
		{"replaced meter rebases without counting the drop", []step{
			{0, 10_000_000, nil, 10_000_000, ""},
			{time.Second, 500, nil, 10_000_000, FlagReplaced},
			{time.Second, 500, nil, 10_000_000, FlagReplaced},
			{time.Second, 505, nil, 10_000_000, FlagReplaced}, // third agreeing reading: rebased
			{time.Second, 510, nil, 10_000_005, ""},
		}},
		{"stuck jump rebases without counting the step", []step{
			{0, 100_000, nil, 100_000, ""},
			{time.Second, 200_000, nil, 100_000, FlagJump},
			{time.Second, 200_000, nil, 100_000, FlagJump},
			{time.Second, 200_000, nil, 100_000, FlagJump},
			{time.Second, 200_001, nil, 100_001, ""},
		}},
		{"disagreeing rejects do not rebase", []step{
			{0, 100_000, nil, 100_000, ""},
			{time.Second, 200_000, nil, 100_000, FlagJump},
			{time.Second, 300_000, nil, 100_000, FlagJump},
			{time.Second, 40_000, nil, 100_000, FlagReplaced},
			{time.Second, 100_001, nil, 100_001, ""},
		}},
		{"an hour offline at full power is plausible", []step{
			{0, 100_000, nil, 100_000, ""},
			{time.Hour, 122_000, nil, 122_000, ""},
		}},
		{"an hour offline above max power is a jump", []step{
			{0, 100_000, nil, 100_000, ""},
			{time.Hour, 125_000, nil, 100_000, FlagJump},
		}},
		{"comms errors keep the last good energy", []step{
			{0, 100_000, nil, 100_000, ""},
			{time.Second, 0, ErrTimeout, 100_000, ""},
			{time.Second, 0, ErrCRC, 100_000, ""},
			{time.Second, 100_010, nil, 100_010, ""},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dev, clk := newFakeDevice(), newFakeClock()
			m := newTestMeter(t, dev, clk, nil)
			prev := 0.0
			for i, s := range tt.steps {
				clk.Add(s.after)
				dev.setErr(s.err)
				if s.err == nil {
					dev.setUint32(1, FuncReadHoldingRegisters, 0, uint32(s.raw))
				}
				r, err := m.ReadOnce(context.Background())
				if !errors.Is(err, s.err) || !errors.Is(r.Err, s.err) {
					t.Fatalf("step %d: ReadOnce error %v, Reading.Err %v, want %v", i, err, r.Err, s.err)
				}
				if r.EnergyWh != s.energyWh || r.Flag != s.flag {
					t.Fatalf("step %d: EnergyWh %v flag %q, want %v %q (reading %+v)", i, r.EnergyWh, r.Flag, s.energyWh, s.flag, r)
				}
				if r.EnergyWh < prev {
					t.Fatalf("step %d: EnergyWh went from %v to %v", i, prev, r.EnergyWh)
				}
				prev = r.EnergyWh
				if !r.Valid || !r.At.Equal(clk.Now()) {
					t.Fatalf("step %d: reading %+v, want valid at %v", i, r, clk.Now())
				}
				if last := m.Last(); last.EnergyWh != r.EnergyWh || last.Flag != r.Flag {
					t.Fatalf("step %d: Last() = %+v, ReadOnce returned %+v", i, last, r)
				}
			}
		})
	}
}

func TestMeterNegativeAndInvalid(t *testing.T) {
	dev, clk := newFakeDevice(), newFakeClock()
	m := newTestMeter(t, dev, clk, nil)
	if r := m.Last(); r.Valid || r.EnergyWh != 0 {
		t.Fatalf("unpolled meter: %+v, want not valid", r)
	}
	// A signed energy register reading negative is never applied.
	m.cfg.Profile.Energy.Type = TypeInt32
	dev.setUint32(1, FuncReadHoldingRegisters, 0, uint32(0xFFFFFFFF)) // -1
	r, err := m.ReadOnce(context.Background())
	if err != nil || r.Flag != FlagNegative || r.Valid || r.EnergyWh != 0 {
		t.Fatalf("negative register: %+v, %v; want flag %q, not valid", r, err, FlagNegative)
	}
	dev.setUint32(1, FuncReadHoldingRegisters, 0, 5000)
	if r, err := m.ReadOnce(context.Background()); err != nil || !r.Valid || r.EnergyWh != 5000 || r.PowerW != 7400 {
		t.Fatalf("after a good reading: %+v, %v", r, err)
	}
	// A NaN float is a failed poll, not a value.
	m.cfg.Profile.Energy = Register{Function: FuncReadHoldingRegisters, Address: 0, Type: TypeFloat32}
	dev.set(1, FuncReadHoldingRegisters, 0, 0x7FC0, 0)
	if r, err := m.ReadOnce(context.Background()); !errors.Is(err, ErrInvalidValue) || r.EnergyWh != 5000 {
		t.Fatalf("NaN register: %+v, %v; want ErrInvalidValue and energy kept", r, err)
	}
}

func TestMeterLogsAtLimitedRate(t *testing.T) {
	dev, clk, rec := newFakeDevice(), newFakeClock(), &logRecorder{}
	m := newTestMeter(t, dev, clk, slog.New(rec))
	dev.setUint32(1, FuncReadHoldingRegisters, 0, 1000)
	if _, err := m.ReadOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	dev.setErr(ErrTimeout)
	for range 10 {
		clk.Add(time.Second)
		if _, err := m.ReadOnce(context.Background()); !errors.Is(err, ErrTimeout) {
			t.Fatalf("ReadOnce = %v, want ErrTimeout", err)
		}
	}
	if got := rec.messages(slog.LevelInfo); len(got) != 1 {
		t.Fatalf("10 failures in 10 s logged %d lines %q, want 1", len(got), got)
	}
	clk.Add(LogEvery)
	_, _ = m.ReadOnce(context.Background())
	if got := rec.messages(slog.LevelInfo); len(got) != 2 {
		t.Fatalf("after a minute: %d lines %q, want 2", len(got), got)
	}
	if v, ok := rec.attr(t, slog.LevelInfo, 1, "suppressed_lines"); !ok || v.Int64() != 9 {
		t.Fatalf("second line suppressed_lines = %v (%v), want 9", v, ok)
	}
	// Recovery within the minute is owed, then logged at the next chance.
	dev.setErr(nil)
	clk.Add(time.Second)
	if r, err := m.ReadOnce(context.Background()); err != nil || r.Err != nil || r.EnergyWh != 1000 {
		t.Fatalf("recovered reading %+v, %v", r, err)
	}
	if got := rec.messages(slog.LevelInfo); len(got) != 2 {
		t.Fatalf("recovery within the minute logged: %q", got)
	}
	clk.Add(LogEvery)
	_, _ = m.ReadOnce(context.Background())
	got := rec.messages(slog.LevelInfo)
	if len(got) != 3 || got[2] != "modbus meter answering again" {
		t.Fatalf("owed recovery line: %q", got)
	}
}

func TestMeterRun(t *testing.T) {
	dev := newFakeDevice()
	dev.setUint32(1, FuncReadHoldingRegisters, 0, 1000)
	dev.setUint32(1, FuncReadHoldingRegisters, 2, 0)
	m, err := NewMeter(MeterConfig{Bus: dev, Unit: 1, Profile: whProfile, Interval: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { m.Run(ctx); close(done) }()
	deadline := time.Now().Add(10 * time.Second)
	for !m.Last().Valid {
		if time.Now().After(deadline) {
			t.Fatal("Run did not poll within 10 s")
		}
		time.Sleep(time.Millisecond)
	}
	cancel()
	<-done
	if r := m.Last(); r.EnergyWh != 1000 || r.Err != nil {
		t.Fatalf("Last() = %+v", r)
	}
}

func TestNewMeterInvalid(t *testing.T) {
	dev := newFakeDevice()
	tests := []struct {
		name string
		cfg  MeterConfig
	}{
		{"no bus", MeterConfig{Unit: 1, Profile: whProfile}},
		{"unit 0", MeterConfig{Bus: dev, Profile: whProfile}},
		{"unit 248", MeterConfig{Bus: dev, Unit: 248, Profile: whProfile}},
		{"empty generic profile", MeterConfig{Bus: dev, Unit: 1, Profile: Profile{Name: GenericProfile}}},
		{"negative max power", MeterConfig{Bus: dev, Unit: 1, Profile: whProfile, MaxPowerKW: -1}},
		{"NaN tolerance", MeterConfig{Bus: dev, Unit: 1, Profile: whProfile, ToleranceWh: math.NaN()}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := NewMeter(tt.cfg); !errors.Is(err, ErrBadConfig) {
				t.Fatalf("NewMeter = %v, want ErrBadConfig", err)
			}
		})
	}
}
