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
// # Caveats
//
// Settlement and cancellation (the money end of a session) are not here
// yet: sessions end in `stopped`. Contactor switching runs on the engine
// goroutine, so a driver's confirmation timeout delays other commands.
package edge
