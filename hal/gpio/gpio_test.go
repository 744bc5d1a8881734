package gpio

import (
	"context"
	"errors"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/gpio/gpioreg"
	"periph.io/x/conn/v3/gpio/gpiotest"

	"github.com/sitelink/sitelink/hal"
	"github.com/sitelink/sitelink/hal/haltest"
)

func TestSemantics(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts rigOpts
	}{
		{"Plain", rigOpts{}},
		{"Feedback", rigOpts{feedback: true}},
		{"ActiveLowFeedbackDebounce", rigOpts{feedback: true, activeLow: true, debounce: 5 * time.Millisecond}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			haltest.TestStation(t, func(t *testing.T) (hal.Station, haltest.Controls) {
				r := newRig(t, tc.opts)
				st := r.open(r.config())
				return st, haltest.Controls{
					Plug:   func() { r.set(roleVehicle, true) },
					Unplug: func() { r.set(roleVehicle, false) },
					Fault:  func(string) { r.set(roleFault, true) },
					Clear:  func() { r.set(roleFault, false) },
				}
			})
		})
	}
}

func TestContactor(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts rigOpts
	}{
		{"ActiveHigh", rigOpts{}},
		{"ActiveLow", rigOpts{activeLow: true}},
		{"ActiveHighFeedback", rigOpts{feedback: true}},
		{"ActiveLowFeedback", rigOpts{feedback: true, activeLow: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, tc.opts)
			// A contactor left on by a previous run is driven off by Open.
			_ = r.pins[roleContactor].Out(r.relay.onLevel)
			st := r.open(r.config())
			off := !r.relay.onLevel
			if l := r.level(roleContactor); l != off {
				t.Fatalf("after Open: contactor line %v, want %v (off)", l, off)
			}
			ctx := context.Background()
			for _, on := range []bool{true, false, true, false} {
				if err := st.SetContactor(ctx, on); err != nil {
					t.Fatalf("SetContactor(%v): %v", on, err)
				}
				if got := r.contactorOn(); got != on {
					t.Fatalf("SetContactor(%v): coil energised = %v", on, got)
				}
				rd := st.Read()
				if rd.Contactor != on || rd.Fault != "" {
					t.Fatalf("SetContactor(%v): reading %+v", on, rd)
				}
				if tc.opts.feedback {
					want := gpio.Level(on != tc.opts.activeLow)
					if l := r.level(roleFeedback); l != want {
						t.Fatalf("SetContactor(%v): feedback line %v, want %v", on, l, want)
					}
				}
				if rd.EnergyWh != 0 || rd.PowerW != 0 {
					t.Fatalf("energy/power = %v/%v, want 0 (a meter provides them)", rd.EnergyWh, rd.PowerW)
				}
			}
		})
	}
}

