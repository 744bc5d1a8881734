package relay_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/sitelink/sitelink/daemon/billing"
	"github.com/sitelink/sitelink/daemon/config"
	"github.com/sitelink/sitelink/daemon/localapi"
	"github.com/sitelink/sitelink/daemon/nayaxsim"
	"github.com/sitelink/sitelink/store"
)

var term = nayaxsim.Terminal{MachineID: machine, HwSerial: serial}

func (e *env) tap(station, card string, amount float64) nayaxsim.TapResult {
	e.t.Helper()
	res, err := e.sim.Tap(context.Background(), term, station, card, amount)
	if err != nil {
		e.t.Fatalf("tap %s on %s: %v", card, station, err)
	}
	return res
}

func sessionOf(t *testing.T, api *localapi.Client, spark string, states ...string) localapi.Session {
	t.Helper()
	var got localapi.Session
	waitFor(t, 15*time.Second, spark+" in "+states[0], func() bool {
		ss, err := api.Sessions(50)
		if err != nil {
			return false
		}
		for _, s := range ss {
			if s.SparkTransactionID == spark {
				got = s
				for _, st := range states {
					if s.State == st {
						return true
					}
				}
			}
		}
		return false
	})
	return got
}

func body(t *testing.T, raw json.RawMessage) map[string]any {
	t.Helper()
	var m map[string]any
	d := json.NewDecoder(bytesReader(raw))
	d.UseNumber()
	if err := d.Decode(&m); err != nil {
		t.Fatal(err)
	}
	return m
}

// A session that delivered energy is settled for min(authorized,
// tariff(energy)), rounded to the currency's decimals; a big tariff hits
// the cap.
func TestSettledSession(t *testing.T) {
	for _, c := range []struct {
		name  string
		price float64
	}{{"tariff", 0.39}, {"cap", 500}} { // cap: 500 EUR/kWh reaches the 20 EUR hold in 40 Wh
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t)
			site := e.startEdgeWith("site-settle", t.TempDir(), func(cfg *config.Edge) { cfg.Tariff.PricePerKWh = c.price })
			r := e.startRelay("relay-1", 4*time.Second)
			waitRoute(t, r.url)
			e.sim.SetRelay(r.url)
			first := e.tap("5", "alice", 20)
			if c.name == "cap" {
				// The budget stops it before the price passes the hold
				// (policy.budget_stop_at), without a second tap.
				s := sessionOf(t, site.api, first.Txn.SparkTransactionID, "settled")
				if !strings.HasPrefix(s.StopReason, "budget reached") || s.AmountMinor > 2000 || s.AmountMinor < 1960 {
					t.Fatalf("ended %q, settled %v for %.1f Wh; want budget reached, 19.60..20", s.StopReason, s.Amount, s.EnergyWh)
				}
			} else {
				sessionOf(t, site.api, first.Txn.SparkTransactionID, "charging")
				waitFor(t, 10*time.Second, "energy above the minimum", func() bool {
					s := sessionOf(t, site.api, first.Txn.SparkTransactionID, "charging")
					return s.EnergyWh >= 20
				})
				if stop := e.tap("5", "alice", 0); stop.Kind != "stop" {
					t.Fatalf("second tap: %+v", stop)
				}
			}
			s := sessionOf(t, site.api, first.Txn.SparkTransactionID, "settled")
			tariff, err := site.cfg.Tariff.Exact()
			if err != nil {
				t.Fatal(err)
			}
			want := billing.Amount(s.EnergyWh, 2000, tariff)
			if s.AmountMinor != want || s.AmountMinor > 2000 || s.Amount != localapi.Decimal(store.FormatDecimal(want, 2)) {
				t.Fatalf("settled %v (%d) for %.1f Wh, want %d cents", s.Amount, s.AmountMinor, s.EnergyWh, want)
			}
			reqs := e.sim.Requests("ExternalSettlement")
			if len(reqs) != 1 {
				t.Fatalf("%d ExternalSettlement requests", len(reqs))
			}
			b := body(t, reqs[0].Body)
			if amt := b["Amount"].(json.Number); string(amt) != store.FormatDecimal(want, 2) {
				t.Fatalf("ExternalSettlement Amount %v, want %d cents", amt, want)
			}
			if got, _ := e.sim.Txn(first.Txn.NayaxTransactionID); got.State != "settled" || got.Settles != 1 {
				t.Fatalf("nayaxsim txn %+v", got)
			}
		})
	}
}

