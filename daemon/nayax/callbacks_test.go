package nayax_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"strings"
	"testing"

	"github.com/sitelink/sitelink/daemon/nayax"
	"github.com/sitelink/sitelink/daemon/nayax/seeds"
)

const (
	seedStopRequest  = "000_stopcallback_request.json"
	seedStopResponse = "000_stopcallback_response.json"
	seedTxnRequest   = "001_transactioncallback_request.json"

	sparkID  = "12c7cec2-c690-4425-9a1f-db0db60e2d8c"
	cardHash = "7f2082ba5dbccf706b6987e75b62083f65b5695bc2d8c827c3e46769d007a9e6"
)

// Spec examples of spark.openapi.yaml that have no seed file.
const (
	declineExample = `{"MachineId":71234996,"HwSerial":"0434334921100366",
		"SparkTransactionId":"12c7cec2-c690-4425-9a1f-db0db60e2d8c",
		"Status":{"Verdict":"Declined","ErrorCode":44,"ErrorDescription":"Timeout on POS Device"}}`
	timeoutExample = `{"TerminalId":"0434334921100366","MachineId":71234996,"HwSerial":"0434334921100366",
		"SparkTransactionId":"12c7cec2-c690-4425-9a1f-db0db60e2d8c"}`
)

// with returns the seed object with some members replaced (a nil value
// deletes the member). Values are raw JSON so that tests control the
// exact token Nayax would send.
func with(t *testing.T, seed []byte, set map[string]any) []byte {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal(seed, &m); err != nil {
		t.Fatalf("seed: %v", err)
	}
	for k, v := range set {
		switch v := v.(type) {
		case nil:
			delete(m, k)
		case string:
			m[k] = json.RawMessage(v)
		default:
			t.Fatalf("with: value for %s must be raw JSON text or nil", k)
		}
	}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatalf("with: %v", err)
	}
	return b
}

// wantDecodeError checks err against the expected Spark code and field.
func wantDecodeError(t *testing.T, err error, code int, field string) {
	t.Helper()
	if code == 0 {
		if err != nil {
			t.Fatalf("unexpected error: %v", err)
		}
		return
	}
	var de *nayax.DecodeError
	if !errors.As(err, &de) {
		t.Fatalf("error = %v (%T), want *DecodeError code %d", err, err, code)
	}
	if de.Code != code || de.Field != field {
		t.Fatalf("DecodeError = {Code:%d Field:%q Reason:%q}, want code %d field %q", de.Code, de.Field, de.Reason, code, field)
	}
}

func TestDecodeStopCallbackSeed(t *testing.T) {
	r, err := nayax.DecodeStopCallback(seeds.Get(seedStopRequest))
	if err != nil {
		t.Fatal(err)
	}
	if r.StopSiteId.String() != "4" ||
		r.MachineId != nayax.NewInt64(71234996) ||
		r.HwSerial != nayax.NewText("0434334921100366") ||
		r.CardLast4Digits != nayax.NewText("1234") ||
		r.CardHash != nayax.NewText(cardHash) ||
		r.SparkTransactionId != nayax.NewText(sparkID) ||
		r.NayaxTransactionId != nayax.NewInt64(2004545072) ||
		r.CardUid != nayax.NewText("1288528281124927") ||
		r.MachineAuTime != nayax.NewText("20240205194122328") ||
		r.ServiceStationNumber != nayax.NewText("5") {
		t.Fatalf("decoded seed = %+v", r)
	}
}

