// Money: what a finished session asks Nayax to charge or to release.
//
// # Settlement amount
//
// A session that delivered at least policy.min_energy_wh is settled for
//
//	min(authorized, session_fee + energy_kWh × price_per_kwh)
//
// in minor units of the currency (tariff.decimal_place, 0 to 3). Money is
// integers (store/money.go): amounts in minor units, prices and fees in
// millionths of the currency unit, so 0.39 €/kWh × 1500 Wh is exactly
// 0.585 € and settles as 59 cents. The tariff is rounded half-up once, at
// the end; the authorized amount needs no rounding (it is whole minor
// units, or it was refused), so the settlement never exceeds it. Energy
// is first rounded to whole milliwatt-hours, far below any meter's
// resolution, so that float noise of a meter subtraction
// (1499.9999999999998 Wh) cannot flip a rounding. The products are
// computed on big integers: nothing overflows, whatever the meter says,
// and the result is bounded by the authorized amount.
//
// # Reason table
//
// A session that provided no service is cancelled (CancelTransaction for
// a Remote Start, ExternalCancel for a transaction authorized on the
// terminal) with CancelAmount = the authorized amount and this reason.
// CancelTransaction carries the code as an integer (75), ExternalCancel as
// the two-digit string ("75"), as their schemas say. Nayax does not
// define the codes (its ExternalCancel reference recommends "75 - Service
// not provided" and shows "01" "User requested cancellation"); they are
// sitelink's audit trail, grouped by who ended the session: 01 the
// customer, 03 the vehicle, 06 the station, 75 anything else.
//
//	kind           code  text                               when
//	no-vehicle     03    Vehicle not connected              no vehicle drew power within policy.plug_timeout
//	unplugged      03    Vehicle unplugged before charging  the vehicle was unplugged before energy flowed
//	user-stop      01    User requested cancellation        the customer stopped (card tap, local stop) before energy flowed
//	station-fault  06    Station fault                      the station faulted or its contactor would not close
//	interrupted    75    Service not provided (restart)     the controller restarted (crash, power loss) before energy flowed
//	below-minimum  75    Service not provided               the session ended under policy.min_energy_wh
//	zero-amount    75    Service not provided (no charge)   the energy's price rounds to 0 (a free tariff, a few Wh)
//
// Any other kind gets 75 "Service not provided".

package billing

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/big"
	"strconv"
	"time"

	"github.com/sitelink/sitelink/daemon/config"
	"github.com/sitelink/sitelink/daemon/nayax"
	"github.com/sitelink/sitelink/daemon/wire"
	"github.com/sitelink/sitelink/store"
)

// Errors of the request builders. Each is wrapped with the call being
// built; none of them is worth retrying without a change to the session
// or the configuration.
var (
	// ErrNoSiteID: ExternalSettlement and ExternalCancel must echo the
	// SiteId of the authorization (Nayax answers "not found" without it),
	// and the session has none.
	ErrNoSiteID = errors.New("session has no SiteId")
	// ErrNoTerminal: the terminal has neither hw_serial nor machine_id, so
	// the request cannot name it.
	ErrNoTerminal = errors.New("terminal has neither hw_serial nor machine_id")
	// ErrUnknownOrigin: the session is not "remote", "device-start" or "external", so
	// the call (Settlement or ExternalSettlement…) cannot be chosen.
	ErrUnknownOrigin = errors.New("unknown session origin")
	// ErrUnknownFlow: the terminal's flow is neither pre-authorization nor
	// pre-selection, so CancellationType cannot be chosen.
	ErrUnknownFlow = errors.New("unknown terminal flow")
	// ErrBadAmount: an amount is negative, not a number, infinite, above
	// the authorized amount, or missing where the flow needs it.
	ErrBadAmount = errors.New("invalid amount")
	// ErrTriggerTimeout: TransactionTimeout must be 1 to 32767 seconds.
	ErrTriggerTimeout = errors.New("transaction timeout out of range")
)

