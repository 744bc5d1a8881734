package store

import (
	"encoding/binary"
	"fmt"
	"math"
	"strconv"
	"time"
)

// Enqueue appends an event to the outbox within the caller's transaction,
// so that the event commits (or not) together with the state change it
// reports. It assigns the next sequence number — monotonic and never
// reused, even after the outbox was emptied or the file reopened — and
// the id node + "-" + seq, then calls build(seq, id) for the complete MQTT
// payload, which is stored as is so that every replay publishes the same
// bytes. A build error is returned unchanged (wrapped) and nothing is
// written. The sequence and the outbox length are kept in tx and written
// to meta once, at commit (flushOutbox): a stop queues four events, and
// each used to rewrite both.
func (tx *Tx) Enqueue(node, typ string, at time.Time, build func(seq uint64, id string) ([]byte, error)) (OutboxEntry, error) {
	if node == "" || typ == "" || build == nil {
		return OutboxEntry{}, fmt.Errorf("enqueue: node, type and build are required: %w", ErrInvalid)
	}
	ob, err := tx.bucket(bucketOutbox)
	if err != nil {
		return OutboxEntry{}, fmt.Errorf("enqueue %s: %w", typ, err)
	}
	if !tx.obLoaded {
		meta, err := tx.bucket(bucketMeta)
		if err != nil {
			return OutboxEntry{}, fmt.Errorf("enqueue %s: %w", typ, err)
		}
		if tx.obSeq, err = getU64(meta, metaOutboxSeq); err != nil {
			return OutboxEntry{}, fmt.Errorf("enqueue %s: %w", typ, err)
		}
		tx.obLoaded = true
	}
	last := tx.obSeq
	if last == math.MaxUint64 {
		return OutboxEntry{}, fmt.Errorf("enqueue %s: outbox sequence exhausted", typ)
	}
	seq := last + 1
	id := node + "-" + strconv.FormatUint(seq, 10)
	payload, err := build(seq, id)
	if err != nil {
		return OutboxEntry{}, fmt.Errorf("enqueue %s %s: build payload: %w", typ, id, err)
	}
	e := OutboxEntry{Seq: seq, ID: id, Type: typ, CreatedAt: at, Payload: payload}
	val, err := encodeOutbox(&e)
	if err != nil {
		return OutboxEntry{}, fmt.Errorf("enqueue %s %s: %w", typ, id, err)
	}
	// Keys only ever grow: full pages split less and waste no space.
	ob.FillPercent = 1.0
	if err := ob.Put(seqKey(seq), val); err != nil {
		return OutboxEntry{}, fmt.Errorf("enqueue %s %s: %w", typ, id, err)
	}
	tx.obSeq = seq
	tx.obAdded++
	return e, nil
}

// flushOutbox writes the sequence and length that Enqueue kept in tx.
func (tx *Tx) flushOutbox() error {
	if tx.obAdded == 0 {
		return nil
	}
	meta, err := tx.bucket(bucketMeta)
	if err != nil {
		return err
	}
	if err := putU64(meta, metaOutboxSeq, tx.obSeq); err != nil {
		return fmt.Errorf("outbox sequence: %w", err)
	}
	if err := addU64(meta, metaOutboxLen, tx.obAdded); err != nil {
		return fmt.Errorf("outbox length: %w", err)
	}
	tx.obAdded = 0
	return nil
}

// OutboxAfter returns up to max entries with Seq > seq, oldest first,
// payload included (max <= 0: all). A drain calls it with the last seq it
// handed to the broker.
func (s *Store) OutboxAfter(seq uint64, max int) ([]OutboxEntry, error) {
	out, err := s.outboxScan(seq, max, true)
	if err != nil {
		return nil, fmt.Errorf("outbox after %d: %w", seq, err)
	}
	return out, nil
}

// OutboxHead returns up to max of the oldest entries without their
// payloads (max <= 0: all), for `sitelink outbox`.
func (s *Store) OutboxHead(max int) ([]OutboxEntry, error) {
	out, err := s.outboxScan(0, max, false)
	if err != nil {
		return nil, fmt.Errorf("outbox head: %w", err)
	}
	return out, nil
}

