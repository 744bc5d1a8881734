// Package broker embeds an MQTT 3.1.1 broker (mochi-mqtt/server/v2) for
// `sitelink demo`, which runs edge, relay and a simulated Nayax in one
// process, and for tests on machines without mosquitto.
//
// It is not a production broker: sitelink never ships its own broker
// (DESIGN.md), and a fleet runs mosquitto or a cluster. The embedded
// broker allows every client and topic, listens on one plain TCP address
// (loopback by default) and keeps everything in memory: retained
// messages, persistent sessions (CleanSession=false) and the QoS 1
// messages queued for them.
//
// Suspend and Resume drop and restore the listener without losing that
// state, which is how tests simulate a broker outage and restart.
//
// # Caveats
//
// Nothing survives Close or the process: retained state, sessions and
// queued messages live only in memory.
//
// There is no authentication and no TLS; keep Options.Addr on loopback.
//
// mochi (v2.7.9) is weaker than mosquitto in ways that matter to tests:
//
//   - It acknowledges a QoS 1 PUBLISH before fanning it out and a
//     SUBSCRIBE before sending the retained messages. A message can
//     therefore reach a subscriber twice (live and as retained), and a
//     message acknowledged to its publisher can be lost if the
//     subscriber's persistent session is taken over by a reconnect at
//     that instant. A further round trip on the publisher's connection
//     closes that window: mochi handles a connection's packets in order.
//   - Messages queued for an offline session are redelivered sorted by
//     the second they were created, in arbitrary order within a second.
//   - Clients.GetByListener can deadlock (mochi-mqtt/server#488), and
//     mochi's client WaitGroup races with Server.Close. This package
//     never calls the former and uses a TCP listener of its own that
//     closes every connection and waits for it before Server.Close runs.
//
// The MQTT contract is at-least-once with deduping consumers (DESIGN.md
// §3), so duplicates are tolerated by design; a test that needs exact
// broker behaviour should run against mosquitto, which daemon/mqtttest
// prefers.
//
// QoS 2 is accepted because mochi supports it, but sitelink never uses it.
package broker
