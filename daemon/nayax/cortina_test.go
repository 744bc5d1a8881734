package nayax_test

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/sitelink/sitelink/daemon/nayax"
	"github.com/sitelink/sitelink/daemon/nayax/seeds"
)

const (
	seedCortinaCancel   = "004_cortina_prepaid_cancel_request.json"
	seedCortinaResponse = "004_cortina_prepaid_cancel_response.json"
)

// withPath is like with, for a member of a nested object ("BasicInfo.Id").
// A nil value deletes the member.
func withPath(t *testing.T, seed []byte, path string, v any) []byte {
	t.Helper()
	var m map[string]any
	dec := json.NewDecoder(strings.NewReader(string(seed)))
	dec.UseNumber()
	if err := dec.Decode(&m); err != nil {
		t.Fatalf("seed: %v", err)
	}
	parts := strings.Split(path, ".")
	obj := m
	for _, p := range parts[:len(parts)-1] {
		next, ok := obj[p].(map[string]any)
		if !ok {
			next = map[string]any{}
			obj[p] = next
		}
		obj = next
	}
	last := parts[len(parts)-1]
	if v == nil {
		delete(obj, last)
	} else {
		obj[last] = json.RawMessage(v.(string))
	}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatalf("withPath: %v", err)
	}
	return b
}

func TestDecodeCortinaCancelSeed(t *testing.T) {
	c, err := nayax.DecodeCortinaCancel(seeds.Get(seedCortinaCancel))
	if err != nil {
		t.Fatal(err)
	}
	want := nayax.CortinaCancel{
		TransactionId: nayax.NewText("2.3658433596983443e+35"),
		// NayaxTransactionId 0 means none.
		MachineAuTime: nayax.NewText("string"),
		Amount:        decimalAmount(t, "0.1"),
		CurrencyCode:  nayax.NewText("USD"),
		MachineId:     nayax.NewInt64(869761713),
		TerminalId:    nayax.NewText("987654321"),
		HwSerial:      nayax.NewText("string"),
		ReasonText:    nayax.NewText("General exception"),
		AuthAmount:    decimalAmount(t, "0.1"),
		SettAmount:    decimalAmount(t, "0.1"),
		SrvTranId:     nayax.NewText("2.3658433596983443e+35"),
		AuthCode:      nayax.NewText("333333"),
		RRN:           nayax.NewText("111111"),
	}
	want.SiteId, _ = nayax.ParseLiteral("12")
	want.ReasonCode, _ = nayax.ParseLiteral("999")
	if !reflect.DeepEqual(c, want) {
		t.Fatalf("decoded seed:\n got %+v\nwant %+v", c, want)
	}

	const wantForward = `{"BasicInfo":{"TransactionId":"2.3658433596983443e+35","SiteId":12,"MachineAuTime":"string","Amount":0.1,"CurrencyCode":"USD"},` +
		`"MachineInfo":{"Id":869761713,"TerminalId":"987654321"},"DeviceInfo":{"HwSerial":"string"},"ReasonCode":999,"ReasonText":"General exception",` +
		`"PaymentInfo":{"AuthAmount":0.1,"SettAmount":0.1,"SrvTranId":"2.3658433596983443e+35","AuthCode":"333333","RRN":"111111"}}`
	fwd := c.Forward(testKey)
	if string(fwd) != wantForward {
		t.Fatalf("Forward = %s\nwant      %s", fwd, wantForward)
	}
	for _, leak := range []string{"CardData", "Test Card Holder", "CardNumber", "EMVData", "IDNumber", "Token", "ActorInfo", "CustomData", "GeoLocation", "Latitude"} {
		if strings.Contains(string(fwd), leak) {
			t.Fatalf("Forward contains %q: %s", leak, fwd)
		}
	}
	back, err := nayax.DecodeCortinaCancel(fwd)
	if err != nil || !reflect.DeepEqual(back, c) {
		t.Fatalf("Forward does not round-trip: %+v, %v", back, err)
	}
}

