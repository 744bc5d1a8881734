package nayax_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sitelink/sitelink/daemon/nayax"
)

// The TransactionSignature test vector of DESIGN §1. The id has the 36
// characters of a GUID, so it can be authenticated too.
const (
	vectorID  = "123456789123456789abcdefghijklmnopqr"
	vectorKey = "RbtdDsiVNjkAeRty"
	vectorSig = "1b7dd1c4010698824de66f13e1387efc28a4bba00b720d4be8cdb3b598b9603e"

	testIntegrator = "integrator-7"
	testTokenID    = 116383
	testTerminal   = "0434334921100366"
)

// testNow is 2026-02-04 10:44:30 UTC, given in another zone so that the
// cipher must convert it.
var testNow = time.Date(2026, 2, 4, 11, 44, 30, 0, time.FixedZone("CET", 3600))

// recorded is one request the fake Spark received.
type recorded struct {
	call   string
	header http.Header
	body   []byte
}

// fakeSpark is a Spark server: it checks StartAuthentication like Nayax
// (decrypting the cipher) and answers calls with answer.
type fakeSpark struct {
	t   *testing.T
	key []byte
	srv *httptest.Server

	mu   sync.Mutex
	reqs []recorded
	// auth answers StartAuthentication; nil means the real check and an
	// Approved answer with the right hash.
	auth func(n int, req nayax.StartAuthenticationRequest) (int, string)
	// answer answers the call; n counts that call's requests from 1.
	answer func(w http.ResponseWriter, r *http.Request, n int)
}

func newFakeSpark(t *testing.T) *fakeSpark {
	t.Helper()
	f := &fakeSpark{t: t, key: []byte(specKey)}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeSpark) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	call := strings.TrimPrefix(r.URL.Path, "/api/")
	f.mu.Lock()
	f.reqs = append(f.reqs, recorded{call: call, header: r.Header.Clone(), body: body})
	n := 0
	for _, q := range f.reqs {
		if q.call == call {
			n++
		}
	}
	auth, answer := f.auth, f.answer
	f.mu.Unlock()

	if call != nayax.CallStartAuthentication {
		if answer == nil {
			answer = approve
		}
		answer(w, r, n)
		return
	}
	var req nayax.StartAuthenticationRequest
	if err := nayax.ValidateOutbound(call, body); err != nil {
		f.t.Errorf("StartAuthentication body invalid: %v", err)
	}
	if err := json.Unmarshal(body, &req); err != nil {
		f.t.Errorf("StartAuthentication body: %v", err)
	}
	if auth != nil {
		status, out := auth(n, req)
		w.WriteHeader(status)
		io.WriteString(w, out)
		return
	}
	plain, err := nayax.DecryptCipher(req.Cipher.S, f.key)
	if err != nil {
		f.t.Errorf("cipher: %v", err)
	}
	id, random, _, err := nayax.ParseCipherPlaintext(plain)
	if err != nil || id != req.SparkTransactionId.S || random != req.Random.S {
		f.t.Errorf("cipher plaintext does not match the request: %v", err)
	}
	writeJSON(w, map[string]any{
		"HashedSparkTransactionId": nayax.HashSparkID(req.SparkTransactionId.S),
		"Status":                   map[string]any{"Verdict": "Approved", "ErrorDescription": " No Errors "},
	})
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(v)
}

func approve(w http.ResponseWriter, r *http.Request, n int) {
	writeJSON(w, map[string]any{"SparkTransactionId": "x", "Status": map[string]any{"Verdict": "Approved", "ErrorDescription": "No Errors"}})
}

func answerStatus(code int, body string) func(http.ResponseWriter, *http.Request, int) {
	return func(w http.ResponseWriter, r *http.Request, n int) {
		w.WriteHeader(code)
		io.WriteString(w, body)
	}
}

// sequence answers the n-th request with the n-th function, repeating the
// last one.
func sequence(fns ...func(http.ResponseWriter, *http.Request, int)) func(http.ResponseWriter, *http.Request, int) {
	return func(w http.ResponseWriter, r *http.Request, n int) {
		fns[min(n, len(fns))-1](w, r, n)
	}
}

