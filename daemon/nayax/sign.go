package nayax

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
)

// Signature returns the TransactionSignature header of every call sitelink
// makes to Spark: hex(SHA-256(UTF-8(id + ";" + signKey))), lower case.
func Signature(sparkTransactionID, signKey string) string {
	sum := sha256.Sum256([]byte(sparkTransactionID + ";" + signKey))
	return hex.EncodeToString(sum[:])
}

// SameSerial reports whether two terminal hardware serials name the same
// terminal. Nayax sometimes sends HwSerial as a JSON number, which loses
// leading zeros ("0434324119376526" arrives as 434324119376526), so
// leading zeros and surrounding spaces are ignored. An empty serial never
// matches anything, not even another empty one: a missing serial must not
// pass as a match.
func SameSerial(a, b string) bool {
	a, b = normSerial(a), normSerial(b)
	return a != "" && a == b
}

func normSerial(s string) string {
	s = strings.TrimSpace(s)
	if s == "" {
		return ""
	}
	if t := strings.TrimLeft(s, "0"); t != "" {
		return t
	}
	return "0"
}
