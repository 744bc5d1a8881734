package wire_test

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/sitelink/sitelink/daemon/nayax/seeds"
	"github.com/sitelink/sitelink/daemon/wire"
)

func FuzzDecodeCommand(f *testing.F) {
	stop := seeds.Get("000_stopcallback_request.json")
	f.Add([]byte(`{"id":"c1","type":"stop","reply_to":"sitelink/v1/relay/r1/replies","deadline":"2024-02-05T19:41:26Z","body":`+string(stop)+`}`), "stop")
	f.Add([]byte(`{"id":"c2","body":{}}`), "rebirth")
	f.Add([]byte(`{"id":"c3","type":"start","body":null}`), "")
	f.Add([]byte(`{"type":"stop","reply_to":"relay/+"}`), "stop")
	f.Add([]byte(`{"id":5,"deadline":"tomorrow","body":[]}`), "stop")
	f.Add([]byte(`[1]`), "stop")
	f.Add([]byte(``), "")
	f.Fuzz(func(t *testing.T, payload []byte, topicType string) {
		c, err := wire.DecodeCommand(payload, topicType)
		if err != nil {
			return
		}
		if c.ID == "" || c.Type == "" {
			t.Fatalf("accepted a command without id or type: %+v", c)
		}
		if strings.ContainsAny(c.ReplyTo, "+#") {
			t.Fatalf("accepted a wildcard reply_to %q", c.ReplyTo)
		}
		if c.Body != nil && (!json.Valid(c.Body) || !bytes.HasPrefix(c.Body, []byte("{"))) {
			t.Fatalf("accepted a body that is not an object: %s", c.Body)
		}
		// What was accepted survives a marshal round trip.
		b, err := json.Marshal(c)
		if err != nil {
			t.Fatalf("marshal accepted command: %v", err)
		}
		if _, err := wire.DecodeCommand(b, c.Type); err != nil && len(b) <= wire.MaxPayload {
			t.Fatalf("re-decode %s: %v", b, err)
		}
	})
}

func FuzzDecodeReply(f *testing.F) {
	f.Add([]byte(`{"id":"c1","type":"stop","body":` + string(seeds.Get("000_stopcallback_response.json")) + `}`))
	f.Add([]byte(`{"id":"","body":[]}`))
	f.Add([]byte(`{"id":"c2","type":"cancel","body":{"Status":{"Verdict":"Declined","Code":2,"CustomDeclineCode":2}}}`))
	f.Fuzz(func(t *testing.T, payload []byte) {
		r, err := wire.DecodeReply(payload)
		if err != nil {
			return
		}
		if r.ID == "" {
			t.Fatalf("accepted a reply without id: %+v", r)
		}
		// The relay writes the body to Nayax: it must marshal.
		if _, err := json.Marshal(r.Body); err != nil {
			t.Fatalf("marshal accepted answer: %v", err)
		}
	})
}

