package nayax

import (
	"fmt"
	"testing"
	"time"
)

func TestAuthCacheBounds(t *testing.T) {
	now := time.Date(2026, 2, 4, 10, 0, 0, 0, time.UTC)
	a := newAuthCache(3, time.Minute)
	for i := range 5 {
		a.put(fmt.Sprint(i), now)
	}
	if n := a.len(); n != 3 {
		t.Fatalf("len = %d, want the bound 3", n)
	}
	for id, want := range map[string]bool{"0": false, "1": false, "2": true, "3": true, "4": true} {
		if got := a.fresh(id, now); got != want {
			t.Errorf("fresh(%s) = %v, want %v (oldest evicted first)", id, got, want)
		}
	}
	// Re-putting an id makes it the newest.
	a.put("2", now)
	a.put("5", now)
	if a.fresh("3", now) || !a.fresh("2", now) {
		t.Fatal("re-put id was evicted before an older one")
	}
	if a.fresh("2", now.Add(time.Minute)) {
		t.Fatal("entry fresh at its TTL")
	}
	if a.fresh("2", now) {
		t.Fatal("expired entry not removed")
	}
	if a.fresh("5", now.Add(-time.Second)) {
		t.Fatal("entry from the future (clock stepped back) counted as fresh")
	}
	a.put("6", now)
	a.drop("6")
	if a.fresh("6", now) {
		t.Fatal("dropped entry still fresh")
	}
}

func TestBackoffBounds(t *testing.T) {
	c := &Client{cfg: ClientConfig{BackoffMin: 200 * time.Millisecond, BackoffMax: 5 * time.Second}}
	tests := []struct {
		retry    int
		min, max time.Duration
	}{
		{1, 100 * time.Millisecond, 200 * time.Millisecond},
		{2, 200 * time.Millisecond, 400 * time.Millisecond},
		{5, 1600 * time.Millisecond, 3200 * time.Millisecond},
		{6, 2500 * time.Millisecond, 5 * time.Second},
		{40, 2500 * time.Millisecond, 5 * time.Second},
		{1000, 2500 * time.Millisecond, 5 * time.Second},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.retry), func(t *testing.T) {
			for range 200 {
				if d := c.backoff(tt.retry); d < tt.min || d > tt.max {
					t.Fatalf("backoff(%d) = %v, want within [%v, %v]", tt.retry, d, tt.min, tt.max)
				}
			}
		})
	}
}
