package relay_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sitelink/sitelink/daemon/config"
	"github.com/sitelink/sitelink/daemon/nayaxsim"
	"github.com/sitelink/sitelink/daemon/wire"
)

const fakeNode = "site-fake"

// fakeSite announces a node that owns the terminal but runs no daemon, so
// the test plays the edge: it publishes request events and reads results.
func (e *env) fakeSite() {
	e.t.Helper()
	e.cloud.Publish(prefix+"/nodes/"+fakeNode+"/state", []byte(fmt.Sprintf(`{"online":true,"epoch":1,"version":"x","config_version":0,"machines":[{"machine_id":%d,"hw_serial":%q}],"stations":["5"],"at":%q}`, machine, serial, time.Now().UTC().Format(time.RFC3339))))
	e.own(fakeNode, machine, serial)
}

// ticket is the ticket the relay issued to the fake site with
// transaction txn's authorize command (wire.Ticket), as the edge keeps it.
func (e *env) ticket(txn nayaxsim.Txn) json.RawMessage {
	e.t.Helper()
	var found json.RawMessage
	waitFor(e.t, 10*time.Second, "the ticket of the authorize command", func() bool {
		for _, m := range e.cloud.All() {
			if m.Topic != prefix+"/nodes/"+fakeNode+"/commands/authorize" {
				continue
			}
			cmd, err := wire.DecodeCommand(m.Payload, "authorize")
			if err != nil {
				continue
			}
			var t wire.Ticket
			if raw := wire.TicketOf(cmd.Body); json.Unmarshal(raw, &t) == nil && t.Nayax == txn.NayaxTransactionID {
				found = raw
				return true
			}
		}
		return false
	})
	return found
}

// authorized makes nayaxsim authorize a card on the fake site's terminal
// (an external authorization) and returns the transaction.
func (e *env) authorized(relayURL string) nayaxsim.Txn {
	e.t.Helper()
	e.sim.SetRelay(relayURL)
	tap, err := e.sim.Tap(context.Background(), nayaxsim.Terminal{MachineID: machine, HwSerial: serial}, "5", "bob", 20)
	if err != nil || tap.Kind != "authorize" {
		e.t.Fatalf("tap: %+v %v", tap, err)
	}
	return tap.Txn
}

var seq uint64

// emit publishes a request event as the fake site would, and returns its id.
func (e *env) emit(typ string, body map[string]any) string {
	e.t.Helper()
	seq++
	payload, err := wire.EventPayload(fakeNode, seq, typ, time.Now(), body)
	if err != nil {
		e.t.Fatal(err)
	}
	e.cloud.Publish(prefix+"/nodes/"+fakeNode+"/events/"+typ, payload)
	return fmt.Sprintf("%s-%d", fakeNode, seq)
}

// externalCancel is the fake site's cancel of t, with t's ticket.
func (e *env) externalCancel(t nayaxsim.Txn) map[string]any {
	return map[string]any{
		"call": "ExternalCancel", "ticket": e.ticket(t), "NayaxTransactionId": t.NayaxTransactionID, "SparkTransactionId": t.SparkTransactionID,
		"SiteId": t.SiteID, "MachineAuTime": t.MachineAuTime, "TerminalId": serial, "TerminalIdType": 1,
		"CancellationType": 1, "ReasonCode": "75", "ReasonText": "Service not provided", "CancelAmount": t.Amount,
	}
}

// results returns the result commands sent to the fake site, by event id.
func (e *env) results() map[string][]wire.Result {
	out := map[string][]wire.Result{}
	for _, m := range e.cloud.All() {
		if m.Topic != prefix+"/nodes/"+fakeNode+"/commands/result" {
			continue
		}
		cmd, err := wire.DecodeCommand(m.Payload, "result")
		if err != nil {
			e.t.Fatalf("bad result command: %v", err)
		}
		r, err := wire.DecodeResult(cmd.Body)
		if err != nil {
			e.t.Fatal(err)
		}
		out[r.EventID] = append(out[r.EventID], r)
	}
	return out
}

func (e *env) awaitResult(id string) wire.Result {
	e.t.Helper()
	var r wire.Result
	waitFor(e.t, 15*time.Second, "result of "+id, func() bool {
		rs := e.results()[id]
		if len(rs) > 0 {
			r = rs[0]
			return true
		}
		return false
	})
	return r
}

