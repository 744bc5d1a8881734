package billing

import (
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/sitelink/sitelink/daemon/config"
	"github.com/sitelink/sitelink/daemon/nayax"
	"github.com/sitelink/sitelink/store"
)

// TestDecide walks the settle-or-cancel rule: which call, which state,
// which amount, for energy around the minimum, stop reasons, a tariff
// fixed at the start, and sessions that cannot be billed.
func TestDecide(t *testing.T) {
	tariff := moneyTariff(2, 0.39, 0)
	startTariff := store.Tariff(moneyTariff(2, 1.00, 0.50))
	freeTariff := store.Tariff(moneyTariff(2, 0, 0))
	feeOnly := store.Tariff(moneyTariff(2, 0, 1))
	cases := []struct {
		name     string
		edit     func(*store.Session)
		minWh    float64
		kind     string
		call     string
		to       store.State
		amount   float64
		reason   string // ReasonCode of a cancel
		err      error
		whyMatch string
	}{
		{name: "energy above the minimum settles", edit: func(s *store.Session) { s.EnergyWh = 1500 }, minWh: 100,
			kind: KindSettlement, call: nayax.CallExternalSettlement, to: store.Settling, amount: 0.59, whyMatch: "1500.0 Wh delivered: settle 0.59 EUR"},
		{name: "exactly the minimum settles", edit: func(s *store.Session) { s.EnergyWh = 100 }, minWh: 100,
			kind: KindSettlement, call: nayax.CallExternalSettlement, to: store.Settling, amount: 0.04},
		{name: "capped at the authorized amount", edit: func(s *store.Session) { s.EnergyWh = 50_000 }, minWh: 100,
			kind: KindSettlement, call: nayax.CallExternalSettlement, to: store.Settling, amount: 5},
		{name: "the tariff the session started with", edit: func(s *store.Session) { s.EnergyWh = 1000; s.Tariff = &startTariff }, minWh: 100,
			kind: KindSettlement, call: nayax.CallExternalSettlement, to: store.Settling, amount: 1.50},
		{name: "remote start settles with Settlement", edit: func(s *store.Session) { s.EnergyWh = 1000; s.Origin = "remote" }, minWh: 100,
			kind: KindSettlement, call: nayax.CallSettlement, to: store.Settling, amount: 0.39},
		{name: "under the minimum cancels below-minimum", edit: func(s *store.Session) { s.EnergyWh = 99.9 }, minWh: 100,
			kind: KindCancel, call: nayax.CallExternalCancel, to: store.Cancelling, reason: "75"},
		{name: "no energy, plug timeout", edit: func(s *store.Session) { s.StopReason = StopPlugTimeout }, minWh: 100,
			kind: KindCancel, call: nayax.CallExternalCancel, to: store.Cancelling, reason: "03"},
		{name: "no energy, card stop", edit: func(s *store.Session) { s.StopReason = StopCard }, minWh: 0,
			kind: KindCancel, call: nayax.CallExternalCancel, to: store.Cancelling, reason: "01"},
		{name: "no energy, contactor failed", edit: func(s *store.Session) { s.StopReason = StopContactorFailed + ": timeout" }, minWh: 0,
			kind: KindCancel, call: nayax.CallExternalCancel, to: store.Cancelling, reason: "06"},
		{name: "remote start cancels with CancelTransaction", edit: func(s *store.Session) { s.Origin = "remote"; s.StopReason = StopUnplugged }, minWh: 0,
			kind: KindCancel, call: nayax.CallCancelTransaction, to: store.Cancelling, reason: "3"},
		{name: "a price that rounds to 0 is cancelled, never settled", edit: func(s *store.Session) { s.EnergyWh = 12 }, minWh: 10,
			kind: KindCancel, call: nayax.CallExternalCancel, to: store.Cancelling, reason: "75"},
		{name: "a free tariff is cancelled", edit: func(s *store.Session) { s.EnergyWh = 5000; s.Tariff = &freeTariff }, minWh: 10,
			kind: KindCancel, call: nayax.CallExternalCancel, to: store.Cancelling, reason: "75"},
		{name: "a free tariff with a session fee settles the fee", edit: func(s *store.Session) { s.EnergyWh = 5000; s.Tariff = &feeOnly }, minWh: 10,
			kind: KindSettlement, call: nayax.CallExternalSettlement, to: store.Settling, amount: 1},
		{name: "external without SiteId cannot be billed", edit: func(s *store.Session) { s.SiteID = ""; s.EnergyWh = 1000 }, minWh: 100, err: ErrNoSiteID},
		{name: "unknown origin cannot be billed", edit: func(s *store.Session) { s.Origin = "" }, minWh: 100, err: ErrUnknownOrigin},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, term := seedSession()
			tc.edit(&s)
			d, err := Decide(s, term, tariff, tc.minWh)
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Fatalf("err = %v, want %v", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if d.Kind != tc.kind || d.Call != tc.call || d.To != tc.to || d.Amount != tc.amount {
				t.Fatalf("decision %s %s → %s amount %v; want %s %s → %s amount %v", d.Kind, d.Call, d.To, d.Amount, tc.kind, tc.call, tc.to, tc.amount)
			}
			moneyBody(t, d.Call, d.Body) // the body is what Nayax accepts
			num := func(x float64) string { return strconv.FormatFloat(x, 'f', -1, 64) }
			if tc.kind == KindCancel {
				if got := moneyRaw(t, d.Body, "ReasonCode"); got != tc.reason && got != `"`+tc.reason+`"` {
					t.Errorf("ReasonCode %s, want %s", got, tc.reason)
				}
				if got := moneyRaw(t, d.Body, "CancelAmount"); got != num(s.AuthorizedAmount) {
					t.Errorf("CancelAmount %s, want the authorized %v", got, s.AuthorizedAmount)
				}
			} else if got := moneyRaw(t, d.Body, "Amount"); got != num(tc.amount) {
				t.Errorf("body Amount %s, want %v", got, tc.amount)
			}
			if tc.whyMatch != "" && d.Why != tc.whyMatch {
				t.Errorf("why %q, want %q", d.Why, tc.whyMatch)
			}
		})
	}
}