func FuzzDecodeResult(f *testing.F) {
	f.Add([]byte(`{"event_id":"n-1","call":"ExternalCancel","outcome":"declined","status":{"Verdict":"Declined","ErrorCode":51},"attempts":2}`))
	f.Add([]byte(`{"event_id":"n-2","outcome":"error","error":"timeout"}`))
	f.Add([]byte(`{"event_id":""}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		r, err := wire.DecodeResult(body)
		if err != nil {
			return
		}
		if r.EventID == "" {
			t.Fatalf("accepted a result without event_id: %+v", r)
		}
		b, err := json.Marshal(r)
		if err != nil {
			t.Fatalf("marshal accepted result: %v", err)
		}
		if back, err := wire.DecodeResult(b); err != nil || back.EventID != r.EventID || back.Outcome != r.Outcome {
			t.Fatalf("round trip %s = %+v, %v", b, back, err)
		}
	})
}

func FuzzDecodeEvent(f *testing.F) {
	f.Add([]byte(`{"id":"n-1","node":"n","seq":1,"type":"session","at":"2024-02-05T19:41:26Z","body":{}}`))
	f.Add([]byte(`{"id":"n-1","node":"n","seq":-1}`))
	f.Fuzz(func(t *testing.T, payload []byte) {
		e, err := wire.DecodeEvent(payload)
		if err == nil && (e.ID == "" || e.Node == "" || e.Type == "") {
			t.Fatalf("accepted an event without id, node or type: %+v", e)
		}
	})
}

func FuzzDecodeState(f *testing.F) {
	f.Add([]byte(`{"online":true,"epoch":3,"version":"1","config_version":2,"machines":[{"machine_id":71234996,"hw_serial":"0434334921100366"}],"stations":["1"],"at":"2024-02-05T19:41:26Z"}`))
	f.Add([]byte(`{"online":false}`))
	f.Fuzz(func(t *testing.T, payload []byte) {
		_, _ = wire.DecodeState(payload) // must not panic
	})
}

// FuzzRelayPresence: a relay presence topic and payload from the network
// either decode to a relay id without levels or wildcards and a state, or
// are refused; nothing panics, nothing oversized is taken.
func FuzzRelayPresence(f *testing.F) {
	f.Add("sitelink/v1/relays/relay-1", []byte(`{"online":true,"epoch":3,"at":"2026-12-05T10:00:00Z"}`))
	f.Add("sitelink/v1/relays/+", []byte(`{"online":false}`))
	f.Add("sitelink/v1/relays/a/b", []byte(`{}`))
	f.Add("sitelink/v1/nodes/a/state", []byte(`[]`))
	f.Add("sitelink/v1/relays/", []byte(``))
	f.Fuzz(func(t *testing.T, topic string, payload []byte) {
		if id, ok := wire.ParseRelayTopic(wire.DefaultPrefix, topic); ok {
			if id == "" || strings.ContainsAny(id, "/+#") || wire.RelayPresence(wire.DefaultPrefix, id) != topic {
				t.Fatalf("relay id %q from %q", id, topic)
			}
		}
		if _, err := wire.DecodeRelayState(payload); err == nil && len(payload) > wire.MaxPayload {
			t.Fatalf("accepted %d bytes", len(payload))
		}
	})
}

// FuzzDecodeTerminal: an ownership message the relay accepts names a node
// that is one topic level (or is a removal without one) and a terminal,
// and gives the same terminal back through TerminalMessage.
func FuzzDecodeTerminal(f *testing.F) {
	f.Add([]byte(`{"node":"site-a","machine_id":71234996,"hw_serial":"0434334921100366","at":"2026-01-01T00:00:00Z"}`))
	f.Add([]byte(`{"node":"","machine_id":5,"removed":true,"at":"2026-01-01T00:00:00Z"}`))
	f.Add([]byte(`{"node":"a/b","machine_id":5}`))
	f.Add([]byte(`{"node":"site-a","machine_id":-1}`))
	f.Add([]byte(`{"node":"site-a","removed":true,"machine_id":5}`))
	f.Add([]byte(`{"node":"+","hw_serial":"x"}`))
	f.Fuzz(func(t *testing.T, payload []byte) {
		tm, err := wire.DecodeTerminal(payload)
		if err != nil {
			return
		}
		if tm.Removed != (tm.Node == "") || strings.ContainsAny(tm.Node, "/+#") || (tm.MachineID <= 0 && strings.TrimSpace(tm.HwSerial) == "") {
			t.Fatalf("accepted %+v", tm)
		}
		if tm.At.IsZero() {
			tm.At = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC) // TerminalMessage would say now
		}
		topic, out, err := wire.TerminalMessage("sitelink/v1", tm)
		if err != nil {
			t.Fatalf("TerminalMessage of an accepted entry: %v", err)
		}
		key, ok := wire.ParseTerminalTopic("sitelink/v1", topic)
		if !ok || key != wire.TerminalKey(tm.MachineID, tm.HwSerial) {
			t.Fatalf("topic %q, key %q", topic, key)
		}
		if back, err := wire.DecodeTerminal(out); err != nil || back.Node != tm.Node || back.MachineID != tm.MachineID ||
			back.HwSerial != tm.HwSerial || back.Removed != tm.Removed || !back.At.Equal(tm.At) {
			t.Fatalf("round trip %+v -> %+v, %v", tm, back, err)
		}
	})
}
