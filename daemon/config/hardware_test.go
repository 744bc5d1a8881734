package config

import (
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

var hardwareExamples = []string{
	"../../configs/raspberrypi.yaml",
	"../../configs/industrial.yaml",
}

// hwSample is the hardware configuration of DESIGN.md's shape: a gpio and
// a modbus station sharing one bus.
const hwSample = `node: {id: n1}
buses:                       # serial buses, declared once at the top level
  - {name: rs485-1, port: /dev/ttyUSB0, baud: 9600, parity: N, stop_bits: 1, data_bits: 8, timeout: 500ms, gap: 5ms}
stations:
  - number: "1"
    driver: gpio
    gpio:
      contactor:          {pin: GPIO17, active_low: false}
      contactor_feedback: {pin: GPIO27, active_low: true, debounce: 20ms}
      vehicle:            {pin: GPIO22, debounce: 50ms}
      charging:           {pin: GPIO23}
      fault:              {pin: GPIO24}
      start_button:       {pin: GPIO5, debounce: 50ms}
      stop_button:        {pin: GPIO6, debounce: 50ms}
      feedback_timeout: 500ms
    meter: {bus: rs485-1, unit: 1, profile: sdm630, interval: 1s}
    max_power_kw: 22
  - number: "2"
    driver: modbus
    modbus:
      bus: rs485-1
      unit: 10
      state:  {function: 4, address: 0x0000, type: uint16, encoding: index}
      enable: {coil: true, address: 0x0000}
      interval: 1s
    meter: {bus: rs485-1, unit: 2, profile: generic, energy: {function: 4, address: 0x0156, type: float32, word_order: big, scale: 1000}, power: {function: 4, address: 0x0034, type: float32, scale: 1}}
`

func ms(n int) Duration { return Duration(time.Duration(n) * time.Millisecond) }

func TestHardwareSample(t *testing.T) {
	e := mustParse(t, hwSample)
	wantBuses := []Bus{{Name: "rs485-1", Port: "/dev/ttyUSB0", Baud: 9600, Parity: "N", StopBits: 1, DataBits: 8, Timeout: ms(500), Gap: ms(5)}}
	if !reflect.DeepEqual(e.Buses, wantBuses) {
		t.Errorf("buses = %+v", e.Buses)
	}
	wantGPIO := &GPIO{
		Contactor:         GPIOPin{Pin: "GPIO17"},
		ContactorFeedback: &GPIOPin{Pin: "GPIO27", ActiveLow: true, Debounce: ms(20)},
		Vehicle:           &GPIOPin{Pin: "GPIO22", Debounce: ms(50)},
		Charging:          &GPIOPin{Pin: "GPIO23"},
		Fault:             &GPIOPin{Pin: "GPIO24"},
		StartButton:       &GPIOPin{Pin: "GPIO5", Debounce: ms(50)},
		StopButton:        &GPIOPin{Pin: "GPIO6", Debounce: ms(50)},
		FeedbackTimeout:   ms(500),
	}
	want := []Station{
		{
			Number: "1", Driver: DriverGPIO, GPIO: wantGPIO, MaxPowerKW: 22,
			Meter: &Meter{Bus: "rs485-1", Unit: 1, Profile: ProfileSDM630, Interval: ms(1000)},
		},
		{
			Number: "2", Driver: DriverModbus, MaxPowerKW: 22,
			Modbus: &Modbus{
				Bus: "rs485-1", Unit: 10,
				State:    Register{Function: 4, Address: 0, Type: TypeUint16, WordOrder: WordOrderBig, Scale: 1, Encoding: EncodingIndex},
				Enable:   Enable{Coil: true, Address: 0},
				Interval: ms(1000),
			},
			Meter: &Meter{
				Bus: "rs485-1", Unit: 2, Profile: ProfileGeneric, Interval: ms(1000),
				Energy: &Register{Function: 4, Address: 0x0156, Type: TypeFloat32, WordOrder: WordOrderBig, Scale: 1000},
				Power:  &Register{Function: 4, Address: 0x0034, Type: TypeFloat32, WordOrder: WordOrderBig, Scale: 1},
			},
		},
	}
	if !reflect.DeepEqual(e.Stations, want) {
		t.Errorf("stations:\n got %s\nwant %s", dump(t, e.Stations), dump(t, want))
	}
	if b, ok := e.Bus("rs485-1"); !ok || b.Port != "/dev/ttyUSB0" {
		t.Errorf("Bus(rs485-1) = %+v, %v", b, ok)
	}
	if _, ok := e.Bus("rs485-2"); ok {
		t.Error("Bus(rs485-2) found")
	}
}

func dump(t *testing.T, v any) string {
	t.Helper()
	out, err := yaml.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return "\n" + string(out)
}

func TestHardwareDefaults(t *testing.T) {
	src := `node: {id: n1}
buses: [{name: b1, port: /dev/ttyS0}]
stations:
  - number: "1"
    driver: gpio
    gpio: {contactor: {pin: GPIO17}, vehicle: {pin: GPIO22}}
    meter: {bus: b1, unit: 1, profile: generic, energy: {address: 0x48}, power: {address: 12, function: 3}}
  - number: "2"
    driver: modbus
    modbus: {bus: b1, unit: 2, state: {function: 3}, energy: {address: 0x10}}
`
	e := mustParse(t, src)
	if got, want := e.Buses[0], (Bus{Name: "b1", Port: "/dev/ttyS0", Baud: 9600, Parity: "N", StopBits: 1, DataBits: 8, Timeout: ms(500), Gap: ms(5)}); got != want {
		t.Errorf("bus = %+v, want %+v", got, want)
	}
	s1, s2 := e.Stations[0], e.Stations[1]
	checks := []struct {
		name      string
		got, want any
	}{
		{"max_power_kw", s1.MaxPowerKW, 22.0},
		{"feedback_timeout", s1.GPIO.FeedbackTimeout, ms(500)},
		{"input debounce", s1.GPIO.Vehicle.Debounce, Duration(0)},
		{"input pull", s1.GPIO.Vehicle.Pull, ""},
		{"input active_low", s1.GPIO.Vehicle.ActiveLow, false},
		{"no feedback pin", s1.GPIO.ContactorFeedback == nil, true},
		{"meter interval", s1.Meter.Interval, ms(1000)},
		{"meter energy register", *s1.Meter.Energy, Register{Function: 4, Address: 0x48, Type: TypeFloat32, WordOrder: WordOrderBig, Scale: 1}},
		{"meter power register", *s1.Meter.Power, Register{Function: 3, Address: 12, Type: TypeFloat32, WordOrder: WordOrderBig, Scale: 1}},
		{"modbus interval", s2.Modbus.Interval, ms(1000)},
		{"state register", s2.Modbus.State, Register{Function: 3, Type: TypeUint16, WordOrder: WordOrderBig, Scale: 1, Encoding: EncodingIndex}},
		{"enable", s2.Modbus.Enable, Enable{}},
		{"modbus energy register", *s2.Modbus.Energy, Register{Function: 4, Address: 0x10, Type: TypeFloat32, WordOrder: WordOrderBig, Scale: 1}},
		{"no sim on hardware stations", s1.Sim == nil && s2.Sim == nil, true},
		{"limit", s1.PowerLimitKW(), 22.0},
		{"limit of a station built in code", Station{}.PowerLimitKW(), float64(DefaultMaxPowerKW)},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
	if e.Stations[0].Meter.Energy == e.Stations[0].Meter.Power {
		t.Error("registers share a pointer")
	}
}

func TestRegisterAddresses(t *testing.T) {
	tests := []struct {
		in   string
		want uint16
		prob string
	}{
		{"0x0156", 0x0156, ""},
		{"0X00ff", 0xff, ""},
		{`"0x0156"`, 0x0156, ""},
		{"342", 342, ""},
		{`"342"`, 342, ""},
		{"0", 0, ""},
		{"0x0000", 0, ""},
		{"65535", 65535, ""},
		{"0xFFFF", 0xFFFF, ""},
		{"0156", 0, `ambiguous number "0156": write 0x0156 if it is hexadecimal, or drop the leading zero`},
		{"0x10000", 0, `expected an integer from 0 to 65535 (0xFFFF), decimal or 0x hex, got "0x10000"`},
		{"65536", 0, `expected an integer from 0 to 65535 (0xFFFF), decimal or 0x hex, got "65536"`},
		{"-1", 0, `expected an integer from 0 to 65535 (0xFFFF), decimal or 0x hex, got "-1"`},
		{"1.5", 0, `expected an integer from 0 to 65535 (0xFFFF), decimal or 0x hex, got "1.5"`},
		{"0o17", 0, `expected an integer from 0 to 65535 (0xFFFF), decimal or 0x hex, got "0o17"`},
		{"0xZZ", 0, `expected an integer from 0 to 65535 (0xFFFF), decimal or 0x hex, got "0xZZ"`},
		{"[1]", 0, "expected an integer, got a list"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			src := "node: {id: n1}\nbuses: [{name: b, port: /dev/ttyS0}]\nstations:\n  - number: \"1\"\n    driver: modbus\n" +
				"    modbus: {bus: b, unit: 1, state: {function: 4}, enable: {address: " + tt.in + "}}\n" +
				"    meter: {bus: b, unit: 2, profile: generic, energy: {address: " + tt.in + "}}\n"
			if tt.prob != "" {
				want := []string{
					"stations[0].modbus.enable.address: " + tt.prob,
					"stations[0].meter.energy.address: " + tt.prob,
				}
				if got := problemsOf(t, src); !slices.Equal(got, want) {
					t.Errorf("problems:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
				}
				return
			}
			s := mustParse(t, src).Stations[0]
			if s.Modbus.Enable.Address != tt.want || s.Meter.Energy.Address != tt.want {
				t.Errorf("addresses = %#x, %#x, want %#x", s.Modbus.Enable.Address, s.Meter.Energy.Address, tt.want)
			}
		})
	}
}

// TestLeadingZeroIsDecimal: yaml.v3 reads 010 as octal 8; a unit id or a
// function written with a leading zero means the decimal.
func TestLeadingZeroIsDecimal(t *testing.T) {
	e := mustParse(t, "node: {id: n1}\nbuses: [{name: b, port: /dev/ttyS0}]\nstations:\n  - {number: \"1\", driver: modbus, modbus: {bus: b, unit: 010, state: {function: 04}, energy: {}}}\n")
	if m := e.Stations[0].Modbus; m.Unit != 10 || m.State.Function != 4 {
		t.Errorf("unit = %d, function = %d; want 10, 4", m.Unit, m.State.Function)
	}
	e = mustParse(t, "node: {id: n1}\nstations: [{number: \"1\"}]\ntariff: {decimal_place: 0x2, price_per_kwh: 0.39}\n")
	if e.Tariff.DecimalPlace != 2 {
		t.Errorf("decimal_place 0x2 = %d", e.Tariff.DecimalPlace)
	}
}

// TestHardwareProblems covers every hardware rule; as in TestProblems,
// each case lists exactly the problems expected.
func TestHardwareProblems(t *testing.T) {
	const (
		bus     = "  - {name: b1, port: /dev/ttyUSB0}\n"
		bus2    = "  - {name: b2, port: /dev/ttyUSB1}\n"
		gpio1   = "  - {number: \"1\", driver: gpio, gpio: {contactor: {pin: GPIO17}}, meter: {bus: b1, unit: 1, profile: sdm630}}\n"
		modbus2 = "  - {number: \"2\", driver: modbus, modbus: {bus: b1, unit: 10, state: {function: 4}}, meter: {bus: b1, unit: 2, profile: sdm120}}\n"
	)
	hw := func(buses, stations string) string {
		s := "node: {id: n1}\n"
		if buses != "" {
			s += "buses:\n" + buses
		}
		return s + "stations:\n" + stations
	}
	// gpioWith is a gpio station with the given gpio block content.
	gpioWith := func(number, unit, block string) string {
		return "  - {number: \"" + number + "\", driver: gpio, gpio: {" + block + "}, meter: {bus: b1, unit: " + unit + ", profile: sdm630}}\n"
	}
	// meterWith is a sim station with the given meter block content.
	meterWith := func(block string) string {
		return "  - {number: \"3\", meter: {" + block + "}}\n"
	}
	// stateWith is a modbus station with the given state register.
	stateWith := func(block string) string {
		return "  - {number: \"2\", driver: modbus, modbus: {bus: b1, unit: 10, state: {" + block + "}}, meter: {bus: b1, unit: 2, profile: sdm120}}\n"
	}
	tests := []struct {
		name string
		src  string
		want []string
	}{
		{"valid gpio and modbus stations", hw(bus, gpio1+modbus2), nil},
		{"sample", hwSample, nil},
		{"sim stations need no bus", minimal, nil},
		{"unused bus is fine", hw(bus+bus2, gpio1), nil},

		// buses
		{"bus unknown key", hw("  - {name: b1, port: /dev/ttyUSB0, speed: 9600}\n", gpio1), []string{"buses[0].speed: unknown key"}},
		{"buses not a list", "node: {id: n1}\nbuses: {name: b1}\nstations: [{number: \"1\"}]\n", []string{"buses: expected a list, got a mapping"}},
		{"bus name missing", hw("  - {port: /dev/ttyUSB0}\n", "  - {number: \"1\"}\n"), []string{"buses[0].name: required"}},
		{"bus name invalid", hw("  - {name: rs 485, port: /dev/ttyUSB0}\n", "  - {number: \"1\"}\n"), []string{`buses[0].name: invalid bus name "rs 485": use 1 to 64 letters, digits, '.', '_' or '-'`}},
		{"bus name duplicate", hw(bus+"  - {name: b1, port: /dev/ttyUSB1}\n", gpio1), []string{`buses[1].name: duplicate bus name "b1" (first at buses[0])`}},
		{"bus port missing", hw("  - {name: b1}\n", gpio1), []string{"buses[0].port: required"}},
		{"bus port relative", hw("  - {name: b1, port: ttyUSB0}\n", gpio1), []string{`buses[0].port: must be an absolute path, got "ttyUSB0"`}},
		{"bus port shared", hw(bus+"  - {name: b2, port: /dev/ttyUSB0}\n", gpio1), []string{`buses[1].port: port "/dev/ttyUSB0" already used by buses[0]`}},
		{"bus baud", hw("  - {name: b1, port: /dev/ttyUSB0, baud: 9601}\n", gpio1), []string{"buses[0].baud: unsupported baud rate 9601 (want 1200, 2400, 4800, 9600, 19200, 38400, 57600 or 115200)"}},
		{"bus bauds accepted", hw("  - {name: b1, port: /dev/a, baud: 1200}\n  - {name: b2, port: /dev/b, baud: 115200}\n", gpio1), nil},
		{"bus parity lower case", hw("  - {name: b1, port: /dev/ttyUSB0, parity: e}\n", gpio1), []string{`buses[0].parity: unknown parity "e" (want N, E or O)`}},
		{"bus parity word", hw("  - {name: b1, port: /dev/ttyUSB0, parity: none}\n", gpio1), []string{`buses[0].parity: unknown parity "none" (want N, E or O)`}},
		{"bus parity even and odd", hw("  - {name: b1, port: /dev/a, parity: E, stop_bits: 2, data_bits: 7}\n  - {name: b2, port: /dev/b, parity: O}\n", gpio1), nil},
		{"bus stop and data bits", hw("  - {name: b1, port: /dev/ttyUSB0, stop_bits: 0, data_bits: 9}\n", gpio1), []string{"buses[0].stop_bits: must be 1 or 2, got 0", "buses[0].data_bits: must be 7 or 8, got 9"}},
		{"bus timeout and gap", hw("  - {name: b1, port: /dev/ttyUSB0, timeout: 0s, gap: -1ms}\n", gpio1), []string{`buses[0].timeout: must be > 0, got "0s"`, `buses[0].gap: must be >= 0, got "-1ms"`}},
		{"bus gap zero ok", hw("  - {name: b1, port: /dev/ttyUSB0, gap: 0s}\n", gpio1), nil},

		// driver blocks
		{"gpio without meter", hw(bus, "  - {number: \"1\", driver: gpio, gpio: {contactor: {pin: GPIO17}}}\n"), []string{"stations[0].meter: required with driver gpio (GPIO lines cannot measure energy)"}},
		{"modbus without any energy", hw(bus, "  - {number: \"2\", driver: modbus, modbus: {bus: b1, unit: 10, state: {function: 4}}}\n"), []string{"stations[0].meter: required unless modbus.energy is set (without an energy reading nothing is billed)"}},
		{"modbus with own energy", hw(bus, "  - {number: \"2\", driver: modbus, modbus: {bus: b1, unit: 10, state: {function: 4}, energy: {address: 0x48}, power: {address: 0x34}}}\n"), nil},
		{"gpio block without contactor", hw(bus, gpioWith("1", "1", "vehicle: {pin: GPIO22}")), []string{"stations[0].gpio.contactor.pin: required"}},
		{"gpio block empty", hw(bus, "  - {number: \"1\", driver: gpio, gpio: {}, meter: {bus: b1, unit: 1, profile: sdm630}}\n"), []string{"stations[0].gpio.contactor.pin: required"}},
		{"gpio block null", hw(bus, "  - {number: \"1\", driver: gpio, gpio: ~, meter: {bus: b1, unit: 1, profile: sdm630}}\n"), []string{"stations[0].gpio: required with driver gpio"}},
		{"gpio block on sim", hw(bus, "  - {number: \"1\", gpio: {contactor: {pin: GPIO17}}}\n"), []string{`stations[0].gpio: only used with driver gpio (this station's driver is "sim")`}},
		{"modbus block on gpio", hw(bus, "  - {number: \"1\", driver: gpio, gpio: {contactor: {pin: GPIO17}}, modbus: {bus: b1, unit: 10, state: {function: 4}}, meter: {bus: b1, unit: 1, profile: sdm630}}\n"), []string{`stations[0].modbus: only used with driver modbus (this station's driver is "gpio")`}},
		{"sim and gpio blocks on modbus", hw(bus, "  - {number: \"2\", driver: modbus, sim: {}, gpio: {contactor: {pin: GPIO17}}, modbus: {bus: b1, unit: 10, state: {function: 4}}, meter: {bus: b1, unit: 2, profile: sdm120}}\n"), []string{
			`stations[0].sim: only used with driver sim (this station's driver is "modbus")`,
			`stations[0].gpio: only used with driver gpio (this station's driver is "modbus")`,
		}},
		{"meter on a sim station", hw(bus, meterWith("bus: b1, unit: 1, profile: sdm120")), nil},

		// gpio pins
		{"gpio unknown key", hw(bus, gpioWith("1", "1", "contactor: {pin: GPIO17, active: true}")), []string{"stations[0].gpio.contactor.active: unknown key"}},
		{"gpio unknown pin role", hw(bus, gpioWith("1", "1", "contactor: {pin: GPIO17}, pilot: {pin: GPIO4}")), []string{"stations[0].gpio.pilot: unknown key"}},
		{"active_low not a bool", hw(bus, gpioWith("1", "1", "contactor: {pin: GPIO17, active_low: yes}")), []string{`stations[0].gpio.contactor.active_low: expected true or false, got "yes"`}},
		{"pin as a number", hw(bus, gpioWith("1", "1", "contactor: {pin: 17}")), nil},
		{"input pin empty", hw(bus, gpioWith("1", "1", "contactor: {pin: GPIO17}, vehicle: {pin: \"\"}, fault: {debounce: 10ms}")), []string{"stations[0].gpio.vehicle.pin: required", "stations[0].gpio.fault.pin: required"}},
		{"pin name with space", hw(bus, gpioWith("1", "1", "contactor: {pin: \"GPIO 17\"}")), []string{`stations[0].gpio.contactor.pin: invalid pin name "GPIO 17"`}},
		{"pin twice in a station", hw(bus, gpioWith("1", "1", "contactor: {pin: GPIO17}, vehicle: {pin: GPIO22}, stop_button: {pin: GPIO22}")), []string{`stations[0].gpio.stop_button.pin: pin "GPIO22" already used by stations[0].gpio.vehicle`}},
		{"output pin reused as input", hw(bus, gpio1+gpioWith("2", "2", "contactor: {pin: GPIO18}, charging: {pin: GPIO17}")), []string{`stations[1].gpio.charging.pin: pin "GPIO17" already used by stations[0].gpio.contactor`}},
		{"pin twice across stations ignoring case", hw(bus, gpio1+gpioWith("2", "2", "contactor: {pin: gpio17}")), []string{`stations[1].gpio.contactor.pin: pin "gpio17" already used by stations[0].gpio.contactor`}},
		{"pull on inputs", hw(bus, gpioWith("1", "1", "contactor: {pin: GPIO17}, vehicle: {pin: GPIO22, pull: up}, fault: {pin: GPIO24, pull: down}, stop_button: {pin: GPIO6, pull: none}")), nil},
		{"pull unknown", hw(bus, gpioWith("1", "1", "contactor: {pin: GPIO17}, vehicle: {pin: GPIO22, pull: Up}")), []string{`stations[0].gpio.vehicle.pull: unknown pull "Up" (want up, down or none; leave it out for the default)`}},
		{"pull on the contactor", hw(bus, gpioWith("1", "1", "contactor: {pin: GPIO17, pull: down}")), []string{"stations[0].gpio.contactor.pull: only used on inputs"}},
		{"debounce on the contactor", hw(bus, gpioWith("1", "1", "contactor: {pin: GPIO17, debounce: 20ms}")), []string{"stations[0].gpio.contactor.debounce: only used on inputs"}},
		{"debounce out of range", hw(bus, gpioWith("1", "1", "contactor: {pin: GPIO17}, vehicle: {pin: GPIO22, debounce: -1ms}, fault: {pin: GPIO24, debounce: 2s}")), []string{
			`stations[0].gpio.vehicle.debounce: must be between 0s and 1s, got "-1ms"`,
			`stations[0].gpio.fault.debounce: must be between 0s and 1s, got "2s"`,
		}},
		{"debounce bad duration", hw(bus, gpioWith("1", "1", "contactor: {pin: GPIO17}, vehicle: {pin: GPIO22, debounce: 50}")), []string{`stations[0].gpio.vehicle.debounce: invalid duration "50": add a unit, e.g. "50s"`}},
		{"feedback_timeout zero", hw(bus, gpioWith("1", "1", "contactor: {pin: GPIO17}, feedback_timeout: 0s")), []string{`stations[0].gpio.feedback_timeout: must be > 0, got "0s"`}},
		{"feedback_timeout beyond contactor_timeout", hw(bus, gpioWith("1", "1", "contactor: {pin: GPIO17}, feedback_timeout: 2s")), []string{`stations[0].gpio.feedback_timeout: must be below policy.contactor_timeout ("2s"), got "2s"`}},
		{"feedback_timeout with a longer contactor_timeout", hw(bus, gpioWith("1", "1", "contactor: {pin: GPIO17}, feedback_timeout: 2s")) + "policy: {contactor_timeout: 5s}\n", nil},

		// bus references and unit ids
		{"meter bus missing", hw(bus, meterWith("unit: 1, profile: sdm120")), []string{"stations[0].meter.bus: required"}},
		{"meter bus unknown", hw(bus+bus2, meterWith("bus: rs485, unit: 1, profile: sdm120")), []string{`stations[0].meter.bus: unknown bus "rs485" (declared: b1, b2)`}},
		{"no buses declared", hw("", meterWith("bus: rs485, unit: 1, profile: sdm120")), []string{`stations[0].meter.bus: unknown bus "rs485": no buses declared (add it under buses)`}},
		{"modbus bus unknown and unit zero", hw(bus, "  - {number: \"2\", driver: modbus, modbus: {bus: b9, state: {function: 4}, energy: {}}}\n"), []string{
			`stations[0].modbus.bus: unknown bus "b9" (declared: b1)`,
			"stations[0].modbus.unit: must be between 1 and 247, got 0",
		}},
		{"unit too high", hw(bus, meterWith("bus: b1, unit: 248, profile: sdm120")), []string{"stations[0].meter.unit: must be between 1 and 247, got 248"}},
		{"unit bounds ok", hw(bus, meterWith("bus: b1, unit: 247, profile: sdm120")+"  - {number: \"4\", meter: {bus: b1, unit: 1, profile: sdm72}}\n"), nil},
		{"unit twice on a bus", hw(bus, gpio1+gpioWith("2", "1", "contactor: {pin: GPIO18}")), []string{`stations[1].meter.unit: unit 1 on bus "b1" already used by stations[0].meter`}},
		{"controller and meter share a unit", hw(bus, "  - {number: \"2\", driver: modbus, modbus: {bus: b1, unit: 5, state: {function: 4}}, meter: {bus: b1, unit: 5, profile: sdm120}}\n"), []string{`stations[0].meter.unit: unit 5 on bus "b1" already used by stations[0].modbus`}},
		{"same unit on two buses", hw(bus+bus2, gpio1+"  - {number: \"2\", driver: gpio, gpio: {contactor: {pin: GPIO18}}, meter: {bus: b2, unit: 1, profile: sdm630}}\n"), nil},

		// meters
		{"meter profile missing", hw(bus, meterWith("bus: b1, unit: 1")), []string{"stations[0].meter.profile: required (sdm630, sdm120, sdm72, abb-b2x, sdm72v2, sdm220, sdm230, dtsu666, em24, janitza-umg604, pac2200 or generic)"}},
		{"meter profile unknown", hw(bus, meterWith("bus: b1, unit: 1, profile: SDM630")), []string{`stations[0].meter.profile: unknown profile "SDM630" (want sdm630, sdm120, sdm72, abb-b2x, sdm72v2, sdm220, sdm230, dtsu666, em24, janitza-umg604, pac2200 or generic)`}},
		{"every profile known", hw(bus, meterWith("bus: b1, unit: 1, profile: abb-b2x")+"  - {number: \"4\", meter: {bus: b1, unit: 2, profile: sdm72}}\n"), nil},
		{"generic without energy", hw(bus, meterWith("bus: b1, unit: 1, profile: generic, power: {address: 0x34}")), []string{"stations[0].meter.energy: required with profile generic"}},
		{"named profile with a register override", hw(bus, meterWith("bus: b1, unit: 1, profile: sdm630, energy: {address: 0x0156, scale: 1000}")), nil},
		{"meter interval", hw(bus, meterWith("bus: b1, unit: 1, profile: sdm120, interval: 0s")), []string{`stations[0].meter.interval: must be > 0, got "0s"`}},
		{"meter unknown key", hw(bus, meterWith("bus: b1, unit: 1, profile: sdm120, address: 1")), []string{"stations[0].meter.address: unknown key"}},

		// registers
		{"energy register", hw(bus, meterWith("bus: b1, unit: 1, profile: generic, energy: {function: 6, type: float, word_order: middle, scale: 0, encoding: index}")), []string{
			"stations[0].meter.energy.function: must be 3 (holding registers) or 4 (input registers), got 6",
			`stations[0].meter.energy.type: unknown type "float" (want int16, uint16, int32, uint32, float32, uint64 or float64)`,
			`stations[0].meter.energy.word_order: unknown word_order "middle" (want big or little)`,
			"stations[0].meter.energy.scale: must be > 0, got 0",
			"stations[0].meter.energy.encoding: only used on the state register",
		}},
		{"power register negative scale", hw(bus, meterWith("bus: b1, unit: 1, profile: sdm120, power: {scale: -1}")), []string{"stations[0].meter.power.scale: must be > 0, got -1"}},
		{"register types", hw(bus, meterWith("bus: b1, unit: 1, profile: generic, energy: {type: uint64, word_order: little, scale: 10}, power: {type: int32, function: 3, scale: 0.1}")), nil},
		{"register function as text", hw(bus, meterWith("bus: b1, unit: 1, profile: generic, energy: {function: input}")), []string{`stations[0].meter.energy.function: expected an integer, got "input"`}},
		{"modbus own registers checked", hw(bus, "  - {number: \"2\", driver: modbus, modbus: {bus: b1, unit: 10, state: {function: 4}, energy: {function: 2}, power: {type: bool}}}\n"), []string{
			"stations[0].modbus.energy.function: must be 3 (holding registers) or 4 (input registers), got 2",
			`stations[0].modbus.power.type: unknown type "bool" (want int16, uint16, int32, uint32, float32, uint64 or float64)`,
		}},
		{"state function missing", hw(bus, stateWith("address: 0x10")), []string{"stations[0].modbus.state.function: required: 3 (holding registers) or 4 (input registers)"}},
		{"state function wrong", hw(bus, stateWith("function: 1")), []string{"stations[0].modbus.state.function: must be 3 (holding registers) or 4 (input registers), got 1"}},
		{"state float", hw(bus, stateWith("function: 4, type: float32")), []string{"stations[0].modbus.state.type: float32 cannot hold a state; use an integer type such as uint16"}},
		{"state unknown type", hw(bus, stateWith("function: 4, type: char")), []string{`stations[0].modbus.state.type: unknown type "char" (want int16, uint16, int32, uint32, float32, uint64 or float64)`}},
		{"controller profile", hw(bus, "  - {number: \"2\", driver: modbus, modbus: {bus: b1, unit: 10, profile: phoenix-ev-ser, max_current_a: 16}, meter: {bus: b1, unit: 2, profile: sdm72v2}}\n"), nil},
		{"controller profile unknown", hw(bus, "  - {number: \"2\", driver: modbus, modbus: {bus: b1, unit: 10, profile: wallbe}, meter: {bus: b1, unit: 2, profile: sdm120}}\n"),
			[]string{`stations[0].modbus.profile: unknown controller profile "wallbe" (want phoenix-ev-ser or bender-cc613, or none with state and enable given)`}},
		{"controller profile with state and enable", hw(bus, "  - {number: \"2\", driver: modbus, modbus: {bus: b1, unit: 10, profile: phoenix-ev-ser, state: {function: 4}, enable: {address: 3}}, meter: {bus: b1, unit: 2, profile: sdm120}}\n"),
			[]string{"stations[0].modbus.state: set by profile phoenix-ev-ser: remove it, or the profile", "stations[0].modbus.enable: set by profile phoenix-ev-ser: remove it, or the profile"}},
		{"bender needs a max current", hw(bus, "  - {number: \"2\", driver: modbus, modbus: {bus: b1, unit: 10, profile: bender-cc613}, meter: {bus: b1, unit: 2, profile: pac2200}}\n"),
			[]string{"stations[0].modbus.max_current_a: required with profile bender-cc613: its current limit is its enable"}},
		{"max current out of range", hw(bus, "  - {number: \"2\", driver: modbus, modbus: {bus: b1, unit: 10, profile: bender-cc613, max_current_a: 100}, meter: {bus: b1, unit: 2, profile: em24}}\n"),
			[]string{"stations[0].modbus.max_current_a: must be between 6 and 80, got 100"}},
		{"state encoding", hw(bus, stateWith("function: 4, encoding: bcd")), []string{`stations[0].modbus.state.encoding: unknown encoding "bcd" (want index, index1 or ascii)`}},
		{"state encoding empty", hw(bus, stateWith("function: 4, encoding: \"\"")), []string{`stations[0].modbus.state.encoding: unknown encoding "" (want index, index1 or ascii)`}},
		{"state ascii", hw(bus, stateWith("function: 3, address: 100, type: uint16, encoding: ascii")), nil},
		{"modbus interval", hw(bus, "  - {number: \"2\", driver: modbus, modbus: {bus: b1, unit: 10, state: {function: 4}, interval: -1s}, meter: {bus: b1, unit: 2, profile: sdm120}}\n"), []string{`stations[0].modbus.interval: must be > 0, got "-1s"`}},
		{"enable unknown key", hw(bus, "  - {number: \"2\", driver: modbus, modbus: {bus: b1, unit: 10, state: {function: 4}, enable: {register: 1}}, meter: {bus: b1, unit: 2, profile: sdm120}}\n"), []string{"stations[0].modbus.enable.register: unknown key"}},

		// max_power_kw
		{"max_power_kw negative", hw(bus, "  - {number: \"1\", max_power_kw: -1}\n"), []string{"stations[0].max_power_kw: must be > 0 and <= 350, got -1"}},
		{"max_power_kw too high", hw(bus, "  - {number: \"1\", max_power_kw: 400}\n"), []string{"stations[0].max_power_kw: must be > 0 and <= 350, got 400"}},
		{"max_power_kw text", hw(bus, "  - {number: \"1\", max_power_kw: lots}\n"), []string{`stations[0].max_power_kw: expected a number, got "lots"`}},
		{"max_power_kw dc", hw(bus, "  - {number: \"1\", max_power_kw: 150, sim: {power_kw: 150}}\n"), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := problemsOf(t, tt.src)
			if !slices.Equal(got, tt.want) {
				t.Errorf("problems:\n%s\nwant:\n%s\nsource:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"), tt.src)
			}
		})
	}
}

