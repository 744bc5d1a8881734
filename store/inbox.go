package store

import (
	"bytes"
	"fmt"
	"hash/maphash"
	"slices"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
)

// maxPrunePerPut bounds the deletions one PutInbox does, so that a burst
// of commands after a long outage never turns one commit into a long
// stall; each put removes more than it adds, so the inbox converges.
const maxPrunePerPut = 64

// A command's entry is first written to bucketInboxRecent, a bucket small
// enough that bbolt keeps it inside the root page (which every commit
// writes anyway) while it holds a reply or two, rather than to a leaf at
// the end of a path through the inbox's tree, written and synced on the
// stop path. The next transaction that records no command (the pump's,
// a station's) moves them to bucketInbox, off any command's path; a
// command's own transaction does so only once inboxRecentMax wait, in a
// flood. Where an entry lives changes nothing else: lookups, pruning and
// the count see both buckets.
const inboxRecentMax = 64

// inboxBuckets are the two buckets of the inbox.
type inboxBuckets struct{ recent, old *bolt.Bucket }

func (tx *Tx) inboxBuckets() (inboxBuckets, error) {
	recent, old, err := tx.bucketPair(bucketInboxRecent, bucketInbox)
	return inboxBuckets{recent, old}, err
}

// get is id's record and the bucket that holds it, nil if none.
func (b inboxBuckets) get(id []byte) ([]byte, *bolt.Bucket) {
	if v := b.recent.Get(id); v != nil {
		return v, b.recent
	}
	if v := b.old.Get(id); v != nil {
		return v, b.old
	}
	return nil, nil
}

// inboxRef is one handled command in the store's memory: its id and the
// time key of its record, oldest first, for pruning.
type inboxRef struct {
	at [timeKeyLen]byte
	id string
}

// inboxQueue is the inbox in the order its entries are pruned. It lives in
// memory, built from the inbox bucket at Open (InboxMax entries at most,
// ~80 bytes each) and changed only by committed transactions under
// Store.writeMu: a time index in the file cost every command two more
// pages to write and sync (schema 3), most of them on the stop path. A
// ref whose record was replaced or deleted since is stale; pruning skips
// it. Refs are kept in time order (push). Within one transaction its own
// refs are pruned after the committed ones, so a clock set back while it
// runs makes pruning late, never early.
type inboxQueue struct {
	refs []inboxRef
	head int // refs[:head] are pruned, kept until compacted away
}

// inboxIDs answers, without a transaction, whether the inbox may hold an
// id: a count of the refs per hash of their id, a superset of what is
// committed: a ref counts from its PutInbox, before the commit, until it
// is pruned after one, or until its transaction is rolled back before
// committing (Store.Update; a commit that fails keeps the count, which
// only costs a lookup). A command id never seen, the usual case, then
// costs no read transaction on the engine's goroutine.
type inboxIDs struct {
	mu sync.Mutex
	n  map[uint64]uint32
}

func inboxHash(id string) uint64 { return maphash.String(inboxSeed, id) }

var inboxSeed = maphash.MakeSeed()

func (s *inboxIDs) add(id string) {
	s.mu.Lock()
	if s.n == nil {
		s.n = map[uint64]uint32{}
	}
	s.n[inboxHash(id)]++
	s.mu.Unlock()
}

func (s *inboxIDs) drop(refs []inboxRef) {
	s.mu.Lock()
	for _, r := range refs {
		h := inboxHash(r.id)
		if s.n[h] <= 1 {
			delete(s.n, h)
		} else {
			s.n[h]--
		}
	}
	s.mu.Unlock()
}

// InboxMayHave reports whether the inbox may hold a command with this id:
// false means Inbox would return ErrNotFound, so the lookup can be
// skipped; true means look.
func (s *Store) InboxMayHave(id string) bool {
	s.inboxIDs.mu.Lock()
	defer s.inboxIDs.mu.Unlock()
	return s.inboxIDs.n[inboxHash(id)] > 0
}

func (q *inboxQueue) len() int           { return len(q.refs) - q.head }
func (q *inboxQueue) at(i int) *inboxRef { return &q.refs[q.head+i] }

