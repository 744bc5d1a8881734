package main

import (
	"context"
	"syscall"
	"testing"
	"time"

	"github.com/sitelink/sitelink/daemon/link"
	"github.com/sitelink/sitelink/daemon/localapi"
	"github.com/sitelink/sitelink/daemon/mqtttest"
	"github.com/sitelink/sitelink/daemon/nayax"
	"github.com/sitelink/sitelink/daemon/nayaxsim"
	"github.com/sitelink/sitelink/daemon/relay"
)

// The site decides the money (settle or cancel) while the broker is down
// and is SIGKILLed before anything is published: after both come back,
// Nayax gets the request, once.
func TestKilledBetweenDecisionAndPublish(t *testing.T) {
	b := mqtttest.Start(t)
	sim, err := nayaxsim.Start(nayaxsim.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	so := sim.Options()
	client, err := nayax.NewClient(nayax.ClientConfig{BaseURL: sim.URL(), IntegratorID: so.IntegratorID, SignKey: so.SignKey, TokenID: so.TokenID, TokenSecret: so.TokenSecret})
	if err != nil {
		t.Fatal(err)
	}
	r, err := relay.New(relay.Options{ID: "relay-k", Prefix: "sitelink/v1", Listen: "127.0.0.1:0", Nayax: client, CardKey: []byte(testCardKey), InsecureAllowUnauthenticatedCallbacks: true,
		Link: link.Options{Broker: b.URL, BackoffMin: 50 * time.Millisecond, BackoffMax: 300 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	defer func() { cancel(); <-done }()
	sim.SetRelay("http://" + r.Addr())

	cfg, socket := writeConfig(t, b.URL)
	if err := run([]string{"fleet", "terminals", "-broker", b.URL, "-give-from", cfg}, &discard{}, &discard{}); err != nil {
		t.Fatal(err)
	}
	p := startDaemon(t, cfg, socket)
	api := localapi.NewClient(socket)
	waitFor(t, "relay knows the site", func() bool {
		res, err := sim.Tap(context.Background(), nayaxsim.Terminal{MachineID: 71234996, HwSerial: "0434334921100366"}, "5", "liz", 10)
		return err == nil && res.Kind == "authorize" && res.HTTPStatus == 200 && sessionState(api) == "authorized" || sessionState(api) == "charging"
	})
	waitSession(t, api, "charging")
	txns := sim.Txns()
	txn := txns[len(txns)-1]

	b.Stop()
	// The vehicle leaves: the stop, the settle-or-cancel decision and its
	// request event commit in one transaction, unpublished.
	if err := run([]string{"sim", "-socket", socket, "-station", "5", "unplug"}, &discard{}, &discard{}); err != nil {
		t.Fatal(err)
	}
	waitSession(t, api, "cancelling", "settling")
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = p.cmd.Wait()

	b.Restart()
	startDaemon(t, cfg, socket)
	s := waitSession(t, api, "cancelled", "settled")
	got, _ := sim.Txn(txn.NayaxTransactionID)
	if got.State != s.State || got.Cancels+got.Settles != 1 {
		t.Fatalf("after the restart: session %s, nayaxsim %+v", s.State, got)
	}
}

func sessionState(api *localapi.Client) string {
	ss, err := api.Sessions(1)
	if err != nil || len(ss) == 0 {
		return ""
	}
	return ss[0].State
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }
