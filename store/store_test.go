package store_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/sitelink/sitelink/store"
	"github.com/sitelink/sitelink/store/storetest"
)

var t0 = time.Date(2025, 3, 14, 9, 26, 53, 589793000, time.UTC)

func update(t testing.TB, s *store.Store, fn func(*store.Tx) error) {
	t.Helper()
	if err := s.Update(fn); err != nil {
		t.Fatalf("update: %v", err)
	}
}

func view(t testing.TB, s *store.Store, fn func(*store.Tx) error) {
	t.Helper()
	if err := s.View(fn); err != nil {
		t.Fatalf("view: %v", err)
	}
}

func put(t testing.TB, s *store.Store, ss ...store.Session) {
	t.Helper()
	update(t, s, func(tx *store.Tx) error {
		for i := range ss {
			if err := tx.PutSession(&ss[i]); err != nil {
				return err
			}
		}
		return nil
	})
}

func sess(id, station string, st store.State, created time.Time, nayax int64) store.Session {
	return store.Session{
		SparkTransactionID: id, Station: station, State: st,
		CreatedAt: created, UpdatedAt: created, NayaxTransactionID: nayax,
	}
}

func ids(ss []store.Session) []string {
	out := []string{}
	for _, s := range ss {
		out = append(out, s.SparkTransactionID)
	}
	return out
}

// rawKeyCounts closes nothing: the caller must have closed the store. It
// returns the number of keys per bucket, to catch stale index entries.
func rawKeyCounts(t *testing.T, path string) map[string]int {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	counts := map[string]int{}
	err = db.View(func(tx *bolt.Tx) error {
		return tx.ForEach(func(name []byte, b *bolt.Bucket) error {
			counts[string(name)] = b.Stats().KeyN
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	return counts
}

// rawUpdate edits a closed store file directly.
func rawUpdate(t *testing.T, path string, fn func(*bolt.Tx) error) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second, NoFreelistSync: true, FreelistType: bolt.FreelistMapType})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Update(fn); err != nil {
		t.Fatal(err)
	}
}

func TestSessionRoundTrip(t *testing.T) {
	full := store.Session{
		SparkTransactionID: "7f9c2ba4-e88f-4f2e-9c0b-4b1f2c3d4e5f",
		NayaxTransactionID: math.MaxInt64,
		Station:            "bay-1",
		State:              store.Charging,
		Origin:             "external",
		MachineID:          942488473,
		HwSerial:           "0434324119376526",
		SiteID:             "12",
		MachineAuTime:      "20250314092653589",
		CardDigest:         "c0ffee",
		CardLast4:          "4242",
		AuthorizedMinor:    5000,
		AmountMinor:        1234,
		MeterStartWh:       123456.5,
		EnergyWh:           7890.25,
		StopReason:         "unplugged",
		CreatedAt:          t0,
		UpdatedAt:          t0.Add(time.Minute),
		History: []store.Transition{
			{State: store.Requested, At: t0},
			{State: store.Authorized, At: t0.Add(time.Second), Reason: "approved"},
		},
	}
	tests := []struct {
		name string
		s    store.Session
	}{
		{"all fields, max int64 nayax id", full},
		{"minimal", sess("a", "bay-2", store.Requested, t0, 0)},
		{"negative nayax id", sess("b", "bay-3", store.Authorized, t0, -7)},
		{"large nayax id beyond float64 precision", sess("c", "bay-4", store.Authorized, t0, 236584335969834433)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := storetest.Open(t)
			put(t, s, tt.s)
			view(t, s, func(tx *store.Tx) error {
				got, err := tx.Session(tt.s.SparkTransactionID)
				if err != nil {
					t.Fatal(err)
				}
				if !reflect.DeepEqual(got, tt.s) {
					t.Errorf("Session:\n got %+v\nwant %+v", got, tt.s)
				}
				if tt.s.NayaxTransactionID != 0 {
					got, err := tx.SessionByNayax(tt.s.NayaxTransactionID)
					if err != nil {
						t.Fatal(err)
					}
					if got.SparkTransactionID != tt.s.SparkTransactionID {
						t.Errorf("SessionByNayax = %q", got.SparkTransactionID)
					}
				}
				if _, err := tx.SessionByNayax(1); !errors.Is(err, store.ErrNotFound) {
					t.Errorf("SessionByNayax(unknown) err = %v, want ErrNotFound", err)
				}
				if _, err := tx.Session("nope"); !errors.Is(err, store.ErrNotFound) {
					t.Errorf("Session(unknown) err = %v, want ErrNotFound", err)
				}
				return nil
			})
		})
	}
}

func TestPutSessionRejects(t *testing.T) {
	tests := []struct {
		name string
		s    *store.Session
		want error
	}{
		{"nil", nil, store.ErrInvalid},
		{"no id", &store.Session{Station: "bay-1"}, store.ErrInvalid},
		{"no station", &store.Session{SparkTransactionID: "a"}, store.ErrInvalid},
		{"huge station", &store.Session{SparkTransactionID: "a", Station: strings.Repeat("x", 5000)}, store.ErrInvalid},
		{"nayax id of another session", &store.Session{SparkTransactionID: "b", Station: "bay-2", NayaxTransactionID: 42}, store.ErrConflict},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := storetest.Open(t)
			put(t, s, sess("a", "bay-1", store.Authorized, t0, 42))
			err := s.Update(func(tx *store.Tx) error { return tx.PutSession(tt.s) })
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			view(t, s, func(tx *store.Tx) error {
				got, err := tx.SessionByNayax(42)
				if err != nil || got.SparkTransactionID != "a" {
					t.Errorf("nayax index changed: %v %v", got.SparkTransactionID, err)
				}
				return nil
			})
		})
	}
}

func TestPutSessionSetsZeroCreatedAt(t *testing.T) {
	s := storetest.Open(t)
	x := store.Session{SparkTransactionID: "a", Station: "bay-1", State: store.Requested}
	before := time.Now()
	put(t, s, x)
	view(t, s, func(tx *store.Tx) error {
		got, err := tx.Session("a")
		if err != nil {
			t.Fatal(err)
		}
		if got.CreatedAt.Before(before) {
			t.Errorf("CreatedAt = %v, want >= %v", got.CreatedAt, before)
		}
		return nil
	})
}

