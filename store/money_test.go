package store_test

import (
	"errors"
	"math"
	"testing"

	"github.com/sitelink/sitelink/store"
)

func TestParseDecimal(t *testing.T) {
	tests := []struct {
		in     string
		places int
		max    int64
		want   int64
		err    error
	}{
		{"0.59", 2, store.MaxScaled, 59, nil},
		{"0.590", 2, store.MaxScaled, 59, nil},
		{"15", 2, store.MaxScaled, 1500, nil},
		{"15", 0, store.MaxScaled, 15, nil},
		{"1.5e1", 0, store.MaxScaled, 15, nil},
		{"1E-2", 2, store.MaxScaled, 1, nil},
		{"+4.125", 3, store.MaxScaled, 4125, nil},
		{"5.125", 3, store.MaxScaled, 5125, nil},
		{"0.3925", 6, store.MaxScaled, 392500, nil},
		{"000.10", 1, store.MaxScaled, 1, nil},
		{".5", 1, store.MaxScaled, 5, nil},
		{"5.", 0, store.MaxScaled, 5, nil},
		{"0", 3, store.MaxScaled, 0, nil},
		{"-0.00", 2, store.MaxScaled, 0, nil},
		{"0e9999", 2, store.MaxScaled, 0, nil},
		{"999999999999.999", 3, store.MaxScaled, store.MaxScaled, nil},
		{"1000000000000", 3, store.MaxScaled, 0, store.ErrOutOfRange},
		{"9223372036854775807", 0, math.MaxInt64, math.MaxInt64, nil},
		{"9223372036854775808", 0, math.MaxInt64, 0, store.ErrOutOfRange},
		{"1e18", 2, math.MaxInt64, 0, store.ErrOutOfRange},
		{"1e9999", 2, store.MaxScaled, 0, store.ErrOutOfRange},
		{"0.595", 2, store.MaxScaled, 0, store.ErrTooPrecise},
		{"0.5900000000000001", 2, store.MaxScaled, 0, store.ErrTooPrecise},
		{"1e-7", 6, store.MaxScaled, 0, store.ErrTooPrecise},
		{"0.5", 0, store.MaxScaled, 0, store.ErrTooPrecise},
		{"-1", 2, store.MaxScaled, 0, store.ErrNegative},
		{"-0.01", 2, store.MaxScaled, 0, store.ErrNegative},
		{"", 2, store.MaxScaled, 0, store.ErrNotDecimal},
		{".", 2, store.MaxScaled, 0, store.ErrNotDecimal},
		{"1e", 2, store.MaxScaled, 0, store.ErrNotDecimal},
		{"1e99999", 2, store.MaxScaled, 0, store.ErrNotDecimal},
		{"0x10", 2, store.MaxScaled, 0, store.ErrNotDecimal},
		{"1,5", 2, store.MaxScaled, 0, store.ErrNotDecimal},
		{" 1", 2, store.MaxScaled, 0, store.ErrNotDecimal},
		{"NaN", 2, store.MaxScaled, 0, store.ErrNotDecimal},
		{"Inf", 2, store.MaxScaled, 0, store.ErrNotDecimal},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, err := store.ParseDecimal(tc.in, tc.places, tc.max)
			if !errors.Is(err, tc.err) || (tc.err == nil && err != nil) {
				t.Fatalf("ParseDecimal(%q, %d) error %v, want %v", tc.in, tc.places, err, tc.err)
			}
			if got != tc.want {
				t.Errorf("ParseDecimal(%q, %d) = %d, want %d", tc.in, tc.places, got, tc.want)
			}
		})
	}
}

func TestFormatDecimal(t *testing.T) {
	tests := []struct {
		v            int64
		places       int
		short, fixed string
	}{
		{59, 2, "0.59", "0.59"},
		{50, 2, "0.5", "0.50"},
		{1500, 2, "15", "15.00"},
		{5125, 3, "5.125", "5.125"},
		{1, 3, "0.001", "0.001"},
		{3000, 0, "3000", "3000"},
		{0, 2, "0", "0.00"},
		{-59, 2, "-0.59", "-0.59"},
		{math.MinInt64, 0, "-9223372036854775808", "-9223372036854775808"},
		{store.MaxScaled, 3, "999999999999.999", "999999999999.999"},
	}
	for _, tc := range tests {
		if got := store.FormatDecimal(tc.v, tc.places); got != tc.short {
			t.Errorf("FormatDecimal(%d, %d) = %q, want %q", tc.v, tc.places, got, tc.short)
		}
		if got := store.FormatFixed(tc.v, tc.places); got != tc.fixed {
			t.Errorf("FormatFixed(%d, %d) = %q, want %q", tc.v, tc.places, got, tc.fixed)
		}
		if tc.v >= 0 {
			if back, err := store.ParseDecimal(tc.short, tc.places, math.MaxInt64); err != nil || back != tc.v {
				t.Errorf("ParseDecimal(FormatDecimal(%d)) = %d, %v", tc.v, back, err)
			}
		}
	}
}

func TestFloatDecimal(t *testing.T) {
	tenth, fifth := 0.1, 0.2 // variables: constants would add exactly
	for x, want := range map[float64]string{0.39: "0.39", 1e21: "1000000000000000000000", tenth + fifth: "0.30000000000000004", 15: "15"} {
		if got := store.FloatDecimal(x); got != want {
			t.Errorf("FloatDecimal(%v) = %q, want %q", x, got, want)
		}
	}
	for _, x := range []float64{math.NaN(), math.Inf(1), math.Inf(-1)} {
		if _, err := store.ParseDecimal(store.FloatDecimal(x), 2, store.MaxScaled); err == nil {
			t.Errorf("FloatDecimal(%v) parses", x)
		}
	}
}
