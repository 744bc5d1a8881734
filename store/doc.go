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
//	                 outbox_len and inbox_len (counters), card_key
//	sessions         SparkTransactionID -> Session as JSON
//	session_nayax    NayaxTransactionID (8 bytes, big-endian) -> SparkTransactionID
//	session_station  len(station) | station | created | SparkTransactionID -> empty
//	session_time     created | SparkTransactionID -> empty
//	session_open     SparkTransactionID -> state NUL station, for sessions not
//	                 yet settled, cancelled, declined or closed
//	outbox           seq (8 bytes, big-endian) -> compact binary record
//	inbox            command id -> compact binary record
//	inbox_time       at | command id -> empty
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
// OutboxAfter and deletes what the broker acknowledged with OutboxDelete,
// one commit per batch rather than per event, because a commit costs about
// a quarter of a millisecond of fsync.
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
// testdata/gen_fixture.go with that release.
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
package store