// push adds refs in time order: at the end, as they come, unless the
// clock was set back, when a ref goes before the later ones (a ref dated
// ahead at the head would otherwise hold back the pruning of every one
// behind it until it expired).
func (q *inboxQueue) push(rs ...inboxRef) {
	for _, r := range rs {
		n := len(q.refs)
		if n == q.head || bytes.Compare(q.refs[n-1].at[:], r.at[:]) <= 0 {
			q.refs = append(q.refs, r)
			continue
		}
		i, _ := slices.BinarySearchFunc(q.refs[q.head:], r, func(a, b inboxRef) int {
			if c := bytes.Compare(a.at[:], b.at[:]); c != 0 {
				return c
			}
			return -1 // after refs of the same time
		})
		q.refs = slices.Insert(q.refs, q.head+i, r)
	}
}

func (q *inboxQueue) pop(n int) []inboxRef {
	n = min(n, q.len())
	popped := q.refs[q.head : q.head+n]
	q.head += n
	if q.head > 1024 && q.head > len(q.refs)/2 { // amortised O(1) per pop
		popped = slices.Clone(popped)
		q.refs = slices.Delete(q.refs, 0, q.head)
		q.head = 0
	}
	return popped
}

// loadInbox builds the queue from the inbox buckets, oldest first.
func (s *Store) loadInbox() error {
	var refs []inboxRef
	recent := 0
	err := s.db.View(func(tx *bolt.Tx) error {
		for _, name := range [][]byte{bucketInbox, bucketInboxRecent} {
			b := tx.Bucket(name)
			if b == nil {
				return fmt.Errorf("bucket %s missing", name)
			}
			err := b.ForEach(func(k, v []byte) error {
				r := inboxRef{id: string(k)}
				if len(v) >= inboxHeaderLen && v[0] == inboxFormat {
					copy(r.at[:], v[1:])
				} // else: a corrupt record, pruned first (its time is zero)
				refs = append(refs, r)
				return nil
			})
			if err != nil {
				return err
			}
		}
		recent = tx.Bucket(bucketInboxRecent).Stats().KeyN
		return nil
	})
	if err != nil {
		return fmt.Errorf("load inbox: %w", err)
	}
	slices.SortStableFunc(refs, func(a, b inboxRef) int { return bytes.Compare(a.at[:], b.at[:]) })
	s.inbox, s.recent = inboxQueue{refs: refs}, recent
	for _, r := range refs {
		s.inboxIDs.add(r.id)
	}
	return nil
}

// Inbox returns the handled command with this id, or ErrNotFound. An
// entry older than Options.InboxTTL counts as not found even if it has not
// been pruned yet, so dedupe does not depend on when pruning ran.
func (tx *Tx) Inbox(id string) (InboxEntry, error) {
	b, err := tx.inboxBuckets()
	if err != nil {
		return InboxEntry{}, fmt.Errorf("inbox %q: %w", id, err)
	}
	v, _ := b.get([]byte(id))
	if v == nil {
		return InboxEntry{}, fmt.Errorf("inbox %q: %w", id, ErrNotFound)
	}
	e, err := decodeInbox(id, v)
	if err != nil {
		return InboxEntry{}, err
	}
	if e.At.Before(time.Now().Add(-tx.s.opts.InboxTTL)) {
		return InboxEntry{}, fmt.Errorf("inbox %q: expired: %w", id, ErrNotFound)
	}
	return e, nil
}

// PutInbox records a handled command and its reply, replacing an entry
// with the same id. It then prunes entries older than Options.InboxTTL and
// the oldest beyond Options.InboxMax, at most 64 per call.
func (tx *Tx) PutInbox(e InboxEntry) error {
	if e.ID == "" || len(e.ID) > maxKeyPart {
		return fmt.Errorf("put inbox: id must be 1..%d bytes: %w", maxKeyPart, ErrInvalid)
	}
	b, err := tx.inboxBuckets()
	if err != nil {
		return fmt.Errorf("put inbox %q: %w", e.ID, err)
	}
	meta, err := tx.bucket(bucketMeta)
	if err != nil {
		return fmt.Errorf("put inbox %q: %w", e.ID, err)
	}
	val, err := encodeInbox(&e)
	if err != nil {
		return fmt.Errorf("put inbox %q: %w", e.ID, err)
	}
	key := []byte(e.ID)
	// A replaced record's ref is stale from now on. The new record is
	// written before the one it replaces is deleted.
	_, in := b.get(key)
	if err := b.recent.Put(key, val); err != nil {
		return fmt.Errorf("put inbox %q: %w", e.ID, err)
	}
	switch in {
	case nil:
		if err := addU64(meta, metaInboxLen, 1); err != nil {
			return fmt.Errorf("put inbox %q: %w", e.ID, err)
		}
		tx.recentAdded++
	case b.old:
		if err := b.old.Delete(key); err != nil {
			return fmt.Errorf("put inbox %q: %w", e.ID, err)
		}
		tx.recentAdded++
	}
	var r inboxRef
	copy(r.at[:], val[1:])
	r.id = e.ID
	tx.inboxAdded = append(tx.inboxAdded, r)
	tx.s.inboxIDs.add(r.id)
	if err := tx.pruneInbox(b, meta, time.Now()); err != nil {
		return fmt.Errorf("put inbox %q: prune: %w", e.ID, err)
	}
	return nil
}