func (f *fakeSpark) requests() []recorded {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]recorded(nil), f.reqs...)
}

func (f *fakeSpark) calls() []string {
	var out []string
	for _, r := range f.requests() {
		out = append(out, r.call)
	}
	return out
}

func (f *fakeSpark) config() nayax.ClientConfig {
	return nayax.ClientConfig{
		BaseURL:      f.srv.URL + "/api/",
		IntegratorID: testIntegrator,
		SignKey:      vectorKey,
		TokenID:      testTokenID,
		TokenSecret:  f.key,
		Timeout:      5 * time.Second,
		Attempts:     3,
		BackoffMin:   time.Millisecond,
		BackoffMax:   2 * time.Millisecond,
		Now:          func() time.Time { return testNow },
	}
}

func (f *fakeSpark) client(t *testing.T, mod ...func(*nayax.ClientConfig)) *nayax.Client {
	t.Helper()
	cfg := f.config()
	for _, m := range mod {
		m(&cfg)
	}
	c, err := nayax.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// settlement is a Settlement body the edge could build. Its EReceiptData
// holds a marker that must never reach a log.
func settlement(id string) json.RawMessage {
	return json.RawMessage(`{"NayaxTransactionId":2004545072,"SparkTransactionId":"` + id +
		`","SiteId":2,"TerminalId":"0434334921100366","TerminalIdType":1,"Amount":12.25,"EReceiptData":"REQUEST-BODY-MARKER"}`)
}

func TestClientHeadersCipherAndBody(t *testing.T) {
	f := newFakeSpark(t)
	c := f.client(t)
	body := settlement(vectorID)
	resp, err := c.Do(context.Background(), nayax.CallSettlement, body)
	if err != nil {
		t.Fatal(err)
	}
	if !resp.Status.IsApproved() || resp.HTTPStatus != 200 || resp.Attempts != 1 || !json.Valid(resp.Body) {
		t.Fatalf("Response = %+v", resp)
	}
	reqs := f.requests()
	if got := f.calls(); len(got) != 2 || got[0] != nayax.CallStartAuthentication || got[1] != nayax.CallSettlement {
		t.Fatalf("calls = %v, want StartAuthentication then Settlement", got)
	}
	for _, r := range reqs {
		t.Run(r.call+" headers", func(t *testing.T) {
			for name, want := range map[string]string{
				"Content-Type":         "application/json",
				"IntegratorId":         testIntegrator,
				"TransactionSignature": vectorSig,
			} {
				if got := r.header.Get(name); got != want {
					t.Errorf("%s = %q, want %q", name, got, want)
				}
			}
		})
	}
	t.Run("StartAuthentication body", func(t *testing.T) {
		var req nayax.StartAuthenticationRequest
		if err := json.Unmarshal(reqs[0].body, &req); err != nil {
			t.Fatal(err)
		}
		if req.TokenId.V != testTokenID || req.TerminalId.S != testTerminal || req.TerminalIdType.V != 1 ||
			req.SparkTransactionId.S != vectorID || len(req.Random.S) != nayax.RandomLen {
			t.Fatalf("StartAuthentication = %+v", req)
		}
		plain, err := nayax.DecryptCipher(req.Cipher.S, []byte(specKey))
		if err != nil {
			t.Fatal(err)
		}
		if want := vectorID + "=" + req.Random.S + "2602041044"; plain != want {
			t.Fatalf("cipher plaintext = %q, want %q (UTC yyMMddHHmm)", plain, want)
		}
	})
	t.Run("call body sent exactly", func(t *testing.T) {
		if !bytes.Equal(reqs[1].body, body) {
			t.Fatalf("sent %s, want %s", reqs[1].body, body)
		}
	})
}

func TestClientReusesAuthentication(t *testing.T) {
	f := newFakeSpark(t)
	var mu sync.Mutex
	now := testNow
	c := f.client(t, func(cfg *nayax.ClientConfig) {
		cfg.AuthTTL = 30 * time.Minute
		cfg.Now = func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	})
	do := func(id string) {
		t.Helper()
		if _, err := c.Do(context.Background(), nayax.CallSettlement, settlement(id)); err != nil {
			t.Fatal(err)
		}
	}
	countAuth := func() int {
		n := 0
		for _, call := range f.calls() {
			if call == nayax.CallStartAuthentication {
				n++
			}
		}
		return n
	}
	do(vectorID)
	do(vectorID)
	if n := countAuth(); n != 1 {
		t.Fatalf("%d StartAuthentication for two calls on one id, want 1", n)
	}
	do(sparkID)
	if n := countAuth(); n != 2 {
		t.Fatalf("%d StartAuthentication after a second id, want 2", n)
	}
	mu.Lock()
	now = now.Add(31 * time.Minute)
	mu.Unlock()
	do(vectorID)
	if n := countAuth(); n != 3 {
		t.Fatalf("%d StartAuthentication after the TTL, want 3", n)
	}
}

func TestClientAuthenticationFailures(t *testing.T) {
	hash := nayax.HashSparkID(vectorID)
	tests := []struct {
		name   string
		status int
		body   string
		want   error
	}{
		{name: "hash of another id", status: 200, body: `{"HashedSparkTransactionId":"` + specHash + `","Status":{"Verdict":"Approved"}}`, want: nayax.ErrAuth},
		{name: "no hash", status: 200, body: `{"Status":{"Verdict":"Approved"}}`, want: nayax.ErrAuth},
		{name: "declined invalid token", status: 200, body: `{"HashedSparkTransactionId":"` + hash + `","Status":{"Verdict":"Declined","ErrorCode":28,"ErrorDescription":"Invalid Token"}}`, want: nayax.ErrAuth},
		{name: "HTTP 401", status: 401, body: ``, want: nayax.ErrAuth},
		{name: "HTTP 403", status: 403, body: `{}`, want: nayax.ErrAuth},
		{name: "not JSON", status: 200, body: `<html>gateway</html>`, want: nayax.ErrBadResponse},
		{name: "HTTP 404", status: 404, body: ``, want: nayax.ErrBadResponse},
		{name: "HTTP 502 every time", status: 502, body: ``, want: nayax.ErrTransport},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeSpark(t)
			f.auth = func(int, nayax.StartAuthenticationRequest) (int, string) { return tt.status, tt.body }
			resp, err := f.client(t).Do(context.Background(), nayax.CallSettlement, settlement(vectorID))
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			for _, call := range f.calls() {
				if call != nayax.CallStartAuthentication {
					t.Fatalf("the call was sent after a failed authentication: %v", f.calls())
				}
			}
			if resp.Attempts != 0 {
				t.Fatalf("Attempts = %d, want 0 (the call was not sent)", resp.Attempts)
			}
		})
	}
	t.Run("hash in upper case", func(t *testing.T) {
		f := newFakeSpark(t)
		f.auth = func(int, nayax.StartAuthenticationRequest) (int, string) {
			return 200, `{"HashedSparkTransactionId":"` + strings.ToUpper(hash) + `","Status":{"Verdict":"Approved"}}`
		}
		if _, err := f.client(t).Do(context.Background(), nayax.CallSettlement, settlement(vectorID)); err != nil {
			t.Fatal(err)
		}
	})
}

