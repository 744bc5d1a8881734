package nayaxsim_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/sitelink/sitelink/daemon/nayax"
	"github.com/sitelink/sitelink/daemon/nayaxsim"
)

// devTerm is a terminal set up for Device Start.
var devTerm = nayaxsim.Terminal{MachineID: machineID, HwSerial: serial, DeviceStart: true}

// devRelay is a fake integrator for Device Start and StopNotify: it
// answers StartSession with a cipher built by the test's own AES
// (correct, or wrong in the way start says), InfoQuery/AvailabilityCheck
// with avail, TransactionNotify with notify, and StopNotify by looking
// the card hash up among the sessions it approved.
type devRelay struct {
	tb  testing.TB
	srv *httptest.Server

	mu       sync.Mutex
	got      []got
	start    string // "" good | other-key | other-random | other-id | stale | not-guid | declined | http500
	avail    int
	pos      string
	amount   any    // the InfoQuery answer's Amount; nil leaves it out
	notify   string // TransactionNotify verdict
	stop     string // "" match by card hash | wrong-ids
	sessions map[string]session
}

type session struct {
	spark  string
	nayax  int64
	auTime string
}

func startDevRelay(tb testing.TB) *devRelay {
	r := &devRelay{tb: tb, avail: 1, pos: ";Charging Station:5;Price:0.39 EUR/kWh;", amount: 30, notify: "Approved", sessions: map[string]session{}}
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	tb.Cleanup(r.srv.Close)
	return r
}

func (r *devRelay) set(f func(r *devRelay)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	f(r)
}

