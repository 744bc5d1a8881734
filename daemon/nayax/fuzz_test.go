package nayax_test

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
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

// forwardRoundTrip checks that what the relay forwards decodes back to
// want, the accepted request minus what Forward must drop.
func forwardRoundTrip[T any](t *testing.T, fwd []byte, want T, decode func([]byte) (T, error)) {
	t.Helper()
	back, err := decode(fwd)
	if err != nil {
		t.Fatalf("re-decode forwarded %s: %v", fwd, err)
	}
	if !reflect.DeepEqual(back, want) {
		t.Fatalf("Forward changed the request:\n got %+v\nwant %+v", back, want)
	}
}

func has(t nayax.Text) bool { return strings.TrimSpace(t.S) != "" }

// keyed is what Forward makes of a decoded CardHash.
func keyed(t nayax.Text) nayax.Text {
	if h := testKey.Hash(t.S); h != "" {
		return nayax.NewText(h)
	}
	return nayax.Text{}
}

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
		want := r
		want.CardUid = nayax.Text{}
		want.CardHash = keyed(r.CardHash)
		if has(r.CardHash) && want.CardHash == r.CardHash {
			t.Fatalf("Forward would carry Nayax's CardHash %q", r.CardHash.S)
		}
		forwardRoundTrip(t, r.Forward(testKey), want, nayax.DecodeStopCallback)
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
		want := r
		want.CardUid = nayax.Text{}
		want.CardHash = keyed(r.CardHash)
		if has(r.CardHash) && want.CardHash == r.CardHash {
			t.Fatalf("Forward would carry Nayax's CardHash %q", r.CardHash.S)
		}
		forwardRoundTrip(t, r.Forward(testKey), want, nayax.DecodeTransactionCallback)
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
		forwardRoundTrip(t, r.Forward(testKey), r, nayax.DecodeDeclineCallback)
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
		forwardRoundTrip(t, r.Forward(testKey), r, nayax.DecodeTimeoutCallback)
	})
}

// cortinaQuirks are Cortina shapes the reference example does not show.
var cortinaQuirks = []string{
	`{"BasicInfo":{"NayaxTransactionId":"3584697384"},"DeviceInfo":{"HwSerial":434324119376526}}`,
	`{"BasicInfo":{"TransactionId":"N99O4XURDQYJZIK4OTCAWF1RHHA40TZWVCRB","SiteId":"01"},"MachineInfo":{"Id":"106791869","TerminalId":8888888844},"ReasonCode":"07"}`,
	`{"BasicInfo":null,"MachineInfo":5,"CardData":{"CardNumber":"4111111111111111"}}`,
	`{"basicinfo":{"transactionid":1e5},"machineinfo":{"id":1},"PaymentInfo":{"Token":"t","AuthCode":333333}}`,
}

// cardFields are CardData members that must never leave the relay.
var cardFields = []string{"CardNumber", "Track2", "EMVData", "CardHolderName", "IDNumber", "CVV2", "ExpMonth", "ExpYear", "RandomNumber"}

// injectCardData returns b with every card field and PaymentInfo.Token
// set to marker, or nil when b is not a JSON object.
func injectCardData(b []byte, marker string) []byte {
	var m map[string]json.RawMessage
	if json.Unmarshal(b, &m) != nil || m == nil {
		return nil
	}
	card := make(map[string]string, len(cardFields))
	for _, f := range cardFields {
		card[f] = marker
	}
	m["CardData"], _ = json.Marshal(card)
	pay := map[string]json.RawMessage{}
	if raw, ok := m["PaymentInfo"]; ok && json.Unmarshal(raw, &pay) != nil {
		return nil // not an object: the body is rejected anyway
	}
	if pay == nil {
		pay = map[string]json.RawMessage{}
	}
	pay["Token"], _ = json.Marshal(marker)
	m["PaymentInfo"], _ = json.Marshal(pay)
	out, _ := json.Marshal(m)
	return out
}

