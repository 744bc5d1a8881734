package relay_test

import (
	"context"
	"crypto/aes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sitelink/sitelink/daemon/config"
	"github.com/sitelink/sitelink/daemon/nayaxsim"
)

// budget is the relays' ack budget in these tests: every answer must come
// within it (plus the HTTP round trip), whatever the site does.
const budget = 2 * time.Second

// deviceSite is a site controller whose terminal uses Device Start and
// StopNotify: station 5 with a vehicle, 6 without.
func (e *env) deviceSite(node string, edit func(*config.Edge)) *edgeProc {
	e.t.Helper()
	return e.startEdgeWith(node, e.t.TempDir(), func(c *config.Edge) {
		c.Terminals[0].Start, c.Terminals[0].Stop = config.StartDevice, config.StopNotify
		c.Terminals[0].PreauthAmount = 25
		c.Policy.Reservation = config.Duration(30 * time.Second)
		// A Device Start or StopNotify is served only with time to
		// switch the contactor within the relay's budget.
		c.Policy.ContactorTimeout = config.Duration(500 * time.Millisecond)
		if edit != nil {
			edit(c)
		}
	})
}

// call posts a Device Start call and decodes the answer, checking that
// it came within the budget.
func call(t *testing.T, url, path string, body any) map[string]any {
	t.Helper()
	b, _ := json.Marshal(body)
	start := time.Now()
	code, resp := post(t, url, "/api/"+path, "application/json", b)
	if took := time.Since(start); took > budget+time.Second {
		t.Errorf("%s answered after %v, beyond the %v budget", path, took, budget)
	}
	var m map[string]any
	if code != 200 || json.Unmarshal(resp, &m) != nil {
		t.Fatalf("%s: HTTP %d %s", path, code, resp)
	}
	return m
}

func verdictOf(m map[string]any) string {
	st, _ := m["Status"].(map[string]any)
	v, _ := st["Verdict"].(string)
	return v
}

var randoms atomic.Int64

// startSession runs StartSession and checks the cipher as Nayax would,
// with AES itself (not the code that built it): it decrypts under the 32
// rightmost characters of the token secret to
// "{SparkTransactionId}={Random}{yyMMddHHmm UTC}".
func (e *env) startSession(url string) string {
	t := e.t
	t.Helper()
	random := fmt.Sprintf("Rnd%014d", randoms.Add(1))
	m := call(t, url, "StartSession", map[string]any{"HwSerial": serial, "MachineId": machine, "TokenId": e.sim.Options().TokenID, "Random": random})
	spark, _ := m["SparkTransactionId"].(string)
	if verdictOf(m) != "Approved" || len(spark) != 36 {
		t.Fatalf("StartSession: %v", m)
	}
	raw, err := base64.StdEncoding.DecodeString(m["Cipher"].(string))
	if err != nil || len(raw)%aes.BlockSize != 0 {
		t.Fatalf("cipher %q: %v", m["Cipher"], err)
	}
	block, err := aes.NewCipher(e.sim.Options().TokenSecret)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < len(raw); i += aes.BlockSize {
		block.Decrypt(raw[i:i+aes.BlockSize], raw[i:i+aes.BlockSize])
	}
	plain := string(raw[:len(raw)-int(raw[len(raw)-1])])
	want := spark + "=" + random
	if !strings.HasPrefix(plain, want) || len(plain) != len(want)+10 {
		t.Fatalf("cipher plaintext %q, want %q + yyMMddHHmm", plain, want)
	}
	at, err := time.Parse("0601021504", plain[len(want):])
	if err != nil || time.Since(at) > 5*time.Minute || time.Until(at) > time.Minute {
		t.Fatalf("cipher time %q: %v", plain[len(want):], err)
	}
	return spark
}

func (e *env) infoQuery(url, spark, station string) map[string]any {
	e.t.Helper()
	return call(e.t, url, "InfoQuery", map[string]any{"HwSerial": serial, "MachineId": machine, "SparkTransactionId": spark, "ServiceStationNumber": station, "SiteId": 2})
}

var nayaxIDs atomic.Int64

// notify registers the authorized transaction at nayaxsim (so Settlement
// and CancelTransaction find it) and posts its TransactionNotify.
func (e *env) notify(url, spark, station, cardHash string) (nayaxsim.Txn, map[string]any) {
	e.t.Helper()
	tx := nayaxsim.Txn{NayaxTransactionID: 3004545000 + nayaxIDs.Add(1), SparkTransactionID: spark, SiteID: 2, MachineAuTime: "20261206101500000",
		MachineID: machine, HwSerial: serial, Station: station, Amount: 25, Remote: true}
	e.sim.Register(tx)
	m := call(e.t, url, "TransactionNotify", map[string]any{"HwSerial": serial, "MachineId": machine, "NayaxTransactionId": tx.NayaxTransactionID,
		"SparkTransactionId": spark, "Amount": 25, "CardLast4Digits": "1234", "CardHash": cardHash, "CardUid": "1288528281124927",
		"ServiceStationNumber": station, "SiteId": 2, "MachineAuTime": tx.MachineAuTime})
	return tx, m
}

