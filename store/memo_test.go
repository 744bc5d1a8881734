package store

import (
	"bytes"
	"errors"
	"path/filepath"
	"reflect"
	"testing"
	"time"
)

// TestSessionMemo: the memo answers what decoding the bytes gives, never
// a record that changed since, and its callers share no memory with it.
func TestSessionMemo(t *testing.T) {
	now := time.Date(2026, 12, 6, 20, 0, 0, 0, time.UTC)
	s := Session{SparkTransactionID: "a", Station: "1", State: Charging, Ticket: []byte(`{"t":1}`), CreatedAt: now,
		Request: &Request{Kind: "settlement", Body: []byte(`{}`), EventIDs: []string{"n-1"}},
		History: []Transition{{State: Authorized, At: now}, {State: Charging, At: now}}}
	v, err := encodeSession(&s)
	if err != nil {
		t.Fatal(err)
	}
	var m sessionMemo
	want, err := decodeSession(v)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 { // a miss, then hits
		got, err := m.decode(v)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("decode %d: %+v, want %+v", i, got, want)
		}
		// The caller's changes stay the caller's.
		got.History[0].Reason = "changed"
		got.History = append(got.History, Transition{State: Stopping})
		got.Request.EventIDs[0] = "changed"
		got.Ticket[0] = 'x'
	}
	s.State = Stopping
	changed, _ := encodeSession(&s)
	if got, err := m.decode(changed); err != nil || got.State != Stopping {
		t.Fatalf("a changed record: %v, %v", got.State, err)
	}
	if _, err := m.decode([]byte(`{"spark_transaction_id":`)); err == nil {
		t.Fatal("a corrupt record decoded")
	}
	for i := range memoSize + 2 { // more records than it keeps
		s.SparkTransactionID = string(rune('b' + i))
		v, _ := encodeSession(&s)
		if got, err := m.decode(v); err != nil || got.SparkTransactionID != s.SparkTransactionID {
			t.Fatalf("record %d: %q, %v", i, got.SparkTransactionID, err)
		}
	}
}

// TestMemoWarmedAtCommit: the record of a session delivering energy is in
// the memo soon after its commit, so the stop that reads it next does not
// decode it; a rolled-back write and a stopped session's record are not
// added.
func TestMemoWarmedAtCommit(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), "sitelink.db"), Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	now := time.Date(2026, 12, 6, 20, 0, 0, 0, time.UTC)
	put := func(state State, fail bool) []byte {
		sess := Session{SparkTransactionID: "w-" + string(state), Station: "1", State: state, CreatedAt: now}
		if fail {
			sess.SparkTransactionID += "-rolled-back"
		}
		err := s.Update(func(tx *Tx) error {
			if err := tx.PutSession(&sess); err != nil {
				return err
			}
			if fail {
				return errors.New("boom")
			}
			return nil
		})
		if err != nil != fail {
			t.Fatalf("put %s: %v", state, err)
		}
		v, _ := encodeSession(&sess)
		return v
	}
	held := func(v []byte) bool {
		s.memo.mu.Lock()
		defer s.memo.mu.Unlock()
		for _, e := range s.memo.ents {
			if bytes.Equal(e.raw, v) {
				return true
			}
		}
		return false
	}
	tests := []struct {
		state State
		fail  bool
		want  bool
	}{
		{Charging, false, true},
		{Authorized, false, true},
		{Charging, true, false},
		{Settling, false, false},
		{Stopped, false, false},
	}
	for _, tt := range tests {
		v := put(tt.state, tt.fail)
		deadline := time.Now().Add(2 * time.Second)
		for !held(v) && tt.want && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
		if !tt.want {
			time.Sleep(20 * time.Millisecond) // time enough to have been added
		}
		if got := held(v); got != tt.want {
			t.Errorf("%s (rolled back %v): in the memo %v, want %v", tt.state, tt.fail, got, tt.want)
		}
	}
}
