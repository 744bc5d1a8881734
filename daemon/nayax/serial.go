package nayax

import "strings"

// NormSerial is the comparison form of a terminal hardware serial, the
// one rule every package uses to decide whether two serials name the same
// terminal (and to key maps by serial):
//
//   - surrounding spaces are dropped;
//   - leading zeros are dropped, because Nayax sometimes sends HwSerial as
//     a JSON number ("0434324119376526" arrives as 434324119376526);
//   - an all-zero serial stays "0", so that it does not look absent;
//   - letters are upper-cased: Nayax's serials are digits, and a serial
//     typed into a configuration in another case is the same terminal.
//
// "" (or only spaces) gives "", which must never count as a match.
//
// It is for comparing only. What is sent to Nayax (TerminalId, echoed
// HwSerial) is the serial as configured or received, never this form.
func NormSerial(s string) string {
	s = strings.TrimSpace(s)
	if s == "" {
		return ""
	}
	if t := strings.TrimLeft(s, "0"); t != "" {
		s = t
	} else {
		s = "0"
	}
	return strings.ToUpper(s)
}

// SameSerial reports whether two hardware serials name the same terminal
// under NormSerial. An empty serial never matches anything, not even
// another empty one: a missing serial must not pass as a match.
func SameSerial(a, b string) bool {
	na := NormSerial(a)
	return na != "" && na == NormSerial(b)
}
