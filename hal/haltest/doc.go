// Package haltest holds the semantics test that every hal.Station driver
// must pass, in the style of tailscale's testStoreSemantics: one body of
// expectations, run against the sim driver and against every hardware
// driver's fake or test rig.
//
// A driver's test calls TestStation with a function that opens a fresh
// station per subtest and, where the driver can simulate them, Controls
// to plug, unplug, fault and clear it:
//
//	func TestSemantics(t *testing.T) {
//		haltest.TestStation(t, func(t *testing.T) (hal.Station, haltest.Controls) {
//			st := sim.New(sim.Config{Number: "5"})
//			return st, haltest.Controls{Plug: st.Plug, Unplug: st.Unplug, Fault: st.Fault, Clear: st.Clear}
//		})
//	}
//
// # Caveats
//
// Subtests that need a control the driver does not offer (a nil func in
// Controls) are skipped, not failed; a driver that can simulate nothing is
// still checked for the contactor contract.
//
// TestStation closes every station it opened in t.Cleanup, so Close must
// tolerate being called more than once.
//
// The energy subtest only checks that the register never decreases; a
// driver whose meter does not move under test passes it trivially.
package haltest
