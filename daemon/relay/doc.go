// Package relay is sitelink's cloud endpoint (`sitelink relay`): the
// integrator URL Nayax calls, and the caller of Nayax's Spark API.
//
// Inbound, each callback (StopCallback, TransactionCallback, Decline,
// Timeout, Cortina Prepaid Cancel/Void) is decoded, reduced to an
// allowlist of fields (card data never reaches MQTT or logs; Nayax's
// CardHash leaves only keyed with the fleet's card key, the same on every
// replica, Options.CardKey), routed to
// the site controller that owns the terminal — by the fleet's retained
// registry P/terminals/+ only (routes.go); a node's own state says
// whether it is online, and the terminals it claims there are compared
// and reported, never followed — and sent as a command. A forwarded
// TransactionCallback carries the relay's ticket for its transaction
// (tickets.go). The controller decides;
// the relay waits for its reply within the ack budget (default 4 s, under
// Nayax's 5 s) and answers with it, or with Declined 992 / a queued
// acknowledgement when the controller is offline or slow.
//
// Outbound, replicas share the nodes' request events (start, settlement,
// cancel) through a shared subscription, call Nayax (signed, authenticated
// with StartAuthentication), and publish Nayax's answer back to the node
// as a `result` command, but only a request for the node's own money: a
// settlement or cancel with the ticket issued to that node, a start for a
// terminal the registry gives it, up to Options.MaxStartAmount; anything
// else is answered OutcomeRefused and counted. The shared group's name is
// a secret derived from the card key, because mosquitto 2.0 lets anyone
// who knows it join. The event is acknowledged to the broker only
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
// subscription has delivered them it answers "unknown machine". The
// registry lives in the broker: a replica puts back what it holds when
// the broker lost it (keepRegistry), but a fleet whose broker and every
// replica lost it at once needs the operator to give the terminals again.
// Replies
// come back on a per-replica topic inside each node's subtree
// (P/nodes/N/replies/<relay id>), so broker ACLs that confine nodes to
// their subtree still let them answer.
package relay
