package wire_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/sitelink/sitelink/daemon/nayax"
	"github.com/sitelink/sitelink/daemon/wire"
)

// TestBodiesJSON pins the JSON of every typed message to the bytes
// nodes, relays and fleet tools exchange today, and checks that it
// decodes back to the same value.
func TestBodiesJSON(t *testing.T) {
	at := time.Date(2024, 2, 5, 19, 41, 26, 0, time.UTC)
	tests := []struct {
		name string
		v    any // a pointer, so the round trip decodes into its type
		want string
	}{
		{"reply spark approved", &wire.Reply{ID: "c1", Type: wire.CommandStop, Body: wire.Answer{
			SparkTransactionId: "s-1", Status: wire.Status{Verdict: "Approved", ErrorDescription: "No Errors"}, ServiceStationNumber: "5"}},
			`{"id":"c1","type":"stop","body":{"SparkTransactionId":"s-1","Status":{"Verdict":"Approved","ErrorDescription":"No Errors"},"ServiceStationNumber":"5"}}`},
		{"reply spark declined", &wire.Reply{ID: "c2", Type: wire.CommandAuthorize, Body: wire.Answer{
			Status: wire.Status{Verdict: "Declined", ErrorCode: ptr(26), ErrorDescription: "Amount: must be greater than 0"}}},
			`{"id":"c2","type":"authorize","body":{"Status":{"Verdict":"Declined","ErrorCode":26,"ErrorDescription":"Amount: must be greater than 0"}}}`},
		{"reply cortina declined", &wire.Reply{ID: "c3", Type: wire.CommandCancel, Body: wire.Answer{
			Status: wire.Status{Verdict: "Declined", Code: ptr(2), CustomDeclineCode: ptr(2), StatusMessage: "unknown transaction"}}},
			`{"id":"c3","type":"cancel","body":{"Status":{"Verdict":"Declined","Code":2,"CustomDeclineCode":2,"StatusMessage":"unknown transaction"}}}`},
		{"result approved", &wire.Result{EventID: "n-7", Call: "ExternalCancel", Outcome: wire.OutcomeApproved,
			Status: &wire.Status{Verdict: "Approved", ErrorDescription: "No Errors"}, Attempts: 1},
			`{"event_id":"n-7","call":"ExternalCancel","outcome":"approved","status":{"Verdict":"Approved","ErrorDescription":"No Errors"},"attempts":1}`},
		{"result with a payment record", &wire.Result{EventID: "n-9", Call: "ExternalSettlement", Outcome: wire.OutcomeApproved,
			Status: &wire.Status{Verdict: "Approved"}, Record: &wire.PaymentRecord{AuthCode: "333333", NayaxRRN: "98765", Amount: "1.50", SeTime: "20251212110500"}},
			`{"event_id":"n-9","call":"ExternalSettlement","outcome":"approved","status":{"Verdict":"Approved"},"record":{"auth_code":"333333","nayax_rrn":"98765","amount":"1.50","se_time":"20251212110500"}}`},
		{"result error", &wire.Result{EventID: "n-8", Call: "Settlement", Outcome: wire.OutcomeError, Error: "no answer from Nayax"},
			`{"event_id":"n-8","call":"Settlement","outcome":"error","error":"no answer from Nayax"}`},
		{"session event", &wire.SessionEvent{From: "authorized", To: "charging", Reason: "vehicle draws",
			Session: json.RawMessage(`{"spark_transaction_id":"s-1","station":"5"}`)},
			`{"from":"authorized","to":"charging","reason":"vehicle draws","session":{"spark_transaction_id":"s-1","station":"5"}}`},
		{"first session event", &wire.SessionEvent{To: "requested", Session: json.RawMessage(`{}`)},
			`{"to":"requested","session":{}}`},
		{"station event", &wire.StationEvent{Number: "5", CPState: "C", Contactor: true, EnergyWh: 12.5, PowerW: 7400},
			`{"number":"5","cp_state":"C","contactor":true,"energy_wh":12.5,"power_w":7400}`},
		{"station fault", &wire.StationEvent{Number: "6", CPState: "F", Fault: "meter silent"},
			`{"number":"6","cp_state":"F","contactor":false,"fault":"meter silent","energy_wh":0,"power_w":0}`},
		{"config applied", &wire.ReportedConfig{Version: 4, Applied: true, At: at, Source: "group", GroupVersion: 4, NodeVersion: 2, Waiting: []string{"5"}},
			`{"version":4,"applied":true,"at":"2024-02-05T19:41:26Z","source":"group","group_version":4,"node_version":2,"waiting_stations":["5"]}`},
		{"config refused", &wire.ReportedConfig{Version: 5, Error: "unknown key", At: at, Source: "node"},
			`{"version":5,"applied":false,"error":"unknown key","at":"2024-02-05T19:41:26Z","source":"node","group_version":0,"node_version":0}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := json.Marshal(tt.v)
			if err != nil || string(b) != tt.want {
				t.Fatalf("Marshal = %s, %v\nwant      %s", b, err, tt.want)
			}
			back := reflect.New(reflect.TypeOf(tt.v).Elem())
			if err := json.Unmarshal(b, back.Interface()); err != nil || !reflect.DeepEqual(back.Interface(), tt.v) {
				t.Fatalf("round trip = %+v, %v; want %+v", back.Elem(), err, reflect.ValueOf(tt.v).Elem())
			}
		})
	}
}

// TestStatusMatchesNayax checks that Status writes exactly the JSON of
// nayax.Status and nayax.CortinaStatus, and Answer the same object as
// the nayax outcome it stands for: the relay hands it to Nayax.
func TestStatusMatchesNayax(t *testing.T) {
	spark := func(s nayax.Status) wire.Status {
		return wire.Status{Verdict: s.Verdict, ErrorCode: s.ErrorCode, ErrorDescription: s.ErrorDescription, StatusMessage: s.StatusMessage}
	}
	cortina := func(s nayax.CortinaStatus) wire.Status {
		return wire.Status{Verdict: s.Verdict, Code: s.Code, CustomDeclineCode: s.CustomDeclineCode, StatusMessage: s.StatusMessage}
	}
	queued := nayax.Approved("No Errors")
	queued.StatusMessage = "queued"
	sameBytes := []struct {
		name      string
		nayax, in any
	}{
		{"spark approved", nayax.Approved("No Errors"), spark(nayax.Approved("No Errors"))},
		{"spark declined", nayax.Declined(27, "unknown transaction"), spark(nayax.Declined(27, "unknown transaction"))},
		{"spark message", queued, spark(queued)},
		{"cortina approved", nayax.CortinaApproved("cancelled"), cortina(nayax.CortinaApproved("cancelled"))},
		{"cortina declined", nayax.CortinaDeclined(2, "unknown transaction"), cortina(nayax.CortinaDeclined(2, "unknown transaction"))},
	}
	for _, tt := range sameBytes {
		a, _ := json.Marshal(tt.nayax)
		b, _ := json.Marshal(tt.in)
		if !bytes.Equal(a, b) {
			t.Errorf("%s: wire %s, nayax %s", tt.name, b, a)
		}
	}
	st := nayax.Declined(26, "station busy")
	sameObject := []struct {
		name  string
		nayax any
		in    wire.Answer
	}{
		{"stop", nayax.StopCallbackOutcome{Status: st, SparkTransactionId: "s", ServiceStationNumber: "5"},
			wire.Answer{Status: spark(st), SparkTransactionId: "s", ServiceStationNumber: "5"}},
		{"transaction", nayax.TransactionCallbackOutcome{SparkTransactionId: "s", Status: st}, wire.Answer{SparkTransactionId: "s", Status: spark(st)}},
		{"map", map[string]any{"SparkTransactionId": "s", "ServiceStationNumber": "5", "Status": st},
			wire.Answer{SparkTransactionId: "s", Status: spark(st), ServiceStationNumber: "5"}},
		{"cortina", nayax.CortinaResponse{Status: nayax.CortinaDeclined(2, "x")}, wire.Answer{Status: cortina(nayax.CortinaDeclined(2, "x"))}},
	}
	for _, tt := range sameObject {
		a, _ := json.Marshal(tt.nayax)
		b, _ := json.Marshal(tt.in)
		var x, y any
		_ = json.Unmarshal(a, &x)
		_ = json.Unmarshal(b, &y)
		if !reflect.DeepEqual(x, y) {
			t.Errorf("%s: wire %s, nayax %s", tt.name, b, a)
		}
	}
}

func TestDecodeResult(t *testing.T) {
	tests := []struct {
		name    string
		body    string
		want    wire.Result
		wantErr error
	}{
		{"declined", `{"event_id":"n-1","call":"ExternalCancel","outcome":"declined","status":{"Verdict":"Declined","ErrorCode":51}}`,
			wire.Result{EventID: "n-1", Call: "ExternalCancel", Outcome: wire.OutcomeDeclined, Status: &wire.Status{Verdict: "Declined", ErrorCode: ptr(51)}}, nil},
		// encoding/json matches names case-insensitively; nodes have read
		// "Status" and "status" alike.
		{"status any case", `{"event_id":"n-2","outcome":"approved","Status":{"Verdict":"Approved"}}`,
			wire.Result{EventID: "n-2", Outcome: wire.OutcomeApproved, Status: &wire.Status{Verdict: "Approved"}}, nil},
		{"no event id", `{"call":"Settlement","outcome":"approved"}`, wire.Result{}, wire.ErrMalformed},
		{"event id not a string", `{"event_id":7}`, wire.Result{}, wire.ErrMalformed},
		{"not an object", `["n-1"]`, wire.Result{}, wire.ErrMalformed},
		{"empty", ``, wire.Result{}, wire.ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := wire.DecodeResult([]byte(tt.body))
			if (tt.wantErr == nil) != (err == nil) || (tt.wantErr != nil && !errors.Is(err, tt.wantErr)) {
				t.Fatalf("error = %v, want %v", err, tt.wantErr)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("DecodeResult = %+v, want %+v", got, tt.want)
			}
		})
	}
}
