// Package relay is sitelink's cloud endpoint (`sitelink relay`): the
// integrator URL Nayax calls, and the caller of Nayax's Spark API.
//
// Inbound, each callback (StopCallback, TransactionCallback, Decline,
// Timeout, Cortina Prepaid Cancel/Void) is decoded, reduced to an
// allowlist of fields (card data never reaches MQTT or logs; Nayax's
// CardHash leaves only keyed with the fleet's card key, the same on every
// replica, Options.CardKey), routed to
// the site controller that owns the terminal — learned from the nodes'
// retained state births — and sent as a command. The controller decides;
// the relay waits for its reply within the ack budget (default 4 s, under
// Nayax's 5 s) and answers with it, or with Declined 992 / a queued
// acknowledgement when the controller is offline or slow.
//
// Outbound, replicas share the nodes' request events (start, settlement,
// cancel) through a shared subscription, call Nayax (signed, authenticated
// with StartAuthentication), and publish Nayax's answer back to the node
// as a `result` command. The event is acknowledged to the broker only
// after the result is published, so a replica killed mid-call loses
// nothing.
//
// The relay keeps no state of its own: any number of replicas can run
// behind a load balancer on one broker.
//
// The public listener serves the callbacks and nothing else; /metrics and
// /healthz are on Options.MetricsListen. It holds at most
// Options.MaxConnections, each source may make Options.RateLimit requests
// a second (429 beyond), and every refusal is counted in
// sitelink_relay_refused_total and logged at most once per interval
// (package guard).
//
// # Caveats
//
// A replica learns routes from retained messages at connect; until its
// subscription has delivered them it answers "unknown machine". Replies
// come back on a per-replica topic inside each node's subtree
// (P/nodes/N/replies/<relay id>), so broker ACLs that confine nodes to
// their subtree still let them answer.
package relay
