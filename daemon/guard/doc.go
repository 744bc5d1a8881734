// Package guard bounds what a stranger can make one of sitelink's servers
// spend: a cap on the connections open at once (Listen), a request rate per
// source address (Sources), and a log of everything turned away that
// writes at most one line per interval however hard it is pushed
// (Refusals). The relay puts all three in front of its public listener;
// the edge caps its metrics listener and counts the commands it answers
// without acting.
//
// Every refusal is counted, by a reason from a small fixed set, so that a
// metric shows it at once; the log only says that refusals happen and how
// many, never one line per request: a flood of 401s once wrote 3.2 MB/s of
// log on a relay.
//
// # Caveats
//
// A source is the peer's address. Behind a proxy or load balancer every
// request comes from the proxy, so the per-source rate acts as one rate
// for everyone: limit per client at the proxy then. IPv6 peers count per
// /64, the block one subscriber gets, so that rotating addresses inside it
// buys nothing.
//
// A connection over the cap is closed at once (with a reset), not queued:
// a queued connection would wait longer than Nayax waits for its answer,
// and a closed one is counted and retried by its client.
package guard
