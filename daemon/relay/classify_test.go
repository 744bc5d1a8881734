package relay

import (
	"testing"

	"github.com/sitelink/sitelink/daemon/nayax"
	"github.com/sitelink/sitelink/daemon/wire"
)

func TestClassify(t *testing.T) {
	cases := []struct {
		call string
		st   nayax.Status
		want wire.Outcome
	}{
		{nayax.CallExternalCancel, nayax.Approved("No Errors"), wire.OutcomeApproved},
		{nayax.CallExternalCancel, nayax.Declined(28, "Already Cancelled"), wire.OutcomeAlreadyDone},
		{nayax.CallCancelTransaction, nayax.Declined(28, "Already Cancelled"), wire.OutcomeAlreadyDone},
		// To a settlement, "already cancelled" means the money is gone.
		{nayax.CallExternalSettlement, nayax.Declined(28, "Already Cancelled"), wire.OutcomeDeclined},
		{nayax.CallSettlement, nayax.Declined(28, "Already Cancelled"), wire.OutcomeDeclined},
		{nayax.CallExternalSettlement, nayax.Declined(50, "Transaction already settled"), wire.OutcomeAlreadyDone},
		{nayax.CallExternalSettlement, nayax.Declined(50, "External Settlement Failed"), wire.OutcomeDeclined},
		{nayax.CallExternalCancel, nayax.Declined(51, "already cancelled by AutoCancel"), wire.OutcomeAlreadyDone},
		{nayax.CallExternalCancel, nayax.Declined(51, "External Cancel Failed"), wire.OutcomeDeclined},
		{nayax.CallExternalCancel, nayax.Declined(32, "not found"), wire.OutcomeDeclined},
	}
	for _, c := range cases {
		if got := classify(c.call, c.st); got != c.want {
			t.Errorf("classify(%s, %d %q) = %s, want %s", c.call, c.st.Code(), c.st.ErrorDescription, got, c.want)
		}
	}
}
