package nayax

import (
	"bytes"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
)

// The value types below exist because Nayax does not send what its schema
// says: ids documented as strings arrive as numbers and the other way
// round, and an int64 id must never pass through float64 (which keeps only
// 53 bits). Each type decodes from the raw JSON token, never from an
// interface{} value. Their errors never quote the offending value, because
// a misplaced field may hold card data and errors get logged and returned.

var (
	errNotInteger   = errors.New("expected an integer")
	errFraction     = errors.New("expected an integer, got a fraction or exponent")
	errIntRange     = errors.New("integer out of range")
	errNotNumber    = errors.New("expected a number")
	errNumberRange  = errors.New("number out of range")
	errNotText      = errors.New("expected a string or number")
	errNotLiteral   = errors.New("expected a string or number literal")
	errNotObject    = errors.New("expected an object")
	errNotArray     = errors.New("expected an array")
	errBadJSONToken = errors.New("malformed value")
)

var null = []byte("null")

// Int64 is an integer id that Nayax sends either as a JSON number or as a
// numeric string. It is parsed exactly: fractions, exponents and values
// outside the int64 range are errors, not roundings. null, an absent
// field and an empty string leave Valid false.
type Int64 struct {
	V     int64
	Valid bool
}

// NewInt64 returns a valid Int64 holding v.
func NewInt64(v int64) Int64 { return Int64{V: v, Valid: true} }

// String returns the decimal text of the value, or "" when not Valid.
func (i Int64) String() string {
	if !i.Valid {
		return ""
	}
	return strconv.FormatInt(i.V, 10)
}

// MarshalJSON writes a JSON number, or null when not Valid.
func (i Int64) MarshalJSON() ([]byte, error) { return i.appendJSON(nil), nil }

func (i Int64) appendJSON(dst []byte) []byte {
	if !i.Valid {
		return append(dst, null...)
	}
	return strconv.AppendInt(dst, i.V, 10)
}

// UnmarshalJSON accepts a JSON integer, a string holding one, or null.
func (i *Int64) UnmarshalJSON(b []byte) error {
	*i = Int64{}
	s, ok, err := numeric(b)
	if !ok || err != nil {
		return err
	}
	v, err := parseInt(s)
	if err != nil {
		return err
	}
	*i = NewInt64(v)
	return nil
}

// numeric returns the text of a number that Nayax may send bare or
// quoted (quoted, surrounding spaces are dropped). ok is false for null
// and for a blank string, which count as absent.
func numeric(b []byte) (s string, ok bool, err error) {
	b = bytes.TrimSpace(b)
	switch {
	case len(b) == 0:
		return "", false, errBadJSONToken
	case bytes.Equal(b, null):
		return "", false, nil
	case b[0] == '"':
		u, err := unquote(b)
		if err != nil {
			return "", false, err
		}
		u = strings.TrimSpace(u)
		return u, u != "", nil
	}
	return string(b), true, nil
}

// parseInt accepts only an optional minus sign followed by digits: no
// plus sign, no underscores, no base prefixes.
func parseInt(s string) (int64, error) {
	digits := strings.TrimPrefix(s, "-")
	if digits == "" {
		return 0, errNotInteger
	}
	for i := 0; i < len(digits); i++ {
		c := digits[i]
		switch {
		case isDigit(c):
		case c == '.' || c == 'e' || c == 'E':
			if isNumber(s) {
				return 0, errFraction
			}
			return 0, errNotInteger
		default:
			return 0, errNotInteger
		}
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, errIntRange
	}
	return v, nil
}

// Text is a string field that Nayax may send as a JSON string, a number
// or a boolean. A number keeps its literal text exactly as sent: HwSerial
// 434324119376526 becomes "434324119376526" and the Cortina TransactionId
// 2.3658433596983443e+35 stays "2.3658433596983443e+35". null and an absent
// field leave S empty and Valid false.
type Text struct {
	S     string
	Valid bool
}

// NewText returns a valid Text holding s.
func NewText(s string) Text { return Text{S: s, Valid: true} }

// String returns S.
func (t Text) String() string { return t.S }

// MarshalJSON writes a JSON string, or null when not Valid.
func (t Text) MarshalJSON() ([]byte, error) {
	return t.appendJSON(make([]byte, 0, len(t.S)+2)), nil
}

// appendJSON appends the bytes json.Marshal writes for t.S (or null),
// without its machinery when S is plain ASCII.
func (t Text) appendJSON(dst []byte) []byte {
	switch {
	case !t.Valid:
		return append(dst, null...)
	case plainASCII([]byte(t.S), true):
		return append(append(append(dst, '"'), t.S...), '"')
	}
	b, _ := json.Marshal(t.S) // a string always marshals
	return append(dst, b...)
}

// plainASCII reports whether s is printable ASCII that a JSON string
// holds as it is: no quote, no backslash, no control character and,
// with html, none of <, > and & (which json.Marshal escapes).
func plainASCII(s []byte, html bool) bool {
	for _, c := range s {
		switch {
		case c < 0x20 || c >= 0x7f || c == '"' || c == '\\':
			return false
		case html && (c == '<' || c == '>' || c == '&'):
			return false
		}
	}
	return true
}

// UnmarshalJSON accepts a JSON string, number, boolean or null.
func (t *Text) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	*t = Text{}
	switch {
	case len(b) == 0:
		return errBadJSONToken
	case bytes.Equal(b, null):
		return nil
	case b[0] == '"':
		s, err := unquote(b)
		if err != nil {
			return err
		}
		*t = NewText(s)
		return nil
	case string(b) == "true" || string(b) == "false":
		*t = NewText(string(b))
		return nil
	case isNumber(string(b)):
		*t = NewText(string(b))
		return nil
	}
	return errNotText
}

