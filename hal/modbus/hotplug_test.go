package modbus

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sitelink/sitelink/hal/modbus/modbustest"
)

// A USB adapter over a real pty: absent when the bus starts, plugged in
// (socat and pymodbus start on the bus's port path), unplugged (socat
// ends: the open pty hangs up, the path goes) and plugged in again. The
// meter fails naming the port while it is away and reads again within the
// reopen schedule.
func TestBusHotplugOverPTY(t *testing.T) {
	modbustest.Require(t)
	port := filepath.Join(t.TempDir(), "ttyUSB0")
	bus, err := StartBus(BusConfig{Name: "rs485-1", Port: port, Baud: modbustest.Baud, Timeout: rigTimeout,
		Reopen: Backoff{Min: 50 * time.Millisecond, Max: 200 * time.Millisecond}}, nil)
	if err != nil {
		t.Fatalf("StartBus: %v", err)
	}
	t.Cleanup(func() { _ = bus.Close() })
	p, _ := ProfileByName("sdm630")
	m, err := NewMeter(MeterConfig{Bus: bus, Unit: 1, Profile: p})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	wantMissing := func(what string) {
		t.Helper()
		_, err := m.ReadOnce(ctx)
		if !errors.Is(err, ErrPortUnavailable) || !strings.Contains(err.Error(), "rs485-1 ("+port+"): ") {
			t.Fatalf("%s: read = %v, want a PortError naming rs485-1 and %s", what, err, port)
		}
	}
	// retried waits for a failed reopen attempt: the port stays away
	// until the loop has tried it at least once.
	retried := func(what string) {
		t.Helper()
		n := bus.Stats().ReopenFailures
		deadline := time.Now().Add(10 * time.Second)
		for bus.Stats().ReopenFailures == n {
			if time.Now().After(deadline) {
				t.Fatalf("%s: no reopen attempt: %+v", what, bus.Stats())
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	wantReads := func(what string) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			_, err := m.ReadOnce(ctx)
			if err == nil {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: meter still failing: %v (%+v)", what, err, bus.Stats())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}

	wantMissing("not plugged in at start")
	if _, err := m.ReadOnce(ctx); !strings.HasSuffix(err.Error(), "no such file or directory") {
		t.Fatalf("missing port: %v", err)
	}
	retried("not plugged in")
	wantMissing("still not plugged in")
	rig := modbustest.StartAt(t, port)
	wantReads("plugged in")

	rig.Stop()
	// The first transaction on the hung-up pty fails (EIO or a hang-up),
	// later ones fail at once while the path is gone.
	deadline := time.Now().Add(10 * time.Second)
	for bus.Stats().Up {
		if time.Now().After(deadline) {
			t.Fatal("unplugged port still up")
		}
		_, _ = m.ReadOnce(ctx)
	}
	wantMissing("unplugged")
	retried("unplugged")
	wantMissing("still unplugged")
	before := bus.Stats()

	modbustest.StartAt(t, port)
	wantReads("plugged in again")
	if st := bus.Stats(); !st.Up || st.ReopenAttempts <= before.ReopenAttempts || st.ReopenFailures < 2 || st.Err != nil {
		t.Fatalf("stats after replugging: %+v (before %+v)", st, before)
	}
}
