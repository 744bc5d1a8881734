package relay

import (
	"testing"
	"time"

	"github.com/sitelink/sitelink/daemon/wire"
)

// TestServed: what is remembered, for whom, and for how long.
func TestServed(t *testing.T) {
	now := time.Now()
	res := func(id string, o wire.Outcome) wire.Result {
		return wire.Result{EventID: id, Call: "Settlement", Outcome: o}
	}
	cases := []struct {
		name    string
		keep    func(s *served)
		node    string
		event   string
		request string
		at      time.Time
		found   bool
		want    wire.Outcome
	}{
		{"same event", func(s *served) { s.remember("a", "Settlement|x", res("a-1", wire.OutcomeApproved), now) }, "a", "a-1", "Settlement|x", now, true, wire.OutcomeApproved},
		{"same request, new event", func(s *served) { s.remember("a", "Settlement|x", res("a-1", wire.OutcomeApproved), now) }, "a", "a-2", "Settlement|x", now, true, wire.OutcomeApproved},
		{"already-done by request", func(s *served) { s.remember("a", "Settlement|x", res("a-1", wire.OutcomeAlreadyDone), now) }, "a", "a-2", "Settlement|x", now, true, wire.OutcomeAlreadyDone},
		{"another node's request never", func(s *served) { s.remember("a", "Settlement|x", res("a-1", wire.OutcomeApproved), now) }, "b", "a-1", "Settlement|x", now, false, ""},
		{"errors are not kept", func(s *served) { s.remember("a", "Settlement|x", res("a-1", wire.OutcomeError), now) }, "a", "a-1", "Settlement|x", now, false, ""},
		{"a decline answers its event only", func(s *served) { s.remember("a", "Settlement|x", res("a-1", wire.OutcomeDeclined), now) }, "a", "a-1", "", now, true, wire.OutcomeDeclined},
		{"a decline is not the request's answer (50 is retried)", func(s *served) { s.remember("a", "Settlement|x", res("a-1", wire.OutcomeDeclined), now) }, "a", "a-2", "Settlement|x", now, false, ""},
		{"forgotten after the ttl", func(s *served) { s.remember("a", "Settlement|x", res("a-1", wire.OutcomeApproved), now) }, "a", "a-1", "Settlement|x", now.Add(time.Hour + time.Second), false, ""},
		{"oldest evicted past the bound", func(s *served) {
			s.remember("a", "", res("a-1", wire.OutcomeApproved), now)
			for i := 0; i < 4; i++ {
				s.remember("a", "", res("a-x"+string(rune('0'+i)), wire.OutcomeApproved), now)
			}
		}, "a", "a-1", "", now, false, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := newServed(4, time.Hour)
			tc.keep(s)
			got, ok := s.lookup(tc.node, tc.event, tc.request, tc.at)
			if ok != tc.found || (ok && (got.Outcome != tc.want || got.EventID != tc.event)) {
				t.Fatalf("lookup = %+v, %v; want found %v outcome %s for event %s", got, ok, tc.found, tc.want, tc.event)
			}
			if n := s.len(); n > 4 {
				t.Fatalf("%d entries kept, bound 4", n)
			}
		})
	}
}
