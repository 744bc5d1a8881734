// Package demo runs a whole sitelink site in one process for newcomers:
// an embedded MQTT broker, the edge daemon with two simulated stations,
// and a scripted cloud client that authorizes a card, lets a vehicle
// charge and stops it with Nayax's own StopCallback example, printing
// every message.
//
// # Caveats
//
// The embedded broker (mochi-mqtt) is for the demo and for tests on
// machines without mosquitto; sites use a real broker.
package demo
