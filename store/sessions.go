package store

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// maxKeyPart bounds ids and station names so that every index key stays
// far below bbolt's key size limit.
const maxKeyPart = 1024

// Session returns the session with this SparkTransactionID, or ErrNotFound.
func (tx *Tx) Session(sparkID string) (Session, error) {
	if p, ok := tx.pending[sparkID]; ok {
		return p.clone(), nil
	}
	recs, err := tx.records()
	if err != nil {
		return Session{}, fmt.Errorf("get session %q: %w", sparkID, err)
	}
	v, _ := recs.get(sparkID)
	if v == nil {
		return Session{}, fmt.Errorf("session %q: %w", sparkID, ErrNotFound)
	}
	s, err := tx.s.memo.decode(v)
	if err != nil {
		return Session{}, fmt.Errorf("session %q: %w", sparkID, err)
	}
	return s, nil
}

// sessionRecords are the two buckets that hold session records: live for
// a session not final yet, final for the others. A session's commits
// while it charges, its stop's above all, then rewrite a path through a
// tree as small as the site's open sessions, not through years of
// history: every page a commit dirties is written and synced, and on an
// SD card each costs.
type sessionRecords struct{ live, final *bolt.Bucket }

func (tx *Tx) records() (sessionRecords, error) {
	live, final, err := tx.bucketPair(bucketSessionsLive, bucketSessions)
	return sessionRecords{live, final}, err
}

// get is the record of session id, nil if none, and whether it is live.
func (r sessionRecords) get(id string) (v []byte, live bool) {
	if v := r.live.Get([]byte(id)); v != nil {
		return v, true
	}
	return r.final.Get([]byte(id)), false
}

func (r sessionRecords) session(id string) (Session, error) {
	v, _ := r.get(id)
	if v == nil {
		return Session{}, fmt.Errorf("session %q: %w", id, ErrNotFound)
	}
	s, err := decodeSession(v)
	if err != nil {
		return Session{}, fmt.Errorf("session %q: %w", id, err)
	}
	return s, nil
}

// SessionByNayax returns the session bound to a Nayax transaction id, or
// ErrNotFound.
func (tx *Tx) SessionByNayax(nayaxID int64) (Session, error) {
	id, err := tx.nayaxOwner(nayaxID)
	if err != nil {
		return Session{}, fmt.Errorf("session by nayax id %d: %w", nayaxID, err)
	}
	if id == "" {
		return Session{}, fmt.Errorf("session by nayax id %d: %w", nayaxID, ErrNotFound)
	}
	return tx.Session(id)
}

// ActiveSession returns the session holding the station (one in an
// Active() state), or ErrNotFound. Should there ever be several, the newest
// is returned.
func (tx *Tx) ActiveSession(station string) (Session, error) {
	found, err := tx.openSessions(func(st State, stn string) bool {
		return st.Active() && stn == station
	})
	if err != nil {
		return Session{}, fmt.Errorf("active session on %q: %w", station, err)
	}
	if len(found) == 0 {
		return Session{}, fmt.Errorf("active session on %q: %w", station, ErrNotFound)
	}
	return found[0], nil
}

// ActiveSessions returns every session in an Active() state or
// Interrupted, newest first: what a start-up reconcile must look at. It
// reads the open-sessions index, never the whole history.
func (tx *Tx) ActiveSessions() ([]Session, error) {
	found, err := tx.openSessions(func(st State, _ string) bool {
		return st.Active() || st == Interrupted
	})
	if err != nil {
		return nil, fmt.Errorf("active sessions: %w", err)
	}
	return found, nil
}

// OpenSessions returns every session not yet in a final state
// (State.Final), newest first. Besides ActiveSessions'
// result it includes Stopped, Settling and Cancelling sessions, which wait
// for a settle-or-cancel decision or for Nayax's answer.
func (tx *Tx) OpenSessions() ([]Session, error) {
	found, err := tx.openSessions(func(State, string) bool { return true })
	if err != nil {
		return nil, fmt.Errorf("open sessions: %w", err)
	}
	return found, nil
}

func (tx *Tx) openSessions(match func(State, string) bool) ([]Session, error) {
	if err := tx.flush(); err != nil {
		return nil, err
	}
	open, err := tx.bucket(bucketSessionOpen)
	if err != nil {
		return nil, err
	}
	recs, err := tx.records()
	if err != nil {
		return nil, err
	}
	var out []Session
	c := open.Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		st, station, err := splitOpenValue(v)
		if err != nil {
			return nil, fmt.Errorf("session %q: %w", k, err)
		}
		if !match(st, station) {
			continue
		}
		s, err := recs.session(string(k))
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	sortNewestFirst(out)
	return out, nil
}

