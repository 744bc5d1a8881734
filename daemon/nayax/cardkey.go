package nayax

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"hash"
	"strings"
	"sync"
)

// MinCardKey is the shortest card key NewCardKey accepts, in bytes: 32
// characters of a base64 line from `head -c 32 /dev/urandom | base64`
// already carry 192 bits.
const MinCardKey = 32

// CardKey is the fleet's secret that turns Nayax's CardHash into the value
// that travels on MQTT (the relay's relay.card_key_file). Nayax's CardHash
// is one unkeyed hash of the card number, the same for that card at every
// merchant, so it is card data; its keyed hash is useless outside the
// fleet. Every relay replica must hold the same key, or a stop handled by
// one replica would not match the authorization another forwarded. The
// zero CardKey keys nothing: Hash returns "" and Forward leaves the card
// hash out.
type CardKey struct {
	k    []byte
	macs *sync.Pool // keyed HMACs for Hash: the relay hashes every callback's card
}

// NewCardKey returns the CardKey for secret (the key file's content),
// which must be at least MinCardKey bytes: ErrCardKey otherwise. The
// error never quotes the secret.
func NewCardKey(secret []byte) (CardKey, error) {
	if len(secret) < MinCardKey {
		return CardKey{}, fmt.Errorf("%w: %d bytes, want at least %d", ErrCardKey, len(secret), MinCardKey)
	}
	k := append([]byte(nil), secret...)
	return CardKey{k: k, macs: &sync.Pool{New: func() any { return hmac.New(sha256.New, k) }}}, nil
}

// IsZero reports whether k is the zero CardKey, which keys nothing.
func (k CardKey) IsZero() bool { return len(k.k) == 0 }

// Hash is the one keyed hash of a Nayax CardHash in sitelink: lowercase
// hex of HMAC-SHA256(k, h), with h trimmed of surrounding spaces and, when
// it is hexadecimal (as Nayax sends it), lowercased, so that the same
// card hashes alike whichever way a callback spells it. Every message
// that names a card on MQTT carries this instead of Nayax's value
// (StopCallback and TransactionCallback now, StopNotify matching later);
// the edge matches on it. An empty or blank h, or the zero key, gives "".
func (k CardKey) Hash(h string) string {
	h = strings.TrimSpace(h)
	if h == "" || k.IsZero() || strings.ContainsRune(h, 0) {
		// No card hash holds a NUL; refusing them keeps Hash's inputs
		// apart from Sum's key derivation.
		return ""
	}
	if isHex(h) {
		h = strings.ToLower(h)
	}
	m := k.macs.Get().(hash.Hash)
	m.Reset()
	m.Write([]byte(h))
	var sum [sha256.Size]byte
	var out [2 * sha256.Size]byte
	hex.Encode(out[:], m.Sum(sum[:0]))
	k.macs.Put(m)
	return string(out[:])
}

// Sum is the fleet secret's MAC over parts for one purpose (domain, e.g.
// "ticket"): HMAC-SHA256 under a key derived from k for that domain, so
// that no MAC of one use is a card hash or a MAC of another, with every
// part length-prefixed, so that no two lists of parts share an input. The
// zero key gives nil.
func (k CardKey) Sum(domain string, parts ...string) []byte {
	if k.IsZero() {
		return nil
	}
	d := hmac.New(sha256.New, k.k)
	d.Write([]byte("sitelink key derivation\x00" + domain))
	m := hmac.New(sha256.New, d.Sum(nil))
	var n [binary.MaxVarintLen64]byte
	for _, p := range parts {
		m.Write(n[:binary.PutUvarint(n[:], uint64(len(p)))])
		m.Write([]byte(p))
	}
	return m.Sum(nil)
}

// text is Hash for a decoded field: absent stays absent.
func (k CardKey) text(t Text) Text {
	if s := k.Hash(t.S); s != "" {
		return Text{S: s, Valid: true}
	}
	return Text{}
}

func isHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}
