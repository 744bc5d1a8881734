package relay_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sitelink/sitelink/daemon/nayax/seeds"
	"github.com/sitelink/sitelink/daemon/relay"
)

// rawRequest sends one request with its target written as given (no
// client-side cleaning or escaping) and returns the status and body.
func rawRequest(t *testing.T, addr, method, target string) (int, string) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprintf(c, "%s %s HTTP/1.1\r\nHost: relay.example\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", method, target)
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("%s %s: %v", method, target, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// /metrics and /healthz are served on the metrics listener only: the
// public listener answers 404 to every spelling of them that a router,
// a proxy or a load-balancer rule could treat differently.
func TestMetricsOffThePublicListener(t *testing.T) {
	e := newEnv(t)
	r := e.startRelay("relay-1", 2*time.Second)
	public := strings.TrimPrefix(r.url, "http://")
	var aliases []string
	for _, name := range []string{"metrics", "healthz"} {
		up := strings.ToUpper(name)
		title := strings.ToUpper(name[:1]) + name[1:]
		esc := fmt.Sprintf("%%%02X", name[0]) + name[1:] // the first letter percent-encoded
		aliases = append(aliases,
			"/"+name, "/"+up, "/"+title, "/"+name+"/", "/"+up+"/",
			"/api/"+name, "/api/"+title, "/API/"+up, "/api/"+name+"/",
			"/api%2F"+name, "/api%2f"+title, "/"+esc, "/api/"+esc, "/"+name+"%2F",
			"//"+name, "/api//"+name, "/./"+name, "/x/../"+name, "/api/../"+name,
			"/"+name+"?format=prometheus", "/"+name+"#x", "/"+name+";x",
			"http://relay.example/"+name, "*",
		)
	}
	notFound := 0
	for _, path := range aliases {
		for _, method := range []string{"GET", "HEAD", "POST"} {
			code, body := rawRequest(t, public, method, path)
			switch {
			case code == http.StatusNotFound:
				notFound++
			case code == http.StatusBadRequest && (path == "*" || strings.Contains(path, "#")):
				// net/http refuses these before any handler.
			default:
				t.Errorf("public %s %s: HTTP %d, want 404", method, path, code)
			}
			if strings.Contains(body, "sitelink_relay") || strings.Contains(body, `"connected"`) {
				t.Errorf("public %s %s leaks: %.80s", method, path, body)
			}
		}
	}

	admin := strings.TrimPrefix(r.admin, "http://")
	if code, body := rawRequest(t, admin, "GET", "/metrics"); code != 200 || !strings.Contains(body, "sitelink_relay_connected") {
		t.Errorf("metrics listener GET /metrics: HTTP %d %.80s", code, body)
	}
	if code, body := rawRequest(t, admin, "GET", "/healthz"); code != 200 || !strings.Contains(body, `"connected":true`) {
		t.Errorf("metrics listener GET /healthz: HTTP %d %.80s", code, body)
	}
	// And the other way round: no callback on the metrics listener.
	if code, _ := rawRequest(t, admin, "POST", "/api/StopCallback"); code != http.StatusNotFound {
		t.Errorf("metrics listener POST /api/StopCallback: HTTP %d, want 404", code)
	}
	// Every one that reached the router was counted as a refusal.
	if got := metricValue(t, r.url, `sitelink_relay_refused_total{reason="not_found"}`); got != notFound {
		t.Errorf("not_found refusals %d, want %d", got, notFound)
	}
}

// fromAddr is an HTTP client whose connections come from the local
// address ip, so that one test can be several sources.
func fromAddr(ip string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 5 * time.Second}
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DialContext: d.DialContext}}
}