// inboxRefAt is the i-th oldest ref this transaction has not pruned yet:
// the committed queue, then the refs the transaction added.
func (tx *Tx) inboxRefAt(i int) (*inboxRef, bool) {
	q := &tx.s.inbox
	i += tx.inboxPruned
	if i < q.len() {
		return q.at(i), true
	}
	i -= q.len()
	if i < len(tx.inboxAdded) {
		return &tx.inboxAdded[i], true
	}
	return nil, false
}

func (tx *Tx) pruneInbox(b inboxBuckets, meta *bolt.Bucket, now time.Time) error {
	n, err := getU64(meta, metaInboxLen)
	if err != nil {
		return err
	}
	cutoff := now.Add(-tx.s.opts.InboxTTL)
	count, limit := int(n), tx.s.opts.InboxMax
	pruned, removed := 0, 0
	for pruned < maxPrunePerPut {
		r, ok := tx.inboxRefAt(0)
		if !ok || !timeFromKey(r.at[:]).Before(cutoff) && count-removed <= limit {
			break
		}
		tx.inboxPruned++
		pruned++
		v, in := b.get([]byte(r.id))
		if v == nil {
			continue // a stale ref: nothing to count
		}
		if len(v) >= inboxHeaderLen && v[0] == inboxFormat && !bytes.Equal(v[1:1+timeKeyLen], r.at[:]) {
			continue // the ref of a record since replaced: keep the record
		}
		if err := in.Delete([]byte(r.id)); err != nil {
			return err
		}
		if in == b.recent {
			tx.recentAdded--
		}
		removed++
	}
	if removed == 0 {
		return nil
	}
	tx.s.log.Debug("inbox pruned", "removed", removed)
	return addU64(meta, metaInboxLen, -removed)
}

// settleInbox moves the recent entries to the inbox when the
// transaction records no command, or when inboxRecentMax wait; Update
// calls it before the commit.
func (tx *Tx) settleInbox() error {
	n := tx.s.recent + tx.recentAdded
	if n <= 0 || len(tx.inboxAdded) > 0 && n < inboxRecentMax {
		return nil
	}
	b, err := tx.inboxBuckets()
	if err != nil {
		return err
	}
	if k, _ := b.recent.Cursor().First(); k == nil {
		// The count was off (after a commit that failed, though its
		// pages may have reached the file): nothing to move.
		tx.recentMoved = true
		return nil
	}
	err = b.recent.ForEach(func(k, v []byte) error { return b.old.Put(k, v) })
	if err != nil {
		return fmt.Errorf("move recent inbox entries: %w", err)
	}
	// A new bucket rather than n deletions: what the old one used is
	// freed whole.
	if err := tx.tx.DeleteBucket(bucketInboxRecent); err != nil {
		return fmt.Errorf("move recent inbox entries: %w", err)
	}
	if _, err := tx.tx.CreateBucket(bucketInboxRecent); err != nil {
		return fmt.Errorf("move recent inbox entries: %w", err)
	}
	tx.recentMoved = true
	return nil
}

// commitInbox applies a committed transaction's inbox changes to the
// queue; the caller holds Store.writeMu.
func (tx *Tx) commitInbox() {
	if tx.s.recent += tx.recentAdded; tx.recentMoved {
		tx.s.recent = 0
	}
	q := &tx.s.inbox
	fromQueue := min(tx.inboxPruned, q.len())
	tx.s.inboxIDs.drop(q.pop(fromQueue))
	// Refs it pruned beyond the queue were its own.
	own := min(tx.inboxPruned-fromQueue, len(tx.inboxAdded))
	tx.s.inboxIDs.drop(tx.inboxAdded[:own])
	q.push(tx.inboxAdded[own:]...)
}
