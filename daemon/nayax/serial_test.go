package nayax_test

import (
	"testing"

	"github.com/sitelink/sitelink/daemon/nayax"
)

// The quirks of DESIGN.md §1 and FLOWS.md: Nayax loses leading zeros when
// it sends HwSerial as a number; configurations and payloads may carry
// spaces or another case; an all-zero serial is a serial, an empty one is
// none.
func TestNormSerial(t *testing.T) {
	tests := []struct{ in, want string }{
		{"0434324119376526", "434324119376526"},
		{"434324119376526", "434324119376526"},
		{"000434324119376526", "434324119376526"},
		{" 0434324119376526\t", "434324119376526"},
		{"4343241193765260", "4343241193765260"}, // trailing zeros count
		{"000", "0"},
		{"0", "0"},
		{"", ""},
		{"   ", ""},
		{"abc1", "ABC1"},
		{"00aBc1", "ABC1"},
	}
	for _, tt := range tests {
		if got := nayax.NormSerial(tt.in); got != tt.want {
			t.Errorf("NormSerial(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestSameSerial(t *testing.T) {
	tests := []struct {
		a, b string
		want bool
	}{
		{"0434324119376526", "434324119376526", true},
		{"434324119376526", "0434324119376526", true},
		{" 0434324119376526 ", "434324119376526", true},
		{"00434324119376526", "0434324119376526", true},
		{"0434324119376526", "0434324119376527", false},
		{"434324119376526", "4343241193765260", false},
		{"000", "0", true},
		{"", "", false},
		{"  ", "  ", false},
		{"", "0", false},
		{"0", "", false},
		{"ABC1", "abc1", true},
		{"ABC1", "ABD1", false},
		// A serial that went through float64 is not recoverable; it must
		// not match the real one by accident.
		{"4.34324119376526e+14", "434324119376526", false},
	}
	for _, tt := range tests {
		t.Run(tt.a+"|"+tt.b, func(t *testing.T) {
			if got := nayax.SameSerial(tt.a, tt.b); got != tt.want {
				t.Fatalf("SameSerial(%q, %q) = %v, want %v", tt.a, tt.b, got, tt.want)
			}
		})
	}
}