// Amount is the money to settle for a session, in minor units:
// min(authorizedMinor, session_fee + energy_kWh × price_per_kwh) with
// t.DecimalPlace decimals (clamped to 0..3), the tariff rounded half-up.
// A negative, NaN or infinite energy counts as 0, as does a negative
// price, fee or authorized amount.
func Amount(energyWh float64, authorizedMinor int64, t store.Tariff) int64 {
	if authorizedMinor <= 0 {
		return 0
	}
	dp := clampPlaces(t.DecimalPlace)
	// price is in 10^-12 units; minor = round(price × 10^dp / 10^12).
	p := price(energyWh, t)
	p.Mul(p, pow10(dp))
	p.Add(p, halfPico)
	p.Quo(p, pico)
	if p.Cmp(big.NewInt(authorizedMinor)) >= 0 {
		return authorizedMinor
	}
	return p.Int64()
}

var (
	pico     = pow10(12)                                  // 10^-12 units: milliwatt-hours × millionths per kWh
	halfPico = new(big.Int).Mul(big.NewInt(5), pow10(11)) // half of pico, for rounding half-up
	micro    = pow10(store.PriceDecimals)
)

// price is session_fee + energy_kWh × price_per_kwh in 10^-12 units of
// the currency (mWh × micro-units per kWh), exactly, before any rounding
// or cap. Energy is taken to whole milliwatt-hours first: see the file
// comment.
func price(energyWh float64, t store.Tariff) *big.Int {
	mWh := ratRoundHalfUp(new(big.Rat).Mul(decimalOf(energyWh), big.NewRat(1000, 1)))
	p := mWh.Mul(mWh, big.NewInt(max(t.PricePerKWhMicro, 0)))
	return p.Add(p, new(big.Int).Mul(big.NewInt(max(t.SessionFeeMicro, 0)), micro))
}

// BudgetReached reports whether the price of energyWh under t has reached
// stopAt percent of the authorized amount: the engine stops the session
// then, so that it never runs past what the card holder authorized. The
// energy delivered after this check (one engine tick at the station's
// power, plus the contactor's opening) must fit in the remaining
// percentage; the settlement is capped at the authorized amount anyway
// (Amount). An authorized amount of 0 has no budget to check. The
// comparison is exact: integers, and the percentage as the decimal its
// config text spells.
func BudgetReached(energyWh float64, authorizedMinor int64, t store.Tariff, stopAt float64) bool {
	if authorizedMinor <= 0 {
		return false
	}
	// price × 100 × 10^dp ≥ authorized × stopAt × 10^12, both sides in
	// 10^-12 minor units × 100.
	lhs := price(energyWh, t)
	lhs.Mul(lhs, big.NewInt(100))
	lhs.Mul(lhs, pow10(clampPlaces(t.DecimalPlace)))
	rhs := new(big.Rat).SetInt(new(big.Int).Mul(big.NewInt(authorizedMinor), pico))
	rhs.Mul(rhs, decimalOf(stopAt))
	return new(big.Rat).SetInt(lhs).Cmp(rhs) >= 0
}

// BudgetEnergyWh is the energy at which BudgetReached turns true: what
// stopAt percent of the authorized amount buys after the session fee. It
// is for showing the overshoot (energy delivered past that point, at most
// one engine tick at the station's power), not for deciding: 0 when the
// fee alone reaches the budget, +Inf when energy is free or there is no
// budget.
func BudgetEnergyWh(authorizedMinor int64, t store.Tariff, stopAt float64) float64 {
	if authorizedMinor <= 0 || t.PricePerKWhMicro <= 0 {
		return math.Inf(1)
	}
	// budget in micro-units: authorized × 10^6 / 10^dp × stopAt / 100.
	budget := new(big.Rat).SetFrac(new(big.Int).Mul(big.NewInt(authorizedMinor), micro), pow10(clampPlaces(t.DecimalPlace)))
	budget.Mul(budget, decimalOf(stopAt))
	budget.Quo(budget, big.NewRat(100, 1))
	budget.Sub(budget, new(big.Rat).SetInt64(max(t.SessionFeeMicro, 0)))
	if budget.Sign() <= 0 {
		return 0
	}
	wh := budget.Mul(budget, big.NewRat(1000, t.PricePerKWhMicro))
	f, _ := wh.Float64()
	return f
}

