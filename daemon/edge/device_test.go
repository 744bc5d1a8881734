package edge

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/sitelink/sitelink/daemon/config"
	"github.com/sitelink/sitelink/daemon/wire"
	"github.com/sitelink/sitelink/store"
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

// commandBy is rig.command with the command's deadline.
func (r *rig) commandBy(typ string, body any, deadline time.Time) map[string]any {
	r.t.Helper()
	r.n++
	raw, _ := json.Marshal(body)
	env, _ := json.Marshal(map[string]any{"id": fmt.Sprintf("cmd-%d", r.n), "type": typ, "deadline": deadline.UTC().Format(time.RFC3339Nano), "body": json.RawMessage(raw)})
	r.e.handle(inbound{msg: &fakeMessage{topic: r.e.topics.Command(typ), payload: env}})
	out := r.e.out.Drain()
	if len(out) != 1 {
		r.t.Fatalf("%s: %d replies queued, want 1", typ, len(out))
	}
	var reply struct{ Body map[string]any }
	if err := json.Unmarshal(out[0].payload, &reply); err != nil {
		r.t.Fatal(err)
	}
	return reply.Body
}

// notifyBody is a TransactionNotify as the relay forwards it.
func notifyBody(t *testing.T, spark string, nayaxID int64, station string) map[string]any {
	return authBody(t, station, map[string]any{"SparkTransactionId": spark, "NayaxTransactionId": nayaxID, wire.AuthorizeFlow: wire.FlowDeviceStart, "Amount": 25})
}

func statusOf(m map[string]any) string {
	st, _ := m["Status"].(map[string]any)
	v, _ := st["Verdict"].(string)
	return v
}

// TestDeviceStartTiming: a TransactionNotify or StopNotify whose relay
// deadline leaves no time to switch the contactor is refused (the hold
// cancelled, nothing stopped); a refused TransactionNotify sent again is
// Declined again; one transaction holds one station; a controller that
// restarted between InfoQuery and TransactionNotify serves it if free.
func TestDeviceStartTiming(t *testing.T) {
	device := func(c *config.Edge) {
		c.Terminals[0].Start, c.Terminals[0].Stop = config.StartDevice, config.StopNotify
	}
	const sparkA, sparkB = "7d1f3a52-9a0b-4a7e-9a53-3f1c2b4d5e0a", "7d1f3a52-9a0b-4a7e-9a53-3f1c2b4d5e0b"
	info := func(r *rig, spark, station string) map[string]any {
		return r.command("info", map[string]any{"MachineId": 71234996, "SparkTransactionId": spark, "ServiceStationNumber": station})
	}

	t.Run("too close to the deadline: refused and released", func(t *testing.T) {
		r := newRig(t, device)
		info(r, sparkA, "5")
		got := r.commandBy("authorize", notifyBody(t, sparkA, 901, "5"), time.Now().Add(r.e.contactorTimeout()/2))
		if statusOf(got) != "Declined" || r.sims["5"].Read().Contactor {
			t.Fatalf("answer %v, contactor %v", got, r.sims["5"].Read().Contactor)
		}
		s := r.sessions()[sparkA]
		if s.State != store.Cancelling || s.Request == nil {
			t.Fatalf("session %s request %+v: want the hold released", s.State, s.Request)
		}
		// Nayax sends it again: Declined again, never "service may start".
		if again := r.command("authorize", notifyBody(t, sparkA, 901, "5")); statusOf(again) != "Declined" {
			t.Fatalf("repeat answered %v", again)
		}
	})
	t.Run("time enough: served", func(t *testing.T) {
		r := newRig(t, device)
		info(r, sparkA, "5")
		got := r.commandBy("authorize", notifyBody(t, sparkA, 902, "5"), time.Now().Add(r.e.contactorTimeout()+2*time.Second))
		if statusOf(got) != "Approved" || !r.sims["5"].Read().Contactor {
			t.Fatalf("answer %v", got)
		}
		// A StopNotify the relay gave up on stops nothing.
		stop := map[string]any{"MachineId": 71234996, "CardHash": "7f2082ba5dbccf706b6987e75b62083f65b5695bc2d8c827c3e46769d007a9e6"}
		if got := r.commandBy("stop-notify", stop, time.Now().Add(-time.Second)); statusOf(got) != "Declined" || !r.sims["5"].Read().Contactor {
			t.Fatalf("expired StopNotify: %v, contactor %v", got, r.sims["5"].Read().Contactor)
		}
		if got := r.commandBy("stop-notify", stop, time.Now().Add(r.e.contactorTimeout()/2)); statusOf(got) != "Declined" || !r.sims["5"].Read().Contactor {
			t.Fatalf("StopNotify too close to its deadline: %v", got)
		}
		if got := r.commandBy("stop-notify", stop, time.Now().Add(r.e.contactorTimeout()+2*time.Second)); statusOf(got) != "Approved" || r.sims["5"].Read().Contactor {
			t.Fatalf("StopNotify in time: %v", got)
		}
	})
	t.Run("one station per transaction", func(t *testing.T) {
		r := newRig(t, device)
		info(r, sparkA, "5")
		info(r, sparkA, "6") // the consumer changed their mind
		if got := info(r, sparkB, "5"); got["ServiceStationAvailability"] != 1.0 {
			t.Fatalf("station 5 still held by the transaction that moved to 6: %v", got)
		}
		// A TransactionNotify naming another station than its query
		// ends the query's reservation too.
		if got := r.command("authorize", notifyBody(t, sparkA, 903, "6")); statusOf(got) != "Approved" {
			t.Fatalf("authorize on 6: %v", got)
		}
		if _, held := r.e.reserved["6"]; held {
			t.Fatal("reservation of 6 kept after its TransactionNotify")
		}
	})
	t.Run("restart between InfoQuery and TransactionNotify", func(t *testing.T) {
		dir := t.TempDir()
		r := newRigAt(t, dir, device, nil)
		info(r, sparkA, "5")
		_ = r.st.Close()
		r = newRigAt(t, dir, device, nil) // the reservation was in memory
		if got := r.command("authorize", notifyBody(t, sparkA, 904, "5")); statusOf(got) != "Approved" {
			t.Fatalf("TransactionNotify after a restart: %v", got)
		}
	})
}
