package store

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

func TestArchivable(t *testing.T) {
	cutoff := time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC)
	old, recent := cutoff.Add(-time.Hour), cutoff.Add(time.Hour)
	for _, tc := range []struct {
		state   State
		updated time.Time
		request bool
		want    bool
	}{
		{Settled, old, false, true},
		{Cancelled, old, false, true},
		{Declined, old, false, true},
		{Closed, old, false, true},
		{Reconciled, old, false, true}, // resolved by an operator: final
		{Reconciled, recent, false, false},
		{Settled, recent, false, false},
		{Settled, cutoff, false, false}, // changed at the cutoff: not before it
		{Settled, old, true, false},     // waits for an answer, whatever its state says
		{NeedsReconciliation, old, false, false},
		{Settling, old, false, false},
		{Cancelling, old, false, false},
		{Stopped, old, false, false},
		{Interrupted, old, false, false},
		{Charging, old, false, false},
		{Requested, old, false, false},
	} {
		t.Run(fmt.Sprintf("%s/%s/request=%v", tc.state, tc.updated.Format(time.TimeOnly), tc.request), func(t *testing.T) {
			s := Session{SparkTransactionID: "x", Station: "1", State: tc.state, CreatedAt: old.Add(-time.Hour), UpdatedAt: tc.updated}
			if tc.request {
				s.Request = &Request{Kind: "settlement"}
			}
			if got := Archivable(&s, cutoff); got != tc.want {
				t.Errorf("Archivable = %v, want %v", got, tc.want)
			}
		})
	}
	// A record that never set UpdatedAt is judged by CreatedAt.
	s := Session{SparkTransactionID: "x", Station: "1", State: Settled, CreatedAt: old}
	if !Archivable(&s, cutoff) {
		t.Error("a settled session without UpdatedAt, created before the cutoff: not archivable")
	}
}

// retentionNow and retentionCutoff are the clock of the retention
// fixture: 90 days of retention on 2026-07-01.
var (
	retentionNow    = time.Date(2026, 7, 1, 12, 0, 0, 0, time.UTC)
	retentionCutoff = retentionNow.AddDate(0, 0, -90)
)

// retentionFixture is a ledger's sessions across four months, and
// whether Archive(retentionCutoff) must move each.
func retentionFixture() (sessions []Session, archived map[string]bool) {
	archived = map[string]bool{}
	add := func(s Session, move bool) {
		s.Station = strconv.Itoa(len(sessions)%3 + 1)
		if len(sessions)%2 == 0 {
			s.NayaxTransactionID = int64(1000 + len(sessions))
		}
		s.History = []Transition{{State: s.State, At: s.UpdatedAt, Reason: "fixture"}}
		s.AuthorizedMinor, s.AmountMinor = 2000, 59
		sessions = append(sessions, s)
		archived[s.SparkTransactionID] = move
	}
	final := []State{Settled, Cancelled, Declined, Closed, Reconciled}
	start := time.Date(2026, 1, 20, 8, 0, 0, 0, time.UTC)
	for i := range 40 {
		created := start.Add(time.Duration(i) * 2 * 24 * time.Hour) // Jan 20 .. Apr 7
		s := Session{SparkTransactionID: fmt.Sprintf("s-%02d", i), CreatedAt: created, UpdatedAt: created.Add(time.Hour)}
		switch {
		case i%9 == 4:
			s.State = NeedsReconciliation // stays until resolved
		case i%11 == 5:
			s.State = Settling // still waits for Nayax
			s.Request = &Request{Kind: "settlement", Call: "Settlement"}
		case i == 20:
			s.State = Settled
			s.UpdatedAt = retentionCutoff.Add(time.Minute) // changed since the cutoff
		case i == 21:
			s.State = Settled
			s.UpdatedAt = time.Time{} // never set: CreatedAt counts
		default:
			s.State = final[i%len(final)]
		}
		add(s, Archivable(&s, retentionCutoff))
	}
	// Recent sessions: open ones and finished ones.
	for i, st := range []State{Charging, Settled, Cancelled, Requested} {
		created := retentionNow.Add(-time.Duration(i+1) * time.Hour)
		add(Session{SparkTransactionID: fmt.Sprintf("r-%d", i), State: st, CreatedAt: created, UpdatedAt: created}, false)
	}
	return sessions, archived
}

