package billing

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"os"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sitelink/sitelink/daemon/config"
	"github.com/sitelink/sitelink/daemon/nayax"
	"github.com/sitelink/sitelink/daemon/nayax/seeds"
	"github.com/sitelink/sitelink/store"
)

func moneyTariff(dp int, price, fee float64) config.Tariff {
	return config.Tariff{Currency: "EUR", DecimalPlace: dp, PricePerKWh: price, SessionFee: fee}
}

func TestMoneyAmount(t *testing.T) {
	tests := []struct {
		name       string
		energyWh   float64
		authorized float64
		tariff     config.Tariff
		want       string // the JSON the amount marshals to
	}{
		{"0.39 x 1.5 kWh rounds half-up", 1500, 100, moneyTariff(2, 0.39, 0), "0.59"},
		{"10 kWh x 0.333", 10000, 100, moneyTariff(2, 0.333, 0), "3.33"},
		{"3 decimals keep thousandths", 1234, 100, moneyTariff(3, 0.333, 0), "0.411"},
		{"same at 2 decimals", 1234, 100, moneyTariff(2, 0.333, 0), "0.41"},
		{"same at 1 decimal", 1234, 100, moneyTariff(1, 0.333, 0), "0.4"},
		{"same at 0 decimals", 1234, 100, moneyTariff(0, 0.333, 0), "0"},
		{"exact half at 0 decimals", 1000, 100, moneyTariff(0, 2.5, 0), "3"},
		{"exact half at 0 decimals, fee", 0, 100, moneyTariff(0, 0.4, 2.5), "3"},
		{"exact half at 1 decimal", 0, 100, moneyTariff(1, 0.4, 0.25), "0.3"},
		{"exact half at 2 decimals", 0, 100, moneyTariff(2, 0.4, 0.005), "0.01"},
		{"exact half at 3 decimals", 0, 100, moneyTariff(3, 0.4, 0.0005), "0.001"},
		{"just under half", 0, 100, moneyTariff(2, 0.4, 0.00499), "0"},
		{"1.005 (below 1.005 as a double) still rounds up", 0, 100, moneyTariff(2, 0, 1.005), "1.01"},
		{"2.675 as written, not as a double", 1000, 100, moneyTariff(2, 2.675, 0), "2.68"},
		{"cap: authorized below tariff", 20000, 5, moneyTariff(2, 0.39, 0), "5"},
		{"cap: authorized truncated, never rounded up", 20000, 4.999, moneyTariff(2, 0.39, 0), "4.99"},
		{"cap at 0 decimals", 100000, 12.5, moneyTariff(0, 0.39, 0), "12"},
		{"cap: 0.59 stays 0.59 (its double is below 0.59)", 2000, 0.59, moneyTariff(2, 0.39, 0), "0.59"},
		{"cap equals tariff", 1500, 0.59, moneyTariff(2, 0.39, 0), "0.59"},
		{"session fee added once", 2000, 100, moneyTariff(2, 0.4, 1.5), "2.3"},
		{"zero energy, no fee", 0, 100, moneyTariff(2, 0.39, 0), "0"},
		{"zero energy pays the fee", 0, 100, moneyTariff(2, 0.39, 0.5), "0.5"},
		{"zero authorized", 1500, 0, moneyTariff(2, 0.39, 0.5), "0"},
		{"0.1 + 0.2 is 0.3", 1000, 100, moneyTariff(2, 0.2, 0.1), "0.3"},
		{"0.1 + 0.2 kWh of float noise", (0.1 + 0.2) * 1000, 100, moneyTariff(2, 1, 0), "0.3"},
		{"meter subtraction noise cannot flip the half", 2000.1 - 500.1, 100, moneyTariff(2, 0.39, 0), "0.59"},
		{"7 x 0.1 kWh", 700.0000000000001, 100, moneyTariff(2, 0.3, 0), "0.21"},
		{"big energy", 1e9, 1e12, moneyTariff(2, 0.39, 0), "390000"},
		{"big authorized cap", 1e14, 12345678901.23, moneyTariff(2, 0.333, 0), "12345678901.23"},
		{"big with thousandths", 123456789, 1e12, moneyTariff(3, 0.337, 1.001), "41605.939"},
		{"negative energy counts as 0", -5000, 100, moneyTariff(2, 0.39, 0.5), "0.5"},
		{"NaN energy counts as 0", math.NaN(), 100, moneyTariff(2, 0.39, 0.5), "0.5"},
		{"infinite energy counts as 0", math.Inf(1), 100, moneyTariff(2, 0.39, 0.5), "0.5"},
		{"negative authorized", 1500, -1, moneyTariff(2, 0.39, 0), "0"},
		{"NaN authorized", 1500, math.NaN(), moneyTariff(2, 0.39, 0), "0"},
		{"negative price", 1500, 100, moneyTariff(2, -0.39, 0.5), "0.5"},
		{"negative fee", 1500, 100, moneyTariff(2, 0.39, -1), "0.59"},
		{"decimal_place above 3 clamps to 3", 1234, 100, moneyTariff(5, 0.333, 0), "0.411"},
		{"negative decimal_place clamps to 0", 1234, 100, moneyTariff(-1, 2.5, 0), "3"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := Amount(tc.energyWh, tc.authorized, tc.tariff)
			b, err := json.Marshal(got)
			if err != nil {
				t.Fatalf("marshal %v: %v", got, err)
			}
			if string(b) != tc.want {
				t.Errorf("Amount(%v, %v, %+v) marshals as %s, want %s", tc.energyWh, tc.authorized, tc.tariff, b, tc.want)
			}
			if want, _ := strconv.ParseFloat(tc.want, 64); got != want {
				t.Errorf("Amount = %v, want exactly %v", got, want)
			}
		})
	}
}