func (e *env) stopNotify(url, cardHash, station string) map[string]any {
	e.t.Helper()
	b := map[string]any{"StopSiteId": 4, "MachineId": machine, "HwSerial": serial, "CardLast4Digits": "1234", "CardHash": cardHash, "CardUid": "1288528281124927"}
	if station != "" {
		b["ServiceStationNumber"] = station
	}
	return call(e.t, url, "StopNotify", b)
}

// Device Start end to end: StartSession's cipher, InfoQuery's
// availability, price display and amount, the reservation, the session
// it authorizes, and a StopNotify stop that settles.
func TestDeviceStartAndStopNotify(t *testing.T) {
	e := newEnv(t)
	r := e.startRelay("relay-1", budget)
	site := e.deviceSite("site-device", nil)
	waitRoute(t, r.url)
	const card, other = "aa11aa11aa11aa11aa11aa11aa11aa11aa11aa11aa11aa11aa11aa11aa11aa11", "bb22bb22bb22bb22bb22bb22bb22bb22bb22bb22bb22bb22bb22bb22bb22bb22"

	spark := e.startSession(r.url)
	info := e.infoQuery(r.url, spark, "5")
	if info["ServiceStationAvailability"] != 1.0 || verdictOf(info) != "Approved" || info["Amount"] != 25.0 ||
		info["PosDisplay"] != ";Charging Station:5;Price:0.39 EUR/kWh;" || info["SparkTransactionId"] != spark || info["ServiceStationNumber"] != "5" {
		t.Fatalf("InfoQuery: %v", info)
	}
	// Another consumer at the same station meanwhile: reserved.
	rival := e.startSession(r.url)
	if got := e.infoQuery(r.url, rival, "5"); got["ServiceStationAvailability"] != 2.0 || verdictOf(got) != "Declined" {
		t.Fatalf("InfoQuery for a reserved station: %v", got)
	}
	tx, ans := e.notify(r.url, spark, "5", card)
	if verdictOf(ans) != "Approved" || ans["NayaxTransactionId"] != float64(tx.NayaxTransactionID) || ans["SparkTransactionId"] != spark {
		t.Fatalf("TransactionNotify: %v", ans)
	}
	s := sessionOf(t, site.api, spark, "charging")
	if s.Origin != "device-start" || s.AuthorizedMinor != 2500 {
		t.Fatalf("session %+v", s)
	}
	if got := e.infoQuery(r.url, e.startSession(r.url), "5"); got["ServiceStationAvailability"] != 2.0 {
		t.Fatalf("InfoQuery for a station in session: %v", got)
	}
	// A TransactionNotify for the busy station (its terminal skipped the
	// InfoQuery): Declined, its hold cancelled, the session untouched.
	busy, ans := e.notify(r.url, e.startSession(r.url), "5", other)
	if verdictOf(ans) != "Declined" {
		t.Fatalf("TransactionNotify for a busy station: %v", ans)
	}
	waitFor(t, 10*time.Second, "the busy station's hold cancelled", func() bool {
		nt, _ := e.sim.Txn(busy.NayaxTransactionID)
		return nt.State == nayaxsim.StateCancelled
	})
	sessionOf(t, site.api, spark, "charging")

	// Device Stop: another card stops nothing; the paying card stops
	// it, and the answer names the session.
	if got := e.stopNotify(r.url, other, ""); verdictOf(got) != "Declined" || !contactor(t, site.api, "5") {
		t.Fatalf("StopNotify with another card: %v", got)
	}
	got := e.stopNotify(r.url, card, "")
	if verdictOf(got) != "Approved" || got["SparkTransactionId"] != spark || got["NayaxTransactionId"] != float64(tx.NayaxTransactionID) ||
		got["SiteId"] != 2.0 || got["StopSiteId"] != 4.0 || got["MachineId"] != float64(machine) || got["HwSerial"] != serial ||
		got["MachineAuTime"] != tx.MachineAuTime {
		t.Fatalf("StopNotify: %v", got)
	}
	if contactor(t, site.api, "5") {
		t.Fatal("contactor still closed after StopNotify")
	}
	s = sessionOf(t, site.api, spark, "settled")
	if nt, _ := e.sim.Txn(tx.NayaxTransactionID); nt.State != nayaxsim.StateSettled || len(e.sim.Requests("Settlement")) != 1 || s.AmountMinor <= 0 {
		t.Fatalf("nayaxsim %+v, session %+v", nt, s)
	}
	// The station is free again.
	if got := e.infoQuery(r.url, e.startSession(r.url), "5"); got["ServiceStationAvailability"] != 1.0 {
		t.Fatalf("InfoQuery after the session: %v", got)
	}
}