func (r *devRelay) serve(w http.ResponseWriter, req *http.Request) {
	b, _ := io.ReadAll(req.Body)
	var m struct {
		Random             string
		SparkTransactionId string
		NayaxTransactionId int64
		CardHash           string
		MachineAuTime      string
		HwSerial           string
		MachineId          int64
	}
	_ = json.Unmarshal(b, &m)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got = append(r.got, got{Path: req.URL.Path, Header: req.Header.Clone(), Body: b})
	status := func(v string) map[string]any { return map[string]any{"Verdict": v} }
	var ans any
	switch strings.ToLower(req.URL.Path) {
	case "/api/startsession":
		id := uuid.NewString()
		at, random, key := now, m.Random, secret
		switch r.start {
		case "other-key":
			key = []byte("0123456789abcdef0123456789abcdef")
		case "other-random":
			random = "ABCDEFGHIJKLMNOPQ"
		case "stale":
			at = now.Add(-10 * time.Minute)
		case "not-guid":
			id = strings.ReplaceAll(id, "-", "x")
		case "declined":
			ans = map[string]any{"Status": map[string]any{"Verdict": "Declined", "ErrorCode": 28, "ErrorDescription": "Invalid Token"}}
		case "http500":
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		inCipher := id
		if r.start == "other-id" {
			inCipher = uuid.NewString()
		}
		if ans == nil {
			ans = map[string]any{"SparkTransactionId": id, "Cipher": encrypt(r.tb, key, inCipher+"="+random+at.UTC().Format("0601021504")), "Status": status("Approved")}
		}
	case "/api/infoquery", "/api/availabilitycheck":
		a := map[string]any{"SparkTransactionId": m.SparkTransactionId, "HwSerial": m.HwSerial, "MachineId": m.MachineId,
			"ServiceStationNumber": "5", "ServiceStationAvailability": r.avail, "PosDisplay": r.pos, "SiteId": 2, "Status": status("Approved")}
		if r.amount != nil {
			a["Amount"] = r.amount
		}
		if r.avail != 1 {
			a["Status"] = status("Declined")
		}
		ans = a
	case "/api/transactionnotify":
		if r.notify == "Approved" {
			r.sessions[m.CardHash] = session{spark: m.SparkTransactionId, nayax: m.NayaxTransactionId, auTime: m.MachineAuTime}
		}
		ans = map[string]any{"NayaxTransactionId": m.NayaxTransactionId, "SparkTransactionId": m.SparkTransactionId, "SiteId": 2, "Status": status(r.notify)}
	case "/api/stopnotify":
		se, ok := r.sessions[m.CardHash]
		if !ok {
			ans = map[string]any{"Status": map[string]any{"Verdict": "Declined", "ErrorCode": 32, "ErrorDescription": "no session for this card"}}
			break
		}
		if r.stop == "wrong-ids" {
			se.nayax++
		}
		ans = map[string]any{"SparkTransactionId": se.spark, "NayaxTransactionId": se.nayax, "SiteId": 2, "StopSiteId": 2,
			"MachineId": m.MachineId, "HwSerial": m.HwSerial, "MachineAuTime": se.auTime, "Status": status("Approved")}
	default: // TransactionCallback, StopCallback: acknowledged
		ans = map[string]any{"SparkTransactionId": m.SparkTransactionId, "Status": status("Approved")}
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(ans)
}

func (r *devRelay) calls() []got {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.got)
}

func (r *devRelay) paths() []string {
	var out []string
	for _, g := range r.calls() {
		out = append(out, g.Path)
	}
	return out
}

// reset forgets the calls received so far.
func (r *devRelay) reset() {
	r.mu.Lock()
	r.got = nil
	r.mu.Unlock()
}

// devSim starts a simulator whose callbacks go to a fresh devRelay with
// a callback header, as a relay is set up.
func devSim(t *testing.T, mod func(*nayaxsim.Options)) (*nayaxsim.Sim, *devRelay) {
	t.Helper()
	s := startSim(t, func(o *nayaxsim.Options) {
		o.CallbackHeaders = map[string]string{"X-Relay-Secret": "s3cret"}
		if mod != nil {
			mod(o)
		}
	})
	r := startDevRelay(t)
	s.SetRelay(r.srv.URL)
	return s, r
}

func keys(m map[string]json.RawMessage) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func TestDeviceStart(t *testing.T) {
	const (
		ss = "/api/StartSession"
		iq = "/api/InfoQuery"
		ac = "/api/AvailabilityCheck"
		tn = "/api/TransactionNotify"
	)
	tests := []struct {
		name      string
		term      nayaxsim.Terminal
		relay     func(r *devRelay)
		amount    float64
		kind      string
		paths     []string
		reason    string  // substring of TapResult.Reason; "" = none
		authAmt   float64 // amount authorized (0: no transaction)
		avail     int
		infoAmt   float64
		acked     bool
		checkBody bool
	}{
		{name: "happy path", term: devTerm, amount: 20, kind: "authorize", paths: []string{ss, iq, tn}, authAmt: 30, avail: 1, infoAmt: 30, acked: true, checkBody: true},
		{name: "AvailabilityCheck with the tap's estimate", term: with3(devTerm), relay: func(r *devRelay) { r.amount = 25 }, amount: 20,
			kind: "authorize", paths: []string{ss, ac, tn}, authAmt: 25, avail: 1, infoAmt: 25, acked: true, checkBody: true},
		{name: "no Amount in the answer: the tap's", term: devTerm, relay: func(r *devRelay) { r.amount = nil }, amount: 20,
			kind: "authorize", paths: []string{ss, iq, tn}, authAmt: 20, avail: 1, acked: true},
		{name: "no Amount anywhere: 15", term: devTerm, relay: func(r *devRelay) { r.amount = nil },
			kind: "authorize", paths: []string{ss, iq, tn}, authAmt: 15, avail: 1, acked: true},
		{name: "cipher under another key", term: devTerm, relay: func(r *devRelay) { r.start = "other-key" }, kind: "refused", paths: []string{ss}, reason: "Cipher"},
		{name: "cipher with another Random", term: devTerm, relay: func(r *devRelay) { r.start = "other-random" }, kind: "refused", paths: []string{ss}, reason: "Random"},
		{name: "cipher for another id", term: devTerm, relay: func(r *devRelay) { r.start = "other-id" }, kind: "refused", paths: []string{ss}, reason: "SparkTransactionId"},
		{name: "cipher 10 minutes old", term: devTerm, relay: func(r *devRelay) { r.start = "stale" }, kind: "refused", paths: []string{ss}, reason: "5 minutes"},
		{name: "SparkTransactionId not a GUID", term: devTerm, relay: func(r *devRelay) { r.start = "not-guid" }, kind: "refused", paths: []string{ss}, reason: "GUID"},
		{name: "StartSession Declined", term: devTerm, relay: func(r *devRelay) { r.start = "declined" }, kind: "refused", paths: []string{ss}, reason: "Declined 28"},
		{name: "StartSession HTTP 500", term: devTerm, relay: func(r *devRelay) { r.start = "http500" }, kind: "refused", paths: []string{ss}, reason: "HTTP 500"},
		{name: "station busy", term: devTerm, relay: func(r *devRelay) { r.avail = 2 }, kind: "unavailable", paths: []string{ss, iq}, reason: "busy", avail: 2, infoAmt: 30},
		{name: "station out of service", term: with3(devTerm), relay: func(r *devRelay) { r.avail = 3 }, kind: "unavailable", paths: []string{ss, ac}, reason: "out of service", avail: 3, infoAmt: 30},
		{name: "TransactionNotify Declined", term: devTerm, relay: func(r *devRelay) { r.notify = "Declined" }, amount: 20,
			kind: "declined", paths: []string{ss, iq, tn}, reason: "not approved", authAmt: 30, avail: 1, infoAmt: 30},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, r := devSim(t, nil)
			if tt.relay != nil {
				r.set(tt.relay)
			}
			res, err := s.Tap(ctx(t), tt.term, "5", "alice", tt.amount)
			if err != nil {
				t.Fatalf("Tap: %v", err)
			}
			if res.Kind != tt.kind || !slices.Equal(r.paths(), tt.paths) {
				t.Fatalf("kind %s after %v (reason %q), want %s after %v", res.Kind, r.paths(), res.Reason, tt.kind, tt.paths)
			}
			if tt.reason == "" && res.Reason != "" || !strings.Contains(res.Reason, tt.reason) {
				t.Errorf("reason %q, want %q", res.Reason, tt.reason)
			}
			if len(res.Calls) != len(tt.paths) || res.HTTPStatus != res.Calls[len(res.Calls)-1].HTTPStatus {
				t.Errorf("calls recorded %+v", res.Calls)
			}
			if res.Availability != tt.avail || res.InfoAmount != tt.infoAmt {
				t.Errorf("availability %d amount %v, want %d %v", res.Availability, res.InfoAmount, tt.avail, tt.infoAmt)
			}
			if tt.avail != 0 && res.PosDisplay != ";Charging Station:5;Price:0.39 EUR/kWh;" {
				t.Errorf("PosDisplay %q", res.PosDisplay)
			}
			for _, c := range r.calls() {
				if c.Header.Get("X-Relay-Secret") != "s3cret" || !strings.HasPrefix(c.Header.Get("Content-Type"), "application/json") {
					t.Errorf("%s headers %v", c.Path, c.Header)
				}
			}
			txns := s.Txns()
			if tt.authAmt == 0 {
				if len(txns) != 0 {
					t.Errorf("transactions made: %+v", txns)
				}
				return
			}
			tx := res.Txn
			if len(txns) != 1 || txns[0] != tx || tx.Amount != tt.authAmt || tx.Flow != nayaxsim.FlowDeviceStart || tx.Remote ||
				tx.Acked != tt.acked || tx.State != nayaxsim.StateAuthorized || tx.Station != "5" || tx.SiteID != 2 ||
				tx.CardHash != nayaxsim.CardHash("alice") || tx.MachineAuTime[:12] != "202602041044" {
				t.Errorf("transaction %+v, txns %+v", tx, txns)
			}
			calls := r.calls()
			var startAns struct{ SparkTransactionId string }
			_ = json.Unmarshal(res.Calls[0].Response, &startAns)
			if tx.SparkTransactionID != startAns.SparkTransactionId {
				t.Errorf("SparkTransactionId %s, StartSession answered %s", tx.SparkTransactionID, startAns.SparkTransactionId)
			}
			if !tt.checkBody {
				return
			}
			// StartSession: exactly the schema's members, decodable by sitelink.
			start := calls[0].json(t)
			if got := keys(start); !slices.Equal(got, []string{"HwSerial", "MachineId", "Random", "TokenId"}) ||
				str(start["HwSerial"]) != serial || string(start["MachineId"]) != itoa(machineID) || string(start["TokenId"]) != strconv.Itoa(tokenID) ||
				!regexp.MustCompile(`^[A-Za-z0-9]{17}$`).MatchString(str(start["Random"])) {
				t.Errorf("StartSession body %s", calls[0].Body)
			}
			if _, err := nayax.DecodeStartSession(calls[0].Body); err != nil {
				t.Errorf("sitelink's decoder rejects StartSession: %v", err)
			}
			// InfoQuery / AvailabilityCheck.
			info := calls[1].json(t)
			wantKeys := []string{"HwSerial", "MachineId", "ServiceStationNumber", "SiteId", "SparkTransactionId"}
			if tt.term.AvailabilityCheck {
				wantKeys = []string{"Amount", "HwSerial", "MachineId", "ServiceStationNumber", "SiteId", "SparkTransactionId"}
				if string(info["Amount"]) != "20" {
					t.Errorf("AvailabilityCheck estimate %s, want the tap's 20", info["Amount"])
				}
			}
			if got := keys(info); !slices.Equal(got, wantKeys) || str(info["SparkTransactionId"]) != tx.SparkTransactionID ||
				str(info["ServiceStationNumber"]) != "5" || string(info["SiteId"]) != "2" || str(info["HwSerial"]) != serial || string(info["MachineId"]) != itoa(machineID) {
				t.Errorf("%s body %s", calls[1].Path, calls[1].Body)
			}
			if _, err := nayax.DecodeInfoQuery(calls[1].Body); err != nil {
				t.Errorf("sitelink's decoder rejects %s: %v", calls[1].Path, err)
			}
			// TransactionNotify: every member of the schema.
			notify := calls[2].json(t)
			if got := keys(notify); !slices.Equal(got, []string{"Amount", "CardHash", "CardLast4Digits", "CardUid", "HwSerial", "MachineAuTime", "MachineId",
				"NayaxTransactionId", "ServiceStationNumber", "SiteId", "SparkTransactionId"}) {
				t.Errorf("TransactionNotify members %v", got)
			}
			dec, err := nayax.DecodeTransactionNotify(calls[2].Body)
			if err != nil {
				t.Fatalf("sitelink's decoder rejects TransactionNotify: %v", err)
			}
			if dec.NayaxTransactionId.V != tx.NayaxTransactionID || dec.SparkTransactionId.S != tx.SparkTransactionID || dec.Amount.V != tx.Amount ||
				dec.CardHash.S != tx.CardHash || dec.CardLast4Digits.S != tx.CardLast4 || dec.CardUid.S == "" || dec.ServiceStationNumber.S != "5" ||
				string(notify["SiteId"]) != "2" || dec.MachineAuTime.S != tx.MachineAuTime || dec.HwSerial.S != serial || dec.MachineId.V != machineID {
				t.Errorf("TransactionNotify %s for %+v", calls[2].Body, tx)
			}
		})
	}
}