func TestClientCode33(t *testing.T) {
	refused := answerStatus(200, `{"Status":{"Verdict":"Declined","ErrorCode":33,"ErrorDescription":"Fail To Authenticate"}}`)
	t.Run("authenticates again once and retries", func(t *testing.T) {
		f := newFakeSpark(t)
		f.answer = sequence(refused, approve)
		resp, err := f.client(t).Do(context.Background(), nayax.CallSettlement, settlement(vectorID))
		if err != nil || !resp.Status.IsApproved() || resp.Attempts != 2 {
			t.Fatalf("Do = %+v, %v", resp, err)
		}
		want := []string{"StartAuthentication", "Settlement", "StartAuthentication", "Settlement"}
		if got := f.calls(); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("calls = %v, want %v", got, want)
		}
	})
	t.Run("cached authentication expired at Nayax", func(t *testing.T) {
		f := newFakeSpark(t)
		c := f.client(t)
		if _, err := c.Do(context.Background(), nayax.CallTriggerTransaction, trigger(vectorID)); err != nil {
			t.Fatal(err)
		}
		f.mu.Lock()
		f.answer = sequence(refused, approve) // n counts Settlement requests only
		f.mu.Unlock()
		if _, err := c.Do(context.Background(), nayax.CallSettlement, settlement(vectorID)); err != nil {
			t.Fatal(err)
		}
		want := []string{"StartAuthentication", "TriggerTransaction", "Settlement", "StartAuthentication", "Settlement"}
		if got := f.calls(); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("calls = %v, want %v", got, want)
		}
	})
	t.Run("33 twice is ErrAuth", func(t *testing.T) {
		f := newFakeSpark(t)
		f.answer = refused
		resp, err := f.client(t).Do(context.Background(), nayax.CallSettlement, settlement(vectorID))
		if !errors.Is(err, nayax.ErrAuth) || resp.Status.Code() != nayax.CodeAuthFailed || resp.Attempts != 2 {
			t.Fatalf("Do = %+v, %v; want ErrAuth with the code-33 answer", resp, err)
		}
		if got := len(f.calls()); got != 4 {
			t.Fatalf("%d requests, want 4 (no second re-authentication)", got)
		}
	})
}

