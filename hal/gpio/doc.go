// Package gpio is the station driver for charging points wired to GPIO
// lines: one output drives the contactor, inputs report the vehicle, a
// fault, the contactor's auxiliary contact and push buttons.
//
// Lines are periph.io pins looked up by name in gpioreg. On hardware,
// Init loads periph's host drivers, which register the Linux GPIO
// character-device lines under their kernel names ("GPIO17" on a
// Raspberry Pi); tests register gpiotest pins under names of their own,
// so the same name-based path runs in both. No sysfs, no cgo.
//
// Open drives the contactor off before touching any other line and
// starts one goroutine per input that blocks in WaitForEdge. An edge
// opens a debounce window: the level counts once it has held for the
// pin's Debounce without another edge. The station derives its state
// from the settled levels:
//
//   - CP: F while faulted (fault input active, feedback mismatch or an
//     internal error); else C while the charging input is active; else B
//     while the vehicle input is active; else A. With neither a vehicle
//     nor a charging input, CP is "" (hal.CPUnknown) unless faulted.
//   - Contactor: the auxiliary contact when ContactorFeedback is wired,
//     otherwise the commanded position.
//   - Fault: "fault input <line> active", "contactor feedback mismatch" or
//     "internal error: … panicked".
//
// The outputs fail safe: the contactor goes off at Open, on Halt, on
// Close, while the fault input is active, on a feedback mismatch and when
// a goroutine of the driver (a watcher, a button callback, the mismatch
// timer) panics; the panic is recovered and logged.
//
// # Caveats
//
// periph has no portable "wait forever": gpioioctl's WaitForEdge waits
// forever on 0 and returns at once on -1, gpiotest does the opposite.
// The watchers therefore wait at most 100 ms per call, which is also how
// long Close may take to stop them. When a wait times out, the watcher
// reads the line once and treats a difference from the settled level
// like an edge: the kernel's per-line event buffer can overflow during
// long bounce bursts and drop the final edge. That read, ten times a
// second per input, is the only polling.
//
// Debounce delays every input change, the fault input's too; keep a fault
// line's debounce short (a few milliseconds).
//
// The contactor feedback is checked by SetContactor (up to
// FeedbackTimeout) and, between commands, by a timer: feedback that
// disagrees with the command for FeedbackTimeout (a contactor dropping
// out while charging, or welded after opening) becomes the mismatch fault
// and the contactor is driven off. The mismatch clears when a feedback
// edge makes it agree with the command again, or when a later close is
// confirmed; a confirmed open of a contactor that failed to close does
// not clear it, because an open contactor proves nothing. A mismatch
// does not refuse SetContactor(true): retrying is how a repaired
// contactor proves itself. The fault input and an internal error do.
//
// A panic in a watcher leaves the station faulted until it is reopened,
// because that input is no longer watched. A panic in OnStart or OnStop
// opens the contactor but does not fault the station. Close does not wait
// for running OnStart/OnStop calls, so a callback may call Close.
//
// PullAuto pulls an input towards its inactive level, so a broken wire
// reads "not active". A fault loop wired normally closed wants the
// opposite (a broken loop must read "fault"): set Pull explicitly. With
// the character device, PullNone leaves the bias as the device tree set
// it.
//
// Lines never reconfigures a line. periph's gpioioctl reads a line that
// is not configured as an input by re-requesting it as an input with
// pull-up (and its Func does so for outputs), which could release a
// contactor; so Lines reports levels only for character-device lines
// already configured as inputs in this process, and for lines of an open
// Station from the station's own state. In a separate `sitelink hw`
// process, unclaimed character-device lines show name, number and
// consumer but no level.
//
// Close leaves the kernel line requests open (periph keeps its lines in
// the process-wide gpioreg); a later Open in the same process reuses
// them. Lines named by the deprecated sysfs interface are refused with
// ErrSysfsLine.
//
// EnergyWh and PowerW are always 0: a meter provides energy, and the
// daemon combines it with this driver.
package gpio
