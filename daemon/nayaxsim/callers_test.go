package nayaxsim_test

import (
	"encoding/json"
	"errors"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/sitelink/sitelink/daemon/nayax"
	"github.com/sitelink/sitelink/daemon/nayaxsim"
)

func TestTapSequence(t *testing.T) {
	s := startSim(t, func(o *nayaxsim.Options) {
		o.CallbackHeaders = map[string]string{"X-Relay-Secret": "s3cret"}
	})
	r := startRelay(t)
	s.SetRelay(r.srv.URL)

	type step struct {
		card     string
		kind     string
		path     string
		hash     string // CardHash the callback must carry
		verdict  string // relay's answer
		newTxn   bool   // a different transaction than the previous step's
		stopped  bool
		wantOpen bool // station still has the transaction open afterwards
	}
	alice, bob := nayaxsim.CardHash("alice"), nayaxsim.CardHash("bob")
	steps := []step{
		{card: "alice", kind: "authorize", path: "/api/TransactionCallback", hash: alice, verdict: "Approved", newTxn: true, wantOpen: true},
		{card: "bob", kind: "stop", path: "/api/StopCallback", hash: bob, verdict: "Declined", wantOpen: true},
		{card: "alice", kind: "stop", path: "/api/StopCallback", hash: alice, verdict: "Approved", stopped: true},
		{card: "bob", kind: "authorize", path: "/api/TransactionCallback", hash: bob, verdict: "Approved", newTxn: true, wantOpen: true},
	}
	if alice == bob || alice != nayaxsim.CardHash("alice") || !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(alice) {
		t.Fatalf("card hashes: alice %s bob %s", alice, bob)
	}
	var prev nayaxsim.Txn
	for i, st := range steps {
		t.Run(strconv.Itoa(i)+" "+st.card+" "+st.kind, func(t *testing.T) {
			res := tap(t, s, "5", st.card, 20)
			cb := r.last(t)
			body := cb.json(t)
			if res.Kind != st.kind || cb.Path != st.path || res.HTTPStatus != 200 {
				t.Fatalf("tap: kind %s path %s HTTP %d", res.Kind, cb.Path, res.HTTPStatus)
			}
			if cb.Header.Get("X-Relay-Secret") != "s3cret" || !strings.HasPrefix(cb.Header.Get("Content-Type"), "application/json") {
				t.Errorf("callback headers %v", cb.Header)
			}
			if got := str(body["CardHash"]); got != st.hash {
				t.Errorf("CardHash %s, want %s", got, st.hash)
			}
			if (res.Txn.NayaxTransactionID != prev.NayaxTransactionID) != st.newTxn {
				t.Errorf("new transaction = %v, want %v", res.Txn.NayaxTransactionID != prev.NayaxTransactionID, st.newTxn)
			}
			if res.Txn.Stopped != st.stopped {
				t.Errorf("Stopped = %v", res.Txn.Stopped)
			}
			var verdict struct{ Status struct{ Verdict string } }
			_ = json.Unmarshal(res.Response, &verdict)
			if verdict.Status.Verdict != st.verdict {
				t.Errorf("relay verdict %s, want %s", verdict.Status.Verdict, st.verdict)
			}
			tx := res.Txn
			if string(body["NayaxTransactionId"]) != itoa(tx.NayaxTransactionID) || str(body["SparkTransactionId"]) != tx.SparkTransactionID ||
				str(body["ServiceStationNumber"]) != "5" || str(body["HwSerial"]) != serial || string(body["MachineId"]) != itoa(machineID) ||
				str(body["MachineAuTime"]) != tx.MachineAuTime {
				t.Errorf("callback ids do not match the transaction %+v: %s", tx, cb.Body)
			}
			if st.kind == "authorize" {
				checkAuthorization(t, body, tx)
			}
			prev = tx
		})
	}
	if n := len(s.Txns()); n != 2 {
		t.Errorf("%d transactions, want 2", n)
	}
	if n := len(s.Callbacks("StopCallback")); n != 2 {
		t.Errorf("%d StopCallbacks recorded, want 2", n)
	}
}

