package nayaxsim_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/sitelink/sitelink/daemon/nayaxsim"
)

var fuzzCalls = []string{
	"StartAuthentication", "TriggerTransaction", "Settlement",
	"CancelTransaction", "ExternalSettlement", "ExternalCancel",
}

// FuzzSparkRequest feeds arbitrary bodies to every Spark call. The
// simulator must never panic, and must always answer like Spark: HTTP
// 200 (415 for a wrong content type, never here) with a JSON Status whose
// verdict is Approved, or Declined with a code. Requests are signed for
// whatever SparkTransactionId the body holds, so fuzzing reaches past the
// header checks into the schema and the transaction logic.
func FuzzSparkRequest(f *testing.F) {
	s := startSim(f, nil)
	r := startRelay(f)
	s.SetRelay(r.srv.URL)
	ext := tap(f, s, "5", "alice", 20).Txn
	authenticate(f, s, ext.SparkTransactionID)
	remoteID := "12c7cec2-c690-4425-9a1f-db0db60e2d8c"
	authenticate(f, s, remoteID)
	remote := ext
	remote.SparkTransactionID = remoteID

	seed := func(call string, body any) {
		b, err := json.Marshal(body)
		if err != nil {
			f.Fatal(err)
		}
		for i, c := range fuzzCalls {
			if c == call {
				f.Add(uint8(i), b)
			}
		}
	}
	seed("StartAuthentication", authBody(f, vectorID))
	seed("StartAuthentication", with(authBody(f, vectorID), "SparkTransactionId", nil))
	seed("TriggerTransaction", map[string]any{"SparkTransactionId": remoteID, "TerminalId": serial, "TerminalIdType": 1, "Amount": 15, "PosDisplay": "x", "TransactionTimeout": 60})
	seed("Settlement", settleBody(remote, 12.25))
	seed("CancelTransaction", with(cancelBody(remote), "ReasonCode", 75))
	seed("ExternalSettlement", with(settleBody(ext, 10), "ProductInfo", []any{map[string]any{"Value": 10, "Code": 1, "Quantity": 1}}))
	seed("ExternalCancel", cancelBody(ext))
	for i := range fuzzCalls {
		for _, b := range []string{``, `null`, `[]`, `{}`, `{"SparkTransactionId":null}`, `{"NayaxTransactionId":1e400}`,
			`{"SparkTransactionId":"x","NayaxTransactionId":"9223372036854775808","TerminalIdType":"1"}`, "\xef\xbb\xbf{}", `{"a":1} {}`} {
			f.Add(uint8(i), []byte(b))
		}
	}

	f.Fuzz(func(t *testing.T, which uint8, body []byte) {
		c := fuzzCalls[int(which)%len(fuzzCalls)]
		req := httptest.NewRequest(http.MethodPost, "/api/"+c, strings.NewReader(string(body)))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("IntegratorId", integrator)
		var peek map[string]json.RawMessage
		if json.Unmarshal(body, &peek) == nil {
			for k, v := range peek {
				var id string
				if strings.EqualFold(k, "SparkTransactionId") && json.Unmarshal(v, &id) == nil {
					req.Header.Set("TransactionSignature", sig(id))
				}
			}
		}
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			t.Fatalf("HTTP %d for %s", rec.Code, c)
		}
		var ans struct {
			Status *struct {
				Verdict   string
				ErrorCode *int
			}
		}
		if err := json.Unmarshal(rec.Body.Bytes(), &ans); err != nil || ans.Status == nil {
			t.Fatalf("answer is not a Spark answer: %q", rec.Body.Bytes())
		}
		switch ans.Status.Verdict {
		case "Approved":
		case "Declined":
			if ans.Status.ErrorCode == nil || *ans.Status.ErrorCode == 0 {
				t.Fatalf("Declined without a code: %q", rec.Body.Bytes())
			}
		default:
			t.Fatalf("verdict %q", ans.Status.Verdict)
		}
	})
}

// Example shows a test's setup: a simulator whose callbacks go to the
// relay under test, a card tapped on station 5, and the Spark requests
// the relay made in response.
func Example() {
	sim, err := nayaxsim.Start(nayaxsim.Options{RelayURL: "http://127.0.0.1:8080"})
	if err != nil {
		panic(err)
	}
	defer sim.Close()
	// Point the relay's nayax.base_url at sim.URL() with the credentials
	// of sim.Options(), then:
	//
	//	res, err := sim.Tap(ctx, nayaxsim.Terminal{MachineID: 71234996, HwSerial: "0434334921100366"}, "5", "alice", 20)
	//	... the vehicle charges, the session ends ...
	//	tx, _ := sim.Txn(res.Txn.NayaxTransactionID) // tx.State == "settled", tx.Settles == 1
	//	reqs := sim.Requests("ExternalSettlement")
}
