// Package edge is the sitelink edge daemon (`sitelink run`): it owns the
// site's charging sessions from authorization to the end of service.
//
// # Who owns what
//
// Daemon.Run (edge.go) is the composition root: plain wiring that builds
// each piece from the values it needs, starts them in order and stops
// them in reverse. No piece holds a pointer back to the Daemon.
//
//	store.Store   the bbolt ledger: sessions, outbox, inbox, fleet config
//	fleet         the running configuration's layers (file, group, node);
//	              decides desired configs and SIGHUP reloads (fleet.go)
//	stationSet    the drivers, meters and serial buses (stations.go)
//	presence      the connect epoch, birth and will, and a second daemon
//	              under this node id (presence.go)
//	link.Link     the MQTT connection
//	pump          the outbox, published in order (pump.go)
//	engine        every session transition, on one goroutine (engine.go)
//	backend       the local API, answered from the owners above (api.go)
//	retention     moves finished sessions past storage.retention to the
//	              archive, hourly, on its own goroutine (retention.go)
//
// Who calls whom: paho handlers, station watchers, gpio buttons and the
// local API never call the engine; they push into queues made before it
// (commands, station changes, calls) and the engine drains them. The
// engine wakes the pump (poke), reports station changes still waiting on
// a channel the fleet reads, and swaps the running configuration
// (reconfigure) when the fleet asks it to through calls. The money rules
// are in package billing, the lifecycle in store (store.CanTransition).
//
// Pieces, started in this order and stopped in reverse: the bbolt store,
// the fleet's layers over the file, the stations (contactors opened
// first), the link, the pump, the engine and its reconcile of sessions
// left open by a crash or shutdown, the local API socket.
//
// The engine is one goroutine. Commands arrive from paho handlers through
// an unbounded queue (handlers never block) and are acknowledged to the
// broker only after their effect and reply are committed to bbolt, so a
// crash at any point makes the broker redeliver and the inbox answer. A
// command that changed nothing commits nothing: its reply is remembered in
// memory (recent.go), so a flood of them costs no ledger space or fsync.
// Every transition commits its `session` event to the outbox in the same
// transaction; the pump publishes the outbox in order with QoS 1 and
// deletes entries on PUBACK. A transition the lifecycle table does not
// allow is refused and logged as a bug, never a panic.
//
// Safety order: stopping opens the contactor first, then records; starting
// records first, then closes the contactor.
//
// Money (payments.go, package billing): the transaction that records
// `stopped` also decides settle-or-cancel (billing.Decide) and queues the
// exact Nayax request as a settlement-request or cancel-request event; the
// session keeps the request until a `result` command records Nayax's
// answer. No answer within policy.result_timeout → sent again; a failure
// → capped, jittered backoff (daemon/retry); cancels are retried until
// Nayax answers, settlements within 5 attempts in 24 h, then
// `needs-reconciliation`. An authorization the site refuses (station
// busy, faulted, unknown, or a Remote Start already closed) is released
// with a cancel the same way. Local start, stop and self-test: local.go.
// Each session keeps the relay's ticket for its transaction and sends it
// with its settlement or cancel; a request the relay refuses (no ticket,
// not this node's) goes to `needs-reconciliation`, never retried.
//
// Device Start and StopNotify (device.go): an `info` command answers a
// station's availability and reserves a free one, in memory, for its
// transaction; the `authorize` that follows (flow device-start) is served
// on that reservation or refused and released. `stop-notify` finds the
// one session the card paid for. Both act only with time left before the
// relay's deadline to switch the contactor.
//
// Configuration (fleet.go, reconfig.go): the running configuration is the
// local file with the fleet's group and node desired configs merged over
// it (config.ParseLayers). The fleet's goroutine decides each new version
// or SIGHUP reload in turn: validate, try a changed mqtt section on the
// link (restored if the link does not return within Options.ConfigTrial),
// have the engine swap the whole configuration, persist the decision in
// bbolt, then report it on config/reported. Stations whose definition
// changed wait until no session holds them, then are rebuilt on the
// engine goroutine; a session keeps the tariff it started with.
//
// Retention (retention.go, store.Archive) never runs on the engine
// goroutine: it reads its batches in read transactions and takes them out
// of the ledger in one short write transaction per batch (a few
// milliseconds), so a backlog of years costs the engine at most one such
// wait per command. The ledger is compacted only when it is opened, at
// start, if storage.compact_free_percent says so.
//
// The engine's decisions are tested without a broker (engine_test.go: a
// real ledger, simulated stations, commands handed to engine.handle and
// the clock driven by hand); the rest end to end against a real mosquitto.
//
// # Caveats
//
// Contactor switching runs on the engine goroutine, so a driver's
// confirmation timeout delays other commands. policy.result_timeout must
// stay above the relay's whole call time (60 s), or a slow Nayax could see
// the same request twice at once.
//
// A session authorized before its relays started keying card hashes, or
// before the fleet's card key changed, holds a digest of the other value:
// its card's StopCallback is Declined (26). It still stops by unplugging,
// a local stop, its timeouts or the budget.
package edge