func TestFeedbackMismatch(t *testing.T) {
	// Short enough to expire quickly, long enough for a working contactor
	// to confirm under -race.
	const timeout = 300 * time.Millisecond
	t.Run("CloseNotConfirmed", func(t *testing.T) {
		r := newRig(t, rigOpts{feedback: true, feedbackTimeout: timeout})
		st := r.open(r.config())
		r.relay.stuck.Store(true)
		err := st.SetContactor(context.Background(), true)
		if !errors.Is(err, hal.ErrNotConfirmed) {
			t.Fatalf("SetContactor(true) with a dead contactor = %v, want hal.ErrNotConfirmed", err)
		}
		if r.contactorOn() {
			t.Fatal("unconfirmed close left the coil energised")
		}
		if rd := st.Read(); rd.Fault != faultMismatch || rd.CP != hal.CPF || rd.Contactor {
			t.Fatalf("after mismatch: reading %+v, want fault %q, CP F, contactor open", rd, faultMismatch)
		}
		// Opening is confirmed (the contact is open) but does not prove
		// the contactor works: the fault stays.
		if err := st.SetContactor(context.Background(), false); err != nil {
			t.Fatalf("SetContactor(false): %v", err)
		}
		if rd := st.Read(); rd.Fault != faultMismatch {
			t.Fatalf("after confirmed open: Fault %q, want %q", rd.Fault, faultMismatch)
		}
		// A repaired contactor clears the fault on the next confirmed close.
		r.relay.stuck.Store(false)
		if err := st.SetContactor(context.Background(), true); err != nil {
			t.Fatalf("SetContactor(true) after repair: %v", err)
		}
		if rd := st.Read(); rd.Fault != "" || !rd.Contactor {
			t.Fatalf("after repair: reading %+v, want closed, no fault", rd)
		}
	})
	t.Run("OpenNotConfirmed", func(t *testing.T) {
		r := newRig(t, rigOpts{feedback: true, feedbackTimeout: timeout})
		st := r.open(r.config())
		if err := st.SetContactor(context.Background(), true); err != nil {
			t.Fatalf("SetContactor(true): %v", err)
		}
		r.relay.stuck.Store(true) // welded
		if err := st.Halt(); !errors.Is(err, hal.ErrNotConfirmed) {
			t.Fatalf("Halt with a welded contactor = %v, want hal.ErrNotConfirmed", err)
		}
		if r.contactorOn() {
			t.Fatal("coil still energised after Halt")
		}
		if rd := st.Read(); rd.Fault != faultMismatch || !rd.Contactor {
			t.Fatalf("welded: reading %+v, want fault %q and contactor reported closed", rd, faultMismatch)
		}
		// The contact finally opens: feedback agrees with the command.
		r.set(roleFeedback, false)
		if rd := st.Read(); rd.Fault != "" || rd.Contactor {
			t.Fatalf("after the contact opened: reading %+v, want open, no fault", rd)
		}
	})
	t.Run("DropOut", func(t *testing.T) {
		r := newRig(t, rigOpts{feedback: true, feedbackTimeout: timeout})
		st := r.open(r.config())
		if err := st.SetContactor(context.Background(), true); err != nil {
			t.Fatalf("SetContactor(true): %v", err)
		}
		r.set(roleFeedback, false) // the contactor drops out on its own
		if rd := st.Read(); rd.Contactor {
			t.Fatalf("after drop-out: reading %+v, want contactor open", rd)
		}
		rd := waitFor(t, st, "mismatch fault after drop-out", func(rd hal.Reading) bool { return rd.Fault != "" })
		if rd.Fault != faultMismatch {
			t.Fatalf("after drop-out: Fault %q, want %q", rd.Fault, faultMismatch)
		}
		if r.contactorOn() {
			t.Fatal("after drop-out mismatch: coil still energised")
		}
	})
	t.Run("ContextEnds", func(t *testing.T) {
		r := newRig(t, rigOpts{feedback: true, feedbackTimeout: time.Hour})
		st := r.open(r.config())
		r.relay.stuck.Store(true)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if err := st.SetContactor(ctx, true); !errors.Is(err, context.Canceled) {
			t.Fatalf("SetContactor(true) with a cancelled ctx = %v, want context.Canceled", err)
		}
		if r.contactorOn() {
			t.Fatal("abandoned close left the coil energised")
		}
		if rd := st.Read(); rd.Fault != "" {
			t.Fatalf("a cancelled wait is not a mismatch: Fault %q", rd.Fault)
		}
	})
}

func TestDebounce(t *testing.T) {
	const debounce = 150 * time.Millisecond
	for _, tc := range []struct {
		name        string
		edges       []bool // logical levels sent back to back
		wantSettled bool
		wantCounted bool
		wantCP      hal.CPState
	}{
		{"Glitch", []bool{true, false}, false, false, hal.CPA},
		{"Bounce", []bool{true, false, true, false, true}, true, true, hal.CPB},
		{"Level", []bool{true}, true, true, hal.CPB},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, rigOpts{debounce: debounce})
			st := r.open(r.config())
			select {
			case <-st.Changes():
			default:
			}
			m := r.mark(roleVehicle)
			start := time.Now()
			for _, l := range tc.edges {
				r.send(roleVehicle, l)
			}
			counted := r.waitSettled(roleVehicle, m, tc.wantSettled)
			if counted != tc.wantCounted {
				t.Fatalf("settled on %v: counted = %v, want %v", tc.wantSettled, counted, tc.wantCounted)
			}
			if tc.wantCounted && time.Since(start) < debounce {
				t.Fatalf("level counted after %v, before the %v debounce", time.Since(start), debounce)
			}
			if cp := st.Read().CP; cp != tc.wantCP {
				t.Fatalf("CP = %q, want %q", cp, tc.wantCP)
			}
			select {
			case <-st.Changes():
				if !tc.wantCounted {
					t.Fatal("a glitch notified Changes")
				}
			default:
				if tc.wantCounted {
					t.Fatal("a settled change did not notify Changes")
				}
			}
		})
	}
}

