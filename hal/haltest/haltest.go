package haltest

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/sitelink/sitelink/hal"
)

// Timeout bounds every wait of the semantics test: a contactor command or
// a Changes notification that takes longer fails the subtest. It is
// generous because it must also hold under -race on slow machines.
const Timeout = 10 * time.Second

// Controls are what a driver's test rig can do to its station besides the
// hal.Station methods. A nil func means the driver cannot simulate that;
// the subtests that need it are skipped.
type Controls struct {
	Plug   func()              // connect a vehicle (CP A -> B)
	Unplug func()              // disconnect the vehicle (-> A)
	Fault  func(reason string) // put the station in a fault
	Clear  func()              // end the fault
}

// TestStation runs the shared hal.Station semantics against fresh
// stations from open, one per subtest. open may register its own cleanup;
// TestStation additionally closes each station when its subtest ends.
func TestStation(t *testing.T, open func(t *testing.T) (st hal.Station, ctl Controls)) {
	t.Helper()
	tests := []struct {
		name string
		run  func(t *testing.T, st hal.Station, ctl Controls)
	}{
		{"StartsHalted", testStartsHalted},
		{"Number", testNumber},
		{"CloseContactor", testCloseContactor},
		{"OpenContactor", testOpenContactor},
		{"Halt", testHalt},
		{"Close", testClose},
		{"ChangesOnContactor", testChangesOnContactor},
		{"PlugUnplug", testPlugUnplug},
		{"ConcurrentRead", testConcurrentRead},
		{"EnergyNeverDecreases", testEnergyNeverDecreases},
		{"OpenWhenFaulted", testOpenWhenFaulted},
		{"FaultRefusesClose", testFaultRefusesClose},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st, ctl := open(t)
			if st == nil {
				t.Fatal("open returned a nil station")
			}
			t.Cleanup(func() { _ = st.Close() })
			tt.run(t, st, ctl)
		})
	}
}

func testStartsHalted(t *testing.T, st hal.Station, _ Controls) {
	if r := st.Read(); r.Contactor {
		t.Fatalf("new station: contactor closed, want open (reading %+v)", r)
	}
}

func testNumber(t *testing.T, st hal.Station, _ Controls) {
	if st.Number() == "" {
		t.Fatal("Number() is empty")
	}
}

func testCloseContactor(t *testing.T, st hal.Station, ctl Controls) {
	plug(ctl)
	setContactor(t, st, true)
	if r := st.Read(); !r.Contactor {
		t.Fatalf("after SetContactor(true): contactor open (reading %+v)", r)
	}
}

func testOpenContactor(t *testing.T, st hal.Station, ctl Controls) {
	plug(ctl)
	setContactor(t, st, true)
	setContactor(t, st, false)
	if r := st.Read(); r.Contactor {
		t.Fatalf("after SetContactor(false): contactor closed (reading %+v)", r)
	}
	// Opening an open contactor is confirmed too: the engine opens
	// defensively without knowing the position.
	setContactor(t, st, false)
}

func testHalt(t *testing.T, st hal.Station, ctl Controls) {
	plug(ctl)
	setContactor(t, st, true)
	if err := st.Halt(); err != nil {
		t.Fatalf("Halt: %v", err)
	}
	if r := st.Read(); r.Contactor {
		t.Fatalf("after Halt: contactor closed (reading %+v)", r)
	}
	if err := st.Halt(); err != nil {
		t.Fatalf("second Halt: %v", err)
	}
}

func testClose(t *testing.T, st hal.Station, ctl Controls) {
	plug(ctl)
	setContactor(t, st, true)
	if err := st.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if r := st.Read(); r.Contactor {
		t.Fatalf("after Close: contactor closed (reading %+v)", r)
	}
	ctx, cancel := context.WithTimeout(context.Background(), Timeout)
	defer cancel()
	if err := st.SetContactor(ctx, true); err == nil {
		t.Fatal("SetContactor(true) after Close succeeded, want an error")
	}
	if r := st.Read(); r.Contactor {
		t.Fatalf("SetContactor(true) after Close closed the contactor (reading %+v)", r)
	}
}

func testChangesOnContactor(t *testing.T, st hal.Station, ctl Controls) {
	plug(ctl)
	drain(st)
	setContactor(t, st, true)
	waitChange(t, st, "closing the contactor")
	setContactor(t, st, false)
	waitChange(t, st, "opening the contactor")
}

