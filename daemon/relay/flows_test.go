package relay_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/sitelink/sitelink/daemon/billing"
	"github.com/sitelink/sitelink/daemon/config"
	"github.com/sitelink/sitelink/daemon/localapi"
	"github.com/sitelink/sitelink/daemon/nayax/seeds"
	"github.com/sitelink/sitelink/daemon/nayaxsim"
	"github.com/sitelink/sitelink/store"
)

// End-to-end money flows of issue 12, each through real mosquitto, a relay,
// a site controller and nayaxsim.

// edited returns seed body with fields replaced (nil deletes one).
func edited(t *testing.T, body []byte, fields map[string]any) []byte {
	t.Helper()
	var m map[string]any
	d := json.NewDecoder(bytesReader(body))
	d.UseNumber()
	if err := d.Decode(&m); err != nil {
		t.Fatal(err)
	}
	for k, v := range fields {
		if v == nil {
			delete(m, k)
			continue
		}
		m[k] = v
	}
	out, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// A 1.00 EUR hold at 50 kW: the budget stops the station before the price
// of its energy passes the hold, the reason shows the overshoot, and Nayax
// is asked for 1.00 at most.
func TestBudgetStopAt50kW(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	// Time scale 30: one 250 ms engine tick is 7.5 s of charging at
	// 50 kW, 104 Wh or 4.1 % of the hold: the overshoot fits in a 5 %
	// headroom (policy.budget_stop_at 95), and the test takes 6 s.
	site := e.startEdgeWith("site-budget", t.TempDir(), func(c *config.Edge) {
		c.Stations[0].Sim = &config.Sim{Vehicle: "present", PowerKW: 50, TimeScale: 30}
		c.Stations[0].MaxPowerKW = 50
		c.Policy.BudgetStopAt = 95
	})
	r := e.startRelay("relay-1", 4*time.Second)
	waitRoute(t, r.url)
	e.sim.SetRelay(r.url)
	first := e.tap("5", "bob", 1.00)
	s := sessionOf(t, site.api, first.Txn.SparkTransactionID, "settled", "needs-reconciliation")
	tariff, err := site.cfg.Tariff.Exact()
	if err != nil {
		t.Fatal(err)
	}
	cost := billing.Amount(s.EnergyWh, store.MaxScaled, tariff) // uncapped
	if s.State != "settled" || !strings.HasPrefix(s.StopReason, "budget reached (") || !strings.Contains(s.StopReason, "overshoot ") {
		t.Fatalf("ended %s %q", s.State, s.StopReason)
	}
	if cost > 100 || s.AmountMinor > 100 || s.AmountMinor < 95 {
		t.Fatalf("energy %.1f Wh costs %d cents, settled %d; want ≤ 100 and 95..100", s.EnergyWh, cost, s.AmountMinor)
	}
	reqs := e.sim.Requests("ExternalSettlement")
	if len(reqs) != 1 {
		t.Fatalf("%d ExternalSettlement requests", len(reqs))
	}
	if amt := body(t, reqs[0].Body)["Amount"].(json.Number); string(amt) != store.FormatDecimal(s.AmountMinor, 2) {
		t.Fatalf("ExternalSettlement Amount %v, session %d cents", amt, s.AmountMinor)
	}
	t.Logf("stopped: %s; %.1f Wh in the end, %d cents settled", s.StopReason, s.EnergyWh, s.AmountMinor)
}

// Nayax may write a verdict in any case and with spaces: "approved",
// "APPROVED" and " Approved " start a session like "Approved"; a
// transaction whose verdict is not approved starts nothing.
func TestVerdictSpellings(t *testing.T) {
	e := newEnv(t)
	site := e.startEdge("site-verdicts", t.TempDir())
	r := e.startRelay("relay-1", 4*time.Second)
	waitRoute(t, r.url)
	seed := seeds.Get("001_transactioncallback_request.json")
	cases := []struct {
		verdict string
		station string
		starts  bool
	}{
		{"approved", "5", true},
		{"APPROVED", "6", true},
		{"Declined", "5", false}, // acknowledged (nothing is held), no session
	}
	for i, c := range cases {
		spark := uuid.NewString()
		b := edited(t, withStation(t, seed, c.station), map[string]any{
			"SparkTransactionId": spark, "NayaxTransactionId": 3000000000 + i,
			"AuthStatus": map[string]any{"Verdict": c.verdict, "ErrorCode": 0, "ErrorDescription": "", "StatusMessage": ""},
		})
		code, answer := post(t, r.url, "/api/TransactionCallback", "application/json", b)
		v, _, desc := status(t, answer)
		if code != 200 {
			t.Fatalf("%q: HTTP %d %s", c.verdict, code, answer)
		}
		if !c.starts {
			ss, err := site.api.Sessions(10)
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range ss {
				if s.SparkTransactionID == spark {
					t.Fatalf("%q: a session was recorded: %+v", c.verdict, s)
				}
			}
			continue
		}
		if v != "Approved" {
			t.Fatalf("%q: %s %s", c.verdict, v, desc)
		}
		s := sessionOf(t, site.api, spark, "authorized", "charging")
		if s.Station != c.station || s.AuthorizedMinor != 1500 {
			t.Fatalf("%q: session %+v", c.verdict, s)
		}
	}
}

// A session that delivered energy whose price rounds to 0.00 (a few Wh at
// 0.39 EUR/kWh, above min_energy_wh) ends with a cancel, never a
// settlement of 0.00.
func TestZeroAmountCancelled(t *testing.T) {
	e := newEnv(t)
	// 3.6 kW at time scale 5: 5 Wh a second; 0.00 EUR below 12.8 Wh.
	site := e.startEdgeWith("site-zero", t.TempDir(), func(c *config.Edge) {
		c.Stations[0].Sim = &config.Sim{Vehicle: "present", PowerKW: 3.6, TimeScale: 5}
		c.Policy.MinEnergyWh = 1
	})
	r := e.startRelay("relay-1", 4*time.Second)
	waitRoute(t, r.url)
	e.sim.SetRelay(r.url)
	first := e.tap("5", "carol", 5)
	waitFor(t, 10*time.Second, "a few Wh", func() bool {
		sts, err := site.api.Stations()
		if err != nil {
			return false
		}
		for _, st := range sts {
			if st.Number == "5" && st.Session == first.Txn.SparkTransactionID {
				return sessionOf(t, site.api, first.Txn.SparkTransactionID, "charging").EnergyWh >= 1
			}
		}
		return false
	})
	if stop := e.tap("5", "carol", 0); stop.Kind != "stop" {
		t.Fatalf("second tap: %+v", stop)
	}
	s := sessionOf(t, site.api, first.Txn.SparkTransactionID, "cancelled", "settled", "needs-reconciliation")
	if s.State != "cancelled" || s.EnergyWh < 1 || s.EnergyWh >= 12.8 || s.AmountMinor != 0 {
		t.Fatalf("session %s, %.2f Wh, amount %d; want cancelled, 1..12.8 Wh, 0", s.State, s.EnergyWh, s.AmountMinor)
	}
	if n := len(e.sim.Requests("ExternalSettlement")); n != 0 {
		t.Fatalf("%d ExternalSettlement requests, want none", n)
	}
	reqs := e.sim.Requests("ExternalCancel")
	if len(reqs) != 1 {
		t.Fatalf("%d ExternalCancel requests", len(reqs))
	}
	if got := toString(body(t, reqs[0].Body)["ReasonText"]); !strings.Contains(got, "no charge") {
		t.Fatalf("cancel reason %q", got)
	}
}

// A TimeoutCallback or DeclineCallback for a session that is charging:
// Nayax says the authorization is dead; the station stops at once, the
// session keeps its energy and goes to reconciliation, nothing is sent
// to Nayax, and Nayax is answered Approved.
func TestLateTimeoutAndDecline(t *testing.T) {
	for _, call := range []string{"TimeoutCallback", "DeclineCallback"} {
		t.Run(call, func(t *testing.T) {
			e := newEnv(t)
			site := e.startEdge("site-late", t.TempDir())
			r := e.startRelay("relay-1", 4*time.Second)
			waitRoute(t, r.url)
			e.sim.SetRelay(r.url)
			first := e.tap("5", "dave", 10)
			spark := first.Txn.SparkTransactionID
			waitFor(t, 10*time.Second, "energy", func() bool {
				return sessionOf(t, site.api, spark, "charging").EnergyWh >= 20
			})
			var res nayaxsim.CallbackResult
			var err error
			if call == "TimeoutCallback" {
				res, err = e.sim.Timeout(context.Background(), spark)
			} else {
				res, err = e.sim.Decline(context.Background(), spark, 44)
			}
			if err != nil {
				t.Fatal(err)
			}
			if v, c, _ := status(t, res.Response); res.HTTPStatus != 200 || v != "Approved" {
				t.Fatalf("%s answered HTTP %d %s %v: %s", call, res.HTTPStatus, v, c, res.Response)
			}
			s := sessionOf(t, site.api, spark, "needs-reconciliation")
			if s.EnergyWh < 20 || !strings.Contains(s.StopReason, "authorization ended by Nayax") {
				t.Fatalf("session %+v", s)
			}
			if contactor(t, site.api, "5") {
				t.Fatal("contactor still closed")
			}
			time.Sleep(500 * time.Millisecond) // nothing may follow
			for _, c := range []string{"ExternalSettlement", "ExternalCancel"} {
				if n := len(e.sim.Requests(c)); n != 0 {
					t.Fatalf("%d %s requests after a dead authorization", n, c)
				}
			}
		})
	}
}

// Nayax's answer to a Settlement is the session's payment record:
// AuthCode, NayaxRRN, FiscalRrn, the settled Amount and the times.
func TestPaymentRecord(t *testing.T) {
	e := newEnv(t)
	site := e.startEdge("site-receipt", t.TempDir())
	r := e.startRelay("relay-1", 4*time.Second)
	waitRoute(t, r.url)
	e.sim.SetRelay(r.url)
	res, err := site.api.Start(localapi.StartRequest{Station: "5", Amount: 12})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "TriggerTransaction at Nayax", func() bool { return len(e.sim.Requests("TriggerTransaction")) == 1 })
	e.tap("5", "erin", 0)
	waitFor(t, 10*time.Second, "energy", func() bool {
		return sessionOf(t, site.api, res.SparkTransactionID, "charging").EnergyWh >= 20
	})
	e.tap("5", "erin", 0)
	s := sessionOf(t, site.api, res.SparkTransactionID, "settled")
	p := s.Payment
	if p == nil {
		t.Fatalf("no payment record: %+v", s)
	}
	if p.Call != "Settlement" || p.Verdict != "Approved" || p.AuthCode != "333333" || p.NayaxRRN != "111111" ||
		p.FiscalRrn == "" || p.SeTime == "" || p.MachineAuTime == "" || p.Amount != string(s.Amount) {
		t.Fatalf("payment record %+v (session amount %s)", *p, s.Amount)
	}
}