// Amount is a money amount in the currency's main unit. Nayax's schema
// types amounts as doubles; some senders quote them. null, an absent field
// and an empty string leave Valid false.
//
// A decoded Amount also keeps the number as Nayax wrote it (Decimal), and
// writes it back so: the edge converts it to integer minor units from
// that text, exactly, and the relay's forwarding loses nothing of it.
type Amount struct {
	V     float64
	Valid bool
	text  string // the JSON number as written; "" for NewAmount
}

// NewAmount returns a valid Amount holding v.
func NewAmount(v float64) Amount { return Amount{V: v, Valid: true} }

// NewAmountDecimal returns a valid Amount written exactly as the decimal
// s (JSON number syntax, such as "0.59"), for amounts computed in integer
// minor units.
func NewAmountDecimal(s string) (Amount, error) {
	if !isNumber(s) {
		return Amount{}, errNotNumber
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return Amount{}, errNumberRange
	}
	a := Amount{V: v, Valid: true, text: s}
	return a, nil
}

// Decimal returns the amount's decimal text: as Nayax wrote it for a
// decoded Amount ("15.0", "12.25" for a quoted "12.25"), the shortest
// text of V otherwise, "" when not Valid.
func (a Amount) Decimal() string {
	switch {
	case !a.Valid:
		return ""
	case a.text != "":
		return a.text
	}
	return strconv.FormatFloat(a.V, 'g', -1, 64)
}

// MarshalJSON writes a JSON number, or null when not Valid.
func (a Amount) MarshalJSON() ([]byte, error) { return a.appendJSON(nil) }

// appendJSON fails only for a NaN or infinite V set by hand.
func (a Amount) appendJSON(dst []byte) ([]byte, error) {
	switch {
	case !a.Valid:
		return append(dst, null...), nil
	case a.text != "":
		return append(dst, a.text...), nil
	}
	b, err := json.Marshal(a.V)
	if err != nil {
		return nil, err
	}
	return append(dst, b...), nil
}

// UnmarshalJSON accepts a JSON number, a string holding one, or null.
func (a *Amount) UnmarshalJSON(b []byte) error {
	*a = Amount{}
	s, ok, err := numeric(b)
	if !ok || err != nil {
		return err
	}
	na, err := NewAmountDecimal(s)
	if err != nil {
		return err
	}
	*a = na
	return nil
}

// Literal keeps a JSON string or number token exactly as Nayax sent it,
// for fields that must be echoed back unchanged (SiteId in
// ExternalCancel). The zero Literal is absent and marshals as null.
//
// json.Marshal escapes <, > and & inside any string it writes, a
// Literal's included; a number token, which SiteId is in practice, comes
// out byte for byte. For a byte-exact string, encode with a json.Encoder
// with SetEscapeHTML(false).
type Literal struct {
	raw string
}

// ParseLiteral rebuilds a Literal from the text String returned, for
// example after it was stored. "" gives the absent Literal.
func ParseLiteral(s string) (Literal, error) {
	var l Literal
	if err := l.UnmarshalJSON([]byte(s)); err != nil {
		return Literal{}, err
	}
	return l, nil
}

// Valid reports whether the field was present and not null.
func (l Literal) Valid() bool { return l.raw != "" }

// IsZero reports whether the field is absent, so that omitzero drops it.
func (l Literal) IsZero() bool { return l.raw == "" }

// String returns the raw JSON token, quotes included for a string
// (`2` or `"2"`), or "" when absent.
func (l Literal) String() string { return l.raw }

// Value returns the token's value as text: a string unquoted, a number
// as written. It is for comparing and logging, never for echoing.
func (l Literal) Value() string {
	if l.raw == "" || l.raw[0] != '"' {
		return l.raw
	}
	s, _ := unquote([]byte(l.raw))
	return s
}

// MarshalJSON writes the token back unchanged, or null when absent.
func (l Literal) MarshalJSON() ([]byte, error) { return l.appendJSON(nil), nil }

func (l Literal) appendJSON(dst []byte) []byte {
	if l.raw == "" {
		return append(dst, null...)
	}
	return append(dst, l.raw...)
}

// UnmarshalJSON keeps a string or number token; null means absent.
func (l *Literal) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	*l = Literal{}
	switch {
	case len(b) == 0:
		return nil
	case bytes.Equal(b, null):
		return nil
	case b[0] == '"':
		if _, err := unquote(b); err != nil {
			return err
		}
	case !isNumber(string(b)):
		return errNotLiteral
	}
	l.raw = string(b)
	return nil
}

func unquote(b []byte) (string, error) {
	if len(b) >= 2 && b[0] == '"' && b[len(b)-1] == '"' && plainASCII(b[1:len(b)-1], false) {
		return string(b[1 : len(b)-1]), nil // what json.Unmarshal gives, without its machinery
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return "", errBadJSONToken
	}
	return s, nil
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// isNumber reports whether s is exactly one JSON number literal
// (RFC 8259 §6), the only syntax Nayax numbers may use.
func isNumber(s string) bool {
	i := 0
	if i < len(s) && s[i] == '-' {
		i++
	}
	switch {
	case i < len(s) && s[i] == '0':
		i++
	case i < len(s) && '1' <= s[i] && s[i] <= '9':
		for i < len(s) && isDigit(s[i]) {
			i++
		}
	default:
		return false
	}
	if i < len(s) && s[i] == '.' {
		i++
		if i >= len(s) || !isDigit(s[i]) {
			return false
		}
		for i < len(s) && isDigit(s[i]) {
			i++
		}
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		if i >= len(s) || !isDigit(s[i]) {
			return false
		}
		for i < len(s) && isDigit(s[i]) {
			i++
		}
	}
	return i == len(s)
}
