package link

import (
	"strings"
	"testing"
)

// pahoMatch is paho's router match, which dispatch replaces: the
// reference matchTopic must agree with.
func pahoMatch(route, topic []string) bool {
	switch {
	case len(route) == 0:
		return len(topic) == 0
	case len(topic) == 0:
		return route[0] == "#"
	case route[0] == "#":
		return true
	case route[0] == "+" || route[0] == topic[0]:
		return pahoMatch(route[1:], topic[1:])
	}
	return false
}

func pahoIncludes(filter, topic string) bool {
	levels := strings.Split(filter, "/")
	if strings.HasPrefix(filter, "$share") {
		levels = levels[2:]
	}
	return filter == topic || pahoMatch(levels, strings.Split(topic, "/"))
}

func TestMatchTopic(t *testing.T) {
	tests := []struct {
		filter, topic string
		want          bool
	}{
		{"sitelink/v1/nodes/+/replies/relay-1", "sitelink/v1/nodes/site-7/replies/relay-1", true},
		{"sitelink/v1/nodes/+/replies/relay-1", "sitelink/v1/nodes/site-7/replies/relay-2", false},
		{"sitelink/v1/nodes/+/replies/relay-1", "sitelink/v1/nodes/site-7/replies", false},
		{"sitelink/v1/nodes/+/replies/relay-1", "sitelink/v1/nodes/site-7/replies/relay-1/x", false},
		{"sitelink/v1/nodes/+/state", "sitelink/v1/nodes//state", true},
		{"sitelink/v1/terminals/+", "sitelink/v1/terminals/m70000001", true},
		{"$share/relays/sitelink/v1/nodes/+/events/start-request", "sitelink/v1/nodes/site-7/events/start-request", true},
		{"$share/relays/sitelink/v1/nodes/+/events/start-request", "sitelink/v1/nodes/site-7/events/cancel-request", false},
		{"a/#", "a", true}, {"a/#", "a/b/c", true}, {"a/#", "b", false}, {"#", "", true}, {"#", "a/b", true},
		{"+", "", true}, {"+", "a/b", false}, {"a/+", "a/", true}, {"a", "a/b", false}, {"a/b", "a", false},
		{"a/+/#", "a/b", true}, {"a/+/#", "a", false}, {"", "", true}, {"", "a", false},
	}
	for _, tt := range tests {
		r := newDispatch(map[string]Handler{tt.filter: nil})
		got := matchTopic(r[0].levels, tt.topic)
		if got != tt.want || got != pahoIncludes(tt.filter, tt.topic) {
			t.Errorf("%q on %q: %v, want %v (paho %v)", tt.filter, tt.topic, got, tt.want, pahoIncludes(tt.filter, tt.topic))
		}
	}
}

func FuzzMatchTopic(f *testing.F) {
	f.Add("sitelink/v1/nodes/+/replies/relay-1", "sitelink/v1/nodes/site-7/replies/relay-1")
	f.Add("$share/g/a/#", "a")
	f.Add("a/+/#", "a//")
	f.Fuzz(func(t *testing.T, filter, topic string) {
		if strings.HasPrefix(filter, "$share") && (!strings.HasPrefix(filter, "$share/") || strings.Count(filter, "/") < 2) {
			return // paho panics or strips a "$shared" level; Shared writes neither
		}
		r := newDispatch(map[string]Handler{filter: nil})
		if got, want := matchTopic(r[0].levels, topic), pahoIncludes(filter, topic); got != want {
			t.Fatalf("%q on %q: %v, paho %v", filter, topic, got, want)
		}
	})
}
