package modbus

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"testing"
	"time"

	"github.com/sitelink/sitelink/hal"
	"github.com/sitelink/sitelink/hal/haltest"
)

// These tests read every built-in profile from a pymodbus unit serving
// that vendor's register map (testdata/slave.py), all on one rig.

// profileUnits is which rig unit serves each meter profile's map, and
// what the profile must read there.
var profileUnits = []struct {
	profile        string
	unit           byte
	energyWh, powW float64
}{
	{"sdm630", 1, 1234.5 * 1000, 11040},
	{"abb-b2x", 2, 987654 * 10, 7400},
	{"sdm120", 11, 42.25 * 1000, 3565},
	{"sdm220", 11, 42.25 * 1000, 3565},
	{"sdm230", 12, 7.5 * 1000, 2300},
	{"sdm72v2", 13, 555.5 * 1000, 3000},
	{"dtsu666", 14, 1234.5 * 1000, 7400}, // kWh; 74000 × 0.1 W
	{"em24", 15, 98765 * 100, 11040},     // int32 low word first, kWh×10, W×10
	{"janitza-umg604", 16, 123456, 5520}, // Wh
	{"pac2200", 17, 7654321.5, 4100},     // float64 Wh
	{"sdm72", 18, 10 * 1000, 3000},
}