// No vehicle within plug_timeout: exactly one ExternalCancel, every field
// right, CancellationType from the terminal's flow.
func TestNoVehicleCancel(t *testing.T) {
	for _, c := range []struct {
		flow string
		typ  string
	}{{"pre-authorization", "1"}, {"pre-selection", "2"}} {
		t.Run(c.flow, func(t *testing.T) {
			e := newEnv(t)
			site := e.startEdgeWith("site-novehicle", t.TempDir(), func(cfg *config.Edge) {
				cfg.Policy.PlugTimeout = config.Duration(500 * time.Millisecond)
				cfg.Terminals[0].Flow = c.flow
			})
			r := e.startRelay("relay-1", 4*time.Second)
			waitRoute(t, r.url)
			e.sim.SetRelay(r.url)
			tap := e.tap("6", "dave", 30)
			s := sessionOf(t, site.api, tap.Txn.SparkTransactionID, "cancelled")
			if s.StopReason != "no vehicle within plug timeout" || s.LastAnswer == nil || s.LastAnswer.Outcome != "approved" {
				t.Fatalf("session %+v", s)
			}
			reqs := e.sim.Requests("ExternalCancel")
			if len(reqs) != 1 {
				t.Fatalf("%d ExternalCancel requests, want exactly one", len(reqs))
			}
			got := body(t, reqs[0].Body)
			tx := tap.Txn
			want := map[string]string{
				"NayaxTransactionId": jsonNum(tx.NayaxTransactionID), "SparkTransactionId": tx.SparkTransactionID,
				"SiteId": "2", "MachineAuTime": tx.MachineAuTime, "TerminalId": serial, "TerminalIdType": "1",
				"CancellationType": c.typ, "ReasonCode": "03", "ReasonText": "Vehicle not connected", "CancelAmount": "30",
			}
			for k, v := range want {
				if s := toString(got[k]); s != v {
					t.Errorf("ExternalCancel %s = %q, want %q (body %s)", k, s, v, reqs[0].Body)
				}
			}
			if n, _ := e.sim.Txn(tx.NayaxTransactionID); n.Cancels != 1 || n.State != "cancelled" {
				t.Fatalf("nayaxsim txn %+v", n)
			}
		})
	}
}

// Remote Start: start → StartAuthentication + TriggerTransaction → the
// card tapped → TransactionCallback matched to the requested session →
// charging → stop → Settlement (not ExternalSettlement).
func TestRemoteStart(t *testing.T) {
	e := newEnv(t)
	site := e.startEdge("site-remote", t.TempDir())
	r := e.startRelay("relay-1", 4*time.Second)
	waitRoute(t, r.url)
	e.sim.SetRelay(r.url)
	res, err := site.api.Start(localapi.StartRequest{Station: "5", Amount: 12})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "TriggerTransaction at Nayax", func() bool { return len(e.sim.Requests("TriggerTransaction")) == 1 })
	s := sessionOf(t, site.api, res.SparkTransactionID, "requested")
	if s.Request == nil || s.Request.Kind != "start" {
		t.Fatalf("requested session %+v", s)
	}
	tap := e.tap("5", "erin", 0)
	if !tap.Txn.Remote || tap.Txn.SparkTransactionID != res.SparkTransactionID {
		t.Fatalf("tap did not answer the trigger: %+v", tap.Txn)
	}
	sessionOf(t, site.api, res.SparkTransactionID, "charging")
	waitFor(t, 10*time.Second, "energy", func() bool {
		return sessionOf(t, site.api, res.SparkTransactionID, "charging").EnergyWh >= 20
	})
	e.tap("5", "erin", 0)
	s = sessionOf(t, site.api, res.SparkTransactionID, "settled")
	if n := len(e.sim.Requests("Settlement")); n != 1 || s.AmountMinor <= 0 || s.AmountMinor > 1200 || s.AuthorizedMinor != 1200 {
		t.Fatalf("%d Settlement requests, session %+v", n, s)
	}
	// Nobody answers a second start: the session closes after the trigger
	// timeout and frees the station.
	_ = e
}

