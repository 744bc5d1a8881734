package wire

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// MaxPayload is the largest envelope sitelink reads or writes. Nayax
// bodies are a few KiB; the limit bounds what a misbehaving publisher can
// make a node buffer and store.
const MaxPayload = 64 << 10

// MaxIDLen bounds command ids: they become bbolt dedupe keys and are
// echoed in replies.
const MaxIDLen = 256

// Errors of this package; match them with errors.Is.
var (
	// ErrTooLarge is a payload over MaxPayload.
	ErrTooLarge = errors.New("payload too large")
	// ErrMalformed is a payload that is not the envelope of the contract:
	// not a JSON object, or a field missing or of the wrong shape.
	ErrMalformed = errors.New("malformed message")
	// ErrTopic is a topic level that is empty or holds a "/" or an MQTT
	// wildcard.
	ErrTopic = errors.New("invalid topic level")
)

// Command is the envelope on P/nodes/N/commands/{type}. Body is the
// command's JSON object (for "stop", the StopCallback JSON).
type Command struct {
	ID       string          `json:"id"`
	Type     string          `json:"type"`
	ReplyTo  string          `json:"reply_to,omitempty"`
	Deadline *time.Time      `json:"deadline,omitempty"`
	Body     json.RawMessage `json:"body,omitempty"`
}

// CommandPayload is the JSON of c, as json.Marshal writes it except that
// Body, which must be one JSON object, goes as it is rather than
// compacted and HTML-escaped once more (a Literal Nayax sent keeps its
// bytes). The relay sends a command for every callback it answers: an
// envelope whose strings need no escaping is written directly, without
// Marshal's reflection and second pass over the body.
func CommandPayload(c Command) ([]byte, error) {
	if len(c.Body) > 0 && (!isObject(c.Body) || !json.Valid(c.Body)) {
		return nil, fmt.Errorf("command payload: body is not a JSON object: %w", ErrMalformed)
	}
	var out []byte
	if plainJSON(c.ID) && plainJSON(c.Type) && plainJSON(c.ReplyTo) {
		out = make([]byte, 0, 64+len(c.ID)+len(c.Type)+len(c.ReplyTo)+len(c.Body))
		out = append(out, `{"id":"`...)
		out = append(out, c.ID...)
		out = append(out, `","type":"`...)
		out = append(out, c.Type...)
		out = append(out, '"')
		if c.ReplyTo != "" {
			out = append(out, `,"reply_to":"`...)
			out = append(out, c.ReplyTo...)
			out = append(out, '"')
		}
		if c.Deadline != nil {
			d, err := c.Deadline.MarshalJSON()
			if err != nil {
				return nil, fmt.Errorf("command payload: deadline: %w", err)
			}
			out = append(append(out, `,"deadline":`...), d...)
		}
		if len(c.Body) > 0 {
			out = append(append(out, `,"body":`...), c.Body...)
		}
		out = append(out, '}')
	} else {
		body := c.Body
		c.Body = nil
		b, err := json.Marshal(c)
		if err != nil {
			return nil, fmt.Errorf("command payload: %w", err)
		}
		out = b
		if len(body) > 0 {
			out = append(append(out[:len(out)-1], `,"body":`...), body...)
			out = append(out, '}')
		}
	}
	return out, nil
}

// Reply answers a command; ID and Type echo the command's. Body is the
// answer the relay hands back to Nayax.
type Reply struct {
	ID   string `json:"id"`
	Type string `json:"type"`
	Body Answer `json:"body"`
}

