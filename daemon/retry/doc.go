// Package retry holds the one backoff rule of sitelink: the MQTT link's
// reconnects, the Nayax client's retries and the edge's re-sends of Nayax
// requests all wait the same capped, jittered exponential way, so a fleet
// coming back from an outage spreads its retries instead of hammering the
// broker or Nayax in step.
package retry
