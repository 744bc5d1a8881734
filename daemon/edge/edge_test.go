package edge

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/sitelink/sitelink/daemon/nayax/seeds"
	"github.com/sitelink/sitelink/daemon/wire"
)

const seedSpark = "12c7cec2-c690-4425-9a1f-db0db60e2d8c"

// authBody is the TransactionCallback seed for station st, with overrides.
func authBody(t testing.TB, st string, set map[string]any) map[string]any {
	t.Helper()
	var m map[string]any
	d := json.NewDecoder(bytes.NewReader(seeds.Get("001_transactioncallback_request.json")))
	d.UseNumber()
	if err := d.Decode(&m); err != nil {
		t.Fatal(err)
	}
	m["ServiceStationNumber"] = st
	for k, v := range set {
		if v == nil {
			delete(m, k)
		} else {
			m[k] = v
		}
	}
	return m
}

func stopBody(t testing.TB, set map[string]any) map[string]any {
	t.Helper()
	var m map[string]any
	d := json.NewDecoder(bytes.NewReader(seeds.Get("000_stopcallback_request.json")))
	d.UseNumber()
	if err := d.Decode(&m); err != nil {
		t.Fatal(err)
	}
	for k, v := range set {
		if v == nil {
			delete(m, k)
		} else {
			m[k] = v
		}
	}
	return m
}

// charge authorizes the seed transaction on station 5 and waits until the
// vehicle draws energy.
func (s *site) charge() {
	s.t.Helper()
	if v, code := verdict(s.command("auth-1", "authorize", authBody(s.t, "5", nil))); v != "Approved" {
		s.t.Fatalf("authorize: %s %v", v, code)
	}
	s.waitState(seedSpark, "charging")
	if !s.sims["5"].Read().Contactor {
		s.t.Fatal("contactor not closed while charging")
	}
}

// The seed StopCallback, verbatim, stops the seed session and gets the
// seed's response shape back.
func TestAuthorizeThenSeedStop(t *testing.T) {
	s := startSite(t)
	s.charge()
	// Enough energy to be billed (policy.min_energy_wh is 10).
	waitFor(t, 5*time.Second, "energy", func() bool { return s.session(seedSpark).EnergyWh >= 20 })

	reply := s.command("stop-1", "stop", seeds.Get("000_stopcallback_request.json"))
	want := map[string]any{}
	if err := json.Unmarshal(seeds.Get("000_stopcallback_response.json"), &want); err != nil {
		t.Fatal(err)
	}
	if !jsonEqual(reply, want) {
		t.Fatalf("reply = %v\nwant   %v", reply, want)
	}
	if s.sims["5"].Read().Contactor {
		t.Fatal("contactor still closed after an approved stop")
	}
	got := s.session(seedSpark)
	if got.State != "settling" || got.NayaxTransactionID != 2004545072 || got.AuthorizedAmount != "15" || got.AuthorizedMinor != 1500 || got.EnergyWh <= 0 {
		t.Fatalf("session after stop = %+v", got)
	}

	// The session events tell the whole story, in order. (The reply goes
	// out directly; events follow through the outbox.)
	waitFor(t, 5*time.Second, "stopped event", func() bool {
		return len(events(s.cloud, s.cfg.MQTT.TopicPrefix, "session")) >= 5
	})
	var path []string
	for _, e := range events(s.cloud, s.cfg.MQTT.TopicPrefix, "session") {
		var b wire.SessionEvent
		if err := json.Unmarshal(e.Body, &b); err != nil {
			t.Fatal(err)
		}
		path = append(path, string(b.To))
		if strings.Contains(string(e.Body), "card_digest") || strings.Contains(string(e.Body), "7f2082ba") {
			t.Fatalf("session event leaks card data: %s", e.Body)
		}
	}
	if strings.Join(path, ",") != "authorized,charging,stopping,stopped,settling" {
		t.Fatalf("session transitions = %v", path)
	}

	// Nayax retries the stop with another request id: Approved again, no
	// second transition.
	if v, _ := verdict(s.command("stop-2", "stop", seeds.Get("000_stopcallback_request.json"))); v != "Approved" {
		t.Fatalf("repeated stop: %s", v)
	}
	if n := len(events(s.cloud, s.cfg.MQTT.TopicPrefix, "session")); n != 5 {
		t.Fatalf("repeated stop produced transitions: %d session events", n)
	}
}