func TestDecodeStopCallback(t *testing.T) {
	seed := seeds.Get(seedStopRequest)
	big := `{"Pad":"` + strings.Repeat("x", nayax.MaxBody) + `"}`
	tests := []struct {
		name      string
		body      []byte
		wantCode  int
		wantField string
		check     func(t *testing.T, r nayax.StopCallbackRequest)
	}{
		{
			name: "HwSerial as number lost its leading zero",
			body: with(t, seed, map[string]any{"HwSerial": `434324119376526`}),
			check: func(t *testing.T, r nayax.StopCallbackRequest) {
				if r.HwSerial.S != "434324119376526" || !nayax.SameSerial(r.HwSerial.S, "0434324119376526") {
					t.Fatalf("HwSerial = %+v", r.HwSerial)
				}
			},
		},
		{
			name: "NayaxTransactionId as string",
			body: with(t, seed, map[string]any{"NayaxTransactionId": `"2004545072"`}),
			check: func(t *testing.T, r nayax.StopCallbackRequest) {
				if r.NayaxTransactionId != nayax.NewInt64(2004545072) {
					t.Fatalf("NayaxTransactionId = %+v", r.NayaxTransactionId)
				}
			},
		},
		{
			name: "max int64 id as number",
			body: with(t, seed, map[string]any{"NayaxTransactionId": `9223372036854775807`}),
			check: func(t *testing.T, r nayax.StopCallbackRequest) {
				if r.NayaxTransactionId != nayax.NewInt64(math.MaxInt64) {
					t.Fatalf("NayaxTransactionId = %+v", r.NayaxTransactionId)
				}
			},
		},
		{
			name: "max int64 id as string",
			body: with(t, seed, map[string]any{"NayaxTransactionId": `"9223372036854775807"`}),
			check: func(t *testing.T, r nayax.StopCallbackRequest) {
				if r.NayaxTransactionId != nayax.NewInt64(math.MaxInt64) {
					t.Fatalf("NayaxTransactionId = %+v", r.NayaxTransactionId)
				}
			},
		},
		{
			name: "MachineId as string, ids as numbers",
			body: with(t, seed, map[string]any{"MachineId": `"71234996"`, "CardLast4Digits": `1234`, "ServiceStationNumber": `5`}),
			check: func(t *testing.T, r nayax.StopCallbackRequest) {
				if r.MachineId.V != 71234996 || r.CardLast4Digits.S != "1234" || r.ServiceStationNumber.S != "5" {
					t.Fatalf("decoded = %+v", r)
				}
			},
		},
		{
			name: "StopSiteId as string kept as sent",
			body: with(t, seed, map[string]any{"StopSiteId": `"04"`}),
			check: func(t *testing.T, r nayax.StopCallbackRequest) {
				if r.StopSiteId.String() != `"04"` {
					t.Fatalf("StopSiteId = %s", r.StopSiteId)
				}
			},
		},
		{
			name: "field names any case, unknown fields ignored",
			body: []byte(`{"machineid":71234996,"CARDHASH":"h","sparktransactionid":"s","NewNayaxField":{"x":[1,2]},"Extra":null}`),
			check: func(t *testing.T, r nayax.StopCallbackRequest) {
				if r.MachineId.V != 71234996 || r.CardHash.S != "h" || r.SparkTransactionId.S != "s" {
					t.Fatalf("decoded = %+v", r)
				}
			},
		},
		{
			name: "repeated member: last wins",
			body: []byte(`{"MachineId":1,"machineId":2,"CardHash":"h","SparkTransactionId":"s"}`),
			check: func(t *testing.T, r nayax.StopCallbackRequest) {
				if r.MachineId.V != 2 {
					t.Fatalf("MachineId = %+v, want 2", r.MachineId)
				}
			},
		},
		{
			name: "UTF-8 byte order mark",
			body: append([]byte("\xef\xbb\xbf"), seed...),
		},
		{
			name: "only NayaxTransactionId and HwSerial",
			body: []byte(`{"NayaxTransactionId":2004545072,"HwSerial":434324119376526,"CardHash":"h"}`),
		},
		{
			name:     "too large",
			body:     []byte(big),
			wantCode: nayax.CodeValidation,
		},
		{name: "empty", body: nil, wantCode: nayax.CodeValidation},
		{name: "not JSON", body: []byte(`StopSiteId=4`), wantCode: nayax.CodeValidation},
		{name: "array", body: []byte(`[{}]`), wantCode: nayax.CodeValidation},
		{name: "null", body: []byte(`null`), wantCode: nayax.CodeValidation},
		{name: "string", body: []byte(`"{}"`), wantCode: nayax.CodeValidation},
		{name: "trailing garbage", body: append(seeds.Get(seedStopRequest), " x"...), wantCode: nayax.CodeValidation},
		{name: "two objects", body: append(seeds.Get(seedStopRequest), "{}"...), wantCode: nayax.CodeValidation},
		{name: "truncated", body: seed[:len(seed)/2], wantCode: nayax.CodeValidation},
		{
			name:     "MachineId not a number",
			body:     with(t, seed, map[string]any{"MachineId": `"abc"`}),
			wantCode: nayax.CodeValidation, wantField: "MachineId",
		},
		{
			name:     "MachineId is a bool",
			body:     with(t, seed, map[string]any{"MachineId": `true`}),
			wantCode: nayax.CodeValidation, wantField: "MachineId",
		},
		{
			name:     "CardHash is an object",
			body:     with(t, seed, map[string]any{"CardHash": `{}`}),
			wantCode: nayax.CodeValidation, wantField: "CardHash",
		},
		{
			name:     "NayaxTransactionId with fraction",
			body:     with(t, seed, map[string]any{"NayaxTransactionId": `2004545072.5`}),
			wantCode: nayax.CodeValidation, wantField: "NayaxTransactionId",
		},
		{
			name:     "NayaxTransactionId with exponent",
			body:     with(t, seed, map[string]any{"NayaxTransactionId": `2.3658433596983443e+35`}),
			wantCode: nayax.CodeValidation, wantField: "NayaxTransactionId",
		},
		{
			name:     "NayaxTransactionId beyond int64",
			body:     with(t, seed, map[string]any{"NayaxTransactionId": `9223372036854775808`}),
			wantCode: nayax.CodeValidation, wantField: "NayaxTransactionId",
		},
		{
			name:     "StopSiteId is a bool",
			body:     with(t, seed, map[string]any{"StopSiteId": `true`}),
			wantCode: nayax.CodeValidation, wantField: "StopSiteId",
		},
		{
			name:     "CardHash missing",
			body:     with(t, seed, map[string]any{"CardHash": nil}),
			wantCode: nayax.CodeMissingMandatory, wantField: "CardHash",
		},
		{
			name:     "CardHash blank",
			body:     with(t, seed, map[string]any{"CardHash": `"  "`}),
			wantCode: nayax.CodeMissingMandatory, wantField: "CardHash",
		},
		{
			name:     "CardHash null",
			body:     with(t, seed, map[string]any{"CardHash": `null`}),
			wantCode: nayax.CodeMissingMandatory, wantField: "CardHash",
		},
		{
			name:     "no transaction id",
			body:     with(t, seed, map[string]any{"SparkTransactionId": nil, "NayaxTransactionId": `null`}),
			wantCode: nayax.CodeMissingMandatory, wantField: "SparkTransactionId or NayaxTransactionId",
		},
		{
			name:     "no machine",
			body:     with(t, seed, map[string]any{"MachineId": nil, "HwSerial": `""`}),
			wantCode: nayax.CodeMissingMandatory, wantField: "MachineId or HwSerial",
		},
		{
			name:     "empty object",
			body:     []byte(`{}`),
			wantCode: nayax.CodeMissingMandatory, wantField: "SparkTransactionId or NayaxTransactionId",
		},
		{
			name:     "wrong type reported before missing fields, other fields kept",
			body:     []byte(`{"SparkTransactionId":"` + sparkID + `","MachineId":"abc","ServiceStationNumber":"5"}`),
			wantCode: nayax.CodeValidation, wantField: "MachineId",
			check: func(t *testing.T, r nayax.StopCallbackRequest) {
				if r.SparkTransactionId.S != sparkID || r.ServiceStationNumber.S != "5" {
					t.Fatalf("partial request = %+v, want the ids to echo", r)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := nayax.DecodeStopCallback(tt.body)
			wantDecodeError(t, err, tt.wantCode, tt.wantField)
			if tt.check != nil {
				tt.check(t, r)
			}
		})
	}
}

func TestDecodeErrorReasons(t *testing.T) {
	tests := []struct {
		body []byte
		want string
		is   error
	}{
		{[]byte(`{"Pad":"` + strings.Repeat("x", nayax.MaxBody) + `"}`), "body too large", nayax.ErrInvalid},
		{[]byte(`{`), "malformed JSON", nayax.ErrInvalid},
		{[]byte(`{"CardHash":5.5e300,"MachineId":[]}`), "MachineId: expected an integer", nayax.ErrInvalid},
		{[]byte(`{"SparkTransactionId":"s","MachineId":1}`), "CardHash: missing", nayax.ErrMissing},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			_, err := nayax.DecodeStopCallback(tt.body)
			if err == nil || err.Error() != tt.want || !errors.Is(err, tt.is) {
				t.Fatalf("error = %v, want %q matching %v", err, tt.want, tt.is)
			}
			var de *nayax.DecodeError
			errors.As(err, &de)
			st := nayax.DeclineFor(err)
			if st.Verdict != nayax.VerdictDeclined || st.Code() != de.Code || st.ErrorDescription != tt.want {
				t.Fatalf("DeclineFor = %+v", st)
			}
		})
	}
}

