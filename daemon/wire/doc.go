// Package wire is sitelink's MQTT contract (DESIGN.md §3): the topic
// layout under the prefix P (DefaultPrefix "sitelink/v1"), the command
// and event names, and the JSON of commands, replies, events, node state
// and configuration reports. Edge, relay and the fleet tools build and
// parse their messages here and write no topic or name of their own, so
// the sides cannot drift apart.
//
//	P/nodes/N/state                  retained state, also the will   (State)
//	P/nodes/N/commands/{type}        relay/app → edge   (Command; `result` body: Result)
//	P/nodes/N/replies[/{relay}]      edge → relay       (Reply, at the command's reply_to)
//	P/nodes/N/events/{type}          edge → relay       (Event; bodies SessionEvent, StationEvent, Nayax requests)
//	P/nodes/N/config/desired         fleet → edge       (retained; parsed by package config)
//	P/groups/G/config/desired        fleet → edge       (retained; parsed by package config)
//	P/nodes/N/config/reported        edge → fleet       (ReportedConfig, retained)
//	P/relays/R                       relay → edge       (RelayState, retained, also the will)
//	P/terminals/K                    fleet → relay      (Terminal, retained: who owns a terminal)
//
// Topics builds one node's topics; AllNodes(P) builds the filters over
// every node, and Shared makes a filter a shared subscription
// ($share/{group}/…) for relay replicas.
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
// Request event bodies are Nayax requests plus RequestCall and stay
// opaque here, as does the session record inside a SessionEvent: their
// fields belong to package nayax and to the ledger. Status mirrors
// nayax.Status and nayax.CortinaStatus field for field, because wire
// imports nothing of sitelink's. Nothing in this package strips card
// data: the relay forwards an allowlist of fields, and callers must never
// put CardData, tokens or names in a body.
//
// The CardHash of an `authorize` or `stop` body is not Nayax's CardHash
// but the relay's keyed hash of it (nayax.CardKey.Hash: hex
// HMAC-SHA256 under the fleet's relay.card_key_file); CardUid is never
// in a body, CardLast4Digits may be (for display). A node matches a stop
// to the card that authorized the session on that value, and stores
// only its own keyed digest of it.
//
// Trust: the relay believes nothing a node says about other sites. It
// routes a terminal's callbacks to the node that P/terminals names (the
// machines in a node's State are a claim, compared and reported, never
// followed), and sends a settlement or cancel to Nayax only with the
// Ticket the relay issued to that node with the transaction.
package wire
