package nayax

import (
	"crypto/sha256"
	"encoding/hex"
)

// Signature returns the TransactionSignature header of every call sitelink
// makes to Spark: hex(SHA-256(UTF-8(id + ";" + signKey))), lower case.
func Signature(sparkTransactionID, signKey string) string {
	sum := sha256.Sum256([]byte(sparkTransactionID + ";" + signKey))
	return hex.EncodeToString(sum[:])
}