// A replayed command id gets the stored reply byte for byte and never a
// second action.
func TestReplayedCommandID(t *testing.T) {
	s := startSite(t)
	s.charge()
	first := s.command("stop-1", "stop", seeds.Get("000_stopcallback_request.json"))
	// Plug the vehicle back and replay the authorize id: no new session,
	// the contactor stays open.
	again := s.command("auth-1", "authorize", authBody(t, "5", nil))
	if v, _ := verdict(again); v != "Approved" {
		t.Fatalf("replayed authorize reply changed: %v", again)
	}
	if s.sims["5"].Read().Contactor {
		t.Fatal("replayed authorize closed the contactor again")
	}
	replay := s.command("stop-1", "stop", stopBody(t, map[string]any{"CardHash": "something else"}))
	if !jsonEqual(first, replay) {
		t.Fatalf("replayed stop got %v, first reply was %v", replay, first)
	}
	if got := s.session(seedSpark).State; !ended(got) {
		t.Fatalf("state = %s", got)
	}
}

// A stop whose identifiers do not all agree with the session is Declined
// and stops nothing.
func TestStopMismatchDeclined(t *testing.T) {
	s := startSite(t)
	s.charge()
	cases := []struct {
		name string
		set  map[string]any
		code float64
		desc string
	}{
		{"card hash", map[string]any{"CardHash": strings.Repeat("ab", 32)}, 26, "CardHash"},
		{"nayax id", map[string]any{"NayaxTransactionId": 2004545073}, 26, "NayaxTransactionId"},
		{"machine id", map[string]any{"MachineId": 71234997}, 26, "MachineId"},
		{"hw serial", map[string]any{"HwSerial": "0434334921100367"}, 26, "HwSerial"},
		{"station", map[string]any{"ServiceStationNumber": "6"}, 26, "ServiceStationNumber"},
		{"unknown transaction", map[string]any{"SparkTransactionId": "00000000-0000-0000-0000-000000000000"}, 27, "unknown transaction"},
		{"missing card hash", map[string]any{"CardHash": nil}, 997, "CardHash"},
		{"wrong type", map[string]any{"MachineId": "seventy"}, 26, "MachineId"},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			reply := s.command("mismatch-"+string(rune('a'+i)), "stop", stopBody(t, c.set))
			v, code := verdict(reply)
			desc, _ := reply["Status"].(map[string]any)["ErrorDescription"].(string)
			if v != "Declined" || code != c.code || !strings.Contains(desc, c.desc) {
				t.Fatalf("reply = %v; want Declined %v mentioning %q", reply, c.code, c.desc)
			}
			if !s.sims["5"].Read().Contactor || s.session(seedSpark).State != "charging" {
				t.Fatal("a refused stop stopped the session")
			}
		})
	}
}

// Nayax's number/string quirks: a HwSerial that lost its leading zero and
// an int64 transaction id that must not pass through float64.
func TestNayaxQuirks(t *testing.T) {
	s := startSite(t)
	big := json.Number("9223372036854775807")
	body := authBody(t, "5", map[string]any{"HwSerial": json.Number("434334921100366"), "NayaxTransactionId": big, "MachineId": nil})
	if v, code := verdict(s.command("auth-q", "authorize", body)); v != "Approved" {
		t.Fatalf("authorize with number HwSerial: %s %v", v, code)
	}
	got := s.waitState(seedSpark, "charging")
	if got.NayaxTransactionID != 9223372036854775807 {
		t.Fatalf("nayax id = %d", got.NayaxTransactionID)
	}
	// Stop by NayaxTransactionId given as a string, serial without zero.
	stop := stopBody(t, map[string]any{"SparkTransactionId": nil, "NayaxTransactionId": "9223372036854775807", "HwSerial": json.Number("434334921100366")})
	if v, code := verdict(s.command("stop-q", "stop", stop)); v != "Approved" {
		t.Fatalf("stop by int64 nayax id: %s %v", v, code)
	}
	s.waitEnded(seedSpark)
}

// Bad input gets a clear answer when there is someone to answer, and the
// daemon carries on either way.
func TestMalformedCommands(t *testing.T) {
	s := startSite(t)
	cases := []struct {
		name    string
		payload string
		id      string // "" = no reply expected
		code    float64
	}{
		{"body not an object", `{"id":"m1","type":"stop","body":"oops"}`, "m1", 26},
		{"body not JSON", `{"id":"m2","type":"stop","body":{"CardHash":}`, "", 0},
		{"missing mandatory", `{"id":"m3","type":"stop","body":{"MachineId":71234996}}`, "m3", 997},
		{"wrong type", `{"id":"m4","type":"authorize","body":{"AuthStatus":5,"MachineId":71234996}}`, "m4", 26},
		{"amount zero", `{"id":"m5","type":"authorize","body":{"AuthStatus":{"Verdict":"Approved"},"MachineId":71234996,"NayaxTransactionId":1,"SparkTransactionId":"x","Amount":0,"CardHash":"h","ServiceStationNumber":"5"}}`, "m5", 26},
		{"unknown machine", `{"id":"m6","type":"authorize","body":{"AuthStatus":{"Verdict":"Approved"},"MachineId":1,"NayaxTransactionId":1,"SparkTransactionId":"x","Amount":5,"CardHash":"h","ServiceStationNumber":"5"}}`, "m6", 25},
		{"not JSON at all", `hello`, "", 0},
		{"oversized", `{"id":"m7","type":"stop","body":{"x":"` + strings.Repeat("a", 70<<10) + `"}}`, "", 0},
		{"unsupported type", `{"id":"m8","type":"frobnicate","body":{}}`, "m8", 52},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			typ := "stop"
			if strings.Contains(c.payload, `"authorize"`) {
				typ = "authorize"
			}
			if strings.Contains(c.payload, `"frobnicate"`) {
				typ = "frobnicate"
			}
			if c.id == "" {
				s.cloud.Publish(s.topics.Command(typ), []byte(c.payload))
				return
			}
			body := s.rawCommand(typ, []byte(c.payload), c.id)
			if v, code := verdict(body); v != "Declined" || code != c.code {
				t.Fatalf("reply = %v; want Declined %v", body, c.code)
			}
		})
	}
	// Still alive and answering.
	s.charge()
}

