package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/sitelink/sitelink/daemon/nayax"
	"github.com/sitelink/sitelink/daemon/nayaxsim"
)

// deviceRelay is a minimal integrator for the CLI test: a correct
// StartSession cipher, station 5 available, TransactionNotify approved,
// StopNotify approved for the card that paid.
type deviceRelay struct {
	mu       sync.Mutex
	paths    []string
	sessions map[string][2]any // CardHash → SparkTransactionId, NayaxTransactionId
}

func (d *deviceRelay) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	var m struct {
		Random             string
		SparkTransactionId string
		NayaxTransactionId int64
		CardHash           string
	}
	_ = json.Unmarshal(b, &m)
	d.mu.Lock()
	defer d.mu.Unlock()
	d.paths = append(d.paths, r.URL.Path)
	approved := map[string]any{"Verdict": "Approved"}
	var ans any
	switch r.URL.Path {
	case "/api/StartSession":
		id := uuid.NewString()
		cipher, err := nayax.Cipher(id, m.Random, time.Now(), []byte(nayaxsim.DefaultTokenSecret))
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		ans = map[string]any{"SparkTransactionId": id, "Cipher": cipher, "Status": approved}
	case "/api/InfoQuery", "/api/AvailabilityCheck":
		ans = map[string]any{"SparkTransactionId": m.SparkTransactionId, "ServiceStationAvailability": 1, "Amount": 25,
			"PosDisplay": ";Charging Station:5;Price:0.39 EUR/kWh;", "SiteId": 2, "Status": approved}
	case "/api/TransactionNotify":
		d.sessions[m.CardHash] = [2]any{m.SparkTransactionId, m.NayaxTransactionId}
		ans = map[string]any{"SparkTransactionId": m.SparkTransactionId, "NayaxTransactionId": m.NayaxTransactionId, "Status": approved}
	case "/api/StopNotify":
		se, ok := d.sessions[m.CardHash]
		if !ok {
			ans = map[string]any{"Status": map[string]any{"Verdict": "Declined", "ErrorCode": 32}}
			break
		}
		ans = map[string]any{"SparkTransactionId": se[0], "NayaxTransactionId": se[1], "Status": approved}
	default:
		ans = map[string]any{"Status": approved}
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(ans)
}

func (d *deviceRelay) seen() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	p := slices.Clone(d.paths)
	d.paths = nil
	return p
}

// TestNayaxsimDeviceStartCLI drives Device Start and StopNotify through
// `sitelink nayaxsim tap` and `stop-tap` against a running simulator.
func TestNayaxsimDeviceStartCLI(t *testing.T) {
	relay := &deviceRelay{sessions: map[string][2]any{}}
	rs := httptest.NewServer(relay)
	t.Cleanup(rs.Close)
	sim, err := nayaxsim.Start(nayaxsim.Options{RelayURL: rs.URL})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sim.Close() })
	simURL := sim.BaseURL()

	tests := []struct {
		name    string
		args    []string
		kind    string
		paths   []string
		check   func(t *testing.T, res nayaxsim.TapResult)
		usage   bool // exit 2 with the usage text
		errLike string
	}{
		{name: "device start with AvailabilityCheck",
			args:  []string{"tap", "-station", "5", "-card", "alice", "-amount", "20", "-device-start", "-stop-notify", "-availability-check"},
			kind:  "authorize",
			paths: []string{"/api/StartSession", "/api/AvailabilityCheck", "/api/TransactionNotify"},
			check: func(t *testing.T, res nayaxsim.TapResult) {
				if res.Txn.Flow != "device-start" || res.Txn.Amount != 25 || !res.Txn.Acked || res.Availability != 1 ||
					res.PosDisplay != ";Charging Station:5;Price:0.39 EUR/kWh;" || res.InfoAmount != 25 || res.Reason != "" {
					t.Errorf("result %+v", res)
				}
			}},
		{name: "stop-tap by an unknown card: StopNotify, Declined",
			args: []string{"stop-tap", "-station", "5", "-card", "bob"}, kind: "stop", paths: []string{"/api/StopNotify"},
			check: func(t *testing.T, res nayaxsim.TapResult) {
				if !strings.Contains(string(res.Response), "Declined") || res.Txn.Stopped {
					t.Errorf("result %+v", res)
				}
			}},
		{name: "tap of the paying card: a StopNotify stop",
			args: []string{"tap", "-station", "5", "-card", "alice"}, kind: "stop", paths: []string{"/api/StopNotify"},
			check: func(t *testing.T, res nayaxsim.TapResult) {
				if !res.Txn.Stopped || res.Reason != "" {
					t.Errorf("result %+v", res)
				}
			}},
		{name: "stop-tap on a StopCallback terminal with nothing to stop",
			args: []string{"stop-tap", "-station", "1", "-card", "carol", "-machine-id", "42", "-hw-serial", "0042"}, errLike: "404"},
		{name: "stop-tap without -card", args: []string{"stop-tap", "-station", "5"}, usage: true},
		{name: "stop-tap without -station", args: []string{"stop-tap", "-card", "alice"}, usage: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			err := run(append([]string{"nayaxsim", tt.args[0], "-sim", simURL}, tt.args[1:]...), &stdout, &stderr)
			switch {
			case tt.usage:
				var code exitCode
				if !errors.As(err, &code) || code != 2 || !strings.Contains(stderr.String(), "sitelink nayaxsim stop-tap -station N -card NAME") {
					t.Fatalf("err %v, stderr %s", err, stderr.String())
				}
				return
			case tt.errLike != "":
				if err == nil || !strings.Contains(err.Error(), tt.errLike) {
					t.Fatalf("err %v, want %s", err, tt.errLike)
				}
				return
			case err != nil:
				t.Fatalf("%v\n%s", err, stderr.String())
			}
			var res nayaxsim.TapResult
			if err := json.Unmarshal(stdout.Bytes(), &res); err != nil {
				t.Fatalf("output is not a TapResult: %v\n%s", err, stdout.String())
			}
			if got := relay.seen(); res.Kind != tt.kind || !slices.Equal(got, tt.paths) {
				t.Fatalf("kind %s (reason %q) after %v, want %s after %v", res.Kind, res.Reason, got, tt.kind, tt.paths)
			}
			tt.check(t, res)
		})
	}

	var stderr bytes.Buffer
	if err := run([]string{"nayaxsim"}, io.Discard, &stderr); err == nil {
		t.Fatal("nayaxsim without a subcommand: no error")
	}
	for _, flag := range []string{"-device-start", "-stop-notify", "-availability-check", "stop-tap"} {
		if !strings.Contains(stderr.String(), flag) {
			t.Errorf("usage does not mention %s:\n%s", flag, stderr.String())
		}
	}
}
