package relay_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/sitelink/sitelink/daemon/config"
)

// Cortina Cancel/Void name the transaction the ways Nayax's spec allows:
// our SparkTransactionId as BasicInfo.TransactionId with
// NayaxTransactionId 0 (Nayax's own example), or PaymentInfo.SrvTranId.
// Each cancels its session through the real relay and broker; unknown ids
// are Declined 2; a cancel of a session already settled is answered
// Approved and flagged.
//
// Never by a guessable id alone (issue 13): a forged cancel with the
// right id but the wrong machine, another site's machine, the wrong
// SiteId or the wrong amount is Declined 2 like an unknown id, the
// session keeps charging, and the genuine cancel then still works.
func TestCortinaCancelMatching(t *testing.T) {
	const otherMachine, otherSerial = 71230001, "0999000000001" // a terminal of another site
	for _, tc := range []struct {
		name           string
		basic, payment func(spark string) string
		settleFirst    bool
		// The forged parts: the cancel's MachineInfo.Id and HwSerial
		// (0 / "" keep the terminal's), SiteId (-1: the session's),
		// Amount (0: the session's 20).
		machineID int64
		hwSerial  string
		siteID    int
		amount    float64
		otherSite bool // another site controller owns otherMachine
		verdict   string
		code      float64
		state     string
	}{
		{name: "by TransactionId", basic: func(s string) string { return fmt.Sprintf(`"TransactionId":%q`, s) },
			siteID: -1, verdict: "Approved", state: "cancelled"},
		{name: "by SrvTranId", basic: func(string) string { return `"TransactionId":"Z9Y8X7"` }, payment: func(s string) string { return fmt.Sprintf(`"SrvTranId":%q`, s) },
			siteID: -1, verdict: "Approved", state: "cancelled"},
		{name: "unknown ids", basic: func(string) string { return `"TransactionId":"A1B2C3"` }, payment: func(string) string { return `"SrvTranId":"424242"` },
			siteID: -1, verdict: "Declined", code: 2, state: "charging"},
		{name: "after the settlement: flagged", basic: func(s string) string { return fmt.Sprintf(`"TransactionId":%q`, s) }, settleFirst: true,
			siteID: -1, verdict: "Approved", state: "needs-reconciliation"},
		{name: "forged: right id, wrong machine", basic: func(s string) string { return fmt.Sprintf(`"TransactionId":%q`, s) },
			hwSerial: otherSerial, siteID: -1, verdict: "Declined", code: 2, state: "charging"},
		{name: "forged: right id, another site's machine", basic: func(s string) string { return fmt.Sprintf(`"TransactionId":%q`, s) },
			machineID: otherMachine, hwSerial: otherSerial, otherSite: true, siteID: -1, verdict: "Declined", code: 2, state: "charging"},
		{name: "forged: right id, wrong site", basic: func(s string) string { return fmt.Sprintf(`"TransactionId":%q`, s) },
			siteID: 99, verdict: "Declined", code: 2, state: "charging"},
		{name: "forged: right id, wrong amount", basic: func(s string) string { return fmt.Sprintf(`"TransactionId":%q`, s) },
			siteID: -1, amount: 19.99, verdict: "Declined", code: 2, state: "charging"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			site := e.startEdge("site-cortina-ids", t.TempDir())
			if tc.otherSite {
				e.startEdgeWith("site-other", t.TempDir(), func(c *config.Edge) {
					c.Terminals = []config.Terminal{{MachineID: otherMachine, HwSerial: otherSerial, Flow: "pre-authorization", Stations: []string{"5", "6"}}}
				})
			}
			r := e.startRelay("relay-1", 4*time.Second)
			waitRoute(t, r.url)
			if tc.otherSite {
				waitFor(t, 10*time.Second, "both sites routed", func() bool {
					code, answer := post(t, r.url, "/Cortina/PrePaid/Cancel", "application/json",
						[]byte(fmt.Sprintf(`{"BasicInfo":{"TransactionId":"A1"},"MachineInfo":{"Id":%d}}`, otherMachine)))
					_, _, desc := status(t, answer)
					return code == 200 && desc == "unknown transaction" // the other site answered, not the relay
				})
			}
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
			cancel := func(machineID int64, hwSerial string, siteID int, amount float64) (int, []byte) {
				payment := ""
				if tc.payment != nil {
					payment = tc.payment(spark)
				}
				body := fmt.Sprintf(`{"BasicInfo":{%s,"NayaxTransactionId":0,"SiteId":%d,"Amount":%v,"CurrencyCode":"EUR"},"MachineInfo":{"Id":%d},"DeviceInfo":{"HwSerial":%q},"ReasonCode":1,"ReasonText":"vend failure","PaymentInfo":{%s}}`,
					tc.basic(spark), siteID, amount, machineID, hwSerial, payment)
				return post(t, r.url, "/Cortina/PrePaid/Cancel", "application/json", []byte(body))
			}
			genuine := func() (int, []byte) { return cancel(machine, serial, tap.Txn.SiteID, 20) }
			machineID, hwSerial, siteID, amount := int64(machine), serial, tc.siteID, tc.amount
			if tc.machineID != 0 {
				machineID = tc.machineID
			}
			if tc.hwSerial != "" {
				hwSerial = tc.hwSerial
			}
			if siteID < 0 {
				siteID = tap.Txn.SiteID
			}
			if amount == 0 {
				amount = 20
			}
			code, answer := cancel(machineID, hwSerial, siteID, amount)
			if v, c, _ := status(t, answer); code != 200 || v != tc.verdict || c != tc.code {
				t.Fatalf("HTTP %d %s; want %s %v", code, answer, tc.verdict, tc.code)
			}
			s := sessionOf(t, site.api, spark, tc.state)
			if tc.state == "cancelled" && contactor(t, site.api, "5") {
				t.Fatal("contactor closed after the cancel")
			}
			if tc.state == "charging" && !contactor(t, site.api, "5") {
				t.Fatal("contactor opened by a refused cancel")
			}
			if tc.settleFirst && (s.Payment == nil || s.Payment.Verdict != "Approved") {
				t.Fatalf("the settlement's payment record is gone: %+v", s.Payment)
			}
			if tc.code == 2 && tc.payment == nil {
				// A forgery changed nothing: Nayax's own cancel still works.
				time.Sleep(200 * time.Millisecond)
				if s := sessionOf(t, site.api, spark, "charging"); s.State != "charging" {
					t.Fatalf("after the forged cancel: %s", s.State)
				}
				code, answer := genuine()
				if v, _, _ := status(t, answer); code != 200 || v != "Approved" {
					t.Fatalf("the genuine cancel after a forged one: HTTP %d %s", code, answer)
				}
				sessionOf(t, site.api, spark, "cancelled")
				if contactor(t, site.api, "5") {
					t.Fatal("contactor closed after the genuine cancel")
				}
			}
		})
	}
}
