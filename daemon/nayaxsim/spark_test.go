package nayaxsim_test

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sitelink/sitelink/daemon/nayaxsim"
)

func TestSignatureAndHeaders(t *testing.T) {
	s := startSim(t, nil)
	body := authBody(t, vectorID)
	tests := []struct {
		name string
		hdr  map[string]string
		code int
	}{
		{"design test vector", map[string]string{"TransactionSignature": vectorSig}, 0},
		{"upper-case hex", map[string]string{"TransactionSignature": strings.ToUpper(vectorSig)}, 0},
		{"signed with another key", map[string]string{"TransactionSignature": hexSHA(vectorID + ";other")}, 33},
		{"signed for another id", map[string]string{"TransactionSignature": sig("another-id")}, 33},
		{"no signature", map[string]string{"TransactionSignature": ""}, 33},
		{"no IntegratorId", map[string]string{"IntegratorId": ""}, 33},
		{"wrong IntegratorId", map[string]string{"IntegratorId": "INT-1"}, 33},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want(t, call(t, s, "StartAuthentication", body, vectorID, tt.hdr), tt.code)
		})
	}

	// The same checks hold on every call, not only StartAuthentication.
	t.Run("checked on later calls", func(t *testing.T) {
		trig := map[string]any{"SparkTransactionId": vectorID, "TerminalId": serial, "TerminalIdType": 1, "Amount": 10}
		want(t, call(t, s, "TriggerTransaction", trig, vectorID, map[string]string{"TransactionSignature": sig("x")}), 33)
		want(t, call(t, s, "TriggerTransaction", trig, vectorID, map[string]string{"IntegratorId": "nope"}), 33)
		want(t, call(t, s, "TriggerTransaction", trig, vectorID, map[string]string{"TransactionSignature": vectorSig}), 0)
	})
}

func hexSHA(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

func TestStartAuthentication(t *testing.T) {
	s := startSim(t, nil)
	id := "12c7cec2-c690-4425-9a1f-db0db60e2d8c"
	good := authBody(t, id)
	otherKey := []byte("0123456789abcdef0123456789abcdef")
	tests := []struct {
		name string
		body map[string]any
		code int
	}{
		{"valid", good, 0},
		{"no SparkTransactionId in body: taken from the cipher", with(good, "SparkTransactionId", nil), 0},
		{"cipher 5 minutes old", with(good, "Cipher", cipherFor(t, id, random17, now.Add(-5*time.Minute))), 0},
		{"cipher minute 5 minutes ahead", with(good, "Cipher", cipherFor(t, id, random17, now.Add(5*time.Minute))), 0},
		{"cipher 6 minutes old", with(good, "Cipher", cipherFor(t, id, random17, now.Add(-6*time.Minute))), 31},
		{"cipher 6 minutes ahead", with(good, "Cipher", cipherFor(t, id, random17, now.Add(6*time.Minute))), 31},
		{"cipher in local time, not UTC", with(good, "Cipher", encrypt(t, secret, id+"="+random17+now.In(time.FixedZone("X", 3*3600)).Format("0601021504"))), 31},
		{"wrong token id", with(good, "TokenId", 1), 28},
		{"cipher under another key", with(good, "Cipher", encrypt(t, otherKey, id+"="+random17+now.Format("0601021504"))), 34},
		{"cipher not base64", with(good, "Cipher", "%%%not-base64%%%"), 34},
		{"cipher truncated", with(good, "Cipher", good["Cipher"].(string)[:20]), 34},
		{"no '=' separator", with(good, "Cipher", encrypt(t, secret, id+"-"+random17+now.Format("0601021504"))), 34},
		{"timestamp not digits", with(good, "Cipher", encrypt(t, secret, id+"="+random17+"26020410xx")), 34},
		{"Random differs from cipher", with(good, "Random", "ABCDEFGHIJKLMNOPQ"), 30},
		{"SparkTransactionId differs from cipher", with(good, "SparkTransactionId", "a1b2c3d4-e5f6-7890-1234-567890abcdef"), 30},
		{"Random too short", with(good, "Random", "123456"), 26},
		{"Random not alphanumeric", with(good, "Random", "12345678+qwertyui"), 26},
		{"TokenId as string", with(good, "TokenId", "116383"), 26},
		{"TerminalIdType 3", with(good, "TerminalIdType", 3), 26},
		{"missing Cipher", with(good, "Cipher", nil), 997},
		{"missing TokenId", with(good, "TokenId", nil), 997},
		{"missing TerminalId", with(good, "TerminalId", nil), 997},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sigID := id
			if v, ok := tt.body["SparkTransactionId"].(string); ok {
				sigID = v
			}
			a := call(t, s, "StartAuthentication", tt.body, sigID, nil)
			want(t, a, tt.code)
			if tt.code == 0 {
				if got := a.str("HashedSparkTransactionId"); got != hexSHA(id) {
					t.Errorf("HashedSparkTransactionId = %s, want SHA-256 of the id %s", got, hexSHA(id))
				}
			}
			if _, ok := a.Raw["SparkTransactionId"]; ok {
				t.Errorf("StartAuthentication answer has SparkTransactionId; the spec's has not")
			}
		})
	}
}

