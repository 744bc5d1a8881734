// Package modbus drives energy meters and charge controllers on an RS-485
// line with Modbus RTU: a hal.Station driver for controllers that expose
// their IEC 61851 state by register, and a meter poller with an energy
// integrity check.
//
// The pieces, bottom up:
//
//   - The codec (Request, CRC16, DecodeResponse) frames the five functions
//     sitelink needs: read coils (0x01), read holding and input registers
//     (0x03, 0x04), write single coil and register (0x05, 0x06). It is
//     small on purpose, and fuzzed: device answers are outside input.
//   - A Bus owns one serial port (go.bug.st/serial) and is shared by every
//     device on the line. It runs one transaction at a time: wait for the
//     inter-frame gap, flush stale input, send, read until the response is
//     complete or the timeout passes, check the CRC. StartBus (the
//     daemon's) starts without a port that is missing; OpenBus (one-off
//     tools) fails instead.
//   - A Register says where a number is and how to decode it (int16 to
//     uint64, float32, float64, word order, scale). Profiles name the
//     registers of common meters (Eastron SDM630, SDM120, SDM220, SDM230,
//     SDM72, SDM72 V2, ABB B2x, Chint DTSU666, Carlo Gavazzi EM24,
//     Janitza UMG 604, Siemens PAC2200) or take them from configuration
//     ("generic"); controller profiles name a charge controller's state,
//     enable and current limit (Phoenix Contact EV-SER, Bender CC613).
//   - A Meter polls one meter. Its energy only moves by plausible steps:
//     a register that goes backwards, jumps beyond MaxPowerKW × elapsed,
//     or drops like a replaced meter is flagged and not applied, so
//     sessions never see invented or negative energy. Bus errors fault
//     the meter until it answers again.
//   - OpenController returns a Station (hal.Station) for a charge
//     controller: the CP state from a register, an enable coil or
//     register switched with read-back confirmation, an optional current
//     limit, energy from the controller or from a Meter.
//   - Scan lists the units that answer on a bus and guesses their
//     profiles from registers that tell the models apart.
//
// Wiring, in short:
//
//	bus, err := modbus.OpenBus(modbus.BusConfig{Port: "/dev/ttyUSB0", Baud: 9600}, log)
//	meter, err := modbus.NewMeter(modbus.MeterConfig{Bus: bus, Unit: 2, Profile: sdm630, MaxPowerKW: 22})
//	st, err := modbus.OpenController(modbus.ControllerConfig{Number: "1", Bus: bus, Unit: 1, Map: m, Meter: meter})
//	defer st.Close() // enable off
//
// Failures degrade, they never crash: a timeout, a CRC error or an
// exception response faults the device (Reading.Err, or a station Fault
// "modbus: ..."), is logged at most once a minute per device, and clears
// by itself at the next good poll. A serial port that is missing or fails
// (a USB adapter not enumerated yet, or unplugged: EIO, ENXIO, a hang-up)
// is closed and reopened by a goroutine of the Bus on a back-off schedule
// (DefaultBackoff: 1 s doubling to 30 s, with jitter) until it opens
// again; meanwhile every transaction fails at once with a *PortError
// naming the bus and the port ("rs485-1 (/dev/ttyUSB0): no such file or
// directory"), which faults the devices on that bus and no other.
// Bus.Stats counts the reopen attempts and failures.
//
// # Caveats
//
// Scan's guesses rest on which registers a unit answers and which it
// refuses with an exception; a device that answers every address (with
// zeros) matches more profiles than it should. Models with the same
// registers (SDM630 and SDM72 V2; SDM120, SDM220 and SDM230) are all
// listed, and any of them reads the meter correctly.
//
// The built-in Eastron profiles read "Total import kWh" (0x0048), not
// "Total kWh" (0x0156), which adds exported energy: on a meter wired the
// wrong way round the sum would bill energy that flowed out.
//
// When the energy register settles on a new baseline (a replaced or reset
// meter, a stuck glitch), the meter follows it after three readings that
// agree with each other; the step and the energy during those readings are
// not counted. A large increment after a long outage is accepted when it
// fits MaxPowerKW over the whole outage, so set MaxPowerKW to what the
// circuit can really draw.
//
// Confirmation reads back the enable output, not an auxiliary contact of
// the contactor: it proves the controller took the command, not that the
// contacts moved. Over a dead bus nothing can switch the output off;
// enable the controller's own communication watchdog where it has one.
// The driver switches the output off at start, on Halt and Close, and
// whenever a poll finds it on although commanded off; on a CP state E or F
// it only reports the fault and leaves the reaction to the session engine.
//
// While the controller does not answer, Reading.CP is unknown and
// Reading.Contactor keeps the last read-back position: a contactor that
// may still be closed is reported closed.
//
// Frames are delimited by their expected length, not by the t1.5/t3.5
// silences of the RTU standard, which USB adapters and ptys do not
// preserve; the gap between transactions is kept from the host's clock.
// Only one master may be on the line. Broadcast (unit 0) and multi-item
// writes are not supported.
package modbus
