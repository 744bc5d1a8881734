package store

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Retention moves sessions whose money is final out of the ledger into
// the archive (archive.go). Each batch takes three durable steps:
//
//  1. a read transaction picks the batch (one month's sessions, oldest
//     first) and encodes its lines; one small Update records the month
//     file and its size in meta (the archive mark);
//  2. the lines are written to the file at that size and fsynced (and
//     the directory, for a new file);
//  3. one Update deletes from the ledger every session of the batch whose
//     record is still byte for byte what was written (record, indexes,
//     count), and removes the mark. A session the engine changed since
//     step 1 stays, and the file is rewritten from the mark without it
//     before this commit.
//
// A crash before step 3 commits leaves every session in the ledger and
// the mark in meta; Open (and the next Archive) cut the month file back
// to the marked size, so the batch's lines go too. A crash after it
// leaves them archived. So every session is, once the ledger is open,
// either in the ledger or in the archive, once. Steps 1 and 2 take no
// write lock: the engine's commits wait only behind step 3's short
// transaction, which decodes nothing.

// Defaults and bounds of ArchiveOptions.
const (
	DefaultArchiveBatch = 256
	MaxArchiveBatch     = 500
	DefaultArchivePause = 20 * time.Millisecond
	// archiveScan bounds the index entries one batch looks at (per
	// session it may move), so that a run of sessions that stay (waiting
	// for reconciliation) does not make one transaction long.
	archiveScan = 8
)

// ArchiveOptions tunes Archive. The zero value is usable.
type ArchiveOptions struct {
	// Batch is the most sessions moved by one ledger transaction:
	// DefaultArchiveBatch when 0, at most MaxArchiveBatch. Each batch
	// holds the ledger's write lock for its transaction, so the engine's
	// commits wait behind at most one batch.
	Batch int
	// Pause is the wait between batches, so that a backlog of years
	// leaves the ledger to the engine most of the time.
	// DefaultArchivePause when 0.
	Pause time.Duration
}

func (o ArchiveOptions) withDefaults() ArchiveOptions {
	if o.Batch <= 0 {
		o.Batch = DefaultArchiveBatch
	}
	o.Batch = min(o.Batch, MaxArchiveBatch)
	if o.Pause <= 0 {
		o.Pause = DefaultArchivePause
	}
	return o
}

// ArchiveResult is what one Archive call did.
type ArchiveResult struct {
	Sessions int // sessions written to the archive (an unfinished batch of an earlier call included)
	Batches  int // ledger transactions that took sessions out
}

// Archivable reports whether a session may leave the ledger for the
// archive when nothing about it changed since before cutoff: its money
// is final (settled, cancelled, declined, closed, or reconciled by an
// operator) and it waits for nothing. A session in needs-reconciliation
// stays until an operator resolves it, as does every session not in a
// final state.
func Archivable(s *Session, cutoff time.Time) bool {
	switch s.State {
	case Settled, Cancelled, Declined, Closed, Reconciled:
	default:
		return false
	}
	return s.Request == nil && lastChange(s).Before(cutoff)
}

// lastChange is when the session last changed: UpdatedAt, or CreatedAt
// for a record that never set it.
func lastChange(s *Session) time.Time {
	if s.UpdatedAt.After(s.CreatedAt) {
		return s.UpdatedAt
	}
	return s.CreatedAt
}

// ArchiveDir is the directory Archive writes to (Options.ArchiveDir).
func (s *Store) ArchiveDir() string { return s.opts.ArchiveDir }

// Archive moves every session that Archivable(s, cutoff) accepts from the
// ledger to the archive, in batches of ArchiveOptions.Batch with a pause
// between them, oldest first, and returns when none is left or ctx ends
// (with ctx's error). It first undoes a batch that a crash left
// unfinished. Only one Archive runs at a time. It is meant for a
// goroutine of its own: each batch's write transaction is short, so a
// backlog of years does not stall the engine.
func (s *Store) Archive(ctx context.Context, cutoff time.Time, o ArchiveOptions) (ArchiveResult, error) {
	o = o.withDefaults()
	s.archiveMu.Lock()
	defer s.archiveMu.Unlock()
	var res ArchiveResult
	if err := s.recoverArchive(); err != nil {
		return res, err
	}
	var after []byte
	pause := time.NewTimer(0)
	defer pause.Stop()
	for {
		if err := ctx.Err(); err != nil {
			return res, err
		}
		b, err := s.pickBatch(cutoff, after, o.Batch)
		if err != nil {
			return res, err
		}
		if len(b.sessions) > 0 {
			n, err := s.moveBatch(b)
			res.Sessions += n
			res.Batches++
			if err != nil {
				return res, err
			}
		}
		if b.done {
			return res, nil
		}
		after = b.next
		pause.Reset(o.Pause)
		select {
		case <-ctx.Done():
			return res, ctx.Err()
		case <-pause.C:
		}
	}
}

// batch is one month's sessions on their way to the archive.
type batch struct {
	month    string
	sessions []moving
	next     []byte // the last time-index key looked at: the next batch starts after it
	done     bool   // no session created before the cutoff is left to look at
}

