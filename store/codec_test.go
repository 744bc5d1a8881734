package store

import (
	"bytes"
	"testing"
	"time"
)

// The decoders read bytes from disk, which a power cut, a bad SD card or a
// hand edit can damage: they must return errors, never panic.

func FuzzDecodeOutbox(f *testing.F) {
	for _, e := range []OutboxEntry{
		{ID: "edge-1-1", Type: "session", CreatedAt: time.Date(2025, 3, 14, 9, 26, 53, 0, time.UTC),
			Payload: []byte(`{"id":"edge-1-1","node":"edge-1","seq":1,"type":"session","at":"2025-03-14T09:26:53Z","body":{}}`)},
		{ID: "n-18446744073709551615", Type: "cancel-request", Attempts: 7},
	} {
		v, err := encodeOutbox(&e)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(v)
	}
	f.Add([]byte{})
	f.Add([]byte{outboxFormat, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, v []byte) {
		e, err := decodeOutbox(1, v, true)
		if err != nil {
			return
		}
		again, err := encodeOutbox(&e)
		if err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		e2, err := decodeOutbox(1, again, true)
		if err != nil || e2.ID != e.ID || e2.Type != e.Type || !bytes.Equal(e2.Payload, e.Payload) ||
			e2.Attempts != e.Attempts || !e2.CreatedAt.Equal(e.CreatedAt) {
			t.Fatalf("round trip: %+v -> %+v (%v)", e, e2, err)
		}
	})
}

func FuzzDecodeInbox(f *testing.F) {
	for _, e := range []InboxEntry{
		{ID: "c1", Type: "stop", At: time.Date(2025, 3, 14, 9, 26, 53, 1, time.UTC), Reply: []byte(`{"id":"c1","type":"stop","body":{"Status":{"Verdict":"Approved"}}}`)},
		{ID: "c2"},
	} {
		v, err := encodeInbox(&e)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(v)
	}
	f.Add([]byte{inboxFormat})
	f.Fuzz(func(t *testing.T, v []byte) {
		e, err := decodeInbox("c", v)
		if err != nil {
			return
		}
		again, err := encodeInbox(&e)
		if err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		e2, err := decodeInbox("c", again)
		if err != nil || e2.Type != e.Type || !bytes.Equal(e2.Reply, e.Reply) || !e2.At.Equal(e.At) {
			t.Fatalf("round trip: %+v -> %+v (%v)", e, e2, err)
		}
	})
}

func FuzzDecodeSession(f *testing.F) {
	f.Add([]byte(`{"spark_transaction_id":"7f9c2ba4","nayax_transaction_id":9223372036854775807,"station":"bay-1","state":"charging","created_at":"2025-03-14T09:26:53Z","updated_at":"2025-03-14T09:26:53Z","history":[{"state":"requested","at":"2025-03-14T09:26:53Z"}]}`))
	f.Add([]byte(`null`))
	f.Add([]byte(`{"nayax_transaction_id":2.3658433596983443e+35}`))
	f.Fuzz(func(t *testing.T, v []byte) {
		s, err := decodeSession(v)
		if err != nil {
			return
		}
		if s.SparkTransactionID == "" {
			t.Fatal("decoded a session without id")
		}
	})
}

func FuzzIndexKeys(f *testing.F) {
	f.Add("bay-1", "7f9c2ba4", int64(1700000000), int64(5))
	f.Add("", "", int64(-62135596800), int64(0))
	f.Fuzz(func(t *testing.T, station, id string, sec, nsec int64) {
		if nsec < 0 || nsec >= 1e9 || len(station) > maxKeyPart {
			return
		}
		at := time.Unix(sec, nsec)
		st, gotID, err := splitStationKey(stationKey(station, at, id))
		if err != nil || st != station || gotID != id {
			t.Fatalf("station key: %q %q %v", st, gotID, err)
		}
		got, gotID, err := splitTimeIDKey(timeIDKey(at, id))
		if err != nil || !got.Equal(at) || gotID != id {
			t.Fatalf("time key: %v %q %v", got, gotID, err)
		}
	})
}

func TestTimeKeyOrder(t *testing.T) {
	times := []time.Time{
		{},
		time.Date(1960, 1, 1, 0, 0, 0, 999999999, time.UTC),
		time.Unix(0, 0),
		time.Unix(0, 1),
		time.Date(2025, 3, 14, 9, 26, 53, 0, time.UTC),
		time.Date(2025, 3, 14, 9, 26, 53, 1, time.UTC),
		time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC),
	}
	for i := 1; i < len(times); i++ {
		a, b := timeIDKey(times[i-1], "z"), timeIDKey(times[i], "a")
		if bytes.Compare(a, b) >= 0 {
			t.Errorf("key(%v) >= key(%v)", times[i-1], times[i])
		}
		if got := timeFromKey(b); !got.Equal(times[i]) {
			t.Errorf("timeFromKey = %v, want %v", got, times[i])
		}
	}
	if got := timeFromKey(timeIDKey(time.Time{}, "")); got != (time.Time{}) {
		t.Errorf("zero time round trip = %v", got)
	}
}
