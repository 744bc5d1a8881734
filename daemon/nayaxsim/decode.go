package nayaxsim

import (
	"bytes"
	"encoding/json"
	"math"
	"strconv"
	"strings"
)

// maxBody is the largest request body the simulator reads. Spark requests
// are well under 2 KiB; anything larger is a client bug.
const maxBody = 64 << 10

// Spark codes the simulator answers with (ResponseCode in
// spark.openapi.yaml). They are repeated here rather than imported from
// package nayax so that the simulator checks sitelink's client against
// the specification instead of against sitelink's own reading of it.
const (
	codeUnknownMachine   = 25
	codeValidation       = 26
	codeAlreadyCancelled = 28 // also "Invalid Token" on StartAuthentication
	codeAuthValidation   = 30 // StartAuthentication: Random or id do not match the cipher
	codeAuthExpired      = 31 // StartAuthentication: cipher time outside the window
	codeNotFound         = 32
	codeAuthFailed       = 33
	codeDecryption       = 34 // StartAuthentication: cipher does not decrypt or parse
	codePOSTimeout       = 44
	codePOSCancelled     = 45
	codeMissingMandatory = 997
)

// problem is a rejected request: the Spark code and a description that
// never quotes a field's value (a misplaced field may hold card data).
type problem struct {
	code int
	desc string
}

func (p *problem) Error() string { return p.desc }

func fail(code int, desc string) *problem { return &problem{code: code, desc: desc} }

// object is a request body's top-level members keyed by lower-cased name:
// Spark (ASP.NET) binds member names case-insensitively, and a repeated
// member's last value wins.
type object map[string]json.RawMessage

// parseObject splits a body into its members; anything but one JSON
// object is a validation error (26).
func parseObject(b []byte) (object, *problem) {
	if len(b) > maxBody {
		return nil, fail(codeValidation, "body too large")
	}
	b = bytes.TrimPrefix(b, []byte("\xef\xbb\xbf"))
	if !json.Valid(b) {
		return nil, fail(codeValidation, "body is not valid JSON")
	}
	b = bytes.TrimLeft(b, " \t\r\n")
	if len(b) == 0 || b[0] != '{' {
		return nil, fail(codeValidation, "body is not a JSON object")
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	if _, err := dec.Token(); err != nil {
		return nil, fail(codeValidation, "body is not valid JSON")
	}
	o := object{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, fail(codeValidation, "body is not valid JSON")
		}
		key, _ := tok.(string)
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, fail(codeValidation, "body is not valid JSON")
		}
		o[strings.ToLower(key)] = raw
	}
	return o, nil
}

// get returns a member's token, or nil when it is absent or null.
func (o object) get(name string) json.RawMessage {
	raw := bytes.TrimSpace(o[strings.ToLower(name)])
	if len(raw) == 0 || string(raw) == "null" {
		return nil
	}
	return raw
}

// peekString returns a string member without judging it, for echoing the
// SparkTransactionId in an answer to a request that is otherwise wrong.
func (o object) peekString(name string) *string {
	raw := o.get(name)
	if len(raw) == 0 || raw[0] != '"' {
		return nil
	}
	var s string
	if json.Unmarshal(raw, &s) != nil {
		return nil
	}
	return &s
}

// reader reads typed members of an object strictly by the schema's types
// and remembers the first problem: a missing mandatory member is 997, a
// member of the wrong type or out of range is 26. Strictness is the point:
// a number where the schema says string (TerminalId) loses leading zeros,
// a fraction where it says int64 (NayaxTransactionId) means the id went
// through a float.
type reader struct {
	o   object
	err *problem
}

func (r *reader) missing(name string) {
	if r.err == nil {
		r.err = fail(codeMissingMandatory, "missing mandatory field "+name)
	}
}

func (r *reader) invalid(name, reason string) {
	if r.err == nil {
		r.err = fail(codeValidation, name+": "+reason)
	}
}

// str reads a JSON string. A required string holding only spaces is missing.
func (r *reader) str(name string, required bool) (string, bool) {
	raw := r.o.get(name)
	if raw == nil {
		if required {
			r.missing(name)
		}
		return "", false
	}
	if raw[0] != '"' {
		r.invalid(name, "expected a string")
		return "", false
	}
	var s string
	if json.Unmarshal(raw, &s) != nil {
		r.invalid(name, "expected a string")
		return "", false
	}
	if required && strings.TrimSpace(s) == "" {
		r.missing(name)
		return "", false
	}
	return s, true
}

