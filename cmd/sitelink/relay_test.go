package main

import (
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sitelink/sitelink/daemon/config"
	"github.com/sitelink/sitelink/daemon/nayaxsim"
)

// relay.card_key_file is read like the other secrets: one trailing newline
// dropped, and a missing, empty or short key stops the relay before it
// serves anything (the error names the key and the file, never the key).
func TestRelayCardKeyFile(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	cfg := config.DefaultRelay()
	cfg.Relay.ID = "relay-1"
	cfg.Nayax.BaseURL = "http://127.0.0.1:1/api"
	cfg.Nayax.IntegratorID = nayaxsim.DefaultIntegratorID
	cfg.Nayax.SignKeyFile = write("sign.key", nayaxsim.DefaultSignKey+"\n")
	cfg.Nayax.TokenID = nayaxsim.DefaultTokenID
	cfg.Nayax.TokenSecretFile = write("token.secret", nayaxsim.DefaultTokenSecret+"\n")
	log := slog.New(slog.DiscardHandler)
	for _, tc := range []struct {
		name, file, err string
	}{
		{"a 32-byte key", write("good.key", testCardKey+"\n"), ""},
		{"no file", filepath.Join(dir, "missing.key"), "relay.card_key_file: read secret"},
		{"empty", write("empty.key", "\n"), "relay.card_key_file: read secret"},
		{"short", write("short.key", "s3cr3t-but-short\n"), "relay.card_key_file: 16 bytes, want at least 32"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := cfg
			c.Relay.CardKeyFile = tc.file
			o, err := relayOptions(&c, log)
			switch {
			case tc.err == "" && (err != nil || string(o.CardKey) != testCardKey):
				t.Fatalf("relayOptions: %v, key %d bytes", err, len(o.CardKey))
			case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err) || strings.Contains(err.Error(), "s3cr3t")):
				t.Fatalf("relayOptions error %v, want %q without the key", err, tc.err)
			}
		})
	}
}
