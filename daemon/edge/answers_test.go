package edge

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sitelink/sitelink/store"
)

// lastAnswers keeps the newest answer of each kind, bounded in kinds.
func TestLastAnswers(t *testing.T) {
	t0 := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)
	l := newLastAnswers()
	for _, a := range []*store.Answer{
		nil,
		{Outcome: "approved", At: t0}, // no call: not an answer to count
		{Call: "Settlement", Outcome: "approved", At: t0},
		{Call: "Settlement", Outcome: "approved", At: t0.Add(-time.Hour)}, // older: ignored
		{Call: "Settlement", Outcome: "declined", Code: 50, At: t0.Add(time.Minute)},
	} {
		l.note(a)
	}
	got := map[string]time.Time{}
	l.each(func(call, outcome, code string, at time.Time) { got[call+"/"+outcome+"/"+code] = at })
	want := map[string]time.Time{"Settlement/approved/0": t0, "Settlement/declined/50": t0.Add(time.Minute)}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("kinds %v, want %v", got, want)
	}
	for i := range maxAnswerKinds + 10 {
		l.note(&store.Answer{Call: "X", Outcome: "declined", Code: 1000 + i, At: t0.Add(time.Duration(i+2) * time.Minute)})
	}
	n, hasNewest := 0, false
	l.each(func(call, outcome, code string, at time.Time) {
		n++
		hasNewest = hasNewest || code == fmt.Sprint(1000+maxAnswerKinds+9)
	})
	if n != maxAnswerKinds || !hasNewest {
		t.Fatalf("%d kinds held (want %d), newest held %v", n, maxAnswerKinds, hasNewest)
	}
	var nilAnswers *lastAnswers
	nilAnswers.each(func(string, string, string, time.Time) { t.Fatal("a nil lastAnswers has kinds") })
}

// The engine notes Nayax's answer as it records it, and a restart seeds
// the same from the ledger: the gauges need no scan at scrape time.
func TestLastAnswersNotedAndSeeded(t *testing.T) {
	r := newRig(t, nil)
	r.authorized()
	time.Sleep(30 * time.Millisecond)
	r.command("stop", stopBody(r.t, nil))
	s := r.session()
	r.command("result", map[string]any{"event_id": s.Request.EventIDs[0], "call": s.Request.Call, "outcome": "approved"})
	if got := r.session().State; got != store.Settled {
		t.Fatalf("session %s", got)
	}
	kinds := func(l *lastAnswers) string {
		var out []string
		l.each(func(call, outcome, code string, at time.Time) {
			out = append(out, call+"/"+outcome+"/"+code+"@"+at.String())
		})
		slices.Sort(out)
		return strings.Join(out, ";")
	}
	noted := kinds(r.e.answers)
	if noted == "" {
		t.Fatal("the engine noted no answer")
	}
	seeded := newLastAnswers()
	if err := seeded.seed(r.st); err != nil {
		t.Fatal(err)
	}
	if got := kinds(seeded); got != noted {
		t.Fatalf("seeded %q, noted %q", got, noted)
	}
}
