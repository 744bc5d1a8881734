package modbus

import (
	"fmt"
	"testing"

	"github.com/sitelink/sitelink/hal/modbus/modbustest"
)

// rigTimeout is the bus timeout of the rig: pymodbus on a loaded machine
// can take hundreds of milliseconds to answer.
const rigTimeout = modbustest.BusTimeout

// rig is a Bus on one end of the modbustest pty pair with pymodbus on the
// other.
type rig struct {
	bus   *Bus
	slave *modbustest.Rig
}

func startRig(t *testing.T) *rig {
	t.Helper()
	s := modbustest.Start(t)
	bus, err := OpenBus(BusConfig{Name: "rig", Port: s.Port, Baud: modbustest.Baud, Timeout: rigTimeout}, nil)
	if err != nil {
		t.Fatalf("OpenBus: %v", err)
	}
	t.Cleanup(func() { _ = bus.Close() })
	return &rig{bus: bus, slave: s}
}

// do sends one command to the slave (see testdata/slave.py) and returns
// what follows "ok"; it fails t, which may be a subtest's.
func (r *rig) do(t *testing.T, format string, args ...any) string {
	t.Helper()
	got, err := r.slave.Do(fmt.Sprintf(format, args...))
	if err != nil {
		t.Fatal(err)
	}
	return got
}
