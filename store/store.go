package store

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// Errors returned by the store. Callers test them with errors.Is; the
// returned errors wrap them with the operation and the key involved.
var (
	// ErrNotFound means there is no such session, inbox entry or outbox
	// entry (an inbox entry older than Options.InboxTTL counts as absent).
	ErrNotFound = errors.New("not found")

	// ErrLocked means another process holds the file lock and it was not
	// released within Options.LockTimeout. bbolt allows one writer process
	// per file, so this almost always means a second sitelink is running.
	ErrLocked = errors.New("store is locked by another process")

	// ErrSchemaTooNew means the file was written by a newer sitelink. Opening
	// it with this version could silently drop fields, so Open refuses.
	ErrSchemaTooNew = errors.New("store schema is newer than this sitelink")

	// ErrClosed is returned by every operation after Close.
	ErrClosed = errors.New("store is closed")

	// ErrInvalid is returned for arguments the store refuses to persist,
	// such as a session without SparkTransactionID or Station.
	ErrInvalid = errors.New("invalid argument")

	// ErrConflict is returned by PutSession when the session's
	// NayaxTransactionID already belongs to another session: two sessions
	// for one Nayax transaction would let a stop or settlement reach the
	// wrong one.
	ErrConflict = errors.New("conflict")
)

// SchemaVersion is the on-disk layout version this package writes. A file
// with a higher version is refused with ErrSchemaTooNew; one with a lower
// version is migrated by Open (migrate.go). 2: money as integers. 3:
// sessions counted by state as they change (bucketSessionCounts). 4: no
// inbox time index in the file (the store keeps it in memory). 5: the
// records of sessions not final yet in their own bucket
// (bucketSessionsLive), and the newest inbox entries in theirs
// (bucketInboxRecent).
const SchemaVersion = 5

// Defaults for Options fields left zero.
const (
	DefaultLockTimeout = 2 * time.Second
	DefaultInboxMax    = 10000
	DefaultInboxTTL    = 72 * time.Hour
)

// Bucket names and meta keys. They are the on-disk format: never rename
// them without bumping SchemaVersion.
var (
	bucketMeta           = []byte("meta")
	bucketSessions       = []byte("sessions")        // spark id -> session JSON (final sessions)
	bucketSessionsLive   = []byte("sessions_live")   // spark id -> session JSON (every other session)
	bucketSessionNayax   = []byte("session_nayax")   // int64 BE nayax id -> spark id
	bucketSessionStation = []byte("session_station") // u16 len, station, time key, spark id -> nil
	bucketSessionTime    = []byte("session_time")    // time key, spark id -> nil
	bucketSessionOpen    = []byte("session_open")    // spark id -> state NUL station (non-final sessions)
	bucketSessionCounts  = []byte("session_counts")  // state -> u64 BE sessions in it, kept by PutSession
	bucketOutbox         = []byte("outbox")          // u64 BE seq -> outbox record
	bucketInbox          = []byte("inbox")           // command id -> inbox record
	bucketInboxRecent    = []byte("inbox_recent")    // command id -> inbox record, the newest (inbox.go)
	bucketConfig         = []byte("config")          // "applied" -> FleetConfig JSON
	bucketConfigHistory  = []byte("config_history")  // u64 BE seq -> ConfigRecord JSON

	allBuckets = [][]byte{
		bucketMeta, bucketSessions, bucketSessionsLive, bucketSessionNayax, bucketSessionStation,
		bucketSessionTime, bucketSessionOpen, bucketSessionCounts, bucketOutbox, bucketInbox,
		bucketInboxRecent,
		bucketConfig, bucketConfigHistory,
	}

	metaSchema    = []byte("schema_version") // u64 BE
	metaEpoch     = []byte("epoch")          // u64 BE
	metaOutboxSeq = []byte("outbox_seq")     // u64 BE, last assigned seq
	metaOutboxLen = []byte("outbox_len")     // u64 BE, entries in bucketOutbox
	metaInboxLen  = []byte("inbox_len")      // u64 BE, entries in bucketInbox and bucketInboxRecent
	metaCardKey   = []byte("card_key")       // 32 random bytes

	metaArchiveMark = []byte("archive_mark") // month, u64 BE size of its file before the batch being moved (retention.go)
	metaArchived    = []byte("archived")     // u64 BE, sessions ever moved to the archive
	metaCompactions = []byte("compactions")  // u64 BE, times the file was compacted
)