func TestDecodeTransactionCallbackSeed(t *testing.T) {
	r, err := nayax.DecodeTransactionCallback(seeds.Get(seedTxnRequest))
	if err != nil {
		t.Fatal(err)
	}
	if r.NayaxTransactionId.V != 2004545072 || r.SparkTransactionId.S != sparkID ||
		r.SiteId.String() != "2" || r.TerminalId.S != "0434334921100366" ||
		r.MachineId.V != 71234996 || r.HwSerial.S != "0434334921100366" ||
		r.CardLast4Digits.S != "1234" || r.CardHash.S != cardHash || r.CardUid.S != "1288528281124927" ||
		r.MachineAuTime.S != "20240205194122328" || r.Amount != decimalAmount(t, "15.0") ||
		r.ServiceStationNumber.Valid {
		t.Fatalf("decoded seed = %+v", r)
	}
	if r.AuthStatus == nil || !r.AuthStatus.IsApproved() || r.AuthStatus.ErrorCode == nil || *r.AuthStatus.ErrorCode != 0 {
		t.Fatalf("AuthStatus = %+v", r.AuthStatus)
	}
}

func TestDecodeTransactionCallback(t *testing.T) {
	seed := seeds.Get(seedTxnRequest)
	declined := `{"Verdict":"Declined","ErrorCode":37,"ErrorDescription":"Authorization Failed"}`
	tests := []struct {
		name      string
		body      []byte
		wantCode  int
		wantField string
		check     func(t *testing.T, r nayax.TransactionCallbackRequest)
	}{
		{
			name: "quirky types",
			body: with(t, seed, map[string]any{
				"NayaxTransactionId": `"2004545072"`, "TerminalId": `434334921100366`,
				"HwSerial": `434334921100366`, "Amount": `"15.50"`, "SiteId": `"02"`,
				"AuthStatus": `{"verdict":"approved","ErrorCode":"0"}`,
			}),
			check: func(t *testing.T, r nayax.TransactionCallbackRequest) {
				if r.NayaxTransactionId.V != 2004545072 || r.TerminalId.S != "434334921100366" ||
					!nayax.SameSerial(r.HwSerial.S, "0434334921100366") || r.Amount.V != 15.5 ||
					r.SiteId.String() != `"02"` || !r.AuthStatus.IsApproved() || r.AuthStatus.Code() != 0 {
					t.Fatalf("decoded = %+v, AuthStatus %+v", r, r.AuthStatus)
				}
			},
		},
		{
			name: "ServiceStationNumber extension",
			body: with(t, seed, map[string]any{"ServiceStationNumber": `"3"`}),
			check: func(t *testing.T, r nayax.TransactionCallbackRequest) {
				if r.ServiceStationNumber != nayax.NewText("3") {
					t.Fatalf("ServiceStationNumber = %+v", r.ServiceStationNumber)
				}
			},
		},
		{
			name: "declined needs no amount, card or Nayax id",
			body: with(t, seed, map[string]any{"AuthStatus": declined, "Amount": nil, "CardHash": nil, "NayaxTransactionId": nil}),
			check: func(t *testing.T, r nayax.TransactionCallbackRequest) {
				if r.AuthStatus.IsApproved() || r.AuthStatus.Code() != 37 {
					t.Fatalf("AuthStatus = %+v", r.AuthStatus)
				}
			},
		},
		{
			name:     "AuthStatus is a number",
			body:     with(t, seed, map[string]any{"AuthStatus": `5`}),
			wantCode: nayax.CodeValidation, wantField: "AuthStatus",
		},
		{
			name:     "AuthStatus.ErrorCode not a number",
			body:     with(t, seed, map[string]any{"AuthStatus": `{"Verdict":"Declined","ErrorCode":"x"}`}),
			wantCode: nayax.CodeValidation, wantField: "AuthStatus.ErrorCode",
		},
		{
			name:     "AuthStatus.Verdict is an object",
			body:     with(t, seed, map[string]any{"AuthStatus": `{"Verdict":{}}`}),
			wantCode: nayax.CodeValidation, wantField: "AuthStatus.Verdict",
		},
		{
			name:     "Amount not a number",
			body:     with(t, seed, map[string]any{"Amount": `"fifteen"`}),
			wantCode: nayax.CodeValidation, wantField: "Amount",
		},
		{
			name:     "SiteId is an array",
			body:     with(t, seed, map[string]any{"SiteId": `[2]`}),
			wantCode: nayax.CodeValidation, wantField: "SiteId",
		},
		{
			name:     "AuthStatus missing",
			body:     with(t, seed, map[string]any{"AuthStatus": nil}),
			wantCode: nayax.CodeMissingMandatory, wantField: "AuthStatus",
		},
		{
			name:     "AuthStatus null",
			body:     with(t, seed, map[string]any{"AuthStatus": `null`}),
			wantCode: nayax.CodeMissingMandatory, wantField: "AuthStatus",
		},
		{
			name:     "Verdict missing",
			body:     with(t, seed, map[string]any{"AuthStatus": `{"ErrorCode":0}`}),
			wantCode: nayax.CodeMissingMandatory, wantField: "AuthStatus.Verdict",
		},
		{
			name:     "approved without amount",
			body:     with(t, seed, map[string]any{"Amount": nil}),
			wantCode: nayax.CodeMissingMandatory, wantField: "Amount",
		},
		{
			name:     "approved with negative amount",
			body:     with(t, seed, map[string]any{"Amount": `-1`}),
			wantCode: nayax.CodeValidation, wantField: "Amount",
		},
		{
			name:     "approved without NayaxTransactionId",
			body:     with(t, seed, map[string]any{"NayaxTransactionId": nil}),
			wantCode: nayax.CodeMissingMandatory, wantField: "NayaxTransactionId",
		},
		{
			name:     "approved (any case) without CardHash",
			body:     with(t, seed, map[string]any{"CardHash": `""`, "AuthStatus": `{"Verdict":" APPROVED "}`}),
			wantCode: nayax.CodeMissingMandatory, wantField: "CardHash",
		},
		{
			name:     "no transaction id",
			body:     with(t, seed, map[string]any{"AuthStatus": declined, "NayaxTransactionId": nil, "SparkTransactionId": nil}),
			wantCode: nayax.CodeMissingMandatory, wantField: "SparkTransactionId or NayaxTransactionId",
		},
		{
			name:     "no machine",
			body:     with(t, seed, map[string]any{"MachineId": nil, "HwSerial": nil}),
			wantCode: nayax.CodeMissingMandatory, wantField: "MachineId or HwSerial",
		},
		{name: "malformed", body: []byte(`{"AuthStatus":}`), wantCode: nayax.CodeValidation},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := nayax.DecodeTransactionCallback(tt.body)
			wantDecodeError(t, err, tt.wantCode, tt.wantField)
			if tt.check != nil {
				tt.check(t, r)
			}
		})
	}
}