// Two consumers race for one station: one gets it, the other's
// TransactionNotify is Declined and its hold released at once; a
// reservation that timed out is Declined the same way.
func TestDeviceStartRefusals(t *testing.T) {
	e := newEnv(t)
	r := e.startRelay("relay-1", budget)
	site := e.deviceSite("site-race", func(c *config.Edge) { c.Policy.Reservation = config.Duration(time.Second) })
	waitRoute(t, r.url)

	a, b := e.startSession(r.url), e.startSession(r.url)
	infoA, infoB := e.infoQuery(r.url, a, "5"), e.infoQuery(r.url, b, "5")
	if infoA["ServiceStationAvailability"] != 1.0 || infoB["ServiceStationAvailability"] == 1.0 {
		t.Fatalf("race: %v / %v", infoA, infoB)
	}
	// b was authorized at Nayax anyway (a terminal that did not listen):
	// Declined, and the hold released.
	txB, ans := e.notify(r.url, b, "5", "cc33cc33cc33cc33cc33cc33cc33cc33cc33cc33cc33cc33cc33cc33cc33cc33")
	if verdictOf(ans) != "Declined" {
		t.Fatalf("TransactionNotify for a station reserved for another: %v", ans)
	}
	waitFor(t, 10*time.Second, "the refused hold cancelled", func() bool {
		nt, _ := e.sim.Txn(txB.NayaxTransactionID)
		return nt.State == nayaxsim.StateCancelled
	})
	// a's reservation runs out before its TransactionNotify.
	time.Sleep(1200 * time.Millisecond)
	txA, ans := e.notify(r.url, a, "5", "dd44dd44dd44dd44dd44dd44dd44dd44dd44dd44dd44dd44dd44dd44dd44dd44")
	if verdictOf(ans) != "Declined" || !strings.Contains(fmt.Sprint(ans), "expired") {
		t.Fatalf("TransactionNotify after the reservation expired: %v", ans)
	}
	waitFor(t, 10*time.Second, "the late hold cancelled", func() bool {
		nt, _ := e.sim.Txn(txA.NayaxTransactionID)
		return nt.State == nayaxsim.StateCancelled
	})
	if contactor(t, site.api, "5") {
		t.Fatal("a refused Device Start closed the contactor")
	}

	// A site that is gone: out of service within the budget.
	site.stop()
	if got := e.infoQuery(r.url, e.startSession(r.url), "5"); got["ServiceStationAvailability"] != 3.0 || verdictOf(got) != "Declined" {
		t.Fatalf("InfoQuery with the site offline: %v", got)
	}
}