func TestPymodbusProfiles(t *testing.T) {
	r := startRig(t)
	ctx := context.Background()

	t.Run("every meter profile reads its vendor's map", func(t *testing.T) {
		covered := map[string]bool{GenericProfile: true}
		for _, tt := range profileUnits {
			covered[tt.profile] = true
			m := newRigMeter(t, r, tt.unit, tt.profile)
			rd, err := m.ReadOnce(ctx)
			if err != nil {
				t.Errorf("%s on unit %d: %v", tt.profile, tt.unit, err)
				continue
			}
			if !near(rd.EnergyWh, tt.energyWh) || !near(rd.PowerW, tt.powW) || !rd.Valid || rd.Flag != "" {
				t.Errorf("%s on unit %d: %+v, want %v Wh at %v W", tt.profile, tt.unit, rd, tt.energyWh, tt.powW)
			}
		}
		for _, name := range Profiles() {
			if !covered[name] {
				t.Errorf("profile %s has no rig unit in profileUnits", name)
			}
		}
	})

	t.Run("scan guesses every profile", func(t *testing.T) {
		units := []byte{1, 2, 3, 4, 9, 11, 12, 13, 14, 15, 16, 17, 18, 20, 21}
		var asked []byte
		got, err := Scan(ctx, r.bus, units, func(u byte) { asked = append(asked, u) })
		if err != nil {
			t.Fatalf("Scan: %v", err)
		}
		if !slices.Equal(asked, units) {
			t.Errorf("progress saw %v, want %v", asked, units)
		}
		want := []ScanResult{
			{Unit: 1, Meters: []string{"sdm630", "sdm72v2"}},
			{Unit: 2, Meters: []string{"abb-b2x"}},
			{Unit: 3},
			{Unit: 4},
			// unit 9 does not answer
			{Unit: 11, Meters: []string{"sdm120", "sdm220", "sdm230"}},
			{Unit: 12, Meters: []string{"sdm120", "sdm220", "sdm230"}},
			{Unit: 13, Meters: []string{"sdm630", "sdm72v2"}},
			{Unit: 14, Meters: []string{"dtsu666"}},
			{Unit: 15, Meters: []string{"em24"}},
			{Unit: 16, Meters: []string{"janitza-umg604"}},
			{Unit: 17, Meters: []string{"pac2200"}},
			{Unit: 18, Meters: []string{"sdm72"}},
			{Unit: 20, Controllers: []string{"phoenix-ev-ser"}},
			{Unit: 21, Controllers: []string{"bender-cc613"}},
		}
		if len(got) != len(want) {
			t.Fatalf("Scan found %d units, want %d:\n%+v", len(got), len(want), got)
		}
		for i := range want {
			g, w := got[i], want[i]
			if g.Unit != w.Unit || !slices.Equal(g.Meters, w.Meters) || !slices.Equal(g.Controllers, w.Controllers) || g.Err != nil {
				t.Errorf("unit %d: got %+v, want %+v", w.Unit, g, w)
			}
		}
	})

	t.Run("scan stops when the context ends", func(t *testing.T) {
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		if _, err := Scan(cctx, r.bus, []byte{1, 2}, nil); !errors.Is(err, context.Canceled) {
			t.Fatalf("Scan with a cancelled context = %v", err)
		}
	})

	for _, tt := range []struct {
		profile string
		unit    byte
		state   func(cp byte) string // slave command that sets the state
		enable  string               // slave command that reads the enable back
		on      string               // what it reads while enabled
	}{
		{"phoenix-ev-ser", 20, func(cp byte) string { return fmt.Sprintf("set 20 ir 24000 %d", int(cp)<<8) }, "get 20 co 20000 1", "1"},
		{"bender-cc613", 21, func(cp byte) string { return fmt.Sprintf("set 21 hr 122 %d", cp-'A'+1) }, "get 21 hr 1000 1", "16"},
	} {
		open := func(t *testing.T) (*Station, haltest.Controls) {
			t.Helper()
			p, ok := ControllerProfileByName(tt.profile)
			if !ok {
				t.Fatalf("no controller profile %s", tt.profile)
			}
			r.do(t, "%s", tt.state('A'))
			st, err := OpenController(ControllerConfig{
				Number: tt.profile, Bus: r.bus, Unit: tt.unit, Map: p.Map, MaxCurrentA: 16,
				Interval: 200 * time.Millisecond, ConfirmTimeout: 2 * rigTimeout,
			})
			if err != nil {
				t.Fatalf("OpenController: %v", err)
			}
			t.Cleanup(func() { _ = st.Close() })
			to := func(cp byte) func() {
				return func() {
					r.do(t, "%s", tt.state(cp))
					pctx, cancel := context.WithTimeout(ctx, haltest.Timeout)
					defer cancel()
					if err := st.Poll(pctx); err != nil {
						t.Fatalf("Poll: %v", err)
					}
				}
			}
			return st, haltest.Controls{Plug: to('B'), Unplug: to('A'), Fault: func(string) { to('E')() }, Clear: to('B')}
		}
		t.Run(tt.profile, func(t *testing.T) {
			haltest.TestStation(t, func(t *testing.T) (hal.Station, haltest.Controls) { return open(t) })

			t.Run("enable and current limit reach the device", func(t *testing.T) {
				st, ctl := open(t)
				ctl.Plug()
				if err := st.SetContactor(ctx, true); err != nil {
					t.Fatal(err)
				}
				if got := r.do(t, "%s", tt.enable); got != tt.on {
					t.Fatalf("%s = %q while enabled, want %q", tt.enable, got, tt.on)
				}
				if err := st.SetMaxCurrent(ctx, 10); err != nil {
					t.Fatalf("SetMaxCurrent: %v", err)
				}
				limit := fmt.Sprintf("get %d hr %d 1", tt.unit, st.cfg.Map.MaxCurrent.Address)
				if got := r.do(t, "%s", limit); got != "10" {
					t.Fatalf("current limit reads %q after SetMaxCurrent(10)", got)
				}
				if err := st.SetMaxCurrent(ctx, 5); !errors.Is(err, ErrBadConfig) {
					t.Fatalf("SetMaxCurrent(5) = %v, want ErrBadConfig", err)
				}
				if err := st.Close(); err != nil {
					t.Fatal(err)
				}
				if got := r.do(t, "%s", tt.enable); got != "0" {
					t.Fatalf("%s = %q after Close, want 0", tt.enable, got)
				}
			})
		})
	}
}

// near compares register readings: float32 registers round.
func near(got, want float64) bool {
	return math.Abs(got-want) <= 1e-6*math.Max(1, math.Abs(want))
}
