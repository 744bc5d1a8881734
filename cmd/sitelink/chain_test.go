package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sitelink/sitelink/daemon/localapi"
	"github.com/sitelink/sitelink/daemon/mqtttest"
	"github.com/sitelink/sitelink/daemon/nayax/seeds"
	"github.com/sitelink/sitelink/daemon/nayaxsim"
)

// proc is a sitelink subprocess (this test binary re-executed).
type proc struct {
	cmd *exec.Cmd
	log *bytes.Buffer
}

func spawn(t *testing.T, args ...string) *proc {
	t.Helper()
	p := &proc{log: &bytes.Buffer{}}
	p.cmd = exec.Command(os.Args[0], args...)
	p.cmd.Env = append(os.Environ(), "SITELINK_TEST_MAIN=1")
	p.cmd.Stderr = p.log
	p.cmd.Stdout = p.log
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if p.cmd.ProcessState == nil {
			_ = p.cmd.Process.Signal(syscall.SIGTERM)
			done := make(chan struct{})
			go func() { _ = p.cmd.Wait(); close(done) }()
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				_ = p.cmd.Process.Kill()
			}
		}
		if t.Failed() {
			t.Logf("sitelink %s:\n%s", strings.Join(args, " "), p.log.String())
		}
	})
	return p
}

// The chain as an integrator deploys it: mosquitto, `sitelink run`,
// `sitelink relay` and `sitelink nayaxsim serve` as separate processes;
// Nayax's seed callbacks posted verbatim with curl.
func TestChainWithCurl(t *testing.T) {
	curl, err := exec.LookPath("curl")
	if err != nil {
		t.Skip("curl not installed")
	}
	b := mqtttest.Start(t)
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	simPort := freePort(t)
	relayPort, metricsPort := freePort(t), freePort(t)
	simURL := fmt.Sprintf("http://127.0.0.1:%d", simPort)
	relayURL := fmt.Sprintf("http://127.0.0.1:%d", relayPort)
	metricsURL := fmt.Sprintf("http://127.0.0.1:%d", metricsPort)
	edgeCfg, socket := writeConfig(t, b.URL)
	// Nayax's custom header, set up in its back office and in the relay.
	const authHeader, authValue = "X-Sitelink-Auth", "chain-test-callback-secret"
	relayCfg := write("relay.yaml", fmt.Sprintf(`relay: {id: relay-1, listen: "127.0.0.1:%d", metrics_listen: "127.0.0.1:%d", ack_budget: 4s, card_key_file: %s,
  callback_headers: [{name: %s, value_file: %s}]}
mqtt: {broker: %q, reconnect_min: 100ms, reconnect_max: 500ms}
nayax: {base_url: "%s/api", integrator_id: %s, sign_key_file: %s, token_id: %d, token_secret_file: %s}
`, relayPort, metricsPort, write("card.key", testCardKey+"\n"), authHeader, write("auth.secret", authValue+"\n"), b.URL, simURL, nayaxsim.DefaultIntegratorID, write("sign.key", nayaxsim.DefaultSignKey+"\n"),
		nayaxsim.DefaultTokenID, write("token.secret", nayaxsim.DefaultTokenSecret+"\n")))

	spawn(t, "nayaxsim", "serve", "-listen", fmt.Sprintf("127.0.0.1:%d", simPort), "-relay", relayURL, "-callback-header", authHeader+"="+authValue)
	startDaemon(t, edgeCfg, socket)
	spawn(t, "relay", "-config", relayCfg)
	// The fleet operator gives the site its terminals: the relay's only
	// routes.
	var given, errb bytes.Buffer
	if err := run([]string{"fleet", "terminals", "-broker", b.URL, "-give-from", edgeCfg}, &given, &errb); err != nil {
		t.Fatalf("fleet terminals -give-from: %v\n%s", err, errb.String())
	}
	waitFor(t, "relay routes the terminal", func() bool {
		resp, err := http.Get(metricsURL + "/healthz")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		var h struct {
			Connected        bool
			Nodes, Terminals int
		}
		_ = json.NewDecoder(resp.Body).Decode(&h)
		return h.Connected && h.Nodes == 1 && h.Terminals == 1
	})
	// relay.metrics_listen is the only place of /metrics and /healthz.
	for url, want := range map[string]int{metricsURL + "/metrics": 200, relayURL + "/metrics": 404, relayURL + "/healthz": 404} {
		if resp, err := http.Get(url); err != nil || resp.StatusCode != want {
			t.Fatalf("GET %s: %v %v, want HTTP %d", url, resp.Status, err, want)
		} else {
			resp.Body.Close()
		}
	}

	curlPost := func(path string, body []byte) map[string]any {
		t.Helper()
		f := write("body.json", string(body))
		out, err := exec.Command(curl, "-sS", "--fail", "-H", "Content-Type: application/json", "-H", authHeader+": "+authValue, "--data-binary", "@"+f, relayURL+path).Output()
		if err != nil {
			t.Fatalf("curl %s: %v", path, err)
		}
		var m map[string]any
		if err := json.Unmarshal(out, &m); err != nil {
			t.Fatalf("curl %s answered %q", path, out)
		}
		return m
	}
	auth := withStation(t, seeds.Get("001_transactioncallback_request.json"))
	if got := curlPost("/api/TransactionCallback", auth); got["Status"].(map[string]any)["Verdict"] != "Approved" {
		t.Fatalf("TransactionCallback: %v", got)
	}
	api := localapi.NewClient(socket)
	waitSession(t, api, "charging")
	got := curlPost("/api/StopCallback", seeds.Get("000_stopcallback_request.json"))
	var want map[string]any
	_ = json.Unmarshal(seeds.Get("000_stopcallback_response.json"), &want)
	gb, _ := json.Marshal(got)
	wb, _ := json.Marshal(want)
	if !bytes.Equal(gb, wb) {
		t.Fatalf("StopCallback answered %s, want %s", gb, wb)
	}
	sts, err := api.Stations()
	if err != nil || sts[0].Contactor {
		t.Fatalf("stations after the stop: %+v %v", sts, err)
	}

	// The simulator taps a card through the same chain (external
	// authorization), then a second tap stops it.
	var out bytes.Buffer
	if err := run([]string{"nayaxsim", "tap", "-sim", simURL, "-station", "5", "-card", "bob"}, &out, &out); err != nil {
		t.Fatalf("nayaxsim tap: %v\n%s", err, out.String())
	}
	waitSession(t, api, "charging")
	out.Reset()
	if err := run([]string{"nayaxsim", "tap", "-sim", simURL, "-station", "5", "-card", "bob"}, &out, &out); err != nil || !strings.Contains(out.String(), `"stop"`) {
		t.Fatalf("second tap: %v\n%s", err, out.String())
	}
	// Through the relay to the simulator and back: settled or cancelled
	// (depending on the energy), with Nayax's answer recorded.
	if s := waitSession(t, api, "settled", "cancelled"); s.NayaxTransactionID == 0 {
		t.Fatalf("session %+v", s)
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