func trigger(id string) json.RawMessage {
	return json.RawMessage(`{"SparkTransactionId":"` + id + `","TerminalId":"0434334921100366","TerminalIdType":1,"Amount":15,"TransactionTimeout":60}`)
}

func TestClientAnswers(t *testing.T) {
	big := `{"Status":{"Verdict":"Approved"},"Pad":"` + strings.Repeat("x", 1<<20) + `"}`
	tests := []struct {
		name         string
		answer       func(http.ResponseWriter, *http.Request, int)
		want         error
		wantAttempts int
		wantHTTP     int
		wantCode     int
		wantApproved bool
	}{
		{name: "approved", answer: approve, wantAttempts: 1, wantHTTP: 200, wantApproved: true},
		{name: "declined 51 is an answer", answer: answerStatus(200, `{"Status":{"Verdict":"Declined","ErrorCode":51,"ErrorDescription":"External Cancel Failed"}}`),
			wantAttempts: 1, wantHTTP: 200, wantCode: 51},
		{name: "code as string, names in any case", answer: answerStatus(200, `{"status":{"verdict":"Declined","errorcode":"28"}}`),
			wantAttempts: 1, wantHTTP: 200, wantCode: 28},
		{name: "503 then 200", answer: sequence(answerStatus(503, ""), approve), wantAttempts: 2, wantHTTP: 200, wantApproved: true},
		{name: "429 and 408 then 200", answer: sequence(answerStatus(429, ""), answerStatus(408, ""), approve), wantAttempts: 3, wantHTTP: 200, wantApproved: true},
		{name: "500 every time", answer: answerStatus(500, `{"Status":{"Verdict":"Approved"}}`), want: nayax.ErrTransport, wantAttempts: 3, wantHTTP: 500},
		{name: "404 not retried", answer: answerStatus(404, ""), want: nayax.ErrBadResponse, wantAttempts: 1, wantHTTP: 404},
		{name: "400 not retried", answer: answerStatus(400, `{"title":"One or more validation errors occurred.","status":400}`), want: nayax.ErrBadResponse, wantAttempts: 1, wantHTTP: 400},
		{name: "redirect not followed", answer: func(w http.ResponseWriter, r *http.Request, n int) {
			http.Redirect(w, r, "https://elsewhere.example/api/Settlement", http.StatusTemporaryRedirect)
		}, want: nayax.ErrBadResponse, wantAttempts: 1, wantHTTP: 307},
		{name: "403", answer: answerStatus(403, ""), want: nayax.ErrAuth, wantAttempts: 1, wantHTTP: 403},
		{name: "not JSON", answer: answerStatus(200, `OK`), want: nayax.ErrBadResponse, wantAttempts: 1, wantHTTP: 200},
		{name: "empty", answer: answerStatus(200, ``), want: nayax.ErrBadResponse, wantAttempts: 1, wantHTTP: 200},
		{name: "no Status", answer: answerStatus(200, `{"SparkTransactionId":"x"}`), want: nayax.ErrBadResponse, wantAttempts: 1, wantHTTP: 200},
		{name: "Status null", answer: answerStatus(200, `{"Status":null}`), want: nayax.ErrBadResponse, wantAttempts: 1, wantHTTP: 200},
		{name: "Status not an object", answer: answerStatus(200, `{"Status":"Approved"}`), want: nayax.ErrBadResponse, wantAttempts: 1, wantHTTP: 200},
		{name: "Status without Verdict", answer: answerStatus(200, `{"Status":{"ErrorCode":0}}`), want: nayax.ErrBadResponse, wantAttempts: 1, wantHTTP: 200},
		{name: "truncated JSON", answer: answerStatus(200, `{"Status":{"Verdict":"Appr`), want: nayax.ErrBadResponse, wantAttempts: 1, wantHTTP: 200},
		{name: "too large", answer: answerStatus(200, big), want: nayax.ErrBadResponse, wantAttempts: 1, wantHTTP: 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeSpark(t)
			f.answer = tt.answer
			resp, err := f.client(t).Do(context.Background(), nayax.CallExternalCancel, externalCancel(vectorID))
			if tt.want == nil && err != nil || !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			if resp.Attempts != tt.wantAttempts || resp.HTTPStatus != tt.wantHTTP {
				t.Fatalf("Attempts %d HTTPStatus %d, want %d %d", resp.Attempts, resp.HTTPStatus, tt.wantAttempts, tt.wantHTTP)
			}
			if tt.want == nil && (resp.Status.IsApproved() != tt.wantApproved || resp.Status.Code() != tt.wantCode) {
				t.Fatalf("Status = %+v", resp.Status)
			}
			if got := len(f.calls()) - 1; got != tt.wantAttempts {
				t.Fatalf("server saw %d calls, want %d", got, tt.wantAttempts)
			}
		})
	}
	t.Run("StartAuthentication retried on 502", func(t *testing.T) {
		f := newFakeSpark(t)
		hash := nayax.HashSparkID(vectorID)
		f.auth = func(n int, _ nayax.StartAuthenticationRequest) (int, string) {
			if n == 1 {
				return 502, ""
			}
			return 200, `{"HashedSparkTransactionId":"` + hash + `","Status":{"Verdict":"Approved"}}`
		}
		if _, err := f.client(t).Do(context.Background(), nayax.CallSettlement, settlement(vectorID)); err != nil {
			t.Fatal(err)
		}
	})
}