func FuzzDecodeCortinaCancel(f *testing.F) {
	addSeeds(f, cortinaQuirks...)
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := nayax.DecodeCortinaCancel(b)
		if err != nil {
			var de *nayax.DecodeError
			if !errors.As(err, &de) || (de.Code != nayax.CortinaFormatError && de.Code != nayax.CortinaMissingMandatory) {
				t.Fatalf("error %v (%T), want a *DecodeError with code 8 or 997", err, err)
			}
		} else {
			if !(has(c.TransactionId) || c.NayaxTransactionId.Valid && c.NayaxTransactionId.V != 0) ||
				!(c.MachineId.Valid && c.MachineId.V != 0 || has(c.HwSerial)) {
				t.Fatalf("accepted without mandatory fields: %+v", c)
			}
			forwardRoundTrip(t, c.Forward(testKey), c, nayax.DecodeCortinaCancel)
		}

		// A marker the fuzzer cannot know, put in every card field and the
		// token, must not come out of Forward or sit in the decoded value.
		var rnd [12]byte
		rand.Read(rnd[:])
		marker := "CARD-" + hex.EncodeToString(rnd[:])
		body := injectCardData(b, marker)
		if body == nil {
			return
		}
		c, err = nayax.DecodeCortinaCancel(body)
		if strings.Contains(fmt.Sprintf("%+v", c), marker) {
			t.Fatalf("card data decoded into %+v", c)
		}
		if err == nil && bytes.Contains(c.Forward(testKey), []byte(marker)) {
			t.Fatalf("Forward carries card data: %s", c.Forward(testKey))
		}
		if err != nil && strings.Contains(err.Error(), marker) {
			t.Fatalf("error quotes card data: %v", err)
		}
	})
}

var outboundCalls = []string{
	nayax.CallStartAuthentication, nayax.CallTriggerTransaction, nayax.CallSettlement,
	nayax.CallCancelTransaction, nayax.CallExternalSettlement, nayax.CallExternalCancel,
}

func FuzzValidateOutbound(f *testing.F) {
	for i, call := range outboundCalls {
		f.Add(uint8(i), []byte(outboundExamples[call]))
	}
	for _, name := range seeds.Names() {
		f.Add(uint8(5), seeds.Get(name))
	}
	f.Add(uint8(4), []byte(`{"NayaxTransactionId":"1","SiteId":"02","TerminalId":1,"TerminalIdType":"2","Amount":"0","ProductInfo":[null,{}]}`))
	f.Add(uint8(0), []byte(`{"TokenId":1,"TerminalId":"t","TerminalIdType":2,"Random":"AAAAAAAAAAAAAAAAA","Cipher":"AAAAAAAAAAAAAAAAAAAAAA==","SparkTransactionId":"s"}`))
	f.Fuzz(func(t *testing.T, i uint8, b []byte) {
		call := outboundCalls[int(i)%len(outboundCalls)]
		err := nayax.ValidateOutbound(call, b)
		checkErr(t, err)
		if err != nil {
			return
		}
		var v any
		switch call {
		case nayax.CallStartAuthentication:
			v = new(nayax.StartAuthenticationRequest)
		case nayax.CallTriggerTransaction:
			v = new(nayax.TriggerTransactionRequest)
		case nayax.CallSettlement:
			v = new(nayax.SettlementRequest)
		case nayax.CallCancelTransaction:
			v = new(nayax.CancelTransactionRequest)
		case nayax.CallExternalSettlement:
			v = new(nayax.ExternalSettlementRequest)
		case nayax.CallExternalCancel:
			v = new(nayax.ExternalCancelRequest)
		}
		if err := json.Unmarshal(b, v); err != nil {
			t.Fatalf("valid body does not decode: %v", err)
		}
		if !outboundMandatory(v) {
			t.Fatalf("accepted without mandatory fields: %+v", v)
		}
		outboundRoundTrip(t, call, b, func() any { return reflect.New(reflect.TypeOf(v).Elem()).Interface() })
	})
}

// outboundMandatory restates ValidateOutbound's rules independently.
func outboundMandatory(v any) bool {
	id := func(i nayax.Int64) bool { return i.Valid && i.V > 0 }
	terminal := func(t nayax.Text, typ nayax.Int64) bool { return has(t) && typ.Valid && (typ.V == 1 || typ.V == 2) }
	amount := func(a nayax.Amount) bool { return a.Valid && a.V >= 0 }
	flow := func(c nayax.Int64) bool { return c.Valid && (c.V == 1 || c.V == 2) }
	switch r := v.(type) {
	case *nayax.StartAuthenticationRequest:
		return id(r.TokenId) && terminal(r.TerminalId, r.TerminalIdType) && len(r.Random.S) == 17 && has(r.Cipher) && has(r.SparkTransactionId)
	case *nayax.TriggerTransactionRequest:
		return has(r.SparkTransactionId) && terminal(r.TerminalId, r.TerminalIdType) && r.TransactionTimeout.V > 0 && (!r.Amount.Valid || r.Amount.V >= 0)
	case *nayax.SettlementRequest:
		return id(r.NayaxTransactionId) && has(r.SparkTransactionId) && terminal(r.TerminalId, r.TerminalIdType) && amount(r.Amount)
	case *nayax.CancelTransactionRequest:
		return id(r.NayaxTransactionId) && has(r.SparkTransactionId) && terminal(r.TerminalId, r.TerminalIdType) && flow(r.CancellationType) && amount(r.CancelAmount)
	case *nayax.ExternalSettlementRequest:
		return id(r.NayaxTransactionId) && r.SiteId.Valid() && terminal(r.TerminalId, r.TerminalIdType) && amount(r.Amount)
	case *nayax.ExternalCancelRequest:
		return id(r.NayaxTransactionId) && r.SiteId.Valid() && terminal(r.TerminalId, r.TerminalIdType) && flow(r.CancellationType) &&
			(strings.TrimSpace(r.ReasonCode.Value()) != "" || has(r.ReasonText)) && amount(r.CancelAmount)
	}
	return false
}