// Broker down mid-session: the daemon keeps working, buffers, and on
// return every event arrives once, in order.
func TestBrokerOutage(t *testing.T) {
	s := startSite(t)
	s.charge()
	waitFor(t, 10*time.Second, "outbox drained", func() bool {
		st, err := s.api.Status()
		return err == nil && st.OutboxDepth == 0
	})
	s.broker.Stop()
	waitFor(t, 10*time.Second, "daemon notices the outage", func() bool {
		st, err := s.api.Status()
		return err == nil && !st.Connected
	})
	// The vehicle leaves while the site is offline: the session stops
	// locally and the events wait in the outbox.
	s.sims["5"].Unplug()
	s.waitEnded(seedSpark)
	if s.sims["5"].Read().Contactor {
		t.Fatal("contactor closed after unplug")
	}
	st, _ := s.api.Status()
	if st.OutboxDepth < 3 {
		t.Fatalf("outbox depth while offline = %d, want the station and session events", st.OutboxDepth)
	}
	s.broker.Restart()
	waitFor(t, 15*time.Second, "outbox drained after the outage", func() bool {
		st, err := s.api.Status()
		return err == nil && st.Connected && st.OutboxDepth == 0
	})
	waitFor(t, 10*time.Second, "stopped event at the cloud", func() bool {
		for _, e := range events(s.cloud, s.cfg.MQTT.TopicPrefix, "session") {
			if bytes.Contains(e.Body, []byte(`"to":"stopped"`)) {
				return true
			}
		}
		return false
	})
	evs := events(s.cloud, s.cfg.MQTT.TopicPrefix, "")
	for i, e := range evs {
		if e.Seq != uint64(i+1) {
			t.Fatalf("event %d has seq %d: events not once each in order: %v", i, e.Seq, seqs(evs))
		}
	}
}

// Shutdown opens every contactor and records the running session as
// interrupted; the next start ends it with its energy, and a clean
// disconnect still leaves an offline state behind.
func TestShutdownInterruptsAndRestartEnds(t *testing.T) {
	s := startSite(t)
	s.charge()
	waitFor(t, 5*time.Second, "energy", func() bool { return s.session(seedSpark).EnergyWh > 0 })
	s.stop()
	if s.sims["5"].Read().Contactor {
		t.Fatal("contactor closed after shutdown")
	}
	waitFor(t, 5*time.Second, "offline state", func() bool {
		for _, m := range s.cloud.All() {
			if m.Topic == s.topics.State() && bytes.Contains(m.Payload, []byte(`"online":false`)) {
				return true
			}
		}
		return false
	})
	s.start()
	got := s.waitEnded(seedSpark)
	if got.StopReason != "shutdown" || got.EnergyWh <= 0 {
		t.Fatalf("after restart: %+v", got)
	}
	// Births carry a growing epoch.
	var epochs []int64
	for _, m := range s.cloud.All() {
		if m.Topic == s.topics.State() {
			var st wire.State
			if json.Unmarshal(m.Payload, &st) == nil && st.Online {
				epochs = append(epochs, st.Epoch)
			}
		}
	}
	if len(epochs) < 2 || epochs[len(epochs)-1] <= epochs[0] {
		t.Fatalf("birth epochs = %v, want increasing", epochs)
	}
}

func seqs(evs []wire.Event) []uint64 {
	out := make([]uint64, len(evs))
	for i, e := range evs {
		out[i] = e.Seq
	}
	return out
}

func jsonEqual(a, b any) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	var x, y any
	_ = json.Unmarshal(ja, &x)
	_ = json.Unmarshal(jb, &y)
	xa, _ := json.Marshal(x)
	ya, _ := json.Marshal(y)
	return bytes.Equal(xa, ya)
}