func testPlugUnplug(t *testing.T, st hal.Station, ctl Controls) {
	if ctl.Plug == nil || ctl.Unplug == nil {
		t.Skip("driver cannot simulate plugging")
	}
	ctl.Unplug()
	drain(st)
	if r := st.Read(); r.CP.VehiclePresent() {
		t.Fatalf("after Unplug: CP %q says a vehicle is present", r.CP)
	}
	ctl.Plug()
	waitChange(t, st, "plugging in")
	if r := st.Read(); !r.CP.VehiclePresent() {
		t.Fatalf("after Plug: CP %q says no vehicle", r.CP)
	}
	ctl.Unplug()
	waitChange(t, st, "unplugging")
	if r := st.Read(); r.CP.VehiclePresent() {
		t.Fatalf("after Unplug: CP %q says a vehicle is present", r.CP)
	}
}

// testConcurrentRead relies on the race detector: readers hammer Read and
// Changes while the contactor switches.
func testConcurrentRead(t *testing.T, st hal.Station, ctl Controls) {
	plug(ctl)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				_ = st.Read()
				select {
				case <-st.Changes():
				default:
				}
			}
		}()
	}
	for i := range 20 {
		setContactor(t, st, i%2 == 0)
	}
	cancel()
	wg.Wait()
	if r := st.Read(); r.Contactor {
		t.Fatalf("after an even number of switches: contactor closed (reading %+v)", r)
	}
}

func testEnergyNeverDecreases(t *testing.T, st hal.Station, ctl Controls) {
	plug(ctl)
	prev := st.Read().EnergyWh
	check := func(when string) {
		t.Helper()
		r := st.Read()
		if r.EnergyWh < prev {
			t.Fatalf("%s: EnergyWh went from %v to %v", when, prev, r.EnergyWh)
		}
		prev = r.EnergyWh
	}
	for i := range 3 {
		setContactor(t, st, true)
		for range 50 {
			check("while charging")
		}
		setContactor(t, st, false)
		check("after opening")
		if i == 1 && ctl.Unplug != nil && ctl.Plug != nil {
			ctl.Unplug()
			check("after unplugging")
			ctl.Plug()
		}
	}
}

func testOpenWhenFaulted(t *testing.T, st hal.Station, ctl Controls) {
	if ctl.Fault == nil {
		t.Skip("driver cannot simulate a fault")
	}
	plug(ctl)
	setContactor(t, st, true)
	ctl.Fault("haltest fault")
	if r := st.Read(); r.Fault == "" {
		t.Fatalf("after Fault: Reading.Fault empty (reading %+v)", r)
	}
	setContactor(t, st, false)
	if r := st.Read(); r.Contactor {
		t.Fatalf("faulted, after SetContactor(false): contactor closed (reading %+v)", r)
	}
	if err := st.Halt(); err != nil {
		t.Fatalf("faulted, Halt: %v", err)
	}
}

func testFaultRefusesClose(t *testing.T, st hal.Station, ctl Controls) {
	if ctl.Fault == nil || ctl.Clear == nil {
		t.Skip("driver cannot simulate a fault and its end")
	}
	plug(ctl)
	drain(st)
	ctl.Fault("haltest fault")
	waitChange(t, st, "a fault")
	ctx, cancel := context.WithTimeout(context.Background(), Timeout)
	defer cancel()
	if err := st.SetContactor(ctx, true); !errors.Is(err, hal.ErrFaulted) {
		t.Fatalf("faulted, SetContactor(true) = %v, want hal.ErrFaulted", err)
	}
	if r := st.Read(); r.Contactor {
		t.Fatalf("faulted station closed its contactor (reading %+v)", r)
	}
	ctl.Clear()
	waitChange(t, st, "clearing the fault")
	if r := st.Read(); r.Fault != "" {
		t.Fatalf("after Clear: Reading.Fault = %q, want empty", r.Fault)
	}
	setContactor(t, st, true)
}

func plug(ctl Controls) {
	if ctl.Plug != nil {
		ctl.Plug()
	}
}

func setContactor(t *testing.T, st hal.Station, on bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), Timeout)
	defer cancel()
	if err := st.SetContactor(ctx, on); err != nil {
		t.Fatalf("SetContactor(%v): %v", on, err)
	}
}

// drain discards a pending notification so the next wait sees a fresh one.
func drain(st hal.Station) {
	select {
	case <-st.Changes():
	default:
	}
}

func waitChange(t *testing.T, st hal.Station, after string) {
	t.Helper()
	timer := time.NewTimer(Timeout)
	defer timer.Stop()
	select {
	case <-st.Changes():
	case <-timer.C:
		t.Fatalf("no Changes() notification within %v after %s", Timeout, after)
	}
}