func TestDecodeDeclineCallback(t *testing.T) {
	seed := []byte(declineExample)
	tests := []struct {
		name      string
		body      []byte
		wantCode  int
		wantField string
		check     func(t *testing.T, r nayax.DeclineCallbackRequest)
	}{
		{
			name: "spec example",
			body: seed,
			check: func(t *testing.T, r nayax.DeclineCallbackRequest) {
				if r.MachineId.V != 71234996 || r.HwSerial.S != "0434334921100366" || r.SparkTransactionId.S != sparkID ||
					r.Status == nil || r.Status.Code() != nayax.CodePOSTimeout || r.Status.IsApproved() {
					t.Fatalf("decoded = %+v, Status %+v", r, r.Status)
				}
			},
		},
		{
			name: "serial as number, no Status",
			body: with(t, seed, map[string]any{"HwSerial": `434334921100366`, "MachineId": nil, "Status": nil}),
			check: func(t *testing.T, r nayax.DeclineCallbackRequest) {
				if r.HwSerial.S != "434334921100366" || r.Status != nil {
					t.Fatalf("decoded = %+v", r)
				}
			},
		},
		{
			name: "ErrorCode as string",
			body: with(t, seed, map[string]any{"Status": `{"Verdict":"Declined","ErrorCode":"45"}`}),
			check: func(t *testing.T, r nayax.DeclineCallbackRequest) {
				if r.Status.Code() != nayax.CodePOSCancelled {
					t.Fatalf("Status = %+v", r.Status)
				}
			},
		},
		{
			name:     "Status is a string",
			body:     with(t, seed, map[string]any{"Status": `"Declined"`}),
			wantCode: nayax.CodeValidation, wantField: "Status",
		},
		{
			name:     "ErrorCode beyond int",
			body:     with(t, seed, map[string]any{"Status": `{"Verdict":"Declined","ErrorCode":99999999999999999999}`}),
			wantCode: nayax.CodeValidation, wantField: "Status.ErrorCode",
		},
		{
			name:     "SparkTransactionId missing",
			body:     with(t, seed, map[string]any{"SparkTransactionId": nil}),
			wantCode: nayax.CodeMissingMandatory, wantField: "SparkTransactionId",
		},
		{
			name:     "no machine",
			body:     with(t, seed, map[string]any{"MachineId": `null`, "HwSerial": nil}),
			wantCode: nayax.CodeMissingMandatory, wantField: "MachineId or HwSerial",
		},
		{name: "not an object", body: []byte(`[]`), wantCode: nayax.CodeValidation},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := nayax.DecodeDeclineCallback(tt.body)
			wantDecodeError(t, err, tt.wantCode, tt.wantField)
			if tt.check != nil {
				tt.check(t, r)
			}
		})
	}
}