func postWith(t *testing.T, c *http.Client, url string, body []byte) (int, http.Header, []byte) {
	t.Helper()
	resp, err := c.Post(url, "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, b
}

// A source over its rate gets 429 with Retry-After and, on a callback
// path, a Declined 992 in the endpoint's dialect; another source is served
// meanwhile, and the first one again once its tokens come back.
func TestRateLimitPerSource(t *testing.T) {
	e := newEnv(t)
	r := e.startRelayOpts("relay-1", 2*time.Second, nil, func(o *relay.Options) {
		o.RateLimit, o.RateBurst = 2, 5 // a token every 500 ms
	})
	stop := seeds.Get("000_stopcallback_request.json")
	one := fromAddr("127.0.0.1")
	var limited int
	for i := range 8 {
		code, h, body := postWith(t, one, r.url+"/api/StopCallback", stop)
		switch {
		case i < 5 && code != 200:
			t.Fatalf("request %d within the burst: HTTP %d %s", i, code, body)
		case i < 5:
		case code != http.StatusTooManyRequests:
			t.Fatalf("request %d over the burst: HTTP %d %s", i, code, body)
		default:
			limited++
			if v, c, _ := status(t, body); v != "Declined" || c != 992 || h.Get("Retry-After") == "" {
				t.Fatalf("429 answer %s (Retry-After %q), want Declined 992", body, h.Get("Retry-After"))
			}
		}
	}
	code, _, body := postWith(t, one, r.url+"/Cortina/PrePaid/Cancel", seeds.Get("004_cortina_prepaid_cancel_request.json"))
	var cortina struct {
		Status struct {
			Verdict string
			Code    int
		}
	}
	if err := json.Unmarshal(body, &cortina); code != 429 || err != nil || cortina.Status.Code != 992 {
		t.Fatalf("cortina over the rate: HTTP %d %s", code, body)
	}
	if code, _, _ := postWith(t, one, r.url+"/nothing", nil); code != 429 {
		t.Fatalf("unknown path over the rate: HTTP %d", code)
	}
	limited += 2

	// Another address is another source (the whole 127/8 is loopback).
	if code, _, body := postWith(t, fromAddr("127.0.0.2"), r.url+"/api/StopCallback", stop); code != 200 {
		t.Fatalf("another source: HTTP %d %s", code, body)
	}
	time.Sleep(600 * time.Millisecond)
	if code, _, body := postWith(t, one, r.url+"/api/StopCallback", stop); code != 200 {
		t.Fatalf("after a token came back: HTTP %d %s", code, body)
	}
	if got := metricValue(t, r.url, `sitelink_relay_refused_total{reason="rate_limited"}`); got != limited {
		t.Errorf("rate_limited refusals %d, want %d", got, limited)
	}
	if got := metricValue(t, r.url, `sitelink_relay_requests_total{endpoint="StopCallback",verdict="rate_limited"}`); got != 3 {
		t.Errorf("StopCallback rate_limited %d, want 3", got)
	}
}

// The public listener holds at most relay.max_connections: one more is
// reset at once and counted; a freed slot serves again.
func TestConnectionCap(t *testing.T) {
	e := newEnv(t)
	r := e.startRelayOpts("relay-1", 2*time.Second, nil, func(o *relay.Options) { o.MaxConnections = 3 })
	addr := strings.TrimPrefix(r.url, "http://")
	var held []net.Conn
	for range 3 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		held = append(held, c)
	}
	waitFor(t, 5*time.Second, "3 connections open", func() bool {
		return metricValue(t, r.url, "sitelink_relay_connections_open") == 3
	})
	// The reset may even beat the client's connect: either way it is
	// refused at once.
	start := time.Now()
	if over, err := net.Dial("tcp", addr); err == nil {
		defer over.Close()
		_ = over.SetReadDeadline(time.Now().Add(2 * time.Second))
		_, err = over.Read(make([]byte, 1))
		if ne, ok := err.(net.Error); err == nil || (ok && ne.Timeout()) {
			t.Fatalf("connection over the cap: read %v, want it closed", err)
		}
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("connection over the cap closed after %v, want at once", d)
	}
	waitFor(t, 5*time.Second, "the refusal counted", func() bool {
		return metricValue(t, r.url, `sitelink_relay_refused_total{reason="connection_limit"}`) == 1
	})

	held[0].Close()
	nokeep := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	waitFor(t, 5*time.Second, "a freed slot serves again", func() bool {
		resp, err := nokeep.Post(r.url+"/api/StopCallback", "application/json", bytes.NewReader(seeds.Get("000_stopcallback_request.json")))
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
}

// A flood of refused requests writes a bounded number of log lines (one
// summary per interval, one more at shutdown), and every refusal is in the
// metric and in those lines.
func TestRefusalLogBounded(t *testing.T) {
	e := newEnv(t)
	r := e.startRelay("relay-flood", 2*time.Second, relay.Header{Name: "X-Key", Value: "s3cret"})
	before := strings.Count(e.logs.String(), "\n")
	const flood = 3000
	c := &http.Client{Timeout: 5 * time.Second}
	stop := seeds.Get("000_stopcallback_request.json")
	codes := map[int]int{}
	start := time.Now()
	for range flood {
		code, _, _ := postWith(t, c, r.url+"/api/StopCallback", stop)
		codes[code]++
	}
	took := time.Since(start)
	// 401 until the burst is spent, 429 after; nothing gets through.
	if codes[401]+codes[429] != flood || codes[401] < relay.DefaultRateBurst {
		t.Fatalf("answers %v", codes)
	}
	refused := metricValue(t, r.url, `sitelink_relay_refused_total{reason="unauthorized"}`) +
		metricValue(t, r.url, `sitelink_relay_refused_total{reason="rate_limited"}`)
	if refused != flood {
		t.Errorf("refusals counted %d, want %d", refused, flood)
	}
	relayLines := func(from int, match string) []string {
		var out []string
		for _, l := range strings.Split(e.logs.String(), "\n")[from:] {
			if strings.Contains(l, "relay=relay-flood") && strings.Contains(l, match) {
				out = append(out, l)
			}
		}
		return out
	}
	// Nothing per request, at any level: one summary at the first
	// refusal, then one per interval (a minute by default).
	during := relayLines(before, "")
	if len(during) > 1+int(took/time.Minute) {
		t.Fatalf("%d log lines for %d refusals in %v:\n%s", len(during), flood, took, strings.Join(during[:min(len(during), 10)], "\n"))
	}
	r.stop()
	lines := relayLines(before, `msg="requests refused"`)
	logged := 0
	for _, l := range lines {
		var n int
		fmt.Sscan(l[strings.Index(l, " total=")+len(" total="):], &n)
		logged += n
	}
	if logged != flood {
		t.Errorf("summary lines count %d refusals, want %d:\n%s", logged, flood, strings.Join(lines, "\n"))
	}
	t.Logf("%d refused requests in %v: %d log lines (%v)", flood, took.Round(time.Millisecond), len(lines), codes)
}
