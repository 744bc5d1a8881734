package relay

import (
	"encoding/json"
	"strings"
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
		// To a settlement, 28 is already-done too: the site reads its
		// text (billing.AlreadyDone) and flags "already cancelled".
		{nayax.CallExternalSettlement, nayax.Declined(28, "Already Cancelled"), wire.OutcomeAlreadyDone},
		{nayax.CallSettlement, nayax.Declined(28, "transaction already completed (settled)"), wire.OutcomeAlreadyDone},
		// A start is never "already done".
		{nayax.CallTriggerTransaction, nayax.Declined(28, "Invalid Token"), wire.OutcomeDeclined},
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

// TestRecordOf: the receipt fields of Nayax's answer, as Nayax wrote
// them, and nothing else of it.
func TestRecordOf(t *testing.T) {
	long := `"` + strings.Repeat("9", maxRecordField+1) + `"`
	cases := []struct {
		name, body string
		want       *wire.PaymentRecord
	}{
		{"settlement answer", `{"Status":{"Verdict":"Approved"},"AuthCode":"033333","NayaxRRN":123456789012,"FiscalRrn":"F-1","Amount":1.5,"SeTime":"20251212110500","MachineAuTime":"20251212110000500","CardBrand":"VISA","CardLast4Digits":"4242"}`,
			&wire.PaymentRecord{AuthCode: "033333", NayaxRRN: "123456789012", FiscalRrn: "F-1", Amount: "1.5", SeTime: "20251212110500", MachineAuTime: "20251212110000500"}},
		{"amount kept as written", `{"Amount":0.10}`, &wire.PaymentRecord{Amount: "0.10"}},
		{"nothing of the money", `{"Status":{"Verdict":"Approved"},"CardBrand":"VISA"}`, nil},
		{"odd types and oversized values are left out", `{"AuthCode":{"x":1},"NayaxRRN":[1],"FiscalRrn":true,"SeTime":` + long + `,"Amount":null}`, nil},
		{"not an object", `[1,2]`, nil},
		{"not JSON", `{"AuthCode":`, nil},
	}
	for _, tc := range cases {
		got := recordOf(json.RawMessage(tc.body))
		if (got == nil) != (tc.want == nil) || (got != nil && *got != *tc.want) {
			t.Errorf("%s: recordOf = %+v, want %+v", tc.name, got, tc.want)
		}
	}
}
