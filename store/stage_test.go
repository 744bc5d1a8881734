package store

import (
	"errors"
	"fmt"
	"maps"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// A session put several times in one transaction is written once, and
// everything read inside the transaction (by id, by Nayax id, the
// indexes) and after it is as if each put had been written at once.
func TestStagedPutsReadBack(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	base := Session{SparkTransactionID: "a", Station: "5", State: Charging, NayaxTransactionID: 7, CreatedAt: t0}
	cases := []struct {
		name  string
		tx    func(tx *Tx) error
		state State  // of "a" afterwards
		open  bool   // "a" in the open index
		owner string // of Nayax id 7
	}{
		{"stop in one transaction", func(tx *Tx) error {
			for _, to := range []State{Stopping, Stopped, Settling} {
				s, err := tx.Session("a")
				if err != nil {
					return err
				}
				s.State = to
				if err := tx.PutSession(&s); err != nil {
					return err
				}
				if got, _ := tx.SessionByNayax(7); got.State != to {
					return fmt.Errorf("by nayax id after put %s: %s", to, got.State)
				}
			}
			// A query over the indexes sees the staged state.
			act, err := tx.ActiveSession("5")
			if !errors.Is(err, ErrNotFound) {
				return fmt.Errorf("ActiveSession after stop: %+v, %v", act, err)
			}
			open, err := tx.OpenSessions()
			if err != nil || len(open) != 1 || open[0].State != Settling {
				return fmt.Errorf("OpenSessions: %+v, %v", open, err)
			}
			return nil
		}, Settling, true, "a"},
		{"to a final state", func(tx *Tx) error {
			s, _ := tx.Session("a")
			s.State = Stopped
			if err := tx.PutSession(&s); err != nil {
				return err
			}
			s.State = Closed
			return tx.PutSession(&s)
		}, Closed, false, "a"},
		{"changes after the put are not stored", func(tx *Tx) error {
			s, _ := tx.Session("a")
			s.Request = &Request{Kind: "settlement", EventIDs: []string{"e1"}}
			s.History = append(s.History, Transition{State: Stopping, At: t0})
			if err := tx.PutSession(&s); err != nil {
				return err
			}
			s.State = Settled
			s.Request.EventIDs[0] = "changed"
			s.History[0].Reason = "changed"
			got, _ := tx.Session("a")
			if got.State != Charging || got.Request.EventIDs[0] != "e1" || got.History[0].Reason != "" {
				return fmt.Errorf("the staged copy changed with the caller's: %+v", got)
			}
			return nil
		}, Charging, true, "a"},
		{"a Nayax id staged for another session conflicts", func(tx *Tx) error {
			b := Session{SparkTransactionID: "b", Station: "6", State: Authorized, NayaxTransactionID: 8, CreatedAt: t0}
			if err := tx.PutSession(&b); err != nil {
				return err
			}
			c := Session{SparkTransactionID: "c", Station: "7", State: Authorized, NayaxTransactionID: 8, CreatedAt: t0}
			if err := tx.PutSession(&c); !errors.Is(err, ErrConflict) {
				return fmt.Errorf("put of a staged Nayax id: %v, want ErrConflict", err)
			}
			return nil
		}, Charging, true, "a"},
		{"a staged session gives up its Nayax id", func(tx *Tx) error {
			s, _ := tx.Session("a")
			s.NayaxTransactionID = 9
			if err := tx.PutSession(&s); err != nil {
				return err
			}
			b := Session{SparkTransactionID: "b", Station: "6", State: Authorized, NayaxTransactionID: 7, CreatedAt: t0}
			return tx.PutSession(&b)
		}, Charging, true, "b"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			st, err := Open(filepath.Join(t.TempDir(), "s.db"), Options{NoSync: true})
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			if err := st.Update(func(tx *Tx) error { s := base; return tx.PutSession(&s) }); err != nil {
				t.Fatal(err)
			}
			if err := st.Update(c.tx); err != nil {
				t.Fatal(err)
			}
			err = st.View(func(tx *Tx) error {
				s, err := tx.Session("a")
				if err != nil || s.State != c.state {
					t.Errorf("stored: %s, %v; want %s", s.State, err, c.state)
				}
				if got, err := tx.SessionByNayax(7); err != nil || got.SparkTransactionID != c.owner {
					t.Errorf("nayax id 7 held by %q (%v), want %q", got.SparkTransactionID, err, c.owner)
				}
				if in := tx.tx.Bucket(bucketSessionOpen).Get([]byte("a")) != nil; in != c.open {
					t.Errorf("open index holds a: %v, want %v", in, c.open)
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			var want map[State]int
			if err := st.db.View(func(tx *bolt.Tx) error { want, err = scanCounts(tx); return err }); err != nil {
				t.Fatal(err)
			}
			if got, _ := st.Counts(); !maps.Equal(got, want) {
				t.Errorf("counts %v, a scan says %v", got, want)
			}
		})
	}
}

// A transaction that fails after its puts writes none of them.
func TestStagedPutsRollBack(t *testing.T) {
	st, err := Open(filepath.Join(t.TempDir(), "s.db"), Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	boom := errors.New("boom")
	err = st.Update(func(tx *Tx) error {
		s := Session{SparkTransactionID: "a", Station: "5", State: Authorized}
		if err := tx.PutSession(&s); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("Update: %v", err)
	}
	if err := st.View(func(tx *Tx) error { _, err := tx.Session("a"); return err }); !errors.Is(err, ErrNotFound) {
		t.Errorf("session after a failed transaction: %v", err)
	}
}

// clone shares no memory with its original: every pointer and slice
// field of Session is covered (a new one fails here until clone copies it).
func TestCloneIsDeep(t *testing.T) {
	s := Session{Ticket: []byte("t"), Request: &Request{Body: []byte("b"), EventIDs: []string{"e"}, Answered: []string{"a"}},
		LastAnswer: &Answer{}, Answers: []Answer{{}}, Payment: &PaymentRecord{}, History: []Transition{{}}, Tariff: &Tariff{}}
	c := s.clone()
	v, cv := reflect.ValueOf(s), reflect.ValueOf(c)
	for i := range v.NumField() {
		f := v.Type().Field(i)
		switch f.Type.Kind() {
		case reflect.Pointer, reflect.Slice:
			if v.Field(i).IsNil() {
				t.Errorf("the test does not fill %s", f.Name)
				continue
			}
			if v.Field(i).Pointer() == cv.Field(i).Pointer() {
				t.Errorf("clone shares %s", f.Name)
			}
		case reflect.Map, reflect.Interface, reflect.Chan, reflect.Func:
			t.Errorf("clone does not know how to copy %s (%s)", f.Name, f.Type.Kind())
		}
	}
	if c.Request.Body[0] = 'x'; s.Request.Body[0] != 'b' {
		t.Error("clone shares the request body")
	}
}
