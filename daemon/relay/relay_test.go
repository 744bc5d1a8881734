package relay_test

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/sitelink/sitelink/daemon/mqtttest"
	"github.com/sitelink/sitelink/daemon/nayax/seeds"
	"github.com/sitelink/sitelink/daemon/nayaxsim"
	"github.com/sitelink/sitelink/daemon/relay"
)

func withStation(t *testing.T, body []byte, station string) []byte {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatal(err)
	}
	m["ServiceStationNumber"], _ = json.Marshal(station)
	out, _ := json.Marshal(m)
	return out
}

func status(t *testing.T, body []byte) (verdict string, code float64, desc string) {
	t.Helper()
	var r struct {
		Status struct {
			Verdict          string
			ErrorCode        float64
			Code             float64
			ErrorDescription string
			StatusMessage    string
		}
	}
	if err := json.Unmarshal(body, &r); err != nil {
		t.Fatalf("answer is not JSON: %v: %s", err, body)
	}
	return r.Status.Verdict, r.Status.ErrorCode + r.Status.Code, r.Status.ErrorDescription + r.Status.StatusMessage
}

// The seed StopCallback, posted verbatim over HTTP, stops the session the
// seed TransactionCallback started, and Nayax gets the seed's answer.
func TestSeedCallbacksOverHTTP(t *testing.T) {
	e := newEnv(t)
	site := e.startEdge("site-http", t.TempDir())
	r := e.startRelay("relay-1", 4*time.Second)
	waitRoute(t, r.url)
	e.sim.Register(seedTxn)

	code, body := post(t, r.url, "/api/TransactionCallback", "application/json", withStation(t, seeds.Get("001_transactioncallback_request.json"), "5"))
	if v, c, d := status(t, body); code != 200 || v != "Approved" {
		t.Fatalf("TransactionCallback: HTTP %d %s %v %s", code, v, c, d)
	}
	session(t, site.api, "charging")
	waitFor(t, 10*time.Second, "energy to settle", func() bool { return session(t, site.api, "charging").EnergyWh >= 20 })

	code, body = post(t, r.url, "/api/StopCallback", "application/json", seeds.Get("000_stopcallback_request.json"))
	var got, want any
	_ = json.Unmarshal(body, &got)
	_ = json.Unmarshal(seeds.Get("000_stopcallback_response.json"), &want)
	gb, _ := json.Marshal(got)
	wb, _ := json.Marshal(want)
	if code != 200 || !bytes.Equal(gb, wb) {
		t.Fatalf("StopCallback: HTTP %d %s, want %s", code, body, wb)
	}
	if contactor(t, site.api, "5") {
		t.Fatal("contactor still closed after the stop")
	}
	if s := session(t, site.api, "settled"); s.NayaxTransactionID != 2004545072 || s.AmountMinor <= 0 {
		t.Fatalf("session %+v", s)
	}
}

// Every path spelling Nayax's docs use reaches the same handler.
func TestPathsCaseInsensitive(t *testing.T) {
	e := newEnv(t)
	e.startEdge("site-paths", t.TempDir())
	r := e.startRelay("relay-1", 2*time.Second)
	waitRoute(t, r.url)
	for _, p := range []string{"/api/StopCallback", "/StopCallback", "/API/stopcallback", "/api/stopCallback/"} {
		code, body := post(t, r.url, p, "application/json", seeds.Get("000_stopcallback_request.json"))
		// No session: the edge answers unknown transaction (27) — the point
		// is that the request got there.
		if v, c, _ := status(t, body); code != 200 || v != "Declined" || c != 27 {
			t.Errorf("%s: HTTP %d %s", p, code, body)
		}
	}
	for _, p := range []string{"/Cortina/PrePaid/Cancel", "/api/Cortina/Prepaid/Cancel", "/cortina/prepaid/void"} {
		code, body := post(t, r.url, p, "application/json", seeds.Get("004_cortina_prepaid_cancel_request.json"))
		if v, c, _ := status(t, body); code != 200 || v != "Declined" || c != 2 {
			t.Errorf("%s: HTTP %d %s", p, code, body)
		}
	}
}

