package store_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/sitelink/sitelink/store"
	"github.com/sitelink/sitelink/store/storetest"
)

// fixtureV1 is a ledger written by the release that kept money as floats
// (schema 1), by testdata/gen_fixture.go.
const fixtureV1 = "testdata/ledger-v1.db"

// copyFixture copies the schema-1 fixture into a fresh temporary file.
func copyFixture(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(fixtureV1)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "sitelink.db")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// rawView reads a closed store file with bbolt alone.
func rawView(t *testing.T, path string, fn func(*bolt.Tx) error) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.View(fn); err != nil {
		t.Fatal(err)
	}
}

func rawSchema(t *testing.T, path string) uint64 {
	t.Helper()
	var v uint64
	rawView(t, path, func(tx *bolt.Tx) error {
		v = binary.BigEndian.Uint64(tx.Bucket([]byte("meta")).Get([]byte("schema_version")))
		return nil
	})
	return v
}

// rawBuckets copies every key and value of the named buckets.
func rawBuckets(t *testing.T, path string, names ...string) map[string]string {
	t.Helper()
	out := map[string]string{}
	rawView(t, path, func(tx *bolt.Tx) error {
		for _, n := range names {
			err := tx.Bucket([]byte(n)).ForEach(func(k, v []byte) error {
				out[n+"/"+string(k)] = string(v)
				return nil
			})
			if err != nil {
				return err
			}
		}
		return nil
	})
	return out
}

func fileHash(t *testing.T, path string) [32]byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return sha256.Sum256(b)
}

// logLines captures a store's log.
type logLines struct{ bytes.Buffer }

func (l *logLines) logger() *slog.Logger { return slog.New(slog.NewTextHandler(&l.Buffer, nil)) }