func with3(t nayaxsim.Terminal) nayaxsim.Terminal {
	t.AvailabilityCheck = true
	return t
}

// A Device Start transaction ends like a Remote Start one: Settlement or
// CancelTransaction (the StartSession counts as authentication), never
// the external calls. A declined TransactionNotify leaves it for the
// integrator's CancelTransaction.
func TestDeviceStartSettleCancel(t *testing.T) {
	s, r := devSim(t, nil)
	a := tap2(t, s, devTerm, "5", "alice", 0)
	b := tap2(t, s, devTerm, "6", "bob", 0)
	r.set(func(r *devRelay) { r.notify = "Declined" })
	c := tap2(t, s, devTerm, "7", "carol", 0)
	if a.Kind != "authorize" || b.Kind != "authorize" || c.Kind != "declined" {
		t.Fatalf("taps: %s %s %s", a.Kind, b.Kind, c.Kind)
	}
	steps := []struct {
		name  string
		call  string
		body  map[string]any
		tx    nayaxsim.Txn
		code  int
		state string
	}{
		{"ExternalSettlement refused", "ExternalSettlement", settleBody(a.Txn, 10), a.Txn, 32, nayaxsim.StateAuthorized},
		{"ExternalCancel refused", "ExternalCancel", cancelBody(b.Txn), b.Txn, 32, nayaxsim.StateAuthorized},
		{"Settlement by the machine id", "Settlement", with(settleBody(a.Txn, 12.25), "TerminalId", itoa(machineID), "TerminalIdType", 2), a.Txn, 0, nayaxsim.StateSettled},
		{"second Settlement", "Settlement", settleBody(a.Txn, 12.25), a.Txn, 28, nayaxsim.StateSettled},
		{"Settlement above the authorized amount", "Settlement", settleBody(b.Txn, 31), b.Txn, 26, nayaxsim.StateAuthorized},
		{"Settlement naming another terminal", "Settlement", with(settleBody(b.Txn, 5), "TerminalId", "999"), b.Txn, 32, nayaxsim.StateAuthorized},
		{"CancelTransaction", "CancelTransaction", with(cancelBody(b.Txn), "ReasonCode", 75), b.Txn, 0, nayaxsim.StateCancelled},
		{"CancelTransaction after a declined TransactionNotify", "CancelTransaction", cancelBody(c.Txn), c.Txn, 0, nayaxsim.StateCancelled},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			want(t, call(t, s, st.call, st.body, st.tx.SparkTransactionID, nil), st.code)
			if got, _ := s.Txn(st.tx.NayaxTransactionID); got.State != st.state {
				t.Errorf("state %s, want %s", got.State, st.state)
			}
		})
	}
	if got, _ := s.Txn(a.Txn.NayaxTransactionID); got.SettledAmount != 12.25 || got.Settles != 2 {
		t.Errorf("settled %+v", got)
	}
	// A registered Device Start transaction settles the same way.
	reg := nayaxsim.Txn{NayaxTransactionID: 42, SparkTransactionID: "0d7b1c8e-9a6f-4b57-8a52-3f8f8e0c0b11", SiteID: 2, MachineID: machineID,
		HwSerial: serial, Amount: 10, MachineAuTime: "20260204104430000", Flow: nayaxsim.FlowDeviceStart}
	s.Register(reg)
	want(t, call(t, s, "Settlement", settleBody(reg, 10), reg.SparkTransactionID, nil), 0)
}