// Bad input gets a Nayax-shaped Declined (or a 4xx where no Nayax shape
// applies), and nothing reaches MQTT.
func TestBadInput(t *testing.T) {
	e := newEnv(t)
	e.startEdge("site-bad", t.TempDir())
	r := e.startRelay("relay-1", 2*time.Second, relay.Header{Name: "X-Nayax-Key", Value: "s3cret"})
	waitRoute(t, r.url)
	key := []string{"X-Nayax-Key", "s3cret"}
	big := []byte(`{"CardHash":"` + strings.Repeat("a", 70<<10) + `"}`)
	cases := []struct {
		name, path, ct string
		body           []byte
		header         []string
		http           int
		code           float64 // 0: no body check
	}{
		{"not JSON", "/api/StopCallback", "application/json", []byte("hello"), key, 200, 26},
		{"not an object", "/api/StopCallback", "application/json", []byte(`[1,2]`), key, 200, 26},
		{"wrong content type", "/api/StopCallback", "text/plain", seeds.Get("000_stopcallback_request.json"), key, 200, 26},
		{"missing mandatory", "/api/StopCallback", "application/json", []byte(`{"MachineId":71234996,"SparkTransactionId":"x"}`), key, 200, 997},
		{"wrong type", "/api/TransactionCallback", "application/json", []byte(`{"MachineId":"abc","AuthStatus":{"Verdict":"Approved"}}`), key, 200, 26},
		{"too large", "/api/StopCallback", "application/json", big, key, 200, 26},
		{"cortina not JSON", "/Cortina/PrePaid/Cancel", "application/json", []byte("{"), key, 200, 8},
		{"cortina missing", "/Cortina/PrePaid/Cancel", "application/json", []byte(`{"BasicInfo":{"Amount":1}}`), key, 200, 997},
		{"cortina too large", "/Cortina/PrePaid/Void", "application/json", big, key, 200, 8},
		{"no secret header", "/api/StopCallback", "application/json", seeds.Get("000_stopcallback_request.json"), nil, 401, 0},
		{"wrong secret header", "/api/StopCallback", "application/json", seeds.Get("000_stopcallback_request.json"), []string{"X-Nayax-Key", "guess"}, 401, 0},
		{"GET", "", "", nil, key, 405, 0},
		{"unknown path", "/api/Nope", "application/json", []byte(`{}`), key, 404, 0},
	}
	from := e.cloud.Mark()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.name == "GET" {
				resp, err := httpGet(r.url + "/api/StopCallback")
				if err != nil || resp != c.http {
					t.Fatalf("GET: %d %v", resp, err)
				}
				return
			}
			code, body := post(t, r.url, c.path, c.ct, c.body, c.header...)
			if code != c.http {
				t.Fatalf("HTTP %d, want %d: %s", code, c.http, body)
			}
			if c.code != 0 {
				if v, got, _ := status(t, body); v != "Declined" || got != c.code {
					t.Fatalf("answer %s, want Declined %v", body, c.code)
				}
			}
		})
	}
	for _, m := range e.cloud.All()[from:] {
		if strings.Contains(m.Topic, "/commands/") {
			t.Fatalf("bad input reached MQTT: %s %s", m.Topic, m.Payload)
		}
	}
}

// A terminal no site controller claims is Declined at once.
func TestUnknownMachine(t *testing.T) {
	e := newEnv(t)
	r := e.startRelay("relay-1", 2*time.Second)
	stop := bytes.Replace(seeds.Get("000_stopcallback_request.json"), []byte("71234996"), []byte("11111111"), 1)
	stop = bytes.Replace(stop, []byte(serial), []byte("999"), 1)
	start := time.Now()
	code, body := post(t, r.url, "/api/StopCallback", "application/json", stop)
	if v, c, _ := status(t, body); code != 200 || v != "Declined" || c != 25 {
		t.Fatalf("HTTP %d %s", code, body)
	}
	if time.Since(start) > time.Second {
		t.Fatalf("unknown machine answered after %v", time.Since(start))
	}
}