func TestSessionQueries(t *testing.T) {
	s := storetest.Open(t)
	put(t, s,
		sess("s1", "bay-1", store.Settled, t0, 101),
		sess("s2", "bay-1", store.Charging, t0.Add(2*time.Hour), 102),
		sess("s3", "bay-2", store.Interrupted, t0.Add(time.Hour), 0),
		sess("s4", "bay-2", store.Cancelled, t0.Add(3*time.Hour), 104),
		sess("s5", "bay-3", store.Settling, t0.Add(4*time.Hour), 105),
		sess("s6", "bay-10", store.Requested, t0.Add(5*time.Hour), 0),
		sess("s7", "bay-1", store.Stopped, t0.Add(30*time.Minute), 107),
		sess("s0", "bay-1", store.Closed, t0.Add(-time.Hour), 0),
	)
	all := func(limit int, stopAt string) func(*store.Tx) ([]string, error) {
		return func(tx *store.Tx) ([]string, error) {
			var got []string
			err := tx.Sessions(limit, func(s store.Session) bool {
				got = append(got, s.SparkTransactionID)
				return s.SparkTransactionID != stopAt
			})
			return got, err
		}
	}
	byStation := func(st string) func(*store.Tx) ([]string, error) {
		return func(tx *store.Tx) ([]string, error) {
			ss, err := tx.SessionsByStation(st)
			return ids(ss), err
		}
	}
	active := func(st string) func(*store.Tx) ([]string, error) {
		return func(tx *store.Tx) ([]string, error) {
			s, err := tx.ActiveSession(st)
			if errors.Is(err, store.ErrNotFound) {
				return []string{}, nil
			}
			return []string{s.SparkTransactionID}, err
		}
	}
	tests := []struct {
		name string
		q    func(*store.Tx) ([]string, error)
		want []string
	}{
		{"Sessions all newest first", all(0, ""), []string{"s6", "s5", "s4", "s2", "s3", "s7", "s1", "s0"}},
		{"Sessions limit", all(3, ""), []string{"s6", "s5", "s4"}},
		{"Sessions fn stops", all(0, "s4"), []string{"s6", "s5", "s4"}},
		{"by station bay-1", byStation("bay-1"), []string{"s2", "s7", "s1", "s0"}},
		{"by station bay-2", byStation("bay-2"), []string{"s4", "s3"}},
		{"by station bay-10 not mixed with bay-1", byStation("bay-10"), []string{"s6"}},
		{"by station unknown", byStation("bay-9"), []string{}},
		{"active bay-1", active("bay-1"), []string{"s2"}},
		{"active bay-2 (interrupted does not hold it)", active("bay-2"), []string{}},
		{"active bay-10", active("bay-10"), []string{"s6"}},
		{"ActiveSessions", func(tx *store.Tx) ([]string, error) {
			ss, err := tx.ActiveSessions()
			return ids(ss), err
		}, []string{"s6", "s2", "s3"}},
		{"OpenSessions", func(tx *store.Tx) ([]string, error) {
			ss, err := tx.OpenSessions()
			return ids(ss), err
		}, []string{"s6", "s5", "s2", "s3", "s7"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			view(t, s, func(tx *store.Tx) error {
				got, err := tt.q(tx)
				if err != nil {
					t.Fatal(err)
				}
				if !reflect.DeepEqual(got, tt.want) {
					t.Errorf("got %v, want %v", got, tt.want)
				}
				return nil
			})
		})
	}
	counts, err := s.Counts()
	if err != nil {
		t.Fatal(err)
	}
	want := map[store.State]int{store.Settled: 1, store.Charging: 1, store.Interrupted: 1, store.Cancelled: 1,
		store.Settling: 1, store.Requested: 1, store.Stopped: 1, store.Closed: 1}
	if !reflect.DeepEqual(counts, want) {
		t.Errorf("Counts = %v, want %v", counts, want)
	}
}

func TestSessionIndexFixups(t *testing.T) {
	base := sess("a", "bay-1", store.Authorized, t0, 0)
	tests := []struct {
		name   string
		update func(s *store.Session)
		check  func(t *testing.T, tx *store.Tx)
	}{
		{"active to settled leaves open index", func(s *store.Session) { s.State = store.Settled }, func(t *testing.T, tx *store.Tx) {
			if _, err := tx.ActiveSession("bay-1"); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("ActiveSession err = %v", err)
			}
			if ss, _ := tx.ActiveSessions(); len(ss) != 0 {
				t.Errorf("ActiveSessions = %v", ids(ss))
			}
		}},
		{"active to interrupted stays open but frees station", func(s *store.Session) { s.State = store.Interrupted }, func(t *testing.T, tx *store.Tx) {
			if _, err := tx.ActiveSession("bay-1"); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("ActiveSession err = %v", err)
			}
			if ss, _ := tx.ActiveSessions(); !reflect.DeepEqual(ids(ss), []string{"a"}) {
				t.Errorf("ActiveSessions = %v", ids(ss))
			}
		}},
		{"nayax id assigned", func(s *store.Session) { s.NayaxTransactionID = math.MaxInt64 }, func(t *testing.T, tx *store.Tx) {
			if got, err := tx.SessionByNayax(math.MaxInt64); err != nil || got.SparkTransactionID != "a" {
				t.Errorf("SessionByNayax = %v, %v", got.SparkTransactionID, err)
			}
		}},
		{"station moved", func(s *store.Session) { s.Station = "bay-2" }, func(t *testing.T, tx *store.Tx) {
			if ss, _ := tx.SessionsByStation("bay-1"); len(ss) != 0 {
				t.Errorf("bay-1 still lists %v", ids(ss))
			}
			if got, err := tx.ActiveSession("bay-2"); err != nil || got.SparkTransactionID != "a" {
				t.Errorf("ActiveSession(bay-2) = %v, %v", got.SparkTransactionID, err)
			}
		}},
		{"created moved", func(s *store.Session) { s.CreatedAt = t0.Add(-48 * time.Hour) }, func(t *testing.T, tx *store.Tx) {
			var got []time.Time
			_ = tx.Sessions(0, func(s store.Session) bool { got = append(got, s.CreatedAt); return true })
			if len(got) != 1 || !got[0].Equal(t0.Add(-48*time.Hour)) {
				t.Errorf("Sessions = %v", got)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "sitelink.db")
			s := storetest.OpenPath(t, path)
			first := base
			first.NayaxTransactionID = 7
			put(t, s, first)
			next := first
			next.NayaxTransactionID = 0 // the update below may set it
			tt.update(&next)
			put(t, s, next)
			view(t, s, func(tx *store.Tx) error {
				if _, err := tx.SessionByNayax(7); next.NayaxTransactionID != 7 && !errors.Is(err, store.ErrNotFound) {
					t.Errorf("old nayax id still indexed: %v", err)
				}
				tt.check(t, tx)
				return nil
			})
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			counts := rawKeyCounts(t, path)
			open := 1
			if next.State == store.Settled {
				open = 0
			}
			nayax := 0
			if next.NayaxTransactionID != 0 {
				nayax = 1
			}
			want := map[string]int{"sessions": 1 - open, "sessions_live": open, "session_station": 1, "session_time": 1, "session_open": open, "session_nayax": nayax}
			for b, n := range want {
				if counts[b] != n {
					t.Errorf("bucket %s has %d keys, want %d", b, counts[b], n)
				}
			}
		})
	}
}

