package billing

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"math/big"
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

// moneyTariff is a session tariff from decimals as an operator writes
// them ("0.39"), at dp decimal places.
func moneyTariff(dp int, price, fee string) store.Tariff {
	t := store.Tariff{Currency: "EUR", DecimalPlace: dp}
	var err error
	if t.PricePerKWhMicro, err = store.ParseDecimal(price, store.PriceDecimals, store.MaxScaled); err != nil {
		panic(err)
	}
	if t.SessionFeeMicro, err = store.ParseDecimal(fee, store.PriceDecimals, store.MaxScaled); err != nil {
		panic(err)
	}
	return t
}

func TestMoneyAmount(t *testing.T) {
	tenth, fifth := 0.1, 0.2 // variables: constants would add exactly
	maxPrice := "999999999.999999"
	tests := []struct {
		name       string
		energyWh   float64
		authorized int64 // minor units
		tariff     store.Tariff
		want       int64  // minor units
		nayax      string // the JSON number Nayax gets for it
	}{
		{"0.39 x 1.5 kWh rounds half-up", 1500, 10000, moneyTariff(2, "0.39", "0"), 59, "0.59"},
		{"10 kWh x 0.333", 10000, 10000, moneyTariff(2, "0.333", "0"), 333, "3.33"},
		{"3 decimals keep thousandths", 1234, 100000, moneyTariff(3, "0.333", "0"), 411, "0.411"},
		{"same at 2 decimals", 1234, 10000, moneyTariff(2, "0.333", "0"), 41, "0.41"},
		{"same at 1 decimal", 1234, 1000, moneyTariff(1, "0.333", "0"), 4, "0.4"},
		{"same at 0 decimals", 1234, 100, moneyTariff(0, "0.333", "0"), 0, "0"},
		{"exact half at 0 decimals", 1000, 100, moneyTariff(0, "2.5", "0"), 3, "3"},
		{"exact half at 0 decimals, fee", 0, 100, moneyTariff(0, "0.4", "2.5"), 3, "3"},
		{"exact half at 1 decimal", 0, 1000, moneyTariff(1, "0.4", "0.25"), 3, "0.3"},
		{"exact half at 2 decimals", 0, 10000, moneyTariff(2, "0.4", "0.005"), 1, "0.01"},
		{"exact half at 3 decimals", 0, 100000, moneyTariff(3, "0.4", "0.0005"), 1, "0.001"},
		{"just under half", 0, 10000, moneyTariff(2, "0.4", "0.004999"), 0, "0"},
		{"half of energy and fee together", 500, 10000, moneyTariff(2, "0.009", "0.0005"), 1, "0.01"}, // 0.0045 + 0.0005
		{"1.005 rounds up (its double is below 1.005)", 0, 10000, moneyTariff(2, "0", "1.005"), 101, "1.01"},
		{"2.675 as written, not as a double", 1000, 10000, moneyTariff(2, "2.675", "0"), 268, "2.68"},
		{"a price finer than the minor unit", 2000, 10000, moneyTariff(2, "0.3925", "0"), 79, "0.79"}, // 0.785
		{"cap: authorized below tariff", 20000, 500, moneyTariff(2, "0.39", "0"), 500, "5"},
		{"cap at 0 decimals", 100000, 12, moneyTariff(0, "0.39", "0"), 12, "12"},
		{"cap at 3 decimals", 100000, 12345, moneyTariff(3, "0.39", "0"), 12345, "12.345"},
		{"cap equals tariff", 1500, 59, moneyTariff(2, "0.39", "0"), 59, "0.59"},
		{"cap one below the rounded tariff", 1500, 58, moneyTariff(2, "0.39", "0"), 58, "0.58"},
		{"session fee added once", 2000, 10000, moneyTariff(2, "0.4", "1.5"), 230, "2.3"},
		{"zero energy, no fee", 0, 10000, moneyTariff(2, "0.39", "0"), 0, "0"},
		{"zero energy pays the fee", 0, 10000, moneyTariff(2, "0.39", "0.5"), 50, "0.5"},
		{"zero authorized", 1500, 0, moneyTariff(2, "0.39", "0.5"), 0, "0"},
		{"0.1 + 0.2 is 0.3", 1000, 10000, moneyTariff(2, "0.2", "0.1"), 30, "0.3"},
		{"0.1 + 0.2 kWh of float noise", (tenth + fifth) * 1000, 10000, moneyTariff(2, "1", "0"), 30, "0.3"},
		{"meter subtraction noise cannot flip the half", 2000.1 - 500.1, 10000, moneyTariff(2, "0.39", "0"), 59, "0.59"},
		{"7 x 0.1 kWh", 700.0000000000001, 10000, moneyTariff(2, "0.3", "0"), 21, "0.21"},
		{"big energy", 1e9, store.MaxScaled, moneyTariff(2, "0.39", "0"), 39_000_000, "390000"},
		{"big authorized cap", 1e14, 1234567890123, moneyTariff(2, "0.333", "0"), 1234567890123, "12345678901.23"},
		{"big with thousandths", 123456789, store.MaxScaled, moneyTariff(3, "0.337", "1.001"), 41605939, "41605.939"},
		{"largest price, one Wh", 1, store.MaxScaled, moneyTariff(3, maxPrice, "0"), 1_000_000_000, "1000000"},
		{"everything at its largest: no overflow, capped", math.MaxFloat64, store.MaxScaled, moneyTariff(3, maxPrice, maxPrice), store.MaxScaled, "999999999999.999"},
		{"largest fee alone, rounded half-up", 0, store.MaxScaled, moneyTariff(3, "0", maxPrice), 1_000_000_000_000, "1000000000"},
		{"negative energy counts as 0", -5000, 10000, moneyTariff(2, "0.39", "0.5"), 50, "0.5"},
		{"NaN energy counts as 0", math.NaN(), 10000, moneyTariff(2, "0.39", "0.5"), 50, "0.5"},
		{"infinite energy counts as 0", math.Inf(1), 10000, moneyTariff(2, "0.39", "0.5"), 50, "0.5"},
		{"negative authorized", 1500, -1, moneyTariff(2, "0.39", "0"), 0, "0"},
		{"negative price", 1500, 10000, store.Tariff{DecimalPlace: 2, PricePerKWhMicro: -390000, SessionFeeMicro: 500000}, 50, "0.5"},
		{"negative fee", 1500, 10000, store.Tariff{DecimalPlace: 2, PricePerKWhMicro: 390000, SessionFeeMicro: -1}, 59, "0.59"},
		{"decimal_place above 3 clamps to 3", 1234, 100000, moneyTariff(5, "0.333", "0"), 411, "0.411"},
		{"negative decimal_place clamps to 0", 1234, 100, moneyTariff(-1, "2.5", "0"), 3, "3"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := Amount(tc.energyWh, tc.authorized, tc.tariff)
			if got != tc.want {
				t.Fatalf("Amount(%v, %d, %+v) = %d, want %d", tc.energyWh, tc.authorized, tc.tariff, got, tc.want)
			}
			a, err := nayaxAmount(got, clampPlaces(tc.tariff.DecimalPlace))
			if err != nil {
				t.Fatal(err)
			}
			if b, err := json.Marshal(a); err != nil || string(b) != tc.nayax {
				t.Errorf("Nayax gets %s (%v), want %s", b, err, tc.nayax)
			}
		})
	}
}

