package edge

import (
	"encoding/json"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/sitelink/sitelink/daemon/config"
	"github.com/sitelink/sitelink/daemon/nayax"
	"github.com/sitelink/sitelink/daemon/wire"
	"github.com/sitelink/sitelink/hal"
	"github.com/sitelink/sitelink/store"
)

// lastSessionEvent returns the session record of the newest session event.
func (r *rig) lastSessionEvent() map[string]json.RawMessage {
	r.t.Helper()
	es, err := r.st.OutboxAfter(0, 1000)
	if err != nil {
		r.t.Fatal(err)
	}
	for i := len(es) - 1; i >= 0; i-- {
		if es[i].Type != wire.EventSession {
			continue
		}
		var ev struct{ Body wire.SessionEvent }
		var s map[string]json.RawMessage
		if err := json.Unmarshal(es[i].Payload, &ev); err != nil {
			r.t.Fatal(err)
		}
		if err := json.Unmarshal(ev.Body.Session, &s); err != nil {
			r.t.Fatal(err)
		}
		return s
	}
	r.t.Fatal("no session event")
	return nil
}

func tariffIn(currency string, dp int) func(*config.Edge) {
	return func(c *config.Edge) { c.Tariff.Currency, c.Tariff.DecimalPlace = currency, dp }
}

// TestAuthorizeAmountMinor: Nayax's Amount becomes minor units of the
// currency exactly, from the decimal Nayax wrote; an amount the currency
// cannot hold is Declined like any bad amount, and no session is made.
// The session event carries the amount both ways: the decimal under the
// name it always had, and the ledger's integer.
func TestAuthorizeAmountMinor(t *testing.T) {
	cases := []struct {
		name    string
		edit    func(*config.Edge)
		amount  any
		minor   int64  // 0: declined
		decimal string // authorized_amount in the session event
	}{
		{"whole euros", nil, json.Number("15"), 1500, "15"},
		{"cents", nil, json.Number("0.59"), 59, "0.59"},
		{"trailing zero", nil, json.Number("15.0"), 1500, "15"},
		{"quoted", nil, "12.50", 1250, "12.5"},
		{"exponent", nil, json.Number("1.5e1"), 1500, "15"},
		{"finer than a cent", nil, json.Number("0.595"), 0, ""},
		{"finer than a cent beyond a float's digits", nil, json.Number("0.5900000000000000001"), 0, ""},
		{"negative", nil, json.Number("-1"), 0, ""},
		{"zero", nil, json.Number("0.00"), 0, ""},
		{"too large", nil, json.Number("1e13"), 0, ""},
		{"yen", tariffIn("JPY", 0), json.Number("3000"), 3000, "3000"},
		{"half a yen", tariffIn("JPY", 0), json.Number("2999.5"), 0, ""},
		{"dinar thousandths", tariffIn("KWD", 3), json.Number("5.125"), 5125, "5.125"},
		{"dinar ten-thousandths", tariffIn("KWD", 3), json.Number("5.1255"), 0, ""},
		{"largest dinar amount", tariffIn("KWD", 3), json.Number("999999999999.999"), store.MaxScaled, "999999999999.999"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, tc.edit)
			v, code := verdict(r.command("authorize", authBody(t, "5", map[string]any{"Amount": tc.amount})))
			s, have := r.sessions()[seedSpark]
			if tc.minor == 0 {
				if v != "Declined" || code != float64(nayax.CodeValidation) || have {
					t.Fatalf("verdict %s %v, session %v; want Declined 26 and no session", v, code, have)
				}
				if r.sims["5"].Read().Contactor {
					t.Fatal("contactor closed")
				}
				return
			}
			if v != "Approved" || s.AuthorizedMinor != tc.minor || s.State != store.Authorized {
				t.Fatalf("verdict %s, session %s authorized %d; want Approved, %d minor units", v, s.State, s.AuthorizedMinor, tc.minor)
			}
			ev := r.lastSessionEvent()
			if string(ev["authorized_amount"]) != tc.decimal || string(ev["authorized_minor"]) != strconv.FormatInt(tc.minor, 10) {
				t.Errorf("session event authorized_amount %s authorized_minor %s; want %s and %d", ev["authorized_amount"], ev["authorized_minor"], tc.decimal, tc.minor)
			}
			var tariff map[string]json.RawMessage
			if err := json.Unmarshal(ev["tariff"], &tariff); err != nil {
				t.Fatal(err)
			}
			if string(tariff["price_per_kwh"]) != "0.39" || string(tariff["price_per_kwh_micro"]) != "390000" {
				t.Errorf("session event tariff %s", ev["tariff"])
			}
		})
	}
}

// TestSettleInMinorUnits: a session in a three-decimal currency with a
// session fee settles for the exact amount, sent to Nayax with three
// decimals; the ledger and the event keep it in minor units.
func TestSettleInMinorUnits(t *testing.T) {
	var wh atomic.Value
	wh.Store(0.0)
	r := newRigAt(t, t.TempDir(), func(c *config.Edge) {
		c.Tariff = config.Tariff{Currency: "KWD", DecimalPlace: 3, PricePerKWh: 0.337, SessionFee: 0.922}
	}, func(s hal.Station) hal.Station { return meterSet{s, &wh} })
	if v, _ := verdict(r.command("authorize", authBody(t, "5", map[string]any{"Amount": json.Number("5.125")}))); v != "Approved" {
		t.Fatal("authorize")
	}
	wh.Store(1234.0)
	r.e.timers(r.now)
	if v, _ := verdict(r.command("stop", stopBody(t, nil))); v != "Approved" {
		t.Fatal("stop")
	}
	s := r.session()
	// 1.234 kWh × 0.337 + 0.922 = 1.337858 → 1.338 KWD.
	if s.State != store.Settling || s.AmountMinor != 1338 || s.AuthorizedMinor != 5125 || s.Request == nil {
		t.Fatalf("session %s amount %d authorized %d request %v", s.State, s.AmountMinor, s.AuthorizedMinor, s.Request)
	}
	var body map[string]json.RawMessage
	if err := json.Unmarshal(s.Request.Body, &body); err != nil {
		t.Fatal(err)
	}
	if string(body["Amount"]) != "1.338" {
		t.Errorf("settlement Amount %s, want 1.338", body["Amount"])
	}
	if ev := r.lastSessionEvent(); string(ev["amount"]) != "1.338" || string(ev["amount_minor"]) != "1338" {
		t.Errorf("session event amount %s amount_minor %s", ev["amount"], ev["amount_minor"])
	}
}