func enqueue(t testing.TB, s *store.Store, n int) []store.OutboxEntry {
	t.Helper()
	var out []store.OutboxEntry
	update(t, s, func(tx *store.Tx) error {
		for i := 0; i < n; i++ {
			e, err := tx.Enqueue("edge-1", "session", t0.Add(time.Duration(i)*time.Second), func(seq uint64, id string) ([]byte, error) {
				return fmt.Appendf(nil, `{"id":%q,"seq":%d}`, id, seq), nil
			})
			if err != nil {
				return err
			}
			out = append(out, e)
		}
		return nil
	})
	return out
}

func seqs(es []store.OutboxEntry) []uint64 {
	out := []uint64{}
	for _, e := range es {
		out = append(out, e.Seq)
	}
	return out
}

func TestOutbox(t *testing.T) {
	s := storetest.Open(t)
	got := enqueue(t, s, 5)
	for i, e := range got {
		seq := uint64(i + 1)
		wantID := fmt.Sprintf("edge-1-%d", seq)
		if e.Seq != seq || e.ID != wantID || e.Type != "session" || string(e.Payload) != fmt.Sprintf(`{"id":%q,"seq":%d}`, wantID, seq) {
			t.Errorf("entry %d = %+v (%s)", i, e, e.Payload)
		}
	}
	tests := []struct {
		name  string
		after uint64
		max   int
		want  []uint64
	}{
		{"all", 0, 0, []uint64{1, 2, 3, 4, 5}},
		{"batch", 0, 2, []uint64{1, 2}},
		{"next batch", 2, 2, []uint64{3, 4}},
		{"tail", 4, 256, []uint64{5}},
		{"past end", 5, 256, []uint64{}},
		{"max uint64", math.MaxUint64, 256, []uint64{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			es, err := s.OutboxAfter(tt.after, tt.max)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(seqs(es), tt.want) {
				t.Fatalf("seqs = %v, want %v", seqs(es), tt.want)
			}
			for _, e := range es {
				w := got[e.Seq-1]
				if e.ID != w.ID || !bytes.Equal(e.Payload, w.Payload) || !e.CreatedAt.Equal(w.CreatedAt) || e.Type != w.Type {
					t.Errorf("read %+v, enqueued %+v", e, w)
				}
			}
		})
	}

	if err := s.OutboxAttempted(2, 2, 4, 99); err != nil {
		t.Fatal(err)
	}
	if err := s.OutboxDelete(1, 3, 99); err != nil {
		t.Fatal(err)
	}
	head, err := s.OutboxHead(0)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(seqs(head), []uint64{2, 4, 5}) {
		t.Fatalf("head = %v", seqs(head))
	}
	for _, e := range head {
		want := map[uint64]int{2: 2, 4: 1, 5: 0}[e.Seq]
		if e.Attempts != want || e.Payload != nil || e.ID == "" {
			t.Errorf("head entry %+v: want attempts %d, no payload", e, want)
		}
	}
	if n, err := s.OutboxLen(); err != nil || n != 3 {
		t.Errorf("OutboxLen = %d, %v; want 3", n, err)
	}
	if head, _ := s.OutboxHead(1); !reflect.DeepEqual(seqs(head), []uint64{2}) {
		t.Errorf("OutboxHead(1) = %v", seqs(head))
	}
}

func TestEnqueueBuildErrorWritesNothing(t *testing.T) {
	s := storetest.Open(t)
	boom := errors.New("boom")
	var seen uint64
	err := s.Update(func(tx *store.Tx) error {
		_, err := tx.Enqueue("edge-1", "session", t0, func(seq uint64, _ string) ([]byte, error) {
			seen = seq
			return nil, boom
		})
		if !errors.Is(err, boom) {
			t.Errorf("Enqueue err = %v, want boom", err)
		}
		return nil // commit anyway: the failed Enqueue must have left no trace
	})
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := s.OutboxLen(); n != 0 {
		t.Errorf("OutboxLen = %d", n)
	}
	if got := enqueue(t, s, 1); got[0].Seq != seen {
		t.Errorf("seq after failed build = %d, want %d (reused, nothing was published)", got[0].Seq, seen)
	}
}

func TestOutboxSeqNeverReused(t *testing.T) {
	tests := []struct {
		name    string
		enq     int
		del     []uint64
		reopen  bool
		wantSeq uint64
	}{
		{"after delete all", 3, []uint64{1, 2, 3}, false, 4},
		{"after delete all and reopen", 3, []uint64{1, 2, 3}, true, 4},
		{"after reopen with entries", 3, []uint64{2}, true, 4},
		{"after deleting the newest", 3, []uint64{3}, true, 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "sitelink.db")
			s := storetest.OpenPath(t, path)
			enqueue(t, s, tt.enq)
			if err := s.OutboxDelete(tt.del...); err != nil {
				t.Fatal(err)
			}
			if tt.reopen {
				if err := s.Close(); err != nil {
					t.Fatal(err)
				}
				s = storetest.OpenPath(t, path)
			}
			if got := enqueue(t, s, 1); got[0].Seq != tt.wantSeq || got[0].ID != fmt.Sprintf("edge-1-%d", tt.wantSeq) {
				t.Errorf("next entry %d %q, want seq %d", got[0].Seq, got[0].ID, tt.wantSeq)
			}
			if n, _ := s.OutboxLen(); n != tt.enq-len(tt.del)+1 {
				t.Errorf("OutboxLen = %d, want %d", n, tt.enq-len(tt.del)+1)
			}
		})
	}
}