// FuzzAmount checks the invariants on any input: never negative, never
// above what was authorized, never more decimals than the currency has.
func FuzzAmount(f *testing.F) {
	f.Add(1500.0, 100.0, 0.39, 0.0, 2)
	f.Add(10000.0, 100.0, 0.333, 0.0, 2)
	f.Add(0.0, 100.0, 0.0, 0.005, 2)
	f.Add(1000.0, 100.0, 2.5, 0.0, 0)
	f.Add(20000.0, 4.999, 0.39, 0.0, 2)
	f.Add(1234.0, 5.005, 0.333, 1.001, 3)
	f.Add(2000.1-500.1, 0.59, 0.39, 0.0, 2)
	f.Add(1e300, 1e300, 1e10, 0.0, 3)
	f.Add(5e-324, 1e-5, 0.1, 0.0, 1)
	f.Add(-1.0, math.NaN(), math.Inf(1), -0.5, 7)
	f.Add(56.29166666666667, 82.72, 941.2095000000002, -61.0, 13) // energy rounding to mWh at an absurd price
	f.Fuzz(func(t *testing.T, energyWh, authorized, price, fee float64, dp int) {
		tariff := moneyTariff(dp, price, fee)
		got := Amount(energyWh, authorized, tariff)
		switch {
		case math.IsNaN(got) || math.IsInf(got, 0):
			t.Fatalf("Amount = %v", got)
		case got < 0:
			t.Fatalf("Amount = %v, negative", got)
		case !(authorized > 0) || math.IsInf(authorized, 1):
			if got != 0 {
				t.Fatalf("Amount = %v with authorized %v, want 0", got, authorized)
			}
		case got > authorized:
			t.Fatalf("Amount = %v above authorized %v", got, authorized)
		}
		places := min(max(dp, 0), 3)
		s := strconv.FormatFloat(got, 'f', -1, 64)
		if i := strings.IndexByte(s, '.'); i >= 0 && len(s)-i-1 > places {
			t.Fatalf("Amount = %s has more than %d decimals", s, places)
		}
		// Within rounding (half a minor unit, plus half a milliwatt-hour
		// of energy) of the float computation of the tariff, when that
		// does not overflow.
		clean := func(x float64) float64 {
			if !(x > 0) || math.IsInf(x, 1) {
				return 0
			}
			return x
		}
		approx := clean(fee) + clean(energyWh)/1000*clean(price)
		if !math.IsInf(approx, 0) && got > approx+math.Pow10(-places)/2+5e-7*clean(price)+approx*1e-9+1e-9 {
			t.Fatalf("Amount = %v above the tariff %v", got, approx)
		}
	})
}

