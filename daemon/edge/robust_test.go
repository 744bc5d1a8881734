package edge

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/sitelink/sitelink/daemon/config"
	"github.com/sitelink/sitelink/daemon/mqtttest"
	"github.com/sitelink/sitelink/daemon/nayax/seeds"
	"github.com/sitelink/sitelink/daemon/wire"
)

// Commands the broker queued while the node was away are answered on the
// connection they arrive on, right after it comes up; an expired one is
// answered and not acted on, except a stop (stopping late is safe).
func TestQueuedCommandsWhileOffline(t *testing.T) {
	s := startSite(t)
	s.charge()
	s.stop()

	past := time.Now().Add(-time.Minute)
	send := func(id, typ string, body any, deadline *time.Time) int {
		raw, ok := body.([]byte)
		if !ok {
			raw, _ = json.Marshal(body)
		}
		env, _ := json.Marshal(wire.Command{ID: id, Type: typ, ReplyTo: s.topics.Replies(), Deadline: deadline, Body: raw})
		from := s.cloud.Mark()
		s.cloud.Publish(s.topics.Command(typ), env)
		return from
	}
	from := send("late-auth", "authorize", authBody(t, "6", map[string]any{"SparkTransactionId": "late-1", "NayaxTransactionId": 77}), &past)
	send("late-stop", "stop", seeds.Get("000_stopcallback_request.json"), &past)

	s.start()
	replies := map[string]map[string]any{}
	s.cloud.Await(10*time.Second, from, "both replies", func(m mqtttest.Message) bool {
		var r struct {
			ID   string
			Body map[string]any
		}
		if m.Topic == s.topics.Replies() && json.Unmarshal(m.Payload, &r) == nil {
			replies[r.ID] = r.Body
		}
		return len(replies) == 2
	})
	if v, code := verdict(replies["late-auth"]); v != "Declined" || code != 992 {
		t.Fatalf("expired authorize answered %v", replies["late-auth"])
	}
	if v, _ := verdict(replies["late-stop"]); v != "Approved" {
		t.Fatalf("expired stop answered %v", replies["late-stop"])
	}
	if s.sims["6"].Read().Contactor {
		t.Fatal("an expired authorize closed a contactor")
	}
	if got := s.session(seedSpark); !ended(got.State) {
		t.Fatalf("seed session = %+v", got)
	}
}

// Odd envelopes are answered without acting and without costing the
// connection.
func TestEnvelopeAbuse(t *testing.T) {
	s := startSite(t)
	s.charge()

	// A reply_to the broker would refuse goes to the node's replies topic.
	env, _ := json.Marshal(map[string]any{"id": "ctl-1", "type": "rebirth", "reply_to": "sitelink/v1/x\u0001y"})
	if v, _ := verdict(s.rawCommand("rebirth", env, "ctl-1")); v != "Approved" {
		t.Fatal("rebirth not answered on the default replies topic")
	}
	// A reply_to outside the deployment's tree is not honoured either.
	env, _ = json.Marshal(map[string]any{"id": "ctl-2", "type": "rebirth", "reply_to": "elsewhere/replies"})
	if v, _ := verdict(s.rawCommand("rebirth", env, "ctl-2")); v != "Approved" {
		t.Fatal("foreign reply_to not redirected")
	}
	// An id reused for another command type: Declined, no action.
	reply := s.command("auth-1", "stop", seeds.Get("000_stopcallback_request.json"))
	if v, code := verdict(reply); v != "Declined" || code != 26 {
		t.Fatalf("reused id answered %v", reply)
	}
	if !s.sims["5"].Read().Contactor {
		t.Fatal("a stop under a reused id stopped the session")
	}
	if st, err := s.api.Status(); err != nil || !st.Connected || st.Epoch != 1 {
		t.Fatalf("connection did not survive: %+v %v", st, err)
	}
}