// Answer is a node's answer to a command, in the shape of Nayax's
// response to the callback the command came from: Spark's
// {SparkTransactionId, Status, ServiceStationNumber} or Cortina's
// {Status} (a Status in Cortina's dialect). The relay writes it to Nayax
// as it is, so a node cannot put anything else in front of Nayax.
type Answer struct {
	SparkTransactionId   string `json:"SparkTransactionId,omitempty"`
	Status               Status `json:"Status"`
	ServiceStationNumber string `json:"ServiceStationNumber,omitempty"`

	// The answer to an `info` command (InfoQuery, AvailabilityCheck):
	// the station's availability (1 free, 2 in session, 3 out of
	// service), the text for the terminal, the amount to pre-authorize
	// (a decimal in the currency's units). The relay builds Nayax's
	// answer from them and the query.
	ServiceStationAvailability int    `json:"ServiceStationAvailability,omitempty"`
	PosDisplay                 string `json:"PosDisplay,omitempty"`
	Amount                     string `json:"Amount,omitempty"`

	// The answer to a `stop-notify` command: the session the card paid
	// for, which the node then stops. SiteId is the JSON literal Nayax
	// sent with the authorization.
	NayaxTransactionId int64  `json:"NayaxTransactionId,omitempty"`
	SiteId             string `json:"SiteId,omitempty"`
	MachineAuTime      string `json:"MachineAuTime,omitempty"`
}

// Status is Nayax's Status object in either dialect: Spark's sets
// ErrorCode and ErrorDescription (nayax.Status), Cortina's sets Code and
// CustomDeclineCode (nayax.CortinaStatus). The fields are in the order
// both dialects write them, so either marshals to the same JSON as its
// nayax type. It is defined here, not taken from package nayax, because
// wire imports nothing of sitelink's.
type Status struct {
	Verdict           string `json:"Verdict"`
	ErrorCode         *int   `json:"ErrorCode,omitempty"`
	Code              *int   `json:"Code,omitempty"`
	CustomDeclineCode *int   `json:"CustomDeclineCode,omitempty"`
	ErrorDescription  string `json:"ErrorDescription,omitempty"`
	StatusMessage     string `json:"StatusMessage,omitempty"`
}

// Event is the envelope on P/nodes/N/events/{type}. ID ("N-seq") is the
// idempotency key: delivery is at-least-once and consumers dedupe on it.
type Event struct {
	ID   string          `json:"id"`
	Node string          `json:"node"`
	Seq  uint64          `json:"seq"`
	Type string          `json:"type"`
	At   time.Time       `json:"at"`
	Body json.RawMessage `json:"body"`
}

// Machine is one Nayax machine a node serves, for the relay's routing.
type Machine struct {
	MachineID int64  `json:"machine_id"`
	HwSerial  string `json:"hw_serial"`
}

// State is the retained P/nodes/N/state message, also the node's will
// (Online false). Epoch grows at every connect so that a stale will can be
// told from a fresh birth.
type State struct {
	Online        bool      `json:"online"`
	Epoch         int64     `json:"epoch"`
	Version       string    `json:"version"`
	ConfigVersion int64     `json:"config_version"`
	Machines      []Machine `json:"machines"`
	Stations      []string  `json:"stations"`
	At            time.Time `json:"at"`
	// OutboxDepth is how many events the node had not yet delivered when
	// it published this state (an extension for fleet views).
	OutboxDepth int `json:"outbox_depth,omitempty"`
	// GroupConfigVersion and NodeConfigVersion are the versions of the
	// group's and the node's desired configs that run (ConfigVersion is
	// the last applied of either).
	GroupConfigVersion int64 `json:"group_config_version,omitempty"`
	NodeConfigVersion  int64 `json:"node_config_version,omitempty"`
	// Instance is a random id the daemon draws at every start (an
	// extension; older nodes omit it). Everything else here, the node
	// id, the epochs, the ledger, is copied with a cloned SD card, but
	// two daemons running at once never share it: a node that sees a
	// state with another instance on its own state topic, written after
	// it started, knows a second daemon uses its node id.
	Instance string `json:"instance,omitempty"`
	// NodeIDConflict is true while the node sees such a second daemon
	// (an extension): it then reconnects only every few minutes, so the
	// broker, which keeps one connection per client id, is not the
	// scene of a fight. Fix: give one of them another node.id.
	NodeIDConflict bool `json:"node_id_conflict,omitempty"`
}

