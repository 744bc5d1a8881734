//go:build ignore

// gen_fixture writes ledger-v1.db, a small ledger as sitelink wrote it
// before amounts became integer minor units (schema 1: float amounts and
// tariff). It was run once, with the store package of that release:
//
//	go run ./store/testdata/gen_fixture.go store/testdata/ledger-v1.db
//
// and the file committed; the migration test (store/migrate_test.go)
// opens copies of it. Do not run it again with a newer store: it would
// write the new schema, and the test would no longer test a migration.
package main

import (
	"fmt"
	"log"
	"os"
	"time"

	"github.com/sitelink/sitelink/store"
)

func main() {
	if len(os.Args) != 2 {
		log.Fatal("usage: go run gen_fixture.go OUT.db")
	}
	out := os.Args[1]
	tmp := out + ".tmp"
	_ = os.Remove(tmp)
	// A long InboxTTL: the fixed dates below must not be pruned as old.
	st, err := store.Open(tmp, store.Options{InboxTTL: 100 * 365 * 24 * time.Hour})
	if err != nil {
		log.Fatal(err)
	}
	t0 := time.Date(2025, 12, 12, 11, 0, 0, 0, time.UTC)
	eur := &store.Tariff{Currency: "EUR", DecimalPlace: 2, PricePerKWh: 0.39, SessionFee: 0}
	sessions := []store.Session{
		{ // settled for 0.59 EUR, with its payment record
			SparkTransactionID: "s1-settled", NayaxTransactionID: 1001, Station: "5", State: store.Settled,
			Origin: "remote", MachineID: 71234996, HwSerial: "0434334921100366", SiteID: "2",
			MachineAuTime: "20251212110000500", CardDigest: "d1", AuthorizedAmount: 15, Amount: 0.59,
			MeterStartWh: 1000, EnergyWh: 1500, StopReason: "card tapped",
			LastAnswer: &store.Answer{Call: "Settlement", Outcome: "approved", At: t0.Add(20 * time.Minute)},
			Payment: &store.PaymentRecord{Call: "Settlement", Verdict: "Approved", AuthCode: "033333",
				NayaxRRN: "123456789012", Amount: "0.59", SeTime: "20251212112000", At: t0.Add(20 * time.Minute)},
			History: []store.Transition{{State: store.Authorized, At: t0}, {State: store.Settled, At: t0.Add(20 * time.Minute)}},
			Tariff:  eur,
		},
		{ // authorized 1.00 EUR, no vehicle yet
			SparkTransactionID: "s2-authorized", NayaxTransactionID: 1002, Station: "6", State: store.Authorized,
			Origin: "external", MachineID: 71234996, SiteID: `"0002"`, MachineAuTime: "20251212110500000",
			AuthorizedAmount: 1.00, Tariff: eur,
		},
		{ // cancelled by Nayax (Cortina Cancel)
			SparkTransactionID: "s3-cancelled", NayaxTransactionID: 1003, Station: "5", State: store.Cancelled,
			Origin: "external", SiteID: "2", AuthorizedAmount: 20, StopReason: "cancelled by Nayax",
			Tariff: eur,
		},
		{ // charging
			SparkTransactionID: "s4-charging", NayaxTransactionID: 1004, Station: "7", State: store.Charging,
			Origin: "remote", MachineID: 71234996, AuthorizedAmount: 12.5, MeterStartWh: 200, EnergyWh: 3210.5,
			Tariff: eur,
		},
		{ // Kuwaiti dinar: three decimals and a session fee; settlement pending
			SparkTransactionID: "s5-kwd", NayaxTransactionID: 1005, Station: "8", State: store.Settling,
			Origin: "external", SiteID: "3", MachineAuTime: "20251212110400000", AuthorizedAmount: 5.125,
			Amount: 1.338, EnergyWh: 1234,
			Request: &store.Request{Kind: "settlement", Call: "ExternalSettlement",
				Body:     []byte(`{"call":"ExternalSettlement","NayaxTransactionId":1005,"SiteId":3,"Amount":1.338}`),
				EventIDs: []string{"site-0042-2"}, Attempts: 1, FirstAt: t0, NextAt: t0.Add(90 * time.Second)},
			Tariff: &store.Tariff{Currency: "KWD", DecimalPlace: 3, PricePerKWh: 0.337, SessionFee: 0.922},
		},
		{ // yen: no decimals, a session fee
			SparkTransactionID: "s6-jpy", NayaxTransactionID: 1006, Station: "9", State: store.Cancelling,
			Origin: "remote", AuthorizedAmount: 3000, Amount: 0, EnergyWh: 2,
			Tariff: &store.Tariff{Currency: "JPY", DecimalPlace: 0, PricePerKWh: 45, SessionFee: 100},
		},
		{ // requested (Remote Start): its trigger is the pending request; no tariff recorded
			SparkTransactionID: "s7-requested", Station: "10", State: store.Requested, Origin: "remote",
			MachineID: 71234996, AuthorizedAmount: 20,
			Request: &store.Request{Kind: "start", Call: "TriggerTransaction",
				Body:     []byte(`{"call":"TriggerTransaction","TerminalId":"71234996","TerminalIdType":2,"Amount":20,"TransactionTimeout":60}`),
				EventIDs: []string{"site-0042-3"}, Attempts: 1, FirstAt: t0, NextAt: t0.Add(150 * time.Second)},
		},
	}
	err = st.Update(func(tx *store.Tx) error {
		for i := range sessions {
			s := &sessions[i]
			s.CreatedAt = t0.Add(time.Duration(i) * time.Minute)
			s.UpdatedAt = s.CreatedAt.Add(time.Minute)
			if err := tx.PutSession(s); err != nil {
				return err
			}
		}
		for i := 1; i <= 3; i++ {
			at := t0.Add(time.Duration(i) * time.Second)
			if _, err := tx.Enqueue("site-0042", "session", at, func(seq uint64, id string) ([]byte, error) {
				return []byte(fmt.Sprintf(`{"id":%q,"seq":%d,"type":"session","body":{}}`, id, seq)), nil
			}); err != nil {
				return err
			}
		}
		for i, typ := range []string{"authorize", "stop"} {
			e := store.InboxEntry{ID: fmt.Sprintf("cmd-%d", i+1), Type: typ, At: t0.Add(time.Duration(i) * time.Second),
				Reply: []byte(`{"id":"cmd","type":"` + typ + `","body":{"Status":{"Verdict":"Approved"}}}`)}
			if err := tx.PutInbox(e); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		log.Fatal(err)
	}
	if _, err := st.NextEpoch(); err != nil {
		log.Fatal(err)
	}
	if err := st.Close(); err != nil {
		log.Fatal(err)
	}
	if err := os.Rename(tmp, out); err != nil {
		log.Fatal(err)
	}
}
