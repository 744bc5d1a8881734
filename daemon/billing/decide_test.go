package billing

import (
	"errors"
	"math"
	"testing"
	"time"

	"github.com/sitelink/sitelink/daemon/nayax"
	"github.com/sitelink/sitelink/store"
)

// TestDecide walks the settle-or-cancel rule: which call, which state,
// which amount, for energy around the minimum, stop reasons, a tariff
// fixed at the start, and sessions that cannot be billed.
func TestDecide(t *testing.T) {
	tariff := moneyTariff(2, "0.39", "0")
	startTariff := moneyTariff(2, "1.00", "0.50")
	freeTariff := moneyTariff(2, "0", "0")
	feeOnly := moneyTariff(2, "0", "1")
	kwd := moneyTariff(3, "0.337", "0.922")
	kwd.Currency = "KWD"
	jpy := moneyTariff(0, "45", "100")
	jpy.Currency = "JPY"
	cases := []struct {
		name     string
		edit     func(*store.Session)
		minWh    float64
		kind     string
		call     string
		to       store.State
		amount   int64  // minor units
		nayax    string // the Amount or CancelAmount Nayax gets
		reason   string // ReasonCode of a cancel
		err      error
		whyMatch string
	}{
		{name: "energy above the minimum settles", edit: func(s *store.Session) { s.EnergyWh = 1500 }, minWh: 100,
			kind: KindSettlement, call: nayax.CallExternalSettlement, to: store.Settling, amount: 59, nayax: "0.59", whyMatch: "1500.0 Wh delivered: settle 0.59 EUR"},
		{name: "exactly the minimum settles", edit: func(s *store.Session) { s.EnergyWh = 100 }, minWh: 100,
			kind: KindSettlement, call: nayax.CallExternalSettlement, to: store.Settling, amount: 4, nayax: "0.04"},
		{name: "capped at the authorized amount", edit: func(s *store.Session) { s.EnergyWh = 50_000 }, minWh: 100,
			kind: KindSettlement, call: nayax.CallExternalSettlement, to: store.Settling, amount: 500, nayax: "5"},
		{name: "the tariff the session started with", edit: func(s *store.Session) { s.EnergyWh = 1000; s.Tariff = &startTariff }, minWh: 100,
			kind: KindSettlement, call: nayax.CallExternalSettlement, to: store.Settling, amount: 150, nayax: "1.5", whyMatch: "1000.0 Wh delivered: settle 1.50 EUR"},
		{name: "remote start settles with Settlement", edit: func(s *store.Session) { s.EnergyWh = 1000; s.Origin = "remote" }, minWh: 100,
			kind: KindSettlement, call: nayax.CallSettlement, to: store.Settling, amount: 39, nayax: "0.39"},
		{name: "under the minimum cancels below-minimum", edit: func(s *store.Session) { s.EnergyWh = 99.9 }, minWh: 100,
			kind: KindCancel, call: nayax.CallExternalCancel, to: store.Cancelling, nayax: "5", reason: "75"},
		{name: "no energy, plug timeout", edit: func(s *store.Session) { s.StopReason = StopPlugTimeout }, minWh: 100,
			kind: KindCancel, call: nayax.CallExternalCancel, to: store.Cancelling, nayax: "5", reason: "03"},
		{name: "no energy, card stop", edit: func(s *store.Session) { s.StopReason = StopCard }, minWh: 0,
			kind: KindCancel, call: nayax.CallExternalCancel, to: store.Cancelling, nayax: "5", reason: "01"},
		{name: "no energy, contactor failed", edit: func(s *store.Session) { s.StopReason = StopContactorFailed + ": timeout" }, minWh: 0,
			kind: KindCancel, call: nayax.CallExternalCancel, to: store.Cancelling, nayax: "5", reason: "06"},
		{name: "remote start cancels with CancelTransaction", edit: func(s *store.Session) { s.Origin = "remote"; s.StopReason = StopUnplugged }, minWh: 0,
			kind: KindCancel, call: nayax.CallCancelTransaction, to: store.Cancelling, nayax: "5", reason: "3"},
		{name: "a price that rounds to 0 is cancelled, never settled", edit: func(s *store.Session) { s.EnergyWh = 12 }, minWh: 10,
			kind: KindCancel, call: nayax.CallExternalCancel, to: store.Cancelling, nayax: "5", reason: "75"},
		{name: "a free tariff is cancelled", edit: func(s *store.Session) { s.EnergyWh = 5000; s.Tariff = &freeTariff }, minWh: 10,
			kind: KindCancel, call: nayax.CallExternalCancel, to: store.Cancelling, nayax: "5", reason: "75"},
		{name: "a free tariff with a session fee settles the fee", edit: func(s *store.Session) { s.EnergyWh = 5000; s.Tariff = &feeOnly }, minWh: 10,
			kind: KindSettlement, call: nayax.CallExternalSettlement, to: store.Settling, amount: 100, nayax: "1"},
		{name: "three decimals and a fee (KWD)", edit: func(s *store.Session) { s.EnergyWh = 1234; s.AuthorizedMinor = 5125; s.Tariff = &kwd }, minWh: 10,
			kind: KindSettlement, call: nayax.CallExternalSettlement, to: store.Settling, amount: 1338, nayax: "1.338", whyMatch: "1234.0 Wh delivered: settle 1.338 KWD"},
		{name: "three decimals, cancelled for the whole hold", edit: func(s *store.Session) { s.AuthorizedMinor = 5125; s.Tariff = &kwd; s.StopReason = StopCard }, minWh: 10,
			kind: KindCancel, call: nayax.CallExternalCancel, to: store.Cancelling, nayax: "5.125", reason: "01"},
		{name: "no decimals (JPY), half up", edit: func(s *store.Session) { s.EnergyWh = 2500; s.AuthorizedMinor = 3000; s.Tariff = &jpy }, minWh: 10,
			kind: KindSettlement, call: nayax.CallExternalSettlement, to: store.Settling, amount: 213, nayax: "213", whyMatch: "2500.0 Wh delivered: settle 213 JPY"}, // 112.5 + 100
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
			if tc.kind == KindCancel {
				if got := moneyRaw(t, d.Body, "ReasonCode"); got != tc.reason && got != `"`+tc.reason+`"` {
					t.Errorf("ReasonCode %s, want %s", got, tc.reason)
				}
				if got := moneyRaw(t, d.Body, "CancelAmount"); got != tc.nayax {
					t.Errorf("CancelAmount %s, want the authorized %s", got, tc.nayax)
				}
			} else if got := moneyRaw(t, d.Body, "Amount"); got != tc.nayax {
				t.Errorf("body Amount %s, want %s", got, tc.nayax)
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
// of the authorized amount, exactly.
func TestBudgetReached(t *testing.T) {
	t39 := moneyTariff(2, "0.39", "0")
	withFee := moneyTariff(2, "0.39", "0.50")
	huge := moneyTariff(3, "999999999.999999", "999999999.999999")
	cases := []struct {
		name       string
		energyWh   float64
		authorized int64 // minor units
		tariff     store.Tariff
		stopAt     float64
		want       bool
	}{
		{"well below", 1000, 100, t39, 98, false},
		{"just below 98 %", 2512, 100, t39, 98, false},          // 0.97968
		{"exactly 98 %", 2512.8205128205, 100, t39, 98, true},   // 0.98 after the mWh rounding
		{"just above 98 %", 2513, 100, t39, 98, true},           // 0.98007
		{"at 100 % the whole hold", 2564, 100, t39, 100, false}, // 0.99996
		{"past the hold", 2565, 100, t39, 100, true},
		{"the fee counts", 1260, 100, withFee, 98, true},                                        // 0.50 + 0.4914
		{"a fractional percentage, below", 2525, 100, t39, 98.5, false},                         // 0.98475 < 0.985
		{"a fractional percentage, reached", 2526, 100, t39, 98.5, true},                        // 0.98514
		{"0 decimals, below", 2177, 100, moneyTariff(0, "45", "0"), 98, false},                  // 97.965 JPY
		{"0 decimals, reached", 2178, 100, moneyTariff(0, "45", "0"), 98, true},                 // 98.01 JPY
		{"3 decimals, exactly", 2500, 1000, moneyTariff(3, "0.39", "0"), 97.5, true},            // 0.975 of 1.000
		{"3 decimals, one mWh short", 2499.999, 1000, moneyTariff(3, "0.39", "0"), 97.5, false}, // 0.97499961
		{"largest amounts, no overflow", math.MaxFloat64, store.MaxScaled, huge, 100, true},
		{"largest hold, one Wh", 1, store.MaxScaled, huge, 100, false},
		{"nothing authorized: no budget", 1e9, 0, t39, 98, false},
		{"negative authorized: no budget", 1e9, -100, t39, 98, false},
		{"a free tariff never reaches it", 1e9, 1, moneyTariff(2, "0", "0"), 98, false},
	}
	for _, tc := range cases {
		if got := BudgetReached(tc.energyWh, tc.authorized, tc.tariff, tc.stopAt); got != tc.want {
			t.Errorf("%s: BudgetReached(%v Wh, %d, %v %%) = %v, want %v", tc.name, tc.energyWh, tc.authorized, tc.stopAt, got, tc.want)
		}
	}
}

// TestBudgetEnergyWh: where the budget stop falls, for showing the
// overshoot; consistent with BudgetReached on either side.
func TestBudgetEnergyWh(t *testing.T) {
	cases := []struct {
		name       string
		authorized int64
		tariff     store.Tariff
		stopAt     float64
		want       float64
	}{
		{"1.00 EUR at 0.39, 98 %", 100, moneyTariff(2, "0.39", "0"), 98, 2512.8205},
		{"fee first", 100, moneyTariff(2, "0.39", "0.50"), 98, 1230.7692},
		{"fee beyond the budget", 100, moneyTariff(2, "0.39", "1.50"), 98, 0},
		{"yen", 100, moneyTariff(0, "45", "0"), 98, 2177.7778},
		{"free energy", 100, moneyTariff(2, "0", "0.10"), 98, math.Inf(1)},
		{"no hold", 0, moneyTariff(2, "0.39", "0"), 98, math.Inf(1)},
	}
	for _, tc := range cases {
		got := BudgetEnergyWh(tc.authorized, tc.tariff, tc.stopAt)
		if math.IsInf(tc.want, 1) != math.IsInf(got, 1) || (!math.IsInf(got, 1) && math.Abs(got-tc.want) > 0.001) {
			t.Errorf("%s: BudgetEnergyWh = %v, want %v", tc.name, got, tc.want)
		}
		if got > 1 && !math.IsInf(got, 1) {
			if BudgetReached(got-1, tc.authorized, tc.tariff, tc.stopAt) || !BudgetReached(got+1, tc.authorized, tc.tariff, tc.stopAt) {
				t.Errorf("%s: BudgetReached disagrees around %v Wh", tc.name, got)
			}
		}
	}
}