func externalCancel(id string) json.RawMessage {
	return json.RawMessage(`{"NayaxTransactionId":987654321,"SparkTransactionId":"` + id +
		`","SiteId":2,"MachineAuTime":"20251212110000500","TerminalId":"NX0087654321","TerminalIdType":1,"CancellationType":1,"ReasonCode":"01","ReasonText":"User requested cancellation","CancelAmount":5}`)
}

// blockUntilGone answers nothing until the client gives up on the request.
func blockUntilGone(arrived chan<- struct{}, release <-chan struct{}) func(http.ResponseWriter, *http.Request, int) {
	return func(w http.ResponseWriter, r *http.Request, n int) {
		if arrived != nil {
			arrived <- struct{}{}
		}
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}
}

func TestClientTimeout(t *testing.T) {
	f := newFakeSpark(t)
	release := make(chan struct{})
	t.Cleanup(func() { close(release) }) // runs before the server closes
	f.answer = blockUntilGone(nil, release)
	c := f.client(t, func(cfg *nayax.ClientConfig) {
		cfg.Timeout = 50 * time.Millisecond
		cfg.Attempts = 2
	})
	resp, err := c.Do(context.Background(), nayax.CallSettlement, settlement(vectorID))
	if !errors.Is(err, nayax.ErrTransport) || errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want ErrTransport", err)
	}
	if resp.Attempts != 2 || resp.HTTPStatus != 0 {
		t.Fatalf("Response = %+v, want 2 attempts and no HTTP status", resp)
	}
}