// ParseAmount converts an amount written as a decimal (a Nayax Amount's
// text, a config value, an operator's input) to minor units at dp
// decimals, exactly. More decimals than the currency has, a negative
// amount, or one above store.MaxScaled is ErrBadAmount: nothing is ever
// rounded into an authorization.
func ParseAmount(text string, dp int) (int64, error) {
	if dp < 0 || dp > store.MaxDecimalPlace {
		return 0, fmt.Errorf("%w: decimal places %d", ErrBadAmount, dp)
	}
	v, err := store.ParseDecimal(text, dp, store.MaxScaled)
	if err != nil {
		return 0, fmt.Errorf("%w: %w", ErrBadAmount, err)
	}
	return v, nil
}

// nayaxAmount is the JSON number Nayax gets for minor units at dp
// decimals: the shortest decimal ("0.59", "15", "4.5"), byte for byte
// what the float amounts of earlier releases marshalled to.
func nayaxAmount(minor int64, dp int) (nayax.Amount, error) {
	if minor < 0 || minor > store.MaxScaled || dp < 0 || dp > store.MaxDecimalPlace {
		return nayax.Amount{}, fmt.Errorf("%w: %d minor units at %d decimals", ErrBadAmount, minor, dp)
	}
	return nayax.NewAmountDecimal(store.FormatDecimal(minor, dp))
}

func clampPlaces(dp int) int { return min(max(dp, 0), store.MaxDecimalPlace) }

// decimalOf returns x as the decimal its shortest text spells (what a
// config file or a meter driver wrote), or 0 for a negative, NaN or
// infinite x.
func decimalOf(x float64) *big.Rat {
	r := new(big.Rat)
	if !(x > 0) || math.IsInf(x, 1) {
		return r
	}
	if _, ok := r.SetString(strconv.FormatFloat(x, 'g', -1, 64)); !ok {
		r.SetFloat64(x) // unreachable: FormatFloat's output always parses
	}
	return r
}

// ratRoundHalfUp rounds a non-negative r to the nearest integer, halves up.
func ratRoundHalfUp(r *big.Rat) *big.Int {
	r = new(big.Rat).Add(r, big.NewRat(1, 2))
	return new(big.Int).Quo(r.Num(), r.Denom())
}

func pow10(n int) *big.Int {
	return new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(n)), nil)
}

// ReasonKind is why a session provided no service; Reason maps it to the
// ReasonCode and ReasonText of the cancel. The table is documented at the
// top of money.go and printed by ReasonTable.
type ReasonKind string

// The reason kinds, in ReasonTable order.
const (
	ReasonNoVehicle    ReasonKind = "no-vehicle"    // 03 Vehicle not connected: plug timeout
	ReasonUnplugged    ReasonKind = "unplugged"     // 03 Vehicle unplugged before charging
	ReasonUserStop     ReasonKind = "user-stop"     // 01 User requested cancellation: StopCallback or local stop before energy flowed
	ReasonStationFault ReasonKind = "station-fault" // 06 Station fault: fault, or the contactor would not close
	ReasonInterrupted  ReasonKind = "interrupted"   // 75 Service not provided (restart): controller restarted before energy flowed
	ReasonBelowMinimum ReasonKind = "below-minimum" // 75 Service not provided: energy under policy.min_energy_wh
	ReasonZeroAmount   ReasonKind = "zero-amount"   // 75 Service not provided (no charge): the price rounds to 0
)

// The fallback for a kind the table does not know, and the reason Nayax's
// reference recommends.
const (
	reasonDefaultCode = "75"
	reasonDefaultText = "Service not provided"
)

