package store

import (
	"bytes"
	"sync"
)

// memoSize is how many decoded session records the store remembers: the
// sessions a site works on at once (one per station, a few settling), for
// a site of up to 20 stations; about 5 KB each.
const memoSize = 32

// sessionMemo remembers the last few session records decoded, by their
// stored bytes: a stop reads its session to check the StopCallback, reads
// it again in the transaction that records the stop, and the write
// compares the stored record's index entries with the new ones; each of
// those used to decode the same record (~10–25 µs on the engine's
// goroutine, which answers the stop). A record is found only if the
// stored bytes are exactly those that were decoded, so the answer is
// always what decoding them would give; nothing is ever invalidated, a
// changed record simply misses. Callers get their own copy (clone).
//
// The record of a session that is delivering energy is decoded as soon
// as it is committed (Store.Update calls warm, off the caller's
// goroutine): the stop that ends it then finds it here instead of
// decoding it while the customer waits.
type sessionMemo struct {
	mu   sync.Mutex
	ents [memoSize]memoEntry
	next int // the entry replaced next (oldest first)
}

type memoEntry struct {
	raw []byte  // the stored record, copied (bbolt's memory is the transaction's)
	s   Session // its decoding, shared with no caller
}

// decode is decodeSession(v), from the memo when v was decoded before.
func (m *sessionMemo) decode(v []byte) (Session, error) {
	m.mu.Lock()
	for i := range m.ents {
		if e := &m.ents[i]; e.raw != nil && bytes.Equal(e.raw, v) {
			s := e.s.clone()
			m.mu.Unlock()
			return s, nil
		}
	}
	m.mu.Unlock()
	s, err := decodeSession(v)
	if err != nil {
		return Session{}, err
	}
	m.keep(memoEntry{raw: bytes.Clone(v), s: s.clone()})
	return s, nil
}

func (m *sessionMemo) keep(e memoEntry) {
	m.mu.Lock()
	m.ents[m.next] = e
	m.next = (m.next + 1) % memoSize
	m.mu.Unlock()
}

// warm decodes records just committed (each the caller's own copy, never
// changed again) and keeps them; a record that does not decode is left to
// its reader, which reports it.
func (m *sessionMemo) warm(records [][]byte) {
	for _, v := range records {
		if s, err := decodeSession(v); err == nil {
			m.keep(memoEntry{raw: v, s: s})
		}
	}
}