func TestClientContextCancelled(t *testing.T) {
	t.Run("during a request", func(t *testing.T) {
		f := newFakeSpark(t)
		arrived, release := make(chan struct{}, 1), make(chan struct{})
		t.Cleanup(func() { close(release) })
		f.answer = blockUntilGone(arrived, release)
		ctx, cancel := context.WithCancel(context.Background())
		go func() { <-arrived; cancel() }()
		resp, err := f.client(t).Do(ctx, nayax.CallSettlement, settlement(vectorID))
		if !errors.Is(err, context.Canceled) || !errors.Is(err, nayax.ErrTransport) {
			t.Fatalf("err = %v, want context.Canceled and ErrTransport", err)
		}
		if resp.Attempts != 1 {
			t.Fatalf("Attempts = %d, want 1 (no retry after cancel)", resp.Attempts)
		}
	})
	t.Run("during the backoff", func(t *testing.T) {
		f := newFakeSpark(t)
		arrived := make(chan struct{}, 1)
		f.answer = func(w http.ResponseWriter, r *http.Request, n int) {
			w.WriteHeader(503)
			arrived <- struct{}{}
		}
		ctx, cancel := context.WithCancel(context.Background())
		go func() { <-arrived; cancel() }()
		c := f.client(t, func(cfg *nayax.ClientConfig) { cfg.BackoffMin, cfg.BackoffMax = time.Hour, time.Hour })
		_, err := c.Do(ctx, nayax.CallSettlement, settlement(vectorID))
		if !errors.Is(err, context.Canceled) || !errors.Is(err, nayax.ErrTransport) {
			t.Fatalf("err = %v, want context.Canceled and ErrTransport", err)
		}
	})
	t.Run("before the call", func(t *testing.T) {
		f := newFakeSpark(t)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		_, err := f.client(t).Do(ctx, nayax.CallSettlement, settlement(vectorID))
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v, want context.Canceled", err)
		}
		if n := len(f.calls()); n != 0 {
			t.Fatalf("%d requests reached the server", n)
		}
	})
}