// TestOutboxCountersAtCommit: Enqueue keeps the sequence and the length
// in the transaction and writes them once at commit; a rolled-back
// transaction leaves both as they were, and a delete in the same
// transaction as new entries counts right.
func TestOutboxCountersAtCommit(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sitelink.db")
	s := storetest.OpenPath(t, path)
	enqueue(t, s, 3)
	boom := errors.New("boom")
	err := s.Update(func(tx *store.Tx) error {
		for range 2 {
			if _, err := tx.Enqueue("edge-1", "session", t0, func(seq uint64, id string) ([]byte, error) { return []byte("{}"), nil }); err != nil {
				return err
			}
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("Update = %v, want boom", err)
	}
	if n, _ := s.OutboxLen(); n != 3 {
		t.Errorf("OutboxLen after a rollback = %d, want 3", n)
	}
	s.OutboxAcked(1, 2)
	got := enqueue(t, s, 2) // deletes 1 and 2 in the same transaction
	if got[0].Seq != 4 || got[1].Seq != 5 {
		t.Errorf("seqs after a rollback = %d, %d; want 4, 5 (nothing was published)", got[0].Seq, got[1].Seq)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = storetest.OpenPath(t, path)
	if n, _ := s.OutboxLen(); n != 3 {
		t.Errorf("OutboxLen after reopen = %d, want 3 (3, 4, 5)", n)
	}
	if head, _ := s.OutboxHead(0); !reflect.DeepEqual(seqs(head), []uint64{3, 4, 5}) {
		t.Errorf("head = %v, want [3 4 5]", seqs(head))
	}
	if got := enqueue(t, s, 1); got[0].Seq != 6 {
		t.Errorf("next seq after reopen = %d, want 6", got[0].Seq)
	}
}

func TestInbox(t *testing.T) {
	now := time.Now()
	tests := []struct {
		name  string
		put   []store.InboxEntry
		id    string
		want  string // reply, "" = ErrNotFound
		check func(t *testing.T, s *store.Store)
	}{
		{"dedupe returns the reply", []store.InboxEntry{{ID: "c1", Type: "stop", At: now, Reply: []byte(`{"ok":1}`)}}, "c1", `{"ok":1}`, nil},
		{"replace keeps latest", []store.InboxEntry{
			{ID: "c1", Type: "stop", At: now.Add(-time.Minute), Reply: []byte("first")},
			{ID: "c1", Type: "stop", At: now, Reply: []byte("second")},
		}, "c1", "second", nil},
		{"unknown", []store.InboxEntry{{ID: "c1", At: now}}, "c2", "", nil},
		{"expired", []store.InboxEntry{{ID: "old", At: now.Add(-73 * time.Hour), Reply: []byte("x")}}, "old", "", nil},
		{"just inside ttl", []store.InboxEntry{{ID: "young", At: now.Add(-71 * time.Hour), Reply: []byte("y")}}, "young", "y", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := storetest.Open(t)
			update(t, s, func(tx *store.Tx) error {
				for _, e := range tt.put {
					if err := tx.PutInbox(e); err != nil {
						return err
					}
				}
				return nil
			})
			view(t, s, func(tx *store.Tx) error {
				e, err := tx.Inbox(tt.id)
				if tt.want == "" {
					if !errors.Is(err, store.ErrNotFound) {
						t.Errorf("err = %v, want ErrNotFound", err)
					}
					return nil
				}
				if err != nil {
					t.Fatal(err)
				}
				if string(e.Reply) != tt.want || e.ID != tt.id {
					t.Errorf("got %+v, want reply %q", e, tt.want)
				}
				return nil
			})
		})
	}
	if err := storetest.Open(t).Update(func(tx *store.Tx) error { return tx.PutInbox(store.InboxEntry{}) }); !errors.Is(err, store.ErrInvalid) {
		t.Errorf("PutInbox without id: %v", err)
	}
}

func TestInboxBounded(t *testing.T) {
	now := time.Now()
	t.Run("max entries", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "sitelink.db")
		s := storetest.OpenPath(t, path, store.Options{InboxMax: 10})
		for i := 0; i < 100; i++ {
			update(t, s, func(tx *store.Tx) error {
				return tx.PutInbox(store.InboxEntry{ID: fmt.Sprint("c", i), At: now.Add(time.Duration(i) * time.Millisecond)})
			})
		}
		view(t, s, func(tx *store.Tx) error {
			for i := 0; i < 100; i++ {
				_, err := tx.Inbox(fmt.Sprint("c", i))
				if kept := i >= 90; kept != (err == nil) {
					t.Errorf("c%d: kept=%v err=%v", i, kept, err)
				}
			}
			return nil
		})
		closeWantInbox(t, s, path, 10)
	})
	t.Run("ttl prune is bounded per put", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "sitelink.db")
		s := storetest.OpenPath(t, path)
		update(t, s, func(tx *store.Tx) error {
			for i := 0; i < 200; i++ {
				if err := tx.PutInbox(store.InboxEntry{ID: fmt.Sprint("c", i), At: now.Add(-time.Hour)}); err != nil {
					return err
				}
			}
			return nil
		})
		_ = s.Close()
		// Reopened with a shorter TTL, all 200 are expired.
		s = storetest.OpenPath(t, path, store.Options{InboxTTL: 30 * time.Minute})
		put := func() {
			update(t, s, func(tx *store.Tx) error { return tx.PutInbox(store.InboxEntry{ID: "new", At: now}) })
		}
		put()
		_ = s.Close()
		if c := rawKeyCounts(t, path); c["inbox"]+c["inbox_recent"] != 200-64+1 {
			t.Errorf("after one put: inbox %d+%d keys; want %d", c["inbox"], c["inbox_recent"], 200-64+1)
		}
		s = storetest.OpenPath(t, path, store.Options{InboxTTL: 30 * time.Minute})
		for i := 0; i < 3; i++ {
			put()
		}
		_ = s.Close()
		if c := rawKeyCounts(t, path); c["inbox"]+c["inbox_recent"] != 1 {
			t.Errorf("after four puts: inbox %d+%d keys; want 1", c["inbox"], c["inbox_recent"])
		}
	})
}

