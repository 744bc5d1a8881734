package nayax

import (
	"fmt"
	"testing"
	"time"

	"github.com/sitelink/sitelink/daemon/retry"
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

// The client waits by retry.Backoff with its configured bounds; the
// arithmetic itself is retry's and tested there.
func TestClientBackoff(t *testing.T) {
	base := ClientConfig{BaseURL: "https://nayax.example/api", IntegratorID: "i", SignKey: "k",
		TokenID: 1, TokenSecret: []byte("0123456789abcdef0123456789abcdef")}
	tests := []struct {
		name     string
		min, max time.Duration
		want     retry.Backoff
	}{
		{"defaults", 0, 0, retry.Backoff{Min: DefaultBackoffMin, Max: DefaultBackoffMax}},
		{"configured", time.Second, time.Minute, retry.Backoff{Min: time.Second, Max: time.Minute}},
		{"max below min is raised", time.Second, time.Millisecond, retry.Backoff{Min: time.Second, Max: time.Second}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := base
			cfg.BackoffMin, cfg.BackoffMax = tt.min, tt.max
			c, err := NewClient(cfg)
			if err != nil {
				t.Fatal(err)
			}
			if c.wait != tt.want {
				t.Fatalf("wait = %+v, want %+v", c.wait, tt.want)
			}
		})
	}
}