// tap2 taps on terminal tm and fails the test on a transport error.
func tap2(t *testing.T, s *nayaxsim.Sim, tm nayaxsim.Terminal, station, card string, amount float64) nayaxsim.TapResult {
	t.Helper()
	res, err := s.Tap(ctx(t), tm, station, card, amount)
	if err != nil {
		t.Fatalf("Tap: %v", err)
	}
	return res
}

func TestStopNotify(t *testing.T) {
	stopTerm := nayaxsim.Terminal{MachineID: machineID, HwSerial: serial, DeviceStart: true, StopNotify: true}
	other := nayaxsim.Terminal{MachineID: 555, HwSerial: "0999", DeviceStart: true} // StopCallback
	// The settings come from Options; taps name the terminal plainly.
	s, r := devSim(t, func(o *nayaxsim.Options) { o.Terminals = []nayaxsim.Terminal{stopTerm, other} })
	plain := nayaxsim.Terminal{MachineID: machineID}
	alice := tap2(t, s, plain, "5", "alice", 0)
	if alice.Kind != "authorize" {
		t.Fatalf("alice: %+v", alice)
	}

	type step struct {
		name    string
		do      func() (nayaxsim.TapResult, error)
		path    string
		station string // ServiceStationNumber sent; "" = left out
		hash    string
		verdict string
		stopped int64 // NayaxTransactionId that must now be stopped
		reason  string
	}
	var bobTx nayaxsim.Txn
	wantStopped := map[int64]bool{}
	steps := []step{
		{name: "unknown card: Declined, nothing stops", do: func() (nayaxsim.TapResult, error) { return s.StopTap(ctx(t), plain, "5", "bob") },
			path: "/api/StopNotify", station: "5", hash: nayaxsim.CardHash("bob"), verdict: "Declined"},
		{name: "a tap of the paying card is a StopNotify", do: func() (nayaxsim.TapResult, error) { return s.Tap(ctx(t), plain, "5", "alice", 0) },
			path: "/api/StopNotify", station: "5", hash: nayaxsim.CardHash("alice"), verdict: "Approved", stopped: alice.Txn.NayaxTransactionID},
		{name: "no station: ServiceStationNumber left out", do: func() (nayaxsim.TapResult, error) {
			bobTx = tap2(t, s, plain, "6", "bob", 0).Txn
			r.reset()
			return s.StopTap(ctx(t), plain, "", "bob")
		}, path: "/api/StopNotify", hash: nayaxsim.CardHash("bob"), verdict: "Approved", stopped: -1},
		{name: "Approved with the wrong ids: a reason, nothing stops", do: func() (nayaxsim.TapResult, error) {
			tap2(t, s, plain, "7", "dave", 0)
			r.set(func(r *devRelay) { r.stop = "wrong-ids" })
			r.reset()
			return s.StopTap(ctx(t), plain, "7", "dave")
		}, path: "/api/StopNotify", station: "7", hash: nayaxsim.CardHash("dave"), verdict: "Approved", reason: "not one this card has open"},
		{name: "Approved for a card without a session: a reason", do: func() (nayaxsim.TapResult, error) {
			r.set(func(r *devRelay) {
				r.stop = ""
				r.sessions[nayaxsim.CardHash("erin")] = session{spark: uuid.NewString(), nayax: 7, auTime: "20260204104430000"}
			})
			r.reset()
			return s.StopTap(ctx(t), plain, "7", "erin")
		}, path: "/api/StopNotify", station: "7", hash: nayaxsim.CardHash("erin"), verdict: "Approved", reason: "no open transaction"},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			r.reset()
			res, err := st.do()
			if err != nil {
				t.Fatal(err)
			}
			calls := r.calls()
			if res.Kind != "stop" || len(calls) != 1 || calls[0].Path != st.path {
				t.Fatalf("kind %s, calls %v", res.Kind, r.paths())
			}
			body := calls[0].json(t)
			wantKeys := []string{"CardHash", "CardLast4Digits", "CardUid", "HwSerial", "MachineId", "StopSiteId"}
			if st.station != "" {
				wantKeys = append(wantKeys, "ServiceStationNumber")
				slices.Sort(wantKeys)
			}
			if got := keys(body); !slices.Equal(got, wantKeys) || str(body["CardHash"]) != st.hash || string(body["StopSiteId"]) != "2" ||
				str(body["ServiceStationNumber"]) != st.station || str(body["HwSerial"]) != serial || string(body["MachineId"]) != itoa(machineID) {
				t.Errorf("StopNotify body %s", calls[0].Body)
			}
			if calls[0].Header.Get("X-Relay-Secret") != "s3cret" {
				t.Errorf("headers %v", calls[0].Header)
			}
			if _, err := nayax.DecodeStopNotify(calls[0].Body); err != nil {
				t.Errorf("sitelink's decoder rejects StopNotify: %v", err)
			}
			var v struct{ Status struct{ Verdict string } }
			_ = json.Unmarshal(res.Response, &v)
			if v.Status.Verdict != st.verdict {
				t.Errorf("verdict %s, want %s", v.Status.Verdict, st.verdict)
			}
			if st.reason == "" && res.Reason != "" || !strings.Contains(res.Reason, st.reason) {
				t.Errorf("reason %q, want %q", res.Reason, st.reason)
			}
			stopped := st.stopped
			if stopped == -1 {
				stopped = bobTx.NayaxTransactionID
			}
			if stopped != 0 {
				wantStopped[stopped] = true
				if res.Txn.NayaxTransactionID != stopped || !res.Txn.Stopped {
					t.Errorf("result names %+v, want %d stopped", res.Txn, stopped)
				}
			}
			for _, tx := range s.Txns() {
				if tx.Stopped != wantStopped[tx.NayaxTransactionID] {
					t.Errorf("transaction %d stopped = %v", tx.NayaxTransactionID, tx.Stopped)
				}
			}
		})
	}
	if n := len(s.Callbacks("StopCallback")); n != 0 {
		t.Errorf("%d StopCallbacks on a StopNotify terminal", n)
	}

	// On a terminal without StopNotify: StopCallback with the card's
	// session, also for a session started at another terminal of the site.
	t.Run("StopCallback terminal", func(t *testing.T) {
		carol := tap2(t, s, plain, "8", "carol", 0) // on the StopNotify terminal
		r.reset()
		res := tap2(t, s, nayaxsim.Terminal{MachineID: 555}, "1", "carol", 0) // carol at the other terminal: a stop
		calls := r.calls()
		if res.Kind != "stop" || len(calls) != 1 || calls[0].Path != "/api/StopCallback" || res.Txn.NayaxTransactionID != carol.Txn.NayaxTransactionID {
			t.Fatalf("stop at another terminal: %+v, calls %v", res, r.paths())
		}
		body := calls[0].json(t)
		if str(body["SparkTransactionId"]) != carol.Txn.SparkTransactionID || string(body["NayaxTransactionId"]) != itoa(carol.Txn.NayaxTransactionID) ||
			str(body["HwSerial"]) != "0999" || string(body["MachineId"]) != "555" {
			t.Errorf("StopCallback body %s", calls[0].Body)
		}
		if tx, _ := s.Txn(carol.Txn.NayaxTransactionID); !tx.Stopped {
			t.Errorf("carol's session not stopped")
		}
		if _, err := s.StopTap(ctx(t), nayaxsim.Terminal{MachineID: 555}, "1", "nobody"); !errors.Is(err, nayaxsim.ErrUnknownTransaction) {
			t.Errorf("StopCallback with nothing to name: %v", err)
		}
	})
}