// A card presented at another terminal of the same site stops the session
// it paid for; another card there stops nothing.
func TestStopAtTheSitesOtherTerminal(t *testing.T) {
	const machine2, serial2 = 71234997, "0434334921100367"
	e := newEnv(t)
	site := e.startEdgeWith("site-two", t.TempDir(), func(c *config.Edge) {
		c.Terminals = append(c.Terminals, config.Terminal{MachineID: machine2, HwSerial: serial2, Flow: "pre-authorization", Stations: []string{"7"}})
		c.Stations = append(c.Stations, config.Station{Number: "7", Driver: "sim", Sim: &config.Sim{Vehicle: "absent", PowerKW: 11, TimeScale: 600}})
	})
	r := e.startRelay("relay-1", 4*time.Second)
	waitRoute(t, r.url)
	waitFor(t, 10*time.Second, "second terminal routed", func() bool {
		code, answer := post(t, r.url, "/api/StopCallback", "application/json", edited(t, seeds.Get("000_stopcallback_request.json"),
			map[string]any{"MachineId": machine2, "HwSerial": serial2, "SparkTransactionId": uuid.NewString()}))
		v, c, _ := status(t, answer)
		return code == 200 && v == "Declined" && c != 25 && c != 992 // the node answered: routed
	})
	e.sim.SetRelay(r.url)
	first := e.tap("5", "frank", 10)
	spark := first.Txn.SparkTransactionID
	waitFor(t, 10*time.Second, "energy", func() bool {
		return sessionOf(t, site.api, spark, "charging").EnergyWh >= 20
	})
	txn, _ := e.sim.Txn(first.Txn.NayaxTransactionID)
	stopAt := func(hash string) (string, float64) {
		b := edited(t, seeds.Get("000_stopcallback_request.json"), map[string]any{
			"MachineId": machine2, "HwSerial": serial2, "SparkTransactionId": spark,
			"NayaxTransactionId": txn.NayaxTransactionID, "MachineAuTime": txn.MachineAuTime,
			"CardHash": hash, "ServiceStationNumber": nil,
		})
		code, answer := post(t, r.url, "/api/StopCallback", "application/json", b)
		if code != 200 {
			t.Fatalf("StopCallback: HTTP %d %s", code, answer)
		}
		v, c, _ := status(t, answer)
		return v, c
	}
	if v, c := stopAt(strings.Repeat("ab", 32)); v != "Declined" {
		t.Fatalf("another card at the other terminal: %s %v", v, c)
	}
	if s := sessionOf(t, site.api, spark, "charging"); s.State != "charging" {
		t.Fatalf("session after another card: %s", s.State)
	}
	if v, c := stopAt(txn.CardHash); v != "Approved" {
		t.Fatalf("the paying card at the other terminal: %s %v", v, c)
	}
	s := sessionOf(t, site.api, spark, "settled")
	if s.AmountMinor <= 0 || contactor(t, site.api, "5") {
		t.Fatalf("session %+v", s)
	}
}
