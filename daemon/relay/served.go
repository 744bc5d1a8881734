package relay

import (
	"sync"
	"time"

	"github.com/sitelink/sitelink/daemon/wire"
)

// served remembers Nayax's answers to recent request events, so that an
// event a node sends again is answered from memory instead of reaching
// Nayax a second time: the same event id republished by a node killed
// between the broker's PUBACK and its outbox delete, or a node's resend of
// a request whose result it never got. Every replica also learns the
// results its peers publish (P/nodes/+/commands/result), so a repeat that
// the shared subscription deals to another replica is caught as well.
//
// Keys always start with the node id taken from the topic: a node can
// never make another site's request look answered.
//
// Bounded: at most max entries, each kept for ttl; the oldest go first.
type served struct {
	mu    sync.Mutex
	max   int
	ttl   time.Duration
	byKey map[string]servedEntry
	order []string // keys in insertion order, a FIFO ring over byKey
	head  int
}

type servedEntry struct {
	res wire.Result
	at  time.Time
}

func newServed(max int, ttl time.Duration) *served {
	return &served{max: max, ttl: ttl, byKey: make(map[string]servedEntry, min(max, 1024))}
}

// remember keeps res under the node's event id (any final outcome) and,
// when Nayax completed the request, under its request key too: a later
// event carrying the same request (a resend after a result was lost) is
// then answered from memory. An error outcome is never kept (Nayax may not
// have seen the call; only calling again tells), nor is a decline under
// the request key (a settlement answered 50 is retried by its node and
// must reach Nayax again).
func (s *served) remember(node, request string, res wire.Result, now time.Time) {
	if res.Outcome == wire.OutcomeError || res.EventID == "" {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.put(eventKey(node, res.EventID), res, now)
	if request != "" && (res.Outcome == wire.OutcomeApproved || res.Outcome == wire.OutcomeAlreadyDone) {
		s.put(requestKeyOf(node, request), res, now)
	}
}

// lookup returns the answer kept for the node's event, or for the request
// it carries, re-addressed to this event.
func (s *served) lookup(node, eventID, request string, now time.Time) (wire.Result, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	keys := []string{eventKey(node, eventID)}
	if request != "" {
		keys = append(keys, requestKeyOf(node, request))
	}
	for _, k := range keys {
		if e, ok := s.byKey[k]; ok && now.Sub(e.at) < s.ttl {
			res := e.res
			res.EventID = eventID
			return res, true
		}
	}
	return wire.Result{}, false
}

func (s *served) len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.byKey)
}

func (s *served) put(k string, res wire.Result, now time.Time) {
	if s.max <= 0 {
		return
	}
	if _, ok := s.byKey[k]; !ok {
		if len(s.order) < s.max {
			s.order = append(s.order, k)
		} else {
			delete(s.byKey, s.order[s.head])
			s.order[s.head] = k
			s.head = (s.head + 1) % s.max
		}
	}
	s.byKey[k] = servedEntry{res: res, at: now}
}

func eventKey(node, id string) string      { return node + "\x00e\x00" + id }
func requestKeyOf(node, req string) string { return node + "\x00r\x00" + req }