// Each request event becomes one signed Nayax call, and the answer goes
// back to the node as a result; a repeat is "already done".
func TestRequestEventsToNayax(t *testing.T) {
	e := newEnv(t)
	r := e.startRelay("relay-1", 300*time.Millisecond)
	e.fakeSite()
	waitRoute(t, r.url)
	txn := e.authorized(r.url)

	id := e.emit("cancel-request", e.externalCancel(txn))
	res := e.awaitResult(id)
	if res.Outcome != wire.OutcomeApproved || res.Call != "ExternalCancel" {
		t.Fatalf("result %+v", res)
	}
	reqs := e.sim.Requests("ExternalCancel")
	if len(reqs) != 1 {
		t.Fatalf("%d ExternalCancel requests", len(reqs))
	}
	var sent map[string]any
	_ = json.Unmarshal(reqs[0].Body, &sent)
	if _, ok := sent["call"]; ok {
		t.Fatal("the event's call marker was sent to Nayax")
	}
	if got, _ := e.sim.Txn(txn.NayaxTransactionID); got.State != "cancelled" {
		t.Fatalf("nayaxsim txn %+v", got)
	}

	// The node sends it again (it never saw the result): answered from
	// memory, Nayax is not called a second time.
	res = e.awaitResult(e.emit("cancel-request", e.externalCancel(txn)))
	if res.Outcome != wire.OutcomeApproved || len(e.sim.Requests("ExternalCancel")) != 1 {
		t.Fatalf("repeat: %+v after %d calls", res, len(e.sim.Requests("ExternalCancel")))
	}

	// Remote Start: StartAuthentication then TriggerTransaction.
	spark := "7d1f3a52-9a0b-4a7e-9a53-3f1c2b4d5e6f"
	res = e.awaitResult(e.emit("start-request", map[string]any{"call": "TriggerTransaction", "SparkTransactionId": spark, "TerminalId": serial, "TerminalIdType": 1, "Amount": 15, "TransactionTimeout": 60}))
	if res.Outcome != wire.OutcomeApproved {
		t.Fatalf("trigger: %+v", res)
	}
	if n := len(e.sim.Requests("StartAuthentication")); n < 2 {
		t.Fatalf("%d StartAuthentication calls", n)
	}

	// An event whose call does not fit its type is refused without a call.
	res = e.awaitResult(e.emit("settlement-request", map[string]any{"call": "ExternalCancel", "SparkTransactionId": spark}))
	if res.Outcome != wire.OutcomeRefused || !strings.Contains(res.Error, "does not fit") {
		t.Fatalf("mismatched call: %+v", res)
	}
}

// Nayax failing: transport errors are retried by the client; when Nayax
// stays down the node hears "error" and retries later; a decline with 51
// is reported as a decline.
func TestNayaxFailures(t *testing.T) {
	e := newEnv(t)
	r := e.startRelay("relay-1", 300*time.Millisecond)
	e.fakeSite()
	waitRoute(t, r.url)

	txn := e.authorized(r.url)
	e.sim.Fail("ExternalCancel", nayaxsim.Failure{Times: 2, Status: 503})
	res := e.awaitResult(e.emit("cancel-request", e.externalCancel(txn)))
	if res.Outcome != wire.OutcomeApproved || res.Attempts != 3 {
		t.Fatalf("after two 503s: %+v", res)
	}

	// Another transaction: the first one's answer is remembered.
	txn = e.authorized(r.url)
	e.sim.Fail("ExternalCancel", nayaxsim.Failure{Status: 500})
	res = e.awaitResult(e.emit("cancel-request", e.externalCancel(txn)))
	if res.Outcome != wire.OutcomeError || !strings.Contains(res.Error, "no answer from Nayax") {
		t.Fatalf("Nayax down: %+v", res)
	}
	e.sim.ClearFailures()
	e.sim.Fail("ExternalCancel", nayaxsim.Failure{Times: 1, Code: 51})
	res = e.awaitResult(e.emit("cancel-request", e.externalCancel(txn)))
	if res.Outcome != wire.OutcomeDeclined || res.Status == nil || res.Status.ErrorCode == nil || *res.Status.ErrorCode != 51 {
		t.Fatalf("51: %+v", res)
	}
}