func TestMigrateFixture(t *testing.T) {
	type money struct {
		dp                 int
		authorized, amount int64
		price, fee         int64 // -1: no tariff
	}
	want := map[string]money{
		"s1-settled":    {2, 1500, 59, 390000, 0},
		"s2-authorized": {2, 100, 0, 390000, 0},
		"s3-cancelled":  {2, 2000, 0, 390000, 0},
		"s4-charging":   {2, 1250, 0, 390000, 0},
		"s5-kwd":        {3, 5125, 1338, 337000, 922000},
		"s6-jpy":        {0, 3000, 0, 45_000_000, 100_000_000},
		"s7-requested":  {-1, 2000, 0, -1, -1}, // no tariff: legacy decimal places (2)
	}
	path := copyFixture(t)
	if v := rawSchema(t, path); v != 1 {
		t.Fatalf("fixture has schema %d, want 1", v)
	}
	untouched := rawBuckets(t, path, "outbox", "inbox", "session_nayax", "session_station", "session_time", "session_open")
	if n := rawKeyCounts(t, path)["inbox_time"]; n == 0 {
		t.Fatal("fixture has no inbox time index to drop")
	}
	var cardKey []byte
	rawView(t, path, func(tx *bolt.Tx) error {
		cardKey = bytes.Clone(tx.Bucket([]byte("meta")).Get([]byte("card_key")))
		return nil
	})

	var log logLines
	s, err := store.Open(path, store.Options{Logger: log.logger(), InboxTTL: 100 * 365 * 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprintf("from=1 to=%d sessions=7", store.SchemaVersion); strings.Count(log.String(), "store migrated") != 1 || !strings.Contains(log.String(), want) {
		t.Errorf("log has not one migration line with %s:\n%s", want, log.String())
	}
	got := map[string]store.Session{}
	view(t, s, func(tx *store.Tx) error {
		return tx.Sessions(0, func(ss store.Session) bool {
			got[ss.SparkTransactionID] = ss
			return true
		})
	})
	if len(got) != len(want) {
		t.Errorf("%d sessions after migration, want %d", len(got), len(want))
	}
	for id, w := range want {
		ss, ok := got[id]
		if !ok {
			t.Errorf("session %s lost", id)
			continue
		}
		if ss.AuthorizedMinor != w.authorized || ss.AmountMinor != w.amount {
			t.Errorf("%s: authorized %d amount %d, want %d %d", id, ss.AuthorizedMinor, ss.AmountMinor, w.authorized, w.amount)
		}
		switch {
		case w.price < 0 && ss.Tariff != nil:
			t.Errorf("%s: tariff %+v appeared", id, *ss.Tariff)
		case w.price >= 0 && ss.Tariff == nil:
			t.Errorf("%s: tariff lost", id)
		case w.price >= 0 && (ss.Tariff.DecimalPlace != w.dp || ss.Tariff.PricePerKWhMicro != w.price || ss.Tariff.SessionFeeMicro != w.fee):
			t.Errorf("%s: tariff %+v, want decimal_place %d price %d fee %d", id, *ss.Tariff, w.dp, w.price, w.fee)
		}
	}
	// What is not money is unchanged.
	if p := got["s1-settled"].Payment; p == nil || p.Amount != "0.59" || p.AuthCode != "033333" {
		t.Errorf("payment record %+v", p)
	}
	if r := got["s5-kwd"].Request; r == nil || !strings.Contains(string(r.Body), `"Amount":1.338`) || r.EventIDs[0] != "site-0042-2" {
		t.Errorf("pending request %+v", r)
	}
	if r := got["s7-requested"].Request; r == nil || r.Kind != "start" {
		t.Errorf("pending trigger %+v", r)
	}
	if s1 := got["s1-settled"]; s1.EnergyWh != 1500 || s1.State != store.Settled || len(s1.History) != 2 || s1.SiteID != "2" {
		t.Errorf("s1 = %+v", s1)
	}
	view(t, s, func(tx *store.Tx) error {
		e, err := tx.Inbox("cmd-2")
		if err != nil || e.Type != "stop" {
			t.Errorf("inbox cmd-2 = %+v, %v", e, err)
		}
		if k := tx.CardKey(); !bytes.Equal(k, cardKey) {
			t.Error("card key changed")
		}
		return nil
	})
	if n, err := s.OutboxLen(); err != nil || n != 3 {
		t.Errorf("outbox len %d, %v; want 3", n, err)
	}
	if e, err := s.Epoch(); err != nil || e != 1 {
		t.Errorf("epoch %d, %v; want 1", e, err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	storetest.Check(t, path)
	if v := rawSchema(t, path); v != store.SchemaVersion {
		t.Errorf("schema %d after migration, want %d", v, store.SchemaVersion)
	}
	after := rawBuckets(t, path, "outbox", "inbox", "session_nayax", "session_station", "session_time", "session_open")
	if _, ok := rawKeyCounts(t, path)["inbox_time"]; ok {
		t.Error("the inbox time index of schema 3 is still in the file")
	}
	if len(after) != len(untouched) {
		t.Errorf("indexes, outbox or inbox changed size: %d keys, was %d", len(after), len(untouched))
	}
	for k, v := range untouched {
		if after[k] != v {
			t.Errorf("%q changed by the migration", k)
		}
	}
	sessions := rawBuckets(t, path, "sessions", "sessions_live")
	for k, v := range sessions {
		// Schema 5: a session not final has its record in sessions_live.
		var rec struct{ State store.State }
		if err := json.Unmarshal([]byte(v), &rec); err != nil {
			t.Fatalf("%s: %v", k, err)
		}
		if live := strings.HasPrefix(k, "sessions_live/"); live == rec.State.Final() {
			t.Errorf("%s is %s", k, rec.State)
		}
	}
	if n := rawKeyCounts(t, path)["sessions_live"]; n == 0 || n != rawKeyCounts(t, path)["session_open"] {
		t.Errorf("sessions_live holds %d records, want the open index's %d", n, rawKeyCounts(t, path)["session_open"])
	}
	for k, v := range sessions {
		if strings.Contains(v, `"authorized_amount"`) || strings.Contains(v, `"price_per_kwh"`) {
			t.Errorf("%s still holds float money: %s", k, v)
		}
	}

	// Reopening is a no-op: no migration, not a byte of a session changed.
	log.Reset()
	s, err = store.Open(path, store.Options{Logger: log.logger()})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(log.String(), "store migrated") {
		t.Errorf("second open migrated again:\n%s", log.String())
	}
	again := rawBuckets(t, path, "sessions", "sessions_live")
	for k, v := range sessions {
		if again[k] != v {
			t.Errorf("%s changed on reopen", k)
		}
	}
}

// TestMigrateLegacyDecimalPlace: a session recorded without a tariff
// takes the decimal places the daemon passes (its configured tariff's).
func TestMigrateLegacyDecimalPlace(t *testing.T) {
	for dp, want := range map[int]int64{0: 20, 2: 2000, 3: 20000} {
		path := copyFixture(t)
		s, err := store.Open(path, store.Options{LegacyDecimalPlace: &dp})
		if err != nil {
			t.Fatal(err)
		}
		view(t, s, func(tx *store.Tx) error {
			ss, err := tx.Session("s7-requested")
			if err == nil && ss.AuthorizedMinor != want {
				t.Errorf("decimal place %d: authorized %d, want %d", dp, ss.AuthorizedMinor, want)
			}
			return err
		})
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// TestMigrateFailsUntouched: a migration that cannot convert every session
// fails Open and leaves the file exactly as the old release wrote it.
func TestMigrateFailsUntouched(t *testing.T) {
	tests := []struct {
		name  string
		id    string
		value func(old []byte) []byte
		want  string // in the error
	}{
		{"not JSON", "s3-cancelled", func([]byte) []byte { return []byte("{garbage") }, "s3-cancelled"},
		{"authorized amount finer than the currency", "s2-authorized", func(old []byte) []byte {
			return bytes.Replace(old, []byte(`"authorized_amount":1`), []byte(`"authorized_amount":0.995`), 1)
		}, "authorized_amount 0.995"},
		{"price finer than a millionth", "s1-settled", func(old []byte) []byte {
			return bytes.Replace(old, []byte(`"price_per_kwh":0.39`), []byte(`"price_per_kwh":0.3900001`), 1)
		}, "price_per_kwh 0.3900001"},
		{"negative amount", "s1-settled", func(old []byte) []byte {
			return bytes.Replace(old, []byte(`"amount":0.59`), []byte(`"amount":-0.59`), 1)
		}, "amount -0.59"},
		{"amount not a number", "s4-charging", func(old []byte) []byte {
			return bytes.Replace(old, []byte(`"authorized_amount":12.5`), []byte(`"authorized_amount":"12.5"`), 1)
		}, "s4-charging"},
		{"decimal place out of range", "s6-jpy", func(old []byte) []byte {
			return bytes.Replace(old, []byte(`"decimal_place":0`), []byte(`"decimal_place":9`), 1)
		}, "decimal_place 9"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := copyFixture(t)
			rawUpdate(t, path, func(tx *bolt.Tx) error {
				b := tx.Bucket([]byte("sessions"))
				old := b.Get([]byte(tc.id))
				nv := tc.value(bytes.Clone(old))
				if bytes.Equal(nv, old) {
					t.Fatalf("the corruption changed nothing in %s", old)
				}
				return b.Put([]byte(tc.id), nv)
			})
			before := fileHash(t, path)
			s, err := store.Open(path, store.Options{})
			if err == nil {
				_ = s.Close()
				t.Fatal("opened a ledger whose migration must fail")
			}
			if !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), fmt.Sprintf("migrate schema 1 to %d", store.SchemaVersion)) {
				t.Errorf("error %q does not say %q and what failed", err, tc.want)
			}
			if fileHash(t, path) != before {
				t.Error("the failed migration changed the file")
			}
			if v := rawSchema(t, path); v != 1 {
				t.Errorf("schema %d after a failed migration, want 1", v)
			}
		})
	}
}

// TestMigrateNewerRefused: a file newer than this sitelink is still
// refused, not migrated, and left alone.
func TestMigrateNewerRefused(t *testing.T) {
	path := copyFixture(t)
	rawUpdate(t, path, func(tx *bolt.Tx) error {
		return tx.Bucket([]byte("meta")).Put([]byte("schema_version"), binary.BigEndian.AppendUint64(nil, store.SchemaVersion+1))
	})
	before := fileHash(t, path)
	_, err := store.Open(path, store.Options{})
	if !errors.Is(err, store.ErrSchemaTooNew) {
		t.Fatalf("err = %v, want ErrSchemaTooNew", err)
	}
	if fileHash(t, path) != before {
		t.Error("a refused file was changed")
	}
}
