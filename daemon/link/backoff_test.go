package link

import (
	"testing"
	"time"

	"github.com/sitelink/sitelink/daemon/retry"
)

// TestPacer walks the reconnect waits: failures double from Min up to
// Max, a connection that died young counts as a failure, one that lived
// stableAfter starts again from Min.
func TestPacer(t *testing.T) {
	const s = time.Second
	type step struct {
		lost  time.Duration // 0: a failed attempt; else a connection that lived this long was lost
		fails int           // the pacer's count afterwards
		want  time.Duration // nominal wait; the jittered one is in [want/2, want]
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"failures double up to the cap", []step{{0, 1, 1 * s}, {0, 2, 2 * s}, {0, 3, 4 * s}, {0, 4, 8 * s}, {0, 5, 8 * s}, {0, 6, 8 * s}}},
		{"a young connection is a failure", []step{{0, 1, 1 * s}, {0, 2, 2 * s}, {time.Second, 3, 4 * s}, {stableAfter - 1, 4, 8 * s}}},
		{"a lived connection resets", []step{{0, 1, 1 * s}, {0, 2, 2 * s}, {0, 3, 4 * s}, {stableAfter, 0, 1 * s}, {0, 1, 1 * s}, {0, 2, 2 * s}}},
		{"first loss after a long life", []step{{time.Hour, 0, 1 * s}, {time.Second, 1, 1 * s}, {time.Second, 2, 2 * s}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := pacer{b: retry.Backoff{Min: s, Max: 8 * s}}
			for i, st := range tc.steps {
				var d time.Duration
				if st.lost == 0 {
					d = p.failed()
				} else {
					d = p.lost(st.lost)
				}
				if p.fails != st.fails || d < st.want/2 || d > st.want {
					t.Fatalf("step %d: wait %v with %d failures, want %v (±half) with %d", i, d, p.fails, st.want, st.fails)
				}
			}
		})
	}
}

func TestBackoffDefaults(t *testing.T) {
	const s = time.Second
	tests := []struct {
		min, max         time.Duration
		wantMin, wantMax time.Duration
	}{
		{0, 0, s, 60 * s},
		{200 * time.Millisecond, 5 * s, 200 * time.Millisecond, 5 * s},
		{2 * s, s, 2 * s, 60 * s},                              // max below min: the default ceiling
		{2 * time.Minute, 0, 2 * time.Minute, 2 * time.Minute}, // never below min
	}
	for _, tc := range tests {
		b := Options{BackoffMin: tc.min, BackoffMax: tc.max}.withDefaults().backoff()
		if b.Min != tc.wantMin || b.Max != tc.wantMax {
			t.Errorf("BackoffMin %v, BackoffMax %v: backoff %v..%v, want %v..%v", tc.min, tc.max, b.Min, b.Max, tc.wantMin, tc.wantMax)
		}
	}
}