func TestInputs(t *testing.T) {
	for _, tc := range []struct {
		name      string
		activeLow bool
		pull      Pull
		wantPull  gpio.Pull
		wantIdle  hal.CPState // with nothing driving the vehicle line
	}{
		{"ActiveHighAuto", false, PullAuto, gpio.PullDown, hal.CPA},
		{"ActiveLowAuto", true, PullAuto, gpio.PullUp, hal.CPA},
		// A pull towards the active level makes an open wire read active.
		{"ActiveHighUp", false, PullUp, gpio.PullUp, hal.CPB},
		{"ActiveLowNone", true, PullNone, gpio.Float, hal.CPA},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, rigOpts{activeLow: tc.activeLow})
			c := r.config()
			c.Vehicle.Pull = tc.pull
			r.pins[roleVehicle].L = gpio.Level(tc.activeLow) // inactive
			st := r.open(c)
			p := r.pins[roleVehicle]
			p.Lock()
			pull := p.P
			p.Unlock()
			if pull != tc.wantPull {
				t.Fatalf("vehicle pull = %v, want %v", pull, tc.wantPull)
			}
			if cp := st.Read().CP; cp != tc.wantIdle {
				t.Fatalf("idle CP = %q, want %q", cp, tc.wantIdle)
			}
			steps := []struct {
				role   string
				active bool
				want   hal.CPState
			}{
				{roleVehicle, true, hal.CPB},
				{roleCharging, true, hal.CPC},
				{roleFault, true, hal.CPF},
				{roleFault, false, hal.CPC},
				{roleCharging, false, hal.CPB},
				{roleVehicle, false, hal.CPA},
			}
			for _, s := range steps {
				r.set(s.role, s.active)
				if l, want := r.level(s.role), gpio.Level(s.active != tc.activeLow); l != want {
					t.Fatalf("%s line %v, want %v", s.role, l, want)
				}
				if cp := st.Read().CP; cp != s.want {
					t.Fatalf("%s active=%v: CP %q, want %q", s.role, s.active, cp, s.want)
				}
			}
		})
	}
}

func TestCPWithoutVehicleLines(t *testing.T) {
	for _, tc := range []struct {
		name     string
		vehicle  bool
		charging bool
		set      []string // inputs driven active
		want     hal.CPState
	}{
		{"NoLinesIdle", false, false, nil, hal.CPUnknown},
		{"NoLinesFault", false, false, []string{roleFault}, hal.CPF},
		{"ChargingOnlyIdle", false, true, nil, hal.CPA},
		{"ChargingOnlyActive", false, true, []string{roleCharging}, hal.CPC},
		{"VehicleOnly", true, false, []string{roleVehicle}, hal.CPB},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, rigOpts{})
			c := r.config()
			if !tc.vehicle {
				c.Vehicle = nil
			}
			if !tc.charging {
				c.Charging = nil
			}
			st := r.open(c)
			for _, role := range tc.set {
				r.set(role, true)
			}
			if cp := st.Read().CP; cp != tc.want {
				t.Fatalf("CP = %q, want %q", cp, tc.want)
			}
		})
	}
}

func TestButtons(t *testing.T) {
	r := newRig(t, rigOpts{debounce: 20 * time.Millisecond})
	var starts, stops atomic.Int32
	c := r.config()
	c.OnStart = func() { starts.Add(1) }
	c.OnStop = func() { stops.Add(1) }
	st := r.open(c)
	press := func(role string) {
		t.Helper()
		m := r.mark(role)
		// A bouncing contact: one press.
		for _, l := range []bool{true, false, true} {
			r.send(role, l)
		}
		r.waitSettled(role, m, true)
		r.set(role, false)
	}
	for _, step := range []struct {
		role                  string
		wantStarts, wantStops int32
	}{
		{roleStart, 1, 0},
		{roleStart, 2, 0},
		{roleStop, 2, 1},
	} {
		press(step.role)
		st.callbacks.Wait()
		if s, p := starts.Load(), stops.Load(); s != step.wantStarts || p != step.wantStops {
			t.Fatalf("after pressing %s: OnStart %d, OnStop %d calls; want %d, %d", step.role, s, p, step.wantStarts, step.wantStops)
		}
	}
}

