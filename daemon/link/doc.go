// Package link keeps sitelink's MQTT connection (paho.mqtt.golang, MQTT
// 3.1.1, QoS 1) up and hands out the live connection to whoever publishes.
//
// Reconnection is ours, not paho's: every attempt builds a fresh client
// with a fresh last will (the edge puts a new connect epoch in it), its
// message dispatch in place before CONNECT so a persistent session's
// queued messages are not lost, subscriptions made right after CONNACK,
// then OnUp (the birth).
//
// Messages reach their handlers through link's own dispatch (filters
// split once), not paho's router, which splits every route and topic per
// message; on a plain TCP broker link dials itself, as paho would, to
// read through a buffer (paho reads a packet header a byte, and a system
// call, at a time). TLS and websocket connections keep paho's dial.
// The wait between attempts is daemon/retry's backoff from BackoffMin to
// BackoffMax; new settings start it afresh, and only a connection that
// lived resets it (a broker that accepts and then kicks us is a failure).
//
// Contested is the owner's word that another client uses the same client
// id (two daemons under one node id): the broker keeps one connection
// per id and drops the older, so the two would take turns kicking each
// other off every few seconds. While contested the waits come from a
// second, slow backoff (ConflictMin to ConflictMax, minutes): the link
// yields the broker instead of fighting for it.
//
// Reconfigure swaps the connection settings and drops the connection; the
// next one is made at once with them (a backoff wait is cut short), and
// WaitGen tells when it is up, so a caller can try new settings and
// restore the old ones on failure.
//
// Shutdown waits for a connection being made (OnUp running) and says
// the offline state on it, so that it never races the birth.
//
// Every Conn handed out, to OnUp or a handler, has its Done closed when
// it is no longer the link's connection, whatever the reason.
//
// Nothing blocks in handlers and every token wait has a timeout. With
// ManualAck the PUBACK for an incoming message is sent only when the
// consumer calls Ack, after it has committed the message: a crash before
// that makes the broker redeliver it.
//
// # Caveats
//
// Messages in flight when a connection drops are not resent by paho (each
// connection has its own in-memory store); the owner of the data, the
// bbolt outbox, republishes what was not acknowledged. QoS 2 is never
// used.
package link
