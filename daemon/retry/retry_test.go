package retry

import (
	"testing"
	"time"
)

func TestBackoff(t *testing.T) {
	b := Backoff{Min: time.Second, Max: 60 * time.Second}
	for _, tc := range []struct {
		n    int
		want time.Duration
	}{
		{-3, time.Second},
		{0, time.Second},
		{1, time.Second},
		{2, 2 * time.Second},
		{3, 4 * time.Second},
		{6, 32 * time.Second},
		{7, 60 * time.Second},
		{63, 60 * time.Second},
		{1 << 20, 60 * time.Second},
	} {
		if got := b.Nominal(tc.n); got != tc.want {
			t.Errorf("Nominal(%d) = %v, want %v", tc.n, got, tc.want)
		}
		for range 200 {
			if got := b.Delay(tc.n); got < tc.want/2 || got > tc.want {
				t.Fatalf("Delay(%d) = %v, outside [%v, %v]", tc.n, got, tc.want/2, tc.want)
			}
		}
	}
}

func TestBackoffEdges(t *testing.T) {
	for _, tc := range []struct {
		name string
		b    Backoff
		n    int
		want time.Duration
	}{
		{"zero value waits nothing", Backoff{}, 5, 0},
		{"min above max is max", Backoff{Min: time.Minute, Max: time.Second}, 1, time.Second},
		{"no min is max", Backoff{Max: time.Second}, 1, time.Second},
		{"huge min does not overflow", Backoff{Min: 1 << 61, Max: 1<<62 + 1}, 3, 1<<62 + 1},
	} {
		if got := tc.b.Nominal(tc.n); got != tc.want {
			t.Errorf("%s: Nominal(%d) = %v, want %v", tc.name, tc.n, got, tc.want)
		}
	}
}

func TestBackoffSpreads(t *testing.T) {
	b := Backoff{Min: time.Second, Max: time.Second}
	seen := map[time.Duration]bool{}
	for range 100 {
		seen[b.Delay(1)] = true
	}
	if len(seen) < 10 {
		t.Fatalf("jitter drew only %d distinct waits in 100", len(seen))
	}
}
