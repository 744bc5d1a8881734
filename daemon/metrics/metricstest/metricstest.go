// Package metricstest checks a /metrics exposition with Prometheus' own
// linter, `promtool check metrics` (Debian's prometheus package), so
// that what the edge and the relay serve is what Prometheus reads
// without complaint: names, base units, _total on counters, help text,
// histograms.
package metricstest

import (
	"bytes"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// Promtool pipes text to `promtool check metrics` and fails t on any
// problem it reports. Without promtool on PATH it logs and returns (the
// rest of the caller's test still runs), unless SITELINK_REQUIRE_PROMTOOL=1,
// as .ci/test sets, where a missing promtool fails the test.
func Promtool(t testing.TB, text string) {
	t.Helper()
	path, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("SITELINK_REQUIRE_PROMTOOL") == "1" {
			t.Fatal("promtool not found and SITELINK_REQUIRE_PROMTOOL=1 (apt-get install prometheus)")
		}
		t.Log("promtool not found: exposition not linted (SITELINK_REQUIRE_PROMTOOL=1 makes this an error)")
		return
	}
	cmd := exec.Command(path, "check", "metrics")
	cmd.Stdin = strings.NewReader(text)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Errorf("promtool check metrics: %v\n%s", err, out.Bytes())
	}
}
