// Package hal is the station hardware abstraction of sitelink: a small
// Station interface that the session engine drives, and drivers that
// implement it (sim here; gpio and modbus in subpackages).
//
// Every driver has a safe inert state, the contactor open, reached by
// Halt, by Close and when the driver starts. The engine never assumes a
// command took effect: SetContactor returns only once the driver
// confirmed the position.
//
// # Caveats
//
// Reading.EnergyWh is the meter's register, not the session's energy;
// the engine takes the delta and guards against meters that go
// backwards.
package hal