// Nayax failing: no answer → retried with backoff until it answers; 51 →
// recorded for reconciliation; 50 on a settlement → retried, then
// reconciliation after the budget.
func TestMoneyRetries(t *testing.T) {
	e := newEnv(t)
	site := e.startEdgeWith("site-retry", t.TempDir(), func(cfg *config.Edge) {
		cfg.Policy.PlugTimeout = config.Duration(300 * time.Millisecond)
	})
	r := e.startRelay("relay-1", 4*time.Second)
	waitRoute(t, r.url)
	e.sim.SetRelay(r.url)

	// Nayax down for a while.
	e.sim.Fail("ExternalCancel", nayaxsim.Failure{Status: 503})
	tap := e.tap("6", "frank", 10)
	waitFor(t, 15*time.Second, "several attempts", func() bool {
		s := sessionOf(t, site.api, tap.Txn.SparkTransactionID, "cancelling")
		return s.Request != nil && s.Request.Attempts >= 2 && s.LastAnswer != nil && s.LastAnswer.Outcome == "error"
	})
	e.sim.ClearFailures()
	sessionOf(t, site.api, tap.Txn.SparkTransactionID, "cancelled")

	// 51: recorded, visible, not retried.
	e.sim.Fail("ExternalCancel", nayaxsim.Failure{Code: 51})
	tap = e.tap("6", "gina", 10)
	s := sessionOf(t, site.api, tap.Txn.SparkTransactionID, "needs-reconciliation")
	if s.LastAnswer == nil || s.LastAnswer.Code != 51 {
		t.Fatalf("after 51: %+v", s)
	}
	e.sim.ClearFailures()

	// 50 on a settlement: retried up to the budget, then reconciliation.
	e.sim.Fail("ExternalSettlement", nayaxsim.Failure{Code: 50})
	tap = e.tap("5", "hank", 20)
	waitFor(t, 10*time.Second, "energy", func() bool {
		return sessionOf(t, site.api, tap.Txn.SparkTransactionID, "charging").EnergyWh >= 20
	})
	e.tap("5", "hank", 0)
	s = sessionOf(t, site.api, tap.Txn.SparkTransactionID, "needs-reconciliation")
	if n := len(e.sim.Requests("ExternalSettlement")); n != 5 {
		t.Fatalf("%d ExternalSettlement attempts, want 5", n)
	}
	if s.LastAnswer == nil || s.LastAnswer.Code != 50 {
		t.Fatalf("after 50s: %+v", s)
	}
}

// The broker is down when the decision is made: the cancel is delivered
// after it returns.
func TestCancelDecidedOffline(t *testing.T) {
	e := newEnv(t)
	site := e.startEdgeWith("site-offline", t.TempDir(), func(cfg *config.Edge) {
		cfg.Policy.PlugTimeout = config.Duration(time.Second)
	})
	r := e.startRelay("relay-1", 4*time.Second)
	waitRoute(t, r.url)
	e.sim.SetRelay(r.url)
	tap := e.tap("6", "ivy", 10)
	sessionOf(t, site.api, tap.Txn.SparkTransactionID, "authorized")
	e.broker.Stop()
	s := sessionOf(t, site.api, tap.Txn.SparkTransactionID, "cancelling")
	if s.Request == nil || s.Request.Kind != "cancel" {
		t.Fatalf("decided offline: %+v", s)
	}
	e.broker.Restart()
	sessionOf(t, site.api, tap.Txn.SparkTransactionID, "cancelled")
	if n, _ := e.sim.Txn(tap.Txn.NayaxTransactionID); n.State != "cancelled" {
		t.Fatalf("nayaxsim txn %+v", n)
	}
}

// A long outage neither piles up copies of a request nor spends its
// budget: one event waits in the outbox, and Nayax gets it once.
func TestLongOutageOneRequest(t *testing.T) {
	e := newEnv(t)
	site := e.startEdgeWith("site-long", t.TempDir(), func(cfg *config.Edge) {
		cfg.Policy.PlugTimeout = config.Duration(500 * time.Millisecond)
		cfg.Policy.ResultTimeout = config.Duration(200 * time.Millisecond)
	})
	r := e.startRelay("relay-1", 4*time.Second)
	waitRoute(t, r.url)
	e.sim.SetRelay(r.url)
	tap := e.tap("6", "joe", 10)
	sessionOf(t, site.api, tap.Txn.SparkTransactionID, "authorized")
	e.broker.Stop()
	sessionOf(t, site.api, tap.Txn.SparkTransactionID, "cancelling")
	time.Sleep(1500 * time.Millisecond) // seven result timeouts pass offline
	out, err := site.api.Outbox(100)
	if err != nil {
		t.Fatal(err)
	}
	queued := 0
	for _, o := range out {
		if o.Type == "cancel-request" && o.Status == "queued" {
			queued++
		}
	}
	if queued != 1 {
		t.Fatalf("%d cancel-request events queued during the outage, want 1: %+v", queued, out)
	}
	e.broker.Restart()
	sessionOf(t, site.api, tap.Txn.SparkTransactionID, "cancelled")
	if n, _ := e.sim.Txn(tap.Txn.NayaxTransactionID); n.Cancels != 1 {
		t.Fatalf("Nayax saw %d cancels", n.Cancels)
	}
}
