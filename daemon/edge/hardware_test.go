package edge

import (
	"testing"
	"time"

	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/gpio/gpioreg"
	"periph.io/x/conn/v3/gpio/gpiotest"

	"github.com/sitelink/sitelink/daemon/config"
	"github.com/sitelink/sitelink/daemon/localapi"
	"github.com/sitelink/sitelink/daemon/mqtttest"
	"github.com/sitelink/sitelink/daemon/wire"
	"github.com/sitelink/sitelink/hal/modbus/modbustest"
)

// A gpio station configured by pin names, driven end to end through the
// daemon: periph's gpiotest pins stand in for the lines (the only fake:
// GPIO cannot be real here).
func TestGPIOStation(t *testing.T) {
	pins := map[string]*gpiotest.Pin{}
	for _, n := range []string{"EDGE_CONT", "EDGE_VEH", "EDGE_CHG", "EDGE_START", "EDGE_STOP"} {
		p := &gpiotest.Pin{N: n, Num: len(pins) + 900}
		if n != "EDGE_CONT" {
			p.EdgesChan = make(chan gpio.Level)
		}
		if err := gpioreg.Register(p); err != nil {
			t.Fatal(err)
		}
		pins[n] = p
		t.Cleanup(func() { _ = gpioreg.Unregister(n) })
	}
	edge := func(name string, l gpio.Level) {
		t.Helper()
		select {
		case pins[name].EdgesChan <- l:
		case <-time.After(5 * time.Second):
			t.Fatalf("no one watches %s", name)
		}
	}
	press := func(name string) { edge(name, gpio.High); edge(name, gpio.Low) }

	// Its energy comes from a real Modbus RTU meter (pymodbus on a pty).
	rig := modbustest.Start(t)
	rig.SetFloat(1, "ir", 0x0048, 100) // import kWh
	rig.SetFloat(1, "ir", 0x0034, 7400)

	b := mqtttest.Start(t)
	s := &site{t: t, broker: b, cfg: testConfig(t, b.URL, t.TempDir())}
	s.cfg.Buses = []config.Bus{{Name: "rs485-1", Port: rig.Port, Baud: modbustest.Baud, Parity: "N", StopBits: 1, DataBits: 8,
		Timeout: config.Duration(modbustest.BusTimeout), Gap: config.Duration(5 * time.Millisecond)}}
	s.cfg.Terminals[0].Stations = append(s.cfg.Terminals[0].Stations, "7")
	s.cfg.Stations = append(s.cfg.Stations, config.Station{Number: "7", Driver: "gpio", GPIO: &config.GPIO{
		Contactor:       config.GPIOPin{Pin: "EDGE_CONT"},
		Vehicle:         &config.GPIOPin{Pin: "EDGE_VEH"},
		Charging:        &config.GPIOPin{Pin: "EDGE_CHG"},
		StartButton:     &config.GPIOPin{Pin: "EDGE_START"},
		StopButton:      &config.GPIOPin{Pin: "EDGE_STOP"},
		FeedbackTimeout: config.Duration(500 * time.Millisecond),
	}, Meter: &config.Meter{Bus: "rs485-1", Unit: 1, Profile: "sdm630", Interval: config.Duration(200 * time.Millisecond)}})
	if p := s.cfg.Validate(); len(p) > 0 {
		t.Fatal(p)
	}
	s.topics = wire.Topics{Prefix: s.cfg.MQTT.TopicPrefix, Node: testNode}
	s.cloud = mqtttest.Record(t, b.URL, "cloud-"+t.Name(), s.cfg.MQTT.TopicPrefix+"/#")
	s.start()

	if pins["EDGE_CONT"].L != gpio.Low {
		t.Fatal("contactor not off at start-up")
	}
	// The start button asks for a Remote Start.
	press("EDGE_START")
	var req localapi.Session
	waitFor(t, 5*time.Second, "requested session on 7", func() bool {
		ss, _ := s.api.Sessions(5)
		for _, x := range ss {
			if x.Station == "7" && x.State == "requested" {
				req = x
				return true
			}
		}
		return false
	})
	// The card is authorized for it.
	body := authBody(t, "7", map[string]any{"SparkTransactionId": req.SparkTransactionID, "NayaxTransactionId": 4242})
	if v, code := verdict(s.command("auth-gpio", "authorize", body)); v != "Approved" {
		t.Fatalf("authorize: %s %v", v, code)
	}
	waitFor(t, 5*time.Second, "contactor on", func() bool { return pins["EDGE_CONT"].L == gpio.High })
	edge("EDGE_VEH", gpio.High)
	edge("EDGE_CHG", gpio.High)
	s.waitState(req.SparkTransactionID, "charging")
	// The meter counts 6 Wh, plausibly (at most max_power_kw × elapsed):
	// that is the session's energy.
	for wh := 1; wh <= 6; wh++ {
		time.Sleep(300 * time.Millisecond) // meter time must pass for the energy to be plausible
		rig.SetFloat(1, "ir", 0x0048, 100+float64(wh)/1000)
	}
	waitFor(t, 10*time.Second, "metered energy", func() bool { return s.session(req.SparkTransactionID).EnergyWh >= 5.9 })
	// A jump no station could deliver is flagged and never billed.
	rig.SetFloat(1, "ir", 0x0048, 150)
	time.Sleep(time.Second)
	if e := s.session(req.SparkTransactionID).EnergyWh; e > 6.1 {
		t.Fatalf("an implausible meter jump was billed: %.1f Wh", e)
	}
	// The stop button ends it: contactor off, money decided.
	press("EDGE_STOP")
	got := s.waitEnded(req.SparkTransactionID)
	if got.StopReason != "stopped locally" || pins["EDGE_CONT"].L != gpio.Low || got.State != "cancelling" || got.EnergyWh < 5.9 || got.EnergyWh > 6.1 {
		t.Fatalf("after the stop button: %+v, contactor %v", got, pins["EDGE_CONT"].L)
	}
}

