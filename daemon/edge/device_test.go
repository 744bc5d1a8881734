package edge

import (
	"testing"
	"time"

	"github.com/sitelink/sitelink/daemon/config"
)

// TestInfoAvailability: what InfoQuery answers for a station, case by
// case, and the reservation a free station gets.
func TestInfoAvailability(t *testing.T) {
	const seedSparkB = "7d1f3a52-9a0b-4a7e-9a53-3f1c2b4d5e6b"
	device := func(c *config.Edge) {
		c.Terminals[0].Start, c.Terminals[0].Stop, c.Terminals[0].PreauthAmount = config.StartDevice, config.StopNotify, 25
		c.Tariff.SessionFee = 0.5
	}
	query := func(r *rig, spark, station string, machine int64) map[string]any {
		return r.command("info", map[string]any{"MachineId": machine, "HwSerial": "", "SparkTransactionId": spark, "ServiceStationNumber": station})
	}
	for _, tc := range []struct {
		name    string
		edit    func(*config.Edge)
		setup   func(r *rig)
		machine int64
		station string
		spark   string
		want    float64
		verdict string
	}{
		{name: "free", station: "5", want: 1, verdict: "Approved"},
		{name: "free, asked again by the same transaction", station: "5", setup: func(r *rig) { query(r, seedSpark, "5", 71234996) }, want: 1, verdict: "Approved"},
		{name: "reserved for another transaction", station: "5", spark: seedSparkB, setup: func(r *rig) { query(r, seedSpark, "5", 71234996) }, want: 2, verdict: "Declined"},
		{name: "the other station stays free", station: "6", spark: seedSparkB, setup: func(r *rig) { query(r, seedSpark, "5", 71234996) }, want: 1, verdict: "Approved"},
		{name: "in session", station: "5", spark: seedSparkB, setup: func(r *rig) { r.authorized() }, want: 2, verdict: "Declined"},
		{name: "faulted", station: "5", setup: func(r *rig) { r.sims["5"].Fault("overcurrent") }, want: 3, verdict: "Declined"},
		{name: "unknown station", station: "9", want: 3, verdict: "Declined"},
		{name: "unknown machine", station: "5", machine: 1, want: 3, verdict: "Declined"},
		{name: "not a Device Start terminal", station: "5", edit: func(c *config.Edge) {}, want: 3, verdict: "Declined"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			edit := device
			if tc.edit != nil {
				edit = tc.edit
			}
			r := newRig(t, edit)
			if tc.setup != nil {
				tc.setup(r)
			}
			spark := tc.spark
			if spark == "" {
				spark = seedSpark
			}
			machine := tc.machine
			if machine == 0 {
				machine = 71234996
			}
			got := query(r, spark, tc.station, machine)
			st, _ := got["Status"].(map[string]any)
			if got["ServiceStationAvailability"] != tc.want || st["Verdict"] != tc.verdict {
				t.Fatalf("answer %v, want availability %v %s", got, tc.want, tc.verdict)
			}
			if tc.want == 1 {
				if got["Amount"] != "25.00" || got["PosDisplay"] != ";Charging Station:"+tc.station+";Price:0.39 EUR/kWh;Session fee:0.50 EUR;" {
					t.Fatalf("answer %v", got)
				}
				if res := r.e.reserved[tc.station]; res.spark != spark || time.Until(res.until) < 80*time.Second {
					t.Fatalf("reservation %+v", res)
				}
			}
		})
	}
}
