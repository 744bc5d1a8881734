package nayax_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/sitelink/sitelink/daemon/nayax"
	"github.com/sitelink/sitelink/daemon/nayax/seeds"
)

// quirkSeeds are shapes real Nayax traffic has that the reference
// examples do not show.
var quirkSeeds = []string{
	`{"HwSerial":434324119376526,"NayaxTransactionId":"2004545072","CardHash":"h","SparkTransactionId":"s"}`,
	`{"TransactionId":2.3658433596983443e+35,"machineid":"71234996","SiteId":"02"}`,
	`{"NayaxTransactionId":9223372036854775807,"AuthStatus":{"Verdict":"Approved"},"Amount":"15.5","MachineId":1,"CardHash":"h"}`,
	`{"AuthStatus":5,"Status":"x","MachineId":1.5}`,
	`{"a":1} trailing`,
	`[]`,
	``,
}

func addSeeds(f *testing.F, extra ...string) {
	for _, name := range seeds.Names() {
		f.Add(seeds.Get(name))
	}
	for _, s := range append(quirkSeeds, extra...) {
		f.Add([]byte(s))
	}
}

// checkErr enforces the error contract: nil, or a *DecodeError with a
// Spark code the relay can answer with.
func checkErr(t *testing.T, err error) {
	t.Helper()
	if err == nil {
		return
	}
	var de *nayax.DecodeError
	if !errors.As(err, &de) {
		t.Fatalf("error %v is %T, want *DecodeError", err, err)
	}
	if de.Code != nayax.CodeValidation && de.Code != nayax.CodeMissingMandatory {
		t.Fatalf("DecodeError code %d", de.Code)
	}
}

// roundTrip checks that an accepted request marshals and decodes back to
// the same value: the relay forwards decoded requests as JSON.
func roundTrip[T any](t *testing.T, r T, decode func([]byte) (T, error)) {
	t.Helper()
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false) // keep Literal strings byte for byte
	if err := enc.Encode(r); err != nil {
		t.Fatalf("marshal accepted request: %v", err)
	}
	back, err := decode(buf.Bytes())
	if err != nil {
		t.Fatalf("re-decode %s: %v", buf.Bytes(), err)
	}
	if !reflect.DeepEqual(back, r) {
		t.Fatalf("round trip changed the request:\n got %+v\nwant %+v", back, r)
	}
}

func has(t nayax.Text) bool { return strings.TrimSpace(t.S) != "" }

func FuzzDecodeStopCallback(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := nayax.DecodeStopCallback(b)
		checkErr(t, err)
		if err != nil {
			return
		}
		if !has(r.CardHash) || !(has(r.SparkTransactionId) || r.NayaxTransactionId.Valid) || !(r.MachineId.Valid || has(r.HwSerial)) {
			t.Fatalf("accepted without mandatory fields: %+v", r)
		}
		roundTrip(t, r, nayax.DecodeStopCallback)
	})
}

func FuzzDecodeTransactionCallback(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := nayax.DecodeTransactionCallback(b)
		checkErr(t, err)
		if err != nil {
			return
		}
		if r.AuthStatus == nil || strings.TrimSpace(r.AuthStatus.Verdict) == "" ||
			!(has(r.SparkTransactionId) || r.NayaxTransactionId.Valid) || !(r.MachineId.Valid || has(r.HwSerial)) {
			t.Fatalf("accepted without mandatory fields: %+v", r)
		}
		if r.AuthStatus.IsApproved() && (!r.NayaxTransactionId.Valid || !r.Amount.Valid || r.Amount.V < 0 || !has(r.CardHash)) {
			t.Fatalf("approval accepted without id, amount or card: %+v", r)
		}
		roundTrip(t, r, nayax.DecodeTransactionCallback)
	})
}

func FuzzDecodeDeclineCallback(f *testing.F) {
	addSeeds(f, declineExample)
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := nayax.DecodeDeclineCallback(b)
		checkErr(t, err)
		if err != nil {
			return
		}
		if !has(r.SparkTransactionId) || !(r.MachineId.Valid || has(r.HwSerial)) {
			t.Fatalf("accepted without mandatory fields: %+v", r)
		}
		roundTrip(t, r, nayax.DecodeDeclineCallback)
	})
}

func FuzzDecodeTimeoutCallback(f *testing.F) {
	addSeeds(f, timeoutExample)
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := nayax.DecodeTimeoutCallback(b)
		checkErr(t, err)
		if err != nil {
			return
		}
		if !has(r.SparkTransactionId) || !(r.MachineId.Valid || has(r.HwSerial)) {
			t.Fatalf("accepted without mandatory fields: %+v", r)
		}
		roundTrip(t, r, nayax.DecodeTimeoutCallback)
	})
}
