// Package localapi is the edge daemon's local API: JSON over HTTP on a
// unix socket (mode 0660), used by `sitelink status|stations|sessions|
// outbox|sim` on the controller itself. It is not reachable from the
// network by design; the fleet talks MQTT.
//
// # Caveats
//
// The JSON field names are a contract (scripts and tests rely on them);
// add fields, never rename. A client that cannot reach the socket says
// why: no permission (and the group to join), no socket, or no daemon.
package localapi