// The Device Start and StopNotify decoders: what they accept has its
// mandatory fields and survives a round trip; StopNotify's Forward never
// carries Nayax's CardHash or the card UID.
func FuzzDecodeDeviceCalls(f *testing.F) {
	addSeeds(f,
		`{"HwSerial":"0434334921100366","MachineId":71234996,"TokenId":116383,"Random":"123456789qwertyui"}`,
		`{"HwSerial":"0434334921100366","MachineId":71234996,"SparkTransactionId":"12c7cec2-c690-4425-9a1f-db0db60e2d8c","ServiceStationNumber":"5","SiteId":2,"Amount":10}`,
		`{"HwSerial":"0434334921100366","MachineId":71234996,"NayaxTransactionId":2004545072,"SparkTransactionId":"12c7cec2-c690-4425-9a1f-db0db60e2d8c","Amount":10,"CardLast4Digits":"1234","CardHash":"7f20","CardUid":"1","ServiceStationNumber":"5","SiteId":2,"MachineAuTime":"20240205194122328"}`,
		`{"StopSiteId":4,"MachineId":71234996,"HwSerial":"0434334921100366","CardLast4Digits":"1234","CardHash":"7f20","CardUid":"1","ServiceStationNumber":"5"}`,
		`{"Random":"short","TokenId":"x"}`,
	)
	f.Fuzz(func(t *testing.T, b []byte) {
		if r, err := nayax.DecodeStartSession(b); err == nil {
			if !r.TokenId.Valid || len(r.Random.S) != nayax.RandomLen || !(r.MachineId.Valid || has(r.HwSerial)) {
				t.Fatalf("StartSession accepted %+v", r)
			}
			roundTrip(t, r, nayax.DecodeStartSession)
		} else {
			checkErr(t, err)
		}
		if r, err := nayax.DecodeInfoQuery(b); err == nil {
			if !has(r.SparkTransactionId) || !(r.MachineId.Valid || has(r.HwSerial)) || (r.Amount.Valid && r.Amount.V < 0) {
				t.Fatalf("InfoQuery accepted %+v", r)
			}
			roundTrip(t, r, nayax.DecodeInfoQuery)
		} else {
			checkErr(t, err)
		}
		if r, err := nayax.DecodeTransactionNotify(b); err == nil {
			if !has(r.SparkTransactionId) || !r.NayaxTransactionId.Valid || r.NayaxTransactionId.V <= 0 || !r.Amount.Valid || r.Amount.V < 0 || !has(r.CardHash) {
				t.Fatalf("TransactionNotify accepted %+v", r)
			}
			roundTrip(t, r, nayax.DecodeTransactionNotify)
			if cb := r.Callback(); cb.AuthStatus == nil || !cb.AuthStatus.IsApproved() || cb.NayaxTransactionId != r.NayaxTransactionId {
				t.Fatalf("Callback of %+v: %+v", r, cb)
			}
		} else {
			checkErr(t, err)
		}
		if r, err := nayax.DecodeStopNotify(b); err == nil {
			if !has(r.CardHash) || !(r.MachineId.Valid || has(r.HwSerial)) {
				t.Fatalf("StopNotify accepted %+v", r)
			}
			roundTrip(t, r, nayax.DecodeStopNotify)
			want := r
			want.CardUid = nayax.Text{}
			want.CardHash = keyed(r.CardHash)
			if want.CardHash == r.CardHash {
				t.Fatalf("Forward would carry Nayax's CardHash %q", r.CardHash.S)
			}
			forwardRoundTrip(t, r.Forward(testKey), want, nayax.DecodeStopNotify)
		} else {
			checkErr(t, err)
		}
	})
}