// MachineId and HwSerial must name the same terminal.
func TestAuthorizeTerminalAgreement(t *testing.T) {
	s := startSite(t)
	reply := s.command("a-1", "authorize", authBody(t, "5", map[string]any{"HwSerial": "999"}))
	if v, code := verdict(reply); v != "Declined" || code != 25 {
		t.Fatalf("mismatched serial answered %v", reply)
	}
	if s.sims["5"].Read().Contactor {
		t.Fatal("contactor closed for a mismatched terminal")
	}
	// Identifiers longer than Nayax sends are refused before they reach
	// the ledger.
	reply = s.command("a-2", "authorize", authBody(t, "5", map[string]any{"MachineAuTime": strings.Repeat("1", 40)}))
	if v, code := verdict(reply); v != "Declined" || code != 26 {
		t.Fatalf("oversized MachineAuTime answered %v", reply)
	}
}

// A contactor that will not open leaves the session stopping with its
// energy frozen, does not stall the engine, and the stop completes once
// the contactor moves again.
func TestStuckContactor(t *testing.T) {
	s := startSite(t)
	s.charge()
	waitFor(t, 5*time.Second, "energy", func() bool { return s.session(seedSpark).EnergyWh > 0 })
	s.sims["5"].SetStuck(true)
	reply := s.command("stop-stuck", "stop", seeds.Get("000_stopcallback_request.json"))
	if v, _ := verdict(reply); v != "Declined" {
		t.Fatalf("stop with a stuck contactor answered %v", reply)
	}
	frozen := s.waitState(seedSpark, "stopping").EnergyWh
	// Other work goes on meanwhile.
	if v, _ := verdict(s.command("rebirth-1", "rebirth", map[string]any{})); v != "Approved" {
		t.Fatal("engine stalled")
	}
	s.sims["5"].SetStuck(false)
	got := s.waitEnded(seedSpark)
	if got.EnergyWh != frozen {
		t.Fatalf("energy grew after the stop was decided: %v -> %v", frozen, got.EnergyWh)
	}
	if s.sims["5"].Read().Contactor {
		t.Fatal("contactor still closed")
	}
}

// A contactor that opens without a stop (driver protection, a lost
// commit) ends the session.
func TestContactorOpenedOutsideStop(t *testing.T) {
	s := startSite(t)
	s.charge()
	if err := s.sims["5"].SetContactor(context.Background(), false); err != nil {
		t.Fatal(err)
	}
	if got := s.waitEnded(seedSpark); got.StopReason != "contactor opened outside a stop" {
		t.Fatalf("session = %+v", got)
	}
}

// Session events carry no card data, not even the last digits.
func TestEventsCarryNoCardData(t *testing.T) {
	s := startSite(t)
	s.charge()
	s.command("stop-1", "stop", seeds.Get("000_stopcallback_request.json"))
	waitFor(t, 5*time.Second, "stopped event", func() bool {
		return len(events(s.cloud, s.cfg.MQTT.TopicPrefix, "session")) >= 5
	})
	for _, m := range s.cloud.All() {
		if strings.Contains(m.Topic, "/commands/") {
			continue // what the cloud sent
		}
		for _, secret := range []string{"7f2082ba5dbccf706b6987e75b62083f65b5695bc2d8c827c3e46769d007a9e6", "card_last4", "1288528281124927", "card_digest"} {
			if strings.Contains(string(m.Payload), secret) {
				t.Fatalf("%s carries %q: %s", m.Topic, secret, m.Payload)
			}
		}
	}
}

