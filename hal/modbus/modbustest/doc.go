// Package modbustest is the Modbus RTU integration rig for tests of any
// package: a real pty pair from socat, and on its far end a Modbus RTU
// slave that is not sitelink code (Debian's python3-pymodbus serving
// hal/modbus/testdata/slave.py, run by Debian's /usr/bin/python3). The
// test opens Rig.Port with hal/modbus like a USB RS-485 adapter and
// changes the slave's registers through Rig.Do and its helpers. StartAt
// puts the pty at a path of the test's choosing and Rig.Stop ends socat:
// together they plug a USB adapter in late, unplug it and plug it again.
//
// The slave serves, at 19200 baud 8N1: unit 1 an SDM630-like meter
// (float32 input registers, 0x0034 total power W, 0x0048 import kWh),
// unit 2 an ABB B23-like meter, units 3 and 4 charge controllers, units
// 11 to 18 one meter per built-in profile and units 20 and 21 the Phoenix
// and Bender controllers; any other unit never answers. See slave.py for the full map and commands.
//
// # Caveats
//
//   - Start skips the test when socat or pymodbus is missing; set
//     SITELINK_REQUIRE_MODBUS=1 (CI does) to make that a failure instead.
//   - The helpers (SetFloat, SetU16, Mute, Unmute) end the test with
//     t.Fatal on error, so call them from the goroutine of the test given
//     to Start; from subtests use Do and report with the subtest's t.
//   - This package does not import hal/modbus, so hal/modbus's own
//     in-package tests can use it without an import cycle.
//   - slave.py is found through this file's source path, or else by
//     walking up from the working directory to the module root; a test
//     binary built with -trimpath and run outside the module skips.
package modbustest
