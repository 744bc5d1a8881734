package relay_test

import (
	"fmt"
	"io"
	"math"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sitelink/sitelink/daemon/config"
	"github.com/sitelink/sitelink/daemon/nayax"
	"github.com/sitelink/sitelink/daemon/nayaxsim"
	"github.com/sitelink/sitelink/daemon/wire"
)

// A cancel decided while the broker is down reaches Nayax within 5 s of
// the broker's return, also when the broker lost everything (restarted
// without persistence) and the site published its event before any relay
// had subscribed again: the relay's presence makes the site send it again
// at once, not after policy.result_timeout (90 s here).
func TestCancelDecidedOfflineBrokerEmpty(t *testing.T) {
	e := newEnv(t)
	site := e.startEdgeWith("site-empty", t.TempDir(), func(cfg *config.Edge) {
		// Long enough for the relay's shutdown (up to 5 s while a fresh
		// connection has sent nothing) and the broker's to come first.
		cfg.Policy.PlugTimeout = config.Duration(8 * time.Second)
		cfg.Policy.ResultTimeout = config.Duration(90 * time.Second)
	})
	r := e.startRelay("relay-1", 4*time.Second)
	waitRoute(t, r.url)
	e.sim.SetRelay(r.url)
	tap := e.tap("6", "ivy", 10)
	sessionOf(t, site.api, tap.Txn.SparkTransactionID, "authorized")

	// The relay goes first, then the broker; the cancel is decided
	// offline.
	r.stop()
	e.broker.Stop()
	s := sessionOf(t, site.api, tap.Txn.SparkTransactionID, "cancelling")
	if s.Request == nil || s.Request.Kind != "cancel" {
		t.Fatalf("decided offline: %+v", s)
	}
	e.broker.RestartEmpty()
	back := time.Now()
	// The site is back first and publishes its event to a broker where
	// no relay is subscribed: it reaches nobody.
	waitFor(t, 10*time.Second, "the site published its outbox", func() bool {
		st, err := site.api.Status()
		return err == nil && st.Connected && st.OutboxDepth == 0
	})
	if n := len(e.sim.Requests("ExternalCancel")); n != 0 {
		t.Fatalf("%d ExternalCancel before any relay was back", n)
	}
	r2 := e.startRelay("relay-1", 4*time.Second)
	e.sim.SetRelay(r2.url)
	waitFor(t, 10*time.Second, "the cancel at Nayax", func() bool { return len(e.sim.Requests("ExternalCancel")) > 0 })
	took := time.Since(back)
	t.Logf("cancel at Nayax %v after the broker came back empty", took.Round(time.Millisecond))
	if took > 5*time.Second {
		t.Fatalf("cancel reached Nayax %v after the broker's return, want within 5 s", took)
	}
	sessionOf(t, site.api, tap.Txn.SparkTransactionID, "cancelled")
	if n, _ := e.sim.Txn(tap.Txn.NayaxTransactionID); n.State != "cancelled" || n.Cancels != 1 {
		t.Fatalf("nayaxsim txn %+v", n)
	}
}

// A relay that has Nayax's answer but cannot publish the result (the
// broker went away during the call) keeps it and publishes it when the
// broker is back: Nayax sees the call once, the session completes.
func TestResultPublishedAfterBrokerOutage(t *testing.T) {
	e := newEnv(t)
	site := e.startEdgeWith("site-publish", t.TempDir(), func(cfg *config.Edge) {
		cfg.Policy.PlugTimeout = config.Duration(300 * time.Millisecond)
		cfg.Policy.ResultTimeout = config.Duration(90 * time.Second)
	})
	r := e.startRelay("relay-1", 4*time.Second)
	waitRoute(t, r.url)
	e.sim.SetRelay(r.url)
	e.sim.Fail("ExternalCancel", nayaxsim.Failure{Times: 1, Delay: 1500 * time.Millisecond})
	tap := e.tap("6", "kim", 10)
	waitFor(t, 10*time.Second, "the call reached Nayax", func() bool { return len(e.sim.Requests("ExternalCancel")) > 0 })
	e.broker.Stop()
	time.Sleep(2 * time.Second) // Nayax answered; the relay could not publish
	e.broker.Restart()
	sessionOf(t, site.api, tap.Txn.SparkTransactionID, "cancelled")
	if n := len(e.sim.Requests("ExternalCancel")); n != 1 {
		t.Fatalf("Nayax saw %d ExternalCancel calls, want 1", n)
	}
	if n, _ := e.sim.Txn(tap.Txn.NayaxTransactionID); n.Cancels != 1 {
		t.Fatalf("nayaxsim txn %+v", n)
	}
}

