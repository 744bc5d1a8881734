package nayaxsim_test

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sitelink/sitelink/daemon/nayaxsim"
)

// The DESIGN.md test vector: this id and key sign to vectorSig.
const (
	vectorID  = "123456789123456789abcdefghijklmnopqr"
	vectorKey = "RbtdDsiVNjkAeRty"
	vectorSig = "1b7dd1c4010698824de66f13e1387efc28a4bba00b720d4be8cdb3b598b9603e"

	integrator = "INT-4711"
	tokenID    = 116383
	random17   = "123456789qwertyui"
	serial     = "0434334921100366"
	machineID  = 71234996
)

var (
	secret = []byte("wRvTVTkungMIKThTVbj_fiXdfoGclhn0") // the spec's example key
	// now is the simulator's clock in every test.
	now  = time.Date(2026, 2, 4, 10, 44, 30, 0, time.UTC)
	term = nayaxsim.Terminal{MachineID: machineID, HwSerial: serial}
)

// startSim starts a simulator with the test credentials and a fixed
// clock; mod adjusts the options.
func startSim(t testing.TB, mod func(*nayaxsim.Options)) *nayaxsim.Sim {
	t.Helper()
	o := nayaxsim.Options{
		IntegratorID: integrator,
		SignKey:      vectorKey,
		TokenID:      tokenID,
		TokenSecret:  secret,
		Now:          func() time.Time { return now },
	}
	if mod != nil {
		mod(&o)
	}
	s, err := nayaxsim.Start(o)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

// encrypt is an independent AES-256-ECB/PKCS#7/Base64, built from
// crypto/aes as an integrator would.
func encrypt(t testing.TB, key []byte, plain string) string {
	t.Helper()
	block, err := aes.NewCipher(key)
	if err != nil {
		t.Fatal(err)
	}
	n := aes.BlockSize - len(plain)%aes.BlockSize
	src := append([]byte(plain), bytes.Repeat([]byte{byte(n)}, n)...)
	dst := make([]byte, len(src))
	for i := 0; i < len(src); i += aes.BlockSize {
		block.Encrypt(dst[i:i+aes.BlockSize], src[i:i+aes.BlockSize])
	}
	return base64.StdEncoding.EncodeToString(dst)
}

func cipherFor(t testing.TB, id, random string, at time.Time) string {
	t.Helper()
	return encrypt(t, secret, id+"="+random+at.UTC().Format("0601021504"))
}

func sig(id string) string {
	sum := sha256.Sum256([]byte(id + ";" + vectorKey))
	return hex.EncodeToString(sum[:])
}

// answer is a decoded Spark answer.
type answer struct {
	HTTP   int
	Raw    map[string]json.RawMessage
	Status struct {
		Verdict          string
		ErrorCode        int
		ErrorDescription string
	}
}

func (a answer) str(name string) string {
	var s string
	_ = json.Unmarshal(a.Raw[name], &s)
	return s
}

// call posts body to the simulator's Spark side with the headers of a
// correct client for id; hdr overrides them ("" deletes one).
func call(t testing.TB, s *nayaxsim.Sim, name string, body any, id string, hdr map[string]string) answer {
	t.Helper()
	var b []byte
	switch v := body.(type) {
	case string:
		b = []byte(v)
	case []byte:
		b = v
	default:
		var err error
		if b, err = json.Marshal(body); err != nil {
			t.Fatal(err)
		}
	}
	req, err := http.NewRequest(http.MethodPost, s.URL()+"/"+name, bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("IntegratorId", integrator)
	req.Header.Set("TransactionSignature", sig(id))
	for k, v := range hdr {
		if v == "" {
			req.Header.Del(k)
		} else {
			req.Header.Set(k, v)
		}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	a := answer{HTTP: resp.StatusCode}
	if err := json.Unmarshal(raw, &a.Raw); err != nil {
		t.Fatalf("%s answer is not a JSON object: %q", name, raw)
	}
	if err := json.Unmarshal(a.Raw["Status"], &a.Status); err != nil {
		t.Fatalf("%s answer has no Status: %q", name, raw)
	}
	return a
}

// want checks an answer's verdict and code (0 = Approved).
func want(t testing.TB, a answer, code int) {
	t.Helper()
	if code == 0 {
		if a.HTTP != 200 || a.Status.Verdict != "Approved" {
			t.Fatalf("got HTTP %d %s %d %q, want Approved", a.HTTP, a.Status.Verdict, a.Status.ErrorCode, a.Status.ErrorDescription)
		}
		return
	}
	if a.Status.Verdict != "Declined" || a.Status.ErrorCode != code {
		t.Fatalf("got HTTP %d %s %d %q, want Declined %d", a.HTTP, a.Status.Verdict, a.Status.ErrorCode, a.Status.ErrorDescription, code)
	}
}

func authBody(t testing.TB, id string) map[string]any {
	return map[string]any{
		"TokenId": tokenID, "TerminalId": serial, "TerminalIdType": 1,
		"Random": random17, "Cipher": cipherFor(t, id, random17, now), "SparkTransactionId": id,
	}
}

// authenticate runs a successful StartAuthentication for id.
func authenticate(t testing.TB, s *nayaxsim.Sim, id string) {
	t.Helper()
	want(t, call(t, s, "StartAuthentication", authBody(t, id), id, nil), 0)
}

// cancelBody is a valid ExternalCancel/CancelTransaction for tx.
func cancelBody(tx nayaxsim.Txn) map[string]any {
	return map[string]any{
		"NayaxTransactionId": tx.NayaxTransactionID, "SparkTransactionId": tx.SparkTransactionID,
		"SiteId": tx.SiteID, "MachineAuTime": tx.MachineAuTime,
		"TerminalId": tx.HwSerial, "TerminalIdType": 1, "CancellationType": 1,
		"ReasonCode": "75", "ReasonText": "Service not provided", "CancelAmount": tx.Amount,
	}
}

// settleBody is a valid Settlement/ExternalSettlement for tx.
func settleBody(tx nayaxsim.Txn, amount float64) map[string]any {
	return map[string]any{
		"NayaxTransactionId": tx.NayaxTransactionID, "SparkTransactionId": tx.SparkTransactionID,
		"SiteId": tx.SiteID, "MachineAuTime": tx.MachineAuTime,
		"TerminalId": tx.HwSerial, "TerminalIdType": 1, "Amount": amount,
	}
}

func with(m map[string]any, kv ...any) map[string]any {
	out := map[string]any{}
	for k, v := range m {
		out[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] == nil {
			delete(out, kv[i].(string))
		} else {
			out[kv[i].(string)] = kv[i+1]
		}
	}
	return out
}

// relay is a fake integrator endpoint: it records callbacks and answers
// like sitelink would: it approves authorizations, and approves a stop
// only for the card that authorized the session.
type relay struct {
	srv *httptest.Server

	mu      sync.Mutex
	got     []got
	hashes  map[string]string // SparkTransactionId → CardHash authorized
	decline map[string]bool   // path (lower case) → answer Declined
}

type got struct {
	Path   string
	Header http.Header
	Body   []byte
}

func (g got) json(t testing.TB) map[string]json.RawMessage {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal(g.Body, &m); err != nil {
		t.Fatalf("callback %s body: %v", g.Path, err)
	}
	return m
}

func startRelay(t testing.TB) *relay {
	t.Helper()
	r := &relay{hashes: map[string]string{}, decline: map[string]bool{}}
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *relay) serve(w http.ResponseWriter, req *http.Request) {
	b, _ := io.ReadAll(req.Body)
	var m struct {
		SparkTransactionId string
		CardHash           string
	}
	_ = json.Unmarshal(b, &m)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got = append(r.got, got{Path: req.URL.Path, Header: req.Header.Clone(), Body: b})
	verdict := "Approved"
	p := strings.ToLower(req.URL.Path)
	switch {
	case r.decline[p]:
		verdict = "Declined"
	case strings.HasSuffix(p, "/transactioncallback"):
		r.hashes[m.SparkTransactionId] = m.CardHash
	case strings.HasSuffix(p, "/stopcallback"):
		if r.hashes[m.SparkTransactionId] != m.CardHash {
			verdict = "Declined"
		}
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"SparkTransactionId": m.SparkTransactionId, "Status": map[string]any{"Verdict": verdict}})
}

func (r *relay) calls() []got {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]got(nil), r.got...)
}

