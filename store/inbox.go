package store

import (
	"bytes"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// maxPrunePerPut bounds the deletions one PutInbox does, so that a burst
// of commands after a long outage never turns one commit into a long
// stall; each put removes more than it adds, so the inbox converges.
const maxPrunePerPut = 64

// Inbox returns the handled command with this id, or ErrNotFound. An
// entry older than Options.InboxTTL counts as not found even if it has not
// been pruned yet, so dedupe does not depend on when pruning ran.
func (tx *Tx) Inbox(id string) (InboxEntry, error) {
	b, err := tx.bucket(bucketInbox)
	if err != nil {
		return InboxEntry{}, fmt.Errorf("inbox %q: %w", id, err)
	}
	v := b.Get([]byte(id))
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
	b, err := tx.bucket(bucketInbox)
	if err != nil {
		return fmt.Errorf("put inbox %q: %w", e.ID, err)
	}
	idx, err := tx.bucket(bucketInboxTime)
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
	if old := b.Get(key); old != nil {
		if err := dropInboxTimeKey(idx, e.ID, old); err != nil {
			return fmt.Errorf("put inbox %q: %w", e.ID, err)
		}
	} else if err := addU64(meta, metaInboxLen, 1); err != nil {
		return fmt.Errorf("put inbox %q: %w", e.ID, err)
	}
	if err := b.Put(key, val); err != nil {
		return fmt.Errorf("put inbox %q: %w", e.ID, err)
	}
	// The time index grows at its end (and is pruned from its start):
	// full pages make a shallower tree, so fewer pages to write per put.
	idx.FillPercent = 1.0
	if err := idx.Put(timeIDKey(e.At, e.ID), nil); err != nil {
		return fmt.Errorf("put inbox %q: %w", e.ID, err)
	}
	if err := tx.pruneInbox(b, idx, meta, time.Now()); err != nil {
		return fmt.Errorf("put inbox %q: prune: %w", e.ID, err)
	}
	return nil
}

// dropInboxTimeKey removes the time-index entry of a record about to be
// replaced; for a corrupt record it scans the index for the id.
func dropInboxTimeKey(idx *bolt.Bucket, id string, old []byte) error {
	if o, err := decodeInbox(id, old); err == nil {
		return idx.Delete(timeIDKey(o.At, id))
	}
	var dead [][]byte
	c := idx.Cursor()
	for k, _ := c.First(); k != nil; k, _ = c.Next() {
		if _, kid, err := splitTimeIDKey(k); err == nil && kid == id {
			dead = append(dead, bytes.Clone(k))
		}
	}
	return deleteKeys(idx, dead)
}

func (tx *Tx) pruneInbox(b, idx, meta *bolt.Bucket, now time.Time) error {
	n, err := getU64(meta, metaInboxLen)
	if err != nil {
		return err
	}
	cutoff := now.Add(-tx.s.opts.InboxTTL)
	count, limit := int(n), tx.s.opts.InboxMax
	var dead [][]byte
	c := idx.Cursor()
	for k, _ := c.First(); k != nil && len(dead) < maxPrunePerPut; k, _ = c.Next() {
		t, _, err := splitTimeIDKey(k)
		if err != nil {
			return err
		}
		if !t.Before(cutoff) && count-len(dead) <= limit {
			break
		}
		dead = append(dead, bytes.Clone(k))
	}
	if len(dead) == 0 {
		return nil
	}
	removed := 0
	for _, k := range dead {
		if err := idx.Delete(k); err != nil {
			return err
		}
		id := k[timeKeyLen:]
		v := b.Get(id)
		if v == nil {
			continue // a stale index entry: nothing to count
		}
		if e, err := decodeInbox(string(id), v); err == nil && !e.At.Equal(timeFromKey(k)) {
			continue // stale entry of a record since replaced: keep the record
		}
		if err := b.Delete(id); err != nil {
			return err
		}
		removed++
	}
	tx.s.log.Debug("inbox pruned", "removed", removed)
	return addU64(meta, metaInboxLen, -removed)
}