// MarshalJSON writes nil lists as [] so that consumers always see arrays.
func (s State) MarshalJSON() ([]byte, error) {
	type plain State
	p := plain(s)
	if p.Machines == nil {
		p.Machines = []Machine{}
	}
	if p.Stations == nil {
		p.Stations = []string{}
	}
	return json.Marshal(p)
}

// DecodeCommand decodes a command envelope received on a commands topic
// whose last level is topicType.
//
// A payload over MaxPayload or one that is not a JSON object yields a zero
// Command and ErrTooLarge or ErrMalformed. An envelope with a bad field
// yields an error wrapping ErrMalformed together with every field that
// could be read, so that the caller can still reply to ID at ReplyTo.
// Rules: id is a non-empty string of at most MaxIDLen bytes; type, when
// empty, is taken from topicType and otherwise must equal it (when
// topicType is not empty); reply_to is a concrete topic (no wildcards, not
// a $ topic); deadline is RFC 3339; body, when present and not null, is a
// JSON object.
func DecodeCommand(payload []byte, topicType string) (Command, error) {
	var c Command
	if len(payload) > MaxPayload {
		return c, fmt.Errorf("decode command: %w", ErrTooLarge)
	}
	var env struct {
		ID       json.RawMessage `json:"id"`
		Type     json.RawMessage `json:"type"`
		ReplyTo  json.RawMessage `json:"reply_to"`
		Deadline json.RawMessage `json:"deadline"`
		Body     json.RawMessage `json:"body"`
	}
	if !isObject(payload) || json.Unmarshal(payload, &env) != nil {
		return c, fmt.Errorf("decode command: %w", ErrMalformed)
	}
	var first error
	fail := func(format string, args ...any) {
		if first == nil {
			first = fmt.Errorf("decode command: %s: %w", fmt.Sprintf(format, args...), ErrMalformed)
		}
	}

	switch id, ok := str(env.ID); {
	case !ok:
		fail("id is not a string")
	case id == "":
		fail("missing id")
	case len(id) > MaxIDLen:
		fail("id longer than %d bytes", MaxIDLen)
	default:
		c.ID = id
	}

	switch to, ok := str(env.ReplyTo); {
	case !ok:
		fail("reply_to is not a string")
	case strings.ContainsAny(to, "+#\x00") || strings.HasPrefix(to, "$"):
		fail("reply_to %q is not a topic to publish to", to)
	default:
		c.ReplyTo = to
	}

	switch typ, ok := str(env.Type); {
	case !ok:
		fail("type is not a string")
	case typ == "" && topicType == "":
		fail("missing type")
	case typ == "" && checkLevel("type", topicType) != nil:
		fail("topic type %q is not a topic level", topicType)
	case typ == "":
		c.Type = topicType
	case checkLevel("type", typ) != nil:
		fail("type %q is not a topic level", typ)
	case topicType != "" && typ != topicType:
		c.Type = typ
		fail("type %q on the topic of %q", typ, topicType)
	default:
		c.Type = typ
	}

	switch d, ok := str(env.Deadline); {
	case !ok:
		fail("deadline is not a string")
	case d == "":
	default:
		t, err := time.Parse(time.RFC3339, d)
		if err != nil {
			fail("deadline is not RFC 3339")
			break
		}
		c.Deadline = &t
	}

	if b := bytes.TrimSpace(env.Body); len(b) > 0 && !bytes.Equal(b, []byte("null")) {
		if b[0] != '{' {
			fail("body is not an object")
		} else {
			c.Body = b
		}
	}
	return c, first
}