// TestInboxOrder: the inbox's time order lives in memory (schema 4). It
// is rebuilt from the records at Open, pruning takes the oldest first
// within and across transactions, and the ref of a replaced record never
// deletes the newer record.
func TestInboxOrder(t *testing.T) {
	now := time.Now()
	put := func(t *testing.T, s *store.Store, es ...store.InboxEntry) {
		t.Helper()
		update(t, s, func(tx *store.Tx) error {
			for _, e := range es {
				if err := tx.PutInbox(e); err != nil {
					return err
				}
			}
			return nil
		})
	}
	kept := func(t *testing.T, s *store.Store, ids ...string) map[string]string {
		t.Helper()
		out := map[string]string{}
		view(t, s, func(tx *store.Tx) error {
			for _, id := range ids {
				if e, err := tx.Inbox(id); err == nil {
					out[id] = string(e.Reply)
				}
			}
			return nil
		})
		return out
	}
	ids := func(prefix string, n int) []string {
		var out []string
		for i := range n {
			out = append(out, fmt.Sprint(prefix, i))
		}
		return out
	}
	t.Run("bounded within one transaction", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "sitelink.db")
		s := storetest.OpenPath(t, path, store.Options{InboxMax: 10})
		var es []store.InboxEntry
		for i := range 30 {
			es = append(es, store.InboxEntry{ID: fmt.Sprint("c", i), At: now.Add(time.Duration(i) * time.Millisecond)})
		}
		put(t, s, es...)
		got := kept(t, s, ids("c", 30)...)
		for i := range 30 {
			if _, ok := got[fmt.Sprint("c", i)]; ok != (i >= 20) {
				t.Errorf("c%d kept %v, want %v", i, ok, i >= 20)
			}
		}
		put(t, s, store.InboxEntry{ID: "next", At: now.Add(time.Second)}) // the queue went on from there
		got = kept(t, s, append(ids("c", 30), "next")...)
		_, c20 := got["c20"]
		_, next := got["next"]
		if len(got) != 10 || c20 || !next {
			t.Errorf("after one more put: kept %v, want c21..c29 and next", got)
		}
		closeWantInbox(t, s, path, 10)
	})
	t.Run("rebuilt in time order at open", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "sitelink.db")
		s := storetest.OpenPath(t, path)
		for i := range 20 { // put newest first: only the records' times order them
			put(t, s, store.InboxEntry{ID: fmt.Sprint("c", i), At: now.Add(-time.Duration(i) * time.Minute)})
		}
		_ = s.Close()
		s = storetest.OpenPath(t, path, store.Options{InboxMax: 10})
		put(t, s, store.InboxEntry{ID: "new", At: now.Add(time.Minute)})
		got := kept(t, s, append(ids("c", 20), "new")...)
		for i := range 20 {
			if _, ok := got[fmt.Sprint("c", i)]; ok != (i < 9) {
				t.Errorf("c%d kept %v, want %v (the 9 newest and the new one)", i, ok, i < 9)
			}
		}
		if _, ok := got["new"]; !ok {
			t.Error("the new entry was pruned")
		}
	})
	t.Run("replaced record outlives its old ref", func(t *testing.T) {
		s := storetest.OpenPath(t, filepath.Join(t.TempDir(), "sitelink.db"), store.Options{InboxTTL: time.Hour})
		put(t, s, store.InboxEntry{ID: "c1", At: now.Add(-2 * time.Hour), Reply: []byte("old")})
		put(t, s, store.InboxEntry{ID: "c1", At: now, Reply: []byte("new")})
		put(t, s, store.InboxEntry{ID: "c2", At: now, Reply: []byte("two")})
		if got := kept(t, s, "c1", "c2"); got["c1"] != "new" || got["c2"] != "two" {
			t.Errorf("kept %v, want c1=new c2=two", got)
		}
	})
}

// TestMigrateInboxTimeIndex: a schema-3 file's inbox time index is
// dropped, and its inbox still dedupes and is pruned oldest first.
func TestMigrateInboxTimeIndex(t *testing.T) {
	now := time.Now()
	path := filepath.Join(t.TempDir(), "sitelink.db")
	s := storetest.OpenPath(t, path)
	for i := range 5 {
		update(t, s, func(tx *store.Tx) error {
			return tx.PutInbox(store.InboxEntry{ID: fmt.Sprint("c", i), Type: "stop", At: now.Add(time.Duration(i) * time.Second), Reply: []byte("r")})
		})
	}
	_ = s.Close()
	rawUpdate(t, path, func(tx *bolt.Tx) error { // as schema 3 left it
		b, err := tx.CreateBucket([]byte("inbox_time"))
		if err != nil {
			return err
		}
		if err := b.Put([]byte("some time key and id"), nil); err != nil {
			return err
		}
		v := make([]byte, 8)
		v[7] = 3
		return tx.Bucket([]byte("meta")).Put([]byte("schema_version"), v)
	})
	s = storetest.OpenPath(t, path, store.Options{InboxMax: 3})
	view(t, s, func(tx *store.Tx) error {
		if e, err := tx.Inbox("c4"); err != nil || string(e.Reply) != "r" {
			t.Errorf("c4 after migration: %+v, %v", e, err)
		}
		return nil
	})
	update(t, s, func(tx *store.Tx) error {
		return tx.PutInbox(store.InboxEntry{ID: "new", Type: "stop", At: now.Add(time.Minute), Reply: []byte("n")})
	})
	view(t, s, func(tx *store.Tx) error {
		for id, want := range map[string]bool{"c0": false, "c1": false, "c2": false, "c3": true, "c4": true, "new": true} {
			if _, err := tx.Inbox(id); (err == nil) != want {
				t.Errorf("%s kept %v, want %v", id, err == nil, want)
			}
		}
		return nil
	})
	_ = s.Close()
	c := rawKeyCounts(t, path)
	if _, ok := c["inbox_time"]; ok {
		t.Error("inbox_time still in the file")
	}
	if v := rawSchema(t, path); v != store.SchemaVersion {
		t.Errorf("schema %d, want %d", v, store.SchemaVersion)
	}
}

