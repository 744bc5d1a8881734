package nayax

import (
	"encoding/json"
	"math"
	"testing"
)

func TestInt64Unmarshal(t *testing.T) {
	tests := []struct {
		in      string
		want    Int64
		wantErr bool
	}{
		{in: `2004545072`, want: NewInt64(2004545072)},
		{in: `"2004545072"`, want: NewInt64(2004545072)},
		{in: `" 2004545072 "`, want: NewInt64(2004545072)},
		{in: `9223372036854775807`, want: NewInt64(math.MaxInt64)},
		{in: `"9223372036854775807"`, want: NewInt64(math.MaxInt64)},
		{in: `-9223372036854775808`, want: NewInt64(math.MinInt64)},
		{in: `9007199254740993`, want: NewInt64(9007199254740993)}, // 2^53+1: lost by float64
		{in: `0`, want: NewInt64(0)},
		{in: `"007"`, want: NewInt64(7)},
		{in: `null`, want: Int64{}},
		{in: `""`, want: Int64{}},
		{in: `"  "`, want: Int64{}},
		{in: `9223372036854775808`, wantErr: true},
		{in: `"9223372036854775808"`, wantErr: true},
		{in: `-9223372036854775809`, wantErr: true},
		{in: `1.0`, wantErr: true},
		{in: `1e3`, wantErr: true},
		{in: `2.3658433596983443e+35`, wantErr: true},
		{in: `"1.5"`, wantErr: true},
		{in: `"abc"`, wantErr: true},
		{in: `"+5"`, wantErr: true},
		{in: `"0x10"`, wantErr: true},
		{in: `"1_000"`, wantErr: true},
		{in: `"-"`, wantErr: true},
		{in: `true`, wantErr: true},
		{in: `{}`, wantErr: true},
		{in: `[1]`, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			var got Int64
			err := json.Unmarshal([]byte(tt.in), &got)
			if (err != nil) != tt.wantErr {
				t.Fatalf("Unmarshal(%s) error = %v, wantErr %v", tt.in, err, tt.wantErr)
			}
			if err == nil && got != tt.want {
				t.Fatalf("Unmarshal(%s) = %+v, want %+v", tt.in, got, tt.want)
			}
		})
	}
}

func TestInt64MarshalExact(t *testing.T) {
	for _, tt := range []struct {
		in   Int64
		want string
	}{
		{NewInt64(math.MaxInt64), `9223372036854775807`},
		{NewInt64(math.MinInt64), `-9223372036854775808`},
		{NewInt64(0), `0`},
		{Int64{}, `null`},
	} {
		b, err := json.Marshal(tt.in)
		if err != nil || string(b) != tt.want {
			t.Errorf("Marshal(%+v) = %s, %v; want %s", tt.in, b, err, tt.want)
		}
	}
}

func TestTextUnmarshal(t *testing.T) {
	tests := []struct {
		in      string
		want    Text
		wantErr bool
	}{
		{in: `"0434334921100366"`, want: NewText("0434334921100366")},
		{in: `434324119376526`, want: NewText("434324119376526")},
		{in: `2.3658433596983443e+35`, want: NewText("2.3658433596983443e+35")},
		{in: `333333`, want: NewText("333333")},
		{in: `-0.50`, want: NewText("-0.50")},
		{in: `""`, want: NewText("")},
		{in: `"a\"b\u00e9"`, want: NewText(`a"bé`)},
		{in: `true`, want: NewText("true")},
		{in: `false`, want: NewText("false")},
		{in: `null`, want: Text{}},
		{in: `{}`, wantErr: true},
		{in: `["x"]`, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			var got Text
			err := json.Unmarshal([]byte(tt.in), &got)
			if (err != nil) != tt.wantErr {
				t.Fatalf("Unmarshal(%s) error = %v, wantErr %v", tt.in, err, tt.wantErr)
			}
			if err == nil && got != tt.want {
				t.Fatalf("Unmarshal(%s) = %+v, want %+v", tt.in, got, tt.want)
			}
		})
	}
}

func TestTextMarshal(t *testing.T) {
	for _, tt := range []struct {
		in   Text
		want string
	}{
		{NewText("2.3658433596983443e+35"), `"2.3658433596983443e+35"`},
		{NewText(""), `""`},
		{Text{}, `null`},
	} {
		b, err := json.Marshal(tt.in)
		if err != nil || string(b) != tt.want {
			t.Errorf("Marshal(%+v) = %s, %v; want %s", tt.in, b, err, tt.want)
		}
	}
}