func TestDecodeTimeoutCallback(t *testing.T) {
	seed := []byte(timeoutExample)
	tests := []struct {
		name      string
		body      []byte
		wantCode  int
		wantField string
		check     func(t *testing.T, r nayax.TimeoutCallbackRequest)
	}{
		{
			name: "spec example",
			body: seed,
			check: func(t *testing.T, r nayax.TimeoutCallbackRequest) {
				if r.TerminalId.S != "0434334921100366" || r.MachineId.V != 71234996 ||
					r.HwSerial.S != "0434334921100366" || r.SparkTransactionId.S != sparkID {
					t.Fatalf("decoded = %+v", r)
				}
			},
		},
		{
			name: "numbers for strings and the other way round",
			body: with(t, seed, map[string]any{"TerminalId": `434334921100366`, "MachineId": `"71234996"`}),
			check: func(t *testing.T, r nayax.TimeoutCallbackRequest) {
				if r.TerminalId.S != "434334921100366" || r.MachineId.V != 71234996 {
					t.Fatalf("decoded = %+v", r)
				}
			},
		},
		{
			name:     "MachineId with exponent",
			body:     with(t, seed, map[string]any{"MachineId": `7.1234996e7`}),
			wantCode: nayax.CodeValidation, wantField: "MachineId",
		},
		{
			name:     "SparkTransactionId blank",
			body:     with(t, seed, map[string]any{"SparkTransactionId": `" "`}),
			wantCode: nayax.CodeMissingMandatory, wantField: "SparkTransactionId",
		},
		{
			name:     "no machine",
			body:     with(t, seed, map[string]any{"MachineId": nil, "HwSerial": nil}),
			wantCode: nayax.CodeMissingMandatory, wantField: "MachineId or HwSerial",
		},
		{name: "trailing garbage", body: []byte(timeoutExample + `,`), wantCode: nayax.CodeValidation},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := nayax.DecodeTimeoutCallback(tt.body)
			wantDecodeError(t, err, tt.wantCode, tt.wantField)
			if tt.check != nil {
				tt.check(t, r)
			}
		})
	}
}