// TestHardwareProblemsAtOnce checks that a hardware file with many
// mistakes gets all of them, each at its line, in file order.
func TestHardwareProblemsAtOnce(t *testing.T) {
	src := `node: {id: n1}
buses:
  - name: rs485-1
    port: ttyUSB0
    baud: 9601
    parity: X
  - name: rs485-1
    port: /dev/ttyUSB1
stations:
  - number: "1"
    driver: gpio
    gpio:
      contactor: {pin: GPIO17, debounce: 5ms}
      vehicle: {pin: GPIO17}
      fault: {pin: ""}
      feedback_timeout: 0s
    meter: {bus: rs485-2, unit: 1, profile: sdm630}
  - number: "2"
    driver: modbus
    modbus:
      bus: rs485-1
      unit: 300
      state: {address: 0156, type: float32}
    meter:
      bus: rs485-1
      unit: 3
      profile: generic
  - number: "3"
    driver: modbus
    modbus: {bus: rs485-1, unit: 3, state: {function: 4}}
    meter: {bus: rs485-1, unit: 4, profile: sdm120, energy: {encoding: ascii}}
`
	want := []string{
		`line 4: buses[0].port: must be an absolute path, got "ttyUSB0"`,
		"line 5: buses[0].baud: unsupported baud rate 9601 (want 1200, 2400, 4800, 9600, 19200, 38400, 57600 or 115200)",
		`line 6: buses[0].parity: unknown parity "X" (want N, E or O)`,
		`line 7: buses[1].name: duplicate bus name "rs485-1" (first at buses[0])`,
		"line 13: stations[0].gpio.contactor.debounce: only used on inputs",
		`line 14: stations[0].gpio.vehicle.pin: pin "GPIO17" already used by stations[0].gpio.contactor`,
		"line 15: stations[0].gpio.fault.pin: required",
		`line 16: stations[0].gpio.feedback_timeout: must be > 0, got "0s"`,
		`line 17: stations[0].meter.bus: unknown bus "rs485-2" (declared: rs485-1)`,
		"line 22: stations[1].modbus.unit: must be between 1 and 247, got 300",
		`line 23: stations[1].modbus.state.address: ambiguous number "0156": write 0x0156 if it is hexadecimal, or drop the leading zero`,
		"line 23: stations[1].modbus.state.function: required: 3 (holding registers) or 4 (input registers)",
		"line 23: stations[1].modbus.state.type: float32 cannot hold a state; use an integer type such as uint16",
		"line 24: stations[1].meter.energy: required with profile generic",
		`line 30: stations[2].modbus.unit: unit 3 on bus "rs485-1" already used by stations[1].meter`,
		"line 31: stations[2].meter.energy.encoding: only used on the state register",
	}
	_, err := ParseEdge([]byte(priced(src)))
	if err == nil {
		t.Fatal("no problems reported")
	}
	got := strings.Split(err.Error(), "\n")
	if !slices.Equal(got, want) {
		t.Errorf("problems:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestCheckPins(t *testing.T) {
	e := mustParse(t, hwSample+`  - number: "3"
    driver: gpio
    gpio: {contactor: {pin: GPIO99}, vehicle: {pin: P1_40}, fault: {pin: GPIO4}}
    meter: {bus: rs485-1, unit: 3, profile: sdm120}
  - {number: "4"}
`)
	host := map[string]bool{}
	for _, p := range []string{"GPIO4", "GPIO5", "GPIO6", "GPIO17", "GPIO22", "GPIO23", "GPIO24", "GPIO27"} {
		host[p] = true
	}
	var asked []string
	probs := e.CheckPins(func(name string) bool {
		asked = append(asked, name)
		return host[name]
	})
	want := Problems{
		{Path: "stations[2].gpio.contactor.pin", Reason: `no GPIO line "GPIO99" on this host`},
		{Path: "stations[2].gpio.vehicle.pin", Reason: `no GPIO line "P1_40" on this host`},
	}
	if !reflect.DeepEqual(probs, want) {
		t.Errorf("CheckPins = %v, want %v", probs, want)
	}
	if got := probs.Error(); got != "stations[2].gpio.contactor.pin: no GPIO line \"GPIO99\" on this host\nstations[2].gpio.vehicle.pin: no GPIO line \"P1_40\" on this host" {
		t.Errorf("Error() = %q", got)
	}
	wantAsked := []string{"GPIO17", "GPIO27", "GPIO22", "GPIO23", "GPIO24", "GPIO5", "GPIO6", "GPIO99", "P1_40", "GPIO4"}
	if !slices.Equal(asked, wantAsked) {
		t.Errorf("looked up %v, want %v", asked, wantAsked)
	}

	host["GPIO99"], host["P1_40"] = true, true
	if probs := e.CheckPins(func(name string) bool { return host[name] }); probs != nil {
		t.Errorf("all pins present: CheckPins = %v", probs)
	}
	if probs := mustParse(t, minimal).CheckPins(func(string) bool { return false }); probs != nil {
		t.Errorf("no gpio stations: CheckPins = %v", probs)
	}
	if !errors.Is(want, ErrInvalid) {
		t.Error("CheckPins problems do not match ErrInvalid")
	}
}

// TestValidateHardwareProgrammatic: a configuration built in code from the
// Default* functions validates like a parsed one.
func TestValidateHardwareProgrammatic(t *testing.T) {
	e := Default()
	e.Node.ID = "bench"
	bus := DefaultBus()
	bus.Name, bus.Port = "rs485-1", "/dev/ttyUSB0"
	e.Buses = []Bus{bus}
	g := DefaultGPIO()
	g.Contactor.Pin = "GPIO17"
	meter := DefaultMeter()
	meter.Bus, meter.Unit, meter.Profile = "rs485-1", 1, ProfileSDM630
	mb := DefaultModbus()
	mb.Bus, mb.Unit, mb.State.Function = "rs485-1", 10, FunctionInput
	energy := DefaultRegister()
	mb.Energy = &energy
	e.Stations = []Station{
		{Number: "1", Driver: DriverGPIO, GPIO: &g, Meter: &meter},
		{Number: "2", Driver: DriverModbus, Modbus: &mb},
	}
	e.Tariff.PricePerKWh = 0.39
	if probs := e.Validate(); probs != nil {
		t.Fatalf("Validate = %v", probs)
	}
	bad := DefaultRegister()
	bad.Scale = nan()
	mb.Power = &bad
	e.Stations = append(e.Stations, Station{Number: "3", Driver: DriverGPIO, GPIO: &GPIO{Contactor: GPIOPin{Pin: "GPIO18"}}, Meter: &Meter{Bus: "rs485-1", Unit: 1}})
	var got []string
	for _, p := range e.Validate() {
		got = append(got, p.String())
	}
	want := []string{
		"stations[1].modbus.power.scale: must be > 0, got NaN",
		`stations[2].gpio.feedback_timeout: must be > 0, got "0s"`,
		`stations[2].meter.unit: unit 1 on bus "rs485-1" already used by stations[0].meter`,
		"stations[2].meter.profile: required (sdm630, sdm120, sdm72, abb-b2x, sdm72v2, sdm220, sdm230, dtsu666, em24, janitza-umg604, pac2200 or generic)",
		`stations[2].meter.interval: must be > 0, got "0s"`,
	}
	if !slices.Equal(got, want) {
		t.Errorf("Validate =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestHardwareExamples checks the field examples in configs/: they parse,
// describe the sites they claim to, use distinct pins and survive a
// marshal round trip.
func TestHardwareExamples(t *testing.T) {
	type want struct {
		buses    int
		drivers  []string
		profiles []string
	}
	wants := map[string]want{
		"../../configs/raspberrypi.yaml": {1, []string{DriverGPIO, DriverGPIO}, []string{ProfileSDM120, ProfileSDM120}},
		"../../configs/industrial.yaml":  {1, []string{DriverGPIO, DriverGPIO, DriverModbus, DriverModbus}, []string{ProfileSDM630, ProfileSDM630, ProfileABBB2x, ProfileABBB2x}},
	}
	for _, path := range hardwareExamples {
		t.Run(path, func(t *testing.T) {
			e, err := LoadEdge(path)
			if err != nil {
				t.Fatalf("example has problems:\n%v", err)
			}
			w := wants[path]
			if len(e.Buses) != w.buses {
				t.Errorf("buses = %d, want %d", len(e.Buses), w.buses)
			}
			var drivers, profiles []string
			for _, s := range e.Stations {
				drivers = append(drivers, s.Driver)
				if s.Meter == nil {
					t.Errorf("station %s has no meter", s.Number)
					continue
				}
				profiles = append(profiles, s.Meter.Profile)
				if s.Driver == DriverGPIO {
					g := s.GPIO
					if g.ContactorFeedback == nil || g.Vehicle == nil || g.Charging == nil || g.Fault == nil || g.StartButton == nil || g.StopButton == nil {
						t.Errorf("station %s: not every gpio line is shown: %+v", s.Number, g)
					}
				}
			}
			if !slices.Equal(drivers, w.drivers) || !slices.Equal(profiles, w.profiles) {
				t.Errorf("drivers %v, profiles %v; want %v, %v", drivers, profiles, w.drivers, w.profiles)
			}
			for _, tm := range e.Terminals {
				for _, n := range tm.Stations {
					if _, ok := e.Station(n); !ok {
						t.Errorf("terminal names unknown station %s", n)
					}
				}
			}
			// Both sites are Raspberry Pi based: BCM lines GPIO0..GPIO27.
			if probs := e.CheckPins(func(name string) bool {
				n, ok := strings.CutPrefix(name, "GPIO")
				return ok && len(n) <= 2 && n >= "0" && (len(n) == 1 || n <= "27") && strings.Trim(n, "0123456789") == ""
			}); probs != nil {
				t.Errorf("CheckPins on a Raspberry Pi: %v", probs)
			}
			if kind, err := Check([]byte(mustRead(t, path))); kind != KindEdge || err != nil {
				t.Errorf("Check = %q, %v", kind, err)
			}
			out, err := yaml.Marshal(e)
			if err != nil {
				t.Fatal(err)
			}
			if back := mustParse(t, string(out)); !reflect.DeepEqual(e, back) {
				t.Errorf("round trip:\n got %+v\nwant %+v", back, e)
			}
		})
	}
}