// Two replicas on one broker share the events (each handled once) and
// both answer HTTP for any node.
func TestTwoReplicas(t *testing.T) {
	e := newEnv(t)
	r1 := e.startRelay("relay-1", 300*time.Millisecond)
	r2 := e.startRelay("relay-2", 300*time.Millisecond)
	e.fakeSite()
	waitRoute(t, r1.url)
	waitRoute(t, r2.url)
	// Twenty transactions, twenty different requests (a replica handles
	// two requests for one transaction one after the other, never at
	// once).
	e.sim.SetRelay(r1.url)
	txns := make([]nayaxsim.Txn, 20)
	errs := make([]error, 20)
	var wg sync.WaitGroup
	for i := range txns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tap, err := e.sim.Tap(context.Background(), nayaxsim.Terminal{MachineID: machine, HwSerial: serial}, fmt.Sprint(10+i), fmt.Sprintf("card-%d", i), 20)
			if err == nil && tap.Kind != "authorize" {
				err = fmt.Errorf("tap %+v", tap)
			}
			txns[i], errs[i] = tap.Txn, err
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, txn := range txns {
		ids = append(ids, e.emit("cancel-request", e.externalCancel(txn)))
	}
	for _, id := range ids {
		e.awaitResult(id)
	}
	by := map[string]int{}
	for _, m := range e.cloud.All() {
		if m.Topic != prefix+"/nodes/"+fakeNode+"/commands/result" {
			continue
		}
		cmd, _ := wire.DecodeCommand(m.Payload, "result")
		by[cmd.ReplyTo[strings.LastIndex(cmd.ReplyTo, "/")+1:]]++
	}
	for id, rs := range e.results() {
		if len(rs) != 1 {
			t.Errorf("event %s handled %d times", id, len(rs))
		}
	}
	if by["relay-1"] == 0 || by["relay-2"] == 0 || by["relay-1"]+by["relay-2"] != 20 {
		t.Fatalf("events per replica: %v", by)
	}
	// Both replicas answer HTTP for the node (it never answers: 992 after
	// the budget, from either).
	for _, u := range []string{r1.url, r2.url} {
		code, body := post(t, u, "/api/TimeoutCallback", "application/json", []byte(fmt.Sprintf(`{"MachineId":%d,"SparkTransactionId":"x"}`, machine)))
		if code != 200 || !strings.Contains(string(body), "queued") {
			t.Fatalf("%s: HTTP %d %s", u, code, body)
		}
	}
}

// A replica killed in the middle of a Nayax call loses nothing: the
// event dies with its connection, the site sends the request again when
// no answer came, and the restarted (or another) replica finishes it.
func TestRelayKilledMidCall(t *testing.T) {
	e := newEnv(t)
	site := e.startEdgeWith("site-kill", t.TempDir(), func(c *config.Edge) {
		c.Policy.PlugTimeout = config.Duration(300 * time.Millisecond)
		c.Policy.ResultTimeout = config.Duration(time.Second)
	})
	r := e.startRelay("relay-1", 4*time.Second)
	waitRoute(t, r.url)
	e.sim.SetRelay(r.url)
	e.sim.Fail("ExternalCancel", nayaxsim.Failure{Times: 1, Delay: 1500 * time.Millisecond})
	tap, err := e.sim.Tap(context.Background(), nayaxsim.Terminal{MachineID: machine, HwSerial: serial}, "6", "kim", 10)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the call reached Nayax", func() bool { return len(e.sim.Requests("ExternalCancel")) > 0 })
	r.stop()
	r2 := e.startRelay("relay-1", 4*time.Second)
	e.sim.SetRelay(r2.url)
	s := sessionOf(t, site.api, tap.Txn.SparkTransactionID, "cancelled")
	if s.LastAnswer == nil || (wire.Outcome(s.LastAnswer.Outcome) != wire.OutcomeApproved && wire.Outcome(s.LastAnswer.Outcome) != wire.OutcomeAlreadyDone) {
		t.Fatalf("after the restart: %+v", s)
	}
	if got, _ := e.sim.Txn(tap.Txn.NayaxTransactionID); got.State != "cancelled" {
		t.Fatalf("nayaxsim txn %+v", got)
	}
}