// checkAuthorization checks a TransactionCallback against Nayax's shape
// and sitelink's own decoder (the contract the relay relies on).
func checkAuthorization(t *testing.T, body map[string]json.RawMessage, tx nayaxsim.Txn) {
	t.Helper()
	if string(body["SiteId"]) != "2" || tx.SiteID != 2 {
		t.Errorf("SiteId %s", body["SiteId"])
	}
	if !regexp.MustCompile(`^20\d{15}$`).MatchString(tx.MachineAuTime) || tx.MachineAuTime[:12] != "202602041044" {
		t.Errorf("MachineAuTime %s, want yyyyMMddHHmmssSSS of the clock", tx.MachineAuTime)
	}
	if tx.NayaxTransactionID < 1_000_000_000 {
		t.Errorf("NayaxTransactionId %d has fewer than 10 digits", tx.NayaxTransactionID)
	}
	b, _ := json.Marshal(body)
	req, err := nayax.DecodeTransactionCallback(b)
	if err != nil {
		t.Fatalf("sitelink's decoder rejects the callback: %v", err)
	}
	if !req.AuthStatus.IsApproved() || req.Amount.V != tx.Amount || req.NayaxTransactionId.V != tx.NayaxTransactionID {
		t.Errorf("decoded callback %+v", req)
	}
}

func str(raw json.RawMessage) string {
	var s string
	_ = json.Unmarshal(raw, &s)
	return s
}

func TestTapOtherStationsAndRefusals(t *testing.T) {
	s := startSim(t, nil)
	r := startRelay(t)
	s.SetRelay(r.srv.URL)
	a := tap(t, s, "5", "alice", 20)
	b := tap(t, s, "6", "alice", 20) // another station: its own transaction
	if b.Kind != "authorize" || a.Txn.NayaxTransactionID == b.Txn.NayaxTransactionID || b.Txn.NayaxTransactionID != a.Txn.NayaxTransactionID+1 {
		t.Errorf("second station: %+v", b)
	}
	// A TransactionCallback the relay refuses leaves the station free.
	r.mu.Lock()
	r.decline["/api/transactioncallback"] = true
	r.mu.Unlock()
	c := tap(t, s, "7", "alice", 20)
	if c.Txn.Acked {
		t.Errorf("declined authorization counted as acknowledged")
	}
	if d := tap(t, s, "7", "alice", 20); d.Kind != "authorize" {
		t.Errorf("tap after a refused authorization: %s", d.Kind)
	}
	// A settled transaction closes its station.
	authenticate(t, s, a.Txn.SparkTransactionID)
	want(t, call(t, s, "ExternalSettlement", settleBody(a.Txn, 3), a.Txn.SparkTransactionID, nil), 0)
	r.mu.Lock()
	r.decline = map[string]bool{}
	r.mu.Unlock()
	if e := tap(t, s, "5", "alice", 0); e.Kind != "authorize" || e.Txn.Amount != 15 {
		t.Errorf("tap after settlement: %+v", e)
	}
}

// A terminal named by one id, then by the other, is one terminal: the
// second tap on its station stops the first one's transaction.
func TestTapLearnsTerminals(t *testing.T) {
	s := startSim(t, nil)
	r := startRelay(t)
	s.SetRelay(r.srv.URL)
	first, err := s.Tap(ctx(t), nayaxsim.Terminal{MachineID: machineID}, "5", "alice", 20)
	if err != nil || first.Kind != "authorize" {
		t.Fatalf("first tap: %v %+v", err, first)
	}
	for _, tm := range []nayaxsim.Terminal{term, {HwSerial: "434334921100366"}} {
		res, err := s.Tap(ctx(t), tm, "5", "bob", 20) // bob: declined, so the station stays open
		if err != nil || res.Kind != "stop" || res.Txn.NayaxTransactionID != first.Txn.NayaxTransactionID {
			t.Errorf("tap as %+v: %v %+v", tm, err, res)
		}
	}
}

func TestTapErrors(t *testing.T) {
	s := startSim(t, nil)
	if _, err := s.Tap(ctx(t), nayaxsim.Terminal{}, "5", "alice", 1); !errors.Is(err, nayaxsim.ErrTerminal) {
		t.Errorf("no terminal: %v", err)
	}
	res, err := s.Tap(ctx(t), term, "5", "alice", 1)
	if !errors.Is(err, nayaxsim.ErrNoRelay) {
		t.Errorf("no relay: %v", err)
	}
	if res.Txn.Acked {
		t.Errorf("undelivered callback acknowledged")
	}
	s.SetRelay("http://127.0.0.1:1") // nothing listens there
	if _, err := s.Tap(ctx(t), term, "5", "alice", 1); err == nil {
		t.Errorf("unreachable relay: no error")
	}
}