// TestNayaxAmountBytes: the JSON Nayax gets from minor units is byte for
// byte what the float amounts of earlier releases marshalled to, at every
// decimal place and up to the largest amount.
func TestNayaxAmountBytes(t *testing.T) {
	for dp := 0; dp <= 3; dp++ {
		for _, minor := range []int64{0, 1, 5, 10, 59, 100, 1500, 12345, 4999999, 123456789012345, store.MaxScaled} {
			a, err := nayaxAmount(minor, dp)
			if err != nil {
				t.Fatal(err)
			}
			got, _ := json.Marshal(a)
			f, _ := strconv.ParseFloat(store.FormatDecimal(minor, dp), 64)
			old, _ := json.Marshal(f)
			if string(got) != string(old) {
				t.Errorf("%d at %d decimals: %s, the float form was %s", minor, dp, got, old)
			}
			if back, err := ParseAmount(string(got), dp); err != nil || back != minor {
				t.Errorf("%d at %d decimals reads back as %d, %v", minor, dp, back, err)
			}
		}
	}
	for _, bad := range []struct {
		minor int64
		dp    int
	}{{-1, 2}, {store.MaxScaled + 1, 2}, {1, 4}, {1, -1}} {
		if a, err := nayaxAmount(bad.minor, bad.dp); !errors.Is(err, ErrBadAmount) {
			t.Errorf("nayaxAmount(%d, %d) = %+v, %v; want ErrBadAmount", bad.minor, bad.dp, a, err)
		}
	}
}