func sortNewestFirst(ss []Session) {
	slices.SortStableFunc(ss, func(a, b Session) int {
		return b.CreatedAt.Compare(a.CreatedAt)
	})
}

// SessionsByStation returns the station's sessions, newest first.
func (tx *Tx) SessionsByStation(station string) ([]Session, error) {
	if err := tx.flush(); err != nil {
		return nil, err
	}
	idx, err := tx.bucket(bucketSessionStation)
	if err != nil {
		return nil, fmt.Errorf("sessions of %q: %w", station, err)
	}
	recs, err := tx.records()
	if err != nil {
		return nil, fmt.Errorf("sessions of %q: %w", station, err)
	}
	prefix := stationPrefix(station)
	var out []Session
	c := idx.Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		_, id, err := splitStationKey(k)
		if err != nil {
			return nil, fmt.Errorf("sessions of %q: %w", station, err)
		}
		s, err := recs.session(id)
		if err != nil {
			return nil, fmt.Errorf("sessions of %q: %w", station, err)
		}
		out = append(out, s)
	}
	slices.Reverse(out) // keys ascend by CreatedAt
	return out, nil
}

// Sessions calls fn for each session, newest first by CreatedAt, until fn
// returns false or limit sessions were visited (limit <= 0: all).
func (tx *Tx) Sessions(limit int, fn func(Session) bool) error {
	if err := tx.flush(); err != nil {
		return err
	}
	idx, err := tx.bucket(bucketSessionTime)
	if err != nil {
		return fmt.Errorf("list sessions: %w", err)
	}
	recs, err := tx.records()
	if err != nil {
		return fmt.Errorf("list sessions: %w", err)
	}
	n := 0
	c := idx.Cursor()
	for k, _ := c.Last(); k != nil; k, _ = c.Prev() {
		if limit > 0 && n >= limit {
			return nil
		}
		_, id, err := splitTimeIDKey(k)
		if err != nil {
			return fmt.Errorf("list sessions: %w", err)
		}
		s, err := recs.session(id)
		if err != nil {
			return fmt.Errorf("list sessions: %w", err)
		}
		n++
		if !fn(s) {
			return nil
		}
	}
	return nil
}

// PutSession inserts or replaces a session and keeps every index in step:
// Nayax id (when non-zero), station, creation time and the open-sessions
// set. A zero CreatedAt is set to the current time so that the session
// sorts where it belongs. It fails with ErrInvalid without a
// SparkTransactionID or Station, and with ErrConflict when the Nayax id
// belongs to another session. On error nothing has been written.
//
// The record is staged in the transaction and written once, when the
// transaction commits (or before any query that reads the indexes): a
// stop moves its session through three or four states in one
// transaction, and only the last one needs encoding, decoding its
// predecessor and index maintenance. Session sees a staged session at
// once. The store keeps its own copy, so s may be changed afterwards.
func (tx *Tx) PutSession(s *Session) error {
	if s == nil || s.SparkTransactionID == "" || s.Station == "" {
		return fmt.Errorf("put session: spark transaction id and station are required: %w", ErrInvalid)
	}
	id := s.SparkTransactionID
	if len(s.Station) > maxKeyPart || len(id) > maxKeyPart {
		return fmt.Errorf("put session %q: id or station too long: %w", id, ErrInvalid)
	}
	if !tx.tx.Writable() {
		return fmt.Errorf("put session %q: %w", id, berrors.ErrTxNotWritable)
	}
	if s.CreatedAt.IsZero() {
		s.CreatedAt = time.Now()
	}
	if s.NayaxTransactionID != 0 {
		if owner, err := tx.nayaxOwner(s.NayaxTransactionID); err != nil {
			return fmt.Errorf("put session %q: %w", id, err)
		} else if owner != "" && owner != id {
			return fmt.Errorf("put session %q: nayax transaction id %d belongs to session %q: %w",
				id, s.NayaxTransactionID, owner, ErrConflict)
		}
	}
	if tx.pending == nil {
		tx.pending = map[string]*Session{}
	}
	if _, ok := tx.pending[id]; !ok {
		tx.pendingOrder = append(tx.pendingOrder, id)
	}
	c := s.clone()
	tx.pending[id] = &c
	return nil
}