func TestBigIDs(t *testing.T) {
	const big = 9007199254740993 // 2^53+1: float64 cannot hold it
	s := startSim(t, func(o *nayaxsim.Options) { o.FirstNayaxID = big })
	r := startRelay(t)
	s.SetRelay(r.srv.URL)
	tx := tap(t, s, "5", "alice", 20).Txn
	if body := r.last(t).json(t); string(body["NayaxTransactionId"]) != "9007199254740993" {
		t.Fatalf("NayaxTransactionId %s", body["NayaxTransactionId"])
	}
	authenticate(t, s, tx.SparkTransactionID)
	// A client that went through float64 sends ...992 and finds nothing.
	raw := strings.Replace(mustJSON(t, cancelBody(tx)), "9007199254740993", "9007199254740992", 1)
	want(t, call(t, s, "ExternalCancel", raw, tx.SparkTransactionID, nil), 32)
	want(t, call(t, s, "ExternalCancel", cancelBody(tx), tx.SparkTransactionID, nil), 0)
}

func TestDeclineAndTimeout(t *testing.T) {
	s := startSim(t, func(o *nayaxsim.Options) { o.Terminals = []nayaxsim.Terminal{term} })
	r := startRelay(t)
	s.SetRelay(r.srv.URL)
	trigger := func(id string) {
		authenticate(t, s, id)
		want(t, call(t, s, "TriggerTransaction", map[string]any{"SparkTransactionId": id, "TerminalId": serial, "TerminalIdType": 1}, id, nil), 0)
	}
	tests := []struct {
		name string
		send func(id string) (nayaxsim.CallbackResult, error)
		path string
		code int
	}{
		{"decline 44", func(id string) (nayaxsim.CallbackResult, error) { return s.Decline(ctx(t), id, 44) }, "/api/DeclineCallback", 44},
		{"decline 45", func(id string) (nayaxsim.CallbackResult, error) { return s.Decline(ctx(t), id, 45) }, "/api/DeclineCallback", 45},
		{"timeout", func(id string) (nayaxsim.CallbackResult, error) { return s.Timeout(ctx(t), id) }, "/api/TimeoutCallback", 0},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id := "0000000" + strconv.Itoa(i) + "-c690-4425-9a1f-db0db60e2d8c"
			trigger(id)
			res, err := tt.send(id)
			if err != nil || res.HTTPStatus != 200 {
				t.Fatalf("send: %v %+v", err, res)
			}
			cb := r.last(t)
			body := cb.json(t)
			if cb.Path != tt.path || str(body["SparkTransactionId"]) != id || str(body["HwSerial"]) != serial || string(body["MachineId"]) != itoa(machineID) {
				t.Errorf("callback %s %s", cb.Path, cb.Body)
			}
			if tt.code != 0 {
				req, err := nayax.DecodeDeclineCallback(cb.Body)
				if err != nil || req.Status == nil || req.Status.Code() != tt.code || req.Status.IsApproved() {
					t.Errorf("decline body %s: %v", cb.Body, err)
				}
			} else if _, err := nayax.DecodeTimeoutCallback(cb.Body); err != nil {
				t.Errorf("timeout body %s: %v", cb.Body, err)
			}
			// The trigger is gone: the next tap is an external authorization.
			if res := tap(t, s, "s"+strconv.Itoa(i), "alice", 5); res.Txn.Remote {
				t.Errorf("declined trigger still pending")
			}
		})
	}
	if _, err := s.Decline(ctx(t), "no-such-id", 44); !errors.Is(err, nayaxsim.ErrUnknownTransaction) {
		t.Errorf("unknown id: %v", err)
	}
}