// ledgerFixture writes the fixture into a new ledger at path.
func ledgerFixture(t *testing.T, path string) ([]Session, map[string]bool) {
	t.Helper()
	ss, archived := retentionFixture()
	st, err := Open(path, Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	err = st.Update(func(tx *Tx) error {
		for i := range ss {
			if err := tx.PutSession(&ss[i]); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, a := range archived {
		if a {
			n++
		}
	}
	if n < 20 || n == len(ss) {
		t.Fatalf("fixture: %d of %d sessions to archive", n, len(ss))
	}
	return ss, archived
}

// checkIndexes fails unless every index entry names a session the ledger
// holds, every session has its entries, and the counts agree with a scan.
func checkIndexes(t *testing.T, st *Store) {
	t.Helper()
	err := st.db.View(func(tx *bolt.Tx) error {
		all := map[string]Session{}
		for _, b := range [][]byte{bucketSessions, bucketSessionsLive} {
			if err := tx.Bucket(b).ForEach(func(k, v []byte) error {
				s, err := decodeSession(v)
				if _, twice := all[string(k)]; twice {
					t.Errorf("session %s is in both record buckets", k)
				}
				if live := bytes.Equal(b, bucketSessionsLive); err == nil && live == s.State.Final() {
					t.Errorf("session %s (%s) is in bucket %s", k, s.State, b)
				}
				all[string(k)] = s
				return err
			}); err != nil {
				return err
			}
		}
		want := map[string]map[string]bool{"time": {}, "station": {}, "nayax": {}, "open": {}}
		for id, s := range all {
			want["time"][string(timeIDKey(s.CreatedAt, id))] = true
			want["station"][string(stationKey(s.Station, s.CreatedAt, id))] = true
			if s.NayaxTransactionID != 0 {
				want["nayax"][string(nayaxKey(s.NayaxTransactionID))] = true
			}
			if !s.State.Final() {
				want["open"][id] = true
			}
		}
		for name, b := range map[string][]byte{"time": bucketSessionTime, "station": bucketSessionStation, "nayax": bucketSessionNayax, "open": bucketSessionOpen} {
			got := map[string]bool{}
			_ = tx.Bucket(b).ForEach(func(k, _ []byte) error { got[string(k)] = true; return nil })
			if !maps.Equal(got, want[name]) {
				t.Errorf("index %s: %d entries, the sessions want %d", name, len(got), len(want[name]))
			}
		}
		scan, err := scanCounts(tx)
		if err != nil {
			return err
		}
		kept, err := st.Counts()
		if err != nil {
			return err
		}
		if !maps.Equal(scan, kept) {
			t.Errorf("counts %v, a scan says %v", kept, scan)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// ledgerIDs are the ids of the sessions in the ledger.
func ledgerIDs(t *testing.T, db *bolt.DB) (ids []string) {
	t.Helper()
	err := db.View(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketSessions, bucketSessionsLive} {
			if err := tx.Bucket(b).ForEach(func(k, _ []byte) error { ids = append(ids, string(k)); return nil }); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(ids)
	return ids
}

// archiveLines reads every complete line of every month file: the ids in
// file order per month, and each line's bytes by id (last wins).
func archiveLines(t *testing.T, dir string) (ids map[string][]string, raw map[string][]byte) {
	t.Helper()
	ids, raw = map[string][]string{}, map[string][]byte{}
	files, err := ArchiveFiles(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		data, err := os.ReadFile(f.Path)
		if err != nil {
			t.Fatal(err)
		}
		if i := bytes.LastIndexByte(data, '\n'); i+1 < len(data) {
			data = data[:i+1] // a torn tail is not a line
		}
		sc := bufio.NewScanner(bytes.NewReader(data))
		sc.Buffer(nil, maxArchiveLine)
		for sc.Scan() {
			s, err := decodeSession(sc.Bytes())
			if err != nil {
				t.Fatalf("%s: %v", f.Path, err)
			}
			if m := ArchiveMonth(&s); m != f.Month {
				t.Errorf("%s holds session %s of %s", f.Path, s.SparkTransactionID, m)
			}
			ids[f.Month] = append(ids[f.Month], s.SparkTransactionID)
			raw[s.SparkTransactionID] = bytes.Clone(sc.Bytes())
		}
	}
	return ids, raw
}

// checkArchived fails unless the archive holds each session to archive
// exactly once, byte for byte as the ledger held it, and the ledger
// holds exactly the others.
func checkArchived(t *testing.T, st *Store, ss []Session, archived map[string]bool) {
	t.Helper()
	ledger := ledgerIDs(t, st.db)
	var wantLedger []string
	for _, s := range ss {
		if !archived[s.SparkTransactionID] {
			wantLedger = append(wantLedger, s.SparkTransactionID)
		}
	}
	slices.Sort(ledger)
	slices.Sort(wantLedger)
	if !slices.Equal(ledger, wantLedger) {
		t.Errorf("ledger holds %v, want %v", ledger, wantLedger)
	}
	months, raw := archiveLines(t, st.ArchiveDir())
	seen := map[string]int{}
	for _, idl := range months {
		for _, id := range idl {
			seen[id]++
		}
	}
	for _, s := range ss {
		id := s.SparkTransactionID
		switch n := seen[id]; {
		case archived[id] && n != 1:
			t.Errorf("session %s is in the archive %d times, want once", id, n)
		case !archived[id] && n != 0:
			t.Errorf("session %s stays in the ledger, but is in the archive %d times", id, n)
		case n == 1:
			want, _ := encodeSession(&s)
			if !bytes.Equal(raw[id], want) {
				t.Errorf("session %s archived as\n%s\nwant\n%s", id, raw[id], want)
			}
		}
	}
	checkIndexes(t, st)
}

// Archive moves exactly the sessions whose money is final and that did
// not change since the cutoff, to the month file of their creation, once
// each, keeping every index and count in step; a second run moves nothing.
func TestArchiveMovesExactlyTheEligible(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sitelink.db")
	ss, archived := ledgerFixture(t, path)
	st, err := Open(path, Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	res, err := st.Archive(context.Background(), retentionCutoff, ArchiveOptions{Batch: 3, Pause: time.Microsecond})
	if err != nil {
		t.Fatal(err)
	}
	want := 0
	for _, a := range archived {
		if a {
			want++
		}
	}
	if res.Sessions != want || res.Batches < want/3 {
		t.Errorf("Archive = %+v, want %d sessions in batches of at most 3", res, want)
	}
	checkArchived(t, st, ss, archived)
	files, _ := ArchiveFiles(st.ArchiveDir())
	var months []string
	for _, f := range files {
		months = append(months, f.Month)
	}
	var wantMonths []string
	for _, s := range ss {
		if m := ArchiveMonth(&s); archived[s.SparkTransactionID] && !slices.Contains(wantMonths, m) {
			wantMonths = append(wantMonths, m)
		}
	}
	if !slices.Equal(months, wantMonths) || len(months) < 3 {
		t.Errorf("month files %v, want %v", months, wantMonths)
	}
	l, err := st.LedgerStats()
	if err != nil {
		t.Fatal(err)
	}
	if l.Archived != uint64(want) {
		t.Errorf("LedgerStats.Archived = %d, want %d", l.Archived, want)
	}
	// Gone from every query, Nayax id included.
	for _, s := range ss {
		err := st.View(func(tx *Tx) error {
			_, err := tx.Session(s.SparkTransactionID)
			if s.NayaxTransactionID != 0 {
				if _, nerr := tx.SessionByNayax(s.NayaxTransactionID); !errors.Is(nerr, ErrNotFound) != !archived[s.SparkTransactionID] {
					return fmt.Errorf("SessionByNayax: %v", nerr)
				}
			}
			return err
		})
		if archived[s.SparkTransactionID] != errors.Is(err, ErrNotFound) {
			t.Errorf("session %s (archived %v): %v", s.SparkTransactionID, archived[s.SparkTransactionID], err)
		}
	}

	before := dirHashes(t, st.ArchiveDir())
	res, err = st.Archive(context.Background(), retentionCutoff, ArchiveOptions{})
	if err != nil || res.Sessions != 0 || res.Batches != 0 {
		t.Errorf("second Archive = %+v, %v; want nothing", res, err)
	}
	if after := dirHashes(t, st.ArchiveDir()); !maps.Equal(before, after) {
		t.Error("a second Archive changed the archive")
	}
}

func dirHashes(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		out[e.Name()] = string(b)
	}
	return out
}

// Archive stops between batches when its context ends, leaving a
// consistent ledger; the next run finishes.
func TestArchiveCancel(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sitelink.db")
	ss, archived := ledgerFixture(t, path)
	st, err := Open(path, Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx, cancel := context.WithCancel(context.Background())
	testHook = func(p string) {
		if p == "archive-done" {
			cancel()
		}
	}
	t.Cleanup(func() { testHook = nil })
	res, err := st.Archive(ctx, retentionCutoff, ArchiveOptions{Batch: 2})
	testHook = nil
	if !errors.Is(err, context.Canceled) || res.Sessions != 2 {
		t.Fatalf("Archive = %+v, %v; want 2 sessions and context.Canceled", res, err)
	}
	checkIndexes(t, st)
	if _, err := st.Archive(context.Background(), retentionCutoff, ArchiveOptions{Pause: time.Microsecond}); err != nil {
		t.Fatal(err)
	}
	checkArchived(t, st, ss, archived)
}

// The archive steps a crash can fall between (retention.go).
var archiveSteps = []string{"archive-marked", "archive-half", "archive-written", "archive-synced", "archive-done"}

// A crash at any step of any batch loses no session and, once the ledger
// is open again, shows none twice: right after the crash every session
// is in the ledger or the archive; Open undoes an unfinished batch, so
// that each is in exactly one; the next Archive finishes the run, and
// then each is exactly where it belongs, once. The move runs in a child
// process killed with SIGKILL at the step.
func TestArchiveCrashAtEveryStep(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns a process per step")
	}
	for _, step := range archiveSteps {
		for _, nth := range []int{1, 2, 5} {
			t.Run(fmt.Sprintf("%s/%d", step, nth), func(t *testing.T) {
				path := filepath.Join(t.TempDir(), "sitelink.db")
				ss, archived := ledgerFixture(t, path)
				crashChild(t, "TestArchiveCrashChild", path, step, nth)
				dir := filepath.Join(filepath.Dir(path), "archive")

				// Nothing lost at the crash, before anything repairs it.
				where := func(ledger []string) map[string][]string {
					w := map[string][]string{}
					for _, id := range ledger {
						w[id] = append(w[id], "ledger")
					}
					months, _ := archiveLines(t, dir)
					for _, idl := range months {
						for _, id := range idl {
							w[id] = append(w[id], "archive")
						}
					}
					return w
				}
				raw, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Second})
				if err != nil {
					t.Fatal(err)
				}
				w := where(ledgerIDs(t, raw))
				_ = raw.Close()
				for _, s := range ss {
					if len(w[s.SparkTransactionID]) == 0 {
						t.Errorf("after the crash, session %s is nowhere", s.SparkTransactionID)
					}
				}

				// Opened again: each session in exactly one place.
				st, err := Open(path, Options{NoSync: true})
				if err != nil {
					t.Fatal(err)
				}
				defer st.Close()
				w = where(ledgerIDs(t, st.db))
				for _, s := range ss {
					got := w[s.SparkTransactionID]
					switch {
					case len(got) != 1:
						t.Errorf("after a reopen, session %s is in %v", s.SparkTransactionID, got)
					case !archived[s.SparkTransactionID] && got[0] != "ledger":
						t.Errorf("after a reopen, session %s (stays) is in %v", s.SparkTransactionID, got)
					}
				}
				checkIndexes(t, st)
				got, err := ArchivedSessions(st.ArchiveDir(), ArchiveQuery{}, func(e *ArchiveLineError) { t.Errorf("archive: %v", e) })
				if err != nil {
					t.Fatal(err)
				}
				if ids := sessionIDs(got); len(ids) != len(slices.Compact(slices.Sorted(slices.Values(ids)))) {
					t.Errorf("the archive lists a session twice: %v", ids)
				}

				if _, err := st.Archive(context.Background(), retentionCutoff, ArchiveOptions{Batch: 3, Pause: time.Microsecond}); err != nil {
					t.Fatal(err)
				}
				checkArchived(t, st, ss, archived)
			})
		}
	}
}

func sessionIDs(ss []Session) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = s.SparkTransactionID
	}
	return out
}

// crashChild runs the test named child in a new process of this test
// binary, which kills itself with SIGKILL at the nth time it reaches
// step, and fails unless it did.
func crashChild(t *testing.T, child, path, step string, nth int) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^"+child+"$", "-test.count=1")
	cmd.Env = append(os.Environ(), "STORE_CRASH_PATH="+path, "STORE_CRASH_STEP="+step, "STORE_CRASH_NTH="+strconv.Itoa(nth))
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		t.Fatalf("child ran to its end (%v) without reaching %s #%d:\n%s", err, step, nth, out)
	}
	if ws, ok := ee.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("child failed (%v) instead of being killed at %s #%d:\n%s", err, step, nth, out)
	}
}

// crashEnv is the child's half of crashChild: the file, and a hook that
// kills the process at the nth step; ok is false outside a child.
func crashEnv(t *testing.T) (path string, ok bool) {
	path = os.Getenv("STORE_CRASH_PATH")
	if path == "" {
		t.Skip("run by the crash tests in a child process")
	}
	step := os.Getenv("STORE_CRASH_STEP")
	nth, err := strconv.Atoi(os.Getenv("STORE_CRASH_NTH"))
	if err != nil {
		t.Fatal(err)
	}
	testHook = func(p string) {
		if p != step {
			return
		}
		if nth--; nth == 0 {
			_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
			select {}
		}
	}
	return path, true
}

func TestArchiveCrashChild(t *testing.T) {
	path, _ := crashEnv(t)
	// With fsync, as the daemon runs.
	st, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Archive(context.Background(), retentionCutoff, ArchiveOptions{Batch: 3, Pause: time.Microsecond}); err != nil {
		t.Fatal(err)
	}
	_ = st.Close()
}

// A month file removed after a crash (an operator moved it away) is
// started again at its beginning, never padded with zeros up to the
// size it had.
func TestArchiveFileRemovedAfterACrash(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sitelink.db")
	ss, archived := ledgerFixture(t, path)
	// January has four sessions to archive: the second batch of three
	// is the fourth alone, written but still in the ledger.
	crashChild(t, "TestArchiveCrashChild", path, "archive-synced", 2)
	f := filepath.Join(filepath.Dir(path), "archive", ArchiveFileName("2026-01"))
	moved, err := os.ReadFile(f)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(f); err != nil {
		t.Fatal(err)
	}
	st, err := Open(path, Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, err := st.Archive(context.Background(), retentionCutoff, ArchiveOptions{Pause: time.Microsecond}); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(f)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.IndexByte(data, 0) >= 0 || bytes.Count(data, []byte("\n")) != 1 || !bytes.HasSuffix(moved, data) {
		t.Errorf("month file after its removal holds\n%s\nwant the last line of\n%s", data, moved)
	}
	// Put back what the operator moved away: then the archive is whole.
	if err := os.WriteFile(f, moved, 0o600); err != nil {
		t.Fatal(err)
	}
	checkArchived(t, st, ss, archived)
}

// A session the engine changes while its batch is being written stays in
// the ledger as it is now, and its line leaves the archive before the
// batch commits.
func TestArchiveSessionChangedMeanwhile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sitelink.db")
	ss, archived := ledgerFixture(t, path)
	st, err := Open(path, Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	changed := false
	testHook = func(p string) {
		if p != "archive-synced" || changed {
			return
		}
		changed = true
		// A Cortina Cancel after the settlement, say.
		err := st.Update(func(tx *Tx) error {
			s, err := tx.Session("s-00")
			if err != nil {
				return err
			}
			s.State, s.UpdatedAt = NeedsReconciliation, retentionNow
			return tx.PutSession(&s)
		})
		if err != nil {
			t.Error(err)
		}
	}
	t.Cleanup(func() { testHook = nil })
	res, err := st.Archive(context.Background(), retentionCutoff, ArchiveOptions{Batch: 3, Pause: time.Microsecond})
	testHook = nil
	if err != nil {
		t.Fatal(err)
	}
	for i := range ss {
		if ss[i].SparkTransactionID == "s-00" {
			if !archived["s-00"] {
				t.Fatal("fixture: s-00 is not archived")
			}
			archived["s-00"] = false
			ss[i].State, ss[i].UpdatedAt = NeedsReconciliation, retentionNow
		}
	}
	checkArchived(t, st, ss, archived)
	err = st.View(func(tx *Tx) error {
		s, err := tx.Session("s-00")
		if err == nil && s.State != NeedsReconciliation {
			err = fmt.Errorf("s-00 is %s", s.State)
		}
		return err
	})
	if err != nil {
		t.Error(err)
	}
	n := 0
	for _, a := range archived {
		if a {
			n++
		}
	}
	if res.Sessions != n {
		t.Errorf("Archive says %d sessions, want %d", res.Sessions, n)
	}
}

func TestReadArchiveFile(t *testing.T) {
	line := func(id string, created time.Time) string {
		b, _ := json.Marshal(Session{SparkTransactionID: id, Station: "1", State: Settled, CreatedAt: created})
		return string(b) + "\n"
	}
	t0 := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name    string
		content string
		ids     []string
		bad     []string
	}{
		{"empty", "", nil, nil},
		{"two", line("a", t0) + line("b", t0), []string{"a", "b"}, nil},
		{"torn tail skipped", line("a", t0) + `{"spark_transaction_id":"b","sta`, []string{"a"}, nil},
		{"blank lines", "\n" + line("a", t0) + "  \n", []string{"a"}, nil},
		{"damaged line", line("a", t0) + "{not json\n" + line("b", t0), []string{"a", "b"}, []string{"F:2: corrupt record: invalid character 'n' looking for beginning of object key string"}},
		{"no id", line("a", t0) + "{}\n", []string{"a"}, []string{"F:2: session without id: corrupt record"}},
		{"too long", line("a", t0) + strings.Repeat("x", maxArchiveLine+10) + "\n" + line("b", t0), []string{"a", "b"}, []string{fmt.Sprintf("F:2: line longer than %d bytes", maxArchiveLine)}},
		{"long but fine", line(strings.Repeat("y", 100<<10), t0), []string{strings.Repeat("y", 100<<10)}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var ids, bad []string
			err := readArchive(strings.NewReader(tc.content), "F", func(s Session) bool {
				ids = append(ids, s.SparkTransactionID)
				return true
			}, func(e *ArchiveLineError) { bad = append(bad, e.Error()) })
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(ids, tc.ids) || !slices.Equal(bad, tc.bad) {
				t.Errorf("got sessions %.40q, problems %q; want %.40q, %q", ids, bad, tc.ids, tc.bad)
			}
		})
	}
}

func TestArchivedSessions(t *testing.T) {
	dir := t.TempDir()
	write := func(month string, ss ...Session) {
		var b []byte
		for _, s := range ss {
			v, _ := encodeSession(&s)
			b = append(append(b, v...), '\n')
		}
		if err := os.WriteFile(filepath.Join(dir, ArchiveFileName(month)), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	at := func(m time.Month, d int) time.Time { return time.Date(2026, m, d, 10, 0, 0, 0, time.UTC) }
	s := func(id string, created time.Time, st State) Session {
		return Session{SparkTransactionID: id, Station: "1", State: st, CreatedAt: created}
	}
	write("2026-01", s("jan-1", at(1, 1), Settled), s("jan-20", at(1, 20), Settled), s("jan-5", at(1, 5), Cancelled))
	// A session found twice (files concatenated by hand): its last line wins.
	write("2026-02", s("feb-3", at(2, 3), Settled), s("feb-3", at(2, 3), Cancelled))
	write("2026-04", s("apr-1", at(4, 1), Declined))
	for _, name := range []string{"notes.txt", "sessions-2026-13.jsonl", "sessions-x.jsonl"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("{}\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name string
		q    ArchiveQuery
		want []string
	}{
		{"all", ArchiveQuery{}, []string{"apr-1", "feb-3", "jan-20", "jan-5", "jan-1"}},
		{"limit", ArchiveQuery{Limit: 2}, []string{"apr-1", "feb-3"}},
		{"since", ArchiveQuery{Since: at(1, 5)}, []string{"apr-1", "feb-3", "jan-20", "jan-5"}},
		{"until", ArchiveQuery{Until: at(2, 3)}, []string{"jan-20", "jan-5", "jan-1"}},
		{"between", ArchiveQuery{Since: at(1, 2), Until: at(3, 1)}, []string{"feb-3", "jan-20", "jan-5"}},
		{"none", ArchiveQuery{Since: at(5, 1)}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ArchivedSessions(dir, tc.q, func(e *ArchiveLineError) { t.Errorf("problem: %v", e) })
			if err != nil {
				t.Fatal(err)
			}
			if ids := sessionIDs(got); !slices.Equal(ids, tc.want) {
				t.Errorf("got %v, want %v", ids, tc.want)
			}
			for _, s := range got {
				if s.SparkTransactionID == "feb-3" && s.State != Cancelled {
					t.Errorf("feb-3 is %s, want its last line (cancelled)", s.State)
				}
			}
		})
	}
	if got, err := ArchivedSessions(filepath.Join(dir, "missing"), ArchiveQuery{}, nil); err != nil || len(got) != 0 {
		t.Errorf("missing directory: %v, %v", got, err)
	}
}

// FuzzReadArchive: whatever a month file holds, reading it returns
// sessions and line problems, never a panic, and every problem names its
// line.
func FuzzReadArchive(f *testing.F) {
	v, _ := encodeSession(&Session{SparkTransactionID: "a", Station: "1", State: Settled})
	f.Add(append(v, '\n'))
	f.Add([]byte("{not json\n\n{}\n"))
	f.Add([]byte(`{"spark_transaction_id":"x","created_at":"2026-13-01"}` + "\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		lines := bytes.Count(data, []byte("\n"))
		_ = readArchive(bytes.NewReader(data), "F", func(s Session) bool {
			if s.SparkTransactionID == "" {
				t.Error("a session without id")
			}
			return true
		}, func(e *ArchiveLineError) {
			if e.Line < 1 || e.Line > lines || !strings.HasPrefix(e.Error(), "F:"+strconv.Itoa(e.Line)+": ") {
				t.Errorf("problem %q: line %d of %d", e, e.Line, lines)
			}
		})
	})
}

// BenchmarkArchiveBatch: one batch of Archive, from picking to the
// commit that takes it out of the ledger (three fsyncs: two commits and
// the month file). Step 3's transaction alone is what an engine commit
// waits behind: see the lock metric.
func BenchmarkArchiveBatch(b *testing.B) {
	for _, size := range []int{100, DefaultArchiveBatch, MaxArchiveBatch} {
		b.Run(fmt.Sprint(size), func(b *testing.B) {
			st, err := Open(filepath.Join(b.TempDir(), "s.db"), Options{NoSync: os.Getenv("NOSYNC") != ""})
			if err != nil {
				b.Fatal(err)
			}
			defer st.Close()
			old := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
			pad := strings.Repeat("h", 1200) // history, answers, payment record
			n := 0
			fill := func(k int) {
				err := st.Update(func(tx *Tx) error {
					for range k {
						s := Session{SparkTransactionID: fmt.Sprintf("s-%08d", n), Station: strconv.Itoa(n % 4), State: Settled,
							NayaxTransactionID: int64(n + 1), StopReason: pad, CreatedAt: old.Add(time.Duration(n) * time.Second)}
						n++
						if err := tx.PutSession(&s); err != nil {
							return err
						}
					}
					return nil
				})
				if err != nil {
					b.Fatal(err)
				}
			}
			for range 20 {
				fill(1000)
			}
			// Step 3 runs between these two hooks.
			var synced time.Time
			var locked time.Duration
			testHook = func(p string) {
				switch p {
				case "archive-synced":
					synced = time.Now()
				case "archive-done":
					locked += time.Since(synced)
				}
			}
			defer func() { testHook = nil }()
			b.ResetTimer()
			for range b.N {
				b.StopTimer()
				if n < 20000 {
					fill(size) // keep the ledger at ~20,000 sessions
				}
				b.StartTimer()
				pb, err := st.pickBatch(old.AddDate(10, 0, 0), nil, size)
				if err != nil || len(pb.sessions) != size {
					b.Fatalf("picked %d: %v", len(pb.sessions), err)
				}
				moved, err := st.moveBatch(pb)
				if err != nil || moved != size {
					b.Fatalf("moved %d: %v", moved, err)
				}
				n -= size
			}
			b.ReportMetric(float64(locked.Microseconds())/1e3/float64(b.N), "lock-ms/op")
		})
	}
}