// moving is one session of a batch: its time-index key, its record as
// the ledger held it when picked (the line written), and the record
// decoded.
type moving struct {
	key, val []byte
	s        Session
}

// pickBatch reads up to limit archivable sessions of one month, looking
// at the sessions created before cutoff in creation order after the
// time-index key after (nil: from the oldest).
func (s *Store) pickBatch(cutoff time.Time, after []byte, limit int) (batch, error) {
	var b batch
	err := s.View(func(tx *Tx) error {
		b = batch{}
		recs, err := tx.records()
		if err != nil {
			return err
		}
		byTime, err := tx.bucket(bucketSessionTime)
		if err != nil {
			return err
		}
		c := byTime.Cursor()
		var k []byte
		if after == nil {
			k, _ = c.First()
		} else if k, _ = c.Seek(after); bytes.Equal(k, after) {
			k, _ = c.Next()
		}
		b.done = true
		for scanned := 0; k != nil; k, _ = c.Next() {
			created, id, err := splitTimeIDKey(k)
			if err != nil {
				return err
			}
			if !created.Before(cutoff) {
				break
			}
			if scanned == limit*archiveScan || len(b.sessions) == limit {
				b.done = false
				break
			}
			scanned++
			v, live := recs.get(id)
			if live {
				b.next = bytes.Clone(k)
				continue // not final: it stays
			}
			if v == nil {
				s.log.Warn("archive: time index names a session the ledger does not hold", "spark_transaction_id", id)
				b.next = bytes.Clone(k)
				continue
			}
			ss, err := decodeSession(v)
			if err != nil {
				// It stays, for a human.
				s.log.Warn("archive: session record does not decode; it stays in the ledger", "spark_transaction_id", id, "err", err)
				b.next = bytes.Clone(k)
				continue
			}
			if Archivable(&ss, cutoff) {
				m := ArchiveMonth(&ss)
				if b.month != "" && m != b.month {
					// One batch, one month file: the next batch
					// starts here.
					b.done = false
					break
				}
				b.month = m
				b.sessions = append(b.sessions, moving{bytes.Clone(k), bytes.Clone(v), ss})
			}
			b.next = bytes.Clone(k)
		}
		return nil
	})
	if err != nil {
		return batch{}, fmt.Errorf("archive sessions: %w", err)
	}
	return b, nil
}

// moveBatch writes the batch to its month file and takes it out of the
// ledger (steps 1 to 3 above). It returns the sessions moved.
func (s *Store) moveBatch(b batch) (int, error) {
	path := filepath.Join(s.opts.ArchiveDir, ArchiveFileName(b.month))
	off, err := fileSize(path)
	if err != nil {
		return 0, fmt.Errorf("archive sessions: %w", err)
	}
	err = s.Update(func(tx *Tx) error {
		m, err := tx.bucket(bucketMeta)
		if err != nil {
			return err
		}
		return m.Put(metaArchiveMark, archiveMark(b.month, off))
	})
	if err != nil {
		return 0, fmt.Errorf("archive sessions: %w", err)
	}
	hook("archive-marked")
	if err := s.writeArchive(path, off, b.sessions); err != nil {
		return 0, fmt.Errorf("archive sessions: %w", err)
	}
	hook("archive-synced")
	var moved int
	err = s.Update(func(tx *Tx) error {
		moved = 0
		var bs [7]*bolt.Bucket
		for i, name := range [][]byte{bucketSessions, bucketSessionNayax, bucketSessionStation, bucketSessionTime, bucketSessionOpen, bucketSessionCounts, bucketMeta} {
			bk, err := tx.bucket(name)
			if err != nil {
				return err
			}
			bs[i] = bk
		}
		sessions, byNayax, byStation, byTime, open, counts, meta := bs[0], bs[1], bs[2], bs[3], bs[4], bs[5], bs[6]
		keep := b.sessions[:0:0]
		for _, m := range b.sessions {
			if bytes.Equal(sessions.Get([]byte(m.s.SparkTransactionID)), m.val) {
				keep = append(keep, m)
			}
		}
		if len(keep) < len(b.sessions) {
			// Changed since it was picked (or gone): it stays, and its
			// line goes. Rare, so done under the write lock.
			s.log.Info("archive: sessions changed while being archived; they stay in the ledger", "changed", len(b.sessions)-len(keep))
			if err := s.writeArchive(path, off, keep); err != nil {
				return err
			}
		}
		for _, m := range keep {
			id := []byte(m.s.SparkTransactionID)
			if err := sessions.Delete(id); err != nil {
				return err
			}
			if err := byTime.Delete(m.key); err != nil {
				return err
			}
			if err := byStation.Delete(stationKey(m.s.Station, m.s.CreatedAt, m.s.SparkTransactionID)); err != nil {
				return err
			}
			if m.s.NayaxTransactionID != 0 {
				if nk := nayaxKey(m.s.NayaxTransactionID); bytes.Equal(byNayax.Get(nk), id) {
					if err := byNayax.Delete(nk); err != nil {
						return err
					}
				}
			}
			if open.Get(id) != nil {
				if err := open.Delete(id); err != nil {
					return err
				}
			}
			if err := addU64(counts, []byte(m.s.State), -1); err != nil {
				return err
			}
		}
		if err := addU64(meta, metaArchived, len(keep)); err != nil {
			return err
		}
		moved = len(keep)
		return meta.Delete(metaArchiveMark)
	})
	if err != nil {
		return 0, fmt.Errorf("archive sessions: %w", err)
	}
	hook("archive-done")
	return moved, nil
}