func TestKindOf(t *testing.T) {
	cases := []struct {
		energy float64
		reason string
		want   ReasonKind
	}{
		{0, StopPlugTimeout, ReasonNoVehicle},
		{0, StopNoDraw, ReasonNoVehicle},
		{0, StopUnplugged, ReasonUnplugged},
		{0, StopCard, ReasonUserStop},
		{0, StopLocal, ReasonUserStop},
		{0, StopFault + ": meter: timeout", ReasonStationFault},
		{0, StopContactorFailed + ": no feedback", ReasonStationFault},
		{0, StopContactorOpen, ReasonStationFault},
		{0, StopStartRefused + ": station busy", ReasonStationFault},
		{0, StopInterrupted, ReasonInterrupted},
		{0, StopShutdown, ReasonInterrupted},
		{0, "", ReasonInterrupted},
		{0.1, StopCard, ReasonBelowMinimum},
	}
	for _, tc := range cases {
		if got := KindOf(tc.energy, tc.reason); got != tc.want {
			t.Errorf("KindOf(%v, %q) = %q, want %q", tc.energy, tc.reason, got, tc.want)
		}
	}
	if !NayaxCancelled(StopNayaxCancel+" Void: vend failed") || NayaxCancelled(StopNayaxCancel) || NayaxCancelled("Nayaxx") {
		t.Error("NayaxCancelled")
	}
	// Each end that decides the money is told apart from the others.
	for _, r := range []string{StopAuthorizationDead + " (timeout callback)", StopCard, StopPlugTimeout} {
		if NayaxCancelled(r) {
			t.Errorf("NayaxCancelled(%q)", r)
		}
	}
	if !AuthorizationDead(StopAuthorizationDead+" (decline callback)") || AuthorizationDead(StopNayaxCancel+" Cancel") {
		t.Error("AuthorizationDead")
	}
}

func TestSpent(t *testing.T) {
	t0 := time.Unix(1_700_000_000, 0)
	cases := []struct {
		failures int
		after    time.Duration
		want     bool
	}{
		{0, 0, false},
		{SettleMaxAttempts - 1, SettleWindow - time.Second, false},
		{SettleMaxAttempts, 0, true},
		{0, SettleWindow, true},
	}
	for _, tc := range cases {
		r := &store.Request{Failures: tc.failures, FirstAt: t0}
		if got := Spent(r, t0.Add(tc.after)); got != tc.want {
			t.Errorf("Spent(%d failures, +%s) = %v, want %v", tc.failures, tc.after, got, tc.want)
		}
	}
}

// TestBudgetReached: the price of the energy so far against a percentage
// of the authorized amount, in exact decimals.
func TestBudgetReached(t *testing.T) {
	t39 := moneyTariff(2, 0.39, 0)
	withFee := moneyTariff(2, 0.39, 0.50)
	cases := []struct {
		name       string
		energyWh   float64
		authorized float64
		tariff     config.Tariff
		stopAt     float64
		want       bool
	}{
		{"well below", 1000, 1.00, t39, 98, false},
		{"just below 98 %", 2512, 1.00, t39, 98, false},          // 0.97968
		{"exactly 98 %", 2512.8205128205, 1.00, t39, 98, true},   // 0.98 after the mWh rounding
		{"just above 98 %", 2513, 1.00, t39, 98, true},           // 0.98007
		{"at 100 % the whole hold", 2564, 1.00, t39, 100, false}, // 0.99996
		{"past the hold", 2565, 1.00, t39, 100, true},
		{"the fee counts", 1260, 1.00, withFee, 98, true}, // 0.50 + 0.4914
		{"nothing authorized: no budget", 1e9, 0, t39, 98, false},
		{"a free tariff never reaches it", 1e9, 1, moneyTariff(2, 0, 0), 98, false},
	}
	for _, tc := range cases {
		if got := BudgetReached(tc.energyWh, tc.authorized, tc.tariff, tc.stopAt); got != tc.want {
			t.Errorf("%s: BudgetReached(%v Wh, %v, %v %%) = %v, want %v", tc.name, tc.energyWh, tc.authorized, tc.stopAt, got, tc.want)
		}
	}
}
