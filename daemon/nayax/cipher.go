package nayax

import (
	"crypto/aes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strings"
	"time"
)

// Shapes of the StartAuthentication cipher plaintext
// "{SparkTransactionId}={Random}{yyMMddHHmm}": Nayax reads it by position
// (id 1-36, "=" at 37, Random 38-54, UTC time 55-64) and answers code 34
// when the "=" is not the 37th character.
const (
	// CipherKeySize is the AES-256 key length: the 32 rightmost
	// characters of the Secret Token Nayax issues.
	CipherKeySize = 32
	// RandomLen is the length of the Random of StartAuthentication.
	RandomLen = 17
	// SparkIDLen is the length of a SparkTransactionId, a GUID with
	// hyphens.
	SparkIDLen = 36
	// CipherTimeLayout is the UTC timestamp at the end of the plaintext,
	// yyMMddHHmm. Nayax rejects a timestamp more than 5 minutes old
	// (code 31), so the clock of whoever builds the cipher must be right.
	CipherTimeLayout = "0601021504"

	cipherPlainLen = SparkIDLen + 1 + RandomLen + len(CipherTimeLayout)
)

const randomAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

// CipherKey derives the cipher key from the Secret Token Nayax issues
// (usually 66 characters): its 32 rightmost characters. A token shorter
// than 32 characters is an error.
func CipherKey(secretToken string) ([]byte, error) {
	if len(secretToken) < CipherKeySize {
		return nil, fmt.Errorf("cipher key: %w: token has %d characters, need at least %d", ErrCipher, len(secretToken), CipherKeySize)
	}
	return []byte(secretToken[len(secretToken)-CipherKeySize:]), nil
}

// Cipher builds the Cipher of a StartAuthentication request:
// Base64(AES-256-ECB(PKCS#7("{id}={random}{yyMMddHHmm}"))) with the time
// in UTC, keyed by the 32-byte secret (see CipherKey). id must be 36
// printable ASCII characters (a GUID) and random RandomLen characters of
// [A-Za-z0-9]; anything else would put the "=" or the timestamp out of
// place, which Nayax rejects. Errors wrap ErrCipher.
func Cipher(sparkTransactionID, random string, at time.Time, secret []byte) (string, error) {
	if err := checkKey(secret); err != nil {
		return "", fmt.Errorf("build cipher: %w", err)
	}
	if err := checkSparkID(sparkTransactionID); err != nil {
		return "", fmt.Errorf("build cipher: %w", err)
	}
	if !validRandom(random) {
		return "", fmt.Errorf("build cipher: %w: Random must be %d characters of [A-Za-z0-9]", ErrCipher, RandomLen)
	}
	plain := sparkTransactionID + "=" + random + at.UTC().Format(CipherTimeLayout)
	block, err := aes.NewCipher(secret)
	if err != nil {
		return "", fmt.Errorf("build cipher: %w: %v", ErrCipher, err)
	}
	// Go has no ECB mode on purpose (it leaks equal blocks); Nayax
	// mandates it, so encrypt block by block.
	buf := pad([]byte(plain), aes.BlockSize)
	for i := 0; i < len(buf); i += aes.BlockSize {
		block.Encrypt(buf[i:i+aes.BlockSize], buf[i:i+aes.BlockSize])
	}
	return base64.StdEncoding.EncodeToString(buf), nil
}

// DecryptCipher reverses Cipher (or any Base64 AES-256-ECB PKCS#7 text)
// and returns the plaintext, for a Nayax simulator. The padding is
// checked in full. Errors wrap ErrCipher and never quote the plaintext.
func DecryptCipher(cipher string, secret []byte) (string, error) {
	if err := checkKey(secret); err != nil {
		return "", fmt.Errorf("decrypt cipher: %w", err)
	}
	buf, err := base64.StdEncoding.DecodeString(strings.TrimSpace(cipher))
	if err != nil {
		return "", fmt.Errorf("decrypt cipher: %w: not Base64", ErrCipher)
	}
	if len(buf) == 0 || len(buf)%aes.BlockSize != 0 {
		return "", fmt.Errorf("decrypt cipher: %w: %d bytes is not a whole number of AES blocks", ErrCipher, len(buf))
	}
	block, err := aes.NewCipher(secret)
	if err != nil {
		return "", fmt.Errorf("decrypt cipher: %w: %v", ErrCipher, err)
	}
	for i := 0; i < len(buf); i += aes.BlockSize {
		block.Decrypt(buf[i:i+aes.BlockSize], buf[i:i+aes.BlockSize])
	}
	n := int(buf[len(buf)-1])
	if n == 0 || n > aes.BlockSize {
		return "", fmt.Errorf("decrypt cipher: %w: bad padding", ErrCipher)
	}
	for _, c := range buf[len(buf)-n:] {
		if int(c) != n {
			return "", fmt.Errorf("decrypt cipher: %w: bad padding", ErrCipher)
		}
	}
	return string(buf[:len(buf)-n]), nil
}

