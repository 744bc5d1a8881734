package sim_test

import (
	"context"
	"errors"
	"math"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/sitelink/sitelink/hal"
	"github.com/sitelink/sitelink/hal/haltest"
	"github.com/sitelink/sitelink/hal/sim"
)

// clock is a fake clock that only moves when told to.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *clock { return &clock{now: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func TestSemantics(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  sim.Config
	}{
		{"Instant", sim.Config{Number: "5", PowerKW: 7.4}},
		{"Delayed", sim.Config{Number: "6", PowerKW: 11, TimeScale: 60, ContactorDelay: 2 * time.Millisecond}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			haltest.TestStation(t, func(t *testing.T) (hal.Station, haltest.Controls) {
				st := sim.New(tc.cfg)
				return st, haltest.Controls{Plug: st.Plug, Unplug: st.Unplug, Fault: st.Fault, Clear: st.Clear}
			})
		})
	}
}

func TestNoControls(t *testing.T) {
	haltest.TestStation(t, func(t *testing.T) (hal.Station, haltest.Controls) {
		return sim.New(sim.Config{VehiclePresent: true, PowerKW: 3}), haltest.Controls{}
	})
}

func set(t *testing.T, st *sim.Station, on bool) {
	t.Helper()
	if err := st.SetContactor(context.Background(), on); err != nil {
		t.Fatalf("SetContactor(%v): %v", on, err)
	}
}

func near(a, b float64) bool { return math.Abs(a-b) < 1e-6 }

func TestEnergy(t *testing.T) {
	tests := []struct {
		name      string
		powerKW   float64
		timeScale float64
		elapsed   time.Duration
		wantWh    float64
	}{
		{"RealTime", 7.4, 0, time.Hour, 7400},
		{"ScaleOne", 7.4, 1, 30 * time.Minute, 3700},
		{"Demo60", 11, 60, time.Minute, 11000},
		{"NegativeScaleMeansOne", 10, -5, 6 * time.Minute, 1000},
		{"NoPower", 0, 60, time.Hour, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := newClock()
			st := sim.New(sim.Config{Number: "5", VehiclePresent: true, PowerKW: tt.powerKW, TimeScale: tt.timeScale, Now: clk.Now})
			set(t, st, true)
			clk.Advance(tt.elapsed)
			r := st.Read()
			if !near(r.EnergyWh, tt.wantWh) {
				t.Errorf("EnergyWh = %v, want %v", r.EnergyWh, tt.wantWh)
			}
			if want := tt.powerKW * 1000; r.PowerW != want {
				t.Errorf("PowerW = %v, want %v (TimeScale must not scale power)", r.PowerW, want)
			}
			if !r.At.Equal(clk.Now()) {
				t.Errorf("At = %v, want the clock's %v", r.At, clk.Now())
			}
		})
	}
}

// TestEnergyOnlyWhileCharging checks that energy is billed per state: the
// register only moves in C, and a state change bills the old state up to
// the moment of the change.
func TestEnergyOnlyWhileCharging(t *testing.T) {
	clk := newClock()
	st := sim.New(sim.Config{Number: "5", PowerKW: 6, Now: clk.Now})
	steps := []struct {
		name   string
		do     func()
		wantCP hal.CPState
		wantWh float64 // after the step and one more hour
	}{
		{"NoVehicle", func() {}, hal.CPA, 0},
		{"Plugged", st.Plug, hal.CPB, 0},
		{"Closed", func() { set(t, st, true) }, hal.CPC, 6000},
		{"HalfPower", func() { _ = st.SetPower(3) }, hal.CPC, 9000},
		{"ZeroPower", func() { _ = st.SetPower(0) }, hal.CPB, 9000},
		{"PowerAgain", func() { _ = st.SetPower(6) }, hal.CPC, 15000},
		{"Opened", func() { set(t, st, false) }, hal.CPB, 15000},
		{"ClosedAgain", func() { set(t, st, true) }, hal.CPC, 21000},
		{"Unplugged", st.Unplug, hal.CPA, 21000},
		{"Replugged", st.Plug, hal.CPC, 27000},
		{"Faulted", func() { st.Fault("overcurrent") }, hal.CPF, 27000},
		{"Cleared", st.Clear, hal.CPB, 27000},
	}
	for _, step := range steps {
		step.do()
		if r := st.Read(); r.CP != step.wantCP {
			t.Fatalf("%s: CP = %q, want %q", step.name, r.CP, step.wantCP)
		}
		clk.Advance(time.Hour)
		if r := st.Read(); !near(r.EnergyWh, step.wantWh) {
			t.Fatalf("%s: after an hour EnergyWh = %v, want %v", step.name, r.EnergyWh, step.wantWh)
		}
	}
}

