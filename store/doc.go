// Package store is sitelink's durable ledger: one bbolt file (the daemon
// uses <data_dir>/sitelink.db) holding the charging sessions, the outbox of
// events awaiting publication, the inbox of handled commands, and a few
// counters.
//
// Everything goes through Update and View closures. One Update is one
// bbolt read-write transaction and therefore one durable commit (bbolt
// syncs the new pages, then the meta page, before Update returns): a session
// transition and the events that announce it are written in the same
// Update, so after a crash either both exist or neither does. That is how
// the daemon keeps DESIGN.md §2's rule that a transition is committed
// before anyone is told about it, and why nothing concerning money is
// dropped: a settlement or cancel request sits in the outbox until the
// broker has acknowledged it, across any number of restarts.
//
// # Buckets
//
//	meta             schema_version, epoch, outbox_seq (last seq handed out),
//	                 outbox_len and inbox_len (counters), card_key,
//	                 archive_mark (month and file size before the batch
//	                 being archived), archived and compactions (counters)
//	sessions         SparkTransactionID -> Session as JSON, for final sessions
//	sessions_live    SparkTransactionID -> Session as JSON, for every other one
//	session_nayax    NayaxTransactionID (8 bytes, big-endian) -> SparkTransactionID
//	session_station  len(station) | station | created | SparkTransactionID -> empty
//	session_time     created | SparkTransactionID -> empty
//	session_open     SparkTransactionID -> state NUL station, for sessions not
//	                 in a final state (State.Final)
//	session_counts   state -> sessions in it (8 bytes, big-endian)
//	outbox           seq (8 bytes, big-endian) -> compact binary record
//	inbox            command id -> compact binary record (its time in it)
//	inbox_recent     the same, for the newest entries (see below)
//
// A session record read again unchanged (a stop reads its session to
// check it, again in the transaction that records it, and the write
// compares its index entries) is decoded once: the store remembers the
// last few records it decoded, by their exact bytes, and hands each
// reader its own copy (memo.go). The record of a session delivering
// energy is decoded right after its commit, off the writer's goroutine,
// so that the stop that ends it finds it decoded.
//
// Every page a commit dirties is written and synced, so the commits of a
// charging session, the stop's above all, should dirty few. A session's
// record therefore lives in sessions_live until it is final, a tree as
// small as the site's open sessions, and only then moves into sessions,
// years of history deep; a command's inbox entry is written to
// inbox_recent, which bbolt keeps inside the root page while it holds a
// reply or two, and moved to inbox by the next transaction that records
// no command (the pump's, a station's), or by a command's own once 64
// wait. Reads, counts, pruning and retention look in both buckets; where a
// record is changes nothing but what a commit writes.
//
// Integers are big-endian so that bbolt's byte order is numeric order;
// "created" and "at" are 12-byte time keys (seconds with the sign bit
// flipped, then nanoseconds) so that index order is time order. The open
// index keeps start-up reconciliation (ActiveSessions) proportional to the
// number of unfinished sessions, not to the history.
//
// The outbox is a queue keyed by sequence number. Enqueue takes the next
// number from meta, never from the bucket, so numbers are never reused
// even after the outbox was emptied: the event id "<node>-<seq>" stays a
// valid idempotency key for consumers forever. A drain reads a batch with
// OutboxAfter and hands what the broker acknowledged to OutboxAcked: those
// entries read as gone at once and are deleted by the next Update, whoever
// makes it (acked.go), or by FlushAcked when none comes, because every
// commit costs an fsync and a command's events should not cost one of
// their own. A crash in between publishes them again (at-least-once).
//
// The inbox is pruned oldest first, by Options.InboxTTL and
// Options.InboxMax, at most 64 entries per PutInbox. Its time order is
// kept in memory (inbox.go), built at Open from the records, which carry
// their time: an index in the file cost each command two more pages to
// write and sync. Enqueue keeps the outbox's sequence and length in the
// transaction and writes them to meta once, at commit.
//
// PutSession stages the session in the transaction and writes it once at
// commit: a stop takes its session through three or four states in one
// Update, and only the last needs encoding and index maintenance.
//
// Card data never reaches the file: sessions hold an HMAC of the card hash
// keyed with CardKey, a random key created with the file.
//
// # Money and schema versions
//
// Money is integers (money.go): amounts in minor units of the session's
// currency, prices in millionths of the unit. meta's schema_version says
// how the file is laid out (SchemaVersion); Open migrates an older file in
// the transaction that opens it (migrate.go), so a migration that fails
// (a record that does not decode, an amount the integers cannot hold
// exactly) leaves the file byte for byte as it was. Schema 1 kept money as
// float64 main units; testdata/ledger-v1.db is such a file, made by
// testdata/gen_fixture.go with that release. Schema 2 had no per-state
// counts, schema 3 an inbox time index (bucket inbox_time), schema 4 every
// session record in sessions and every inbox entry in inbox.
//
// # Lifecycle
//
// lifecycle.go holds the one table of allowed session transitions
// (CanTransition, CheckTransition), and which states hold a station
// (State.Active) or are finished (State.Final, which also decides the open
// index). The ledger stores whatever it is given: the engine checks a
// transition and decides how to react to a refused one. README.md's
// lifecycle section is generated from the table (`go generate ./store`)
// and a test fails when the two differ.
//
// # Retention, the archive and compaction
//
// Archive (retention.go) moves the sessions whose money is final
// (settled, cancelled, declined, closed, reconciled by an operator; never
// needs-reconciliation until an operator resolves it, never
// one with a pending request) and that have not changed since a cutoff
// out of the ledger into the archive: a directory (Options.ArchiveDir,
// by default "archive" next to the file) of JSON Lines files, one per
// UTC month of creation, sessions-2026-09.jsonl, each line one Session
// exactly as the ledger held it. A batch (at most MaxArchiveBatch
// sessions of one month) is picked in a read transaction; a small Update
// records the month file's size (archive_mark); the lines are written at
// that size and fsynced; one Update then deletes the sessions whose
// records are still what was written (indexes and counts included) and
// the mark. A crash before that commit leaves the sessions in the ledger,
// and Open cuts the file back to the marked size; after it, they are
// archived. So a session is in the ledger or in the archive, once. The
// only write transaction of any size deletes up to a batch of records
// and decodes nothing; Archive pauses between batches, so years of
// backlog never hold the engine up for long. ArchivedSessions reads the
// files back without the ledger's lock: they are plain files, appended
// to only.
//
// bbolt reuses the pages freed by deletions but never shrinks the file.
// With Options.CompactFreePercent set, Open compacts a file whose free
// space passes that share (compact.go): bbolt.Compact into
// sitelink.db.compact, fdatasync, rename over the ledger, sync the
// directory, reopen. A crash before the rename leaves the old file whole
// and the next Open deletes the copy; after it, the new one is whole.
// LedgerStats gives the file's size and free space and the counters.
//
// # Caveats
//
//   - One process at a time: bbolt locks the file, and a second Open waits
//     Options.LockTimeout and then fails with ErrLocked. Run `sitelink`
//     commands that need the ledger while the daemon is stopped, or through
//     the daemon.
//   - Only one Update runs at a time; keep the closures short and never
//     wait for the network or hardware inside one. Calling a Store method
//     (Update, View, NextEpoch, Outbox*, Counts) from inside a closure can
//     deadlock: use the Tx.
//   - Values read inside a transaction are copied out; a Tx is valid only
//     inside its closure and on its goroutine.
//   - Options.NoSync is for tests and benchmarks only: without fsync a
//     power cut can lose committed sessions or corrupt the file.
//   - A file written by a newer sitelink (schema_version greater than
//     SchemaVersion) is refused with ErrSchemaTooNew rather than
//     misread. Downgrading means restoring a backup: a migrated file is
//     no longer readable by the release that wrote it.
//   - The store returns decode errors for damaged records instead of
//     panicking, but bbolt itself can panic on a file whose pages are
//     damaged; keep the file on a filesystem that honours fsync.
//   - Outbox timestamps are stored as Unix nanoseconds, so they cover the
//     years 1678 to 2262.
//   - An archived session has left every index, its Nayax transaction id
//     included: a replayed TransactionCallback for it would no longer be
//     recognised as one, and a Cortina Cancel for it is answered as for an
//     unknown transaction. Nayax replays and cancels within hours or days;
//     keep the retention far longer (the daemon refuses less than 7 days).
//   - Archive files are appended to by the process that holds the ledger,
//     and a month's file grows again when a session of that month is
//     resolved late. Copy them freely; do not edit, shorten or move the
//     current months' files while the daemon runs. For a moment, and
//     after a crash until the ledger is opened again, the last batch's
//     lines can be in the file while its sessions are still in the
//     ledger.
//   - A compaction needs free disk space for the live part of the file,
//     happens only at Open (the daemon's start), and a failed one (a full
//     disk) leaves the file as it was.
package store