// asMap decodes JSON into a generic map so that key order and spacing do
// not matter.
func asMap(t *testing.T, b []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("asMap(%s): %v", b, err)
	}
	return m
}

func TestStopCallbackOutcomeMatchesSeed(t *testing.T) {
	out := nayax.StopCallbackOutcome{
		Status:               nayax.Approved("No Errors"),
		SparkTransactionId:   sparkID,
		ServiceStationNumber: "5",
	}
	b, err := json.Marshal(out)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := asMap(t, b), asMap(t, seeds.Get(seedStopResponse)); !reflect.DeepEqual(got, want) {
		t.Fatalf("Marshal = %v\nwant      %v", got, want)
	}
}

func TestOutcomesMarshal(t *testing.T) {
	tests := []struct {
		name string
		v    any
		want string
	}{
		{
			"transaction declined",
			nayax.TransactionCallbackOutcome{SparkTransactionId: sparkID, Status: nayax.Declined(nayax.CodeUnknownTransaction, "unknown transaction")},
			`{"SparkTransactionId":"` + sparkID + `","Status":{"Verdict":"Declined","ErrorCode":27,"ErrorDescription":"unknown transaction"}}`,
		},
		{
			"stop without ids",
			nayax.StopCallbackOutcome{Status: nayax.Declined(nayax.CodeTimeout, "station controller offline; stop queued")},
			`{"Status":{"Verdict":"Declined","ErrorCode":992,"ErrorDescription":"station controller offline; stop queued"}}`,
		},
		{
			"decline acknowledged",
			nayax.DeclineCallbackOutcome{SparkTransactionId: sparkID, Status: nayax.Approved("No Errors")},
			`{"SparkTransactionId":"` + sparkID + `","Status":{"Verdict":"Approved","ErrorDescription":"No Errors"}}`,
		},
		{
			"timeout acknowledged",
			nayax.TimeoutCallbackOutcome{Status: nayax.Approved("")},
			`{"Status":{"Verdict":"Approved"}}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := json.Marshal(tt.v)
			if err != nil || string(b) != tt.want {
				t.Fatalf("Marshal = %s, %v\nwant      %s", b, err, tt.want)
			}
		})
	}
}

// A decoded request marshals back to the JSON it came from, with Nayax's
// field names, so the relay can forward it as a command body.
func TestRequestsMarshalBack(t *testing.T) {
	tests := []struct {
		name   string
		body   []byte
		decode func([]byte) (any, error)
	}{
		{"stop", seeds.Get(seedStopRequest), func(b []byte) (any, error) { return nayax.DecodeStopCallback(b) }},
		{"transaction", seeds.Get(seedTxnRequest), func(b []byte) (any, error) { return nayax.DecodeTransactionCallback(b) }},
		{"decline", []byte(declineExample), func(b []byte) (any, error) { return nayax.DecodeDeclineCallback(b) }},
		{"timeout", []byte(timeoutExample), func(b []byte) (any, error) { return nayax.DecodeTimeoutCallback(b) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := tt.decode(tt.body)
			if err != nil {
				t.Fatal(err)
			}
			b, err := json.Marshal(r)
			if err != nil {
				t.Fatal(err)
			}
			want := asMap(t, tt.body)
			// Status omits empty descriptions (the seed's AuthStatus has
			// ErrorDescription "" and StatusMessage ""): same meaning.
			if st, ok := want["AuthStatus"].(map[string]any); ok {
				for k, v := range st {
					if v == "" {
						delete(st, k)
					}
				}
			}
			if got := asMap(t, b); !reflect.DeepEqual(got, want) {
				t.Fatalf("Marshal = %v\nwant      %v", got, want)
			}
		})
	}
}

func TestBigIDsSurviveRoundTrip(t *testing.T) {
	body := []byte(`{"NayaxTransactionId":"9223372036854775807","HwSerial":2.3658433596983443e+35,"CardHash":"h","StopSiteId":12345678901234567890}`)
	r, err := nayax.DecodeStopCallback(body)
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"StopSiteId":12345678901234567890,"HwSerial":"2.3658433596983443e+35","CardHash":"h","NayaxTransactionId":9223372036854775807}`
	if string(b) != want {
		t.Fatalf("Marshal = %s\nwant      %s", b, want)
	}
}

func TestSignature(t *testing.T) {
	got := nayax.Signature("123456789123456789abcdefghijklmnopqr", "RbtdDsiVNjkAeRty")
	want := "1b7dd1c4010698824de66f13e1387efc28a4bba00b720d4be8cdb3b598b9603e"
	if got != want {
		t.Fatalf("Signature = %s, want %s", got, want)
	}
}

func TestStatusHelpers(t *testing.T) {
	d := nayax.Declined(nayax.CodeAlreadyCancelled, "Already Cancelled")
	if d.Verdict != nayax.VerdictDeclined || d.Code() != 28 || d.IsApproved() {
		t.Fatalf("Declined = %+v", d)
	}
	a := nayax.Approved("No Errors")
	if a.Verdict != nayax.VerdictApproved || a.ErrorCode != nil || !a.IsApproved() || a.Code() != nayax.CodeNone {
		t.Fatalf("Approved = %+v", a)
	}
	for _, v := range []string{"Approved", "approved", " APPROVED "} {
		if !(nayax.Status{Verdict: v}).IsApproved() {
			t.Errorf("Verdict %q not approved", v)
		}
	}
	for _, v := range []string{"", "Declined", "Approve", "Error"} {
		if (nayax.Status{Verdict: v}).IsApproved() {
			t.Errorf("Verdict %q approved", v)
		}
	}
}

// DeclineFor and CortinaDeclineFor are the one way a body that did not
// decode becomes an answer, in the relay and in the edge alike.
func TestDeclineFor(t *testing.T) {
	missing := &nayax.DecodeError{Code: nayax.CodeMissingMandatory, Field: "CardHash", Reason: "missing"}
	malformed := &nayax.DecodeError{Code: nayax.CortinaFormatError, Reason: "malformed JSON"}
	tests := []struct {
		name           string
		err            error
		spark, cortina int
		msg            string
	}{
		{"decode error keeps its code", missing, nayax.CodeMissingMandatory, nayax.CodeMissingMandatory, "CardHash: missing"},
		{"wrapped decode error", fmt.Errorf("stop: %w", missing), nayax.CodeMissingMandatory, nayax.CodeMissingMandatory, "CardHash: missing"},
		{"cortina code passes through", malformed, nayax.CortinaFormatError, nayax.CortinaFormatError, "malformed JSON"},
		{"other error", errors.New("boom"), nayax.CodeValidation, nayax.CortinaFormatError, "boom"},
		{"nil is still a decline", nil, nayax.CodeValidation, nayax.CortinaFormatError, "invalid request"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := nayax.DeclineFor(tt.err)
			if st.IsApproved() || st.Code() != tt.spark || st.ErrorDescription != tt.msg {
				t.Errorf("DeclineFor = %+v, want code %d %q", st, tt.spark, tt.msg)
			}
			cs := nayax.CortinaDeclineFor(tt.err)
			if cs.IsApproved() || cs.Code == nil || *cs.Code != tt.cortina || *cs.CustomDeclineCode != tt.cortina || cs.StatusMessage != tt.msg {
				t.Errorf("CortinaDeclineFor = %+v, want code %d %q", cs, tt.cortina, tt.msg)
			}
		})
	}
}

// decimalAmount is the Amount a decoder returns for the JSON number s: it
// keeps s as written.
func decimalAmount(t *testing.T, s string) nayax.Amount {
	t.Helper()
	a, err := nayax.NewAmountDecimal(s)
	if err != nil {
		t.Fatal(err)
	}
	return a
}