// A Modbus charge controller station through the daemon: the enable coil
// follows the session, the IEC 61851 state register drives it, and its
// own energy register is the session's energy.
// modbusSite is a daemon (not started) with the simulated stations 5 and
// 6 and a Modbus charge controller, station 8 (unit 3 of the pymodbus
// slave: holding 100 the CP state, coil 400 the enable, input 200/202
// energy and power), on bus rs485-1 at port, polled every interval.
func modbusSite(t *testing.T, b *mqtttest.Broker, port string, interval time.Duration) *site {
	t.Helper()
	s := &site{t: t, broker: b, cfg: testConfig(t, b.URL, t.TempDir())}
	s.cfg.Buses = []config.Bus{{Name: "rs485-1", Port: port, Baud: modbustest.Baud, Parity: "N", StopBits: 1, DataBits: 8,
		Timeout: config.Duration(modbustest.BusTimeout), Gap: config.Duration(5 * time.Millisecond)}}
	s.cfg.Policy.ContactorTimeout = config.Duration(5 * time.Second)
	s.cfg.Terminals[0].Stations = append(s.cfg.Terminals[0].Stations, "8")
	s.cfg.Stations = append(s.cfg.Stations, config.Station{Number: "8", Driver: "modbus", Modbus: &config.Modbus{
		Bus: "rs485-1", Unit: 3,
		State:    config.Register{Function: 3, Address: 100, Type: "uint16", WordOrder: "big", Scale: 1, Encoding: "index"},
		Enable:   config.Enable{Coil: true, Address: 400},
		Interval: config.Duration(interval),
		Energy:   &config.Register{Function: 4, Address: 200, Type: "uint32", WordOrder: "big", Scale: 1},
		Power:    &config.Register{Function: 4, Address: 202, Type: "int32", WordOrder: "big", Scale: 1},
	}})
	if p := s.cfg.Validate(); len(p) > 0 {
		t.Fatal(p)
	}
	s.topics = wire.Topics{Prefix: s.cfg.MQTT.TopicPrefix, Node: testNode}
	s.cloud = mqtttest.Record(t, b.URL, "cloud-"+t.Name(), s.cfg.MQTT.TopicPrefix+"/#")
	return s
}