func TestCortinaCancel(t *testing.T) {
	const track2 = ";4761739001010010=25122011143804400000?"
	for _, void := range []bool{false, true} {
		t.Run("void="+strconv.FormatBool(void), func(t *testing.T) {
			s := startSim(t, func(o *nayaxsim.Options) { o.FirstNayaxID = 9007199254740993 })
			r := startRelay(t)
			s.SetRelay(r.srv.URL)
			tx := tap(t, s, "5", "alice", 20).Txn
			status, ans, err := s.CortinaCancel(ctx(t), tx.NayaxTransactionID, void, track2)
			if err != nil || status != 200 || !strings.Contains(string(ans), "Approved") {
				t.Fatalf("CortinaCancel: %v %d %s", err, status, ans)
			}
			cb := r.last(t)
			wantPath := map[bool]string{false: "/Cortina/PrePaid/Cancel", true: "/Cortina/PrePaid/Void"}[void]
			if cb.Path != wantPath {
				t.Errorf("path %s, want %s", cb.Path, wantPath)
			}
			var body struct {
				BasicInfo struct {
					NayaxTransactionId json.RawMessage
					TransactionId      string
					SiteId             json.RawMessage
					MachineAuTime      string
				}
				MachineInfo struct{ Id json.RawMessage }
				DeviceInfo  struct{ HwSerial string }
				CardData    struct{ CardNumber string }
			}
			if err := json.Unmarshal(cb.Body, &body); err != nil {
				t.Fatal(err)
			}
			if string(body.BasicInfo.NayaxTransactionId) != "9007199254740993" || body.BasicInfo.TransactionId != tx.SparkTransactionID ||
				string(body.BasicInfo.SiteId) != "2" || body.BasicInfo.MachineAuTime != "040226104430" ||
				string(body.MachineInfo.Id) != itoa(machineID) || body.DeviceInfo.HwSerial != serial {
				t.Errorf("ids: %s", cb.Body)
			}
			if body.CardData.CardNumber != track2 {
				t.Errorf("CardNumber %q, want the Track 2 given", body.CardData.CardNumber)
			}
			for _, rec := range s.Callbacks("") {
				if strings.Contains(string(rec.Body), "4761739001010010") {
					t.Errorf("the simulator kept the card number in its record")
				}
			}
			got, _ := s.Txn(tx.NayaxTransactionID)
			if got.State != nayaxsim.StateCancelled || !got.CancelledByNayax {
				t.Errorf("transaction after Cortina cancel: %+v", got)
			}
			authenticate(t, s, tx.SparkTransactionID)
			want(t, call(t, s, "ExternalSettlement", settleBody(tx, 5), tx.SparkTransactionID, nil), 28)
		})
	}
	t.Run("unknown transaction", func(t *testing.T) {
		s := startSim(t, nil)
		if _, _, err := s.CortinaCancel(ctx(t), 42, false, ""); !errors.Is(err, nayaxsim.ErrUnknownTransaction) {
			t.Errorf("err %v", err)
		}
	})
}

func TestControlAPI(t *testing.T) {
	s := startSim(t, nil)
	r := startRelay(t)
	c := nayaxsim.Client(s.URL())
	if err := c.SetRelay(ctx(t), r.srv.URL); err != nil {
		t.Fatal(err)
	}
	res, err := nayaxsim.ControlTap(ctx(t), s.BaseURL(), nayaxsim.TapRequest{MachineID: machineID, HwSerial: serial, Station: "5", Card: "alice", Amount: 20})
	if err != nil || res.Kind != "authorize" || res.HTTPStatus != 200 || res.Txn.Amount != 20 {
		t.Fatalf("ControlTap: %v %+v", err, res)
	}
	res, err = c.Tap(ctx(t), nayaxsim.TapRequest{MachineID: machineID, Station: "5", Card: "alice"}) // serial learned
	if err != nil || res.Kind != "stop" {
		t.Fatalf("second tap: %v %+v", err, res)
	}
	if err := c.Fail(ctx(t), "StartAuthentication", nayaxsim.Failure{Times: 1, Code: 33}); err != nil {
		t.Fatal(err)
	}
	want(t, call(t, s, "StartAuthentication", authBody(t, vectorID), vectorID, nil), 33)
	if err := c.Fail(ctx(t), "StartAuthentication", nayaxsim.Failure{Status: 503}); err != nil {
		t.Fatal(err)
	}
	if err := c.ClearFailures(ctx(t)); err != nil {
		t.Fatal(err)
	}
	authenticate(t, s, vectorID)
	reqs, err := c.Requests(ctx(t), "startauthentication")
	if err != nil || len(reqs) != 2 || reqs[1].HTTPStatus != 200 || !strings.Contains(string(reqs[1].Answer), "Approved") {
		t.Errorf("Requests: %v %+v", err, reqs)
	}
	txns, err := c.Txns(ctx(t))
	if err != nil || len(txns) != 1 || !txns[0].Stopped {
		t.Errorf("Txns: %v %+v", err, txns)
	}
	cbs, err := c.Callbacks(ctx(t), "")
	if err != nil || len(cbs) != 2 {
		t.Errorf("Callbacks: %v %d", err, len(cbs))
	}
	if _, err := c.Decline(ctx(t), "unknown", 44); !errors.Is(err, nayaxsim.ErrControl) {
		t.Errorf("unknown decline: %v", err)
	}
	if err := c.Fail(ctx(t), "NoSuchCall", nayaxsim.Failure{Status: 500}); !errors.Is(err, nayaxsim.ErrControl) {
		t.Errorf("bad fail request: %v", err)
	}
	cr, err := c.CortinaCancel(ctx(t), txns[0].NayaxTransactionID, true, "")
	if err != nil || cr.HTTPStatus != 200 {
		t.Errorf("CortinaCancel: %v %+v", err, cr)
	}
}
