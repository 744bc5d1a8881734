package nayax_test

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"testing"

	"github.com/sitelink/sitelink/daemon/nayax"
	"github.com/sitelink/sitelink/daemon/nayax/seeds"
)

// testKey is the card key of these tests.
var testKey = mustCardKey("nayax package test card key, 32+ bytes")

func mustCardKey(s string) nayax.CardKey {
	k, err := nayax.NewCardKey([]byte(s))
	if err != nil {
		panic(err)
	}
	return k
}

func TestCardKey(t *testing.T) {
	const raw = "7f2082ba5dbccf706b6987e75b62083f65b5695bc2d8c827c3e46769d007a9e6"
	t.Run("short key refused", func(t *testing.T) {
		for _, s := range []string{"", "s3cr3t", strings.Repeat("k", nayax.MinCardKey-1)} {
			if _, err := nayax.NewCardKey([]byte(s)); !errors.Is(err, nayax.ErrCardKey) || (s != "" && strings.Contains(err.Error(), s)) {
				t.Errorf("NewCardKey(%d bytes) = %v, want ErrCardKey without the secret", len(s), err)
			}
		}
		if _, err := nayax.NewCardKey([]byte(strings.Repeat("k", nayax.MinCardKey))); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("keyed, hex, stable", func(t *testing.T) {
		h := testKey.Hash(raw)
		if !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(h) || h == raw || h != testKey.Hash(raw) {
			t.Fatalf("Hash = %q", h)
		}
		if other := mustCardKey("another fleet's card key, 32+ bytes"); other.Hash(raw) == h {
			t.Fatal("two keys give the same hash")
		}
		if testKey.Hash(raw[:63]+"f") == h {
			t.Fatal("two cards give the same hash")
		}
	})
	t.Run("one card, one hash, however spelled", func(t *testing.T) {
		for _, s := range []string{strings.ToUpper(raw), " " + raw + "\t", "\n" + strings.ToUpper(raw[:10]) + raw[10:]} {
			if testKey.Hash(s) != testKey.Hash(raw) {
				t.Errorf("Hash(%q) differs", s)
			}
		}
		// Not hexadecimal: case matters (it may be Base64).
		if testKey.Hash("AbC+/=") == testKey.Hash("abc+/=") {
			t.Error("a non-hex hash was case-folded")
		}
	})
	t.Run("nothing to key", func(t *testing.T) {
		if testKey.Hash("") != "" || testKey.Hash("  ") != "" || (nayax.CardKey{}).Hash(raw) != "" || !(nayax.CardKey{}).IsZero() || testKey.IsZero() {
			t.Fatal("blank hash or zero key keyed something")
		}
	})
	t.Run("the key is copied", func(t *testing.T) {
		secret := []byte(strings.Repeat("s", nayax.MinCardKey))
		k, _ := nayax.NewCardKey(secret)
		h := k.Hash(raw)
		secret[0] = 'x'
		if k.Hash(raw) != h {
			t.Fatal("the key changed with the caller's slice")
		}
	})
}

// Forward never writes Nayax's CardHash: the keyed one, or (zero key)
// none at all.
func TestForwardKeysCardHash(t *testing.T) {
	stop, err := nayax.DecodeStopCallback(seeds.Get("000_stopcallback_request.json"))
	if err != nil {
		t.Fatal(err)
	}
	txn, err := nayax.DecodeTransactionCallback(seeds.Get("001_transactioncallback_request.json"))
	if err != nil {
		t.Fatal(err)
	}
	raw := stop.CardHash.S
	for name, fwd := range map[string]func(nayax.CardKey) []byte{
		"StopCallback":        func(k nayax.CardKey) []byte { return stop.Forward(k) },
		"TransactionCallback": func(k nayax.CardKey) []byte { return txn.Forward(k) },
	} {
		t.Run(name, func(t *testing.T) {
			b := string(fwd(testKey))
			if strings.Contains(strings.ToLower(b), raw) || strings.Contains(b, stop.CardUid.S) {
				t.Fatalf("Forward carries card data: %s", b)
			}
			if !strings.Contains(b, `"CardHash":"`+testKey.Hash(raw)+`"`) || !strings.Contains(b, `"CardLast4Digits":"1234"`) {
				t.Fatalf("Forward = %s, want the keyed CardHash and the last digits", b)
			}
			if b := string(fwd(nayax.CardKey{})); strings.Contains(b, "CardHash") {
				t.Fatalf("Forward with the zero key = %s, want no CardHash", b)
			}
		})
	}
	if stop.CardHash.S != raw || !stop.CardUid.Valid {
		t.Fatal("Forward changed the receiver")
	}
}

func ExampleCardKey_Hash() {
	k, err := nayax.NewCardKey([]byte("the fleet's card key: 32 bytes or more"))
	if err != nil {
		fmt.Println(err)
		return
	}
	// Nayax's CardHash for the card, as a TransactionCallback sends it,
	// and as a StopCallback may spell it.
	fmt.Println(k.Hash("7f2082ba5dbccf706b6987e75b62083f65b5695bc2d8c827c3e46769d007a9e6"))
	fmt.Println(k.Hash("7F2082BA5DBCCF706B6987E75B62083F65B5695BC2D8C827C3E46769D007A9E6"))
	// Output:
	// 3309ff3133df8d8516ec56c9edc62c8fc7882be41b7b77d21824e245bcfa7aea
	// 3309ff3133df8d8516ec56c9edc62c8fc7882be41b7b77d21824e245bcfa7aea
}

func TestCardKeySum(t *testing.T) {
	other := mustCardKey("another fleet's card key, also 32+ bytes")
	base := testKey.Sum("ticket", "site-a", "42", "10.00")
	if len(base) != 32 {
		t.Fatalf("Sum = %d bytes, want 32", len(base))
	}
	for _, tc := range []struct {
		name string
		got  []byte
	}{
		{"other key", other.Sum("ticket", "site-a", "42", "10.00")},
		{"other domain", testKey.Sum("other", "site-a", "42", "10.00")},
		{"other node", testKey.Sum("ticket", "site-b", "42", "10.00")},
		{"parts shifted", testKey.Sum("ticket", "site-a4", "2", "10.00")},
		{"parts joined", testKey.Sum("ticket", "site-a42", "", "10.00")},
		{"other amount", testKey.Sum("ticket", "site-a", "42", "100.0")},
	} {
		if string(tc.got) == string(base) {
			t.Errorf("%s: same MAC as the base", tc.name)
		}
	}
	if string(testKey.Sum("ticket", "site-a", "42", "10.00")) != string(base) {
		t.Error("Sum is not stable")
	}
	// The derived key is not the card key: no card hash equals a MAC.
	if testKey.Hash("sitelink key derivation\x00ticket") != "" {
		t.Error("Hash accepted a NUL")
	}
	if (nayax.CardKey{}).Sum("ticket", "x") != nil {
		t.Error("the zero key made a MAC")
	}
}
