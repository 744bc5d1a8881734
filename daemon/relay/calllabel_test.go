package relay

import (
	"testing"

	"github.com/sitelink/sitelink/daemon/nayax"
)

// A result's call can be what a site wrote (a refused request keeps it):
// the metric label takes only the calls the relay makes.
func TestCallLabel(t *testing.T) {
	for _, tc := range []struct{ call, want string }{
		{nayax.CallSettlement, nayax.CallSettlement},
		{nayax.CallExternalCancel, nayax.CallExternalCancel},
		{nayax.CallTriggerTransaction, nayax.CallTriggerTransaction},
		{"", "other"},
		{"Settlement2", "other"},
		{"a-random-string-from-a-stolen-node", "other"},
	} {
		if got := callLabel(tc.call); got != tc.want {
			t.Errorf("callLabel(%q) = %q, want %q", tc.call, got, tc.want)
		}
	}
}
