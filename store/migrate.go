package store

import (
	"encoding/json"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// schemaFloatMoney is the schema that kept amounts and prices as float64
// main units (authorized_amount, amount; tariff price_per_kwh,
// session_fee). testdata/ledger-v1.db is a file of that schema.
const schemaFloatMoney = 1

// DefaultLegacyDecimalPlace is the decimal places assumed for a schema-1
// session without a tariff when Options.LegacyDecimalPlace is nil.
const DefaultLegacyDecimalPlace = 2

// migrate brings a file of schema from up to SchemaVersion inside tx, the
// same transaction that opens it: either every record is rewritten and
// the version bumped, or (on any error) nothing is, and the file is left
// as the older sitelink wrote it. It returns the number of sessions
// rewritten.
func migrate(tx *bolt.Tx, from uint64, legacyDP int) (int, error) {
	var n int
	switch from {
	case schemaFloatMoney:
		var err error
		if n, err = migrateFloatMoney(tx, legacyDP); err != nil {
			return 0, fmt.Errorf("migrate schema %d to %d: %w", from, SchemaVersion, err)
		}
		fallthrough
	case schemaIntegerMoney:
		if err := migrateCounts(tx); err != nil {
			return 0, fmt.Errorf("migrate schema %d to %d: %w", from, SchemaVersion, err)
		}
		fallthrough
	case schemaInboxTimeIndex:
		if err := migrateInboxTime(tx); err != nil {
			return 0, fmt.Errorf("migrate schema %d to %d: %w", from, SchemaVersion, err)
		}
		fallthrough
	case schemaOneRecordBucket:
		if err := migrateLive(tx); err != nil {
			return 0, fmt.Errorf("migrate schema %d to %d: %w", from, SchemaVersion, err)
		}
	default:
		return 0, fmt.Errorf("no migration from schema %d to %d", from, SchemaVersion)
	}
	return n, nil
}

// schemaIntegerMoney is the schema before the sessions were counted by
// state (every count was a scan of the ledger).
const schemaIntegerMoney = 2

// migrateCounts counts the sessions by state once, for PutSession to keep
// up to date from then on.
func migrateCounts(tx *bolt.Tx) error {
	counts, err := scanCounts(tx)
	if err != nil {
		return err
	}
	b, err := tx.CreateBucketIfNotExists(bucketSessionCounts)
	if err != nil {
		return err
	}
	for st, n := range counts {
		if err := putU64(b, []byte(st), uint64(n)); err != nil {
			return err
		}
	}
	return nil
}

// floatMoney is what schema 1 stored about money, each number as the
// JSON text Go's encoder wrote for the float64 (its shortest decimal, so
// 0.59 reads back as "0.59", not as the double nearest to it).
type floatMoney struct {
	AuthorizedAmount json.RawMessage `json:"authorized_amount"`
	Amount           json.RawMessage `json:"amount"`
	Tariff           *struct {
		DecimalPlace *int            `json:"decimal_place"`
		PricePerKWh  json.RawMessage `json:"price_per_kwh"`
		SessionFee   json.RawMessage `json:"session_fee"`
	} `json:"tariff"`
}

// migrateFloatMoney rewrites every session's money as integers: amounts in
// minor units of the session's decimal places (its tariff's, or legacyDP
// for a session recorded without one), prices in millionths. The float
// fields are dropped. A record that does not decode, or an amount or price
// the integers cannot hold exactly, fails the whole migration: rounding
// money silently while upgrading is worse than refusing to start.
func migrateFloatMoney(tx *bolt.Tx, legacyDP int) (int, error) {
	b := tx.Bucket(bucketSessions)
	if b == nil {
		return 0, nil
	}
	type rec struct{ key, val []byte }
	var out []rec
	err := b.ForEach(func(k, v []byte) error {
		s, err := decodeSession(v)
		if err != nil {
			return fmt.Errorf("session %q: %w", k, err)
		}
		var old floatMoney
		if err := json.Unmarshal(v, &old); err != nil {
			return fmt.Errorf("session %q: %w: %w", k, errCorrupt, err)
		}
		if err := s.setIntegerMoney(old, legacyDP); err != nil {
			return fmt.Errorf("session %q: %w", k, err)
		}
		nv, err := encodeSession(&s)
		if err != nil {
			return fmt.Errorf("session %q: %w", k, err)
		}
		out = append(out, rec{append([]byte(nil), k...), nv})
		return nil
	})
	if err != nil {
		return 0, err
	}
	// Written after the scan: bbolt forbids changing a bucket under
	// ForEach. Keys are unchanged, so no index moves.
	for _, r := range out {
		if err := b.Put(r.key, r.val); err != nil {
			return 0, fmt.Errorf("session %q: %w", r.key, err)
		}
	}
	return len(out), nil
}

// setIntegerMoney fills the integer money fields of s from its schema-1
// floats.
func (s *Session) setIntegerMoney(old floatMoney, legacyDP int) error {
	dp := legacyDP
	if old.Tariff != nil {
		if old.Tariff.DecimalPlace == nil {
			return fmt.Errorf("tariff without decimal_place: %w", errCorrupt)
		}
		dp = *old.Tariff.DecimalPlace
		if dp < 0 || dp > MaxDecimalPlace {
			return fmt.Errorf("tariff decimal_place %d: %w", dp, errCorrupt)
		}
		var err error
		if s.Tariff.PricePerKWhMicro, err = legacyNumber("tariff price_per_kwh", old.Tariff.PricePerKWh, PriceDecimals); err != nil {
			return err
		}
		if s.Tariff.SessionFeeMicro, err = legacyNumber("tariff session_fee", old.Tariff.SessionFee, PriceDecimals); err != nil {
			return err
		}
	}
	var err error
	if s.AuthorizedMinor, err = legacyNumber("authorized_amount", old.AuthorizedAmount, dp); err != nil {
		return err
	}
	if s.AmountMinor, err = legacyNumber("amount", old.Amount, dp); err != nil {
		return err
	}
	return nil
}

// legacyNumber is a schema-1 number scaled to places decimals; an absent
// field (encoding/json always wrote them, but a hand-edited file may lack
// one) is 0.
func legacyNumber(field string, raw json.RawMessage, places int) (int64, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return 0, nil
	}
	v, err := ParseDecimal(string(raw), places, MaxScaled)
	if err != nil {
		return 0, fmt.Errorf("%s %s at %d decimals: %w", field, raw, places, err)
	}
	return v, nil
}

