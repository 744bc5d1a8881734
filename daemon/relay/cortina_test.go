package relay_test

import (
	"fmt"
	"testing"
	"time"
)

// Cortina Cancel/Void name the transaction the ways Nayax's spec allows:
// our SparkTransactionId as BasicInfo.TransactionId with
// NayaxTransactionId 0 (Nayax's own example), or PaymentInfo.SrvTranId.
// Each cancels its session through the real relay and broker; unknown ids
// are Declined 2; a cancel of a session already settled is answered
// Approved and flagged.
func TestCortinaCancelMatching(t *testing.T) {
	for _, tc := range []struct {
		name           string
		basic, payment func(spark string) string
		settleFirst    bool
		verdict        string
		code           float64
		state          string
	}{
		{name: "by TransactionId", basic: func(s string) string { return fmt.Sprintf(`"TransactionId":%q`, s) },
			verdict: "Approved", state: "cancelled"},
		{name: "by SrvTranId", basic: func(string) string { return `"TransactionId":"Z9Y8X7"` }, payment: func(s string) string { return fmt.Sprintf(`"SrvTranId":%q`, s) },
			verdict: "Approved", state: "cancelled"},
		{name: "unknown ids", basic: func(string) string { return `"TransactionId":"A1B2C3"` }, payment: func(string) string { return `"SrvTranId":"424242"` },
			verdict: "Declined", code: 2, state: "charging"},
		{name: "after the settlement: flagged", basic: func(s string) string { return fmt.Sprintf(`"TransactionId":%q`, s) }, settleFirst: true,
			verdict: "Approved", state: "needs-reconciliation"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			site := e.startEdge("site-cortina-ids", t.TempDir())
			r := e.startRelay("relay-1", 4*time.Second)
			waitRoute(t, r.url)
			e.sim.SetRelay(r.url)
			tap := e.tap("5", "nora", 20)
			spark := tap.Txn.SparkTransactionID
			sessionOf(t, site.api, spark, "charging")
			if tc.settleFirst {
				waitFor(t, 10*time.Second, "energy above the minimum", func() bool {
					return sessionOf(t, site.api, spark, "charging").EnergyWh >= 20
				})
				if stop := e.tap("5", "nora", 0); stop.Kind != "stop" {
					t.Fatalf("second tap: %+v", stop)
				}
				sessionOf(t, site.api, spark, "settled")
			}
			payment := ""
			if tc.payment != nil {
				payment = tc.payment(spark)
			}
			body := fmt.Sprintf(`{"BasicInfo":{%s,"NayaxTransactionId":0,"Amount":20,"CurrencyCode":"EUR"},"MachineInfo":{"Id":%d},"DeviceInfo":{"HwSerial":%q},"ReasonCode":1,"ReasonText":"vend failure","PaymentInfo":{%s}}`,
				tc.basic(spark), machine, serial, payment)
			code, answer := post(t, r.url, "/Cortina/PrePaid/Cancel", "application/json", []byte(body))
			if v, c, _ := status(t, answer); code != 200 || v != tc.verdict || c != tc.code {
				t.Fatalf("HTTP %d %s; want %s %v", code, answer, tc.verdict, tc.code)
			}
			s := sessionOf(t, site.api, spark, tc.state)
			if tc.state == "cancelled" && contactor(t, site.api, "5") {
				t.Fatal("contactor closed after the cancel")
			}
			if tc.settleFirst && (s.Payment == nil || s.Payment.Verdict != "Approved") {
				t.Fatalf("the settlement's payment record is gone: %+v", s.Payment)
			}
		})
	}
}
