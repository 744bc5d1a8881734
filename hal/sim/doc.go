// Package sim is a simulated station driver: a charging point with a
// pretend vehicle, for development, `sitelink demo`, `sitelink sim` and
// tests.
//
// A Station behaves like a car on a real station. Without a vehicle the
// control pilot reads A; a plugged vehicle reads B while the contactor is
// open (or while it draws no power) and C while the contactor is closed and
// the vehicle draws power. Fault puts the station in state F and forces the
// contactor open until Clear.
//
// Energy is integrated lazily from the clock, on every Read and on every
// state change, so a Station runs no goroutine of its own. TimeScale
// speeds up the meter (a demo at 60 charges a minute's worth of energy per
// second) without touching PowerW, which stays the vehicle's real draw.
//
// # Caveats
//
// Unplugging does not open the contactor: a simulated station, like the
// hardware drivers, reports the state and leaves reacting to it to the
// session engine.
//
// SetStuck models a welded or dead contactor: it stops following commands
// in both directions, so even opening returns hal.ErrNotConfirmed. Fault,
// by contrast, opens the contactor even when stuck, because it models the
// station's own protection, which the sim treats as infallible.
//
// ContactorDelay is measured with the real clock (a timer), not with
// Config.Now; Config.Now drives only energy and Reading.At.
package sim
