package config

import "time"

// The hardware side of a station (DESIGN.md §7): serial buses, GPIO lines,
// Modbus station controllers and energy meters. These types are plain
// data; the daemon maps them onto the hal drivers.

// Values of the enumerated hardware keys.
const (
	ParityNone = "N" // no parity bit
	ParityEven = "E"
	ParityOdd  = "O"

	// Meter profiles: built-in register maps of common Modbus meters. The
	// drivers own the maps; ProfileGeneric means the map is in the
	// configuration (Meter.Energy, Meter.Power).
	ProfileSDM630  = "sdm630"  // Eastron SDM630, three-phase
	ProfileSDM120  = "sdm120"  // Eastron SDM120, single-phase
	ProfileSDM72   = "sdm72"   // Eastron SDM72, three-phase
	ProfileABBB2x  = "abb-b2x" // ABB B21, B23, B24
	ProfileGeneric = "generic" // registers given in the configuration
	// More built-in meter profiles (issue 16).
	ProfileSDM72V2 = "sdm72v2"        // Eastron SDM72D-M V2, three-phase
	ProfileSDM220  = "sdm220"         // Eastron SDM220, single-phase
	ProfileSDM230  = "sdm230"         // Eastron SDM230, single-phase
	ProfileDTSU666 = "dtsu666"        // Chint DTSU666, three-phase
	ProfileEM24    = "em24"           // Carlo Gavazzi EM24-DIN AV
	ProfileJanitza = "janitza-umg604" // Janitza UMG 604 (and UMG 96RM, 508, 509)
	ProfilePAC2200 = "pac2200"        // Siemens SENTRON PAC2200

	// Controller profiles: built-in register maps of charge controllers
	// (state, enable, current limit) for Modbus.Profile.
	ControllerPhoenixEVSer = "phoenix-ev-ser" // Phoenix Contact EV-CC / EV-SER
	ControllerBenderCC613  = "bender-cc613"   // Bender CC612 / CC613

	FunctionHolding = 3 // Modbus function "read holding registers"
	FunctionInput   = 4 // Modbus function "read input registers"

	TypeInt16   = "int16"
	TypeUint16  = "uint16"
	TypeInt32   = "int32"
	TypeUint32  = "uint32"
	TypeFloat32 = "float32" // IEEE 754 single precision over two registers
	TypeUint64  = "uint64"
	TypeFloat64 = "float64" // IEEE 754 double precision over four registers

	WordOrderBig    = "big"    // most significant register first (Modbus convention)
	WordOrderLittle = "little" // least significant register first

	// EncodingIndex: the state register holds 0..5 for IEC 61851 A..F.
	EncodingIndex = "index"
	// EncodingASCII: the state register holds the letter itself, its
	// character code ('A' = 65) in one byte of the register.
	EncodingASCII = "ascii"
	// EncodingIndex1: the state register holds 1..6 for A..F (Bender).
	EncodingIndex1 = "index1"

	PullUp   = "up"   // internal pull-up on an input
	PullDown = "down" // internal pull-down on an input
	PullNone = "none" // no internal resistor: the wiring brings its own

	// DefaultMaxPowerKW is a station's max_power_kw when none is given:
	// 22 kW, the most an AC station delivers on three phases at 32 A.
	DefaultMaxPowerKW = 22
)

// Bus is one serial line (RS-485 as a rule) carrying Modbus RTU. Every
// device on a bus shares its line settings, so they are declared once and
// meters and controllers name the bus.
type Bus struct {
	Name     string   `yaml:"name"`      // what meters and controllers refer to, e.g. rs485-1
	Port     string   `yaml:"port"`      // device path, e.g. /dev/ttyUSB0 or /dev/serial/by-id/…
	Baud     int      `yaml:"baud"`      // 1200 to 115200, the same on every device of the bus
	Parity   string   `yaml:"parity"`    // ParityNone, ParityEven or ParityOdd
	StopBits int      `yaml:"stop_bits"` // 1 or 2
	DataBits int      `yaml:"data_bits"` // 7 or 8 (Modbus RTU uses 8)
	Timeout  Duration `yaml:"timeout"`   // wait for a device's answer before it counts as a failure
	Gap      Duration `yaml:"gap"`       // silence between two requests, for slow devices
}

// GPIOPin is one GPIO line, by name as the host knows it (e.g. GPIO17 on a
// Raspberry Pi; `gpioinfo` lists them).
type GPIOPin struct {
	Pin       string `yaml:"pin"`
	ActiveLow bool   `yaml:"active_low"` // the line is low when the signal is on (relay boards, optocouplers)
	// Debounce is how long an input must stay at a new level before the
	// change counts; 0 takes every edge. Only for inputs.
	Debounce Duration `yaml:"debounce"`
	// Pull is an input's internal bias resistor: PullUp, PullDown,
	// PullNone (the wiring brings its own) or empty for the driver's
	// choice, towards the inactive level so that a broken wire reads
	// "off". Only for inputs.
	Pull string `yaml:"pull"`
}