const cardKeyLen = 32

// Options configures Open. The zero value is usable.
type Options struct {
	// LockTimeout bounds the wait for the file lock so that a stale or
	// second sitelink cannot hang start-up. Default 2s.
	LockTimeout time.Duration
	// InboxMax is the number of handled commands kept for dedupe. Default 10000.
	InboxMax int
	// InboxTTL is how long a handled command is remembered. Default 72h.
	InboxTTL time.Duration
	// NoSync skips fsync on commit, and on the archive's files. For tests
	// and benchmarks only: with it a power loss can lose or corrupt
	// committed sessions.
	NoSync bool
	// Logger receives open/close and pruning messages; nil discards them.
	Logger *slog.Logger
	// LegacyDecimalPlace is the currency's decimal places for migrating
	// sessions that a schema-1 file recorded without a tariff (older
	// releases priced them with the configured tariff): the daemon passes
	// tariff.decimal_place. nil means DefaultLegacyDecimalPlace.
	LegacyDecimalPlace *int
	// ArchiveDir is where Archive writes the sessions it moves out of
	// the ledger. Default: "archive" in the ledger file's directory.
	ArchiveDir string
	// CompactFreePercent makes Open compact the file (compact.go) when
	// at least this percentage of it is free space and it is at least
	// CompactMinBytes large: bbolt reuses freed pages but never gives
	// them back to the filesystem. 0 never compacts.
	CompactFreePercent int
	CompactMinBytes    int64
}