// A settlement whose first call reached Nayax but whose answer never came
// back (the relay's call timed out while Nayax went on with it) is sent
// again; Nayax answers "already completed (settled)" and the session is
// settled, both answers kept, not flagged.
func TestRepeatedSettlementAlreadySettled(t *testing.T) {
	e := newEnv(t)
	site := e.startEdgeWith("site-dup", t.TempDir(), func(cfg *config.Edge) {
		cfg.Policy.RetryMin = config.Duration(1500 * time.Millisecond)
		cfg.Policy.RetryMax = config.Duration(3 * time.Second)
	})
	r := e.startRelayWith("relay-1", 4*time.Second, func(c *nayax.ClientConfig) { c.Timeout, c.Attempts = time.Second, 1 })
	waitRoute(t, r.url)
	e.sim.SetRelay(r.url)
	first := e.tap("5", "lea", 20)
	waitFor(t, 10*time.Second, "energy above the minimum", func() bool {
		s := sessionOf(t, site.api, first.Txn.SparkTransactionID, "charging")
		return s.EnergyWh >= 20
	})
	// Nayax takes 1.5 s, the relay waits 1 s: the first answer is lost,
	// the settlement is done at Nayax.
	e.sim.Fail("ExternalSettlement", nayaxsim.Failure{Times: 1, Delay: 1500 * time.Millisecond})
	if stop := e.tap("5", "lea", 0); stop.Kind != "stop" {
		t.Fatalf("second tap: %+v", stop)
	}
	s := sessionOf(t, site.api, first.Txn.SparkTransactionID, "settled", "needs-reconciliation")
	if s.State != "settled" || s.LastAnswer == nil || s.LastAnswer.Code != 28 {
		t.Fatalf("after the repeat: %s %+v", s.State, s.LastAnswer)
	}
	if len(s.Answers) != 2 || s.Answers[0].Outcome != "error" {
		t.Fatalf("answers kept: %+v", s.Answers)
	}
	// Nayax counts the repeat it answered 28; the money was taken once.
	if n, _ := e.sim.Txn(first.Txn.NayaxTransactionID); n.Settles != 2 || int64(math.Round(n.SettledAmount*100)) != s.AmountMinor || s.AmountMinor <= 0 {
		t.Fatalf("nayaxsim txn %+v, session amount %v", n, s.Amount)
	}
}

// An event a site sends twice under the same id (killed between the
// broker's PUBACK and its outbox delete), or a request sent again under a
// new id, is answered from memory, also by a replica that did not serve
// it: Nayax sees one call.
func TestRepeatedEventAnsweredFromMemory(t *testing.T) {
	e := newEnv(t)
	r1 := e.startRelay("relay-1", 300*time.Millisecond)
	r2 := e.startRelay("relay-2", 300*time.Millisecond)
	e.fakeSite()
	waitRoute(t, r1.url)
	waitRoute(t, r2.url)
	txn := e.authorized(r1.url)

	seq++
	id := fmt.Sprintf("%s-%d", fakeNode, seq)
	payload, err := wire.EventPayload(fakeNode, seq, "cancel-request", time.Now(), e.externalCancel(txn))
	if err != nil {
		t.Fatal(err)
	}
	topic := prefix + "/nodes/" + fakeNode + "/events/cancel-request"
	e.cloud.Publish(topic, payload)
	if res := e.awaitResult(id); res.Outcome != wire.OutcomeApproved {
		t.Fatalf("first: %+v", res)
	}
	// Whichever replica the broker deals them to.
	for i := 0; i < 4; i++ {
		e.cloud.Publish(topic, payload)
	}
	again := e.emit("cancel-request", e.externalCancel(txn))
	res := e.awaitResult(again)
	waitFor(t, 10*time.Second, "five results for the repeated id", func() bool { return len(e.results()[id]) == 5 })
	if res.Outcome != wire.OutcomeApproved {
		t.Fatalf("resent request: %+v", res)
	}
	for _, r := range e.results()[id] {
		if r.Outcome != wire.OutcomeApproved {
			t.Fatalf("repeat answered %+v", r)
		}
	}
	if n := len(e.sim.Requests("ExternalCancel")); n != 1 {
		t.Fatalf("Nayax saw %d ExternalCancel calls, want 1", n)
	}
	var served int
	for _, u := range []string{r1.url, r2.url} {
		served += metricValue(t, u, "sitelink_relay_events_served_from_memory_total")
	}
	if served != 5 {
		t.Fatalf("%d events served from memory, want 5", served)
	}
}

// metricValue sums a counter's samples in a relay's /metrics.
func metricValue(t *testing.T, url, name string) int {
	t.Helper()
	resp, err := http.Get(adminURL(t, url) + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	n := 0
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, name) {
			var v float64
			fmt.Sscan(l[strings.LastIndexByte(l, ' ')+1:], &v)
			n += int(v)
		}
	}
	return n
}