// allReasonKinds lists every exported ReasonKind constant.
var allReasonKinds = []ReasonKind{
	ReasonNoVehicle, ReasonUnplugged, ReasonUserStop, ReasonStationFault, ReasonInterrupted, ReasonBelowMinimum, ReasonZeroAmount,
}

func TestReasonTable(t *testing.T) {
	table := ReasonTable()
	if len(table) != len(allReasonKinds) {
		t.Fatalf("ReasonTable has %d rows, want one per kind (%d)", len(table), len(allReasonKinds))
	}
	twoDigits := regexp.MustCompile(`^[0-9]{2}$`)
	seen := map[ReasonKind]bool{}
	for i, row := range table {
		t.Run(string(row.Kind), func(t *testing.T) {
			if row.Kind != allReasonKinds[i] {
				t.Errorf("row %d is %q, want %q (the documented order)", i, row.Kind, allReasonKinds[i])
			}
			if seen[row.Kind] {
				t.Errorf("kind %q listed twice", row.Kind)
			}
			seen[row.Kind] = true
			if !twoDigits.MatchString(row.Code) {
				t.Errorf("code %q is not two digits", row.Code)
			}
			if strings.TrimSpace(row.Text) == "" {
				t.Error("empty text")
			}
			if code, text := Reason(row.Kind); code != row.Code || text != row.Text {
				t.Errorf("Reason = %q %q, table says %q %q", code, text, row.Code, row.Text)
			}
		})
	}
	for _, k := range []ReasonKind{"", "unknown", "NO-VEHICLE"} {
		if code, text := Reason(k); code != "75" || text != "Service not provided" {
			t.Errorf("Reason(%q) = %q %q, want the 75 fallback", k, code, text)
		}
	}
	table[0].Code = "99"
	if ReasonTable()[0].Code == "99" {
		t.Error("ReasonTable returned the table itself, not a copy")
	}
}

// TestReasonRequests pins the table the brief and DESIGN §2 name.
func TestReasonRequests(t *testing.T) {
	want := map[ReasonKind][2]string{
		ReasonNoVehicle:    {"03", "Vehicle not connected"},
		ReasonStationFault: {"06", "Station fault"},
		ReasonBelowMinimum: {"75", "Service not provided"},
		ReasonUserStop:     {"01", "User requested cancellation"},
	}
	for k, w := range want {
		if code, text := Reason(k); code != w[0] || text != w[1] {
			t.Errorf("Reason(%q) = %q %q, want %q %q", k, code, text, w[0], w[1])
		}
	}
}

// TestReasonTableDocumented keeps the table in money.go's comment (what
// operators read) equal to the one the code sends.
func TestReasonTableDocumented(t *testing.T) {
	src, err := os.ReadFile("money.go")
	if err != nil {
		t.Fatal(err)
	}
	row := regexp.MustCompile(`(?m)^//\t([a-z-]+)\s+([0-9]{2})\s{2,}(.+?)\s{2,}\S.*$`)
	var doc []string
	for _, m := range row.FindAllStringSubmatch(string(src), -1) {
		doc = append(doc, m[1]+"|"+m[2]+"|"+m[3])
	}
	var code []string
	for _, r := range ReasonTable() {
		code = append(code, string(r.Kind)+"|"+r.Code+"|"+r.Text)
	}
	if !reflect.DeepEqual(doc, code) {
		t.Errorf("documented table\n%s\ndiffers from ReasonTable\n%s", strings.Join(doc, "\n"), strings.Join(code, "\n"))
	}
}

func TestMoneyTerminalRef(t *testing.T) {
	tests := []struct {
		name     string
		terminal config.Terminal
		wantID   string
		wantType int
	}{
		{"hw serial", config.Terminal{HwSerial: "0434334921100366"}, "0434334921100366", 1},
		{"machine id", config.Terminal{MachineID: 942}, "942", 2},
		{"both: serial wins", config.Terminal{MachineID: 942, HwSerial: "NX0087654321"}, "NX0087654321", 1},
		{"neither", config.Terminal{}, "", 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			id, typ := TerminalRef(tc.terminal)
			if id != tc.wantID || typ != tc.wantType {
				t.Errorf("TerminalRef = %q, %d; want %q, %d", id, typ, tc.wantID, tc.wantType)
			}
		})
	}
}

