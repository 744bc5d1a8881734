package relay

import (
	"log/slog"
	"testing"

	"github.com/sitelink/sitelink/daemon/wire"
)

// TestReplyOnlyFromItsNode: a reply is handed to the callback waiting for
// it only when it comes on the reply topic its command named; another
// node that learns the command's id (a stolen key) cannot answer for the
// victim from its own topics.
func TestReplyOnlyFromItsNode(t *testing.T) {
	r := &Relay{log: slog.New(slog.DiscardHandler), pending: map[string]pendingReply{}}
	victim := wire.Topics{Prefix: "sitelink/v1", Node: "site-victim"}.RelayReplies("relay-1")
	rogue := wire.Topics{Prefix: "sitelink/v1", Node: "site-rogue"}.RelayReplies("relay-1")
	ch := make(chan wire.Reply, 1)
	r.pending["cmd-1"] = pendingReply{topic: victim, ch: ch}
	reply := []byte(`{"id":"cmd-1","type":"stop","body":{"Status":{"Verdict":"Approved","ErrorCode":0}}}`)
	acked := 0
	for _, c := range []struct {
		topic string
		want  bool
	}{{rogue, false}, {victim, true}} {
		r.onReply(nil, fakeMsg{topic: c.topic, acked: &acked, payload: reply})
		select {
		case rep := <-ch:
			if !c.want || rep.Body.Status.Verdict != "Approved" {
				t.Fatalf("reply on %s taken: %+v", c.topic, rep)
			}
		default:
			if c.want {
				t.Fatalf("reply on %s not taken", c.topic)
			}
		}
	}
	if acked != 2 {
		t.Fatalf("%d of 2 replies acknowledged", acked)
	}
}
