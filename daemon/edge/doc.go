// Package edge is the sitelink edge daemon (`sitelink run`): it owns the
// site's charging sessions from authorization to the end of service.
//
// Pieces, started in this order and stopped in reverse: the bbolt store,
// the stations (contactors opened first), a reconcile of sessions left
// open by a crash or shutdown, the MQTT link, the outbox pump, the session
// engine and the local API socket.
//
// The engine is one goroutine. Commands arrive from paho handlers through
// an unbounded queue (handlers never block) and are acknowledged to the
// broker only after their effect and reply are committed to bbolt, so a
// crash at any point makes the broker redeliver and the inbox answer.
// Every transition commits its `session` event to the outbox in the same
// transaction; the pump publishes the outbox in order with QoS 1 and
// deletes entries on PUBACK.
//
// Safety order: stopping opens the contactor before recording; starting
// records before closing the contactor.
//
// Money (payments.go, money.go): the transaction that records `stopped`
// also decides settle-or-cancel and queues the exact Nayax request as a
// settlement-request or cancel-request event; the session keeps the
// request until a `result` command records Nayax's answer. No answer
// within policy.result_timeout → sent again; a failure → capped, jittered
// backoff; cancels are retried until Nayax answers, settlements within 5
// attempts in 24 h, then `needs-reconciliation`. An authorization the site
// refuses (station busy, faulted, unknown, or a Remote Start already
// closed) is released with a cancel the same way.
//
// Configuration (fleet.go, stations.go): the running configuration is the
// local file with the fleet's group and node desired configs merged over
// it (config.ParseLayers). One goroutine decides each new version or
// SIGHUP reload in turn: validate, try a changed mqtt section on the link
// (restored if the link does not return within Options.ConfigTrial), swap
// the whole configuration on the engine goroutine, persist the decision in
// bbolt, then report it on config/reported. Stations whose definition
// changed wait until no session holds them, then are rebuilt on the
// engine goroutine; a session keeps the tariff it started with.
//
// # Caveats
//
// Contactor switching runs on the engine goroutine, so a driver's
// confirmation timeout delays other commands. policy.result_timeout must
// stay above the relay's whole call time (60 s), or a slow Nayax could see
// the same request twice at once.
package edge
