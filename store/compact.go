package store

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"
)

// A compaction copies the ledger's live records into a new file next to
// it (compactSuffix), makes that file durable, then renames it over the
// ledger and syncs the directory. A crash before the rename leaves the
// old file whole (the next Open deletes the unfinished copy); after it,
// the new file is whole: there is no moment without one complete ledger
// under the ledger's name.

// compactSuffix names the copy a compaction writes before it replaces
// the ledger.
const compactSuffix = ".compact"

// compactTxMax bounds the bytes bbolt.Compact copies per transaction of
// the new file, and so the memory a compaction holds.
const compactTxMax = 8 << 20

// LedgerStats is the ledger file's size, the part of it that is free
// (reusable pages and the unused tail), and what retention and compaction
// did to it over its life.
type LedgerStats struct {
	FileBytes   int64
	FreeBytes   int64
	Archived    uint64 // sessions moved to the archive
	Compactions uint64 // times the file was compacted
}

// FreePercent is FreeBytes as a percentage of FileBytes.
func (l LedgerStats) FreePercent() float64 {
	if l.FileBytes <= 0 {
		return 0
	}
	return 100 * float64(l.FreeBytes) / float64(l.FileBytes)
}

// LedgerStats returns the file's size and free space and the retention
// and compaction counters. It reads a few meta keys and bbolt's in-memory
// statistics: its cost does not grow with the ledger.
func (s *Store) LedgerStats() (LedgerStats, error) {
	var l LedgerStats
	err := s.View(func(tx *Tx) error {
		var err error
		l, err = ledgerStats(s.db, tx.tx, s.path)
		return err
	})
	if err != nil {
		return LedgerStats{}, fmt.Errorf("ledger stats: %w", err)
	}
	return l, nil
}

func ledgerStats(db *bolt.DB, tx *bolt.Tx, path string) (LedgerStats, error) {
	var l LedgerStats
	fi, err := os.Stat(path)
	if err != nil {
		return l, err
	}
	l.FileBytes = fi.Size()
	st := db.Stats()
	ps := int64(db.Info().PageSize)
	used := tx.Size() - int64(st.FreePageN+st.PendingPageN)*ps // below the high-water mark, in use
	l.FreeBytes = max(l.FileBytes-used, 0)
	if m := tx.Bucket(bucketMeta); m != nil {
		if l.Archived, err = getU64(m, metaArchived); err != nil {
			return l, err
		}
		if l.Compactions, err = getU64(m, metaCompactions); err != nil {
			return l, err
		}
	}
	return l, nil
}

// CompactDue reports whether a file with these stats passes the
// compaction threshold (CompactFreePercent, CompactMinBytes): what Open
// would compact.
func (o Options) CompactDue(l LedgerStats) bool {
	return o.CompactFreePercent > 0 && l.FileBytes >= o.CompactMinBytes &&
		l.FreePercent() >= float64(o.CompactFreePercent)
}

// removeStaleCompact deletes the copy of a compaction that a crash
// interrupted before the rename: the ledger itself is the old, whole file.
func removeStaleCompact(path string, log *slog.Logger) {
	tmp := path + compactSuffix
	if err := os.Remove(tmp); err == nil {
		log.Warn("removed an unfinished ledger compaction; the ledger is as it was before it", "file", tmp)
	} else if !errors.Is(err, os.ErrNotExist) {
		log.Warn("cannot remove an unfinished ledger compaction", "file", tmp, "err", err)
	}
}

// compactIfDue compacts the file when Options says it is due. Only a
// failure to open the ledger again is an error: a compaction that cannot
// be done (a full disk) is logged and the ledger stays as it is.
func (s *Store) compactIfDue() error {
	var l LedgerStats
	err := s.db.View(func(tx *bolt.Tx) error {
		var err error
		l, err = ledgerStats(s.db, tx, s.path)
		return err
	})
	if err != nil {
		return fmt.Errorf("ledger stats: %w", err)
	}
	if !s.opts.CompactDue(l) {
		return nil
	}
	start := time.Now()
	after, err := s.compact()
	if err != nil {
		if s.db == nil {
			return err
		}
		s.log.Warn("ledger compaction failed; it goes on with the file as it was", "path", s.path, "err", err)
		return nil
	}
	s.log.Info("ledger compacted", "path", s.path, "before_bytes", l.FileBytes, "free_bytes", l.FreeBytes,
		"after_bytes", after, "took", time.Since(start).Round(time.Millisecond))
	return nil
}

// compact copies the ledger into a new file and puts it in the old one's
// place, then opens it as s.db. It returns the new file's size. On an
// error before the rename the old file is open again; when even that
// fails, s.db is nil.
func (s *Store) compact() (int64, error) {
	tmp := s.path + compactSuffix
	_ = os.Remove(tmp)
	if err := s.copyCompact(tmp); err != nil {
		_ = os.Remove(tmp)
		return 0, err
	}
	hook("compact-copied")
	if err := s.db.Close(); err != nil {
		_ = os.Remove(tmp)
		return 0, s.reopen(fmt.Errorf("compact: close: %w", err))
	}
	if err := os.Rename(tmp, s.path); err != nil {
		_ = os.Remove(tmp)
		return 0, s.reopen(fmt.Errorf("compact: %w", err))
	}
	hook("compact-renamed")
	if err := syncDir(filepath.Dir(s.path)); err != nil {
		// The rename may not survive a power cut; either file is whole.
		s.log.Warn("compact: sync the ledger's directory", "err", err)
	}
	if err := s.reopen(nil); err != nil {
		return 0, err
	}
	err := s.db.Update(func(tx *bolt.Tx) error {
		m := tx.Bucket(bucketMeta)
		if m == nil {
			return errors.New("bucket meta missing")
		}
		return addU64(m, metaCompactions, 1)
	})
	if err != nil {
		return 0, fmt.Errorf("compact: count: %w", err)
	}
	hook("compact-done")
	size, err := fileSize(s.path)
	return size, err
}

// copyCompact writes the live records into a new file at tmp and syncs
// it. The copy commits without fsync and is synced once at the end.
func (s *Store) copyCompact(tmp string) error {
	dst, err := bolt.Open(tmp, 0o600, &bolt.Options{
		Timeout:        s.opts.LockTimeout,
		FreelistType:   bolt.FreelistMapType,
		NoFreelistSync: true,
		NoSync:         true,
	})
	if err != nil {
		return fmt.Errorf("compact: %w", err)
	}
	err = bolt.Compact(dst, s.db, compactTxMax)
	if err == nil {
		err = dst.Sync()
	}
	if cerr := dst.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("compact: %w", err)
	}
	return nil
}

// reopen opens s.path as s.db after a compaction closed it; cause is the
// error that made it necessary, returned when the reopen works.
func (s *Store) reopen(cause error) error {
	db, err := openBolt(s.path, s.opts)
	if err != nil {
		s.db = nil
		return errors.Join(cause, err)
	}
	s.db = db
	return cause
}
