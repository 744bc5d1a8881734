package relay_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/sitelink/sitelink/daemon/config"
	"github.com/sitelink/sitelink/daemon/mqtttest"
	"github.com/sitelink/sitelink/daemon/nayaxsim"
	"github.com/sitelink/sitelink/daemon/relay"
	"github.com/sitelink/sitelink/daemon/wire"
)

// A stolen site controller against the fleet as shipped (issue 13): the
// broker runs configs/mosquitto.conf with its ACL files and two CAs, the
// relay authenticates callbacks and derives its secret shared group, the
// fleet operator's certificate writes the terminal registry. With one
// valid node certificate the attacker tries every attack of the issue;
// the victim's customer still stops and pays, Nayax sees only the
// victim's own calls, and every refusal shows in the relay's metrics.
func TestStolenControllerOnShippedBroker(t *testing.T) {
	sb := mqtttest.StartShipped(t)
	const authHeader, authValue = "X-Sitelink-Auth", "attack-test-callback-secret"
	e := &env{t: t, shipped: sb, logs: &logBuf{}}
	e.log = slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	sim, err := nayaxsim.Start(nayaxsim.Options{Logger: e.log, CallbackHeaders: map[string]string{authHeader: authValue}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close() })
	e.sim = sim
	fleetTLS := sb.CloudCA.ClientConfig(t, "fleet")
	fleetTLS.ServerName = "127.0.0.1"
	e.cloud = mqtttest.RecordWith(t, sb.CloudURL, "fleet-spy", prefix+"/#", mqtttest.RecordOptions{TLS: fleetTLS})
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("logs:\n%s", e.logs.String())
		}
	})

	// The relay as deployed: callback headers, the share group derived
	// from the card key (never "default").
	r := e.startRelayOpts("relay-1", 2*time.Second, nil, func(o *relay.Options) { o.Group = "" }, relay.Header{Name: authHeader, Value: authValue})
	victim := e.startEdgeWith("site-victim", t.TempDir(), func(c *config.Edge) { c.Policy.PlugTimeout = config.Duration(time.Second) })
	waitRoute(t, r.url)
	sim.SetRelay(r.url)
	term := nayaxsim.Terminal{MachineID: machine, HwSerial: serial}
	tap, err := sim.Tap(context.Background(), term, "5", "victim-card", 20)
	if err != nil || tap.Kind != "authorize" {
		t.Fatalf("victim's tap: %+v %v", tap, err)
	}
	vtx := tap.Txn
	sessionOf(t, victim.api, vtx.SparkTransactionID, "charging")

	// The attacker: a valid node certificate of another site.
	rogueTLS := sb.NodeCA.ClientConfig(t, "site-rogue")
	rogueTLS.ServerName = "127.0.0.1"
	connect := func(clientID string) paho.Client {
		o := paho.NewClientOptions().AddBroker(sb.NodesURL).SetClientID(clientID).SetTLSConfig(rogueTLS).
			SetCleanSession(false).SetAutoReconnect(false).SetConnectTimeout(5 * time.Second)
		c := paho.NewClient(o)
		if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			t.Fatalf("rogue connect as %s: %v", clientID, tok.Error())
		}
		t.Cleanup(func() { c.Disconnect(50) })
		return c
	}
	publish := func(c paho.Client, topic string, retained bool, payload []byte) {
		t.Helper()
		if tok := c.Publish(topic, 1, retained, payload); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
			t.Fatalf("publish %s: %v", topic, tok.Error())
		}
	}
	victimTopics := wire.Topics{Prefix: prefix, Node: "site-victim"}
	rogueTopics := wire.Topics{Prefix: prefix, Node: "site-rogue"}

	// 1. Client-id takeover: connect as the victim and as the relay.
	for _, id := range []string{"site-victim", "relay-1", "relay-1-events"} {
		connect(id).Disconnect(50)
	}
	rogue := connect("site-victim")
	// 2. Shared-subscription starvation: join the groups an attacker can
	// guess (the relay's is derived from the card key).
	for _, g := range []string{"default", "relays", "sitelink"} {
		for _, typ := range []string{wire.EventSettlementRequest, wire.EventCancelRequest, wire.EventStartRequest} {
			rogue.Subscribe(wire.Shared(g, wire.AllNodes(prefix).Event(typ)), 1, func(paho.Client, paho.Message) {}).WaitTimeout(5 * time.Second)
		}
	}
	// 3. Routing hijack: claim the victim's terminal with a newer birth,
	// and write the registry.
	publish(rogue, rogueTopics.State(), true, fmt.Appendf(nil, `{"online":true,"epoch":9,"version":"x","config_version":0,"machines":[{"machine_id":%d,"hw_serial":%q}],"stations":["5"],"at":%q}`,
		machine, serial, time.Now().Add(time.Hour).UTC().Format(time.RFC3339)))
	hijack, payload, err := wire.TerminalMessage(prefix, wire.Terminal{Node: "site-rogue", MachineID: machine, HwSerial: serial, At: time.Now().Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	publish(rogue, hijack, true, payload)
	// 4. Requests for the victim's money: on its own topics (the relay
	// checks them), and straight into the victim's subtree (the ACL).
	settle := map[string]any{"call": "ExternalSettlement", "NayaxTransactionId": vtx.NayaxTransactionID, "SparkTransactionId": vtx.SparkTransactionID,
		"SiteId": vtx.SiteID, "MachineAuTime": vtx.MachineAuTime, "TerminalId": serial, "TerminalIdType": 1, "Amount": 0.01,
		"ticket": map[string]any{"nayax": vtx.NayaxTransactionID, "spark": vtx.SparkTransactionID, "max": "20", "mac": "forged"}}
	cancel := map[string]any{"call": "ExternalCancel", "NayaxTransactionId": vtx.NayaxTransactionID, "SparkTransactionId": vtx.SparkTransactionID,
		"SiteId": vtx.SiteID, "MachineAuTime": vtx.MachineAuTime, "TerminalId": serial, "TerminalIdType": 1, "CancellationType": 1,
		"ReasonCode": "75", "ReasonText": "Service not provided", "CancelAmount": 20}
	start := map[string]any{"call": "TriggerTransaction", "SparkTransactionId": "7d1f3a52-9a0b-4a7e-9a53-3f1c2b4d5e6a", "TerminalId": serial,
		"TerminalIdType": 1, "Amount": 300, "TransactionTimeout": 60}
	for i, ev := range []struct {
		typ  string
		body map[string]any
	}{{wire.EventSettlementRequest, settle}, {wire.EventCancelRequest, cancel}, {wire.EventStartRequest, start}} {
		for _, node := range []string{"site-rogue", "site-victim"} {
			p, err := wire.EventPayload(node, uint64(1000+i), ev.typ, time.Now(), ev.body)
			if err != nil {
				t.Fatal(err)
			}
			publish(rogue, wire.Topics{Prefix: prefix, Node: node}.Event(ev.typ), false, p)
		}
	}
	// 5. Commands to the victim: a stop, and Nayax's "answer" to it.
	stopCmd, _ := json.Marshal(wire.Command{ID: "rogue-stop", Type: wire.CommandStop, Body: json.RawMessage(fmt.Sprintf(`{"SparkTransactionId":%q,"NayaxTransactionId":%d}`, vtx.SparkTransactionID, vtx.NayaxTransactionID))})
	publish(rogue, victimTopics.Command(wire.CommandStop), false, stopCmd)

	waitFor(t, 10*time.Second, "the rogue's requests refused", func() bool {
		return metricValue(t, r.url, "sitelink_relay_node_requests_refused_total") >= 3
	})
	waitFor(t, 10*time.Second, "the rogue's claim ignored", func() bool {
		return metricValue(t, r.url, `sitelink_relay_claims_ignored_total{reason="other-owner"}`) >= 1
	})
	for _, reason := range []string{"bad_ticket", "no_ticket", "not_owner"} {
		if metricValue(t, r.url, `sitelink_relay_node_requests_refused_total{reason="`+reason+`"}`) != 1 {
			t.Errorf("refusal %s not counted once", reason)
		}
	}
	// Nothing reached Nayax, nothing reached the victim's subtree from
	// the rogue, the registry is the fleet's.
	for _, call := range []string{"ExternalSettlement", "ExternalCancel", "TriggerTransaction"} {
		if n := len(sim.Requests(call)); n != 0 {
			t.Fatalf("Nayax got %d %s calls from the attack", n, call)
		}
	}
	for _, m := range e.cloud.All() {
		if m.Topic == victimTopics.Command(wire.CommandStop) || m.Topic == victimTopics.Event(wire.EventSettlementRequest) ||
			(m.Topic == hijack && string(m.Payload) == string(payload)) {
			t.Fatalf("the rogue wrote %s", m.Topic)
		}
	}
	if s := sessionOf(t, victim.api, vtx.SparkTransactionID, "charging"); s.State != "charging" {
		t.Fatalf("victim's session %s", s.State)
	}
	st, err := victim.api.Status()
	if err != nil || !st.Connected {
		t.Fatalf("the victim was kicked: %+v %v", st, err)
	}

	// The victim's customer stops at the terminal and pays: the stop is
	// routed to the victim, the settlement (with its ticket) goes out
	// through the secret shared group despite the rogue's members.
	stop, err := sim.Tap(context.Background(), term, "5", "victim-card", 20)
	if err != nil || stop.Kind != "stop" {
		t.Fatalf("victim's stop: %+v %v", stop, err)
	}
	if v, _, d := status(t, stop.Response); v != "Approved" {
		t.Fatalf("victim's StopCallback answered %s: %s", v, d)
	}
	s := sessionOf(t, victim.api, vtx.SparkTransactionID, "settled")
	got, _ := sim.Txn(vtx.NayaxTransactionID)
	if got.State != nayaxsim.StateSettled || got.Settles != 1 || s.AmountMinor <= 0 {
		t.Fatalf("victim's transaction %+v, session %+v", got, s)
	}
	// And a hold that gets no service is released: the cancel goes out.
	tap6, err := sim.Tap(context.Background(), term, "6", "victim-card-2", 15)
	if err != nil || tap6.Kind != "authorize" {
		t.Fatalf("victim's second tap: %+v %v", tap6, err)
	}
	sessionOf(t, victim.api, tap6.Txn.SparkTransactionID, "cancelled")
	if got, _ := sim.Txn(tap6.Txn.NayaxTransactionID); got.State != nayaxsim.StateCancelled || got.Cancels != 1 {
		t.Fatalf("victim's second transaction %+v", got)
	}
	t.Logf("attack: 3 client ids, 9 share-group guesses, 1 claim, 1 registry write, 6 requests, 1 command; refused in metrics: %d requests, %d claims; victim settled %d minor units",
		metricValue(t, r.url, "sitelink_relay_node_requests_refused_total"), metricValue(t, r.url, "sitelink_relay_claims_ignored_total"), s.AmountMinor)
}