func (s *Store) outboxScan(after uint64, max int, withPayload bool) ([]OutboxEntry, error) {
	if after == math.MaxUint64 {
		return nil, nil
	}
	var out []OutboxEntry
	if max > 0 {
		out = make([]OutboxEntry, 0, min(max, 1024))
	}
	err := s.View(func(tx *Tx) error {
		ob, err := tx.bucket(bucketOutbox)
		if err != nil {
			return err
		}
		c := ob.Cursor()
		for k, v := c.Seek(seqKey(after + 1)); k != nil; k, v = c.Next() {
			if max > 0 && len(out) >= max {
				break
			}
			if len(k) != 8 {
				return fmt.Errorf("outbox key of %d bytes: %w", len(k), errCorrupt)
			}
			seq := binary.BigEndian.Uint64(k)
			if s.acked.has(seq) {
				continue
			}
			e, err := decodeOutbox(seq, v, withPayload)
			if err != nil {
				return err
			}
			out = append(out, e)
		}
		return nil
	})
	return out, err
}

// OutboxDelete removes the given entries (those the broker acknowledged)
// in one transaction; unknown seqs are ignored, so a retried delete is
// harmless.
func (s *Store) OutboxDelete(seqs ...uint64) error {
	if len(seqs) == 0 {
		return nil
	}
	err := s.Update(func(tx *Tx) error { return tx.outboxDelete(seqs) })
	if err != nil {
		return fmt.Errorf("outbox delete: %w", err)
	}
	return nil
}

func (tx *Tx) outboxDelete(seqs []uint64) error {
	ob, err := tx.bucket(bucketOutbox)
	if err != nil {
		return err
	}
	meta, err := tx.bucket(bucketMeta)
	if err != nil {
		return err
	}
	n := 0
	for _, seq := range seqs {
		k := seqKey(seq)
		if ob.Get(k) == nil {
			continue
		}
		if err := ob.Delete(k); err != nil {
			return err
		}
		n++
	}
	if n == 0 {
		return nil
	}
	return addU64(meta, metaOutboxLen, -n)
}

// OutboxAttempted adds one to the Attempts of each given entry in one
// transaction; unknown seqs are ignored.
func (s *Store) OutboxAttempted(seqs ...uint64) error {
	if len(seqs) == 0 {
		return nil
	}
	err := s.Update(func(tx *Tx) error {
		ob, err := tx.bucket(bucketOutbox)
		if err != nil {
			return err
		}
		for _, seq := range seqs {
			k := seqKey(seq)
			v := ob.Get(k)
			if v == nil {
				continue
			}
			if len(v) < outboxHeaderLen || v[0] != outboxFormat {
				return fmt.Errorf("outbox %d: bad header: %w", seq, errCorrupt)
			}
			nv := append([]byte(nil), v...) // bbolt's memory is read-only
			if a := binary.BigEndian.Uint32(nv[offAttempts:]); a < math.MaxUint32 {
				binary.BigEndian.PutUint32(nv[offAttempts:], a+1)
			}
			if err := ob.Put(k, nv); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("outbox attempted: %w", err)
	}
	return nil
}

// OutboxLen returns the number of entries waiting, from a counter kept in
// step by Enqueue and OutboxDelete (O(1)), less those acknowledged and
// not deleted yet (OutboxAcked).
func (s *Store) OutboxLen() (int, error) {
	var n uint64
	err := s.View(func(tx *Tx) error {
		meta, err := tx.bucket(bucketMeta)
		if err != nil {
			return err
		}
		n, err = getU64(meta, metaOutboxLen)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("outbox len: %w", err)
	}
	// An acknowledged entry counts until it is deleted; the counter and
	// the set are read at different instants, so the difference is
	// clamped (it can be short by the entries of a commit in progress).
	return max(int(n)-s.acked.len(), 0), nil
}

// Queued reports whether the outbox still holds entry seq: the broker has
// not acknowledged it yet, so a request it carries has not left the site.
func (tx *Tx) Queued(seq uint64) (bool, error) {
	ob, err := tx.bucket(bucketOutbox)
	if err != nil {
		return false, err
	}
	return ob.Get(seqKey(seq)) != nil && !tx.s.acked.has(seq), nil
}