func TestDecodeCortinaCancel(t *testing.T) {
	seed := seeds.Get(seedCortinaCancel)
	big := `{"Pad":"` + strings.Repeat("x", nayax.MaxBody) + `"}`
	tests := []struct {
		name      string
		body      []byte
		wantCode  int
		wantField string
		check     func(t *testing.T, c nayax.CortinaCancel)
	}{
		{
			name: "NayaxTransactionId instead of TransactionId",
			body: withPath(t, withPath(t, seed, "BasicInfo.TransactionId", nil), "BasicInfo.NayaxTransactionId", `"3584697384"`),
			check: func(t *testing.T, c nayax.CortinaCancel) {
				if c.NayaxTransactionId != nayax.NewInt64(3584697384) || c.TransactionId.Valid {
					t.Fatalf("decoded = %+v", c)
				}
			},
		},
		{
			name:      "no TransactionId and NayaxTransactionId 0",
			body:      withPath(t, seed, "BasicInfo.TransactionId", nil),
			wantCode:  nayax.CortinaMissingMandatory,
			wantField: "BasicInfo.TransactionId or BasicInfo.NayaxTransactionId",
		},
		{
			name:      "blank TransactionId",
			body:      withPath(t, seed, "BasicInfo.TransactionId", `"  "`),
			wantCode:  nayax.CortinaMissingMandatory,
			wantField: "BasicInfo.TransactionId or BasicInfo.NayaxTransactionId",
		},
		{
			name:      "no BasicInfo",
			body:      withPath(t, seed, "BasicInfo", nil),
			wantCode:  nayax.CortinaMissingMandatory,
			wantField: "BasicInfo.TransactionId or BasicInfo.NayaxTransactionId",
		},
		{
			name:      "BasicInfo null",
			body:      withPath(t, seed, "BasicInfo", `null`),
			wantCode:  nayax.CortinaMissingMandatory,
			wantField: "BasicInfo.TransactionId or BasicInfo.NayaxTransactionId",
		},
		{
			name:      "no machine",
			body:      withPath(t, withPath(t, seed, "MachineInfo", nil), "DeviceInfo.HwSerial", nil),
			wantCode:  nayax.CortinaMissingMandatory,
			wantField: "MachineInfo.Id or DeviceInfo.HwSerial",
		},
		{
			name:      "MachineInfo.Id 0 and no HwSerial",
			body:      withPath(t, withPath(t, seed, "MachineInfo.Id", `0`), "DeviceInfo", nil),
			wantCode:  nayax.CortinaMissingMandatory,
			wantField: "MachineInfo.Id or DeviceInfo.HwSerial",
		},
		{
			name: "HwSerial as number only",
			body: withPath(t, withPath(t, seed, "MachineInfo", nil), "DeviceInfo.HwSerial", `434324119376526`),
			check: func(t *testing.T, c nayax.CortinaCancel) {
				if c.HwSerial.S != "434324119376526" || c.MachineId.Valid || !nayax.SameSerial(c.HwSerial.S, "0434324119376526") {
					t.Fatalf("decoded = %+v", c)
				}
			},
		},
		{
			name: "MachineInfo.Id as string",
			body: withPath(t, seed, "MachineInfo.Id", `"869761713"`),
			check: func(t *testing.T, c nayax.CortinaCancel) {
				if c.MachineId != nayax.NewInt64(869761713) {
					t.Fatalf("MachineId = %+v", c.MachineId)
				}
			},
		},
		{
			name: "AuthCode and RRN as strings, ReasonCode as string",
			body: withPath(t, withPath(t, withPath(t, seed, "PaymentInfo.AuthCode", `"033333"`), "PaymentInfo.RRN", `"011111"`), "ReasonCode", `"07"`),
			check: func(t *testing.T, c nayax.CortinaCancel) {
				if c.AuthCode.S != "033333" || c.RRN.S != "011111" || c.ReasonCode.String() != `"07"` {
					t.Fatalf("decoded = %+v", c)
				}
			},
		},
		{
			name: "card data of any shape is ignored",
			body: withPath(t, withPath(t, seed, "CardData", `[1,{"x":null}]`), "PaymentInfo.Token", `{"a":1}`),
		},
		{
			name: "names in any case, unknown fields ignored",
			body: []byte(`{"basicinfo":{"transactionid":"N99O4XURDQYJZIK4OTCAWF1RHHA40TZWVCRB","NewField":[1]},"DEVICEINFO":{"hwserial":"0434324119376526"},"Products":[{"Code":1}]}`),
			check: func(t *testing.T, c nayax.CortinaCancel) {
				if c.TransactionId.S != "N99O4XURDQYJZIK4OTCAWF1RHHA40TZWVCRB" || c.HwSerial.S != "0434324119376526" {
					t.Fatalf("decoded = %+v", c)
				}
			},
		},
		{
			name:      "MachineInfo.Id not a number",
			body:      withPath(t, seed, "MachineInfo.Id", `"abc"`),
			wantCode:  nayax.CortinaFormatError,
			wantField: "MachineInfo.Id",
		},
		{
			name:      "NayaxTransactionId fraction",
			body:      withPath(t, seed, "BasicInfo.NayaxTransactionId", `1.5`),
			wantCode:  nayax.CortinaFormatError,
			wantField: "BasicInfo.NayaxTransactionId",
		},
		{
			name:      "Amount an object",
			body:      withPath(t, seed, "PaymentInfo.AuthAmount", `{}`),
			wantCode:  nayax.CortinaFormatError,
			wantField: "PaymentInfo.AuthAmount",
		},
		{
			name:      "BasicInfo not an object",
			body:      withPath(t, seed, "BasicInfo", `"x"`),
			wantCode:  nayax.CortinaFormatError,
			wantField: "BasicInfo",
		},
		{
			name:      "ReasonCode an array",
			body:      withPath(t, seed, "ReasonCode", `[999]`),
			wantCode:  nayax.CortinaFormatError,
			wantField: "ReasonCode",
		},
		{name: "too large", body: []byte(big), wantCode: nayax.CortinaFormatError},
		{name: "not JSON", body: []byte(`BasicInfo=1`), wantCode: nayax.CortinaFormatError},
		{name: "empty", body: nil, wantCode: nayax.CortinaFormatError},
		{name: "array", body: []byte(`[{}]`), wantCode: nayax.CortinaFormatError},
		{name: "truncated", body: seed[:len(seed)/2], wantCode: nayax.CortinaFormatError},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := nayax.DecodeCortinaCancel(tt.body)
			wantDecodeError(t, err, tt.wantCode, tt.wantField)
			if err != nil {
				return
			}
			if tt.check != nil {
				tt.check(t, c)
			}
			back, err := nayax.DecodeCortinaCancel(c.Forward(testKey))
			if err != nil || !reflect.DeepEqual(back, c) {
				t.Fatalf("Forward round trip = %+v, %v", back, err)
			}
		})
	}
}