// TestParseAmount: what an authorization may carry, per decimal place.
func TestParseAmount(t *testing.T) {
	tests := []struct {
		text string
		dp   int
		want int64
		ok   bool
	}{
		{"15", 0, 15, true},
		{"15.0", 0, 15, true},
		{"15.5", 0, 0, false},
		{"0.5", 1, 5, true},
		{"0.55", 1, 0, false},
		{"0.59", 2, 59, true},
		{"1.00", 2, 100, true},
		{"0.595", 2, 0, false},
		{"5.125", 3, 5125, true},
		{"5.1255", 3, 0, false},
		{"1e2", 2, 10000, true},
		{"-1", 2, 0, false},
		{"999999999999.999", 3, store.MaxScaled, true},
		{"1000000000000", 3, 0, false},
		{"10000000000000", 2, 0, false},
		{"1e30", 2, 0, false},
		{"abc", 2, 0, false},
		{"1", 4, 0, false},
	}
	for _, tc := range tests {
		got, err := ParseAmount(tc.text, tc.dp)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("ParseAmount(%q, %d) = %d, %v; want %d ok=%v", tc.text, tc.dp, got, err, tc.want, tc.ok)
		}
		if err != nil && !errors.Is(err, ErrBadAmount) {
			t.Errorf("ParseAmount(%q, %d): %v is not ErrBadAmount", tc.text, tc.dp, err)
		}
	}
}

