package wire

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// DefaultPrefix is the topic prefix P of DESIGN.md §3.
const DefaultPrefix = "sitelink/v1"

// Kinds of node topic, as returned by ParseNodeTopic.
const (
	KindState    = "state"
	KindCommands = "commands"
	KindReplies  = "replies"
	KindEvents   = "events"
	KindConfig   = "config"
)

// Command types (the last level of P/nodes/N/commands/{type}).
const (
	CommandAuthorize = "authorize" // body: TransactionCallback JSON, CardHash keyed, no CardUid
	CommandStop      = "stop"      // body: StopCallback JSON, CardHash keyed, no CardUid
	CommandCancel    = "cancel"    // body: Cortina Cancel/Void minus card data
	CommandDecline   = "decline"   // body: DeclineCallback JSON
	CommandTimeout   = "timeout"   // body: TimeoutCallback JSON
	CommandStart     = "start"     // remote start request from an app
	CommandResult    = "result"    // Nayax's answer to one of our requests, echoing the event id
	CommandRebirth   = "rebirth"   // republish state
	CommandResolve   = "resolve"   // body: Resolve JSON; an operator closes a needs-reconciliation session
	// Device Start and Device Stop by StopNotify.
	CommandInfo       = "info"        // body: InfoQuery / AvailabilityCheck JSON; answer: availability, PosDisplay, Amount (and a reservation)
	CommandStopNotify = "stop-notify" // body: StopNotify JSON, CardHash keyed, no CardUid; answer: the matched session, which then stops
)

// AuthorizeFlow is the member of an `authorize` body that names the flow
// the transaction came by when it is not a TransactionCallback:
// FlowDeviceStart for a TransactionNotify.
const (
	AuthorizeFlow   = "flow"
	FlowDeviceStart = "device-start"
)

// Event types (the last level of P/nodes/N/events/{type}).
const (
	EventStartRequest      = "start-request"
	EventSettlementRequest = "settlement-request"
	EventCancelRequest     = "cancel-request"
	EventSession           = "session" // every session lifecycle transition
	EventStation           = "station" // station state changes
	EventHealth            = "health"  // periodic summary of the node (GET /metrics in brief)
)

// RequestCall is the member of a request event's body that names the
// Nayax call (Settlement, ExternalCancel…); the relay strips it and sends
// the rest of the body to Nayax as it is.
const RequestCall = "call"

// Topics builds the topics of one node. Prefix is the configured prefix
// (DefaultPrefix unless changed); a trailing "/" is ignored and an empty
// Prefix gives topics that start at "nodes/".
type Topics struct {
	Prefix string
	Node   string
}

func (t Topics) node(rest ...string) string {
	return join(t.Prefix, append([]string{"nodes", t.Node}, rest...)...)
}

// State is P/nodes/N/state, retained, also the node's will.
func (t Topics) State() string { return t.node(KindState) }

// Commands is the subscription filter P/nodes/N/commands/+.
func (t Topics) Commands() string { return t.node(KindCommands, "+") }

// Command is P/nodes/N/commands/{typ}.
func (t Topics) Command(typ string) string { return t.node(KindCommands, typ) }

// Replies is P/nodes/N/replies, where replies go when a command has no
// reply_to.
func (t Topics) Replies() string { return t.node(KindReplies) }

// RelayReplies is P/nodes/N/replies/{relay}, the reply_to of relay
// replica relay's commands: inside the node's subtree, so a broker ACL
// that confines the node to it still lets it answer.
func (t Topics) RelayReplies(relay string) string { return t.node(KindReplies, relay) }

// Event is P/nodes/N/events/{typ}.
func (t Topics) Event(typ string) string { return t.node(KindEvents, typ) }

// ConfigDesired is P/nodes/N/config/desired (retained, fleet to node).
func (t Topics) ConfigDesired() string { return t.node(KindConfig, "desired") }

// ConfigReported is P/nodes/N/config/reported (retained, node to fleet).
func (t Topics) ConfigReported() string { return t.node(KindConfig, "reported") }

// GroupConfigDesired is P/groups/G/config/desired (retained).
func GroupConfigDesired(prefix, group string) string {
	return join(prefix, "groups", group, KindConfig, "desired")
}

// AllNodes is the Topics of every node at once (node level "+"): its
// topics are subscription filters, AllNodes(p).State() is P/nodes/+/state.
func AllNodes(prefix string) Topics { return Topics{Prefix: prefix, Node: "+"} }

