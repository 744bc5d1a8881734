package relay

import (
	"testing"

	"github.com/sitelink/sitelink/daemon/nayax"
)

func TestClassify(t *testing.T) {
	cases := []struct {
		call string
		st   nayax.Status
		want string
	}{
		{nayax.CallExternalCancel, nayax.Approved("No Errors"), OutcomeApproved},
		{nayax.CallExternalCancel, nayax.Declined(28, "Already Cancelled"), OutcomeAlreadyDone},
		{nayax.CallCancelTransaction, nayax.Declined(28, "Already Cancelled"), OutcomeAlreadyDone},
		// To a settlement, "already cancelled" means the money is gone.
		{nayax.CallExternalSettlement, nayax.Declined(28, "Already Cancelled"), OutcomeDeclined},
		{nayax.CallSettlement, nayax.Declined(28, "Already Cancelled"), OutcomeDeclined},
		{nayax.CallExternalSettlement, nayax.Declined(50, "Transaction already settled"), OutcomeAlreadyDone},
		{nayax.CallExternalSettlement, nayax.Declined(50, "External Settlement Failed"), OutcomeDeclined},
		{nayax.CallExternalCancel, nayax.Declined(51, "already cancelled by AutoCancel"), OutcomeAlreadyDone},
		{nayax.CallExternalCancel, nayax.Declined(51, "External Cancel Failed"), OutcomeDeclined},
		{nayax.CallExternalCancel, nayax.Declined(32, "not found"), OutcomeDeclined},
	}
	for _, c := range cases {
		if got := classify(c.call, c.st); got != c.want {
			t.Errorf("classify(%s, %d %q) = %s, want %s", c.call, c.st.Code(), c.st.ErrorDescription, got, c.want)
		}
	}
}
