package sim_test

import (
	"context"
	"fmt"
	"time"

	"github.com/sitelink/sitelink/hal/sim"
)

// A plugged-in car charges once the contactor closes; with TimeScale 60 a
// real minute meters an hour's energy.
func Example() {
	now := time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC)
	st := sim.New(sim.Config{
		Number:    "5",
		PowerKW:   7.4,
		TimeScale: 60,
		Now:       func() time.Time { return now },
	})
	fmt.Println("start:", st.Read().CP)
	st.Plug()
	fmt.Println("plugged:", st.Read().CP)
	if err := st.SetContactor(context.Background(), true); err != nil {
		fmt.Println(err)
	}
	now = now.Add(time.Minute)
	r := st.Read()
	fmt.Printf("charging: %s %.0f W %.0f Wh\n", r.CP, r.PowerW, r.EnergyWh)
	st.Fault("RCD tripped")
	r = st.Read()
	fmt.Printf("faulted: %s contactor=%v %q\n", r.CP, r.Contactor, r.Fault)
	// Output:
	// start: A
	// plugged: B
	// charging: C 7400 W 7400 Wh
	// faulted: F contactor=false "RCD tripped"
}
