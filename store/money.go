package store

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Money in the ledger is integers, never floats (DESIGN.md §8):
//
//   - Amounts (Session.AuthorizedMinor, Session.AmountMinor) are minor
//     units of the currency: 0.59 EUR is 59 with the session's
//     Tariff.DecimalPlace 2, 5.125 KWD is 5125 with 3, 3000 JPY is 3000
//     with 0. Nayax takes amounts with the currency's decimal places, so
//     every amount sent or received is a whole number of minor units.
//   - Prices (Tariff.PricePerKWhMicro, Tariff.SessionFeeMicro) are
//     millionths of the currency unit (PriceDecimals). A price per kWh is
//     quoted finer than the minor unit (0.3925 EUR/kWh) and multiplied by
//     energy before it is rounded once to minor units; six decimals hold
//     every price written with up to six, exactly, whatever the currency's
//     decimal places. The session fee shares the scale so that fee and
//     energy price add up exactly before that one rounding.
//
// Every scaled value is at most MaxScaled: fifteen digits, so that it
// also passes exactly through a JSON number that someone decodes as a
// float64 (Nayax's schemas type amounts as doubles).

// MaxDecimalPlace is the most minor-unit digits a currency has (ISO 4217:
// BHD, KWD…).
const MaxDecimalPlace = 3

// PriceDecimals is the scale of prices and fees: millionths of the unit.
const PriceDecimals = 6

// MaxScaled bounds every integer amount and price in the ledger (10^15-1):
// about 10^12 units at three decimals, far above any charge, and every
// product or sum of them fits the arithmetic of daemon/billing.
const MaxScaled int64 = 999_999_999_999_999

// Errors of ParseDecimal, wrapped with the text that failed.
var (
	ErrNotDecimal = errors.New("not a decimal number")
	ErrNegative   = errors.New("negative")
	ErrTooPrecise = errors.New("more decimals than allowed")
	ErrOutOfRange = errors.New("out of range")
	errBadPlaces  = errors.New("decimal places out of range")
)

// maxExponentText bounds the exponent's digits: no amount is written with
// an exponent beyond ±9999, and a bound keeps a hostile "1e999999999"
// from costing anything.
const maxExponentText = 4

// ParseDecimal returns the decimal number s (JSON number syntax, with an
// optional leading '+' and exponent) scaled by 10^places, exactly: "0.59"
// at 2 places is 59, "1.5e1" at 0 is 15. It fails when s has more decimals
// than places (after dropping trailing zeros: "0.590" at 2 is 59), is
// negative (but for zero), or scales above max. Nothing goes through a
// float, so no amount is ever rounded here.
func ParseDecimal(s string, places int, max int64) (int64, error) {
	if places < 0 || places > 18 {
		return 0, fmt.Errorf("%q at %d places: %w", s, places, errBadPlaces)
	}
	neg, digits, exp, ok := splitDecimal(s)
	if !ok {
		return 0, fmt.Errorf("%q: %w", s, ErrNotDecimal)
	}
	digits = strings.TrimLeft(digits, "0")
	// The value is digits × 10^(exp+places); drop trailing zeros so that
	// a negative power means decimals beyond places.
	k := exp + places
	for len(digits) > 0 && digits[len(digits)-1] == '0' {
		digits = digits[:len(digits)-1]
		k++
	}
	switch {
	case digits == "":
		return 0, nil
	case neg:
		return 0, fmt.Errorf("%q: %w", s, ErrNegative)
	case k < 0:
		return 0, fmt.Errorf("%q has more than %d decimals: %w", s, places, ErrTooPrecise)
	case len(digits)+k > 19: // more digits than any int64
		return 0, fmt.Errorf("%q: %w", s, ErrOutOfRange)
	}
	v, err := strconv.ParseInt(digits+strings.Repeat("0", k), 10, 64)
	if err != nil || v > max {
		return 0, fmt.Errorf("%q: above %s: %w", s, FormatDecimal(max, places), ErrOutOfRange)
	}
	return v, nil
}

// splitDecimal splits a decimal number into its sign, all its digits
// (integer part then fraction) and the power of ten of the last digit.
// An exponent of more than maxExponentText digits is refused.
func splitDecimal(s string) (neg bool, digits string, exp int, ok bool) {
	i := 0
	if i < len(s) && (s[i] == '-' || s[i] == '+') {
		neg = s[i] == '-'
		i++
	}
	start := i
	for i < len(s) && isDigit(s[i]) {
		i++
	}
	intPart := s[start:i]
	var frac string
	if i < len(s) && s[i] == '.' {
		i++
		fs := i
		for i < len(s) && isDigit(s[i]) {
			i++
		}
		frac = s[fs:i]
	}
	if intPart == "" && frac == "" {
		return false, "", 0, false
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		es := i
		if i < len(s) && (s[i] == '-' || s[i] == '+') {
			i++
		}
		ds := i
		for i < len(s) && isDigit(s[i]) {
			i++
		}
		if i == ds || i-ds > maxExponentText {
			return false, "", 0, false
		}
		e, err := strconv.Atoi(s[es:i])
		if err != nil {
			return false, "", 0, false
		}
		exp = e
	}
	if i != len(s) {
		return false, "", 0, false
	}
	return neg, intPart + frac, exp - len(frac), true
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// FormatDecimal writes v/10^places as the shortest decimal text: 59 at 2
// places is "0.59", 1500 at 2 is "15", 4125 at 3 is "4.125". For values up
// to MaxScaled it is also the text encoding/json writes for the float64
// nearest to the amount, so JSON built from it reads the same as before
// the ledger kept integers.
func FormatDecimal(v int64, places int) string {
	s := FormatFixed(v, places)
	if strings.IndexByte(s, '.') < 0 {
		return s
	}
	s = strings.TrimRight(s, "0")
	return strings.TrimSuffix(s, ".")
}

// FormatFixed writes v/10^places with exactly places decimals ("0.50"),
// for people.
func FormatFixed(v int64, places int) string {
	places = max(places, 0)
	neg := v < 0
	var u uint64
	if neg {
		u = uint64(-(v + 1)) + 1 // |MinInt64| does not fit an int64
	} else {
		u = uint64(v)
	}
	s := strconv.FormatUint(u, 10)
	if places > 0 {
		if len(s) <= places {
			s = strings.Repeat("0", places-len(s)+1) + s
		}
		s = s[:len(s)-places] + "." + s[len(s)-places:]
	}
	if neg {
		s = "-" + s
	}
	return s
}

// FloatDecimal is the decimal a float64 was written as: its shortest text
// that reads back as the same float64 ("0.39" for 0.39), which is the
// text a YAML or JSON author wrote whenever it had at most fifteen
// significant digits. NaN and infinities give text ParseDecimal refuses.
func FloatDecimal(x float64) string {
	if math.IsNaN(x) || math.IsInf(x, 0) {
		return strconv.FormatFloat(x, 'g', -1, 64)
	}
	return strconv.FormatFloat(x, 'f', -1, 64)
}