// recoverArchive undoes a batch that a crash interrupted before it left
// the ledger: its month file is cut back to the size the mark recorded.
func (s *Store) recoverArchive() error {
	var mark []byte
	err := s.View(func(tx *Tx) error {
		m, err := tx.bucket(bucketMeta)
		if err != nil {
			return err
		}
		mark = bytes.Clone(m.Get(metaArchiveMark))
		return nil
	})
	if err != nil || mark == nil {
		return err
	}
	month, off, err := splitArchiveMark(mark)
	if err != nil {
		return err
	}
	path := filepath.Join(s.opts.ArchiveDir, ArchiveFileName(month))
	switch size, err := fileSize(path); {
	case err != nil:
		return fmt.Errorf("archive: %w", err)
	case size > off:
		// Its sessions are still in the ledger: drop the lines.
		s.log.Info("archive: dropping the lines of a batch a crash interrupted; its sessions are in the ledger", "file", path, "bytes", size-off)
		if err := truncateSync(path, off, !s.opts.NoSync); err != nil {
			return fmt.Errorf("archive: %w", err)
		}
	}
	err = s.Update(func(tx *Tx) error {
		m, err := tx.bucket(bucketMeta)
		if err != nil {
			return err
		}
		return m.Delete(metaArchiveMark)
	})
	if err != nil {
		return fmt.Errorf("archive: %w", err)
	}
	return nil
}

func truncateSync(path string, size int64, sync bool) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := f.Truncate(size); err != nil {
		return err
	}
	if !sync {
		return nil
	}
	return f.Sync()
}

// writeArchive writes the batch's lines to the month file at off,
// cutting off whatever was after off, and makes it durable.
func (s *Store) writeArchive(path string, off int64, batch []moving) error {
	dir := filepath.Dir(path)
	if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
		if err := os.Mkdir(dir, 0o750); err != nil && !errors.Is(err, os.ErrExist) {
			return err
		}
		if err := s.syncDir(filepath.Dir(dir)); err != nil {
			return err
		}
	}
	var lines []byte
	for _, m := range batch {
		lines = append(append(lines, m.val...), '\n')
	}
	_, err := os.Stat(path)
	isNew := errors.Is(err, os.ErrNotExist)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if fi.Size() < off {
		// Someone shortened the file since the mark was taken: never
		// pad it with zeros.
		s.log.Warn("archive: month file shorter than a moment ago; appending at its end", "file", path, "size", fi.Size(), "mark", off)
		off = fi.Size()
	}
	if err := f.Truncate(off); err != nil {
		return err
	}
	if testHook != nil && len(lines) > 1 {
		// Tests kill the process between two halves of a write.
		half := len(lines) / 2
		if _, err := f.WriteAt(lines[:half], off); err != nil {
			return err
		}
		hook("archive-half")
		lines, off = lines[half:], off+int64(half)
	}
	if _, err := f.WriteAt(lines, off); err != nil {
		return err
	}
	hook("archive-written")
	if !s.opts.NoSync {
		if err := f.Sync(); err != nil {
			return err
		}
	}
	if isNew {
		return s.syncDir(dir)
	}
	return nil
}

// syncDir is syncDir unless Options.NoSync.
func (s *Store) syncDir(dir string) error {
	if s.opts.NoSync {
		return nil
	}
	return syncDir(dir)
}

// archiveMark is meta's archive_mark: the month file (7 bytes) and its
// size (8 bytes) before the batch being moved was written to it.
func archiveMark(month string, off int64) []byte {
	v := make([]byte, len(monthLayout)+8)
	copy(v, month)
	binary.BigEndian.PutUint64(v[len(monthLayout):], uint64(off))
	return v
}

func splitArchiveMark(v []byte) (month string, off int64, err error) {
	if len(v) != len(monthLayout)+8 {
		return "", 0, fmt.Errorf("meta %s: bad length %d: %w", metaArchiveMark, len(v), errCorrupt)
	}
	month = string(v[:len(monthLayout)])
	if _, err := time.Parse(monthLayout, month); err != nil {
		return "", 0, fmt.Errorf("meta %s: month %q: %w", metaArchiveMark, month, errCorrupt)
	}
	return month, int64(binary.BigEndian.Uint64(v[len(monthLayout):])), nil
}

// fileSize is the size of the file at path, 0 if there is none.
func fileSize(path string) (int64, error) {
	fi, err := os.Stat(path)
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	return fi.Size(), nil
}

// testHook, when set by a test, is called at each step of Archive and of
// a compaction, so that a test can kill the process there.
var testHook func(point string)

func hook(point string) {
	if testHook != nil {
		testHook(point)
	}
}
