package nayax

import (
	"bytes"
	"math"
	"reflect"
	"testing"

	"github.com/sitelink/sitelink/daemon/nayax/seeds"
)

// sameForward checks that forward writes what the encoder writes for
// every request type the relay forwards, decoded from b (in part, when b
// does not decode whole), and that the types it writes directly still
// take that path.
func sameForward(t *testing.T, b []byte) {
	t.Helper()
	stop, _ := DecodeStopCallback(b)
	txn, _ := DecodeTransactionCallback(b)
	decl, _ := DecodeDeclineCallback(b)
	tmo, _ := DecodeTimeoutCallback(b)
	info, _ := DecodeInfoQuery(b)
	notify, _ := DecodeStopNotify(b)
	for _, c := range []struct {
		name string
		v    any
		flat bool
	}{
		{"StopCallbackRequest", &stop, true},
		{"TransactionCallbackRequest", &txn, false},
		{"DeclineCallbackRequest", &decl, false},
		{"TimeoutCallbackRequest", &tmo, true},
		{"InfoQueryRequest", &info, true},
		{"StopNotifyRequest", &notify, true},
	} {
		got, want := forward(c.v), forwardEncoder(c.v)
		if !bytes.Equal(got, want) {
			t.Errorf("%s from %q:\nforward %s\nencoder %s", c.name, b, got, want)
		}
		// A Literal holding U+2028 or U+2029 is the encoder's.
		lineSep := bytes.Contains(b, []byte("\u2028")) || bytes.Contains(b, []byte("\u2029"))
		if _, ok := appendFlat(nil, c.v); ok != c.flat && !lineSep {
			t.Errorf("%s: written directly %v, want %v", c.name, ok, c.flat)
		}
	}
}

// forwardCases are bodies whose forwarding once differed between the
// paths: U+2028 and U+2029 as they came in a Literal (one encoder
// escapes them).
var forwardCases = []string{
	"{\"StopSiteId\":\"a\u2028b\",\"SiteId\":\"\u2029\",\"MachineId\":1,\"CardHash\":\"h\",\"SparkTransactionId\":\"s\"}",
	`{"StopSiteId":"a\u2028b","SiteId":"\/\u0041"}`,
}

func TestForwardSameBytes(t *testing.T) {
	for _, c := range append(decodeCases, forwardCases...) {
		sameForward(t, []byte(c))
	}
	for _, name := range seeds.Names() {
		sameForward(t, seeds.Get(name))
	}
	// Values no decoder gives: set by hand, as the edge and tests do.
	negZero := math.Copysign(0, -1)
	for _, a := range []Amount{{}, NewAmount(0), {V: negZero}, NewAmount(negZero), NewAmount(1e21), NewAmount(0.1), {V: 3}} {
		r := InfoQueryRequest{Amount: a, SiteId: Literal{raw: `"<&>"`}, HwSerial: Text{S: "x"}, MachineId: Int64{V: 7}}
		if got, want := forward(&r), forwardEncoder(&r); !bytes.Equal(got, want) {
			t.Errorf("Amount %#v: forward %s, encoder %s", a, got, want)
		}
	}
	for _, bad := range []float64{math.NaN(), math.Inf(1)} {
		r := InfoQueryRequest{Amount: NewAmount(bad)}
		if got := forward(&r); got != nil {
			t.Errorf("Amount %v: forward %s, want nil", bad, got)
		}
	}
	// Not a pointer to a struct: the encoder's output.
	if got := forward(map[string]int{"a": 1}); string(got) != `{"a":1}` {
		t.Errorf("forward(map) = %s", got)
	}
}

// TestFlatLayoutRefuses: struct shapes the encoder writes otherwise than
// field by field are left to it.
func TestFlatLayoutRefuses(t *testing.T) {
	type inner struct{ CardUid Text }
	type embedded struct {
		inner
		A Text `json:"A,omitzero"`
	}
	// Two fields tagged "A" (built at run time: vet refuses the
	// declaration).
	textType := reflect.TypeFor[Text]()
	duplicate := reflect.New(reflect.StructOf([]reflect.StructField{
		{Name: "A", Type: textType, Tag: `json:"A"`},
		{Name: "B", Type: textType, Tag: `json:"A"`},
	}))
	duplicate.Elem().Field(0).Set(reflect.ValueOf(NewText("1")))
	duplicate.Elem().Field(1).Set(reflect.ValueOf(NewText("2")))
	type oddName struct {
		A Text `json:"a'b"`
	}
	type untagged struct{ A Text }
	for _, v := range []any{
		&embedded{inner: inner{CardUid: NewText("card")}, A: NewText("x")},
		duplicate.Interface(),
		&oddName{A: NewText("x")},
		&untagged{A: NewText("x")},
	} {
		if _, ok := appendFlat(nil, v); ok {
			t.Errorf("%T written field by field", v)
		}
		if got, want := forward(v), forwardEncoder(v); !bytes.Equal(got, want) {
			t.Errorf("%T: forward %s, encoder %s", v, got, want)
		}
	}
}

func FuzzForwardSameBytes(f *testing.F) {
	for _, c := range forwardCases {
		f.Add([]byte(c))
	}
	for _, c := range decodeCases {
		f.Add([]byte(c))
	}
	for _, name := range seeds.Names() {
		f.Add(seeds.Get(name))
	}
	f.Fuzz(func(t *testing.T, b []byte) { sameForward(t, b) })
}