// ParseCipherPlaintext splits a decrypted cipher into its SparkTransactionId,
// Random and UTC time, checking the positions Nayax checks. Errors wrap
// ErrCipher.
func ParseCipherPlaintext(plain string) (sparkTransactionID, random string, at time.Time, err error) {
	if len(plain) != cipherPlainLen || plain[SparkIDLen] != '=' {
		return "", "", time.Time{}, fmt.Errorf("parse cipher: %w: want %d characters with \"=\" at position %d", ErrCipher, cipherPlainLen, SparkIDLen+1)
	}
	sparkTransactionID = plain[:SparkIDLen]
	random = plain[SparkIDLen+1 : SparkIDLen+1+RandomLen]
	if checkSparkID(sparkTransactionID) != nil || !validRandom(random) {
		return "", "", time.Time{}, fmt.Errorf("parse cipher: %w: bad id or Random", ErrCipher)
	}
	at, err = time.Parse(CipherTimeLayout, plain[SparkIDLen+1+RandomLen:])
	if err != nil {
		return "", "", time.Time{}, fmt.Errorf("parse cipher: %w: bad timestamp", ErrCipher)
	}
	return sparkTransactionID, random, at, nil
}

// NewRandom returns a fresh Random for StartAuthentication: RandomLen
// characters of [A-Za-z0-9] from crypto/rand, drawn without modulo bias.
func NewRandom() string {
	out := make([]byte, 0, RandomLen)
	var buf [32]byte
	for len(out) < RandomLen {
		rand.Read(buf[:]) // never fails (crypto/rand, Go ≥ 1.24)
		for _, b := range buf {
			// 248 = 4×62: dropping 248..255 keeps every letter equally likely.
			if b < 248 && len(out) < RandomLen {
				out = append(out, randomAlphabet[b%62])
			}
		}
	}
	return string(out)
}

// HashSparkID returns hex(SHA-256(UTF-8(id))) in lower case: what
// StartAuthentication answers as HashedSparkTransactionId.
func HashSparkID(id string) string {
	sum := sha256.Sum256([]byte(id))
	return hex.EncodeToString(sum[:])
}

func checkKey(secret []byte) error {
	if len(secret) != CipherKeySize {
		return fmt.Errorf("%w: key has %d bytes, AES-256 needs %d (the 32 rightmost characters of the Secret Token, see CipherKey)", ErrCipher, len(secret), CipherKeySize)
	}
	return nil
}

func checkSparkID(id string) error {
	if len(id) != SparkIDLen {
		return fmt.Errorf("%w: SparkTransactionId has %d bytes, want %d", ErrCipher, len(id), SparkIDLen)
	}
	for i := 0; i < len(id); i++ {
		if id[i] <= ' ' || id[i] > '~' {
			return fmt.Errorf("%w: SparkTransactionId must be printable ASCII", ErrCipher)
		}
	}
	return nil
}

func validRandom(s string) bool {
	if len(s) != RandomLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		if strings.IndexByte(randomAlphabet, s[i]) < 0 {
			return false
		}
	}
	return true
}

// pad appends PKCS#7 padding: 1 to size bytes, each holding the count.
func pad(b []byte, size int) []byte {
	n := size - len(b)%size
	out := make([]byte, len(b), len(b)+n)
	copy(out, b)
	for range n {
		out = append(out, byte(n))
	}
	return out
}
