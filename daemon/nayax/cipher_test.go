package nayax_test

import (
	"bytes"
	"crypto/aes"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/sitelink/sitelink/daemon/nayax"
)

// The StartAuthentication example of spark.openapi.yaml: its Cipher is
// the example plaintext id and Random encrypted with the example key
// (the 32 rightmost characters of the example Secret Token) at
// 2023-06-06 10:21 UTC.
const (
	specKey    = "wRvTVTkungMIKThTVbj_fiXdfoGclhn0"
	specRandom = "123456789qwertyui"
	specCipher = "X305dITNTAw2vHsxE+taVcn6UvgBC3fdI6QbqeABgHbo8CKsoZhqISJfslehCiA+L7XYrqvKFci7C6BNj/trzBuNJwBEjgBzKhhgpJ5ggnw="
	specPlain  = sparkID + "=" + specRandom + "2306061021"
	specHash   = "9515af0d6b5c328b6383ff241fa7b03e489d6285a8db6a4f0d8369e3f044e8d7"
)

var specTime = time.Date(2023, 6, 6, 10, 21, 0, 0, time.UTC)

func TestCipherSpecExample(t *testing.T) {
	got, err := nayax.Cipher(sparkID, specRandom, specTime, []byte(specKey))
	if err != nil {
		t.Fatal(err)
	}
	if got != specCipher {
		t.Fatalf("Cipher = %s\nwant     %s", got, specCipher)
	}
	plain, err := nayax.DecryptCipher(specCipher, []byte(specKey))
	if err != nil {
		t.Fatal(err)
	}
	if plain != specPlain {
		t.Fatalf("DecryptCipher = %q, want %q", plain, specPlain)
	}
	id, random, at, err := nayax.ParseCipherPlaintext(plain)
	if err != nil || id != sparkID || random != specRandom || !at.Equal(specTime) {
		t.Fatalf("ParseCipherPlaintext = %q %q %v %v", id, random, at, err)
	}
}

func TestCipherTimeIsUTCAndMinutes(t *testing.T) {
	// 12:21:59 at UTC+2 is 10:21 UTC; seconds are dropped.
	at := time.Date(2023, 6, 6, 12, 21, 59, 999, time.FixedZone("CEST", 2*3600))
	got, err := nayax.Cipher(sparkID, specRandom, at, []byte(specKey))
	if err != nil {
		t.Fatal(err)
	}
	if got != specCipher {
		t.Fatalf("Cipher at %v = %s, want the spec cipher for 10:21 UTC", at, got)
	}
}