// A known but offline node: the stop is queued at the broker and Nayax
// hears 992 at once; the node acts on it when it returns.
func TestOfflineNodeStopQueued(t *testing.T) {
	e := newEnv(t)
	dir := t.TempDir()
	site := e.startEdge("site-off", dir)
	r := e.startRelay("relay-1", 4*time.Second)
	waitRoute(t, r.url)
	post(t, r.url, "/api/TransactionCallback", "application/json", withStation(t, seeds.Get("001_transactioncallback_request.json"), "5"))
	session(t, site.api, "charging")
	site.stop()
	// The relay's own view, not the broker's: the relay reads the state
	// on a connection of its own, maybe after a recorder does.
	waitFor(t, 5*time.Second, "relay sees the node offline", func() bool {
		return relayHealth(t, r.url)["nodes_online"] == 0.0
	})
	start := time.Now()
	code, body := post(t, r.url, "/api/StopCallback", "application/json", seeds.Get("000_stopcallback_request.json"))
	if v, c, d := status(t, body); code != 200 || v != "Declined" || c != 992 || !strings.Contains(d, "queued") {
		t.Fatalf("HTTP %d %s", code, body)
	}
	if time.Since(start) > 2*time.Second {
		t.Fatalf("offline node answered after %v", time.Since(start))
	}
	// Back online: the queued stop is applied (the session was
	// interrupted by the shutdown; the stop finds it ended and is
	// answered, nothing charges).
	site = e.startEdge("site-off", dir)
	waitFor(t, 10*time.Second, "queued stop handled", func() bool {
		for _, m := range e.cloud.All() {
			if strings.Contains(m.Topic, "/site-off/replies/relay-1") {
				return true
			}
		}
		return false
	})
	if contactor(t, site.api, "5") {
		t.Fatal("contactor closed after restart")
	}
}

// A node that does not answer within the budget: 992 just after the
// budget, and the stop stays queued.
func TestAckBudgetExpiry(t *testing.T) {
	e := newEnv(t)
	r := e.startRelay("relay-1", 500*time.Millisecond)
	// A node that announced itself and then hangs: a retained birth, no
	// daemon behind it.
	e.cloud.Publish(prefix+"/nodes/site-hung/state", []byte(`{"online":true,"epoch":3,"version":"x","config_version":0,"machines":[{"machine_id":71234996,"hw_serial":"0434334921100366"}],"stations":["5"],"at":"2026-01-01T00:00:00Z"}`))
	e.own("site-hung", machine, serial)
	waitRoute(t, r.url)
	start := time.Now()
	code, body := post(t, r.url, "/api/StopCallback", "application/json", seeds.Get("000_stopcallback_request.json"))
	took := time.Since(start)
	if v, c, d := status(t, body); code != 200 || v != "Declined" || c != 992 || !strings.Contains(d, "in time") {
		t.Fatalf("HTTP %d %s", code, body)
	}
	if took < 500*time.Millisecond || took > 3*time.Second {
		t.Fatalf("answered after %v with a 500ms budget", took)
	}
	e.cloud.Await(5*time.Second, 0, "the stop queued for the node", func(m mqtttest.Message) bool {
		return m.Topic == prefix+"/nodes/site-hung/commands/stop"
	})
}