func TestUnknownTerminal(t *testing.T) {
	s := startSim(t, func(o *nayaxsim.Options) { o.Terminals = []nayaxsim.Terminal{{MachineID: 5, HwSerial: "0099"}} })
	want(t, call(t, s, "StartAuthentication", authBody(t, vectorID), vectorID, nil), 25)
	b := with(authBody(t, vectorID), "TerminalId", "99") // leading zeros lost still names the terminal
	want(t, call(t, s, "StartAuthentication", b, vectorID, nil), 0)
	trig := map[string]any{"SparkTransactionId": vectorID, "TerminalId": "6", "TerminalIdType": 2}
	want(t, call(t, s, "TriggerTransaction", trig, vectorID, nil), 25)
	want(t, call(t, s, "TriggerTransaction", with(trig, "TerminalId", "5"), vectorID, nil), 0)
}

// TestNotAuthenticated: every call but StartAuthentication needs an id
// that passed it.
func TestNotAuthenticated(t *testing.T) {
	s := startSim(t, nil)
	r := startRelay(t)
	s.SetRelay(r.srv.URL)
	tx := tap(t, s, "5", "alice", 20).Txn
	tests := []struct {
		call string
		body map[string]any
	}{
		{"TriggerTransaction", map[string]any{"SparkTransactionId": "b4f7a1e2-0000-4000-8000-000000000001", "TerminalId": serial, "TerminalIdType": 1}},
		{"ExternalSettlement", settleBody(tx, 10)},
		{"ExternalCancel", cancelBody(tx)},
		{"Settlement", settleBody(tx, 10)},
		{"CancelTransaction", cancelBody(tx)},
	}
	for _, tt := range tests {
		t.Run(tt.call, func(t *testing.T) {
			id := tt.body["SparkTransactionId"].(string)
			a := call(t, s, tt.call, tt.body, id, nil)
			want(t, a, 33)
			if a.str("SparkTransactionId") != id {
				t.Errorf("answer does not echo the SparkTransactionId: %s", a.Raw["SparkTransactionId"])
			}
		})
	}
	if got, _ := s.Txn(tx.NayaxTransactionID); got.State != nayaxsim.StateAuthorized || got.Cancels+got.Settles != 0 {
		t.Errorf("unauthenticated requests touched the transaction: %+v", got)
	}
}

// externalTxn authorizes a card on the terminal (no trigger) through a
// fake relay and authenticates its SparkTransactionId.
func externalTxn(t *testing.T, mod func(*nayaxsim.Options)) (*nayaxsim.Sim, nayaxsim.Txn) {
	t.Helper()
	s := startSim(t, mod)
	r := startRelay(t)
	s.SetRelay(r.srv.URL)
	tx := tap(t, s, "5", "alice", 20).Txn
	authenticate(t, s, tx.SparkTransactionID)
	return s, tx
}