func TestEnergyClockBackwards(t *testing.T) {
	clk := newClock()
	st := sim.New(sim.Config{VehiclePresent: true, PowerKW: 1, Now: clk.Now})
	set(t, st, true)
	clk.Advance(time.Hour)
	if r := st.Read(); !near(r.EnergyWh, 1000) {
		t.Fatalf("EnergyWh = %v, want 1000", r.EnergyWh)
	}
	clk.Advance(-30 * time.Minute)
	if r := st.Read(); !near(r.EnergyWh, 1000) {
		t.Fatalf("clock went back: EnergyWh = %v, want 1000", r.EnergyWh)
	}
	// Back to where it was: the half hour must not be counted twice.
	clk.Advance(30 * time.Minute)
	if r := st.Read(); !near(r.EnergyWh, 1000) {
		t.Fatalf("clock caught up: EnergyWh = %v, want 1000", r.EnergyWh)
	}
	clk.Advance(time.Hour)
	if r := st.Read(); !near(r.EnergyWh, 2000) {
		t.Fatalf("an hour later: EnergyWh = %v, want 2000", r.EnergyWh)
	}
}

func TestReading(t *testing.T) {
	st := sim.New(sim.Config{Number: "7", VehiclePresent: true, PowerKW: 7.4})
	if r := st.Read(); r.CP != hal.CPB || r.Contactor || r.PowerW != 0 || r.Fault != "" {
		t.Fatalf("new plugged station: %+v, want B, open, no power, no fault", r)
	}
	set(t, st, true)
	if r := st.Read(); r.CP != hal.CPC || !r.Contactor || r.PowerW != 7400 {
		t.Fatalf("charging: %+v, want C, closed, 7400 W", r)
	}
	st.Unplug()
	if r := st.Read(); r.CP != hal.CPA || r.PowerW != 0 {
		t.Fatalf("unplugged while charging: %+v, want A, 0 W", r)
	}
	if got := sim.New(sim.Config{}).Number(); got != sim.DefaultNumber {
		t.Errorf("empty Number: Number() = %q, want %q", got, sim.DefaultNumber)
	}
}

func TestFault(t *testing.T) {
	st := sim.New(sim.Config{Number: "5", VehiclePresent: true, PowerKW: 7.4})
	set(t, st, true)
	st.Fault("RCD tripped")
	r := st.Read()
	if r.CP != hal.CPF || r.Fault != "RCD tripped" || r.Contactor || r.PowerW != 0 {
		t.Fatalf("faulted: %+v, want F, reason, open, 0 W", r)
	}
	err := st.SetContactor(context.Background(), true)
	if !errors.Is(err, hal.ErrFaulted) {
		t.Fatalf("faulted SetContactor(true) = %v, want ErrFaulted", err)
	}
	if err := st.SetContactor(context.Background(), false); err != nil {
		t.Fatalf("faulted SetContactor(false) = %v, want nil", err)
	}
	st.Clear()
	if r := st.Read(); r.CP != hal.CPB || r.Fault != "" {
		t.Fatalf("cleared: %+v, want B, no fault", r)
	}
	set(t, st, true)
	if r := st.Read(); r.CP != hal.CPC {
		t.Fatalf("cleared and closed: CP %q, want C", r.CP)
	}
}

// TestFaultDuringMove checks that a fault wins over a close in progress.
func TestFaultDuringMove(t *testing.T) {
	st := sim.New(sim.Config{VehiclePresent: true, PowerKW: 7.4, ContactorDelay: 50 * time.Millisecond})
	errc := make(chan error, 1)
	go func() { errc <- st.SetContactor(context.Background(), true) }()
	st.Fault("e-stop")
	if err := <-errc; !errors.Is(err, hal.ErrFaulted) {
		t.Fatalf("SetContactor(true) across a fault = %v, want ErrFaulted", err)
	}
	if r := st.Read(); r.Contactor {
		t.Fatal("contactor closed after a fault")
	}
}

func TestStuck(t *testing.T) {
	tests := []struct {
		name  string
		start bool // contactor position before it gets stuck
		delay time.Duration
	}{
		{"StuckOpen", false, 0},
		{"StuckClosed", true, 0},
		{"StuckOpenDelayed", false, time.Millisecond},
		{"StuckClosedDelayed", true, time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := sim.New(sim.Config{VehiclePresent: true, PowerKW: 7.4, ContactorDelay: tt.delay})
			set(t, st, tt.start)
			st.SetStuck(true)
			err := st.SetContactor(context.Background(), !tt.start)
			if !errors.Is(err, hal.ErrNotConfirmed) {
				t.Fatalf("stuck SetContactor(%v) = %v, want ErrNotConfirmed", !tt.start, err)
			}
			if r := st.Read(); r.Contactor != tt.start {
				t.Fatalf("stuck contactor moved to %v", r.Contactor)
			}
			// Commanding the position it is stuck in is confirmed.
			set(t, st, tt.start)
			st.SetStuck(false)
			set(t, st, !tt.start)
			if r := st.Read(); r.Contactor != !tt.start {
				t.Fatalf("unstuck contactor at %v, want %v", r.Contactor, !tt.start)
			}
		})
	}
}