var reasonRows = []struct {
	Kind       ReasonKind
	Code, Text string
}{
	{ReasonNoVehicle, "03", "Vehicle not connected"},
	{ReasonUnplugged, "03", "Vehicle unplugged before charging"},
	{ReasonUserStop, "01", "User requested cancellation"},
	{ReasonStationFault, "06", "Station fault"},
	{ReasonInterrupted, "75", "Service not provided (restart)"},
	{ReasonBelowMinimum, reasonDefaultCode, reasonDefaultText},
	{ReasonZeroAmount, "75", "Service not provided (no charge)"},
}

// Reason returns the ReasonCode (two digits) and ReasonText of a cancel
// for kind k; an unknown kind gives "75", "Service not provided".
func Reason(k ReasonKind) (code, text string) {
	for _, r := range reasonRows {
		if r.Kind == k {
			return r.Code, r.Text
		}
	}
	return reasonDefaultCode, reasonDefaultText
}

// ReasonTable returns the whole reason table in a stable order (the
// order of the documentation), for docs and `sitelink` output. The
// caller may modify the returned slice.
func ReasonTable() []struct {
	Kind       ReasonKind
	Code, Text string
} {
	out := make([]struct {
		Kind       ReasonKind
		Code, Text string
	}, len(reasonRows))
	copy(out, reasonRows)
	return out
}

// TerminalRef picks how to name the terminal to Nayax: its hardware serial
// as configured (TerminalIdType 1) when there is one, else its machine id
// (TerminalIdType 2). It returns "", 0 when the terminal has neither.
func TerminalRef(t config.Terminal) (id string, typ int) {
	switch {
	case t.HwSerial != "":
		return t.HwSerial, nayax.TerminalHWSerial
	case t.MachineID > 0:
		return strconv.FormatInt(t.MachineID, 10), nayax.TerminalMachineID
	}
	return "", 0
}

// CancellationType is the CancellationType of a cancel for a terminal's
// flow: 1 (Cancel) for "pre-authorization", 2 (Void) for "pre-selection",
// 0 for anything else.
func CancellationType(flow string) int {
	switch flow {
	case config.FlowPreAuthorization:
		return nayax.CancellationPreAuth
	case config.FlowPreSelection:
		return nayax.CancellationPreSelection
	}
	return 0
}

// SettlementRequest builds the settlement of session s for amount (from
// Amount): Settlement for a Remote Start or a Device Start (origins
// "remote", "device-start"), ExternalSettlement for a transaction
// authorized on the terminal (origin "external"). The
// body is exactly what the relay sends to Nayax plus a top-level "call"
// member naming the call, which the relay strips. SiteId is echoed byte
// for byte as the session stored it and left out when it has none (which
// ExternalSettlement refuses: ErrNoSiteID); MachineAuTime likewise, for
// ExternalSettlement only. amountMinor, in minor units at dp decimals (the
// session's), must not exceed s.AuthorizedMinor.
func SettlementRequest(s store.Session, t config.Terminal, amountMinor int64, dp int) (call string, body json.RawMessage, err error) {
	switch s.Origin {
	case store.OriginRemote, store.OriginDeviceStart:
		call = nayax.CallSettlement
	case store.OriginExternal:
		call = nayax.CallExternalSettlement
	default:
		return "", nil, fmt.Errorf("build settlement: %w %q", ErrUnknownOrigin, s.Origin)
	}
	if amountMinor > s.AuthorizedMinor {
		return "", nil, fmt.Errorf("build %s: %w: %d minor units (authorized %d)", call, ErrBadAmount, amountMinor, s.AuthorizedMinor)
	}
	amount, err := nayaxAmount(amountMinor, dp)
	if err != nil {
		return "", nil, fmt.Errorf("build %s: %w", call, err)
	}
	ids, err := moneyIDsOf(call, s, t)
	if err != nil {
		return "", nil, err
	}
	var req any
	if call == nayax.CallSettlement {
		req = &nayax.SettlementRequest{
			NayaxTransactionId: ids.nayax,
			SparkTransactionId: ids.spark,
			SiteId:             ids.site,
			TerminalId:         ids.terminal,
			TerminalIdType:     ids.terminalType,
			Amount:             amount,
		}
	} else {
		req = &nayax.ExternalSettlementRequest{
			NayaxTransactionId: ids.nayax,
			SparkTransactionId: ids.spark,
			MachineAuTime:      ids.auTime,
			SiteId:             ids.site,
			TerminalId:         ids.terminal,
			TerminalIdType:     ids.terminalType,
			Amount:             amount,
		}
	}
	if body, err = callBody(call, s.Ticket, req); err != nil {
		return "", nil, err
	}
	return call, body, nil
}