func TestFailSafe(t *testing.T) {
	for _, tc := range []struct {
		name      string
		opts      rigOpts
		onStart   func()
		trigger   func(t *testing.T, r *rig, st *Station)
		wantFault bool // the station stays faulted
	}{
		{
			name:    "Close",
			trigger: func(t *testing.T, r *rig, st *Station) { _ = st.Close() },
		},
		{
			name:      "FaultInput",
			trigger:   func(t *testing.T, r *rig, st *Station) { r.set(roleFault, true) },
			wantFault: true,
		},
		{
			name:    "PanicInCallback",
			onStart: func() { panic("handler bug") },
			trigger: func(t *testing.T, r *rig, st *Station) { r.set(roleStart, true) },
		},
		{
			name:      "PanicInWatcher",
			opts:      rigOpts{panicOn: func(role string, level bool) bool { return role == roleVehicle && level }},
			trigger:   func(t *testing.T, r *rig, st *Station) { r.send(roleVehicle, true) },
			wantFault: true,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, tc.opts)
			c := r.config()
			c.OnStart = tc.onStart
			st := r.open(c)
			if err := st.SetContactor(context.Background(), true); err != nil {
				t.Fatalf("SetContactor(true): %v", err)
			}
			tc.trigger(t, r, st)
			rd := waitFor(t, st, "contactor driven off", func(rd hal.Reading) bool { return !rd.Contactor })
			if r.contactorOn() {
				t.Fatal("reading says open but the coil is energised")
			}
			if got := rd.Fault != ""; got != tc.wantFault {
				t.Fatalf("faulted = %v (reading %+v), want %v", got, rd, tc.wantFault)
			}
			if tc.wantFault {
				if err := st.SetContactor(context.Background(), true); !errors.Is(err, hal.ErrFaulted) {
					t.Fatalf("faulted, SetContactor(true) = %v, want hal.ErrFaulted", err)
				}
				if r.contactorOn() {
					t.Fatal("faulted station energised the coil")
				}
			}
		})
	}
}

func TestOpenErrors(t *testing.T) {
	for _, tc := range []struct {
		name    string
		edit    func(r *rig, c *Config)
		wantErr error
		wantIn  string // in the message
	}{
		{"MissingContactor", func(r *rig, c *Config) { c.Contactor.Name = "NO_SUCH_CONTACTOR" }, ErrNoLine, `contactor line "NO_SUCH_CONTACTOR"`},
		{"MissingFeedback", func(r *rig, c *Config) { c.ContactorFeedback = &Pin{Name: "NO_SUCH_FB"} }, ErrNoLine, `contactor feedback line "NO_SUCH_FB"`},
		{"MissingVehicle", func(r *rig, c *Config) { c.Vehicle.Name = "NO_SUCH_VEHICLE" }, ErrNoLine, `vehicle line "NO_SUCH_VEHICLE"`},
		{"MissingStop", func(r *rig, c *Config) { c.StopButton.Name = "NO_SUCH_STOP" }, ErrNoLine, `stop button line "NO_SUCH_STOP"`},
		{"SameLineTwice", func(r *rig, c *Config) { c.Charging.Name = c.Vehicle.Name }, ErrLineInUse, "by station 7 as vehicle"},
		{"InputIsContactor", func(r *rig, c *Config) { c.Fault.Name = c.Contactor.Name }, ErrLineInUse, "as contactor"},
		{"EmptyNumber", func(r *rig, c *Config) { c.Number = "" }, ErrInvalidConfig, "station number"},
		{"EmptyName", func(r *rig, c *Config) { c.Fault.Name = "" }, ErrInvalidConfig, "fault line name"},
		{"NegativeDebounce", func(r *rig, c *Config) { c.Vehicle.Debounce = -1 }, ErrInvalidConfig, "negative debounce"},
		{"BadPull", func(r *rig, c *Config) { c.Vehicle.Pull = "sideways" }, ErrInvalidConfig, `unknown pull "sideways"`},
		{"PullOnOutput", func(r *rig, c *Config) { c.Contactor.Pull = PullUp }, ErrInvalidConfig, "contactor is an output"},
		{"NegativeTimeout", func(r *rig, c *Config) { c.FeedbackTimeout = -time.Second }, ErrInvalidConfig, "negative feedback timeout"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, rigOpts{})
			c := r.config()
			tc.edit(r, &c)
			_ = r.pins[roleContactor].Out(r.relay.onLevel) // left on
			st, err := Open(c)
			if err == nil {
				_ = st.Close()
				t.Fatal("Open succeeded")
			}
			if !errors.Is(err, tc.wantErr) || !strings.Contains(err.Error(), tc.wantIn) {
				t.Fatalf("Open = %v, want %v mentioning %q", err, tc.wantErr, tc.wantIn)
			}
			contactorResolved := tc.wantErr != ErrInvalidConfig && tc.name != "MissingContactor"
			if got := !r.contactorOn(); got != contactorResolved {
				t.Fatalf("contactor driven off = %v, want %v", got, contactorResolved)
			}
			// Every claim was released: a correct config opens now.
			st = r.open(r.config())
			_ = st.Close()
		})
	}
}

