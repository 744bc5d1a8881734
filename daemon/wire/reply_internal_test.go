package wire

import (
	"bytes"
	"encoding/json"
	"math"
	"reflect"
	"strconv"
	"testing"
)

// sameReplyJSON: decodeReplyFast gives what json.Unmarshal gives for
// every payload it takes, and ReplyPayload and AnswerJSON write what
// json.Marshal writes for whatever Unmarshal decoded.
func sameReplyJSON(t *testing.T, payload []byte) {
	t.Helper()
	var want Reply
	werr := json.Unmarshal(payload, &want)
	if got, ok := decodeReplyFast(payload); ok {
		if werr != nil {
			t.Fatalf("%s: fast path took what json.Unmarshal refuses (%v): %+v", payload, werr, got)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%s:\nfast      %+v\nUnmarshal %+v", payload, got, want)
		}
	}
	if werr != nil {
		return
	}
	m, merr := json.Marshal(want)
	p, perr := ReplyPayload(want)
	if (merr == nil) != (perr == nil) || !bytes.Equal(m, p) {
		t.Fatalf("%+v:\nReplyPayload %s, %v\njson.Marshal %s, %v", want, p, perr, m, merr)
	}
	ma, _ := json.Marshal(want.Body)
	if a := AnswerJSON(want.Body); !bytes.Equal(a, ma) {
		t.Fatalf("%+v:\nAnswerJSON   %s\njson.Marshal %s", want.Body, a, ma)
	}
}

var replyCases = []string{
	`{"id":"c1","type":"stop","body":{"SparkTransactionId":"12c7","Status":{"Verdict":"Approved","ErrorCode":0,"ErrorDescription":"No Errors"},"ServiceStationNumber":"5"}}`,
	`{"id":"c2","type":"cancel","body":{"Status":{"Verdict":"Declined","Code":2,"CustomDeclineCode":-2}}}`,
	`{"id":"c3","type":"info","body":{"Status":{"Verdict":"Approved"},"ServiceStationAvailability":1,"PosDisplay":"Free","Amount":"15.00","NayaxTransactionId":9223372036854775807,"SiteId":"4","MachineAuTime":"20240205194122328"}}`,
	`{"id":"c4","type":"stop","body":{"Status":{"Verdict":"Approved","StatusMessage":"a<b>&c"}}}`,
	`{"id":"c5","body":{}}`, `{"id":"c6"}`, `{}`, `{"id":""}`,
	`{"id":"c7","type":"stop","body":{"Status":{"Verdict":"A","ErrorCode":1.5}}}`,
	`{"id":"c8","body":{"Status":{"ErrorCode":01}}}`,
	`{"id":"c9","body":{"Status":{"ErrorCode":-0}}}`,
	`{"id":"c10","body":{"Status":{"ErrorCode":null}}}`,
	`{"id":"c11","body":{"NayaxTransactionId":9223372036854775808}}`,
	`{"id":"c12","body":{"Status":{"Verdict":"x"},"Status":{"Code":1}}}`,
	`{"id":"c13","ID":"c14"}`, `{"ID":"c15"}`, `{"id":"c16","id":"c17"}`,
	`{"id":"c18","body":{"Status":{"Verdict":"\u00e9"}}}`, "{\"id\":\"c19\xff\"}", `{"id":"c20","x":1}`,
	`{"id":"c21"} `, `{"id":"c22"}x`, ` {"id":"c23"}`, `{"id" : "c24"}`, `{"id":"c25","body":[]}`, `{"id":"c26","body":{"Status":"s"}}`,
	`{"id":"c27","body":{"ServiceStationAvailability":` + strconv.Itoa(math.MaxInt32) + `1}}`,
	`{"id":"c28","body":{"Status":{"Verdict":"A"}},}`, `{"id":"c29",}`, `{"id":"c30"`, `{"id":"c31","body":{"SparkTransactionId":"tab	x"}}`,
}

func TestReplyJSON(t *testing.T) {
	for _, c := range replyCases {
		sameReplyJSON(t, []byte(c))
	}
	// What the edge writes takes the fast paths both ways.
	zero, two := 0, 2
	for _, a := range []Answer{
		{SparkTransactionId: "12c7cec2-c690-4425-9a1f-db0db60e2d8c", ServiceStationNumber: "5", Status: Status{Verdict: "Approved", ErrorCode: &zero, ErrorDescription: "No Errors"}},
		{Status: Status{Verdict: "Declined", Code: &two, CustomDeclineCode: &two}},
		{ServiceStationAvailability: 1, PosDisplay: "Free", Amount: "15.00", Status: Status{Verdict: "Approved", ErrorCode: &zero}},
	} {
		r := Reply{ID: "4f1c-9", Type: CommandStop, Body: a}
		p, err := ReplyPayload(r)
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := appendAnswer(nil, a); !ok {
			t.Errorf("%+v: not written directly", a)
		}
		if got, ok := decodeReplyFast(p); !ok || !reflect.DeepEqual(got, r) {
			t.Errorf("%s: fast path %v, %+v", p, ok, got)
		}
		sameReplyJSON(t, p)
	}
}

func FuzzReplyJSON(f *testing.F) {
	for _, c := range replyCases {
		f.Add([]byte(c))
	}
	f.Fuzz(func(t *testing.T, payload []byte) { sameReplyJSON(t, payload) })
}
