package relay_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/sitelink/sitelink/daemon/nayax"
	"github.com/sitelink/sitelink/daemon/nayax/seeds"
	"github.com/sitelink/sitelink/daemon/nayaxsim"
	"github.com/sitelink/sitelink/daemon/relay"
	"github.com/sitelink/sitelink/daemon/wire"
	"github.com/sitelink/sitelink/store"
)

// Issue 13 item 6, card hash off the wire: through nayaxsim, a relay,
// mosquitto and a site controller, a card authorizes a session, another
// card's StopCallback is Declined, and the paying card's stops it. On
// everything the broker carried, Nayax's CardHash and the CardUid of
// either card never appear (in any case); the authorize and stop commands
// carry the fleet's keyed hash instead, and the last four digits. The
// ledger keeps its own digest, which is neither.
func TestCardHashOffTheWire(t *testing.T) {
	e := newEnv(t)
	site := e.startEdge("site-card", t.TempDir())
	r := e.startRelay("relay-1", 4*time.Second)
	waitRoute(t, r.url)
	e.sim.SetRelay(r.url)
	key, err := nayax.NewCardKey([]byte(cardKey))
	if err != nil {
		t.Fatal(err)
	}

	first := e.tap("5", "alice", 20)
	if first.Kind != "authorize" {
		t.Fatalf("first tap: %+v", first)
	}
	spark := first.Txn.SparkTransactionID
	sessionOf(t, site.api, spark, "charging")
	txn, _ := e.sim.Txn(first.Txn.NayaxTransactionID)

	// Another card, every id right: Declined, nothing stops.
	forged := edited(t, seeds.Get("000_stopcallback_request.json"), map[string]any{
		"MachineId": machine, "HwSerial": serial, "SparkTransactionId": spark,
		"NayaxTransactionId": txn.NayaxTransactionID, "MachineAuTime": txn.MachineAuTime,
		"CardHash": nayaxsim.CardHash("mallory"), "CardUid": "7000000000000001", "ServiceStationNumber": "5",
	})
	code, answer := post(t, r.url, "/api/StopCallback", "application/json", forged)
	if v, c, _ := status(t, answer); code != 200 || v != "Declined" || c != nayax.CodeValidation {
		t.Fatalf("another card's StopCallback: HTTP %d %s", code, answer)
	}
	if s := sessionOf(t, site.api, spark, "charging"); s.State != "charging" || !contactor(t, site.api, "5") {
		t.Fatalf("after another card: %s, contactor closed %v", s.State, contactor(t, site.api, "5"))
	}

	// The paying card stops it.
	stop := e.tap("5", "alice", 0)
	if v, _, _ := status(t, stop.Response); stop.Kind != "stop" || v != "Approved" {
		t.Fatalf("the paying card: %+v %s", stop, stop.Response)
	}
	s := sessionOf(t, site.api, spark, "settling", "settled", "cancelling", "cancelled")
	if !strings.HasPrefix(s.StopReason, "StopCallback") || contactor(t, site.api, "5") {
		t.Fatalf("session %s %q", s.State, s.StopReason)
	}

	// What Nayax sent: hashes and UIDs of both cards.
	var secrets []string
	for _, c := range e.sim.Callbacks("") {
		var b struct{ CardHash, CardUid string }
		_ = json.Unmarshal(c.Body, &b)
		for _, v := range []string{b.CardHash, b.CardUid} {
			if v != "" {
				secrets = append(secrets, strings.ToLower(v))
			}
		}
	}
	secrets = append(secrets, nayaxsim.CardHash("mallory"), "7000000000000001")
	if len(secrets) < 4 {
		t.Fatalf("the simulator's callbacks carried no card data? %v", secrets)
	}
	var commands map[string][]string // command type → the CardHash values it carried
	waitFor(t, 5*time.Second, "the recorder has both stop commands", func() bool {
		commands = map[string][]string{}
		for _, m := range e.cloud.All() {
			if _, kind, typ, ok := wire.ParseNodeTopic(prefix, m.Topic); ok && kind == wire.KindCommands {
				var cmd struct {
					Body struct{ CardHash, CardLast4Digits string }
				}
				if json.Unmarshal(m.Payload, &cmd) == nil && cmd.Body.CardHash != "" {
					commands[typ] = append(commands[typ], cmd.Body.CardHash)
					if cmd.Body.CardLast4Digits == "" {
						t.Errorf("%s command without the last four digits: %s", typ, m.Payload)
					}
				}
			}
		}
		return len(commands[wire.CommandStop]) >= 2
	})
	for _, m := range e.cloud.All() {
		p := strings.ToLower(string(m.Payload))
		for _, secret := range secrets {
			if strings.Contains(p, secret) {
				t.Fatalf("card data %q on MQTT topic %s: %s", secret, m.Topic, m.Payload)
			}
		}
	}
	alice, mallory := key.Hash(nayaxsim.CardHash("alice")), key.Hash(nayaxsim.CardHash("mallory"))
	if got := commands[wire.CommandAuthorize]; len(got) != 1 || got[0] != alice {
		t.Fatalf("authorize commands carried %v, want the keyed hash %s", got, alice)
	}
	if got := commands[wire.CommandStop]; len(got) != 2 || got[0] != mallory || got[1] != alice {
		t.Fatalf("stop commands carried %v, want the keyed hashes %s then %s", got, mallory, alice)
	}

	// The ledger keeps its own digest: neither Nayax's hash nor the one
	// that travelled.
	site.stop()
	st, err := store.Open(site.cfg.DBPath(), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var ledger store.Session
	if err := st.View(func(tx *store.Tx) error {
		ledger, err = tx.Session(spark)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if d := ledger.CardDigest; d == "" || d == alice || d == nayaxsim.CardHash("alice") {
		t.Fatalf("ledger card digest %q: want its own keyed digest", d)
	}
}

// A relay without the fleet's card key (or with a short one) is not
// built: it could only forward Nayax's CardHash or none at all.
func TestRelayNeedsCardKey(t *testing.T) {
	for _, k := range [][]byte{nil, []byte("short")} {
		_, err := relay.New(relay.Options{ID: "r", Prefix: prefix, CardKey: k})
		if !errors.Is(err, nayax.ErrCardKey) {
			t.Errorf("New with a %d-byte card key: %v, want ErrCardKey", len(k), err)
		}
	}
}