func TestSchema(t *testing.T) {
	s, tx := externalTxn(t, nil)
	c := cancelBody(tx)
	st := settleBody(tx, 10)
	tests := []struct {
		name string
		call string
		body any
		code int
	}{
		{"malformed JSON", "ExternalCancel", `{"NayaxTransactionId":`, 26},
		{"array body", "ExternalCancel", `[1,2]`, 26},
		{"trailing garbage", "ExternalCancel", `{} {}`, 26},
		{"missing SparkTransactionId", "ExternalCancel", with(c, "SparkTransactionId", nil), 997},
		{"SparkTransactionId longer than 36", "ExternalCancel", with(c, "SparkTransactionId", strings.Repeat("a", 37)), 26},
		{"missing NayaxTransactionId", "ExternalCancel", with(c, "NayaxTransactionId", nil), 997},
		{"NayaxTransactionId as string", "ExternalCancel", with(c, "NayaxTransactionId", "123"), 26},
		{"NayaxTransactionId through a float", "ExternalCancel", with(c, "NayaxTransactionId", float64(tx.NayaxTransactionID)+0.5), 26},
		{"NayaxTransactionId in exponent form", "ExternalCancel", strings.Replace(mustJSON(t, c), itoa(tx.NayaxTransactionID), "2.004545072e+09", 1), 26},
		{"missing TerminalId", "ExternalCancel", with(c, "TerminalId", nil), 997},
		{"TerminalId as number", "ExternalCancel", with(c, "TerminalId", 434334921100366), 26},
		{"missing TerminalIdType", "ExternalCancel", with(c, "TerminalIdType", nil), 997},
		{"TerminalIdType 3", "ExternalCancel", with(c, "TerminalIdType", 3), 26},
		{"missing CancellationType", "ExternalCancel", with(c, "CancellationType", nil), 997},
		{"CancellationType 0", "ExternalCancel", with(c, "CancellationType", 0), 26},
		{"neither ReasonCode nor ReasonText", "ExternalCancel", with(c, "ReasonCode", nil, "ReasonText", nil), 997},
		{"blank ReasonText only", "ExternalCancel", with(c, "ReasonCode", nil, "ReasonText", "  "), 997},
		{"missing CancelAmount", "ExternalCancel", with(c, "CancelAmount", nil), 997},
		{"CancelAmount as string", "ExternalCancel", with(c, "CancelAmount", "20"), 26},
		{"CancelAmount negative", "ExternalCancel", with(c, "CancelAmount", -1), 26},
		{"CancelAmount with three decimals", "ExternalCancel", with(c, "CancelAmount", 1.005), 26},
		{"SiteId as string", "ExternalCancel", with(c, "SiteId", "2"), 26},
		{"MachineAuTime not yyyyMMddHHmmssSSS", "ExternalCancel", with(c, "MachineAuTime", "040226104430"), 26},
		{"missing Amount", "ExternalSettlement", with(st, "Amount", nil), 997},
		{"Amount with float noise", "ExternalSettlement", with(st, "Amount", json.Number("0.30000000000000004")), 26},
		{"ProductInfo not an array", "ExternalSettlement", with(st, "ProductInfo", map[string]any{"Value": 1}), 26},
		{"ProductInfo without Value", "ExternalSettlement", with(st, "ProductInfo", []any{map[string]any{"Code": 1}}), 997},
		{"TransactionTimeout 0", "TriggerTransaction", map[string]any{"SparkTransactionId": tx.SparkTransactionID, "TerminalId": serial, "TerminalIdType": 1, "TransactionTimeout": 0}, 26},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want(t, call(t, s, tt.call, tt.body, tx.SparkTransactionID, nil), tt.code)
		})
	}
	t.Run("member names match case-insensitively", func(t *testing.T) {
		b := map[string]any{}
		for k, v := range st {
			b[strings.ToLower(k)] = v
		}
		want(t, call(t, s, "ExternalSettlement", b, tx.SparkTransactionID, nil), 0)
	})
	t.Run("content type", func(t *testing.T) {
		a := call(t, s, "ExternalCancel", c, tx.SparkTransactionID, map[string]string{"Content-Type": "text/plain"})
		if a.HTTP != http.StatusUnsupportedMediaType {
			t.Errorf("HTTP %d, want 415", a.HTTP)
		}
	})
	got, _ := s.Txn(tx.NayaxTransactionID)
	if got.Cancels != 0 || got.Settles != 1 || got.State != nayaxsim.StateSettled {
		t.Errorf("only the valid settlement may reach the transaction: %+v", got)
	}
}