func TestModbusControllerStation(t *testing.T) {
	rig := modbustest.Start(t)
	b := mqtttest.Start(t)
	s := modbusSite(t, b, rig.Port, 200*time.Millisecond)
	rig.SetU16(3, "hr", 100, 1) // B: a vehicle is plugged in
	s.start()
	coil := func() string {
		out, err := rig.Do("get 3 co 400 1")
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	if c := coil(); c != "0" && c != "False" && c != "false" {
		t.Fatalf("enable coil at start-up: %q", c)
	}
	body := authBody(t, "8", map[string]any{"SparkTransactionId": "5b2f9f0e-4f7c-4a5e-9a35-0c6f1d2e3a4b", "NayaxTransactionId": 8888})
	if v, code := verdict(s.command("auth-mb", "authorize", body)); v != "Approved" {
		t.Fatalf("authorize: %s %v", v, code)
	}
	if c := coil(); c != "1" && c != "True" && c != "true" {
		t.Fatalf("enable coil after authorize: %q", c)
	}
	rig.SetU16(3, "hr", 100, 2) // C: charging
	s.waitState("5b2f9f0e-4f7c-4a5e-9a35-0c6f1d2e3a4b", "charging")
	stop := stopBody(t, map[string]any{"SparkTransactionId": "5b2f9f0e-4f7c-4a5e-9a35-0c6f1d2e3a4b", "NayaxTransactionId": 8888, "ServiceStationNumber": "8"})
	if v, code := verdict(s.command("stop-mb", "stop", stop)); v != "Approved" {
		t.Fatalf("stop: %s %v", v, code)
	}
	if c := coil(); c != "0" && c != "False" && c != "false" {
		t.Fatalf("enable coil after the stop: %q", c)
	}
	s.waitEnded("5b2f9f0e-4f7c-4a5e-9a35-0c6f1d2e3a4b")
}

// A controller named by profile: the daemon takes its registers from the
// driver's profile and writes the configured current limit at start.
func TestModbusControllerProfile(t *testing.T) {
	rig := modbustest.Start(t)
	b := mqtttest.Start(t)
	s := &site{t: t, broker: b, cfg: testConfig(t, b.URL, t.TempDir())}
	s.cfg.Buses = []config.Bus{{Name: "rs485-1", Port: rig.Port, Baud: modbustest.Baud, Parity: "N", StopBits: 1, DataBits: 8,
		Timeout: config.Duration(modbustest.BusTimeout), Gap: config.Duration(5 * time.Millisecond)}}
	s.cfg.Terminals[0].Stations = append(s.cfg.Terminals[0].Stations, "9")
	// Units 20 and 13 of the rig: a Phoenix EV-SER and an SDM72D-M V2.
	s.cfg.Stations = append(s.cfg.Stations, config.Station{Number: "9", Driver: "modbus",
		Modbus: &config.Modbus{Bus: "rs485-1", Unit: 20, Profile: "phoenix-ev-ser", MaxCurrentA: 13,
			State: config.DefaultStateRegister(), Interval: config.Duration(200 * time.Millisecond)},
		Meter: &config.Meter{Bus: "rs485-1", Unit: 13, Profile: "sdm72v2", Interval: config.Duration(200 * time.Millisecond)}})
	if p := s.cfg.Validate(); len(p) > 0 {
		t.Fatal(p)
	}
	rig.SetU16(20, "co", 20000, 1) // left enabled
	s.topics = wire.Topics{Prefix: s.cfg.MQTT.TopicPrefix, Node: testNode}
	s.start()
	get := func(cmd string) string {
		out, err := rig.Do(cmd)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	if got := get("get 20 hr 22000 1"); got != "13" {
		t.Errorf("current limit after start: %q, want 13", got)
	}
	if got := get("get 20 co 20000 1"); got != "0" {
		t.Errorf("enable coil after start: %q, want 0", got)
	}
}
