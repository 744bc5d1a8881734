package nayaxsim

import (
	"bytes"
	"crypto/aes"
	"encoding/base64"
	"encoding/json"
	"testing"
	"time"
)

// FuzzDeviceAnswers feeds arbitrary relay answers to the checks the
// simulator makes as Nayax (StartSession, InfoQuery/AvailabilityCheck,
// TransactionNotify, StopNotify). They must never panic, and must let
// through only what Nayax would go on with.
func FuzzDeviceAnswers(f *testing.F) {
	const (
		random = "123456789qwertyui"
		id     = "12c7cec2-c690-4425-9a1f-db0db60e2d8c"
	)
	at := time.Date(2026, 2, 4, 10, 44, 30, 0, time.UTC)
	key := []byte(DefaultTokenSecret)
	s, err := newSim(Options{Now: func() time.Time { return at }})
	if err != nil {
		f.Fatal(err)
	}
	cipher := seedCipher(f, key, id+"="+random+at.Format(cipherTimeLayout))
	tx := Txn{NayaxTransactionID: 2004545072, SparkTransactionID: id}

	seed := func(which uint8, v any) {
		b, err := json.Marshal(v)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(which, b)
	}
	approved := map[string]any{"Verdict": "Approved"}
	seed(0, map[string]any{"SparkTransactionId": id, "Cipher": cipher, "Status": approved})
	seed(0, map[string]any{"SparkTransactionId": id, "Cipher": cipher[:20], "Status": approved})
	seed(0, map[string]any{"SparkTransactionId": id, "Cipher": cipher, "Status": map[string]any{"Verdict": "Declined", "ErrorCode": 28}})
	seed(1, map[string]any{"SparkTransactionId": id, "ServiceStationAvailability": 1, "PosDisplay": ";Charging Station:5;Price:0.39 EUR/kWh;",
		"Amount": 30, "SiteId": 2, "Status": approved})
	seed(1, map[string]any{"ServiceStationAvailability": 2, "Status": map[string]any{"Verdict": "Declined"}})
	seed(1, map[string]any{"ServiceStationAvailability": "1", "Amount": 12.345, "Status": approved})
	seed(2, map[string]any{"NayaxTransactionId": 2004545072, "SparkTransactionId": id, "SiteId": 2, "Status": approved})
	seed(2, map[string]any{"NayaxTransactionId": 1.5, "Status": approved})
	seed(3, map[string]any{"SparkTransactionId": id, "NayaxTransactionId": 2004545072, "SiteId": 2, "StopSiteId": 2,
		"MachineId": 71234996, "HwSerial": "0434334921100366", "MachineAuTime": "20240205194122328", "Status": approved})
	seed(3, map[string]any{"Status": map[string]any{"Verdict": "Declined", "ErrorCode": 32}})
	for i := range uint8(4) {
		for _, b := range []string{``, `null`, `[]`, `{}`, `{"Status":null}`, `{"Status":{"Verdict":7}}`, `{"Status":{"Verdict":"approved "}}`,
			"\xef\xbb\xbf{}", `{"a":1} {}`, `{"Status":{"Verdict":"Approved","ErrorDescription":"` + string(bytes.Repeat([]byte("é"), 200)) + `"}}`} {
			f.Add(i, []byte(b))
		}
	}

	f.Fuzz(func(t *testing.T, which uint8, body []byte) {
		switch which % 4 {
		case 0:
			got, reason := s.checkStartSession(200, body, random)
			if reason == "" && len(got) != 36 {
				t.Fatalf("StartSession accepted with id %q", got)
			}
			if reason != "" && got != "" {
				t.Fatalf("StartSession refused (%s) but returned an id", reason)
			}
		case 1:
			info, reason := checkInfo(CallInfoQuery, 200, body, id)
			if reason == "" && (info.availability != 1 || info.amount < 0) {
				t.Fatalf("InfoQuery accepted: %+v", info)
			}
		case 2:
			ok, reason := checkNotify(200, body, tx)
			if !ok && reason == "" {
				t.Fatalf("TransactionNotify not approved without a reason")
			}
		case 3:
			a := checkStopNotify(200, body)
			if a.approved && a.reason == "" && (a.sparkID == "" || a.nayaxID < 1) {
				t.Fatalf("StopNotify approved without ids: %+v", a)
			}
		}
	})
}

// seedCipher is Base64(AES-256-ECB(PKCS#7(plain))), for a seed.
func seedCipher(tb testing.TB, key []byte, plain string) string {
	block, err := aes.NewCipher(key)
	if err != nil {
		tb.Fatal(err)
	}
	n := aes.BlockSize - len(plain)%aes.BlockSize
	buf := append([]byte(plain), bytes.Repeat([]byte{byte(n)}, n)...)
	for i := 0; i < len(buf); i += aes.BlockSize {
		block.Encrypt(buf[i:i+aes.BlockSize], buf[i:i+aes.BlockSize])
	}
	return base64.StdEncoding.EncodeToString(buf)
}