// CancelRequest builds the cancel of session s, which provided no service
// for reason k: CancelTransaction for a Remote Start (ReasonCode as an
// integer), ExternalCancel for a transaction authorized on the terminal
// (ReasonCode as the two-digit string). CancelAmount is the authorized
// amount (minor units at dp decimals, the session's), CancellationType
// follows the terminal's flow. SiteId and
// MachineAuTime are echoed exactly as stored and left out when the
// session has none (which ExternalCancel refuses: ErrNoSiteID). The body
// carries a "call" member as SettlementRequest's does.
func CancelRequest(s store.Session, t config.Terminal, k ReasonKind, dp int) (call string, body json.RawMessage, err error) {
	switch s.Origin {
	case store.OriginRemote, store.OriginDeviceStart:
		call = nayax.CallCancelTransaction
	case store.OriginExternal:
		call = nayax.CallExternalCancel
	default:
		return "", nil, fmt.Errorf("build cancel: %w %q", ErrUnknownOrigin, s.Origin)
	}
	ct := CancellationType(t.Flow)
	if ct == 0 {
		return "", nil, fmt.Errorf("build %s: %w %q", call, ErrUnknownFlow, t.Flow)
	}
	cancelAmount, err := nayaxAmount(s.AuthorizedMinor, dp)
	if err != nil {
		return "", nil, fmt.Errorf("build %s: authorized: %w", call, err)
	}
	ids, err := moneyIDsOf(call, s, t)
	if err != nil {
		return "", nil, err
	}
	code, text := Reason(k)
	// The schemas disagree: CancelTransaction's ReasonCode is an int16
	// ("03" goes as 3), ExternalCancel's a string ("03").
	token := strconv.Quote(code)
	if call == nayax.CallCancelTransaction {
		n, err := strconv.ParseInt(code, 10, 16)
		if err != nil {
			return "", nil, fmt.Errorf("build %s: reason code %q: %w", call, code, err)
		}
		token = strconv.FormatInt(n, 10)
	}
	reasonCode, err := nayax.ParseLiteral(token)
	if err != nil {
		return "", nil, fmt.Errorf("build %s: reason code %q: %w", call, code, err)
	}
	// The two calls take the same fields (their schemas differ only in
	// ReasonCode's JSON type, which the Literal carries).
	c := nayax.CancelTransactionRequest{
		NayaxTransactionId: ids.nayax,
		SparkTransactionId: ids.spark,
		SiteId:             ids.site,
		MachineAuTime:      ids.auTime,
		TerminalId:         ids.terminal,
		TerminalIdType:     ids.terminalType,
		CancellationType:   nayax.NewInt64(int64(ct)),
		ReasonCode:         reasonCode,
		ReasonText:         nayax.NewText(text),
		CancelAmount:       cancelAmount,
	}
	var req any = &c
	if call != nayax.CallCancelTransaction {
		ext := nayax.ExternalCancelRequest(c)
		req = &ext
	}
	if body, err = callBody(call, s.Ticket, req); err != nil {
		return "", nil, err
	}
	return call, body, nil
}