// nayaxOwner is the session that holds a Nayax transaction id, staged or
// stored, or "".
func (tx *Tx) nayaxOwner(nayaxID int64) (string, error) {
	for _, id := range tx.pendingOrder {
		if tx.pending[id].NayaxTransactionID == nayaxID {
			return id, nil
		}
	}
	idx, err := tx.bucket(bucketSessionNayax)
	if err != nil {
		return "", err
	}
	owner := string(idx.Get(nayaxKey(nayaxID)))
	if p, ok := tx.pending[owner]; ok && p.NayaxTransactionID != nayaxID {
		return "", nil // the stored owner has moved on to another id
	}
	return owner, nil
}

// flush writes the staged sessions, in the order they were first put.
func (tx *Tx) flush() error {
	for _, id := range tx.pendingOrder {
		if err := tx.writeSession(tx.pending[id]); err != nil {
			return err
		}
	}
	tx.pending, tx.pendingOrder = nil, nil
	return nil
}

// writeSession stores s and its index entries: PutSession's write.
func (tx *Tx) writeSession(s *Session) error {
	id := s.SparkTransactionID
	var bs [5]*bolt.Bucket
	for i, name := range [][]byte{bucketSessionNayax, bucketSessionStation, bucketSessionTime, bucketSessionOpen, bucketSessionCounts} {
		b, err := tx.bucket(name)
		if err != nil {
			return fmt.Errorf("put session %q: %w", id, err)
		}
		bs[i] = b
	}
	byNayax, byStation, byTime, open, counts := bs[0], bs[1], bs[2], bs[3], bs[4]
	recs, err := tx.records()
	if err != nil {
		return fmt.Errorf("put session %q: %w", id, err)
	}

	// Check everything before the first write so that an error leaves
	// the transaction untouched even if the caller goes on using it.
	if s.NayaxTransactionID != 0 {
		if owner := byNayax.Get(nayaxKey(s.NayaxTransactionID)); owner != nil && string(owner) != id {
			return fmt.Errorf("put session %q: nayax transaction id %d belongs to session %q: %w",
				id, s.NayaxTransactionID, owner, ErrConflict)
		}
	}
	val, err := encodeSession(s)
	if err != nil {
		return fmt.Errorf("put session %q: %w", id, err)
	}
	var old *Session
	corruptOld := false
	v, wasLive := recs.get(id)
	if v != nil {
		o, err := tx.s.memo.decode(v)
		if err != nil {
			corruptOld = true
			tx.s.log.Warn("replacing corrupt session record", "spark_transaction_id", id, "err", err)
		} else {
			old = &o
		}
	}

	// Drop the old index entries, then write the new ones.
	if corruptOld {
		if err := purgeSessionIndexes(byNayax, byStation, byTime, id); err != nil {
			return fmt.Errorf("put session %q: %w", id, err)
		}
	}
	// Index entries are rewritten only when what they index changed: a
	// bbolt Put of an unchanged key still dirties its page, and every
	// dirty page is written and synced at commit (the stop path's cost).
	sameNayax := old != nil && old.NayaxTransactionID == s.NayaxTransactionID
	samePlace := old != nil && old.Station == s.Station && old.CreatedAt.Equal(s.CreatedAt)
	if old != nil {
		if old.NayaxTransactionID != 0 && !sameNayax {
			k := nayaxKey(old.NayaxTransactionID)
			if string(byNayax.Get(k)) == id {
				if err := byNayax.Delete(k); err != nil {
					return fmt.Errorf("put session %q: %w", id, err)
				}
			}
		}
		if !samePlace {
			if err := byStation.Delete(stationKey(old.Station, old.CreatedAt, id)); err != nil {
				return fmt.Errorf("put session %q: %w", id, err)
			}
			if err := byTime.Delete(timeIDKey(old.CreatedAt, id)); err != nil {
				return fmt.Errorf("put session %q: %w", id, err)
			}
		}
	}
	// The record lives in one bucket of the two; it moves when the
	// session becomes final (or, should one ever be reopened, back).
	to, from := recs.live, recs.final
	if s.State.Final() {
		to, from = recs.final, recs.live
	}
	if v != nil && wasLive != !s.State.Final() {
		if err := from.Delete([]byte(id)); err != nil {
			return fmt.Errorf("put session %q: %w", id, err)
		}
	}
	if err := to.Put([]byte(id), val); err != nil {
		return fmt.Errorf("put session %q: %w", id, err)
	}
	if s.State.Active() {
		tx.warm = append(tx.warm, warmRecord{id, val}) // val is not used again: bbolt copies it at commit
	}
	var was State
	if old != nil {
		was = old.State
	}
	// A corrupt record's state is unknown: its count stays where it was
	// (off by one until the ledger is scanned again; it was never right).
	if !corruptOld {
		if err := addCount(counts, was, s.State); err != nil {
			return fmt.Errorf("put session %q: %w", id, err)
		}
	}
	if !samePlace {
		if err := byStation.Put(stationKey(s.Station, s.CreatedAt, id), nil); err != nil {
			return fmt.Errorf("put session %q: %w", id, err)
		}
		if err := byTime.Put(timeIDKey(s.CreatedAt, id), nil); err != nil {
			return fmt.Errorf("put session %q: %w", id, err)
		}
	}
	if s.NayaxTransactionID != 0 && !sameNayax {
		if err := byNayax.Put(nayaxKey(s.NayaxTransactionID), []byte(id)); err != nil {
			return fmt.Errorf("put session %q: %w", id, err)
		}
	}
	switch {
	case s.State.Final(): // every other session is kept in the open index
		if open.Get([]byte(id)) != nil {
			err = open.Delete([]byte(id))
		}
	case !bytes.Equal(open.Get([]byte(id)), openValue(s)):
		err = open.Put([]byte(id), openValue(s))
	}
	if err != nil {
		return fmt.Errorf("put session %q: %w", id, err)
	}
	return nil
}

