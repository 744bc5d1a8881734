package main

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/time/rate"

	"github.com/sitelink/sitelink/daemon/config"
	"github.com/sitelink/sitelink/daemon/nayaxsim"
)

// The relay's limits reach its options as configured; rate_limit 0 is
// "no limit", which the options spell rate.Inf (their zero is the
// default).
func TestRelayOptionsLimits(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	nayax := fmt.Sprintf(`nayax: {base_url: "http://127.0.0.1:1/api", integrator_id: i, sign_key_file: %s, token_id: 1, token_secret_file: %s}
`, write("sign.key", "k"), write("token.secret", nayaxsim.DefaultTokenSecret))
	key := write("card.key", testCardKey) + ", callback_headers: [{name: X-A, value: a}]"
	tests := []struct {
		name     string
		relay    string
		metrics  string
		rate     rate.Limit
		burst    int
		maxConns int
	}{
		{"defaults", "relay: {id: r1, card_key_file: " + key + "}\n", "127.0.0.1:9101", 200, 400, 1024},
		{"set", `relay: {id: r1, metrics_listen: "10.0.0.5:9200", rate_limit: 0.5, rate_burst: 3, max_connections: 10, card_key_file: ` + key + "}\n", "10.0.0.5:9200", 0.5, 3, 10},
		{"off", `relay: {id: r1, metrics_listen: "", rate_limit: 0, card_key_file: ` + key + "}\n", "", rate.Inf, 400, 1024},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := config.ParseRelay([]byte(tt.relay + nayax))
			if err != nil {
				t.Fatal(err)
			}
			o, err := relayOptions(cfg, slog.New(slog.DiscardHandler))
			if err != nil {
				t.Fatal(err)
			}
			if o.MetricsListen != tt.metrics || o.RateLimit != tt.rate || o.RateBurst != tt.burst || o.MaxConnections != tt.maxConns {
				t.Errorf("options: metrics %q, rate %v burst %d, connections %d; want %q, %v, %d, %d",
					o.MetricsListen, o.RateLimit, o.RateBurst, o.MaxConnections, tt.metrics, tt.rate, tt.burst, tt.maxConns)
			}
		})
	}
}