func TestCortinaStatus(t *testing.T) {
	marshal := func(v any) string {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	tests := []struct {
		name string
		v    any
		want string
	}{
		{name: "approved", v: nayax.CortinaResponse{Status: nayax.CortinaApproved("cancelled")},
			want: `{"Status":{"Verdict":"Approved","StatusMessage":"cancelled"}}`},
		{name: "declined unknown", v: nayax.CortinaResponse{Status: nayax.CortinaDeclined(nayax.CortinaUnknownTransaction, "Transaction ID unknown")},
			want: `{"Status":{"Verdict":"Declined","Code":2,"CustomDeclineCode":2,"StatusMessage":"Transaction ID unknown"}}`},
		{name: "with balance", v: nayax.CortinaResponse{Status: nayax.CortinaApproved(""), Balance: json.RawMessage(`{"RegularCredit":0}`)},
			want: `{"Status":{"Verdict":"Approved"},"Balance":{"RegularCredit":0}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := marshal(tt.v); got != tt.want {
				t.Fatalf("got  %s\nwant %s", got, tt.want)
			}
		})
	}
	t.Run("DecodeError", func(t *testing.T) {
		_, err := nayax.DecodeCortinaCancel([]byte(`{"BasicInfo":{"NayaxTransactionId":"x"}}`))
		var de *nayax.DecodeError
		if !errors.As(err, &de) || !errors.Is(err, nayax.ErrInvalid) {
			t.Fatalf("err = %v", err)
		}
		want := `{"Verdict":"Declined","Code":8,"CustomDeclineCode":8,"StatusMessage":"BasicInfo.NayaxTransactionId: expected an integer"}`
		if got := marshal(nayax.CortinaDeclineFor(err)); got != want {
			t.Fatalf("got  %s\nwant %s", got, want)
		}
		_, err = nayax.DecodeCortinaCancel([]byte(`{}`))
		if !errors.Is(err, nayax.ErrMissing) {
			t.Fatalf("err = %v, want ErrMissing", err)
		}
	})
	t.Run("response seed", func(t *testing.T) {
		var r nayax.CortinaResponse
		if err := json.Unmarshal(seeds.Get(seedCortinaResponse), &r); err != nil {
			t.Fatal(err)
		}
		if !r.Status.IsApproved() || r.Status.Code == nil || *r.Status.Code != 0 || *r.Status.CustomDeclineCode != 0 ||
			r.Status.StatusMessage != "string" || !strings.Contains(string(r.Balance), "RegularCredit") {
			t.Fatalf("decoded = %+v", r)
		}
	})
	t.Run("declined copies are independent", func(t *testing.T) {
		s := nayax.CortinaDeclined(2, "")
		*s.Code = 5
		if *s.CustomDeclineCode != 2 {
			t.Fatal("Code and CustomDeclineCode share memory")
		}
	})
}

func TestCallbackForward(t *testing.T) {
	t.Run("StopCallback drops CardUid, keys CardHash", func(t *testing.T) {
		r, err := nayax.DecodeStopCallback(seeds.Get(seedStopRequest))
		if err != nil {
			t.Fatal(err)
		}
		fwd := r.Forward(testKey)
		if strings.Contains(string(fwd), "CardUid") || strings.Contains(string(fwd), r.CardUid.S) {
			t.Fatalf("Forward carries CardUid: %s", fwd)
		}
		back, err := nayax.DecodeStopCallback(fwd)
		want := r
		want.CardUid = nayax.Text{}
		want.CardHash = nayax.NewText(testKey.Hash(r.CardHash.S))
		if err != nil || !reflect.DeepEqual(back, want) {
			t.Fatalf("round trip = %+v, %v", back, err)
		}
	})
	t.Run("TransactionCallback drops CardUid, keys CardHash", func(t *testing.T) {
		r, err := nayax.DecodeTransactionCallback(seeds.Get(seedTxnRequest))
		if err != nil {
			t.Fatal(err)
		}
		fwd := r.Forward(testKey)
		if strings.Contains(string(fwd), "CardUid") || strings.Contains(string(fwd), r.CardUid.S) {
			t.Fatalf("Forward carries CardUid: %s", fwd)
		}
		back, err := nayax.DecodeTransactionCallback(fwd)
		want := r
		want.CardUid = nayax.Text{}
		want.CardHash = nayax.NewText(testKey.Hash(r.CardHash.S))
		if err != nil || !reflect.DeepEqual(back, want) {
			t.Fatalf("round trip = %+v, %v", back, err)
		}
		if !r.CardUid.Valid {
			t.Fatal("Forward changed the receiver")
		}
	})
	t.Run("DeclineCallback", func(t *testing.T) {
		r, err := nayax.DecodeDeclineCallback([]byte(declineExample))
		if err != nil {
			t.Fatal(err)
		}
		back, err := nayax.DecodeDeclineCallback(r.Forward(testKey))
		if err != nil || !reflect.DeepEqual(back, r) {
			t.Fatalf("round trip = %+v, %v", back, err)
		}
	})
	t.Run("TimeoutCallback", func(t *testing.T) {
		r, err := nayax.DecodeTimeoutCallback([]byte(timeoutExample))
		if err != nil {
			t.Fatal(err)
		}
		back, err := nayax.DecodeTimeoutCallback(r.Forward(testKey))
		if err != nil || !reflect.DeepEqual(back, r) {
			t.Fatalf("round trip = %+v, %v", back, err)
		}
	})
	t.Run("Literal kept byte for byte", func(t *testing.T) {
		body := strings.Replace(string(seeds.Get(seedStopRequest)), `"StopSiteId": 4`, `"StopSiteId": "<04>&"`, 1)
		r, err := nayax.DecodeStopCallback([]byte(body))
		if err != nil {
			t.Fatal(err)
		}
		if fwd := string(r.Forward(testKey)); !strings.Contains(fwd, `"StopSiteId":"<04>&"`) {
			t.Fatalf("Forward = %s", fwd)
		}
	})
}