func (r *relay) last(t testing.TB) got {
	t.Helper()
	c := r.calls()
	if len(c) == 0 {
		t.Fatal("relay got no callback")
	}
	return c[len(c)-1]
}

func ctx(t testing.TB) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return c
}

// tap taps and fails the test on a transport error.
func tap(t testing.TB, s *nayaxsim.Sim, station, card string, amount float64) nayaxsim.TapResult {
	t.Helper()
	res, err := s.Tap(ctx(t), term, station, card, amount)
	if err != nil {
		t.Fatalf("Tap: %v", err)
	}
	return res
}

func mustJSON(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func itoa(v int64) string { return strconv.FormatInt(v, 10) }

// newRequest builds a correctly signed Spark request.
func newRequest(t testing.TB, s *nayaxsim.Sim, name string, body any, id string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, s.URL()+"/"+name, strings.NewReader(mustJSON(t, body)))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("IntegratorId", integrator)
	req.Header.Set("TransactionSignature", sig(id))
	return req
}

// callRaw posts a correctly signed request and returns the HTTP status.
func callRaw(t testing.TB, s *nayaxsim.Sim, name string, body map[string]any) int {
	t.Helper()
	id, _ := body["SparkTransactionId"].(string)
	resp, err := http.DefaultClient.Do(newRequest(t, s, name, body, id))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// waitFor polls cond until it holds, for state another goroutine
// finishes after the test's own request returned.
func waitFor(t testing.TB, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached in 5s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