func TestMoneyCancellationType(t *testing.T) {
	for flow, want := range map[string]int{
		config.FlowPreAuthorization: 1,
		config.FlowPreSelection:     2,
		"":                          0,
		"Pre-Authorization":         0,
	} {
		if got := CancellationType(flow); got != want {
			t.Errorf("CancellationType(%q) = %d, want %d", flow, got, want)
		}
	}
}

// moneyBody checks a built body: a JSON object whose first member is
// "call" naming call, and whose rest passes ValidateOutbound. It returns
// the rest decoded, numbers as written.
func moneyBody(t *testing.T, call string, body json.RawMessage) map[string]any {
	t.Helper()
	prefix := `{"call":` + strconv.Quote(call)
	if !bytes.HasPrefix(body, []byte(prefix)) {
		t.Fatalf("body does not start with %s: %s", prefix, body)
	}
	m := moneyDecode(t, body)
	delete(m, "call")
	rest, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	if err := nayax.ValidateOutbound(call, rest); err != nil {
		t.Fatalf("ValidateOutbound(%s): %v\n%s", call, err, rest)
	}
	return m
}

func moneyDecode(t *testing.T, b []byte) map[string]any {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
	return m
}

// moneyRaw returns the raw token of member name in body, or "" if absent.
func moneyRaw(t *testing.T, body []byte, name string) string {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatal(err)
	}
	return string(m[name])
}

// seedSession is a session holding the values of seed 003 (ExternalCancel).
func seedSession() (store.Session, config.Terminal) {
	s := store.Session{
		SparkTransactionID: "f8e7d6c5-b4a3-2109-fedc-ba9876543210",
		NayaxTransactionID: 987654321,
		Station:            "1",
		State:              store.Stopped,
		Origin:             "external",
		SiteID:             "2",
		MachineAuTime:      "20251212110000500",
		AuthorizedAmount:   5,
	}
	t := config.Terminal{
		HwSerial: "NX0087654321",
		Flow:     config.FlowPreAuthorization,
	}
	return s, t
}

func TestRequestSeedExternalCancel(t *testing.T) {
	s, term := seedSession()
	seed := moneyDecode(t, seeds.Get("003_externalcancel_request.json"))
	for _, row := range ReasonTable() {
		t.Run(string(row.Kind), func(t *testing.T) {
			call, body, err := CancelRequest(s, term, row.Kind)
			if err != nil {
				t.Fatal(err)
			}
			if call != nayax.CallExternalCancel {
				t.Fatalf("call = %q", call)
			}
			got := moneyBody(t, call, body)
			want := copyMap(seed)
			want["ReasonCode"] = row.Code
			want["ReasonText"] = row.Text
			if !reflect.DeepEqual(got, want) {
				t.Errorf("body\n%s\nwant the seed with the table's reason\n%v", body, want)
			}
		})
	}
	// user-stop carries Nayax's own example reason: the seed exactly.
	_, body, err := CancelRequest(s, term, ReasonUserStop)
	if err != nil {
		t.Fatal(err)
	}
	if got := moneyBody(t, nayax.CallExternalCancel, body); !reflect.DeepEqual(got, seed) {
		t.Errorf("user-stop body %s differs from seed 003", body)
	}
}