// GPIO wires a station to GPIO lines: a contactor output and optional
// inputs. The daemon opens the contactor at start-up, on Halt, on shutdown
// and on panic.
type GPIO struct {
	Contactor GPIOPin `yaml:"contactor"` // output closing the contactor; required
	// ContactorFeedback is the contactor's auxiliary contact. Without it
	// the commanded position is taken as the real one.
	ContactorFeedback *GPIOPin `yaml:"contactor_feedback"`
	Vehicle           *GPIOPin `yaml:"vehicle"`      // on while a vehicle is plugged in (IEC 61851 B, C or D)
	Charging          *GPIOPin `yaml:"charging"`     // on while the vehicle asks for energy (C or D)
	Fault             *GPIOPin `yaml:"fault"`        // on while the station reports a fault (F)
	StartButton       *GPIOPin `yaml:"start_button"` // a press asks for a Remote Start
	StopButton        *GPIOPin `yaml:"stop_button"`  // a press stops the running session
	// FeedbackTimeout is how long the feedback may take to follow the
	// contactor before the station is faulted. It must stay below
	// policy.contactor_timeout, which bounds the whole switch.
	FeedbackTimeout Duration `yaml:"feedback_timeout"`
}

// Register is one value read over Modbus: where it is and how to turn its
// registers into a number.
type Register struct {
	Function  int    `yaml:"function"`   // FunctionHolding or FunctionInput
	Address   uint16 `yaml:"address"`    // register address as sent on the wire (0-based); 0x hex or decimal in YAML
	Type      string `yaml:"type"`       // TypeInt16 … TypeUint64
	WordOrder string `yaml:"word_order"` // for values over several registers: WordOrderBig or WordOrderLittle
	// Scale multiplies the raw value into the unit sitelink uses: Wh for
	// energy, W for power (a meter counting kWh needs 1000). Not used for
	// the state register.
	Scale float64 `yaml:"scale"`
	// Encoding is how the state register spells the IEC 61851 state:
	// EncodingIndex or EncodingASCII. Only for Modbus.State.
	Encoding string `yaml:"encoding"`
}

// Enable is where a modbus station controller is told to allow charging
// (1) or not (0).
type Enable struct {
	Coil    bool   `yaml:"coil"`    // true: a coil (function 5); false: a holding register (function 6)
	Address uint16 `yaml:"address"` // 0x hex or decimal in YAML
}

// Modbus is a station controller on a bus that reports the IEC 61851 state
// in a register and takes its enable through a coil or register.
type Modbus struct {
	Bus  string `yaml:"bus"`  // a declared bus
	Unit int    `yaml:"unit"` // Modbus unit (slave) id, 1 to 247
	// Profile names a built-in controller (ControllerPhoenixEVSer, ...)
	// whose state, enable and current limit registers are used; State and
	// Enable are then not given. Empty: State and Enable say where.
	Profile string `yaml:"profile"`
	// MaxCurrentA is the charging current limit in amperes (6 to 80)
	// kept in a profile's current limit register (read every poll,
	// written again when it differs); 0 leaves
	// the controller's own setting. Required with ControllerBenderCC613,
	// whose current limit is its enable.
	MaxCurrentA int      `yaml:"max_current_a"`
	State       Register `yaml:"state"`    // IEC 61851 state A..F; function required without a profile
	Enable      Enable   `yaml:"enable"`   // switches charging on and off
	Interval    Duration `yaml:"interval"` // how often the state is polled
	// Energy and Power are the controller's own meter, if it has one.
	// A Station.Meter takes precedence over them.
	Energy *Register `yaml:"energy"`
	Power  *Register `yaml:"power"`
}

// Meter is an energy meter on a bus.
type Meter struct {
	Bus      string   `yaml:"bus"`      // a declared bus
	Unit     int      `yaml:"unit"`     // Modbus unit (slave) id, 1 to 247
	Profile  string   `yaml:"profile"`  // ProfileSDM630 … ProfileGeneric
	Interval Duration `yaml:"interval"` // how often energy and power are read
	// Energy and Power give the registers for ProfileGeneric (Energy is
	// required there); with a named profile they replace the profile's
	// own register.
	Energy *Register `yaml:"energy"`
	Power  *Register `yaml:"power"`
}

// DefaultBus returns a bus's settings before the file's are merged over
// them: 9600 baud 8N1, the most common factory setting of Modbus meters.
func DefaultBus() Bus {
	return Bus{
		Baud:     9600,
		Parity:   ParityNone,
		StopBits: 1,
		DataBits: 8,
		Timeout:  Duration(500 * time.Millisecond),
		Gap:      Duration(5 * time.Millisecond),
	}
}

// DefaultGPIO returns a gpio block's defaults: no pins, a 500ms feedback
// timeout.
func DefaultGPIO() GPIO {
	return GPIO{FeedbackTimeout: Duration(500 * time.Millisecond)}
}

// DefaultRegister returns an energy or power register's defaults: an input
// register holding a big-endian float32, unscaled.
func DefaultRegister() Register {
	return Register{Function: FunctionInput, Type: TypeFloat32, WordOrder: WordOrderBig, Scale: 1}
}

// DefaultStateRegister returns the state register's defaults: a uint16
// holding an index. The function has no default: it differs between
// controllers and a wrong guess reads garbage.
func DefaultStateRegister() Register {
	return Register{Type: TypeUint16, WordOrder: WordOrderBig, Scale: 1, Encoding: EncodingIndex}
}

// DefaultModbus returns a modbus block's defaults: state polled every
// second; no bus, unit or state function.
func DefaultModbus() Modbus {
	return Modbus{State: DefaultStateRegister(), Interval: Duration(time.Second)}
}

// DefaultMeter returns a meter block's defaults: read every second; no bus,
// unit or profile.
func DefaultMeter() Meter {
	return Meter{Interval: Duration(time.Second)}
}
