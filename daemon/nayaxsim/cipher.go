package nayaxsim

import (
	"crypto/aes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"strings"
	"time"
	"unicode/utf8"
)

// This file is the simulator's own reading of Spark's StartAuthentication
// cipher and TransactionSignature, written from the specification alone.
// It deliberately shares no code with package nayax: a simulator that
// reused the client's helpers would agree with any mistake in them.

// randomLen is the length of StartAuthentication's Random, in the body
// and inside the cipher.
const randomLen = 17

// cipherTimeLayout is the cipher's UTC timestamp, yyMMddHHmm.
const cipherTimeLayout = "0601021504"

// cipherWindow is how far the cipher's time may be from the simulator's
// clock (Spark's CipherExpMinutes).
const cipherWindow = 5 * time.Minute

var (
	errCipherEncoding = errors.New("cipher is not standard Base64")
	errCipherLength   = errors.New("cipher length is not a positive multiple of the AES block size")
	errCipherPadding  = errors.New("cipher does not decrypt to PKCS#7-padded text with this token secret")
	errCipherFormat   = errors.New(`cipher plaintext is not "{SparkTransactionId}={Random}{yyMMddHHmm}"`)
)

// cipherPlain is a decrypted StartAuthentication cipher.
type cipherPlain struct {
	sparkID string
	random  string
	at      time.Time // minute resolution, UTC
}

// decryptCipher undoes Base64(AES-256-ECB(PKCS#7(plaintext))). ECB is
// what Spark specifies; it is built here block by block because the
// standard library rightly offers no ECB mode.
func decryptCipher(b64 string, key []byte) (string, error) {
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(b64))
	if err != nil {
		return "", errCipherEncoding
	}
	if len(raw) == 0 || len(raw)%aes.BlockSize != 0 {
		return "", errCipherLength
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return "", err
	}
	out := make([]byte, len(raw))
	for i := 0; i < len(raw); i += aes.BlockSize {
		block.Decrypt(out[i:i+aes.BlockSize], raw[i:i+aes.BlockSize])
	}
	n := int(out[len(out)-1])
	if n == 0 || n > aes.BlockSize {
		return "", errCipherPadding
	}
	for _, c := range out[len(out)-n:] {
		if int(c) != n {
			return "", errCipherPadding
		}
	}
	return string(out[:len(out)-n]), nil
}

// parseCipherPlain splits "{SparkTransactionId}={Random}{yyMMddHHmm}".
// It reads from the end, since the id is the only part of free length.
func parseCipherPlain(p string) (cipherPlain, error) {
	const tail = 1 + randomLen + len(cipherTimeLayout)
	if !utf8.ValidString(p) || len(p) <= tail {
		return cipherPlain{}, errCipherFormat
	}
	ts := p[len(p)-len(cipherTimeLayout):]
	random := p[len(p)-len(cipherTimeLayout)-randomLen : len(p)-len(cipherTimeLayout)]
	sep := p[len(p)-tail]
	id := p[:len(p)-tail]
	if sep != '=' || !isDigits(ts) || !isAlnum(random) {
		return cipherPlain{}, errCipherFormat
	}
	at, err := time.ParseInLocation(cipherTimeLayout, ts, time.UTC)
	if err != nil {
		return cipherPlain{}, errCipherFormat
	}
	return cipherPlain{sparkID: id, random: random, at: at}, nil
}

// inWindow reports whether a cipher minute is within ±cipherWindow of
// now, compared minute to minute: a cipher made at 10:44:59 says 10:44
// and is still good at 10:49:59.
func inWindow(at, now time.Time) bool {
	d := now.UTC().Truncate(time.Minute).Sub(at)
	return d >= -cipherWindow && d <= cipherWindow
}

// signature is the TransactionSignature Spark expects for a
// SparkTransactionId: hex(SHA-256(UTF-8(id + ";" + signKey))).
func signature(sparkID, signKey string) string {
	sum := sha256.Sum256([]byte(sparkID + ";" + signKey))
	return hex.EncodeToString(sum[:])
}

// hashID is StartAuthentication's HashedSparkTransactionId.
func hashID(sparkID string) string {
	sum := sha256.Sum256([]byte(sparkID))
	return hex.EncodeToString(sum[:])
}
