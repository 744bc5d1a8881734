package relay_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/sitelink/sitelink/daemon/mqtttest"
	"github.com/sitelink/sitelink/daemon/nayaxsim"
	"github.com/sitelink/sitelink/daemon/wire"
)

// rogueMachine is the terminal the rogue site really owns.
const rogueMachine = 71239999

// A site controller's key can touch only its own money (issue 13, items
// 1 and 2). The rogue here is fakeNode, publishing on its own topics as a
// stolen controller could under the broker's ACL; the victim is a real
// edge. Every attack is refused, counted by reason, and costs the victim
// nothing: its session is stopped by its card and settled as usual.
func TestRequestsCheckedAgainstOwnership(t *testing.T) {
	e := newEnv(t)
	r := e.startRelay("relay-1", time.Second)
	victim := e.startEdge("site-victim", t.TempDir())
	waitRoute(t, r.url)
	e.sim.SetRelay(r.url)

	// The rogue owns a terminal of its own and gets a real transaction
	// (and ticket) on it.
	e.cloud.Publish(prefix+"/nodes/"+fakeNode+"/state", fmt.Appendf(nil, `{"online":true,"epoch":1,"version":"x","config_version":0,"machines":[{"machine_id":%d,"hw_serial":""}],"stations":["1"],"at":%q}`,
		rogueMachine, time.Now().UTC().Format(time.RFC3339)))
	e.own(fakeNode, rogueMachine, "")
	waitFor(t, 10*time.Second, "the relay routes the rogue's terminal", func() bool {
		return metricValue(t, r.url, "sitelink_relay_terminals") == 2
	})
	own, err := e.sim.Tap(context.Background(), nayaxsim.Terminal{MachineID: rogueMachine}, "1", "rogue-card", 20)
	if err != nil || own.Kind != "authorize" {
		t.Fatalf("rogue's own tap: %+v %v", own, err)
	}
	ownTicket := e.ticket(own.Txn)

	// The victim's customer charges at the victim's terminal.
	tap, err := e.sim.Tap(context.Background(), nayaxsim.Terminal{MachineID: machine, HwSerial: serial}, "5", "victim-card", 20)
	if err != nil || tap.Kind != "authorize" {
		t.Fatalf("victim's tap: %+v %v", tap, err)
	}
	vtx := tap.Txn
	sessionOf(t, victim.api, vtx.SparkTransactionID, "charging")

	// Attack 1: claim the victim's terminal in the rogue's retained state,
	// newer than the victim's birth. Ignored and counted.
	e.cloud.Publish(prefix+"/nodes/"+fakeNode+"/state", fmt.Appendf(nil, `{"online":true,"epoch":2,"version":"x","config_version":0,"machines":[{"machine_id":%d,"hw_serial":""},{"machine_id":%d,"hw_serial":%q}],"stations":["1","5"],"at":%q}`,
		rogueMachine, machine, serial, time.Now().Add(time.Hour).UTC().Format(time.RFC3339)))
	waitFor(t, 10*time.Second, "the claim counted", func() bool {
		return metricValue(t, r.url, `sitelink_relay_claims_ignored_total{reason="other-owner"}`) >= 1
	})

	// Attack 2: requests for the victim's money, on the rogue's topics.
	victimTicket := json.RawMessage(`{"nayax":` + fmt.Sprint(vtx.NayaxTransactionID) + `,"spark":"` + vtx.SparkTransactionID + `","max":"20","mac":"AAAA"}`)
	settle := func(txn nayaxsim.Txn, ticket json.RawMessage, amount float64) map[string]any {
		b := map[string]any{"call": "ExternalSettlement", "NayaxTransactionId": txn.NayaxTransactionID, "SparkTransactionId": txn.SparkTransactionID,
			"SiteId": txn.SiteID, "MachineAuTime": txn.MachineAuTime, "TerminalId": fmt.Sprint(rogueMachine), "TerminalIdType": 2, "Amount": amount}
		if ticket != nil {
			b["ticket"] = ticket
		}
		return b
	}
	voidVictim := e.externalCancelWith(vtx, ownTicket)
	for _, a := range []struct {
		name, typ string
		body      map[string]any
		reason    string
	}{
		{"settle the victim's transaction without a ticket", "settlement-request", settle(vtx, nil, 0.01), "no_ticket"},
		{"settle it with a ticket made up for it", "settlement-request", settle(vtx, victimTicket, 0.01), "bad_ticket"},
		{"cancel it under the rogue's own ticket", "cancel-request", voidVictim, "ticket_mismatch"},
		{"settle the rogue's own transaction for more than authorized", "settlement-request", settle(own.Txn, ownTicket, 20.01), "over_authorized"},
		{"trigger a payment on the victim's terminal", "start-request", map[string]any{"call": "TriggerTransaction", "SparkTransactionId": "7d1f3a52-9a0b-4a7e-9a53-3f1c2b4d5e60",
			"TerminalId": serial, "TerminalIdType": 1, "Amount": 15, "TransactionTimeout": 60}, "not_owner"},
		{"trigger 300.00 on its own terminal", "start-request", map[string]any{"call": "TriggerTransaction", "SparkTransactionId": "7d1f3a52-9a0b-4a7e-9a53-3f1c2b4d5e61",
			"TerminalId": fmt.Sprint(rogueMachine), "TerminalIdType": 2, "Amount": 300, "TransactionTimeout": 60}, "over_max_start"},
	} {
		t.Run(a.name, func(t *testing.T) {
			res := e.awaitResult(e.emit(a.typ, a.body))
			if res.Outcome != wire.OutcomeRefused || !strings.HasPrefix(res.Error, "relay refused: ") {
				t.Fatalf("result %+v, want refused", res)
			}
			if n := metricValue(t, r.url, `sitelink_relay_node_requests_refused_total{reason="`+a.reason+`"}`); n != 1 {
				t.Fatalf("refusals counted for %s: %d", a.reason, n)
			}
		})
	}
	for _, call := range []string{"ExternalSettlement", "ExternalCancel", "TriggerTransaction", "StartAuthentication"} {
		if n := len(e.sim.Requests(call)); n != 0 {
			t.Errorf("Nayax got %d %s calls from the attacks", n, call)
		}
	}

	// The victim is untouched: its card stops its session at its
	// terminal (the rogue's claim routed nothing), and the settlement it
	// sends, with its ticket, reaches Nayax.
	stop, err := e.sim.Tap(context.Background(), nayaxsim.Terminal{MachineID: machine, HwSerial: serial}, "5", "victim-card", 20)
	if err != nil || stop.Kind != "stop" {
		t.Fatalf("victim's stop: %+v %v", stop, err)
	}
	if v, _, d := status(t, stop.Response); v != "Approved" {
		t.Fatalf("victim's StopCallback answered %s: %s", v, d)
	}
	s := sessionOf(t, victim.api, vtx.SparkTransactionID, "settled")
	if got, _ := e.sim.Txn(vtx.NayaxTransactionID); got.State != nayaxsim.StateSettled || s.AmountMinor <= 0 {
		t.Fatalf("victim's transaction %+v, session %+v", got, s)
	}

	// The rogue's own, honest settlement still works.
	res := e.awaitResult(e.emit("settlement-request", settle(own.Txn, ownTicket, 1.5)))
	if res.Outcome != wire.OutcomeApproved {
		t.Fatalf("the rogue's own settlement: %+v", res)
	}
	if got, _ := e.sim.Txn(own.Txn.NayaxTransactionID); got.State != nayaxsim.StateSettled {
		t.Fatalf("rogue's own transaction %+v", got)
	}
}

