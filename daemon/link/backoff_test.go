package link

import (
	"fmt"
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

// TestContestedHold: while contested every wait is at least the conflict
// backoff's, growing from ConflictMin to ConflictMax; Contested(false)
// gives the ordinary waits back, and a new conflict starts from
// ConflictMin again.
func TestContestedHold(t *testing.T) {
	const m = time.Minute
	l := New(Options{ConflictMin: 2 * m, ConflictMax: 8 * m})
	within := func(step string, got, want time.Duration) {
		t.Helper()
		if got < want/2 || got > want {
			t.Fatalf("%s: wait %v, want %v (±half)", step, got, want)
		}
	}
	if got := l.hold(time.Second); got != time.Second {
		t.Fatalf("uncontested: wait %v, want the ordinary 1s", got)
	}
	l.Contested(true)
	l.Contested(true) // repeated evidence does not restart the count
	for i, want := range []time.Duration{2 * m, 4 * m, 8 * m, 8 * m} {
		within(fmt.Sprintf("conflict wait %d", i+1), l.hold(time.Second), want)
	}
	if got := l.hold(time.Hour); got != time.Hour {
		t.Fatalf("contested with a longer ordinary wait: %v, want 1h", got)
	}
	l.Contested(false)
	if got := l.hold(time.Second); got != time.Second {
		t.Fatalf("after Contested(false): wait %v, want 1s", got)
	}
	l.Contested(true)
	within("new conflict", l.hold(time.Second), 2*m)

	d := New(Options{}).o
	if d.ConflictMin != 2*m || d.ConflictMax != 15*m {
		t.Fatalf("conflict backoff defaults %v..%v, want 2m0s..15m0s", d.ConflictMin, d.ConflictMax)
	}
}
