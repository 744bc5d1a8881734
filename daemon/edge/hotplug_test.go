package edge

import (
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sitelink/sitelink/daemon/mqtttest"
	"github.com/sitelink/sitelink/hal/modbus"
	"github.com/sitelink/sitelink/hal/modbus/modbustest"
)

// hotplugSite is a daemon with the simulated stations 5 and 6 and a
// Modbus charge controller, station 8 (unit 3 of the pymodbus slave), on
// bus rs485-1 at port, which need not exist yet. Missing ports are tried
// again every 50 to 200 ms.
func hotplugSite(t *testing.T, port string) *site {
	t.Helper()
	b := mqtttest.Start(t)
	s := modbusSite(t, b, port, 100*time.Millisecond)
	s.options = func(o *Options) {
		o.BusReopen = modbus.Backoff{Min: 50 * time.Millisecond, Max: 200 * time.Millisecond}
	}
	return s
}

// fault is station n's fault as the local API shows it.
func (s *site) fault(n string) string {
	s.t.Helper()
	sts, err := s.api.Stations()
	if err != nil {
		s.t.Fatal(err)
	}
	for _, st := range sts {
		if st.Number == n {
			return st.Fault
		}
	}
	s.t.Fatalf("station %s not listed", n)
	return ""
}

// metric is the value of one series of the daemon's metrics.
func (s *site) metric(series string) float64 {
	s.t.Helper()
	text, err := s.api.Metrics()
	if err != nil {
		s.t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(series) + ` (\S+)$`).FindStringSubmatch(text)
	if m == nil {
		s.t.Fatalf("no series %s in the metrics", series)
	}
	v, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		s.t.Fatal(err)
	}
	return v
}

// coil is the enable coil of unit 3 as the slave holds it.
func coilOn(t *testing.T, rig *modbustest.Rig) bool {
	t.Helper()
	out, err := rig.Do("get 3 co 400 1")
	if err != nil {
		t.Fatal(err)
	}
	return out == "1" || strings.EqualFold(out, "true")
}

// A serial adapter missing when the daemon starts (USB not enumerated
// yet) faults the stations on its bus, naming the bus and the port, and
// nothing else: the daemon runs, the other stations take paid sessions.
// Once the adapter appears the stations recover within the back-off.
func TestSerialPortMissingAtStart(t *testing.T) {
	modbustest.Require(t)
	port := filepath.Join(t.TempDir(), "ttyUSB0")
	s := hotplugSite(t, port)
	s.start()

	want := "rs485-1 (" + port + "): no such file or directory"
	if f := s.fault("8"); !strings.Contains(f, want) {
		t.Fatalf("station 8 fault %q, want it to name the port: %q", f, want)
	}
	if f := s.fault("5"); f != "" {
		t.Fatalf("station 5 (not on the bus) faulted: %q", f)
	}
	// The faulted station refuses a session: no energy without a meter.
	body := authBody(t, "8", map[string]any{"SparkTransactionId": "0e7d0d8e-1111-4a5e-9a35-0c6f1d2e3a4b", "NayaxTransactionId": 8801})
	if v, _ := verdict(s.command("auth-8-missing", "authorize", body)); v != "Declined" {
		t.Fatalf("authorize on a station whose bus is missing: %s", v)
	}
	// Another station is paid for and served.
	body = authBody(t, "5", map[string]any{"SparkTransactionId": "0e7d0d8e-5555-4a5e-9a35-0c6f1d2e3a4b", "NayaxTransactionId": 8805})
	if v, code := verdict(s.command("auth-5", "authorize", body)); v != "Approved" {
		t.Fatalf("authorize on station 5: %s %v", v, code)
	}
	s.waitState("0e7d0d8e-5555-4a5e-9a35-0c6f1d2e3a4b", "charging")
	if up := s.metric(`sitelink_bus_up{bus="rs485-1"}`); up != 0 {
		t.Fatalf("sitelink_bus_up of a missing port = %v", up)
	}
	waitFor(t, 5*time.Second, "failed reopen attempts counted", func() bool {
		return s.metric(`sitelink_bus_reopen_failures_total{bus="rs485-1"}`) >= 1
	})

	// The adapter appears: the station recovers by itself and serves.
	rig := modbustest.StartAt(t, port)
	rig.SetU16(3, "hr", 100, 1) // B: a vehicle is plugged in
	waitFor(t, 5*time.Second, "station 8 recovered", func() bool { return s.fault("8") == "" })
	if up := s.metric(`sitelink_bus_up{bus="rs485-1"}`); up != 1 {
		t.Fatalf("sitelink_bus_up after the port appeared = %v", up)
	}
	if coilOn(t, rig) {
		t.Fatal("enable coil on after the bus came up")
	}
	body = authBody(t, "8", map[string]any{"SparkTransactionId": "0e7d0d8e-8888-4a5e-9a35-0c6f1d2e3a4b", "NayaxTransactionId": 8808})
	if v, code := verdict(s.command("auth-8", "authorize", body)); v != "Approved" {
		t.Fatalf("authorize on station 8 after the port appeared: %s %v", v, code)
	}
	if !coilOn(t, rig) {
		t.Fatal("enable coil off after authorize")
	}
	rig.SetU16(3, "hr", 100, 2) // C: charging
	s.waitState("0e7d0d8e-8888-4a5e-9a35-0c6f1d2e3a4b", "charging")
}