// RelayPresence is P/relays/{id}: a relay replica's retained presence
// (RelayState), also its last will. Sites watch P/relays/+ and send again
// what awaits Nayax's answer when a replica comes online, because an
// event published while no replica was subscribed (a broker restarted
// without persistence) reached nobody.
func RelayPresence(prefix, relay string) string { return join(prefix, "relays", relay) }

// AllRelays is the filter P/relays/+.
func AllRelays(prefix string) string { return join(prefix, "relays", "+") }

// ParseRelayTopic returns the relay id of a P/relays/{id} topic.
func ParseRelayTopic(prefix, topic string) (relay string, ok bool) {
	if p := strings.TrimRight(prefix, "/"); p != "" {
		rest, found := strings.CutPrefix(topic, p+"/")
		if !found {
			return "", false
		}
		topic = rest
	}
	id, found := strings.CutPrefix(topic, "relays/")
	if !found || checkLevel("", id) != nil || strings.Contains(id, "/") {
		return "", false
	}
	return id, true
}

// TerminalTopic is P/terminals/{key}: one terminal's owner (Terminal,
// retained), written by the fleet's operator. key names the terminal
// ("m<machine id>" or "s<serial>" by convention, see TerminalKey); the
// relay reads the owner from the body.
func TerminalTopic(prefix, key string) string { return join(prefix, "terminals", key) }

// AllTerminals is the filter P/terminals/+.
func AllTerminals(prefix string) string { return join(prefix, "terminals", "+") }

// TerminalKey is the topic level of a terminal's ownership message: "m"
// and the machine id when it has one, else "s" and the serial. One key
// per terminal makes moving it to another node a single retained publish.
func TerminalKey(machineID int64, hwSerial string) string {
	if machineID > 0 {
		return fmt.Sprintf("m%d", machineID)
	}
	return "s" + strings.Map(func(r rune) rune {
		if r == '/' || r == '+' || r == '#' || r == 0 {
			return '_'
		}
		return r
	}, hwSerial)
}

// ParseTerminalTopic returns the key of a P/terminals/{key} topic.
func ParseTerminalTopic(prefix, topic string) (key string, ok bool) {
	if p := strings.TrimRight(prefix, "/"); p != "" {
		rest, found := strings.CutPrefix(topic, p+"/")
		if !found {
			return "", false
		}
		topic = rest
	}
	key, found := strings.CutPrefix(topic, "terminals/")
	if !found || checkLevel("", key) != nil {
		return "", false
	}
	return key, true
}

// Shared turns a filter into an MQTT shared subscription
// ($share/{group}/{filter}), so that relay replicas split the messages.
func Shared(group, filter string) string { return "$share/" + group + "/" + filter }

func join(prefix string, levels ...string) string {
	prefix = strings.TrimRight(prefix, "/")
	s := strings.Join(levels, "/")
	if prefix == "" {
		return s
	}
	return prefix + "/" + s
}

// ParseNodeTopic splits a node topic under prefix into node id, kind and
// type: "sitelink/v1/nodes/site-1/commands/stop" gives ("site-1",
// "commands", "stop", true), ".../state" gives (node, "state", "", true),
// ".../config/desired" gives (node, "config", "desired", true),
// ".../replies/relay-1" gives (node, "replies", "relay-1", true). Topics
// outside the contract, and levels holding wildcards, give ok false.
func ParseNodeTopic(prefix, topic string) (node, kind, typ string, ok bool) {
	if p := strings.TrimRight(prefix, "/"); p != "" {
		rest, found := strings.CutPrefix(topic, p+"/")
		if !found {
			return "", "", "", false
		}
		topic = rest
	}
	levels := strings.Split(topic, "/")
	if len(levels) < 3 || levels[0] != "nodes" {
		return "", "", "", false
	}
	for _, l := range levels[1:] {
		if checkLevel("", l) != nil {
			return "", "", "", false
		}
	}
	node, kind = levels[1], levels[2]
	switch {
	case len(levels) == 3 && (kind == KindState || kind == KindReplies):
		return node, kind, "", true
	case len(levels) == 4 && (kind == KindCommands || kind == KindEvents || kind == KindReplies):
		return node, kind, levels[3], true
	case len(levels) == 4 && kind == KindConfig && (levels[3] == "desired" || levels[3] == "reported"):
		return node, kind, levels[3], true
	}
	return "", "", "", false
}

// checkLevel accepts one non-empty topic level without wildcards, in
// valid UTF-8 as MQTT requires of topic names.
func checkLevel(what, s string) error {
	if s == "" || strings.ContainsAny(s, "/+#\x00") || !utf8.ValidString(s) {
		return fmt.Errorf("%s %q: %w", what, s, ErrTopic)
	}
	return nil
}