// schemaInboxTimeIndex is the schema whose inbox had a time index in the
// file (bucket inbox_time: time key | command id -> empty).
const schemaInboxTimeIndex = 3

// migrateInboxTime drops the inbox's time index: Open builds it in memory
// from the inbox records, which carry their time.
func migrateInboxTime(tx *bolt.Tx) error {
	if tx.Bucket([]byte("inbox_time")) == nil {
		return nil
	}
	return tx.DeleteBucket([]byte("inbox_time"))
}

// schemaOneRecordBucket is the schema that kept every session's record in
// bucket sessions, final or not.
const schemaOneRecordBucket = 4

// migrateLive moves the records of the sessions in the open index (every
// session not final) to bucketSessionsLive. It reads the index, not the
// history: an upgrade costs what the site's open sessions cost.
func migrateLive(tx *bolt.Tx) error {
	live, err := tx.CreateBucketIfNotExists(bucketSessionsLive)
	if err != nil {
		return err
	}
	open, final := tx.Bucket(bucketSessionOpen), tx.Bucket(bucketSessions)
	if open == nil || final == nil {
		return nil
	}
	var ids [][]byte
	if err := open.ForEach(func(k, _ []byte) error { ids = append(ids, k); return nil }); err != nil {
		return err
	}
	for _, id := range ids {
		v := final.Get(id)
		if v == nil {
			continue // the index names a session the ledger lacks: reads say not found, as before
		}
		if err := live.Put(id, v); err != nil {
			return err
		}
		if err := final.Delete(id); err != nil {
			return err
		}
	}
	return nil
}
