package wire_test

import (
	"encoding/json"
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/sitelink/sitelink/daemon/nayax/seeds"
	"github.com/sitelink/sitelink/daemon/wire"
)

func TestTopics(t *testing.T) {
	for _, prefix := range []string{"sitelink/v1", "sitelink/v1/"} {
		tp := wire.Topics{Prefix: prefix, Node: "site-1"}
		tests := []struct{ got, want string }{
			{tp.State(), "sitelink/v1/nodes/site-1/state"},
			{tp.Commands(), "sitelink/v1/nodes/site-1/commands/+"},
			{tp.Command(wire.CommandStop), "sitelink/v1/nodes/site-1/commands/stop"},
			{tp.Replies(), "sitelink/v1/nodes/site-1/replies"},
			{tp.Event(wire.EventSession), "sitelink/v1/nodes/site-1/events/session"},
			{tp.ConfigDesired(), "sitelink/v1/nodes/site-1/config/desired"},
			{tp.ConfigReported(), "sitelink/v1/nodes/site-1/config/reported"},
			{wire.GroupConfigDesired(prefix, "north"), "sitelink/v1/groups/north/config/desired"},
			{tp.RelayReplies("relay-1"), "sitelink/v1/nodes/site-1/replies/relay-1"},
			{wire.AllNodes(prefix).State(), "sitelink/v1/nodes/+/state"},
			{wire.AllNodes(prefix).RelayReplies("relay-1"), "sitelink/v1/nodes/+/replies/relay-1"},
			{wire.Shared("relays", wire.AllNodes(prefix).Event(wire.EventCancelRequest)), "$share/relays/sitelink/v1/nodes/+/events/cancel-request"},
		}
		for _, tt := range tests {
			if tt.got != tt.want {
				t.Errorf("prefix %q: got %q, want %q", prefix, tt.got, tt.want)
			}
		}
	}
	if got := (wire.Topics{Node: "n"}).State(); got != "nodes/n/state" {
		t.Errorf("empty prefix: State() = %q", got)
	}
}

func TestParseNodeTopic(t *testing.T) {
	const p = "sitelink/v1"
	tests := []struct {
		prefix, topic   string
		node, kind, typ string
		ok              bool
	}{
		{p, "sitelink/v1/nodes/site-1/commands/stop", "site-1", "commands", "stop", true},
		{p, "sitelink/v1/nodes/site-1/events/cancel-request", "site-1", "events", "cancel-request", true},
		{p, "sitelink/v1/nodes/site-1/state", "site-1", "state", "", true},
		{p, "sitelink/v1/nodes/site-1/replies", "site-1", "replies", "", true},
		{p, "sitelink/v1/nodes/site-1/replies/relay-1", "site-1", "replies", "relay-1", true},
		{p, "sitelink/v1/nodes/site-1/config/desired", "site-1", "config", "desired", true},
		{p, "sitelink/v1/nodes/site-1/config/reported", "site-1", "config", "reported", true},
		{p + "/", "sitelink/v1/nodes/n/state", "n", "state", "", true},
		{"", "nodes/n/state", "n", "state", "", true},
		{p, "sitelink/v1/nodes/site-1/config/other", "", "", "", false},
		{p, "sitelink/v1/nodes/site-1/commands", "", "", "", false},
		{p, "sitelink/v1/nodes/site-1/commands/stop/x", "", "", "", false},
		{p, "sitelink/v1/nodes/site-1/state/x", "", "", "", false},
		{p, "sitelink/v1/nodes/site-1/other", "", "", "", false},
		{p, "sitelink/v1/nodes//state", "", "", "", false},
		{p, "sitelink/v1/nodes/+/state", "", "", "", false},
		{p, "sitelink/v1/nodes/n/commands/#", "", "", "", false},
		{p, "sitelink/v1/nodes/n/commands/", "", "", "", false},
		{p, "sitelink/v1/groups/g/config/desired", "", "", "", false},
		{p, "sitelink/v2/nodes/n/state", "", "", "", false},
		{p, "sitelink/v1x/nodes/n/state", "", "", "", false},
		{p, "", "", "", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.topic, func(t *testing.T) {
			node, kind, typ, ok := wire.ParseNodeTopic(tt.prefix, tt.topic)
			if node != tt.node || kind != tt.kind || typ != tt.typ || ok != tt.ok {
				t.Fatalf("ParseNodeTopic(%q, %q) = %q %q %q %v; want %q %q %q %v",
					tt.prefix, tt.topic, node, kind, typ, ok, tt.node, tt.kind, tt.typ, tt.ok)
			}
		})
	}
}