func TestClientBadRequest(t *testing.T) {
	good := `"SparkTransactionId":"` + vectorID + `"`
	tests := []struct {
		name, call, body string
	}{
		{name: "StartAuthentication is internal", call: nayax.CallStartAuthentication, body: string(settlement(vectorID))},
		{name: "unknown call", call: "Refund", body: string(settlement(vectorID))},
		{name: "path in call", call: "../Settlement", body: string(settlement(vectorID))},
		{name: "empty call", call: "", body: string(settlement(vectorID))},
		{name: "not JSON", call: nayax.CallSettlement, body: `SparkTransactionId=1`},
		{name: "array", call: nayax.CallSettlement, body: `[` + string(settlement(vectorID)) + `]`},
		{name: "empty body", call: nayax.CallSettlement, body: ``},
		{name: "no SparkTransactionId", call: nayax.CallSettlement, body: `{"TerminalId":"1","TerminalIdType":1}`},
		{name: "blank SparkTransactionId", call: nayax.CallSettlement, body: `{"SparkTransactionId":" ","TerminalId":"1","TerminalIdType":1}`},
		{name: "SparkTransactionId not a GUID", call: nayax.CallSettlement, body: `{"SparkTransactionId":"abc","TerminalId":"1","TerminalIdType":1}`},
		{name: "no TerminalId", call: nayax.CallSettlement, body: `{` + good + `,"TerminalIdType":1}`},
		{name: "no TerminalIdType", call: nayax.CallSettlement, body: `{` + good + `,"TerminalId":"1"}`},
		{name: "TerminalIdType 3", call: nayax.CallSettlement, body: `{` + good + `,"TerminalId":"1","TerminalIdType":3}`},
		{name: "TerminalIdType not a number", call: nayax.CallSettlement, body: `{` + good + `,"TerminalId":"1","TerminalIdType":"HW"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeSpark(t)
			_, err := f.client(t).Do(context.Background(), tt.call, json.RawMessage(tt.body))
			if !errors.Is(err, nayax.ErrBadRequest) {
				t.Fatalf("err = %v, want ErrBadRequest", err)
			}
			if n := len(f.calls()); n != 0 {
				t.Fatalf("%d requests sent for a bad request", n)
			}
		})
	}
}

func TestClientNeverLogsBodies(t *testing.T) {
	f := newFakeSpark(t)
	const answerMarker = "ANSWER-BODY-MARKER"
	f.answer = sequence(
		answerStatus(500, `{"Status":{"Verdict":"Declined","ErrorDescription":"`+answerMarker+`"}}`),
		answerStatus(200, `{"Status":{"Verdict":"Approved"},"AuthCode":"`+answerMarker+`"}`),
		answerStatus(200, answerMarker),
	)
	var buf bytes.Buffer
	var mu sync.Mutex
	log := slog.New(slog.NewTextHandler(lockedWriter{&mu, &buf}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	c := f.client(t, func(cfg *nayax.ClientConfig) { cfg.Logger = log })
	if _, err := c.Do(context.Background(), nayax.CallSettlement, settlement(vectorID)); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Do(context.Background(), nayax.CallSettlement, settlement(vectorID)); !errors.Is(err, nayax.ErrBadResponse) {
		t.Fatalf("err = %v, want ErrBadResponse", err)
	}
	mu.Lock()
	out := buf.String()
	mu.Unlock()
	if !strings.Contains(out, "attempt failed") {
		t.Fatalf("the failed attempt was not logged:\n%s", out)
	}
	for _, secret := range []string{"REQUEST-BODY-MARKER", answerMarker, vectorKey, vectorSig, specKey, "Cipher"} {
		if strings.Contains(out, secret) {
			t.Fatalf("log contains %q:\n%s", secret, out)
		}
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func TestClientConcurrent(t *testing.T) {
	f := newFakeSpark(t)
	c := f.client(t)
	ids := []string{vectorID, sparkID, "f8e7d6c5-b4a3-2109-fedc-ba9876543210"}
	var wg sync.WaitGroup
	errs := make(chan error, 30)
	for i := range 30 {
		wg.Go(func() {
			_, err := c.Do(context.Background(), nayax.CallSettlement, settlement(ids[i%len(ids)]))
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
}

func TestNewClient(t *testing.T) {
	base := func() nayax.ClientConfig {
		return nayax.ClientConfig{
			BaseURL: "https://nayax-spark-dmz.nayax.com/api", IntegratorID: "i", SignKey: "k",
			TokenID: 1, TokenSecret: []byte(specKey),
		}
	}
	tests := []struct {
		name string
		mod  func(*nayax.ClientConfig)
		ok   bool
	}{
		{name: "minimal", mod: func(*nayax.ClientConfig) {}, ok: true},
		{name: "http for tests", mod: func(c *nayax.ClientConfig) { c.BaseURL = "http://127.0.0.1:1/api/" }, ok: true},
		{name: "no BaseURL", mod: func(c *nayax.ClientConfig) { c.BaseURL = "" }},
		{name: "relative BaseURL", mod: func(c *nayax.ClientConfig) { c.BaseURL = "/api" }},
		{name: "ftp BaseURL", mod: func(c *nayax.ClientConfig) { c.BaseURL = "ftp://host/api" }},
		{name: "no IntegratorID", mod: func(c *nayax.ClientConfig) { c.IntegratorID = "" }},
		{name: "no SignKey", mod: func(c *nayax.ClientConfig) { c.SignKey = "" }},
		{name: "no TokenID", mod: func(c *nayax.ClientConfig) { c.TokenID = 0 }},
		{name: "31-byte secret", mod: func(c *nayax.ClientConfig) { c.TokenSecret = c.TokenSecret[:31] }},
		{name: "whole 66-character token", mod: func(c *nayax.ClientConfig) { c.TokenSecret = []byte(strings.Repeat("x", 34) + specKey) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := base()
			tt.mod(&cfg)
			c, err := nayax.NewClient(cfg)
			if tt.ok != (err == nil) || tt.ok != (c != nil) {
				t.Fatalf("NewClient = %v, %v; want ok=%v", c, err, tt.ok)
			}
		})
	}
}
