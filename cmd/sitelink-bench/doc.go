// Command sitelink-bench is the project's benchmark: it builds each floor
// (a bare paho echo, a bare bbolt commit, a bare paho publisher, a bare
// HTTP→MQTT→HTTP relay) in the same run as the sitelink figure it is a
// floor for, and prints one table of figure, sitelink, floor and ratio.
// The machines it runs on are shared and noisy, so only ratios measured
// side by side mean anything.
//
//	go run ./cmd/sitelink-bench            # the full run (minutes)
//	go run ./cmd/sitelink-bench -short     # seconds: CI checks the table is produced
//	go run ./cmd/sitelink-bench -only relay
//
// It spawns its own mosquitto on a free loopback port (the embedded broker
// when mosquitto is not installed, which the table says) and writes only
// under a temporary directory. It is a tool for developers, not part of
// the product: the .deb does not ship it.
package main