// purgeSessionIndexes removes every index entry of a session whose stored
// record cannot be decoded. It scans the indexes, which is slow but only
// happens when repairing a corrupt record.
func purgeSessionIndexes(byNayax, byStation, byTime *bolt.Bucket, id string) error {
	var dead [][]byte
	c := byNayax.Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		if string(v) == id {
			dead = append(dead, bytes.Clone(k))
		}
	}
	if err := deleteKeys(byNayax, dead); err != nil {
		return err
	}
	dead = dead[:0]
	c = byStation.Cursor()
	for k, _ := c.First(); k != nil; k, _ = c.Next() {
		if _, kid, err := splitStationKey(k); err == nil && kid == id {
			dead = append(dead, bytes.Clone(k))
		}
	}
	if err := deleteKeys(byStation, dead); err != nil {
		return err
	}
	dead = dead[:0]
	c = byTime.Cursor()
	for k, _ := c.First(); k != nil; k, _ = c.Next() {
		if _, kid, err := splitTimeIDKey(k); err == nil && kid == id {
			dead = append(dead, bytes.Clone(k))
		}
	}
	return deleteKeys(byTime, dead)
}

func deleteKeys(b *bolt.Bucket, keys [][]byte) error {
	for _, k := range keys {
		if err := b.Delete(k); err != nil {
			return err
		}
	}
	return nil
}

// Counts returns the number of sessions in each state, for status,
// metrics and the health event. PutSession keeps the counts as sessions
// change, so this reads one entry per state: what it costs does not grow
// with the ledger's history.
func (s *Store) Counts() (map[State]int, error) {
	counts := make(map[State]int)
	err := s.View(func(tx *Tx) error {
		b, err := tx.bucket(bucketSessionCounts)
		if err != nil {
			return err
		}
		return b.ForEach(func(k, v []byte) error {
			if len(v) != 8 {
				return fmt.Errorf("session count %q: %w: bad length %d", k, errCorrupt, len(v))
			}
			if n := binary.BigEndian.Uint64(v); n > 0 {
				counts[State(k)] = int(n)
			}
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("count sessions: %w", err)
	}
	return counts, nil
}

// scanCounts counts the sessions by state the slow way, reading every
// record: for the migration that starts the counts, and for tests.
func scanCounts(tx *bolt.Tx) (map[State]int, error) {
	counts := make(map[State]int)
	for _, name := range [][]byte{bucketSessions, bucketSessionsLive} {
		b := tx.Bucket(name)
		if b == nil {
			continue // an older schema's file, being migrated
		}
		err := b.ForEach(func(k, v []byte) error {
			var st struct {
				State State `json:"state"`
			}
			if err := json.Unmarshal(v, &st); err != nil {
				return fmt.Errorf("session %q: %w: %w", k, errCorrupt, err)
			}
			counts[st.State]++
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	return counts, nil
}

// addCount moves one session into state to (from from, "" for a new one).
func addCount(b *bolt.Bucket, from, to State) error {
	if from == to {
		return nil
	}
	if from != "" {
		if err := addU64(b, []byte(from), -1); err != nil {
			return err
		}
	}
	return addU64(b, []byte(to), 1)
}