func copyMap(m map[string]any) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func TestRequestBodies(t *testing.T) {
	remote := store.Session{
		SparkTransactionID: "12c7cec2-c690-4425-9a1f-db0db60e2d8c",
		NayaxTransactionID: 2004545072,
		Origin:             "remote",
		SiteID:             "2",
		MachineAuTime:      "20240205194122328",
		AuthorizedAmount:   15,
	}
	external, _ := seedSession()
	serial := config.Terminal{HwSerial: "0434334921100366", Flow: config.FlowPreAuthorization}
	machine := config.Terminal{MachineID: 942, Flow: config.FlowPreSelection}

	tests := []struct {
		name  string
		build func() (string, json.RawMessage, error)
		call  string
		want  string
	}{
		{
			name:  "Settlement",
			build: func() (string, json.RawMessage, error) { return SettlementRequest(remote, serial, 12.25) },
			call:  nayax.CallSettlement,
			want: `{"NayaxTransactionId":2004545072,"SparkTransactionId":"12c7cec2-c690-4425-9a1f-db0db60e2d8c","SiteId":2,
				"TerminalId":"0434334921100366","TerminalIdType":1,"Amount":12.25}`,
		},
		{
			name: "Settlement by machine id, amount from Amount",
			build: func() (string, json.RawMessage, error) {
				return SettlementRequest(remote, machine, Amount(1500, 15, moneyTariff(2, 0.39, 0)))
			},
			call: nayax.CallSettlement,
			want: `{"NayaxTransactionId":2004545072,"SparkTransactionId":"12c7cec2-c690-4425-9a1f-db0db60e2d8c","SiteId":2,
				"TerminalId":"942","TerminalIdType":2,"Amount":0.59}`,
		},
		{
			name:  "ExternalSettlement",
			build: func() (string, json.RawMessage, error) { return SettlementRequest(external, serial, 4.5) },
			call:  nayax.CallExternalSettlement,
			want: `{"NayaxTransactionId":987654321,"SparkTransactionId":"f8e7d6c5-b4a3-2109-fedc-ba9876543210",
				"MachineAuTime":"20251212110000500","SiteId":2,"TerminalId":"0434334921100366","TerminalIdType":1,"Amount":4.5}`,
		},
		{
			name:  "CancelTransaction pre-authorization",
			build: func() (string, json.RawMessage, error) { return CancelRequest(remote, serial, ReasonBelowMinimum) },
			call:  nayax.CallCancelTransaction,
			want: `{"NayaxTransactionId":2004545072,"SparkTransactionId":"12c7cec2-c690-4425-9a1f-db0db60e2d8c","SiteId":2,
				"MachineAuTime":"20240205194122328","TerminalId":"0434334921100366","TerminalIdType":1,"CancellationType":1,
				"ReasonCode":75,"ReasonText":"Service not provided","CancelAmount":15}`,
		},
		{
			name:  "CancelTransaction pre-selection, code 03 as integer 3",
			build: func() (string, json.RawMessage, error) { return CancelRequest(remote, machine, ReasonNoVehicle) },
			call:  nayax.CallCancelTransaction,
			want: `{"NayaxTransactionId":2004545072,"SparkTransactionId":"12c7cec2-c690-4425-9a1f-db0db60e2d8c","SiteId":2,
				"MachineAuTime":"20240205194122328","TerminalId":"942","TerminalIdType":2,"CancellationType":2,
				"ReasonCode":3,"ReasonText":"Vehicle not connected","CancelAmount":15}`,
		},
		{
			name:  "ExternalCancel pre-selection, code as string",
			build: func() (string, json.RawMessage, error) { return CancelRequest(external, machine, ReasonStationFault) },
			call:  nayax.CallExternalCancel,
			want: `{"NayaxTransactionId":987654321,"SparkTransactionId":"f8e7d6c5-b4a3-2109-fedc-ba9876543210","SiteId":2,
				"MachineAuTime":"20251212110000500","TerminalId":"942","TerminalIdType":2,"CancellationType":2,
				"ReasonCode":"06","ReasonText":"Station fault","CancelAmount":5}`,
		},
		{
			name: "Settlement without SiteId and MachineAuTime",
			build: func() (string, json.RawMessage, error) {
				s := remote
				s.SiteID, s.MachineAuTime = "", ""
				return SettlementRequest(s, serial, 1)
			},
			call: nayax.CallSettlement,
			want: `{"NayaxTransactionId":2004545072,"SparkTransactionId":"12c7cec2-c690-4425-9a1f-db0db60e2d8c",
				"TerminalId":"0434334921100366","TerminalIdType":1,"Amount":1}`,
		},
		{
			name: "CancelTransaction without SiteId and MachineAuTime",
			build: func() (string, json.RawMessage, error) {
				s := remote
				s.SiteID, s.MachineAuTime = "", ""
				return CancelRequest(s, serial, ReasonUserStop)
			},
			call: nayax.CallCancelTransaction,
			want: `{"NayaxTransactionId":2004545072,"SparkTransactionId":"12c7cec2-c690-4425-9a1f-db0db60e2d8c",
				"TerminalId":"0434334921100366","TerminalIdType":1,"CancellationType":1,
				"ReasonCode":1,"ReasonText":"User requested cancellation","CancelAmount":15}`,
		},
		{
			name: "ExternalCancel without MachineAuTime",
			build: func() (string, json.RawMessage, error) {
				s := external
				s.MachineAuTime = ""
				return CancelRequest(s, serial, ReasonUnplugged)
			},
			call: nayax.CallExternalCancel,
			want: `{"NayaxTransactionId":987654321,"SparkTransactionId":"f8e7d6c5-b4a3-2109-fedc-ba9876543210","SiteId":2,
				"TerminalId":"0434334921100366","TerminalIdType":1,"CancellationType":1,
				"ReasonCode":"03","ReasonText":"Vehicle unplugged before charging","CancelAmount":5}`,
		},
		{
			name: "TriggerTransaction pre-selection",
			build: func() (string, json.RawMessage, error) {
				return TriggerRequest("12c7cec2-c690-4425-9a1f-db0db60e2d8c", machine, 15, 60*time.Second)
			},
			call: nayax.CallTriggerTransaction,
			want: `{"SparkTransactionId":"12c7cec2-c690-4425-9a1f-db0db60e2d8c","TerminalId":"942","TerminalIdType":2,
				"Amount":15,"TransactionTimeout":60}`,
		},
		{
			name: "TriggerTransaction pre-authorization without amount, timeout rounded up",
			build: func() (string, json.RawMessage, error) {
				return TriggerRequest("12c7cec2-c690-4425-9a1f-db0db60e2d8c", serial, 0, 1500*time.Millisecond)
			},
			call: nayax.CallTriggerTransaction,
			want: `{"SparkTransactionId":"12c7cec2-c690-4425-9a1f-db0db60e2d8c","TerminalId":"0434334921100366",
				"TerminalIdType":1,"TransactionTimeout":2}`,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			call, body, err := tc.build()
			if err != nil {
				t.Fatal(err)
			}
			if call != tc.call {
				t.Fatalf("call = %q, want %q", call, tc.call)
			}
			got := moneyBody(t, call, body)
			if want := moneyDecode(t, []byte(tc.want)); !reflect.DeepEqual(got, want) {
				t.Errorf("body\n%s\nwant\n%s", body, tc.want)
			}
		})
	}
}

