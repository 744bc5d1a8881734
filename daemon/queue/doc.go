// Package queue is the one hand-off between paho's message handlers and
// the goroutines that act on the messages (the edge's engine, the relay's
// event workers): handlers must never block, so they push and return.
package queue