// TestMigrateLiveRecords: schema 4 kept every record in bucket sessions;
// the migration moves those of the open sessions to sessions_live, and
// the ledger reads and counts as before.
func TestMigrateLiveRecords(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sitelink.db")
	s := storetest.OpenPath(t, path)
	put(t, s, sess("charging", "1", store.Charging, t0, 1), sess("settling", "2", store.Settling, t0, 2),
		sess("settled", "3", store.Settled, t0, 3), sess("interrupted", "1", store.Interrupted, t0.Add(-time.Hour), 4))
	counts, err := s.Counts()
	if err != nil {
		t.Fatal(err)
	}
	_ = s.Close()
	rawUpdate(t, path, func(tx *bolt.Tx) error { // as schema 4 left it
		live, final := tx.Bucket([]byte("sessions_live")), tx.Bucket([]byte("sessions"))
		if err := live.ForEach(func(k, v []byte) error { return final.Put(k, v) }); err != nil {
			return err
		}
		if err := tx.DeleteBucket([]byte("sessions_live")); err != nil {
			return err
		}
		return tx.Bucket([]byte("meta")).Put([]byte("schema_version"), binary.BigEndian.AppendUint64(nil, 4))
	})
	if c := rawKeyCounts(t, path); c["sessions"] != 4 {
		t.Fatalf("schema-4 file has %d records in sessions, want 4", c["sessions"])
	}
	s = storetest.OpenPath(t, path)
	view(t, s, func(tx *store.Tx) error {
		open, err := tx.OpenSessions()
		if got := ids(open); err != nil || !slices.Equal(got, []string{"charging", "settling", "interrupted"}) {
			t.Errorf("open sessions after migration: %v, %v", got, err)
		}
		if ss, err := tx.SessionByNayax(3); err != nil || ss.State != store.Settled {
			t.Errorf("settled session after migration: %+v, %v", ss, err)
		}
		return nil
	})
	if got, err := s.Counts(); err != nil || !maps.Equal(got, counts) {
		t.Errorf("counts after migration %v (%v), want %v", got, err, counts)
	}
	// The stop's transitions now move the record out of sessions_live
	// once it is final.
	update(t, s, func(tx *store.Tx) error {
		ss, err := tx.Session("settling")
		if err != nil {
			return err
		}
		ss.State = store.Settled
		return tx.PutSession(&ss)
	})
	_ = s.Close()
	c := rawKeyCounts(t, path)
	if c["sessions_live"] != 2 || c["sessions"] != 2 || c["session_open"] != 2 {
		t.Errorf("after migration and a settlement: %d live, %d final, %d open; want 2, 2, 2", c["sessions_live"], c["sessions"], c["session_open"])
	}
	if v := rawSchema(t, path); v != store.SchemaVersion {
		t.Errorf("schema %d, want %d", v, store.SchemaVersion)
	}
}

// closeWantInbox closes s and checks that its file holds want inbox
// entries.
func closeWantInbox(t *testing.T, s *store.Store, path string, want int) {
	t.Helper()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if c := rawKeyCounts(t, path); c["inbox"]+c["inbox_recent"] != want {
		t.Errorf("inbox %d+%d keys, want %d", c["inbox"], c["inbox_recent"], want)
	}
}