// integer reads a JSON integer within [lo, hi]: no quotes, no fraction,
// no exponent.
func (r *reader) integer(name string, required bool, lo, hi int64) (int64, bool) {
	raw := r.o.get(name)
	if raw == nil {
		if required {
			r.missing(name)
		}
		return 0, false
	}
	v, ok := parseInteger(string(raw))
	if !ok {
		r.invalid(name, "expected an integer")
		return 0, false
	}
	if v < lo || v > hi {
		r.invalid(name, "out of range")
		return 0, false
	}
	return v, true
}

// oneOf reads an integer that must be one of the allowed values.
func (r *reader) oneOf(name string, required bool, allowed ...int64) (int64, bool) {
	v, ok := r.integer(name, required, math.MinInt64, math.MaxInt64)
	if !ok {
		return 0, false
	}
	for _, a := range allowed {
		if v == a {
			return v, true
		}
	}
	r.invalid(name, "value not allowed")
	return 0, false
}

// amount reads a non-negative JSON number with at most two decimals
// (Spark: "Decimal (max 2 digits for cents)"). The check is on the token
// as written, so 0.30000000000000004 is rejected: round before sending.
func (r *reader) amount(name string, required bool) (float64, bool) {
	raw := r.o.get(name)
	if raw == nil {
		if required {
			r.missing(name)
		}
		return 0, false
	}
	s := string(raw)
	if !isJSONNumber(s) {
		r.invalid(name, "expected a number")
		return 0, false
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsInf(v, 0) || math.IsNaN(v) {
		r.invalid(name, "out of range")
		return 0, false
	}
	if v < 0 {
		r.invalid(name, "negative amount")
		return 0, false
	}
	if !twoDecimals(s, v) {
		r.invalid(name, "more than two decimals")
		return 0, false
	}
	return v, true
}

// strOrInt reads a member that the spec types as a string in one call and
// as an integer in another (ReasonCode); either is accepted.
func (r *reader) strOrInt(name string) (string, bool) {
	raw := r.o.get(name)
	if raw == nil {
		return "", false
	}
	if raw[0] == '"' {
		s, ok := r.str(name, false)
		return s, ok && strings.TrimSpace(s) != ""
	}
	v, ok := parseInteger(string(raw))
	if !ok {
		r.invalid(name, "expected a string or an integer")
		return "", false
	}
	return strconv.FormatInt(v, 10), true
}

// machineAuTime reads an optional yyyyMMddHHmmssSSS timestamp.
func (r *reader) machineAuTime(name string) (string, bool) {
	s, ok := r.str(name, false)
	if !ok {
		return "", false
	}
	if !isDigits(s) || len(s) != 17 {
		r.invalid(name, "expected yyyyMMddHHmmssSSS")
		return "", false
	}
	return s, true
}

// terminal reads TerminalId (string, at most 255 chars) and
// TerminalIdType (1 HW serial, 2 machine id), both mandatory here.
func (r *reader) terminal() (string, int64) {
	id, ok := r.str("TerminalId", true)
	if ok && len(id) > 255 {
		r.invalid("TerminalId", "longer than 255 characters")
	}
	typ, _ := r.oneOf("TerminalIdType", true, 1, 2)
	return id, typ
}

func parseInteger(s string) (int64, bool) {
	digits := strings.TrimPrefix(s, "-")
	if digits == "" || !isDigits(digits) {
		return 0, false
	}
	v, err := strconv.ParseInt(s, 10, 64)
	return v, err == nil
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

func isJSONNumber(s string) bool {
	if s == "" || (s[0] != '-' && (s[0] < '0' || s[0] > '9')) {
		return false
	}
	return json.Valid([]byte(s))
}

// twoDecimals reports whether a number token has at most two decimals.
func twoDecimals(tok string, v float64) bool {
	if strings.ContainsAny(tok, "eE") {
		c := v * 100
		return math.Abs(c-math.Round(c)) < 1e-9*math.Max(1, math.Abs(c))
	}
	i := strings.IndexByte(tok, '.')
	if i < 0 {
		return true
	}
	return len(strings.TrimRight(tok[i+1:], "0")) <= 2
}

func isAlnum(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z') {
			return false
		}
	}
	return true
}