// A Remote Start nobody answers (no relay, or no card) closes after the
// trigger timeout plus the result timeout, and frees the station.
func TestRemoteStartUnanswered(t *testing.T) {
	b := mqtttest.Start(t)
	s := &site{t: t, broker: b, cfg: testConfig(t, b.URL, t.TempDir())}
	s.cfg.Policy.TriggerTimeout = config.Duration(time.Second)
	s.cfg.Policy.ResultTimeout = config.Duration(500 * time.Millisecond)
	s.topics = wire.Topics{Prefix: s.cfg.MQTT.TopicPrefix, Node: testNode}
	s.cloud = mqtttest.Record(t, b.URL, "cloud-"+t.Name(), s.cfg.MQTT.TopicPrefix+"/#")
	s.start()

	reply := s.command("start-1", "start", map[string]any{"ServiceStationNumber": "5", "Amount": 12})
	if v, _ := verdict(reply); v != "Approved" {
		t.Fatalf("start: %v", reply)
	}
	spark, _ := reply["SparkTransactionId"].(string)
	if got := s.session(spark); got.State != "requested" || got.Request == nil || got.Request.Call != "TriggerTransaction" {
		t.Fatalf("after start: %+v", got)
	}
	// The station is taken meanwhile.
	if v, _ := verdict(s.command("start-2", "start", map[string]any{"ServiceStationNumber": "5"})); v != "Declined" {
		t.Fatal("a second start on a requested station was accepted")
	}
	if got := s.waitState(spark, "closed"); got.StopReason != "no card presented before the trigger timed out" {
		t.Fatalf("unanswered start: %+v", got)
	}
	if v, _ := verdict(s.command("start-3", "start", map[string]any{"ServiceStationNumber": "5"})); v != "Approved" {
		t.Fatal("station not freed")
	}
	// The start-request carried the exact TriggerTransaction.
	evs := events(s.cloud, s.cfg.MQTT.TopicPrefix, "start-request")
	if len(evs) == 0 || !strings.Contains(string(evs[0].Body), `"TransactionTimeout":1`) || !strings.Contains(string(evs[0].Body), `"call":"TriggerTransaction"`) {
		t.Fatalf("start-request events: %v", evs)
	}
}

// Nayax cancels (Cortina) a session whose contactor will not open: when it
// finally opens, the session ends cancelled with no request of our own.
func TestCortinaCancelWhileStuck(t *testing.T) {
	s := startSite(t)
	s.charge()
	s.sims["5"].SetStuck(true)
	s.command("stop-stuck", "stop", seeds.Get("000_stopcallback_request.json"))
	s.waitState(seedSpark, "stopping")
	body := []byte(`{"BasicInfo":{"NayaxTransactionId":2004545072},"MachineInfo":{"Id":71234996},"ReasonText":"vend failure","Operation":"Cancel"}`)
	if v, _ := verdict(s.command("cortina-1", "cancel", body)); v != "Declined" {
		t.Fatal("a cancel whose contactor did not open was answered Approved")
	}
	s.sims["5"].SetStuck(false)
	got := s.waitState(seedSpark, "cancelled")
	if got.Request != nil {
		t.Fatalf("a request of our own after Nayax cancelled: %+v", got.Request)
	}
	for _, ev := range events(s.cloud, s.cfg.MQTT.TopicPrefix, "") {
		if ev.Type == "settlement-request" || ev.Type == "cancel-request" {
			t.Fatalf("sent %s after Nayax cancelled", ev.Type)
		}
	}
}

// The technician's self-test switches the contactor and refuses while a
// session runs; a local stop ends the session like a card would.
func TestSelfTestAndLocalStop(t *testing.T) {
	s := startSite(t)
	rep, err := s.api.SelfTest("6")
	if err != nil || !strings.Contains(rep, "contactor on: confirmed") || !strings.Contains(rep, "contactor off: confirmed") {
		t.Fatalf("self-test: %q %v", rep, err)
	}
	if s.sims["6"].Read().Contactor {
		t.Fatal("self-test left the contactor closed")
	}
	s.sims["6"].SetStuck(true)
	if _, err := s.api.SelfTest("6"); err == nil {
		t.Fatal("self-test passed with a stuck contactor")
	}
	s.sims["6"].SetStuck(false)

	s.charge()
	if _, err := s.api.SelfTest("5"); err == nil || !strings.Contains(err.Error(), "refused") {
		t.Fatalf("self-test during a session: %v", err)
	}
	if err := s.api.Stop("5"); err != nil {
		t.Fatal(err)
	}
	if got := s.waitEnded(seedSpark); got.StopReason != "stopped locally" {
		t.Fatalf("local stop: %+v", got)
	}
	if err := s.api.Stop("5"); err == nil {
		t.Fatal("stop without a session succeeded")
	}
}