// TestRequestSiteIDEcho: SiteId goes back byte for byte, number or string.
func TestRequestSiteIDEcho(t *testing.T) {
	term := config.Terminal{MachineID: 942, Flow: config.FlowPreAuthorization}
	for _, site := range []string{`2`, `"2"`, `"0002"`, `2.0`, `"a<b&c"`, `-7`} {
		for _, origin := range []string{"remote", "external"} {
			s, _ := seedSession()
			s.Origin, s.SiteID = origin, site
			builds := map[string]func() (string, json.RawMessage, error){
				"settle": func() (string, json.RawMessage, error) { return SettlementRequest(s, term, 1) },
				"cancel": func() (string, json.RawMessage, error) { return CancelRequest(s, term, ReasonBelowMinimum) },
			}
			for what, build := range builds {
				t.Run(origin+" "+what+" "+site, func(t *testing.T) {
					call, body, err := build()
					if err != nil {
						t.Fatal(err)
					}
					moneyBody(t, call, body)
					if got := moneyRaw(t, body, "SiteId"); got != site {
						t.Errorf("SiteId = %s, want %s exactly", got, site)
					}
				})
			}
		}
	}
}

func TestRequestErrors(t *testing.T) {
	remote, term := seedSession()
	remote.Origin = "remote"
	external, _ := seedSession()
	noSite := external
	noSite.SiteID = ""
	badSite := external
	badSite.SiteID = "002"
	noOrigin := external
	noOrigin.Origin = ""
	noNayaxID := remote
	noNayaxID.NayaxTransactionID = 0
	badAuth := external
	badAuth.AuthorizedAmount = math.NaN()
	negAuth := remote
	negAuth.AuthorizedAmount = -1
	badFlow := term
	badFlow.Flow = "prepaid"
	preSel := term
	preSel.Flow = config.FlowPreSelection

	var decodeErr *nayax.DecodeError
	tests := []struct {
		name  string
		build func() (string, json.RawMessage, error)
		want  error // nil: any *nayax.DecodeError
	}{
		{"ExternalSettlement without SiteId", func() (string, json.RawMessage, error) { return SettlementRequest(noSite, term, 1) }, ErrNoSiteID},
		{"ExternalCancel without SiteId", func() (string, json.RawMessage, error) { return CancelRequest(noSite, term, ReasonNoVehicle) }, ErrNoSiteID},
		{"stored SiteId not a JSON literal", func() (string, json.RawMessage, error) { return SettlementRequest(badSite, term, 1) }, nil},
		{"no origin, settle", func() (string, json.RawMessage, error) { return SettlementRequest(noOrigin, term, 1) }, ErrUnknownOrigin},
		{"no origin, cancel", func() (string, json.RawMessage, error) { return CancelRequest(noOrigin, term, ReasonNoVehicle) }, ErrUnknownOrigin},
		{"no terminal id, settle", func() (string, json.RawMessage, error) {
			return SettlementRequest(remote, config.Terminal{Flow: config.FlowPreAuthorization}, 1)
		}, ErrNoTerminal},
		{"no terminal id, cancel", func() (string, json.RawMessage, error) {
			return CancelRequest(external, config.Terminal{Flow: config.FlowPreAuthorization}, ReasonNoVehicle)
		}, ErrNoTerminal},
		{"no terminal id, trigger", func() (string, json.RawMessage, error) {
			return TriggerRequest("x", config.Terminal{Flow: config.FlowPreAuthorization}, 1, time.Minute)
		}, ErrNoTerminal},
		{"unknown flow", func() (string, json.RawMessage, error) { return CancelRequest(external, badFlow, ReasonNoVehicle) }, ErrUnknownFlow},
		{"settle above authorized", func() (string, json.RawMessage, error) { return SettlementRequest(remote, term, 5.01) }, ErrBadAmount},
		{"settle negative", func() (string, json.RawMessage, error) { return SettlementRequest(remote, term, -1) }, ErrBadAmount},
		{"settle NaN", func() (string, json.RawMessage, error) { return SettlementRequest(remote, term, math.NaN()) }, ErrBadAmount},
		{"cancel NaN authorized", func() (string, json.RawMessage, error) { return CancelRequest(badAuth, term, ReasonNoVehicle) }, ErrBadAmount},
		{"cancel negative authorized", func() (string, json.RawMessage, error) { return CancelRequest(negAuth, term, ReasonNoVehicle) }, ErrBadAmount},
		{"no NayaxTransactionId", func() (string, json.RawMessage, error) { return SettlementRequest(noNayaxID, term, 1) }, nil},
		{"trigger without timeout", func() (string, json.RawMessage, error) { return TriggerRequest("x", term, 1, 0) }, ErrTriggerTimeout},
		{"trigger timeout too long", func() (string, json.RawMessage, error) {
			return TriggerRequest("x", term, 1, 32767*time.Second+time.Millisecond)
		}, ErrTriggerTimeout},
		{"trigger pre-selection without amount", func() (string, json.RawMessage, error) { return TriggerRequest("x", preSel, 0, time.Minute) }, ErrBadAmount},
		{"trigger negative amount", func() (string, json.RawMessage, error) { return TriggerRequest("x", term, -1, time.Minute) }, ErrBadAmount},
		{"trigger without spark id", func() (string, json.RawMessage, error) { return TriggerRequest("", term, 1, time.Minute) }, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			call, body, err := tc.build()
			if err == nil {
				t.Fatalf("built %s %s, want an error", call, body)
			}
			if body != nil || call != "" {
				t.Errorf("returned %q %s alongside the error", call, body)
			}
			if tc.want != nil && !errors.Is(err, tc.want) {
				t.Errorf("error %v, want %v", err, tc.want)
			}
			if tc.want == nil && !errors.As(err, &decodeErr) && !strings.Contains(err.Error(), "SiteId") {
				t.Errorf("error %v, want a validation error", err)
			}
		})
	}
}