func TestContextDuringMove(t *testing.T) {
	st := sim.New(sim.Config{ContactorDelay: time.Hour})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := st.SetContactor(ctx, true); !errors.Is(err, context.Canceled) {
		t.Fatalf("SetContactor with a cancelled ctx = %v, want context.Canceled", err)
	}
	if r := st.Read(); r.Contactor {
		t.Fatal("contactor closed before its delay")
	}
}

func TestSetPower(t *testing.T) {
	st := sim.New(sim.Config{})
	for _, kw := range []float64{-1, math.NaN(), math.Inf(1)} {
		if err := st.SetPower(kw); !errors.Is(err, sim.ErrInvalidPower) {
			t.Errorf("SetPower(%v) = %v, want ErrInvalidPower", kw, err)
		}
	}
	for _, kw := range []float64{0, 3.7, 350} {
		if err := st.SetPower(kw); err != nil {
			t.Errorf("SetPower(%v) = %v", kw, err)
		}
	}
}

func TestClose(t *testing.T) {
	st := sim.New(sim.Config{VehiclePresent: true, PowerKW: 7.4})
	set(t, st, true)
	if err := st.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := st.SetContactor(context.Background(), true); !errors.Is(err, hal.ErrClosed) {
		t.Fatalf("SetContactor(true) after Close = %v, want ErrClosed", err)
	}
	if err := st.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

// TestChanges checks which operations notify: CP, contactor and fault
// changes do, energy, power within state C, and no-ops do not.
func TestChanges(t *testing.T) {
	clk := newClock()
	st := sim.New(sim.Config{PowerKW: 7.4, Now: clk.Now})
	steps := []struct {
		name   string
		do     func()
		notify bool
	}{
		{"Plug", st.Plug, true},
		{"PlugAgain", st.Plug, false},
		{"Close", func() { set(t, st, true) }, true},
		{"CloseAgain", func() { set(t, st, true) }, false},
		{"EnergyOnly", func() { clk.Advance(time.Hour); st.Read() }, false},
		{"PowerWithinC", func() { _ = st.SetPower(3) }, false},
		{"PowerZero", func() { _ = st.SetPower(0) }, true},
		{"PowerBack", func() { _ = st.SetPower(7) }, true},
		{"Stuck", func() { st.SetStuck(true) }, false},
		{"Unstuck", func() { st.SetStuck(false) }, false},
		{"Fault", func() { st.Fault("x") }, true},
		{"FaultReason", func() { st.Fault("y") }, true},
		{"Clear", st.Clear, true},
		{"ClearAgain", st.Clear, false},
		{"CloseAfterFault", func() { set(t, st, true) }, true},
		{"Unplug", st.Unplug, true},
		{"Open", func() { set(t, st, false) }, true},
		{"Halt", func() { _ = st.Halt() }, false},
	}
	for _, step := range steps {
		select {
		case <-st.Changes():
		default:
		}
		step.do()
		var got bool
		select {
		case <-st.Changes():
			got = true
		default:
		}
		if got != step.notify {
			t.Errorf("%s: notified = %v, want %v", step.name, got, step.notify)
		}
	}
}

// TestChangesCoalesce checks that notifications never block the station
// when nobody listens.
func TestChangesCoalesce(t *testing.T) {
	st := sim.New(sim.Config{})
	for range 100 {
		st.Plug()
		st.Unplug()
	}
	<-st.Changes()
	select {
	case <-st.Changes():
		t.Fatal("more than one pending notification")
	default:
	}
}

func TestConcurrent(t *testing.T) {
	clk := newClock()
	st := sim.New(sim.Config{VehiclePresent: true, PowerKW: 7.4, TimeScale: 60, Now: clk.Now})
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	readers := make([]float64, 4)
	for i := range readers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				r := st.Read()
				if r.EnergyWh < readers[i] {
					t.Errorf("EnergyWh went back from %v to %v", readers[i], r.EnergyWh)
					return
				}
				readers[i] = r.EnergyWh
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for ctx.Err() == nil {
			clk.Advance(time.Second)
			runtime.Gosched()
		}
	}()
	for i := range 200 {
		_ = st.SetContactor(context.Background(), i%2 == 0)
		switch i % 7 {
		case 0:
			st.Unplug()
		case 1:
			st.Plug()
		case 3:
			_ = st.SetPower(float64(i % 5))
		case 5:
			st.Fault("race")
		case 6:
			st.Clear()
		}
	}
	cancel()
	wg.Wait()
}