// FuzzAmount checks Amount against the same rule computed on rationals:
// never negative, never above what was authorized, and otherwise the
// tariff rounded half-up to the currency's decimals.
func FuzzAmount(f *testing.F) {
	f.Add(1500.0, int64(10000), int64(390000), int64(0), 2)
	f.Add(10000.0, int64(10000), int64(333000), int64(0), 2)
	f.Add(0.0, int64(10000), int64(0), int64(5000), 2)
	f.Add(1000.0, int64(100), int64(2500000), int64(0), 0)
	f.Add(20000.0, int64(499), int64(390000), int64(0), 2)
	f.Add(1234.0, int64(5005), int64(333000), int64(1001000), 3)
	f.Add(2000.1-500.1, int64(59), int64(390000), int64(0), 2)
	f.Add(1e300, store.MaxScaled, store.MaxScaled, store.MaxScaled, 3)
	f.Add(5e-324, int64(1), int64(100000), int64(0), 1)
	f.Add(-1.0, int64(-5), int64(-1), int64(-500000), 7)
	f.Fuzz(func(t *testing.T, energyWh float64, authorized, price, fee int64, dp int) {
		tariff := store.Tariff{DecimalPlace: dp, PricePerKWhMicro: price, SessionFeeMicro: fee}
		got := Amount(energyWh, authorized, tariff)
		if got < 0 || got > max(authorized, 0) {
			t.Fatalf("Amount = %d with authorized %d", got, authorized)
		}
		// The rule on rationals: kWh × price + fee, in units.
		places := min(max(dp, 0), 3)
		kWh := new(big.Rat).SetFrac(ratRoundHalfUp(new(big.Rat).Mul(decimalOf(energyWh), big.NewRat(1000, 1))), big.NewInt(1_000_000))
		units := new(big.Rat).Mul(kWh, big.NewRat(max(price, 0), 1_000_000))
		units.Add(units, big.NewRat(max(fee, 0), 1_000_000))
		minor := units.Mul(units, new(big.Rat).SetInt(pow10(places)))
		floor := new(big.Int).Quo(minor.Num(), minor.Denom())
		frac := new(big.Rat).Sub(minor, new(big.Rat).SetInt(floor))
		if frac.Cmp(big.NewRat(1, 2)) >= 0 {
			floor.Add(floor, big.NewInt(1))
		}
		if want := floor; authorized > 0 && want.Cmp(big.NewInt(authorized)) < 0 && want.Int64() != got {
			t.Fatalf("Amount = %d, the rule says %s", got, want)
		}
		if authorized > 0 && floor.Cmp(big.NewInt(authorized)) >= 0 && got != authorized {
			t.Fatalf("Amount = %d, want the cap %d", got, authorized)
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
		AuthorizedMinor:    500,
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
			call, body, err := CancelRequest(s, term, row.Kind, 2)
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
	_, body, err := CancelRequest(s, term, ReasonUserStop, 2)
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
		AuthorizedMinor:    1500,
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
			build: func() (string, json.RawMessage, error) { return SettlementRequest(remote, serial, 1225, 2) },
			call:  nayax.CallSettlement,
			want: `{"NayaxTransactionId":2004545072,"SparkTransactionId":"12c7cec2-c690-4425-9a1f-db0db60e2d8c","SiteId":2,
				"TerminalId":"0434334921100366","TerminalIdType":1,"Amount":12.25}`,
		},
		{
			name: "Settlement by machine id, amount from Amount",
			build: func() (string, json.RawMessage, error) {
				return SettlementRequest(remote, machine, Amount(1500, 1500, moneyTariff(2, "0.39", "0")), 2)
			},
			call: nayax.CallSettlement,
			want: `{"NayaxTransactionId":2004545072,"SparkTransactionId":"12c7cec2-c690-4425-9a1f-db0db60e2d8c","SiteId":2,
				"TerminalId":"942","TerminalIdType":2,"Amount":0.59}`,
		},
		{
			name:  "ExternalSettlement",
			build: func() (string, json.RawMessage, error) { return SettlementRequest(external, serial, 450, 2) },
			call:  nayax.CallExternalSettlement,
			want: `{"NayaxTransactionId":987654321,"SparkTransactionId":"f8e7d6c5-b4a3-2109-fedc-ba9876543210",
				"MachineAuTime":"20251212110000500","SiteId":2,"TerminalId":"0434334921100366","TerminalIdType":1,"Amount":4.5}`,
		},
		{
			name:  "CancelTransaction pre-authorization",
			build: func() (string, json.RawMessage, error) { return CancelRequest(remote, serial, ReasonBelowMinimum, 2) },
			call:  nayax.CallCancelTransaction,
			want: `{"NayaxTransactionId":2004545072,"SparkTransactionId":"12c7cec2-c690-4425-9a1f-db0db60e2d8c","SiteId":2,
				"MachineAuTime":"20240205194122328","TerminalId":"0434334921100366","TerminalIdType":1,"CancellationType":1,
				"ReasonCode":75,"ReasonText":"Service not provided","CancelAmount":15}`,
		},
		{
			name:  "CancelTransaction pre-selection, code 03 as integer 3",
			build: func() (string, json.RawMessage, error) { return CancelRequest(remote, machine, ReasonNoVehicle, 2) },
			call:  nayax.CallCancelTransaction,
			want: `{"NayaxTransactionId":2004545072,"SparkTransactionId":"12c7cec2-c690-4425-9a1f-db0db60e2d8c","SiteId":2,
				"MachineAuTime":"20240205194122328","TerminalId":"942","TerminalIdType":2,"CancellationType":2,
				"ReasonCode":3,"ReasonText":"Vehicle not connected","CancelAmount":15}`,
		},
		{
			name: "ExternalCancel pre-selection, code as string",
			build: func() (string, json.RawMessage, error) {
				return CancelRequest(external, machine, ReasonStationFault, 2)
			},
			call: nayax.CallExternalCancel,
			want: `{"NayaxTransactionId":987654321,"SparkTransactionId":"f8e7d6c5-b4a3-2109-fedc-ba9876543210","SiteId":2,
				"MachineAuTime":"20251212110000500","TerminalId":"942","TerminalIdType":2,"CancellationType":2,
				"ReasonCode":"06","ReasonText":"Station fault","CancelAmount":5}`,
		},
		{
			name: "Settlement without SiteId and MachineAuTime",
			build: func() (string, json.RawMessage, error) {
				s := remote
				s.SiteID, s.MachineAuTime = "", ""
				return SettlementRequest(s, serial, 100, 2)
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
				return CancelRequest(s, serial, ReasonUserStop, 2)
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
				return CancelRequest(s, serial, ReasonUnplugged, 2)
			},
			call: nayax.CallExternalCancel,
			want: `{"NayaxTransactionId":987654321,"SparkTransactionId":"f8e7d6c5-b4a3-2109-fedc-ba9876543210","SiteId":2,
				"TerminalId":"0434334921100366","TerminalIdType":1,"CancellationType":1,
				"ReasonCode":"03","ReasonText":"Vehicle unplugged before charging","CancelAmount":5}`,
		},
		{
			name: "TriggerTransaction pre-selection",
			build: func() (string, json.RawMessage, error) {
				return TriggerRequest("12c7cec2-c690-4425-9a1f-db0db60e2d8c", machine, 1500, 2, 60*time.Second)
			},
			call: nayax.CallTriggerTransaction,
			want: `{"SparkTransactionId":"12c7cec2-c690-4425-9a1f-db0db60e2d8c","TerminalId":"942","TerminalIdType":2,
				"Amount":15,"TransactionTimeout":60}`,
		},
		{
			name: "TriggerTransaction pre-authorization without amount, timeout rounded up",
			build: func() (string, json.RawMessage, error) {
				return TriggerRequest("12c7cec2-c690-4425-9a1f-db0db60e2d8c", serial, 0, 2, 1500*time.Millisecond)
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
				"settle": func() (string, json.RawMessage, error) { return SettlementRequest(s, term, 100, 2) },
				"cancel": func() (string, json.RawMessage, error) { return CancelRequest(s, term, ReasonBelowMinimum, 2) },
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
	badAuth.AuthorizedMinor = store.MaxScaled + 1
	negAuth := remote
	negAuth.AuthorizedMinor = -1
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
		{"ExternalSettlement without SiteId", func() (string, json.RawMessage, error) { return SettlementRequest(noSite, term, 100, 2) }, ErrNoSiteID},
		{"ExternalCancel without SiteId", func() (string, json.RawMessage, error) { return CancelRequest(noSite, term, ReasonNoVehicle, 2) }, ErrNoSiteID},
		{"stored SiteId not a JSON literal", func() (string, json.RawMessage, error) { return SettlementRequest(badSite, term, 100, 2) }, nil},
		{"no origin, settle", func() (string, json.RawMessage, error) { return SettlementRequest(noOrigin, term, 100, 2) }, ErrUnknownOrigin},
		{"no origin, cancel", func() (string, json.RawMessage, error) { return CancelRequest(noOrigin, term, ReasonNoVehicle, 2) }, ErrUnknownOrigin},
		{"no terminal id, settle", func() (string, json.RawMessage, error) {
			return SettlementRequest(remote, config.Terminal{Flow: config.FlowPreAuthorization}, 100, 2)
		}, ErrNoTerminal},
		{"no terminal id, cancel", func() (string, json.RawMessage, error) {
			return CancelRequest(external, config.Terminal{Flow: config.FlowPreAuthorization}, ReasonNoVehicle, 2)
		}, ErrNoTerminal},
		{"no terminal id, trigger", func() (string, json.RawMessage, error) {
			return TriggerRequest("x", config.Terminal{Flow: config.FlowPreAuthorization}, 100, 2, time.Minute)
		}, ErrNoTerminal},
		{"unknown flow", func() (string, json.RawMessage, error) { return CancelRequest(external, badFlow, ReasonNoVehicle, 2) }, ErrUnknownFlow},
		{"settle above authorized", func() (string, json.RawMessage, error) { return SettlementRequest(remote, term, 501, 2) }, ErrBadAmount},
		{"settle negative", func() (string, json.RawMessage, error) { return SettlementRequest(remote, term, -1, 2) }, ErrBadAmount},
		{"settle at more decimals than Nayax takes", func() (string, json.RawMessage, error) { return SettlementRequest(remote, term, 100, 4) }, ErrBadAmount},
		{"cancel authorized out of range", func() (string, json.RawMessage, error) { return CancelRequest(badAuth, term, ReasonNoVehicle, 2) }, ErrBadAmount},
		{"cancel negative authorized", func() (string, json.RawMessage, error) { return CancelRequest(negAuth, term, ReasonNoVehicle, 2) }, ErrBadAmount},
		{"no NayaxTransactionId", func() (string, json.RawMessage, error) { return SettlementRequest(noNayaxID, term, 100, 2) }, nil},
		{"trigger without timeout", func() (string, json.RawMessage, error) { return TriggerRequest("x", term, 100, 2, 0) }, ErrTriggerTimeout},
		{"trigger timeout too long", func() (string, json.RawMessage, error) {
			return TriggerRequest("x", term, 100, 2, 32767*time.Second+time.Millisecond)
		}, ErrTriggerTimeout},
		{"trigger pre-selection without amount", func() (string, json.RawMessage, error) { return TriggerRequest("x", preSel, 0, 2, time.Minute) }, ErrBadAmount},
		{"trigger negative amount", func() (string, json.RawMessage, error) { return TriggerRequest("x", term, -1, 2, time.Minute) }, ErrBadAmount},
		{"trigger without spark id", func() (string, json.RawMessage, error) { return TriggerRequest("", term, 100, 2, time.Minute) }, nil},
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