func TestExternalLifecycle(t *testing.T) {
	s, tx := externalTxn(t, nil)
	id := tx.SparkTransactionID
	c := cancelBody(tx)
	steps := []struct {
		name string
		call string
		body map[string]any
		code int
		desc string
	}{
		{"CancelAmount above authorized", "ExternalCancel", with(c, "CancelAmount", tx.Amount+0.01), 26, ""},
		{"unknown NayaxTransactionId", "ExternalCancel", with(c, "NayaxTransactionId", tx.NayaxTransactionID+1000), 32, ""},
		{"SiteId differs", "ExternalCancel", with(c, "SiteId", 3), 32, ""},
		{"MachineAuTime differs", "ExternalCancel", with(c, "MachineAuTime", "20240205194122328"), 32, ""},
		{"other terminal", "ExternalCancel", with(c, "TerminalId", "1234"), 32, ""},
		{"Remote Start call on an external authorization", "CancelTransaction", c, 32, ""},
		{"terminal by machine id, no SiteId or MachineAuTime, partial amount", "ExternalCancel",
			with(c, "TerminalId", itoa(machineID), "TerminalIdType", 2, "SiteId", nil, "MachineAuTime", nil, "CancelAmount", 12.5), 0, ""},
		{"second cancel", "ExternalCancel", c, 28, "already cancelled"},
		{"settle after cancel", "ExternalSettlement", settleBody(tx, 5), 28, "already cancelled"},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			a := call(t, s, st.call, st.body, id, nil)
			want(t, a, st.code)
			if a.str("SparkTransactionId") != id {
				t.Errorf("answer SparkTransactionId = %s", a.Raw["SparkTransactionId"])
			}
			if st.desc != "" && !strings.Contains(a.Status.ErrorDescription, st.desc) {
				t.Errorf("description %q does not say %q", a.Status.ErrorDescription, st.desc)
			}
		})
	}
	got, _ := s.Txn(tx.NayaxTransactionID)
	if got.State != nayaxsim.StateCancelled || got.CancelledAmount != 12.5 || got.Cancels != 2 || got.Settles != 1 {
		t.Errorf("transaction after the steps: %+v", got)
	}
}

func TestExternalSettlementWindow(t *testing.T) {
	var clock atomic.Int64
	clock.Store(now.UnixNano())
	s, tx := externalTxn(t, func(o *nayaxsim.Options) { o.Now = func() time.Time { return time.Unix(0, clock.Load()).UTC() } })
	clock.Store(now.Add(49 * time.Hour).UnixNano())
	want(t, call(t, s, "ExternalSettlement", settleBody(tx, 5), tx.SparkTransactionID, nil), 32)
}