func TestCipherKey(t *testing.T) {
	tests := []struct {
		name, token, want string
		wantErr           bool
	}{
		{name: "66-character token", token: strings.Repeat("-", 34) + specKey, want: specKey},
		{name: "exactly 32", token: specKey, want: specKey},
		{name: "too short", token: specKey[1:], wantErr: true},
		{name: "empty", token: "", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := nayax.CipherKey(tt.token)
			if tt.wantErr {
				if !errors.Is(err, nayax.ErrCipher) {
					t.Fatalf("err = %v, want ErrCipher", err)
				}
				return
			}
			if err != nil || string(got) != tt.want {
				t.Fatalf("CipherKey = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

func TestCipherRejects(t *testing.T) {
	key := []byte(specKey)
	tests := []struct {
		name   string
		id     string
		random string
		key    []byte
	}{
		{name: "16-byte key", id: sparkID, random: specRandom, key: key[:16]},
		{name: "31-byte key", id: sparkID, random: specRandom, key: key[:31]},
		{name: "33-byte key", id: sparkID, random: specRandom, key: append([]byte(specKey), 'x')},
		{name: "66-byte token as key", id: sparkID, random: specRandom, key: []byte(strings.Repeat("x", 34) + specKey)},
		{name: "nil key", id: sparkID, random: specRandom},
		{name: "short id", id: sparkID[1:], random: specRandom, key: key},
		{name: "long id", id: sparkID + "0", random: specRandom, key: key},
		{name: "id with space", id: " " + sparkID[1:], random: specRandom, key: key},
		{name: "id non-ASCII", id: "é" + sparkID[2:], random: specRandom, key: key},
		{name: "random too short", id: sparkID, random: specRandom[1:], key: key},
		{name: "random too long", id: sparkID, random: specRandom + "a", key: key},
		{name: "random with symbol", id: sparkID, random: "12345678-qwertyui", key: key},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := nayax.Cipher(tt.id, tt.random, specTime, tt.key)
			if !errors.Is(err, nayax.ErrCipher) || got != "" {
				t.Fatalf("Cipher = %q, %v; want ErrCipher", got, err)
			}
		})
	}
}

func TestDecryptCipherRejects(t *testing.T) {
	key := []byte(specKey)
	raw, _ := base64.StdEncoding.DecodeString(specCipher)
	// encrypt builds cipher text with chosen final block contents, to
	// exercise the padding checks.
	encrypt := func(plain []byte) string {
		blk, _ := aes.NewCipher(key)
		out := bytes.Clone(plain)
		for i := 0; i < len(out); i += aes.BlockSize {
			blk.Encrypt(out[i:i+aes.BlockSize], out[i:i+aes.BlockSize])
		}
		return base64.StdEncoding.EncodeToString(out)
	}
	block := func(last ...byte) []byte {
		b := bytes.Repeat([]byte{'a'}, aes.BlockSize-len(last))
		return append(b, last...)
	}
	tests := []struct {
		name   string
		cipher string
		key    []byte
	}{
		{name: "wrong key length", cipher: specCipher, key: key[:24]},
		{name: "not Base64", cipher: "X305dITN!!", key: key},
		{name: "empty", cipher: "", key: key},
		{name: "partial block", cipher: base64.StdEncoding.EncodeToString(raw[:20]), key: key},
		{name: "pad byte 0", cipher: encrypt(block(0)), key: key},
		{name: "pad byte 17", cipher: encrypt(block(17)), key: key},
		{name: "inconsistent padding", cipher: encrypt(block('b', 3, 3)), key: key},
		{name: "wrong key", cipher: specCipher, key: []byte(strings.Repeat("k", 32))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := nayax.DecryptCipher(tt.cipher, tt.key)
			if tt.name == "wrong key" && err == nil {
				// A wrong key yields garbage that may, rarely, end in
				// valid padding; it must never yield the plaintext.
				if got == specPlain {
					t.Fatal("decrypted with the wrong key")
				}
				return
			}
			if !errors.Is(err, nayax.ErrCipher) {
				t.Fatalf("DecryptCipher = %q, %v; want ErrCipher", got, err)
			}
			if strings.Contains(err.Error(), "aaaa") {
				t.Fatalf("error quotes the plaintext: %v", err)
			}
		})
	}
	t.Run("full padding block", func(t *testing.T) {
		got, err := nayax.DecryptCipher(encrypt(append(block('x'), bytes.Repeat([]byte{16}, 16)...)), key)
		if err != nil || got != string(block('x')) {
			t.Fatalf("DecryptCipher = %q, %v", got, err)
		}
	})
}

func TestParseCipherPlaintextRejects(t *testing.T) {
	for _, plain := range []string{
		"",
		specPlain[1:],
		specPlain + "0",
		strings.Replace(specPlain, "=", "-", 1),
		specPlain[:54] + "2313061021", // month 13
		specPlain[:37] + "12345678-qwertyui" + specPlain[54:],
	} {
		if _, _, _, err := nayax.ParseCipherPlaintext(plain); !errors.Is(err, nayax.ErrCipher) {
			t.Errorf("ParseCipherPlaintext(%q) err = %v, want ErrCipher", plain, err)
		}
	}
}

func TestCipherRoundTrip(t *testing.T) {
	key := []byte(strings.Repeat("0123456789abcdef", 2))
	at := time.Date(2031, 12, 31, 23, 59, 0, 0, time.UTC)
	for i := range 50 {
		random := nayax.NewRandom()
		id := sparkID
		if i%2 == 1 {
			id = "123456789123456789abcdefghijklmnopqr"
		}
		c, err := nayax.Cipher(id, random, at, key)
		if err != nil {
			t.Fatal(err)
		}
		plain, err := nayax.DecryptCipher(c, key)
		if err != nil {
			t.Fatal(err)
		}
		gotID, gotRandom, gotAt, err := nayax.ParseCipherPlaintext(plain)
		if err != nil || gotID != id || gotRandom != random || !gotAt.Equal(at) {
			t.Fatalf("round trip = %q %q %v %v", gotID, gotRandom, gotAt, err)
		}
		if len(plain) != 64 {
			t.Fatalf("plaintext has %d characters, want 64", len(plain))
		}
	}
}

// TestCipherMatchesOpenSSL checks the AES-256-ECB/PKCS#7 code against an
// independent implementation, when one is installed.
func TestCipherMatchesOpenSSL(t *testing.T) {
	openssl, err := exec.LookPath("openssl")
	if err != nil {
		t.Skip("openssl not installed")
	}
	key := []byte("Key-For-Tests-0123456789-abcdefg")
	run := func(t *testing.T, args []string, stdin string) string {
		t.Helper()
		cmd := exec.Command(openssl, args...)
		cmd.Stdin = strings.NewReader(stdin)
		out, err := cmd.Output()
		if err != nil {
			t.Skipf("openssl cannot run aes-256-ecb here: %v", err)
		}
		return string(out)
	}
	encArgs := []string{"enc", "-aes-256-ecb", "-K", hex.EncodeToString(key), "-base64", "-A"}

	t.Run("Cipher", func(t *testing.T) {
		at := time.Date(2026, 2, 4, 10, 44, 0, 0, time.UTC)
		for _, random := range []string{specRandom, nayax.NewRandom(), nayax.NewRandom()} {
			got, err := nayax.Cipher(sparkID, random, at, key)
			if err != nil {
				t.Fatal(err)
			}
			want := strings.TrimSpace(run(t, encArgs, sparkID+"="+random+"2602041044"))
			if got != want {
				t.Fatalf("Cipher = %s, openssl = %s", got, want)
			}
		}
	})
	t.Run("DecryptCipher every padding length", func(t *testing.T) {
		for n := 0; n <= 2*aes.BlockSize+1; n++ {
			plain := strings.Repeat("p", n)
			c := strings.TrimSpace(run(t, encArgs, plain))
			got, err := nayax.DecryptCipher(c, key)
			if err != nil || got != plain {
				t.Fatalf("length %d: DecryptCipher = %q, %v", n, got, err)
			}
		}
	})
}

func TestNewRandom(t *testing.T) {
	const n = 2000
	seen := make(map[string]bool, n)
	chars := make(map[rune]int)
	for range n {
		r := nayax.NewRandom()
		if len(r) != nayax.RandomLen {
			t.Fatalf("NewRandom() = %q, %d characters", r, len(r))
		}
		for _, c := range r {
			if !('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9') {
				t.Fatalf("NewRandom() = %q holds %q", r, c)
			}
			chars[c]++
		}
		if seen[r] {
			t.Fatalf("NewRandom() repeated %q", r)
		}
		seen[r] = true
	}
	// 34,000 draws from 62 characters: each appears ~548 times; missing
	// one would mean a broken alphabet, not bad luck.
	if len(chars) != 62 {
		t.Fatalf("NewRandom used %d distinct characters, want 62", len(chars))
	}
}

func TestHashSparkID(t *testing.T) {
	if got := nayax.HashSparkID(sparkID); got != specHash {
		t.Fatalf("HashSparkID = %s, want the spec's %s", got, specHash)
	}
}