// A terminal's settings are remembered: once tapped with DeviceStart, a
// tap naming it by an id alone runs Device Start again. A pending
// TriggerTransaction on it still takes the card (Remote Start).
func TestDeviceStartSettingsAndTrigger(t *testing.T) {
	s, r := devSim(t, nil)
	first := tap2(t, s, devTerm, "5", "alice", 0)
	second := tap2(t, s, nayaxsim.Terminal{HwSerial: serial}, "6", "bob", 0)
	if first.Kind != "authorize" || second.Kind != "authorize" || second.Txn.Flow != nayaxsim.FlowDeviceStart || second.Txn.MachineID != machineID {
		t.Fatalf("taps: %+v %+v", first, second)
	}
	if n := len(s.Callbacks("StartSession")); n != 2 {
		t.Errorf("%d StartSessions, want 2", n)
	}
	// Two Randoms: fresh each time.
	var r1, r2 struct{ Random string }
	ss := s.Callbacks("StartSession")
	_ = json.Unmarshal(ss[0].Body, &r1)
	_ = json.Unmarshal(ss[1].Body, &r2)
	if r1.Random == r2.Random {
		t.Errorf("Random reused: %s", r1.Random)
	}

	id := "12c7cec2-c690-4425-9a1f-db0db60e2d8c"
	authenticate(t, s, id)
	want(t, call(t, s, "TriggerTransaction", map[string]any{"SparkTransactionId": id, "TerminalId": serial, "TerminalIdType": 1, "Amount": 11}, id, nil), 0)
	r.reset()
	res := tap2(t, s, nayaxsim.Terminal{MachineID: machineID}, "7", "carol", 0)
	if res.Kind != "authorize" || !res.Txn.Remote || res.Txn.Flow != nayaxsim.FlowRemoteStart || res.Txn.SparkTransactionID != id ||
		!slices.Equal(r.paths(), []string{"/api/TransactionCallback"}) {
		t.Errorf("tap with a trigger pending: %+v %v", res, r.paths())
	}
	if ext := tap2(t, s, nayaxsim.Terminal{MachineID: 1}, "1", "dave", 0).Txn; ext.Flow != nayaxsim.FlowExternal || ext.Remote {
		t.Errorf("external authorization: %+v", ext)
	}
}