func TestRemoteStartLifecycle(t *testing.T) {
	s := startSim(t, nil)
	r := startRelay(t)
	s.SetRelay(r.srv.URL + "/api/") // with /api: callbacks must not get /api/api
	id := "12c7cec2-c690-4425-9a1f-db0db60e2d8c"
	authenticate(t, s, id)
	trig := map[string]any{"SparkTransactionId": id, "TerminalId": itoa(machineID), "TerminalIdType": 2, "Amount": 30, "TransactionTimeout": 60}
	want(t, call(t, s, "TriggerTransaction", trig, id, nil), 0)
	want(t, call(t, s, "TriggerTransaction", trig, id, nil), 0) // a retry does not queue twice

	res := tap(t, s, "3", "alice", 20)
	tx := res.Txn
	if res.Kind != nayaxsim.KindAuthorize || !tx.Remote || tx.SparkTransactionID != id || tx.Amount != 30 || !tx.Acked {
		t.Fatalf("tap after trigger: %+v", res)
	}
	if p := r.last(t).Path; p != "/api/TransactionCallback" {
		t.Errorf("callback path %s", p)
	}
	if next := tap(t, s, "4", "bob", 20).Txn; next.Remote || next.SparkTransactionID == id {
		t.Errorf("a retried trigger queued twice: %+v", next)
	}

	tx.HwSerial = "434334921100366" // leading zero lost on the way: same terminal
	steps := []struct {
		name string
		call string
		body map[string]any
		code int
	}{
		{"external call on a Remote Start", "ExternalSettlement", settleBody(tx, 10), 32},
		{"amount above authorized", "Settlement", settleBody(tx, 30.01), 26},
		{"settle", "Settlement", settleBody(tx, 12.25), 0},
		{"second settle", "Settlement", settleBody(tx, 12.25), 28},
		{"cancel after settle", "CancelTransaction", cancelBody(tx), 28},
		{"trigger with a used id", "TriggerTransaction", trig, 26},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			a := call(t, s, st.call, st.body, id, nil)
			want(t, a, st.code)
			if st.name == "settle" {
				if string(a.Raw["AuthCode"]) != "333333" || string(a.Raw["Amount"]) != "12.25" {
					t.Errorf("settlement answer: AuthCode %s Amount %s", a.Raw["AuthCode"], a.Raw["Amount"])
				}
			}
		})
	}
	got, _ := s.Txn(tx.NayaxTransactionID)
	if got.State != nayaxsim.StateSettled || got.SettledAmount != 12.25 || got.Settles != 2 || got.Cancels != 1 {
		t.Errorf("transaction: %+v", got)
	}
}

func TestFailures(t *testing.T) {
	t.Run("HTTP status for the next two, then normal", func(t *testing.T) {
		s := startSim(t, nil)
		s.Fail("startauthentication", nayaxsim.Failure{Times: 2, Status: 503})
		for i := range 2 {
			if a := callRaw(t, s, "StartAuthentication", authBody(t, vectorID)); a != 503 {
				t.Fatalf("request %d: HTTP %d, want 503", i, a)
			}
		}
		authenticate(t, s, vectorID)
		reqs := s.Requests("StartAuthentication")
		if len(reqs) != 3 || reqs[0].HTTPStatus != 503 || reqs[2].HTTPStatus != 200 {
			t.Errorf("requests: %+v", reqs)
		}
	})
	t.Run("Code 51 without processing", func(t *testing.T) {
		s, tx := externalTxn(t, nil)
		s.Fail("ExternalCancel", nayaxsim.Failure{Times: 1, Code: 51})
		a := call(t, s, "ExternalCancel", cancelBody(tx), tx.SparkTransactionID, nil)
		want(t, a, 51)
		if a.str("SparkTransactionId") != tx.SparkTransactionID {
			t.Errorf("simulated decline does not echo the id")
		}
		want(t, call(t, s, "ExternalCancel", cancelBody(tx), tx.SparkTransactionID, nil), 0)
	})
	t.Run("forever until cleared, any call", func(t *testing.T) {
		s := startSim(t, nil)
		s.Fail("*", nayaxsim.Failure{Status: 500})
		for range 3 {
			if a := callRaw(t, s, "StartAuthentication", authBody(t, vectorID)); a != 500 {
				t.Fatalf("HTTP %d, want 500", a)
			}
		}
		s.ClearFailures()
		authenticate(t, s, vectorID)
	})
	t.Run("delay trips a client timeout; the request is still processed", func(t *testing.T) {
		s, tx := externalTxn(t, nil)
		s.Fail("ExternalSettlement", nayaxsim.Failure{Times: 1, Delay: 300 * time.Millisecond})
		client := &http.Client{Timeout: 50 * time.Millisecond}
		req := newRequest(t, s, "ExternalSettlement", settleBody(tx, 10), tx.SparkTransactionID)
		_, err := client.Do(req)
		var ne interface{ Timeout() bool }
		if !errors.As(err, &ne) || !ne.Timeout() {
			t.Fatalf("client error %v, want a timeout", err)
		}
		waitFor(t, func() bool { r := s.Requests("ExternalSettlement"); return len(r) == 1 && r[0].HTTPStatus != 0 })
		// The retry meets the settlement the lost answer was about.
		want(t, call(t, s, "ExternalSettlement", settleBody(tx, 10), tx.SparkTransactionID, nil), 28)
	})
	t.Run("delay then code", func(t *testing.T) {
		s, tx := externalTxn(t, nil)
		s.Fail("ExternalSettlement", nayaxsim.Failure{Times: 1, Delay: 20 * time.Millisecond, Code: 50})
		start := time.Now()
		want(t, call(t, s, "ExternalSettlement", settleBody(tx, 10), tx.SparkTransactionID, nil), 50)
		if time.Since(start) < 20*time.Millisecond {
			t.Errorf("answered before the delay")
		}
	})
	t.Run("unknown call name is ignored", func(t *testing.T) {
		s := startSim(t, nil)
		s.Fail("NoSuchCall", nayaxsim.Failure{Status: 500})
		authenticate(t, s, vectorID)
	})
}