// A Cortina Cancel of a charging session stops it; the Track 2 data in
// it appears nowhere on the broker and nowhere in the logs.
func TestCortinaCancelStopsSessionAndDropsCardData(t *testing.T) {
	e := newEnv(t)
	site := e.startEdge("site-cortina", t.TempDir())
	r := e.startRelay("relay-1", 4*time.Second)
	waitRoute(t, r.url)
	e.sim.SetRelay(r.url)
	tap, err := e.sim.Tap(context.Background(), nayaxsim.Terminal{MachineID: machine, HwSerial: serial}, "5", "alice", 20)
	if err != nil || tap.Kind != "authorize" {
		t.Fatalf("tap: %+v %v", tap, err)
	}
	session(t, site.api, "charging")
	const track2 = "4761739001010119=25122011143804400000"
	code, body, err := e.sim.CortinaCancel(context.Background(), tap.Txn.NayaxTransactionID, false, track2)
	if err != nil {
		t.Fatal(err)
	}
	if v, _, _ := status(t, body); code != 200 || v != "Approved" {
		t.Fatalf("Cortina Cancel: HTTP %d %s", code, body)
	}
	if s := session(t, site.api, "cancelled"); s.NayaxTransactionID != tap.Txn.NayaxTransactionID {
		t.Fatalf("session %+v", s)
	}
	if contactor(t, site.api, "5") {
		t.Fatal("contactor closed after Cortina Cancel")
	}
	// Again: idempotent.
	if _, body, _ = e.sim.CortinaCancel(context.Background(), tap.Txn.NayaxTransactionID, true, track2); !bytes.Contains(body, []byte("Approved")) {
		t.Fatalf("second Cortina Void: %s", body)
	}
	for _, m := range e.cloud.All() {
		for _, secret := range []string{track2, "4761739001010119", "Test Card Holder"} {
			if strings.Contains(string(m.Payload), secret) {
				t.Fatalf("card data on MQTT topic %s: %s", m.Topic, m.Payload)
			}
		}
	}
	if logs := e.logs.String(); strings.Contains(logs, "4761739001010119") {
		t.Fatal("card data in the logs")
	}
	// Nothing of our own was sent to Nayax for this session.
	if n := len(e.sim.Requests("ExternalCancel")); n != 0 {
		t.Fatalf("%d ExternalCancel sent after a Cortina Cancel", n)
	}
	// Endpoint labels are words without spaces.
	requireLines(t, scrape(t, r.url),
		`sitelink_relay_requests_total{endpoint="CortinaCancel",verdict="Approved"} 1`,
		`sitelink_relay_requests_total{endpoint="CortinaVoid",verdict="Approved"} 1`,
		`sitelink_relay_request_seconds_count{endpoint="CortinaVoid"} 1`,
	)
}

// Callback headers: Nayax's static custom headers must be present.
func TestCallbackHeaders(t *testing.T) {
	e := newEnv(t)
	e.startEdge("site-hdr", t.TempDir())
	r := e.startRelay("relay-1", 2*time.Second, relay.Header{Name: "X-A", Value: "1"}, relay.Header{Name: "X-B", Value: "2"})
	waitRoute(t, r.url)
	if code, _ := post(t, r.url, "/api/StopCallback", "application/json", seeds.Get("000_stopcallback_request.json"), "X-A", "1"); code != 401 {
		t.Fatalf("one of two headers: HTTP %d", code)
	}
	if code, _ := post(t, r.url, "/api/StopCallback", "application/json", seeds.Get("000_stopcallback_request.json"), "X-A", "1", "X-B", "2"); code != 200 {
		t.Fatalf("both headers: HTTP %d", code)
	}
}

// Decline and Timeout callbacks reach the node, which answers for the
// transaction it knows (here: none).
func TestDeclineAndTimeoutCallbacks(t *testing.T) {
	e := newEnv(t)
	e.startEdge("site-dt", t.TempDir())
	r := e.startRelay("relay-1", 4*time.Second)
	waitRoute(t, r.url)
	for path, body := range map[string]string{
		"/api/DeclineCallback": `{"MachineId":71234996,"HwSerial":"0434334921100366","SparkTransactionId":"12c7cec2-c690-4425-9a1f-db0db60e2d8c","Status":{"Verdict":"Declined","ErrorCode":44,"ErrorDescription":"Timeout on POS Device"}}`,
		"/api/TimeoutCallback": `{"TerminalId":"0434334921100366","MachineId":71234996,"HwSerial":"0434334921100366","SparkTransactionId":"12c7cec2-c690-4425-9a1f-db0db60e2d8c"}`,
	} {
		code, answer := post(t, r.url, path, "application/json", []byte(body))
		if v, c, _ := status(t, answer); code != 200 || v != "Declined" || c != 27 {
			t.Errorf("%s: HTTP %d %s", path, code, answer)
		}
	}
}

// seedTxn is the transaction of the spec's TransactionCallback example, as
// Nayax would know it.
var seedTxn = nayaxsim.Txn{NayaxTransactionID: 2004545072, SparkTransactionID: "12c7cec2-c690-4425-9a1f-db0db60e2d8c",
	SiteID: 2, MachineAuTime: "20240205194122328", MachineID: machine, HwSerial: serial, Station: "5", Amount: 15}