// An adapter unplugged during a session (socat ends: the open pty hangs
// up, the device path goes) faults its station; the engine's fault rule
// stops the session, and the stop completes once the adapter is back and
// the contactor can be confirmed open. The station then serves again.
func TestSerialPortUnpluggedMidSession(t *testing.T) {
	modbustest.Require(t)
	port := filepath.Join(t.TempDir(), "ttyUSB0")
	rig := modbustest.StartAt(t, port)
	rig.SetU16(3, "hr", 100, 1)
	s := hotplugSite(t, port)
	s.start()
	waitFor(t, 5*time.Second, "station 8 ready", func() bool { return s.fault("8") == "" })

	const id = "0e7d0d8e-8888-4a5e-9a35-0c6f1d2e3a4c"
	body := authBody(t, "8", map[string]any{"SparkTransactionId": id, "NayaxTransactionId": 8818})
	if v, code := verdict(s.command("auth-8", "authorize", body)); v != "Approved" {
		t.Fatalf("authorize on station 8: %s %v", v, code)
	}
	rig.SetU16(3, "hr", 100, 2)
	s.waitState(id, "charging")

	rig.Stop()
	named := "rs485-1 (" + port + "): "
	waitFor(t, 5*time.Second, "station 8 faulted", func() bool { return strings.Contains(s.fault("8"), named) })
	if f := s.fault("5"); f != "" {
		t.Fatalf("station 5 (not on the bus) faulted: %q", f)
	}
	// The existing fault rule: a faulted station's session is stopped.
	waitFor(t, 5*time.Second, "session stopped for the fault", func() bool {
		r := s.session(id).StopReason
		return strings.HasPrefix(r, "station fault: ") && strings.Contains(r, named)
	})
	if st := s.session(id).State; st != "stopping" {
		t.Fatalf("session %s with its contactor unconfirmed; want stopping", st)
	}

	// Plugged in again: the stop is retried and confirmed, the money
	// decided, and the station serves a new session.
	rig = modbustest.StartAt(t, port)
	rig.SetU16(3, "hr", 100, 1)
	got := s.waitEnded(id)
	if coilOn(t, rig) {
		t.Fatalf("enable coil on after the stop: %+v", got)
	}
	waitFor(t, 5*time.Second, "station 8 recovered", func() bool { return s.fault("8") == "" })
	body = authBody(t, "8", map[string]any{"SparkTransactionId": "0e7d0d8e-8888-4a5e-9a35-0c6f1d2e3a4d", "NayaxTransactionId": 8819})
	if v, code := verdict(s.command("auth-8-again", "authorize", body)); v != "Approved" {
		t.Fatalf("authorize on station 8 after the adapter came back: %s %v", v, code)
	}
	if n := s.metric(`sitelink_bus_reopen_attempts_total{bus="rs485-1"}`); n < 1 {
		t.Fatalf("reopen attempts %v", n)
	}
}