func TestPaths(t *testing.T) {
	s := startSim(t, nil)
	base := strings.TrimSuffix(s.URL(), "/api")
	for _, p := range []string{"/api/StartAuthentication", "/StartAuthentication", "/API/startauthentication", "/api/STARTAUTHENTICATION/"} {
		t.Run(p, func(t *testing.T) {
			req := newRequest(t, s, "", authBody(t, vectorID), vectorID)
			req.URL.Path = p
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Errorf("HTTP %d", resp.StatusCode)
			}
		})
	}
	for _, tt := range []struct {
		method, path string
		status       int
	}{
		{http.MethodGet, "/api/StartAuthentication", 405},
		{http.MethodPost, "/api/NoSuchCall", 404},
		{http.MethodGet, "/api/Version", 200},
	} {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			req, _ := http.NewRequest(tt.method, base+tt.path, nil)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tt.status {
				t.Errorf("HTTP %d, want %d", resp.StatusCode, tt.status)
			}
		})
	}
}

func TestOptions(t *testing.T) {
	if _, err := nayaxsim.Start(nayaxsim.Options{TokenSecret: []byte("short")}); !errors.Is(err, nayaxsim.ErrOptions) {
		t.Errorf("short secret: %v", err)
	}
	s, err := nayaxsim.Start(nayaxsim.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	o := s.Options()
	if o.IntegratorID != nayaxsim.DefaultIntegratorID || string(o.TokenSecret) != nayaxsim.DefaultTokenSecret || o.TokenID != nayaxsim.DefaultTokenID {
		t.Errorf("defaults: %+v", o)
	}
	if !strings.HasSuffix(s.URL(), "/api") {
		t.Errorf("URL %s", s.URL())
	}
}

func TestMaxRecords(t *testing.T) {
	s := startSim(t, func(o *nayaxsim.Options) { o.MaxRecords = 4 })
	for range 9 {
		call(t, s, "StartAuthentication", authBody(t, vectorID), vectorID, map[string]string{"IntegratorId": "x"})
	}
	authenticate(t, s, vectorID)
	reqs := s.Requests("")
	if len(reqs) < 4 || len(reqs) > 5 {
		t.Fatalf("%d records kept, want the newest 4 or 5", len(reqs))
	}
	if last := reqs[len(reqs)-1]; last.HTTPStatus != 200 || !strings.Contains(string(last.Answer), "Approved") {
		t.Errorf("newest record %+v", last)
	}
}
