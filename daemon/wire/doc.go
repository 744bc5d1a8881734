// Package wire is sitelink's MQTT contract (DESIGN.md §3): the topic
// layout under the prefix P (DefaultPrefix "sitelink/v1") and the JSON
// envelopes of commands, replies, events, node state and configuration.
// Edge and relay both build and parse their messages here, so the two
// sides cannot drift apart.
//
//	P/nodes/N/state              retained state, also the will
//	P/nodes/N/commands/{type}    relay/app → edge   (Command)
//	P/nodes/N/replies            edge → relay       (Reply, unless reply_to)
//	P/nodes/N/events/{type}      edge → relay       (Event, from the outbox)
//	P/nodes/N/config/desired     fleet → edge       (DesiredConfig, retained)
//	P/groups/G/config/desired    fleet → edge       (DesiredConfig, retained)
//	P/nodes/N/config/reported    edge → fleet       (ReportedConfig, retained)
//
// DecodeCommand is the gate for everything a node is asked to do. It
// rejects what it cannot act on but still returns the id and reply_to it
// could read, so that a malformed command gets an error reply rather than
// silence.
//
// # Caveats
//
// Payloads are capped at MaxPayload both ways. Command ids are dedupe keys
// and must be unique per command; replaying an id replays its reply.
// Event ids ("N-seq") are unique only as long as a node keeps its
// sequence; a node whose ledger is wiped must get a new node id, or
// consumers will drop its events as duplicates.
//
// Bodies are opaque JSON objects here; their meaning (Nayax requests and
// answers) belongs to package nayax and to the session engine. Nothing in
// this package strips card data: the relay forwards an allowlist of
// fields, and callers must never put CardData, tokens or names in a body.
package wire