// externalCancelWith is the fake site's cancel of t carrying ticket.
func (e *env) externalCancelWith(t nayaxsim.Txn, ticket json.RawMessage) map[string]any {
	b := map[string]any{
		"call": "ExternalCancel", "NayaxTransactionId": t.NayaxTransactionID, "SparkTransactionId": t.SparkTransactionID,
		"SiteId": t.SiteID, "MachineAuTime": t.MachineAuTime, "TerminalId": serial, "TerminalIdType": 1,
		"CancellationType": 1, "ReasonCode": "75", "ReasonText": "Service not provided", "CancelAmount": t.Amount,
	}
	b["ticket"] = ticket
	return b
}

// The registry lives in the broker's retained messages. A broker that
// restarts without its data loses it; the relays put back what they
// hold, with its own times, and a removal stays a removal.
func TestRegistryReseededAfterBrokerLostData(t *testing.T) {
	e := newEnv(t)
	if e.broker.Kind != mqtttest.KindMosquitto {
		t.Skip("needs mosquitto (restart without persistence)")
	}
	r := e.startRelay("relay-1", time.Second)
	e.startEdge("site-a", t.TempDir())
	waitRoute(t, r.url)
	// A terminal given and then removed: the removal must survive too.
	e.own("site-a", 71230555, "")
	removed, payload, err := wire.TerminalMessage(prefix, wire.Terminal{MachineID: 71230555, Removed: true})
	if err != nil {
		t.Fatal(err)
	}
	e.cloud.PublishRetained(removed, payload)
	waitFor(t, 10*time.Second, "the removal reached the relay", func() bool {
		return metricValue(t, r.url, "sitelink_relay_terminals") == 1
	})

	e.broker.RestartEmpty()
	// What a new subscriber finds retained on the broker, by key.
	retained := func() map[string]wire.Terminal {
		rec := mqtttest.Record(t, e.broker.URL, fmt.Sprintf("check-%d", time.Now().UnixNano()), prefix+"/terminals/#")
		time.Sleep(300 * time.Millisecond)
		out := map[string]wire.Terminal{}
		for _, m := range rec.All() {
			if _, ok := wire.ParseTerminalTopic(prefix, m.Topic); !ok {
				continue // the recorder's probe
			}
			if tm, err := wire.DecodeTerminal(m.Payload); err == nil {
				out[m.Topic] = tm
			}
		}
		return out
	}
	var got map[string]wire.Terminal
	waitFor(t, 20*time.Second, "the relay re-seeded the registry", func() bool {
		got = retained()
		return len(got) == 2
	})
	standard := wire.TerminalTopic(prefix, wire.TerminalKey(machine, serial))
	if tm := got[standard]; tm.Node != "site-a" || tm.Removed {
		t.Fatalf("re-seeded %s: %+v", standard, tm)
	}
	if tm := got[removed]; !tm.Removed || tm.Node != "" {
		t.Fatalf("re-seeded %s: %+v (a removed terminal came back)", removed, tm)
	}
	// And the site's callbacks still route.
	e.sim.SetRelay(r.url)
	tap, err := e.sim.Tap(context.Background(), nayaxsim.Terminal{MachineID: machine, HwSerial: serial}, "5", "after-restart", 10)
	if err != nil || tap.Kind != "authorize" {
		t.Fatalf("tap after the restart: %+v %v", tap, err)
	}
	if v, _, d := status(t, tap.Response); v != "Approved" {
		t.Fatalf("TransactionCallback after the restart: %s %s", v, d)
	}
}