func TestLineShared(t *testing.T) {
	r := newRig(t, rigOpts{})
	st := r.open(r.config())
	if err := st.SetContactor(context.Background(), true); err != nil {
		t.Fatal(err)
	}
	alias := r.names[roleContactor] + "_ALIAS"
	if err := gpioreg.RegisterAlias(alias, r.names[roleContactor]); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = gpioreg.Unregister(alias) })
	for _, name := range []string{r.names[roleContactor], alias} {
		r2 := newRig(t, rigOpts{})
		c := r2.config()
		c.Number = "8"
		c.Contactor.Name = name
		if st2, err := Open(c); !errors.Is(err, ErrLineInUse) {
			if err == nil {
				_ = st2.Close()
			}
			t.Fatalf("second station on %q: Open = %v, want ErrLineInUse", name, err)
		}
		if !r.contactorOn() {
			t.Fatalf("a refused Open on %q touched the first station's contactor", name)
		}
	}
	_ = st.Close()
	// Closing releases the lines.
	st = r.open(r.config())
	_ = st.Close()
}

func TestCloseSemantics(t *testing.T) {
	r := newRig(t, rigOpts{feedback: true})
	st := r.open(r.config())
	if err := st.SetContactor(context.Background(), true); err != nil {
		t.Fatal(err)
	}
	errs := make(chan error, 3)
	for range 3 {
		go func() { errs <- st.Close() }()
	}
	for range 3 {
		if err := <-errs; err != nil {
			t.Fatalf("concurrent Close: %v", err)
		}
	}
	if r.contactorOn() || st.Read().Contactor {
		t.Fatal("contactor on after Close")
	}
	if err := st.SetContactor(context.Background(), true); !errors.Is(err, hal.ErrClosed) {
		t.Fatalf("SetContactor(true) after Close = %v, want hal.ErrClosed", err)
	}
	if err := st.Halt(); err != nil {
		t.Fatalf("Halt after Close: %v", err)
	}
}

func TestNoGoroutineLeak(t *testing.T) {
	r := newRig(t, rigOpts{feedback: true, debounce: time.Millisecond})
	c := r.config()
	c.OnStart = func() {}
	before := runtime.NumGoroutine()
	for range 3 {
		st, err := open(c, hooks{settled: r.hook})
		if err != nil {
			t.Fatal(err)
		}
		if err := st.SetContactor(context.Background(), true); err != nil {
			t.Fatal(err)
		}
		r.set(roleVehicle, true)
		r.set(roleStart, true)
		r.set(roleStart, false)
		r.set(roleVehicle, false)
		if err := st.Close(); err != nil {
			t.Fatal(err)
		}
		st.callbacks.Wait()
	}
	// Timers and exiting goroutines may take a moment to disappear.
	deadline := time.Now().Add(waitTimeout)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<16)
			t.Fatalf("goroutines: %d before, %d after Close\n%s", before, runtime.NumGoroutine(), buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestLines(t *testing.T) {
	r := newRig(t, rigOpts{activeLow: true})
	c := r.config()
	c.StopButton = nil // leave one rig line unclaimed
	st := r.open(c)
	if err := st.SetContactor(context.Background(), true); err != nil {
		t.Fatal(err)
	}
	free := &gpiotest.Pin{N: r.names[roleStop] + "_FREE", Fn: string(gpio.IN_HIGH)}
	if err := gpioreg.Register(free); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = gpioreg.Unregister(free.N) })

	lines, err := Lines()
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]LineInfo{}
	for _, l := range lines {
		byName[l.Name] = l
	}
	for _, tc := range []struct {
		name string
		want LineInfo
	}{
		{r.names[roleContactor], LineInfo{Function: string(gpio.OUT_LOW), Level: "Low", Use: "station 7 contactor"}},
		{r.names[roleVehicle], LineInfo{Function: string(gpio.IN_HIGH), Level: "High", Use: "station 7 vehicle"}},
		{r.names[roleStop], LineInfo{}},
		{free.N, LineInfo{Function: string(gpio.IN_HIGH), Level: "High"}},
	} {
		got, ok := byName[tc.name]
		if !ok {
			t.Fatalf("Lines() lacks %s", tc.name)
		}
		tc.want.Name, tc.want.Number = tc.name, got.Number
		if got != tc.want {
			t.Errorf("Lines()[%s] = %+v, want %+v", tc.name, got, tc.want)
		}
	}
}