func (o Options) withDefaults() Options {
	if o.LockTimeout <= 0 {
		o.LockTimeout = DefaultLockTimeout
	}
	if o.InboxMax <= 0 {
		o.InboxMax = DefaultInboxMax
	}
	if o.InboxTTL <= 0 {
		o.InboxTTL = DefaultInboxTTL
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}

// withArchiveDir fills ArchiveDir's default for the file at path.
func (o Options) withArchiveDir(path string) Options {
	if o.ArchiveDir == "" {
		o.ArchiveDir = filepath.Join(filepath.Dir(path), "archive")
	}
	return o
}

// Store is the daemon's durable ledger: sessions, the event outbox, the
// command inbox and a few counters, all in one bbolt file. It is safe for
// concurrent use; bbolt serialises writers.
type Store struct {
	db     *bolt.DB
	path   string
	opts   Options
	log    *slog.Logger
	closed atomic.Bool
	acked  acked // acknowledged outbox entries not deleted yet
	memo   sessionMemo

	writeMu sync.Mutex // held by Update through its commit and what follows it
	inbox   inboxQueue // the inbox, oldest first (inbox.go); under writeMu
	recent  int        // entries in bucketInboxRecent (inbox.go); under writeMu

	inboxIDs inboxIDs // which command ids the inbox may hold (inbox.go)

	archiveMu sync.Mutex // one Archive at a time
}

// Open opens (creating if needed) the store file at path. A new file gets
// mode 0600 and its parent directory 0750. It fails with ErrLocked when
// another process holds the file and with ErrSchemaTooNew when a newer
// sitelink wrote it.
func Open(path string, o Options) (*Store, error) {
	o = o.withDefaults()
	if path == "" {
		return nil, fmt.Errorf("open store: empty path: %w", ErrInvalid)
	}
	o = o.withArchiveDir(path)
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	removeStaleCompact(path, o.Logger)
	db, err := openBolt(path, o)
	if err != nil {
		return nil, err
	}
	s := &Store{db: db, path: path, opts: o, log: o.Logger}
	var res schemaInit
	err = db.Update(func(tx *bolt.Tx) error {
		var err error
		res, err = initSchema(tx, o.legacyDecimalPlace())
		return err
	})
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	if res.migratedFrom != 0 {
		s.log.Info("store migrated", "path", path, "from", res.migratedFrom, "to", SchemaVersion, "sessions", res.migrated)
	}
	if err := s.loadInbox(); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	if err := s.recoverArchive(); err != nil {
		// Archive tries again before it moves anything.
		s.log.Warn("archive: cannot undo a batch a crash interrupted", "err", err)
	}
	if o.CompactFreePercent > 0 {
		if err := s.compactIfDue(); err != nil {
			if s.db != nil {
				_ = s.db.Close()
			}
			return nil, fmt.Errorf("open store %s: %w", path, err)
		}
	}
	s.log.Info("store opened", "path", path, "schema", SchemaVersion, "created", res.created)
	return s, nil
}

// openBolt opens the bbolt file with the store's options. bbolt opens
// the file, then waits for its lock: if another process compacted the
// ledger meanwhile, the lock it got is that of the old, replaced file,
// so the file is opened again.
func openBolt(path string, o Options) (*bolt.DB, error) {
	for attempt := 0; ; attempt++ {
		before, statErr := os.Stat(path)
		db, err := bolt.Open(path, 0o600, &bolt.Options{
			Timeout:      o.LockTimeout,
			FreelistType: bolt.FreelistMapType,
			// The freelist is rebuilt by a scan at open instead of being
			// written on every commit: smaller commits.
			NoFreelistSync: true,
			NoSync:         o.NoSync,
			MmapFlags:      mmapFlags,
		})
		if err != nil {
			if errors.Is(err, berrors.ErrTimeout) {
				return nil, fmt.Errorf("open store: %s is locked after %s; another sitelink may be running: %w",
					path, o.LockTimeout, ErrLocked)
			}
			return nil, fmt.Errorf("open store %s: %w", path, err)
		}
		after, err := os.Stat(path)
		if statErr != nil || err == nil && os.SameFile(before, after) {
			return db, nil
		}
		_ = db.Close()
		if attempt == 2 {
			return nil, fmt.Errorf("open store %s: the file was replaced while opening it", path)
		}
	}
}

func (o Options) legacyDecimalPlace() int {
	if o.LegacyDecimalPlace == nil {
		return DefaultLegacyDecimalPlace
	}
	return *o.LegacyDecimalPlace
}

// schemaInit is what initSchema did.
type schemaInit struct {
	created      bool   // the file was new
	migratedFrom uint64 // the schema migrated from, 0 if none
	migrated     int    // sessions rewritten by the migration
}

// initSchema checks the schema version, migrates an older file, and
// creates whatever a fresh file lacks, all in tx: a failure anywhere
// leaves the file as it was.
func initSchema(tx *bolt.Tx, legacyDP int) (res schemaInit, err error) {
	if m := tx.Bucket(bucketMeta); m != nil {
		if v := m.Get(metaSchema); v != nil {
			if len(v) != 8 {
				return res, fmt.Errorf("meta %s: bad length %d", metaSchema, len(v))
			}
			got := binary.BigEndian.Uint64(v)
			if got > SchemaVersion {
				return res, fmt.Errorf("file has schema %d, this sitelink knows %d: %w",
					got, SchemaVersion, ErrSchemaTooNew)
			}
			if got < SchemaVersion {
				if res.migrated, err = migrate(tx, got, legacyDP); err != nil {
					return res, err
				}
				if err := putU64(m, metaSchema, SchemaVersion); err != nil {
					return res, err
				}
				res.migratedFrom = got
			}
		}
	}
	for _, name := range allBuckets {
		if _, err := tx.CreateBucketIfNotExists(name); err != nil {
			return res, fmt.Errorf("create bucket %s: %w", name, err)
		}
	}
	m := tx.Bucket(bucketMeta)
	if m.Get(metaSchema) == nil {
		res.created = true
		if err := putU64(m, metaSchema, SchemaVersion); err != nil {
			return res, err
		}
	}
	if k := m.Get(metaCardKey); len(k) != cardKeyLen {
		key := make([]byte, cardKeyLen)
		if _, err := rand.Read(key); err != nil {
			return res, fmt.Errorf("card key: %w", err)
		}
		if err := m.Put(metaCardKey, key); err != nil {
			return res, fmt.Errorf("card key: %w", err)
		}
	}
	// Counters are kept so that lengths are O(1); recount if one is
	// missing (a file from a crashed first open, or edited by hand).
	for _, c := range []struct {
		key     []byte
		buckets [][]byte
	}{{metaOutboxLen, [][]byte{bucketOutbox}}, {metaInboxLen, [][]byte{bucketInbox, bucketInboxRecent}}} {
		if m.Get(c.key) != nil {
			continue
		}
		n := 0
		for _, b := range c.buckets {
			n += tx.Bucket(b).Stats().KeyN
		}
		if err := putU64(m, c.key, uint64(n)); err != nil {
			return res, err
		}
	}
	return res, nil
}

// Close releases the file and its lock. Calling it again returns nil.
func (s *Store) Close() error {
	if s.closed.Load() {
		return nil
	}
	if err := s.FlushAcked(); err != nil {
		s.log.Warn("outbox: acknowledged entries not deleted; they are published again", "err", err)
	}
	if s.closed.Swap(true) {
		return nil
	}
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("close store: %w", err)
	}
	s.log.Info("store closed", "path", s.path)
	return nil
}