func TestEpochPersists(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sitelink.db")
	s := storetest.OpenPath(t, path)
	if e, err := s.Epoch(); err != nil || e != 0 {
		t.Fatalf("Epoch on new file = %d, %v", e, err)
	}
	for want := int64(1); want <= 2; want++ {
		if e, err := s.NextEpoch(); err != nil || e != want {
			t.Fatalf("NextEpoch = %d, %v; want %d", e, err, want)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = storetest.OpenPath(t, path)
	if e, err := s.Epoch(); err != nil || e != 2 {
		t.Fatalf("Epoch after reopen = %d, %v; want 2", e, err)
	}
	if e, err := s.NextEpoch(); err != nil || e != 3 {
		t.Fatalf("NextEpoch after reopen = %d, %v; want 3", e, err)
	}
}

func TestCardKey(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sitelink.db")
	s := storetest.OpenPath(t, path)
	var k1, k2, other []byte
	view(t, s, func(tx *store.Tx) error { k1 = tx.CardKey(); return nil })
	if len(k1) != 32 || bytes.Equal(k1, make([]byte, 32)) {
		t.Fatalf("CardKey = %x", k1)
	}
	_ = s.Close()
	s = storetest.OpenPath(t, path)
	view(t, s, func(tx *store.Tx) error { k2 = tx.CardKey(); return nil })
	view(t, storetest.Open(t), func(tx *store.Tx) error { other = tx.CardKey(); return nil })
	if !bytes.Equal(k1, k2) {
		t.Errorf("CardKey changed across reopen")
	}
	if bytes.Equal(k1, other) {
		t.Errorf("two stores share a CardKey")
	}
}

func TestOpenErrors(t *testing.T) {
	t.Run("locked", func(t *testing.T) {
		s := storetest.Open(t)
		_, err := store.Open(s.Path(), store.Options{LockTimeout: 50 * time.Millisecond})
		if !errors.Is(err, store.ErrLocked) {
			t.Fatalf("err = %v, want ErrLocked", err)
		}
		if msg := err.Error(); !strings.Contains(msg, s.Path()) || !strings.Contains(msg, "another sitelink") {
			t.Errorf("message %q lacks the path or the hint", msg)
		}
	})
	schema := func(v uint64) func(t *testing.T) error {
		return func(t *testing.T) error {
			path := filepath.Join(t.TempDir(), "sitelink.db")
			s := storetest.OpenPath(t, path)
			_ = s.Close()
			rawUpdate(t, path, func(tx *bolt.Tx) error {
				return tx.Bucket([]byte("meta")).Put([]byte("schema_version"), binary.BigEndian.AppendUint64(nil, v))
			})
			s, err := store.Open(path, store.Options{})
			if err == nil {
				_ = s.Close()
			}
			return err
		}
	}
	tests := []struct {
		name string
		open func(t *testing.T) error
		want error
	}{
		{"schema too new", schema(store.SchemaVersion + 1), store.ErrSchemaTooNew},
		{"schema current", schema(store.SchemaVersion), nil},
		{"not a bbolt file", func(t *testing.T) error {
			path := filepath.Join(t.TempDir(), "sitelink.db")
			if err := os.WriteFile(path, bytes.Repeat([]byte("garbage!"), 1024), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := store.Open(path, store.Options{})
			if err == nil {
				t.Error("opened garbage")
			}
			return nil
		}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.open(t); !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestOpenCreatesFileAndDir(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state", "sub", "sitelink.db")
	storetest.OpenPath(t, path)
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("file mode %v, want 0600", fi.Mode().Perm())
	}
	di, err := os.Stat(filepath.Dir(path))
	if err != nil {
		t.Fatal(err)
	}
	if di.Mode().Perm()&0o007 != 0 {
		t.Errorf("dir mode %v is open to others", di.Mode().Perm())
	}
}

func TestClosed(t *testing.T) {
	s := storetest.Open(t)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close = %v", err)
	}
	checks := map[string]error{
		"Update":       s.Update(func(*store.Tx) error { return nil }),
		"View":         s.View(func(*store.Tx) error { return nil }),
		"OutboxDelete": s.OutboxDelete(1),
	}
	_, checks["OutboxLen"] = s.OutboxLen()
	_, checks["NextEpoch"] = s.NextEpoch()
	_, checks["OutboxAfter"] = s.OutboxAfter(0, 1)
	for name, err := range checks {
		if !errors.Is(err, store.ErrClosed) {
			t.Errorf("%s after Close: %v, want ErrClosed", name, err)
		}
	}
}

func TestCorruptSession(t *testing.T) {
	tests := []struct {
		name string
		val  []byte
	}{
		{"empty", []byte{}},
		{"truncated json", []byte(`{"spark_transaction_id":"bad","sta`)},
		{"null", []byte("null")},
		{"binary", []byte{0, 0xff, 0xfe, 1}},
		{"wrong types", []byte(`{"spark_transaction_id":"bad","nayax_transaction_id":"x"}`)},
		{"no id", []byte(`{"station":"bay-1"}`)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "sitelink.db")
			s := storetest.OpenPath(t, path)
			put(t, s, sess("bad", "bay-1", store.Charging, t0, 55), sess("good", "bay-2", store.Charging, t0, 0))
			_ = s.Close()
			rawUpdate(t, path, func(tx *bolt.Tx) error {
				return tx.Bucket([]byte("sessions_live")).Put([]byte("bad"), tt.val) // it was charging
			})
			s = storetest.OpenPath(t, path)
			view(t, s, func(tx *store.Tx) error {
				if _, err := tx.Session("bad"); err == nil || errors.Is(err, store.ErrNotFound) {
					t.Errorf("Session: %v, want a decode error", err)
				}
				if _, err := tx.SessionByNayax(55); err == nil {
					t.Error("SessionByNayax: no error")
				}
				if _, err := tx.SessionsByStation("bay-1"); err == nil {
					t.Error("SessionsByStation: no error")
				}
				if err := tx.Sessions(0, func(store.Session) bool { return true }); err == nil {
					t.Error("Sessions: no error")
				}
				if _, err := tx.ActiveSessions(); err == nil {
					t.Error("ActiveSessions: no error")
				}
				if got, err := tx.Session("good"); err != nil || got.Station != "bay-2" {
					t.Errorf("good session: %v", err)
				}
				return nil
			})
			// Counts reads the counts PutSession keeps, never a record:
			// a damaged record does not stop status, metrics or health.
			if _, err := s.Counts(); err != nil {
				t.Errorf("Counts err = %v", err)
			}
			// Overwriting the damaged record repairs it and its indexes.
			put(t, s, sess("bad", "bay-3", store.Settled, t0.Add(time.Hour), 0))
			view(t, s, func(tx *store.Tx) error {
				if _, err := tx.SessionByNayax(55); !errors.Is(err, store.ErrNotFound) {
					t.Errorf("stale nayax index: %v", err)
				}
				if ss, err := tx.SessionsByStation("bay-1"); err != nil || len(ss) != 0 {
					t.Errorf("stale station index: %v %v", ids(ss), err)
				}
				var n int
				if err := tx.Sessions(0, func(store.Session) bool { n++; return true }); err != nil || n != 2 {
					t.Errorf("Sessions after repair: %d, %v", n, err)
				}
				if ss, err := tx.ActiveSessions(); err != nil || !reflect.DeepEqual(ids(ss), []string{"good"}) {
					t.Errorf("ActiveSessions after repair: %v, %v", ids(ss), err)
				}
				return nil
			})
		})
	}
}

func TestCorruptOutboxAndInbox(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sitelink.db")
	s := storetest.OpenPath(t, path)
	enqueue(t, s, 2)
	update(t, s, func(tx *store.Tx) error { return tx.PutInbox(store.InboxEntry{ID: "c1", At: time.Now()}) })
	_ = s.Close()
	rawUpdate(t, path, func(tx *bolt.Tx) error {
		if err := tx.Bucket([]byte("outbox")).Put(binary.BigEndian.AppendUint64(nil, 2), []byte{1, 2, 3}); err != nil {
			return err
		}
		b := tx.Bucket([]byte("inbox_recent")) // the newest entry
		if b.Get([]byte("c1")) == nil {
			return errors.New("c1 is not in inbox_recent")
		}
		return b.Put([]byte("c1"), []byte{9})
	})
	s = storetest.OpenPath(t, path)
	if _, err := s.OutboxAfter(0, 10); err == nil {
		t.Error("OutboxAfter: no error")
	}
	if err := s.OutboxAttempted(2); err == nil {
		t.Error("OutboxAttempted: no error")
	}
	if err := s.OutboxDelete(2); err != nil {
		t.Errorf("OutboxDelete of a damaged entry: %v", err)
	}
	view(t, s, func(tx *store.Tx) error {
		if _, err := tx.Inbox("c1"); err == nil || errors.Is(err, store.ErrNotFound) {
			t.Errorf("Inbox: %v, want a decode error", err)
		}
		return nil
	})
	update(t, s, func(tx *store.Tx) error {
		return tx.PutInbox(store.InboxEntry{ID: "c1", At: time.Now(), Reply: []byte("r")})
	})
	view(t, s, func(tx *store.Tx) error {
		if e, err := tx.Inbox("c1"); err != nil || string(e.Reply) != "r" {
			t.Errorf("Inbox after repair: %+v, %v", e, err)
		}
		return nil
	})
}

func TestWritesInViewFail(t *testing.T) {
	s := storetest.Open(t)
	x := sess("a", "bay-1", store.Requested, t0, 1)
	writes := map[string]func(tx *store.Tx) error{
		"PutSession": func(tx *store.Tx) error { return tx.PutSession(&x) },
		"PutInbox":   func(tx *store.Tx) error { return tx.PutInbox(store.InboxEntry{ID: "c", At: t0}) },
		"Enqueue": func(tx *store.Tx) error {
			_, err := tx.Enqueue("edge-1", "session", t0, build300)
			return err
		},
	}
	for name, w := range writes {
		t.Run(name, func(t *testing.T) {
			if err := s.View(w); err == nil {
				t.Error("write in View succeeded")
			}
		})
	}
}

// TestConcurrentEnqueueDrain runs producers and a drain like the daemon's
// and checks that every event arrives exactly once, in seq order.
func TestConcurrentEnqueueDrain(t *testing.T) {
	const producers, each = 4, 200
	s := storetest.Open(t, store.Options{NoSync: true})
	errc := make(chan error, producers)
	for p := 0; p < producers; p++ {
		go func() {
			for i := 0; i < each; i++ {
				err := s.Update(func(tx *store.Tx) error {
					_, err := tx.Enqueue("edge-1", "session", time.Now(), build300)
					return err
				})
				if err != nil {
					errc <- err
					return
				}
			}
			errc <- nil
		}()
	}
	var last uint64
	seen := 0
	running := producers
	for running > 0 || seen < producers*each {
		select {
		case err := <-errc:
			if err != nil {
				t.Fatal(err)
			}
			running--
		default:
		}
		es, err := s.OutboxAfter(last, 64)
		if err != nil {
			t.Fatal(err)
		}
		var del []uint64
		for _, e := range es {
			if e.Seq != last+1 {
				t.Fatalf("seq %d after %d", e.Seq, last)
			}
			last = e.Seq
			del = append(del, e.Seq)
		}
		if err := s.OutboxDelete(del...); err != nil {
			t.Fatal(err)
		}
		seen += len(es)
		if seen > producers*each {
			t.Fatalf("saw %d events, enqueued %d", seen, producers*each)
		}
	}
	if n, err := s.OutboxLen(); err != nil || n != 0 {
		t.Errorf("OutboxLen = %d, %v", n, err)
	}
}

// TestInboxMayHave: every id the inbox holds, committed or in the
// transaction that puts it, is "may have", across pruning and reopening;
// ids pruned or never put are not.
func TestInboxMayHave(t *testing.T) {
	now := time.Now()
	path := filepath.Join(t.TempDir(), "sitelink.db")
	s := storetest.OpenPath(t, path, store.Options{InboxMax: 3})
	update(t, s, func(tx *store.Tx) error {
		if err := tx.PutInbox(store.InboxEntry{ID: "a", At: now}); err != nil {
			return err
		}
		if !s.InboxMayHave("a") {
			t.Error("an id put in a transaction not committed yet: not found")
		}
		return nil
	})
	for i, id := range []string{"b", "c", "d", "e"} {
		update(t, s, func(tx *store.Tx) error {
			return tx.PutInbox(store.InboxEntry{ID: id, At: now.Add(time.Duration(i+1) * time.Second)})
		})
	}
	check := func(when string) {
		t.Helper()
		for id, want := range map[string]bool{"a": false, "b": false, "c": true, "d": true, "e": true, "never": false} {
			if got := s.InboxMayHave(id); got != want {
				t.Errorf("%s: InboxMayHave(%q) = %v, want %v", when, id, got, want)
			}
		}
	}
	check("after pruning")
	boom := errors.New("boom")
	err := s.Update(func(tx *store.Tx) error {
		if err := tx.PutInbox(store.InboxEntry{ID: "rolled-back", At: now}); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) || s.InboxMayHave("rolled-back") {
		t.Errorf("a rolled-back put: %v, InboxMayHave %v; want boom, false", err, s.InboxMayHave("rolled-back"))
	}
	_ = s.Close()
	s = storetest.OpenPath(t, path, store.Options{InboxMax: 3})
	check("after reopening")
}

// TestInboxClockSetBack: an entry dated ahead (the clock was wrong, then
// corrected) does not hold back the pruning of expired entries put after
// it.
func TestInboxClockSetBack(t *testing.T) {
	now := time.Now()
	path := filepath.Join(t.TempDir(), "sitelink.db")
	s := storetest.OpenPath(t, path, store.Options{InboxTTL: time.Hour})
	put := func(id string, at time.Time) {
		update(t, s, func(tx *store.Tx) error { return tx.PutInbox(store.InboxEntry{ID: id, At: at}) })
	}
	put("ahead", now.Add(24*time.Hour))
	for i := range 10 {
		put(fmt.Sprint("expired", i), now.Add(-2*time.Hour))
	}
	put("new", now)
	closeWantInbox(t, s, path, 2) // ahead and new; the expired ones pruned
}

// TestInboxRecent: a command's entry is written to inbox_recent and moved
// to inbox by the next transaction that records no command, or by a
// command's once 64 wait; wherever it is, it is found, replaced, counted
// and pruned the same.
func TestInboxRecent(t *testing.T) {
	now := time.Now()
	path := filepath.Join(t.TempDir(), "sitelink.db")
	s := storetest.OpenPath(t, path, store.Options{InboxMax: 1000})
	putIn := func(id, reply string) {
		t.Helper()
		update(t, s, func(tx *store.Tx) error {
			return tx.PutInbox(store.InboxEntry{ID: id, Type: "stop", At: now, Reply: []byte(reply)})
		})
	}
	noCommand := func() { t.Helper(); enqueue(t, s, 1) }
	reopen := func(wantRecent, wantOld int) {
		t.Helper()
		_ = s.Close()
		if c := rawKeyCounts(t, path); c["inbox_recent"] != wantRecent || c["inbox"] != wantOld {
			t.Errorf("inbox_recent %d, inbox %d; want %d, %d", c["inbox_recent"], c["inbox"], wantRecent, wantOld)
		}
		s = storetest.OpenPath(t, path, store.Options{InboxMax: 1000})
	}
	wantReply := func(id, want string) {
		t.Helper()
		view(t, s, func(tx *store.Tx) error {
			if e, err := tx.Inbox(id); err != nil || string(e.Reply) != want {
				t.Errorf("Inbox(%s) = %q, %v; want %q", id, e.Reply, err, want)
			}
			return nil
		})
	}

	putIn("a", "1")
	putIn("b", "1")
	reopen(2, 0) // commands leave their entries in inbox_recent
	wantReply("a", "1")
	noCommand()
	reopen(0, 2) // a transaction without a command moved them (after a reopen: counted at Open)
	wantReply("b", "1")

	putIn("a", "2") // replaces the moved entry: one record, in inbox_recent
	wantReply("a", "2")
	reopen(1, 1)
	noCommand()
	wantReply("a", "2")
	reopen(0, 2)

	for i := range 150 { // a flood of commands with nothing between them
		putIn(fmt.Sprint("f", i), "f")
	}
	_ = s.Close()
	c := rawKeyCounts(t, path)
	if c["inbox_recent"] > 64 || c["inbox_recent"]+c["inbox"] != 152 {
		t.Errorf("after a flood: inbox_recent %d, inbox %d; want at most 64 and 152 in all", c["inbox_recent"], c["inbox"])
	}
	// Pruning finds entries in both buckets: the oldest beyond InboxMax go.
	s = storetest.OpenPath(t, path, store.Options{InboxMax: 10})
	for i := range 3 {
		putIn(fmt.Sprint("g", i), "g")
	}
	closeWantInbox(t, s, path, 10)
}
