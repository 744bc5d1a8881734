package edge

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/sitelink/sitelink/daemon/localapi"
	"github.com/sitelink/sitelink/daemon/nayax"
	"github.com/sitelink/sitelink/daemon/wire"
	"github.com/sitelink/sitelink/store"
)

// needsReconciliation drives a session into needs-reconciliation the way
// the field does: Nayax answers its cancel with 51.
func (r *rig) needsReconciliation() store.Session {
	r.t.Helper()
	r.authorized()
	r.command("stop", stopBody(r.t, nil))
	s := r.session()
	r.command("result", map[string]any{"event_id": s.Request.EventIDs[len(s.Request.EventIDs)-1], "call": s.Request.Call,
		"outcome": "declined", "Status": map[string]any{"Verdict": "Declined", "ErrorCode": nayax.CodeExternalCancelFailed}})
	if s = r.session(); s.State != store.NeedsReconciliation {
		r.t.Fatalf("session %s, want needs-reconciliation", s.State)
	}
	return s
}

// TestResolveCommand: the fleet's resolve command closes a
// needs-reconciliation session with its note (history and session
// event), once: a redelivered command gets the same reply and changes
// nothing; resolving a session in another state or an unknown one is
// declined and changes nothing; the reconciled session is archivable.
func TestResolveCommand(t *testing.T) {
	r := newRig(t, vehicleIf(false))
	s := r.needsReconciliation()
	id := s.SparkTransactionID
	before := len(r.events())

	for _, tc := range []struct {
		name, body, verdict, reason string
		code                        float64
	}{
		{"malformed", `{"SparkTransactionId":5,"Note":"x"}`, "Declined", "resolve:", nayax.CodeValidation},
		{"no note", `{"SparkTransactionId":"` + id + `"}`, "Declined", "Note: required", nayax.CodeValidation},
		{"card number in the note", `{"SparkTransactionId":"` + id + `","Note":"card 4111111111111111"}`, "Declined", "card number", nayax.CodeValidation},
		{"unknown session", `{"SparkTransactionId":"nope","Note":"x"}`, "Declined", "no session nope", nayax.CodeUnknownTransaction},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ans := r.command(wire.CommandResolve, []byte(tc.body))
			v, code := verdict(ans)
			st, _ := ans["Status"].(map[string]any)
			if v != tc.verdict || code != tc.code || !strings.Contains(st["ErrorDescription"].(string), tc.reason) {
				t.Fatalf("answer %v, want %s %v %q", ans, tc.verdict, tc.code, tc.reason)
			}
			if got := r.session(); got.State != store.NeedsReconciliation {
				t.Fatalf("session %s after a refused resolve", got.State)
			}
		})
	}
	if n := len(r.events()); n != before {
		t.Fatalf("refused resolves queued %d events", n-before)
	}

	body := map[string]any{"SparkTransactionId": id, "Note": "Nayax support case 4711: AutoCancel released the hold", "By": "ops@example"}
	first := r.commandID("resolve-1", wire.CommandResolve, body)
	if v, _ := replyVerdict(t, first); v != "Approved" {
		t.Fatalf("resolve: %s", first)
	}
	got := r.session()
	last := got.History[len(got.History)-1]
	if got.State != store.Reconciled || last.Reason != "resolved by ops@example: Nayax support case 4711: AutoCancel released the hold" {
		t.Fatalf("session %s, last transition %+v", got.State, last)
	}
	ev := r.lastSessionEvent()
	if string(ev["state"]) != `"reconciled"` {
		t.Fatalf("session event state %s", ev["state"])
	}
	events := len(r.events())
	if again := r.commandID("resolve-1", wire.CommandResolve, body); string(again) != string(first) {
		t.Fatalf("redelivered resolve answered %s, first %s", again, first)
	}
	if n := len(r.events()); n != events {
		t.Fatalf("a redelivered resolve queued %d events", n-events)
	}
	// A second resolve (a new id) of a reconciled session changes nothing.
	if v, _ := replyVerdict(t, r.commandID("resolve-2", wire.CommandResolve, body)); v != "Approved" || len(r.events()) != events {
		t.Fatalf("second resolve: %s, %d new events", v, len(r.events())-events)
	}
	if !store.Archivable(&got, got.UpdatedAt.Add(time.Second)) {
		t.Fatal("a reconciled session is not archivable")
	}
	// Nayax cancels it afterwards: whatever the operator settled by hand,
	// a human looks again.
	cancel := fmt.Sprintf(`{"BasicInfo":{"TransactionId":%q,"NayaxTransactionId":%d},"MachineInfo":{"Id":71234996}}`, id, got.NayaxTransactionID)
	if ans := r.command("cancel", []byte(cancel)); ans["Status"].(map[string]any)["Verdict"] != "Approved" {
		t.Fatalf("Cortina cancel of a reconciled session: %v", ans)
	}
	if again := r.session(); again.State != store.NeedsReconciliation || !strings.Contains(again.History[len(again.History)-1].Reason, "resolved by hand") {
		t.Fatalf("after a Cortina cancel: %s %+v", again.State, again.History[len(again.History)-1])
	}
	// A session in another state is refused.
	r2 := newRig(t, vehicleIf(false))
	r2.authorized()
	open := r2.session()
	ans := r2.command(wire.CommandResolve, map[string]any{"SparkTransactionId": open.SparkTransactionID, "Note": "x"})
	if v, code := verdict(ans); v != "Declined" || code != nayax.CodeValidation {
		t.Fatalf("resolve of an authorized session: %v", ans)
	}
	if r2.session().State != store.Authorized {
		t.Fatal("resolve changed an authorized session")
	}
}

// TestResolveLocal: the local API's resolve (`sitelink resolve`) closes a
// needs-reconciliation session and says why it refuses the others.
func TestResolveLocal(t *testing.T) {
	r := newRig(t, vehicleIf(false))
	s := r.needsReconciliation()
	b := backend{exec: func(ctx context.Context, f func(*engine)) error { f(r.e); return nil }}
	for _, tc := range []struct {
		name string
		req  localapi.ResolveRequest
		want string
	}{
		{"no note", localapi.ResolveRequest{SparkTransactionID: s.SparkTransactionID}, "Note: required"},
		{"unknown", localapi.ResolveRequest{SparkTransactionID: "nope", Note: "x"}, "no session nope"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := b.Resolve(context.Background(), tc.req)
			if !errors.Is(err, localapi.ErrBadRequest) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err %v, want a bad request saying %q", err, tc.want)
			}
		})
	}
	got, err := b.Resolve(context.Background(), localapi.ResolveRequest{SparkTransactionID: s.SparkTransactionID, Note: "refunded by hand", By: "local:tech"})
	if err != nil || got.State != string(store.Reconciled) {
		t.Fatalf("resolve: %s %v", got.State, err)
	}
	stored := r.session()
	var counts map[store.State]int
	if counts, err = r.st.Counts(); err != nil || counts[store.NeedsReconciliation] != 0 || counts[store.Reconciled] != 1 {
		t.Fatalf("counts %v %v", counts, err)
	}
	raw, _ := json.Marshal(stored.History)
	if !strings.Contains(string(raw), "resolved by local:tech: refunded by hand") {
		t.Fatalf("history %s", raw)
	}
}