// StopNotify never stops what the card did not pay for here: a card
// whose session is at another site, and a card with two sessions, are
// Declined and nothing stops.
func TestStopNotifyMatching(t *testing.T) {
	e := newEnv(t)
	r := e.startRelay("relay-1", budget)
	site := e.deviceSite("site-notify", func(c *config.Edge) {
		c.Stations[1].Sim.Vehicle = config.VehiclePresent
	})
	waitRoute(t, r.url)
	const card = "ee55ee55ee55ee55ee55ee55ee55ee55ee55ee55ee55ee55ee55ee55ee55ee55"
	for _, station := range []string{"5", "6"} {
		spark := e.startSession(r.url)
		if info := e.infoQuery(r.url, spark, station); info["ServiceStationAvailability"] != 1.0 {
			t.Fatalf("InfoQuery %s: %v", station, info)
		}
		if _, ans := e.notify(r.url, spark, station, card); verdictOf(ans) != "Approved" {
			t.Fatalf("TransactionNotify %s: %v", station, ans)
		}
		sessionOf(t, site.api, spark, "charging")
	}
	if got := e.stopNotify(r.url, card, ""); verdictOf(got) != "Declined" || !strings.Contains(fmt.Sprint(got), "2 ongoing sessions") {
		t.Fatalf("StopNotify for a card with two sessions: %v", got)
	}
	if !contactor(t, site.api, "5") || !contactor(t, site.api, "6") {
		t.Fatal("an ambiguous StopNotify stopped a station")
	}
	// The station number narrows it to one.
	if got := e.stopNotify(r.url, card, "6"); verdictOf(got) != "Approved" || got["SparkTransactionId"] == nil {
		t.Fatalf("StopNotify for station 6: %v", got)
	}
	if contactor(t, site.api, "6") || !contactor(t, site.api, "5") {
		t.Fatal("the narrowed StopNotify stopped the wrong station")
	}
	// A card whose session is at another site (its own terminal,
	// authorized there): this site has no such session, nothing stops
	// anywhere.
	other := e.startEdgeWith("site-other", t.TempDir(), func(c *config.Edge) {
		c.Terminals[0].MachineID, c.Terminals[0].HwSerial = 71230077, "0999000000077"
	})
	waitFor(t, 10*time.Second, "the other site routed", func() bool { return metricValue(t, r.url, "sitelink_relay_terminals") == 2 })
	e.sim.SetRelay(r.url)
	tap, err := e.sim.Tap(context.Background(), nayaxsim.Terminal{MachineID: 71230077, HwSerial: "0999000000077"}, "5", "traveller", 20)
	if err != nil || tap.Kind != "authorize" {
		t.Fatalf("tap at the other site: %+v %v", tap, err)
	}
	sessionOf(t, other.api, tap.Txn.SparkTransactionID, "charging")
	if got := e.stopNotify(r.url, tap.Txn.CardHash, ""); verdictOf(got) != "Declined" || !contactor(t, other.api, "5") {
		t.Fatalf("StopNotify here for a session at another site: %v", got)
	}
	// A card that paid at no session of this site.
	if got := e.stopNotify(r.url, "ff66ff66ff66ff66ff66ff66ff66ff66ff66ff66ff66ff66ff66ff66ff66ff66", ""); verdictOf(got) != "Declined" {
		t.Fatalf("StopNotify with an unknown card: %v", got)
	}
}

// nayaxsim plays Device Start and StopNotify against the real chain: its
// tap runs StartSession (checking the cipher), InfoQuery and
// TransactionNotify; its second tap sends StopNotify, without ids.
func TestNayaxsimDeviceStart(t *testing.T) {
	e := newEnv(t)
	r := e.startRelay("relay-1", budget)
	site := e.deviceSite("site-sim", nil)
	waitRoute(t, r.url)
	e.sim.SetRelay(r.url)
	term := nayaxsim.Terminal{MachineID: machine, HwSerial: serial, DeviceStart: true, StopNotify: true}
	tap, err := e.sim.Tap(context.Background(), term, "5", "dora", 25)
	if err != nil || tap.Kind != nayaxsim.KindAuthorize || tap.Availability != 1 || !strings.Contains(tap.PosDisplay, "Price:0.39 EUR/kWh") || tap.InfoAmount != 25 {
		t.Fatalf("Device Start tap: %+v %v", tap, err)
	}
	for _, c := range tap.Calls {
		if c.Elapsed > budget+time.Second {
			t.Errorf("%s took %v", c.Call, c.Elapsed)
		}
	}
	sessionOf(t, site.api, tap.Txn.SparkTransactionID, "charging")
	waitFor(t, 10*time.Second, "energy worth a cent", func() bool {
		sts, err := site.api.Stations()
		return err == nil && len(sts) > 0 && sts[0].EnergyWh > 100
	})
	stop, err := e.sim.Tap(context.Background(), term, "5", "dora", 25)
	if err != nil || stop.Kind != nayaxsim.KindStop || stop.Reason != "" {
		t.Fatalf("StopNotify tap: %+v %v", stop, err)
	}
	sessionOf(t, site.api, tap.Txn.SparkTransactionID, "settled")
	if nt, _ := e.sim.Txn(tap.Txn.NayaxTransactionID); nt.State != nayaxsim.StateSettled {
		t.Fatalf("nayaxsim %+v", nt)
	}
}

// A site cannot make a terminal hold more of a consumer's money than any
// remote start may ask: the relay caps InfoQuery's Amount at
// relay.max_start_amount (out of service beyond it, counted).
func TestDeviceStartAmountCapped(t *testing.T) {
	e := newEnv(t)
	r := e.startRelay("relay-1", budget)
	e.deviceSite("site-greedy", func(c *config.Edge) { c.Terminals[0].PreauthAmount = 300 })
	waitRoute(t, r.url)
	got := e.infoQuery(r.url, e.startSession(r.url), "5")
	if got["ServiceStationAvailability"] != 3.0 || verdictOf(got) != "Declined" || got["Amount"] != nil {
		t.Fatalf("InfoQuery with a pre-authorization over the cap: %v", got)
	}
	if n := metricValue(t, r.url, `sitelink_relay_node_requests_refused_total{reason="over_max_start"}`); n != 1 {
		t.Fatalf("refusal counted %d times", n)
	}
}