func TestTopicsRoundTrip(t *testing.T) {
	tp := wire.Topics{Prefix: wire.DefaultPrefix, Node: "site-1"}
	for _, topic := range []string{tp.State(), tp.Command("authorize"), tp.Replies(), tp.RelayReplies("relay-1"), tp.Event("station"), tp.ConfigDesired(), tp.ConfigReported()} {
		node, _, _, ok := wire.ParseNodeTopic(wire.DefaultPrefix, topic)
		if !ok || node != "site-1" {
			t.Errorf("ParseNodeTopic(%q) = %q, %v", topic, node, ok)
		}
	}
}

func TestDecodeCommand(t *testing.T) {
	deadline := time.Date(2024, 2, 5, 19, 41, 26, 0, time.UTC)
	stop := strings.TrimSpace(string(seeds.Get("000_stopcallback_request.json")))
	tests := []struct {
		name      string
		payload   string
		topicType string
		want      wire.Command
		wantErr   error // nil: success
	}{
		{
			name:      "full stop command",
			payload:   `{"id":"c1","type":"stop","reply_to":"sitelink/v1/relay/r1/replies","deadline":"2024-02-05T19:41:26Z","body":` + stop + `}`,
			topicType: "stop",
			want:      wire.Command{ID: "c1", Type: "stop", ReplyTo: "sitelink/v1/relay/r1/replies", Deadline: &deadline, Body: json.RawMessage(stop)},
		},
		{
			name:      "type taken from topic",
			payload:   `{"id":"c2","body":{}}`,
			topicType: "rebirth",
			want:      wire.Command{ID: "c2", Type: "rebirth", Body: json.RawMessage(`{}`)},
		},
		{
			name:    "no topic type needed when the envelope has one",
			payload: `{"id":"c3","type":"start","body":null,"reply_to":null,"deadline":null}`,
			want:    wire.Command{ID: "c3", Type: "start"},
		},
		{
			name:      "unknown envelope fields ignored",
			payload:   `{"id":"c4","type":"stop","v":2}`,
			topicType: "stop",
			want:      wire.Command{ID: "c4", Type: "stop"},
		},
		{
			name:      "deadline with offset and fraction",
			payload:   `{"id":"c5","deadline":"2024-02-05T21:41:26.5+02:00"}`,
			topicType: "stop",
			want:      wire.Command{ID: "c5", Type: "stop", Deadline: ptr(deadline.Add(500 * time.Millisecond))},
		},
		{name: "too large", payload: `{"id":"x","body":{"p":"` + strings.Repeat("x", wire.MaxPayload) + `"}}`, topicType: "stop", wantErr: wire.ErrTooLarge},
		{name: "not JSON", payload: `id=1`, topicType: "stop", wantErr: wire.ErrMalformed},
		{name: "empty", payload: ``, topicType: "stop", wantErr: wire.ErrMalformed},
		{name: "null", payload: `null`, topicType: "stop", wantErr: wire.ErrMalformed},
		{name: "array", payload: `[{"id":"x"}]`, topicType: "stop", wantErr: wire.ErrMalformed},
		{name: "trailing garbage", payload: `{"id":"x"} {}`, topicType: "stop", wantErr: wire.ErrMalformed},
		{
			name:    "missing id keeps reply_to",
			payload: `{"type":"stop","reply_to":"relay/replies"}`, topicType: "stop",
			want:    wire.Command{Type: "stop", ReplyTo: "relay/replies"},
			wantErr: wire.ErrMalformed,
		},
		{
			name:    "empty id",
			payload: `{"id":"","type":"stop"}`, topicType: "stop",
			want:    wire.Command{Type: "stop"},
			wantErr: wire.ErrMalformed,
		},
		{
			name:    "numeric id",
			payload: `{"id":5,"type":"stop"}`, topicType: "stop",
			want:    wire.Command{Type: "stop"},
			wantErr: wire.ErrMalformed,
		},
		{
			name:    "id too long",
			payload: `{"id":"` + strings.Repeat("i", wire.MaxIDLen+1) + `","type":"stop"}`, topicType: "stop",
			want:    wire.Command{Type: "stop"},
			wantErr: wire.ErrMalformed,
		},
		{
			name:    "missing type everywhere keeps id and reply_to",
			payload: `{"id":"c6","reply_to":"relay/replies"}`,
			want:    wire.Command{ID: "c6", ReplyTo: "relay/replies"},
			wantErr: wire.ErrMalformed,
		},
		{
			name:    "type disagrees with topic",
			payload: `{"id":"c7","type":"start"}`, topicType: "stop",
			want:    wire.Command{ID: "c7", Type: "start"},
			wantErr: wire.ErrMalformed,
		},
		{
			name:    "type is not a topic level",
			payload: `{"id":"c8","type":"a/b"}`,
			want:    wire.Command{ID: "c8"},
			wantErr: wire.ErrMalformed,
		},
		{
			name:    "topic type is not a topic level",
			payload: `{"id":"c8b"}`, topicType: "#",
			want:    wire.Command{ID: "c8b"},
			wantErr: wire.ErrMalformed,
		},
		{
			name:    "topic type not UTF-8",
			payload: `{"id":"c8c"}`, topicType: "\xfd",
			want:    wire.Command{ID: "c8c"},
			wantErr: wire.ErrMalformed,
		},
		{
			name:    "body is an array",
			payload: `{"id":"c9","type":"stop","reply_to":"r/1","body":[1]}`, topicType: "stop",
			want:    wire.Command{ID: "c9", Type: "stop", ReplyTo: "r/1"},
			wantErr: wire.ErrMalformed,
		},
		{
			name:    "body is a string",
			payload: `{"id":"c10","body":"{}"}`, topicType: "stop",
			want:    wire.Command{ID: "c10", Type: "stop"},
			wantErr: wire.ErrMalformed,
		},
		{
			name:    "reply_to with +",
			payload: `{"id":"c11","reply_to":"relay/+/replies"}`, topicType: "stop",
			want:    wire.Command{ID: "c11", Type: "stop"},
			wantErr: wire.ErrMalformed,
		},
		{
			name:    "reply_to with #",
			payload: `{"id":"c12","reply_to":"relay/#"}`, topicType: "stop",
			want:    wire.Command{ID: "c12", Type: "stop"},
			wantErr: wire.ErrMalformed,
		},
		{
			name:    "reply_to to a $ topic",
			payload: `{"id":"c13","reply_to":"$SYS/x"}`, topicType: "stop",
			want:    wire.Command{ID: "c13", Type: "stop"},
			wantErr: wire.ErrMalformed,
		},
		{
			name:    "reply_to not a string",
			payload: `{"id":"c14","reply_to":{}}`, topicType: "stop",
			want:    wire.Command{ID: "c14", Type: "stop"},
			wantErr: wire.ErrMalformed,
		},
		{
			name:    "deadline not RFC 3339",
			payload: `{"id":"c15","reply_to":"r","deadline":"tomorrow"}`, topicType: "stop",
			want:    wire.Command{ID: "c15", Type: "stop", ReplyTo: "r"},
			wantErr: wire.ErrMalformed,
		},
		{
			name:    "deadline a number",
			payload: `{"id":"c16","deadline":1707162086}`, topicType: "stop",
			want:    wire.Command{ID: "c16", Type: "stop"},
			wantErr: wire.ErrMalformed,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := wire.DecodeCommand([]byte(tt.payload), tt.topicType)
			switch {
			case tt.wantErr == nil && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tt.wantErr != nil && !errors.Is(err, tt.wantErr):
				t.Fatalf("error = %v, want %v", err, tt.wantErr)
			}
			if !sameCommand(got, tt.want) {
				t.Fatalf("command = %s\nwant      %s", show(got), show(tt.want))
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

func sameCommand(a, b wire.Command) bool {
	if (a.Deadline == nil) != (b.Deadline == nil) || (a.Deadline != nil && !a.Deadline.Equal(*b.Deadline)) {
		return false
	}
	a.Deadline, b.Deadline = nil, nil
	return reflect.DeepEqual(a, b)
}

func show(c wire.Command) string {
	b, _ := json.Marshal(c)
	return string(b)
}

func TestCommandMarshalRoundTrip(t *testing.T) {
	d := time.Date(2024, 2, 5, 19, 41, 26, 0, time.UTC)
	c := wire.Command{ID: "c1", Type: "stop", ReplyTo: "r/1", Deadline: &d, Body: json.RawMessage(`{"a":1}`)}
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	const want = `{"id":"c1","type":"stop","reply_to":"r/1","deadline":"2024-02-05T19:41:26Z","body":{"a":1}}`
	if string(b) != want {
		t.Fatalf("Marshal = %s\nwant      %s", b, want)
	}
	got, err := wire.DecodeCommand(b, "stop")
	if err != nil || !sameCommand(got, c) {
		t.Fatalf("DecodeCommand = %s, %v", show(got), err)
	}
}

func TestEventPayload(t *testing.T) {
	at := time.Date(2024, 2, 5, 21, 41, 26, 0, time.FixedZone("EET", 2*3600))
	tests := []struct {
		name    string
		node    string
		seq     uint64
		typ     string
		body    any
		want    string
		wantErr error
	}{
		{
			name: "struct body", node: "site-1", seq: 42, typ: wire.EventSession,
			body: map[string]any{"state": "charging"},
			want: `{"id":"site-1-42","node":"site-1","seq":42,"type":"session","at":"2024-02-05T19:41:26Z","body":{"state":"charging"}}`,
		},
		{
			name: "raw body compacted", node: "n", seq: 1, typ: wire.EventCancelRequest,
			body: json.RawMessage("{ \"call\" : \"ExternalCancel\" }"),
			want: `{"id":"n-1","node":"n","seq":1,"type":"cancel-request","at":"2024-02-05T19:41:26Z","body":{"call":"ExternalCancel"}}`,
		},
		{
			name: "bytes are JSON, not base64", node: "n", seq: 2, typ: "station",
			body: []byte(`{"s":"1"}`),
			want: `{"id":"n-2","node":"n","seq":2,"type":"station","at":"2024-02-05T19:41:26Z","body":{"s":"1"}}`,
		},
		{
			name: "nil body", node: "n", seq: 18446744073709551615, typ: "station",
			want: `{"id":"n-18446744073709551615","node":"n","seq":18446744073709551615,"type":"station","at":"2024-02-05T19:41:26Z","body":{}}`,
		},
		{name: "array body", node: "n", seq: 1, typ: "station", body: []int{1}, wantErr: wire.ErrMalformed},
		{name: "invalid raw body", node: "n", seq: 1, typ: "station", body: json.RawMessage(`{`), wantErr: wire.ErrMalformed},
		{name: "empty node", node: "", seq: 1, typ: "station", wantErr: wire.ErrTopic},
		{name: "wildcard type", node: "n", seq: 1, typ: "+", wantErr: wire.ErrTopic},
		{name: "too large", node: "n", seq: 1, typ: "station", body: map[string]string{"p": strings.Repeat("x", wire.MaxPayload)}, wantErr: wire.ErrTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := wire.EventPayload(tt.node, tt.seq, tt.typ, at, tt.body)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("error = %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil || string(b) != tt.want {
				t.Fatalf("EventPayload = %s, %v\nwant           %s", b, err, tt.want)
			}
			e, err := wire.DecodeEvent(b)
			if err != nil || e.ID != tt.node+"-"+itoa(tt.seq) || e.Seq != tt.seq || !e.At.Equal(at) {
				t.Fatalf("DecodeEvent = %+v, %v", e, err)
			}
		})
	}
}

func itoa(u uint64) string {
	b, _ := json.Marshal(u)
	return string(b)
}

func TestDecodeReplyEventState(t *testing.T) {
	tests := []struct {
		name    string
		decode  func([]byte) error
		payload string
		wantErr error
	}{
		{"reply ok", decodeReply, `{"id":"c1","type":"stop","body":{"Status":{"Verdict":"Approved"}}}`, nil},
		{"reply null body", decodeReply, `{"id":"c1","type":"stop","body":null}`, nil},
		{"reply without id", decodeReply, `{"type":"stop","body":{}}`, wire.ErrMalformed},
		{"reply array body", decodeReply, `{"id":"c1","body":[]}`, wire.ErrMalformed},
		{"reply not object", decodeReply, `"c1"`, wire.ErrMalformed},
		{"reply too large", decodeReply, `{"id":"` + strings.Repeat("x", wire.MaxPayload) + `"}`, wire.ErrTooLarge},
		{"event ok", decodeEvent, `{"id":"n-1","node":"n","seq":1,"type":"session","at":"2024-02-05T19:41:26Z","body":{}}`, nil},
		{"event without node", decodeEvent, `{"id":"n-1","seq":1,"type":"session","body":{}}`, wire.ErrMalformed},
		{"event bad seq", decodeEvent, `{"id":"n-1","node":"n","seq":-1,"type":"session"}`, wire.ErrMalformed},
		{"event bad time", decodeEvent, `{"id":"n-1","node":"n","seq":1,"type":"session","at":"now"}`, wire.ErrMalformed},
		{"state ok", decodeState, `{"online":true,"epoch":3,"machines":[{"machine_id":71234996,"hw_serial":"0434334921100366"}],"stations":["1"]}`, nil},
		{"state cleared", decodeState, ``, wire.ErrMalformed},
		{"state wrong type", decodeState, `{"online":"yes"}`, wire.ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.decode([]byte(tt.payload))
			if (tt.wantErr == nil) != (err == nil) || (tt.wantErr != nil && !errors.Is(err, tt.wantErr)) {
				t.Fatalf("error = %v, want %v", err, tt.wantErr)
			}
		})
	}
}

func decodeReply(b []byte) error { _, err := wire.DecodeReply(b); return err }
func decodeEvent(b []byte) error { _, err := wire.DecodeEvent(b); return err }
func decodeState(b []byte) error { _, err := wire.DecodeState(b); return err }

func TestStateJSON(t *testing.T) {
	at := time.Date(2024, 2, 5, 19, 41, 26, 0, time.UTC)
	b, err := json.Marshal(wire.State{Online: false, Epoch: 7, Version: "1.0.0", At: at})
	if err != nil {
		t.Fatal(err)
	}
	const want = `{"online":false,"epoch":7,"version":"1.0.0","config_version":0,"machines":[],"stations":[],"at":"2024-02-05T19:41:26Z"}`
	if string(b) != want {
		t.Fatalf("Marshal = %s\nwant      %s", b, want)
	}
	s := wire.State{Online: true, Epoch: 8, Version: "1.0.0", ConfigVersion: 3,
		Machines: []wire.Machine{{MachineID: 9223372036854775807, HwSerial: "0434334921100366"}},
		Stations: []string{"1", "2"}, At: at, Instance: "9f86d081884c7d65", NodeIDConflict: true}
	b, err = json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	back, err := wire.DecodeState(b)
	if err != nil || !reflect.DeepEqual(back, s) {
		t.Fatalf("DecodeState = %+v, %v; want %+v", back, err, s)
	}
	if !strings.Contains(string(b), `"instance":"9f86d081884c7d65","node_id_conflict":true`) {
		t.Fatalf("Marshal = %s, want instance and node_id_conflict", b)
	}
	// A node of an older release sends neither: it decodes, with no
	// instance and no conflict.
	old, err := wire.DecodeState([]byte(want))
	if err != nil || old.Instance != "" || old.NodeIDConflict {
		t.Fatalf("DecodeState(older state) = %+v, %v", old, err)
	}
}

func TestTerminalTopicsAndTickets(t *testing.T) {
	for _, tc := range []struct {
		machine int64
		serial  string
		key     string
	}{
		{71234996, "0434334921100366", "m71234996"},
		{0, "0434334921100366", "s0434334921100366"},
		{0, "a/b+c#", "sa_b_c_"},
	} {
		if got := wire.TerminalKey(tc.machine, tc.serial); got != tc.key {
			t.Errorf("TerminalKey(%d, %q) = %q, want %q", tc.machine, tc.serial, got, tc.key)
		}
		topic := wire.TerminalTopic("sitelink/v1", tc.key)
		if key, ok := wire.ParseTerminalTopic("sitelink/v1", topic); !ok || key != tc.key {
			t.Errorf("ParseTerminalTopic(%q) = %q %v", topic, key, ok)
		}
	}
	for _, bad := range []string{"sitelink/v1/terminals/", "sitelink/v1/terminals/a/b", "other/terminals/m1", "sitelink/v1/nodes/m1"} {
		if _, ok := wire.ParseTerminalTopic("sitelink/v1", bad); ok {
			t.Errorf("ParseTerminalTopic(%q) accepted", bad)
		}
	}
	if wire.AllTerminals("sitelink/v1") != "sitelink/v1/terminals/+" {
		t.Error(wire.AllTerminals("sitelink/v1"))
	}
	for _, tc := range []struct{ body, want string }{
		{`{"Amount":15,"ticket":{"nayax":1,"max":"15","mac":"m"}}`, `{"nayax":1,"max":"15","mac":"m"}`},
		{`{"Amount":15}`, ""},
		{`{"ticket":"x"}`, ""},
		{`{"ticket":null}`, ""},
		{`[1]`, ""},
	} {
		if got := string(wire.TicketOf(json.RawMessage(tc.body))); got != tc.want {
			t.Errorf("TicketOf(%s) = %q, want %q", tc.body, got, tc.want)
		}
	}
}

// TestEventPayloadSameBytes: a marshalled body is put into the envelope
// as it is, and a SessionEventOf marshals as SessionEvent does; both must
// give byte for byte what marshalling the whole envelope (with the
// session as a RawMessage) gives, whatever the strings hold.
func TestEventPayloadSameBytes(t *testing.T) {
	at := time.Date(2026, 12, 6, 20, 0, 0, 123456789, time.UTC)
	tricky := []string{"", "plain", "<a href=\"x\">&amp;</a>", "\u2028\u2029", "\x00\x01\x1f\b\f\n\r\t", `"\/`, "é😀", "\xff\xfe invalid", "\u007f"}
	type session struct {
		ID      string            `json:"id"`
		Reason  string            `json:"reason,omitempty"`
		Amount  json.Number       `json:"amount"`
		Raw     json.RawMessage   `json:"raw,omitempty"`
		Nested  map[string]string `json:"nested"`
		Numbers []float64         `json:"numbers"`
	}
	for i, s := range tricky {
		sess := session{ID: s, Reason: s, Amount: "0.59", Raw: json.RawMessage(` { "k" : "<&>" } `), Nested: map[string]string{s: s, "b": "<"}, Numbers: []float64{0.1, 1e21, -0}}
		pub, err := json.Marshal(sess)
		if err != nil {
			t.Fatal(err)
		}
		old, err := json.Marshal(wire.Event{ID: "n-" + itoa(uint64(i)), Node: "n", Seq: uint64(i), Type: wire.EventSession, At: at,
			Body: mustMarshal(t, wire.SessionEvent{From: s, To: "stopping", Reason: s, Session: pub})})
		if err != nil {
			t.Fatal(err)
		}
		got, err := wire.EventPayload("n", uint64(i), wire.EventSession, at, wire.SessionEventOf[session]{From: s, To: "stopping", Reason: s, Session: sess})
		if err != nil || string(got) != string(old) {
			t.Fatalf("%q: EventPayload = %s, %v\nwant           %s", s, got, err, old)
		}
		plain, err := wire.EventPayload("n", uint64(i), wire.EventSession, at, sess)
		want, _ := json.Marshal(wire.Event{ID: "n-" + itoa(uint64(i)), Node: "n", Seq: uint64(i), Type: wire.EventSession, At: at, Body: pub})
		if err != nil || string(plain) != string(want) {
			t.Fatalf("%q: EventPayload = %s, %v\nwant           %s", s, plain, err, want)
		}
	}
}

func mustMarshal(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestEventEnvelopeSameBytes: the envelope written directly (spliceBody's
// fast path) is byte for byte json.Marshal's, and names or times it
// cannot write take Marshal's path.
func TestEventEnvelopeSameBytes(t *testing.T) {
	at := time.Date(2026, 12, 6, 20, 0, 0, 123456789, time.UTC)
	body := json.RawMessage(`{"to":"x","session":{"k":"v"}}`)
	tests := []struct {
		node, typ string
		seq       uint64
		at        time.Time
	}{
		{"site-7", "session", 1, at},
		{"site-7", "settlement-request", math.MaxUint64, at.Truncate(time.Second)},
		{"a<b>&c", "session", 2, at},
		{"quote\"back\\slash", "station", 3, at},
		{"é-node", "session", 4, at},
		{"tab\tnode", "session", 5, at},
		{"del\x7f", "session", 6, at},
		{"n", "session", 7, time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC)},
		{"n", "session", 8, time.Time{}},
		{"n", "session", 9, at.In(time.FixedZone("CET", 3600))},
		{"n", "session", 10, at.Round(time.Millisecond)},
	}
	for _, tt := range tests {
		got, err := wire.EventPayload(tt.node, tt.seq, tt.typ, tt.at, wire.SessionEventOf[map[string]string]{To: "x", Session: map[string]string{"k": "v"}})
		if err != nil {
			if strings.ContainsAny(tt.node, "/+#") {
				continue
			}
			t.Fatalf("%q: %v", tt.node, err)
		}
		// EventPayload writes times in UTC.
		ev := wire.Event{ID: tt.node + "-" + itoa(tt.seq), Node: tt.node, Seq: tt.seq, Type: tt.typ, At: tt.at.UTC(), Body: body}
		want, err := json.Marshal(ev)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != string(want) {
			t.Errorf("%q %q %d %v:\n got %s\nwant %s", tt.node, tt.typ, tt.seq, tt.at, got, want)
		}
	}
}