// TriggerRequest builds the TriggerTransaction that wakes terminal t for
// the Remote Start sparkID: the terminal waits timeout (rounded up to
// whole seconds, 1 to 32767) for a card. amountMinor (minor units at dp
// decimals) is left out when 0, which only the pre-authorization flow
// allows. The body carries a "call" member
// as SettlementRequest's does.
func TriggerRequest(sparkID string, t config.Terminal, amountMinor int64, dp int, timeout time.Duration) (call string, body json.RawMessage, err error) {
	call = nayax.CallTriggerTransaction
	if timeout <= 0 || timeout > math.MaxInt16*time.Second {
		return "", nil, fmt.Errorf("build %s: %w: %s", call, ErrTriggerTimeout, timeout)
	}
	secs := int64((timeout + time.Second - 1) / time.Second)
	amount, err := nayaxAmount(amountMinor, dp)
	if err != nil || (amountMinor == 0 && t.Flow == config.FlowPreSelection) {
		return "", nil, fmt.Errorf("build %s: %w: %d minor units", call, ErrBadAmount, amountMinor)
	}
	id, typ := TerminalRef(t)
	if typ == 0 {
		return "", nil, fmt.Errorf("build %s: %w", call, ErrNoTerminal)
	}
	req := &nayax.TriggerTransactionRequest{
		SparkTransactionId: optText(sparkID),
		TerminalId:         nayax.NewText(id),
		TerminalIdType:     nayax.NewInt64(int64(typ)),
		TransactionTimeout: nayax.NewInt64(secs),
	}
	if amountMinor > 0 {
		req.Amount = amount
	}
	if body, err = callBody(call, nil, req); err != nil {
		return "", nil, err
	}
	return call, body, nil
}

// moneyIDs are the identifying fields a settlement or cancel echoes.
type moneyIDs struct {
	nayax        nayax.Int64
	spark        nayax.Text
	site         nayax.Literal
	auTime       nayax.Text
	terminal     nayax.Text
	terminalType nayax.Int64
}

func moneyIDsOf(call string, s store.Session, t config.Terminal) (moneyIDs, error) {
	site, err := nayax.ParseLiteral(s.SiteID)
	if err != nil {
		return moneyIDs{}, fmt.Errorf("build %s: stored SiteId: %w", call, err)
	}
	if !site.Valid() && (call == nayax.CallExternalSettlement || call == nayax.CallExternalCancel) {
		return moneyIDs{}, fmt.Errorf("build %s: %w", call, ErrNoSiteID)
	}
	id, typ := TerminalRef(t)
	if typ == 0 {
		return moneyIDs{}, fmt.Errorf("build %s: %w", call, ErrNoTerminal)
	}
	return moneyIDs{
		nayax:        nayax.NewInt64(s.NayaxTransactionID),
		spark:        optText(s.SparkTransactionID),
		site:         site,
		auTime:       optText(s.MachineAuTime),
		terminal:     nayax.NewText(id),
		terminalType: nayax.NewInt64(int64(typ)),
	}, nil
}

// callBody marshals req exactly (no HTML escaping inside strings, so a
// string SiteId is echoed byte for byte), checks it as Nayax would, and
// prepends the "call" member and, when the session has one, the relay's
// ticket (wire.RequestTicket), which the relay checks and strips.
func callBody(call string, ticket json.RawMessage, req any) (json.RawMessage, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(req); err != nil {
		return nil, fmt.Errorf("build %s: %w", call, err)
	}
	inner := bytes.TrimSpace(buf.Bytes())
	if err := nayax.ValidateOutbound(call, inner); err != nil {
		return nil, fmt.Errorf("build %s: %w", call, err)
	}
	out := make([]byte, 0, len(inner)+len(call)+12)
	out = append(out, '{')
	out = strconv.AppendQuote(out, wire.RequestCall)
	out = append(out, ':')
	out = strconv.AppendQuote(out, call) // the call names are plain ASCII
	if len(ticket) > 0 && json.Valid(ticket) {
		out = append(out, ',')
		out = strconv.AppendQuote(out, wire.RequestTicket)
		out = append(out, ':')
		out = append(out, ticket...)
	}
	if len(inner) > 2 {
		out = append(out, ',')
	}
	return append(out, inner[1:]...), nil
}

// optText is a Text that is absent when s is empty, so omitzero drops it.
func optText(s string) nayax.Text {
	if s == "" {
		return nayax.Text{}
	}
	return nayax.NewText(s)
}