// Path returns the file path given to Open.
func (s *Store) Path() string { return s.path }

// Update runs fn in one read-write transaction: everything fn writes is
// committed together with one fsync, or not at all if fn returns an error.
// The Tx must not be used after fn returns nor from other goroutines.
func (s *Store) Update(fn func(*Tx) error) error {
	if s.closed.Load() {
		return ErrClosed
	}
	var deleted []uint64
	var done *Tx
	committing := false
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	err := s.db.Update(func(btx *bolt.Tx) error {
		tx := &Tx{tx: btx, s: s}
		done = tx
		if err := fn(tx); err != nil {
			return err
		}
		if err := tx.flush(); err != nil {
			return err
		}
		if err := tx.flushOutbox(); err != nil {
			return err
		}
		if err := tx.settleInbox(); err != nil {
			return err
		}
		var err error
		if deleted, err = tx.deleteAcked(); err != nil {
			return err
		}
		committing = true
		return nil
	})
	switch {
	case err == nil:
		s.acked.forget(deleted)
		done.commitInbox()
		if w := done.warmRecords(); len(w) > 0 {
			go s.memo.warm(w)
		}
	case done != nil && !committing:
		// Rolled back before the commit: its inbox ids were never
		// stored. (A failed commit keeps them: bbolt may have written
		// its meta page, and the ids must stay a superset.)
		s.inboxIDs.drop(done.inboxAdded)
	}
	return s.mapErr(err)
}

// View runs fn in a read-only transaction, a consistent snapshot that does
// not block writers.
func (s *Store) View(fn func(*Tx) error) error {
	if s.closed.Load() {
		return ErrClosed
	}
	return s.mapErr(s.db.View(func(btx *bolt.Tx) error {
		return fn(&Tx{tx: btx, s: s})
	}))
}

func (s *Store) mapErr(err error) error {
	if errors.Is(err, berrors.ErrDatabaseNotOpen) {
		return ErrClosed
	}
	return err
}

// Tx is one store transaction, valid only inside the Update or View
// callback that received it.
type Tx struct {
	tx *bolt.Tx
	s  *Store
	// pending are the sessions PutSession staged, written by flush at
	// commit or before a query that reads the session indexes.
	pending      map[string]*Session
	pendingOrder []string
	// The outbox's last sequence and the entries Enqueue added, written
	// to meta by flushOutbox at commit.
	obSeq    uint64
	obLoaded bool
	obAdded  int
	// warm are the records of sessions delivering energy written in this
	// transaction, for the memo once committed (memo.go).
	warm []warmRecord
	// The inbox refs this transaction added, and how many of the oldest
	// it pruned: applied to Store.inbox once committed (inbox.go).
	inboxAdded  []inboxRef
	inboxPruned int
	// What it did to bucketInboxRecent: entries added (net of those
	// pruned from it), and whether it moved them all to the inbox.
	recentAdded int
	recentMoved bool
}