func TestAmountUnmarshal(t *testing.T) {
	tests := []struct {
		in       string
		want     float64
		valid    bool
		decimal  string // as written, for the edge's minor units
		marshals string // what the relay forwards
		wantErr  bool
	}{
		{in: `15.0`, want: 15, valid: true, decimal: "15.0", marshals: "15.0"},
		{in: `15`, want: 15, valid: true, decimal: "15", marshals: "15"},
		{in: `12.25`, want: 12.25, valid: true, decimal: "12.25", marshals: "12.25"},
		{in: `"12.25"`, want: 12.25, valid: true, decimal: "12.25", marshals: "12.25"},
		{in: `" 7 "`, want: 7, valid: true, decimal: "7", marshals: "7"},
		{in: `1e2`, want: 100, valid: true, decimal: "1e2", marshals: "1e2"},
		{in: `0.59000000000000000001`, want: 0.59, valid: true, decimal: "0.59000000000000000001", marshals: "0.59000000000000000001"},
		{in: `null`, marshals: "null"},
		{in: `""`, marshals: "null"},
		{in: `"abc"`, wantErr: true},
		{in: `"NaN"`, wantErr: true},
		{in: `"Inf"`, wantErr: true},
		{in: `"0x10"`, wantErr: true},
		{in: `"12,25"`, wantErr: true},
		{in: `1e400`, wantErr: true},
		{in: `true`, wantErr: true},
		{in: `{}`, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			var got Amount
			err := json.Unmarshal([]byte(tt.in), &got)
			if (err != nil) != tt.wantErr {
				t.Fatalf("Unmarshal(%s) error = %v, wantErr %v", tt.in, err, tt.wantErr)
			}
			if err != nil {
				return
			}
			if got.V != tt.want || got.Valid != tt.valid || got.Decimal() != tt.decimal {
				t.Fatalf("Unmarshal(%s) = %+v (decimal %q), want %v valid %v decimal %q", tt.in, got, got.Decimal(), tt.want, tt.valid, tt.decimal)
			}
			b, err := json.Marshal(got)
			if err != nil || string(b) != tt.marshals {
				t.Errorf("Marshal = %s, %v; want %s", b, err, tt.marshals)
			}
		})
	}
}

func TestNewAmountDecimal(t *testing.T) {
	for _, s := range []string{"0.59", "15", "999999999999.999", "0.001"} {
		a, err := NewAmountDecimal(s)
		if err != nil {
			t.Fatalf("NewAmountDecimal(%q): %v", s, err)
		}
		if b, _ := json.Marshal(a); string(b) != s || a.Decimal() != s {
			t.Errorf("NewAmountDecimal(%q) marshals %s, decimal %q", s, b, a.Decimal())
		}
	}
	for _, s := range []string{"", "0.5.9", "1e999", "-", " 1"} {
		if a, err := NewAmountDecimal(s); err == nil {
			t.Errorf("NewAmountDecimal(%q) = %+v, want an error", s, a)
		}
	}
	if got := NewAmount(0.59).Decimal(); got != "0.59" {
		t.Errorf("NewAmount(0.59).Decimal() = %q", got)
	}
}

func TestLiteral(t *testing.T) {
	tests := []struct {
		in        string
		raw       string
		value     string
		wantValid bool
		wantErr   bool
	}{
		{in: `2`, raw: `2`, value: "2", wantValid: true},
		{in: `"02"`, raw: `"02"`, value: "02", wantValid: true},
		{in: `2.50`, raw: `2.50`, value: "2.50", wantValid: true},
		{in: `"\u0032"`, raw: `"\u0032"`, value: "2", wantValid: true},
		{in: `null`},
		{in: `true`, wantErr: true},
		{in: `{"a":1}`, wantErr: true},
		{in: `[2]`, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			var got struct {
				SiteId Literal `json:"SiteId,omitzero"`
			}
			err := json.Unmarshal([]byte(`{"SiteId":`+tt.in+`}`), &got)
			if (err != nil) != tt.wantErr {
				t.Fatalf("Unmarshal(%s) error = %v, wantErr %v", tt.in, err, tt.wantErr)
			}
			if err != nil {
				return
			}
			l := got.SiteId
			if l.String() != tt.raw || l.Value() != tt.value || l.Valid() != tt.wantValid {
				t.Fatalf("Literal from %s = raw %q value %q valid %v; want %q %q %v",
					tt.in, l.String(), l.Value(), l.Valid(), tt.raw, tt.value, tt.wantValid)
			}
			b, err := json.Marshal(got)
			if err != nil {
				t.Fatal(err)
			}
			want := `{"SiteId":` + tt.raw + `}`
			if !tt.wantValid {
				want = `{}`
			}
			if string(b) != want {
				t.Fatalf("Marshal = %s, want %s (echoed unchanged)", b, want)
			}
			back, err := ParseLiteral(l.String())
			if err != nil || back != l {
				t.Fatalf("ParseLiteral(%q) = %+v, %v; want %+v", l.String(), back, err, l)
			}
		})
	}
}

func TestParseLiteralRejects(t *testing.T) {
	for _, s := range []string{`abc`, `true`, `{}`, `"unterminated`, `01`} {
		if _, err := ParseLiteral(s); err == nil {
			t.Errorf("ParseLiteral(%q) succeeded, want an error", s)
		}
	}
}

func TestIsNumber(t *testing.T) {
	for s, want := range map[string]bool{
		"0": true, "-0": true, "12": true, "1.5": true, "1e5": true, "1E+5": true, "-1.5e-3": true,
		"2.3658433596983443e+35": true, "": false, "-": false, "01": false, "1.": false, ".5": false, "1e": false, "+1": false,
		"NaN": false, "Infinity": false, "0x1": false, "1 ": false, "1_0": false,
	} {
		if got := isNumber(s); got != want {
			t.Errorf("isNumber(%q) = %v, want %v", s, got, want)
		}
	}
}
