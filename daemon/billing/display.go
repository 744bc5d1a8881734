package billing

import (
	"strings"

	"github.com/sitelink/sitelink/daemon/config"
	"github.com/sitelink/sitelink/store"
)

// PosDisplay is the text a Device Start terminal shows for station before
// the card is presented (InfoQuery's PosDisplay): format (the tariff's
// pos_display, config.DefaultPosDisplay when empty, with the session fee
// added when there is one) with {station}, {price} (per kWh), {currency}
// and {fee} filled in from the exact tariff. Prices show at least the
// currency's decimal places and every further digit the price has
// (0.39, 0.395), never rounded: the consumer sees what is charged.
// Nayax separates fields with ";", so a ";" in a value would split it:
// station numbers and currencies have none (config validates them).
func PosDisplay(format, station string, t store.Tariff) string {
	if format == "" {
		format = config.DefaultPosDisplay
		if t.SessionFeeMicro > 0 {
			format += "Session fee:{fee} {currency};"
		}
	}
	return strings.NewReplacer(
		"{station}", station,
		"{price}", displayPrice(t.PricePerKWhMicro, t.DecimalPlace),
		"{currency}", t.Currency,
		"{fee}", displayPrice(t.SessionFeeMicro, t.DecimalPlace),
	).Replace(format)
}

// displayPrice writes millionths of a unit with at least dp decimals.
func displayPrice(micro int64, dp int) string {
	s := store.FormatDecimal(micro, store.PriceDecimals)
	whole, frac, _ := strings.Cut(s, ".")
	for len(frac) < dp {
		frac += "0"
	}
	if frac == "" {
		return whole
	}
	return whole + "." + frac
}
