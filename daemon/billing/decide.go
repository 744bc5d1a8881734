package billing

import (
	"encoding/json"
	"fmt"

	"github.com/sitelink/sitelink/daemon/config"
	"github.com/sitelink/sitelink/store"
)

// Decision is what a session that stopped asks of Nayax.
type Decision struct {
	Kind   string          // KindSettlement or KindCancel
	Call   string          // the Nayax call
	Body   json.RawMessage // the request, with its "call" member
	Amount int64           // the amount settled, in minor units (0 for a cancel)
	To     store.State     // Settling or Cancelling
	Why    string          // for the session's history
}

// Decide is the settle-or-cancel rule: a session that delivered at least
// minEnergyWh is settled for Amount under tariff (the session's own if it
// has one: it keeps the price it started with; tariff is the configured
// one, made exact), anything less is
// cancelled for the authorized amount with the reason its stop gives. An
// amount that rounds to 0 is never settled (Nayax would capture nothing
// and keep the hold open): it is cancelled as zero-amount. The
// error is the request builder's: the session cannot be billed as it is
// and needs a human.
func Decide(s store.Session, term config.Terminal, tariff store.Tariff, minEnergyWh float64) (Decision, error) {
	if s.Tariff != nil {
		tariff = *s.Tariff
	}
	var (
		d   Decision
		err error
	)
	var amount int64
	settle := s.EnergyWh > 0 && s.EnergyWh >= minEnergyWh
	if settle {
		amount = Amount(s.EnergyWh, s.AuthorizedMinor, tariff)
		settle = amount > 0
	}
	if settle {
		d.Amount = amount
		d.Kind, d.To = KindSettlement, store.Settling
		d.Why = fmt.Sprintf("%.1f Wh delivered: settle %s %s", s.EnergyWh, store.FormatFixed(d.Amount, tariff.DecimalPlace), tariff.Currency)
		d.Call, d.Body, err = SettlementRequest(s, term, d.Amount, tariff.DecimalPlace)
	} else {
		k := KindOf(s.EnergyWh, s.StopReason)
		if s.EnergyWh > 0 && s.EnergyWh >= minEnergyWh {
			k = ReasonZeroAmount
		}
		code, text := Reason(k)
		d.Kind, d.To = KindCancel, store.Cancelling
		d.Why = fmt.Sprintf("no service provided (%s %s): release the hold", code, text)
		d.Call, d.Body, err = CancelRequest(s, term, k, tariff.DecimalPlace)
	}
	return d, err
}
