package store

import (
	"fmt"
	"sync"
)

// acked holds outbox entries the broker has acknowledged but that are
// still in the file. Deleting them costs a commit and its fsync; rather
// than one of its own per batch, the deletes ride along with the next
// write transaction (Update applies them before its commit), which on a
// working site is the next command, transition or checkpoint. FlushAcked
// commits them alone when no such transaction came.
//
// Until then the outbox behaves as if they were gone: OutboxAfter,
// OutboxHead, OutboxLen and Queued skip them. A crash before they are
// deleted loses only the memory of the acknowledgement: those entries are
// published again after the restart, which at-least-once delivery allows
// (consumers dedupe by event id).
type acked struct {
	mu   sync.Mutex
	seqs map[uint64]struct{}
}

func (a *acked) add(seqs []uint64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.seqs == nil {
		a.seqs = make(map[uint64]struct{}, len(seqs))
	}
	for _, s := range seqs {
		a.seqs[s] = struct{}{}
	}
}

func (a *acked) has(seq uint64) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	_, ok := a.seqs[seq]
	return ok
}

func (a *acked) len() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.seqs)
}

// snapshot returns the pending seqs; forget drops them once deleted.
func (a *acked) snapshot() []uint64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.seqs) == 0 {
		return nil
	}
	out := make([]uint64, 0, len(a.seqs))
	for s := range a.seqs {
		out = append(out, s)
	}
	return out
}

func (a *acked) forget(seqs []uint64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, s := range seqs {
		delete(a.seqs, s)
	}
}

// OutboxAcked records that the broker acknowledged these entries. They
// are deleted by the next write transaction, or by FlushAcked; from now
// on the outbox reads as if they were gone.
func (s *Store) OutboxAcked(seqs ...uint64) {
	if len(seqs) > 0 {
		s.acked.add(seqs)
	}
}

// AckedPending is how many acknowledged entries await their delete.
func (s *Store) AckedPending() int { return s.acked.len() }

// FlushAcked deletes the acknowledged entries in a transaction of their
// own; it commits nothing when there are none.
func (s *Store) FlushAcked() error {
	if s.acked.len() == 0 {
		return nil
	}
	if err := s.Update(func(*Tx) error { return nil }); err != nil {
		return fmt.Errorf("outbox: delete acknowledged entries: %w", err)
	}
	return nil
}

// deleteAcked deletes the acknowledged entries inside tx and returns them,
// for forget once the commit succeeded.
func (tx *Tx) deleteAcked() ([]uint64, error) {
	seqs := tx.s.acked.snapshot()
	if len(seqs) == 0 {
		return nil, nil
	}
	if err := tx.outboxDelete(seqs); err != nil {
		return nil, err
	}
	return seqs, nil
}
