package store

import (
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
