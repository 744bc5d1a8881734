package main

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"
)

// TestResolveArgs: resolve needs exactly one transaction id and a note;
// flags may follow the id; a missing socket is named.
func TestResolveArgs(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "api.sock")
	for _, tc := range []struct {
		name string
		args []string
		code exitCode // 0: not a usage error
		want string
	}{
		{"no note", []string{"T1"}, 2, "usage: sitelink resolve"},
		{"blank note", []string{"-note", "  ", "T1"}, 2, "usage: sitelink resolve"},
		{"no id", []string{"-note", "refunded"}, 2, "usage: sitelink resolve"},
		{"two ids", []string{"-note", "refunded", "T1", "T2"}, 2, "usage: sitelink resolve"},
		{"flags after the id", []string{"T1", "-note", "refunded", "-socket", missing}, 0, missing},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			err := run(append([]string{"resolve"}, tc.args...), &out, &errb)
			if err == nil {
				t.Fatal("resolve succeeded without a daemon")
			}
			ec, isCode := err.(exitCode)
			if tc.code != 0 && (!isCode || ec != tc.code) {
				t.Fatalf("err %v, want exit %d", err, tc.code)
			}
			if tc.code == 0 && isCode {
				t.Fatalf("usage error %v for valid arguments; stderr %s", err, errb.String())
			}
			if msg := errb.String() + err.Error(); !strings.Contains(msg, tc.want) {
				t.Fatalf("said %q, want %q", msg, tc.want)
			}
		})
	}
}