// EventPayload builds the JSON of an Event: id node-seq, at in UTC, body
// marshalled (a json.RawMessage or []byte is taken as JSON as is; nil is
// {}). The body must be a JSON object and the whole event fit MaxPayload,
// so that the outbox never holds what consumers would reject.
func EventPayload(node string, seq uint64, typ string, at time.Time, body any) ([]byte, error) {
	if err := checkLevel("node id", node); err != nil {
		return nil, fmt.Errorf("event payload: %w", err)
	}
	if err := checkLevel("event type", typ); err != nil {
		return nil, fmt.Errorf("event payload: %w", err)
	}
	raw, marshalled, err := objectBody(body)
	if err != nil {
		return nil, fmt.Errorf("event payload: %w", err)
	}
	ev := Event{
		ID:   node + "-" + strconv.FormatUint(seq, 10),
		Node: node,
		Seq:  seq,
		Type: typ,
		At:   at.UTC(),
		Body: raw,
	}
	var b []byte
	if marshalled {
		b, err = spliceBody(ev)
	} else {
		b, err = json.Marshal(ev)
	}
	if err != nil {
		return nil, fmt.Errorf("event payload: %w", err)
	}
	if len(b) > MaxPayload {
		return nil, fmt.Errorf("event payload: %w", ErrTooLarge)
	}
	return b, nil
}

// DecodeReply decodes a reply envelope; id must be non-empty and body,
// when present, an Answer.
func DecodeReply(payload []byte) (Reply, error) {
	if r, ok := decodeReplyFast(payload); ok && r.ID != "" && len(payload) <= MaxPayload {
		return r, nil
	}
	var r Reply
	if err := decodeEnvelope("decode reply", payload, &r); err != nil {
		return Reply{}, err
	}
	if r.ID == "" {
		return Reply{}, fmt.Errorf("decode reply: missing id: %w", ErrMalformed)
	}
	return r, nil
}

// DecodeEvent decodes an event envelope; id, node and type must be
// non-empty and body, when present, an object.
func DecodeEvent(payload []byte) (Event, error) {
	var e Event
	if err := decodeEnvelope("decode event", payload, &e); err != nil {
		return Event{}, err
	}
	if e.ID == "" || e.Node == "" || e.Type == "" {
		return Event{}, fmt.Errorf("decode event: missing id, node or type: %w", ErrMalformed)
	}
	if err := checkBody(e.Body); err != nil {
		return Event{}, fmt.Errorf("decode event: %w", err)
	}
	return e, nil
}

// RelayState is a relay replica's presence on P/relays/{id} (retained;
// the will says online false). Epoch changes with every connection, so a
// site can tell a replica that came back from one it already knew.
type RelayState struct {
	Online bool      `json:"online"`
	Epoch  int64     `json:"epoch"`
	At     time.Time `json:"at"`
}

// DecodeRelayState decodes a relay presence message; an empty payload (a
// cleared retained message) is ErrMalformed.
func DecodeRelayState(payload []byte) (RelayState, error) {
	var s RelayState
	if err := decodeEnvelope("decode relay state", payload, &s); err != nil {
		return RelayState{}, err
	}
	return s, nil
}

// DecodeState decodes a state message. An empty payload (a cleared
// retained message) is ErrMalformed: the caller forgets the node.
func DecodeState(payload []byte) (State, error) {
	var s State
	if err := decodeEnvelope("decode state", payload, &s); err != nil {
		return State{}, err
	}
	return s, nil
}

func decodeEnvelope(op string, payload []byte, v any) error {
	if len(payload) > MaxPayload {
		return fmt.Errorf("%s: %w", op, ErrTooLarge)
	}
	if !isObject(payload) {
		return fmt.Errorf("%s: %w", op, ErrMalformed)
	}
	if err := json.Unmarshal(payload, v); err != nil {
		return fmt.Errorf("%s: %v: %w", op, err, ErrMalformed)
	}
	return nil
}