func (tx *Tx) bucket(name []byte) (*bolt.Bucket, error) {
	b := tx.tx.Bucket(name)
	if b == nil {
		return nil, fmt.Errorf("bucket %s missing", name)
	}
	return b, nil
}

// bucketPair returns buckets a and b: a small bucket that holds records
// for a while (sessions_live, inbox_recent) and the one that holds the
// rest are always looked up together.
func (tx *Tx) bucketPair(a, b []byte) (*bolt.Bucket, *bolt.Bucket, error) {
	ba, err := tx.bucket(a)
	if err != nil {
		return nil, nil, err
	}
	bb, err := tx.bucket(b)
	return ba, bb, err
}

// CardKey returns the store's random 32-byte key, used to HMAC card
// hashes so that the ledger never holds a value that Nayax would accept.
// The key never leaves the file; the returned slice is a copy.
func (tx *Tx) CardKey() []byte {
	m := tx.tx.Bucket(bucketMeta)
	if m == nil {
		return nil
	}
	k := m.Get(metaCardKey)
	if k == nil {
		return nil
	}
	return append([]byte(nil), k...)
}

// NextEpoch increments the persisted connect epoch and returns the new
// value; the first call on a new file returns 1. It commits before it
// returns, so an epoch is never handed out twice.
func (s *Store) NextEpoch() (int64, error) {
	var e uint64
	err := s.Update(func(tx *Tx) error {
		m, err := tx.bucket(bucketMeta)
		if err != nil {
			return err
		}
		if e, err = getU64(m, metaEpoch); err != nil {
			return err
		}
		e++
		return putU64(m, metaEpoch, e)
	})
	if err != nil {
		return 0, fmt.Errorf("next epoch: %w", err)
	}
	return int64(e), nil
}

// Epoch returns the last value NextEpoch returned (0 if never called).
func (s *Store) Epoch() (int64, error) {
	var e uint64
	err := s.View(func(tx *Tx) error {
		m, err := tx.bucket(bucketMeta)
		if err != nil {
			return err
		}
		e, err = getU64(m, metaEpoch)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("epoch: %w", err)
	}
	return int64(e), nil
}

func getU64(b *bolt.Bucket, key []byte) (uint64, error) {
	v := b.Get(key)
	if v == nil {
		return 0, nil
	}
	if len(v) != 8 {
		return 0, fmt.Errorf("meta %s: bad length %d", key, len(v))
	}
	return binary.BigEndian.Uint64(v), nil
}

func putU64(b *bolt.Bucket, key []byte, v uint64) error {
	var buf [8]byte
	binary.BigEndian.PutUint64(buf[:], v)
	if err := b.Put(key, buf[:]); err != nil {
		return fmt.Errorf("meta %s: %w", key, err)
	}
	return nil
}

// addU64 adds delta to a counter, clamping at zero so that a miscounted
// file degrades to a wrong number rather than a huge one.
func addU64(b *bolt.Bucket, key []byte, delta int) error {
	v, err := getU64(b, key)
	if err != nil {
		return err
	}
	switch {
	case delta >= 0:
		v += uint64(delta)
	case uint64(-delta) > v:
		v = 0
	default:
		v -= uint64(-delta)
	}
	return putU64(b, key, v)
}

// warmRecord is a session record written in a transaction (Tx.warm).
type warmRecord struct {
	id  string
	val []byte
}

// warmRecords is the last record written of each session in tx.warm: a
// session staged again after a flush was written twice, and only its
// last bytes are in the file.
func (tx *Tx) warmRecords() [][]byte {
	out := make([][]byte, 0, len(tx.warm))
	for i, w := range tx.warm {
		if !slices.ContainsFunc(tx.warm[i+1:], func(l warmRecord) bool { return l.id == w.id }) {
			out = append(out, w.val)
		}
	}
	return out
}