// Concurrent Device Start taps on several stations keep the simulator's
// state consistent (run with -race).
func TestDeviceStartConcurrent(t *testing.T) {
	s, _ := devSim(t, nil)
	const n = 8
	var wg sync.WaitGroup
	results := make([]nayaxsim.TapResult, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := s.Tap(ctx(t), devTerm, strconv.Itoa(i), fmt.Sprintf("card-%d", i), 10)
			if err != nil {
				t.Error(err)
			}
			results[i] = res
		}()
	}
	wg.Wait()
	ids := map[string]bool{}
	for _, res := range results {
		if res.Kind != "authorize" || ids[res.Txn.SparkTransactionID] {
			t.Errorf("tap %+v", res)
		}
		ids[res.Txn.SparkTransactionID] = true
	}
	if len(s.Txns()) != n {
		t.Errorf("%d transactions", len(s.Txns()))
	}
}

func TestDeviceControlAPI(t *testing.T) {
	s, r := devSim(t, nil)
	c := nayaxsim.Client(s.BaseURL())
	res, err := c.Tap(ctx(t), nayaxsim.TapRequest{MachineID: machineID, HwSerial: serial, Station: "5", Card: "alice", Amount: 20,
		DeviceStart: true, StopNotify: true, AvailabilityCheck: true})
	if err != nil || res.Kind != "authorize" || res.Txn.Flow != "device-start" || res.Availability != 1 || res.PosDisplay == "" || len(res.Calls) != 3 {
		t.Fatalf("control tap: %v %+v", err, res)
	}
	if p := r.paths(); p[1] != "/api/AvailabilityCheck" {
		t.Errorf("paths %v", p)
	}
	res, err = c.StopTap(ctx(t), nayaxsim.StopTapRequest{MachineID: machineID, Station: "5", Card: "alice"})
	if err != nil || res.Kind != "stop" || !res.Txn.Stopped || res.Reason != "" {
		t.Fatalf("control stop-tap: %v %+v", err, res)
	}
	if _, err := c.StopTap(ctx(t), nayaxsim.StopTapRequest{MachineID: 1, Station: "5", Card: "alice"}); !errors.Is(err, nayaxsim.ErrControl) ||
		!strings.Contains(err.Error(), "404") {
		t.Errorf("stop-tap with nothing to name: %v", err)
	}
	if _, err := c.StopTap(ctx(t), nayaxsim.StopTapRequest{Station: "5", Card: "alice"}); !errors.Is(err, nayaxsim.ErrControl) {
		t.Errorf("stop-tap without a terminal: %v", err)
	}
}