// objectBody marshals body and checks that it is a JSON object;
// marshalled says the bytes are json.Marshal's own output (body was not
// JSON already).
func objectBody(body any) (raw json.RawMessage, marshalled bool, err error) {
	var b []byte
	switch v := body.(type) {
	case nil:
		return json.RawMessage("{}"), false, nil
	case json.RawMessage:
		b = v
	case []byte:
		b = v
	default:
		m, err := json.Marshal(v)
		if err != nil {
			return nil, false, fmt.Errorf("marshal body: %w", err)
		}
		// Marshal's output is valid and compact already: checking and
		// compacting it again cost every event two more passes.
		if !isObject(m) {
			return nil, false, fmt.Errorf("body is not a JSON object: %w", ErrMalformed)
		}
		return m, true, nil
	}
	if !json.Valid(b) || !isObject(b) {
		return nil, false, fmt.Errorf("body is not a JSON object: %w", ErrMalformed)
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, b); err != nil {
		return nil, false, fmt.Errorf("compact body: %w", err)
	}
	return buf.Bytes(), false, nil
}

// spliceBody is json.Marshal(ev) for a Body that json.Marshal wrote: the
// envelope is marshalled around an empty body and ev.Body put in its
// place, byte for byte what Marshal gives (it writes a RawMessage
// compact and HTML-escaped, which its own output is already), without
// scanning and copying the body once more (an event's body is most of
// it; the stop path writes four).
func spliceBody(ev Event) ([]byte, error) {
	if y := ev.At.Year(); y >= 0 && y <= 9999 && ev.At.Location() == time.UTC && plainJSON(ev.ID) && plainJSON(ev.Node) && plainJSON(ev.Type) {
		// Nothing to escape: the envelope is written directly, the same
		// bytes (TestEventEnvelopeSameBytes) at a fifth of the cost.
		out := make([]byte, 0, 64+len(ev.ID)+len(ev.Node)+len(ev.Type)+len(ev.Body))
		out = append(out, `{"id":"`...)
		out = append(out, ev.ID...)
		out = append(out, `","node":"`...)
		out = append(out, ev.Node...)
		out = append(out, `","seq":`...)
		out = strconv.AppendUint(out, ev.Seq, 10)
		out = append(out, `,"type":"`...)
		out = append(out, ev.Type...)
		out = append(out, `","at":"`...)
		out = ev.At.AppendFormat(out, time.RFC3339Nano)
		out = append(out, `","body":`...)
		out = append(out, ev.Body...)
		return append(out, '}'), nil
	}
	body := ev.Body
	ev.Body = json.RawMessage("{}")
	b, err := json.Marshal(ev)
	if err != nil {
		return nil, err
	}
	const tail = `"body":{}}`
	if !bytes.HasSuffix(b, []byte(tail)) { // Body is Event's last field
		ev.Body = body
		return json.Marshal(ev)
	}
	out := make([]byte, 0, len(b)-2+len(body))
	out = append(out, b[:len(b)-3]...)
	out = append(out, body...)
	return append(out, '}'), nil
}

func checkBody(b json.RawMessage) error {
	b = bytes.TrimSpace(b)
	if len(b) == 0 || bytes.Equal(b, []byte("null")) || b[0] == '{' {
		return nil
	}
	return fmt.Errorf("body is not an object: %w", ErrMalformed)
}

// isObject reports whether b starts, after white space, with '{'.
func isObject(b []byte) bool {
	b = bytes.TrimLeft(b, " \t\r\n")
	return len(b) > 0 && b[0] == '{'
}

// str decodes an optional JSON string: absent and null give "", true.
func str(raw json.RawMessage) (string, bool) {
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return "", true
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", false
	}
	return s, true
}

// plainJSON reports whether json.Marshal writes s as itself in quotes:
// printable ASCII without the characters it escapes.
func plainJSON(s string) bool {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c < 0x20 || c > 0x7e, c == '"', c == '\\', c == '<', c == '>', c == '&':
			return false
		}
	}
	return true
}
