package modbus

import (
	"fmt"
	"slices"
	"strings"
)

// Profile is where a meter model keeps the two values sitelink needs.
type Profile struct {
	// Name is the profile name as configured ("sdm630", "generic", ...).
	Name string
	// Model names the devices the profile is for, for listings.
	Model string
	// Energy is the total imported active energy; scaled, it reads Wh.
	Energy Register
	// Power is the total active power; scaled, it reads W. A zero
	// Register means the meter is not asked for power.
	Power Register
	// Present and Absent tell the model apart from others when a bus is
	// scanned (Scan): registers it answers besides Energy and Power, and
	// registers it refuses with an exception although a similar model
	// has them. They are not read while polling.
	Present, Absent []Register
}

// Validate reports whether the profile can be polled.
func (p Profile) Validate() error {
	if err := p.Energy.Validate(); err != nil {
		return fmt.Errorf("profile %s: energy register: %w", p.Name, err)
	}
	if !p.Power.IsZero() {
		if err := p.Power.Validate(); err != nil {
			return fmt.Errorf("profile %s: power register: %w", p.Name, err)
		}
	}
	return nil
}

// GenericProfile is the "generic" profile: registers from configuration.
const GenericProfile = "generic"

// inputFloat is a float32 in two input registers, high word first.
func inputFloat(addr uint16, scale float64) Register {
	return Register{Function: FuncReadInputRegisters, Address: addr, Type: TypeFloat32, WordOrder: WordOrderBig, Scale: scale}
}

// eastronFloat is an Eastron measurement: an IEEE 754 float32 in two input
// registers, high word first.
func eastronFloat(addr uint16, scale float64) Register { return inputFloat(addr, scale) }

// holdingFloat is a float32 in two holding registers, high word first.
func holdingFloat(addr uint16, scale float64) Register {
	return Register{Function: FuncReadHoldingRegisters, Address: addr, Type: TypeFloat32, WordOrder: WordOrderBig, Scale: scale}
}

// Eastron registers that tell their models apart: only the three-phase
// meters have the phase 2 voltage and the total system power; the SDM72
// (first version) has no per-phase power.
var (
	eastronPhase2Voltage = eastronFloat(0x0002, 1)
	eastronTotalPower    = eastronFloat(0x0034, 1)
	eastronPhase1Power   = eastronFloat(0x000C, 1)
)

// profiles are the built-in meter models, from the manufacturers' public
// register maps. Addresses are 0-based protocol addresses; the manuals
// list them 1-based with a table prefix (input register 30073 = 0x0048).
// Each entry names the document it was written from; mbmd's and evcc's
// public tables (github.com/volkszaehler/mbmd meters/rs485,
// github.com/evcc-io/evcc templates) were the cross-check.
//
// Energy is the *import* register, not Eastron's "Total kWh" (0x0156),
// which is import plus export: a charger should never export, but if a
// meter is wired the wrong way round the sum would bill the customer for
// energy that flowed out.
var profiles = map[string]Profile{
	// Eastron "SDM630 Modbus Protocol" (SDM630-Modbus V2, protocol
	// v1.5), input registers: 30053 "Total system power" W (0x0034),
	// 30073 "Total import kWh" (0x0048). float32, high word first.
	"sdm630": {
		Name:    "sdm630",
		Model:   "Eastron SDM630 (three-phase)",
		Energy:  eastronFloat(0x0048, 1000),
		Power:   eastronTotalPower,
		Present: []Register{eastronPhase2Voltage, eastronPhase1Power},
	},
	// Eastron "SDM120-Modbus Protocol" (V2.x), input registers: 30013
	// "Active power" W (0x000C), 30073 "Import active energy" kWh
	// (0x0048).
	"sdm120": {
		Name:   "sdm120",
		Model:  "Eastron SDM120 (single-phase)",
		Energy: eastronFloat(0x0048, 1000),
		Power:  eastronPhase1Power,
		Absent: []Register{eastronTotalPower},
	},
	// Eastron "SDM220 Modbus Protocol" (SDM220-Modbus V1.x), input
	// registers as on the SDM120: 30013 "Active power" W (0x000C), 30073
	// "Import active energy" kWh (0x0048). Single-phase: no 30053.
	"sdm220": {
		Name:   "sdm220",
		Model:  "Eastron SDM220 (single-phase)",
		Energy: eastronFloat(0x0048, 1000),
		Power:  eastronPhase1Power,
		Absent: []Register{eastronTotalPower},
	},
	// Eastron "SDM230 Modbus Protocol" (SDM230-Modbus V1.x), input
	// registers: 30013 "Active power" W (0x000C), 30073 "Import active
	// energy" kWh (0x0048). Single-phase: no 30053.
	"sdm230": {
		Name:   "sdm230",
		Model:  "Eastron SDM230 (single-phase)",
		Energy: eastronFloat(0x0048, 1000),
		Power:  eastronPhase1Power,
		Absent: []Register{eastronTotalPower},
	},
	// Eastron "SDM72D-M Modbus protocol" (SDM72DM user manual, Modbus
	// register map), input registers: 30053 "Total system power" W
	// (0x0034), 30073 "Total import kWh" (0x0048). The SDM72 has no
	// per-phase power registers, so 0x000C does not exist on it.
	"sdm72": {
		Name:   "sdm72",
		Model:  "Eastron SDM72D-M, first version",
		Energy: eastronFloat(0x0048, 1000),
		Power:  eastronTotalPower,
		Absent: []Register{eastronPhase1Power},
	},
	// Eastron "SDM72D-M-2 (V2) Modbus protocol" (SDM72DM-V2 user manual,
	// register map), input registers: 30001..30005 phase voltages, 30013
	// phase 1 power, 30053 "Total system power" W (0x0034), 30073 "Total
	// import kWh" (0x0048). Unlike the first SDM72 it has the per-phase
	// registers, like an SDM630.
	"sdm72v2": {
		Name:    "sdm72v2",
		Model:   "Eastron SDM72D-M V2",
		Energy:  eastronFloat(0x0048, 1000),
		Power:   eastronTotalPower,
		Present: []Register{eastronPhase2Voltage, eastronPhase1Power},
	},
	// ABB "B21/B23/B24 User Manual", chapter "Communication with Modbus",
	// mapping table: holding registers 0x5000 "Active import" (uint64, 4
	// registers, resolution 0.01 kWh = 10 Wh) and 0x5B14 "Active power,
	// Total" (int32, 2 registers, resolution 0.01 W). Registers not
	// measured read all ones (unsigned) or 0x7FFF... (signed).
	"abb-b2x": {
		Name:   "abb-b2x",
		Model:  "ABB B21, B23, B24",
		Energy: Register{Function: FuncReadHoldingRegisters, Address: 0x5000, Type: TypeUint64, WordOrder: WordOrderBig, Scale: 10, MaxIsInvalid: true},
		Power:  Register{Function: FuncReadHoldingRegisters, Address: 0x5B14, Type: TypeInt32, WordOrder: WordOrderBig, Scale: 0.01, MaxIsInvalid: true},
	},
	// Chint "DTSU666 / DSSU666 User Manual", Modbus table (holding
	// registers, function 03, float32 high word first): 0x2012 "Pt"
	// combined active power in units of 0.1 W, 0x101E "ImpEp" positive
	// (import) total active energy in kWh. 0x2006 "Ua" phase A voltage
	// (0.1 V) identifies it. Variants sold with inverters (DTSU666-H)
	// keep the energy at 0x401E instead: use generic for those.
	"dtsu666": {
		Name:    "dtsu666",
		Model:   "Chint DTSU666 (three-phase)",
		Energy:  holdingFloat(0x101E, 1000),
		Power:   holdingFloat(0x2012, 0.1),
		Present: []Register{holdingFloat(0x2006, 0.1)},
	},
	// Carlo Gavazzi "EM24-DIN communication protocol" (EM24DINAV
	// Modbus RTU map), input registers (functions 03 and 04 read the
	// same), INT32 with the least significant word first: 0x0028 "W sys"
	// in W×10, 0x0042 "kWh (+) TOT" in kWh×10 (100 Wh steps). 0x0000
	// "V L1-N" (V×10) identifies it.
	"em24": {
		Name:    "em24",
		Model:   "Carlo Gavazzi EM24-DIN AV",
		Energy:  Register{Function: FuncReadInputRegisters, Address: 0x0042, Type: TypeInt32, WordOrder: WordOrderLittle, Scale: 100},
		Power:   Register{Function: FuncReadInputRegisters, Address: 0x0028, Type: TypeInt32, WordOrder: WordOrderLittle, Scale: 0.1},
		Present: []Register{{Function: FuncReadInputRegisters, Address: 0x0000, Type: TypeInt32, WordOrder: WordOrderLittle, Scale: 0.1}},
	},
	// Janitza "UMG 604-PRO Modbus address list" (the "frequently
	// required readings" block shared with UMG 96RM and UMG 508/509),
	// holding registers, float32 high word first: 19026 "Psum3" total
	// real power W, 19068 "WH_V[3]" real energy consumed L1..L3 in Wh.
	// 19000 "U L1-N" identifies it.
	"janitza-umg604": {
		Name:    "janitza-umg604",
		Model:   "Janitza UMG 604 (also UMG 96RM, UMG 508/509)",
		Energy:  holdingFloat(19068, 1),
		Power:   holdingFloat(19026, 1),
		Present: []Register{holdingFloat(19000, 1)},
	},
	// Siemens "SENTRON PAC2200 Power Monitoring Device" manual, Modbus
	// RTU measured variables (functions 03 and 04 read the same):
	// offset 65 "Total active power" float32 W, offset 801 "Active
	// energy import tariff 1" float64 (four registers) Wh. A single
	// tariff meter counts into tariff 1. Offset 1 "Voltage Ua-n"
	// identifies it.
	"pac2200": {
		Name:    "pac2200",
		Model:   "Siemens SENTRON PAC2200",
		Energy:  Register{Function: FuncReadInputRegisters, Address: 801, Type: TypeFloat64, WordOrder: WordOrderBig, Scale: 1},
		Power:   inputFloat(65, 1),
		Present: []Register{inputFloat(1, 1)},
	},
}

// ProfileByName returns the named meter profile (case-insensitive). The
// "generic" profile has no registers: the caller fills Energy and Power
// from its configuration.
func ProfileByName(name string) (Profile, bool) {
	name = strings.ToLower(name)
	if name == GenericProfile {
		return Profile{Name: GenericProfile}, true
	}
	p, ok := profiles[name]
	return p, ok
}

// Profiles returns the names ProfileByName knows, sorted.
func Profiles() []string {
	names := []string{GenericProfile}
	for n := range profiles {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// ControllerProfile is where a charge controller model keeps its CP state,
// its enable and its current limit.
type ControllerProfile struct {
	// Name is the profile name as configured ("phoenix-ev-ser", ...).
	Name string
	// Model names the devices the profile is for, for listings.
	Model string
	// Map is the controller's register map. Energy and Power are not
	// part of a profile: a station meters with its own meter block.
	Map ControllerMap
}

// controllerProfiles are the built-in charge controller models, from the
// manufacturers' register maps; evcc's public drivers
// (github.com/evcc-io/evcc charger/) were the cross-check.
var controllerProfiles = map[string]ControllerProfile{
	// Phoenix Contact "EV-CC-AC1-M3-... / EV-SER Modbus RTU register
	// map" (EV Charge Control, serial variants): input register 24000
	// "charging status" holds the IEC 61851 state as an ASCII letter
	// A..F, coil 20000 "enable charging process", holding register 22000
	// "charging current" in A (6..80).
	"phoenix-ev-ser": {
		Name:  "phoenix-ev-ser",
		Model: "Phoenix Contact EV-CC / EV-SER (Modbus RTU)",
		Map: ControllerMap{
			State:         Register{Function: FuncReadInputRegisters, Address: 24000, Type: TypeUint16},
			StateEncoding: StateASCII,
			Enable:        Enable{Coil: true, Address: 20000},
			MaxCurrent:    &CurrentLimit{Address: 22000},
		},
	},
	// Bender "Charge Controller Modbus TCP API" (CC612/CC613 firmware
	// 5.x, register address set "Ebee/Bender"), holding registers: 122
	// "vehicle state" 1 = A, 2 = B, 3 = C, 4 = D; 1000 "HEMS current
	// limit" in A, where 0 pauses charging. The CC613 has no enable of
	// its own: the current limit is the enable (Enable.Current).
	//
	// Verified against evcc's charger/bender.go only for 122 = 1..4 and
	// register 1000; what 122 holds for states E and F is not, and such
	// a value faults the station either way (E, F or unknown). Bender
	// documents this map for its Modbus TCP server; evcc writes 1000
	// with function 16, sitelink with 6. Check both on the device.
	"bender-cc613": {
		Name:  "bender-cc613",
		Model: "Bender CC612 / CC613 (Bender register set)",
		Map: ControllerMap{
			State:         Register{Function: FuncReadHoldingRegisters, Address: 122, Type: TypeUint16},
			StateEncoding: StateIndex1,
			Enable:        Enable{Current: true, Address: 1000},
			MaxCurrent:    &CurrentLimit{Address: 1000},
		},
	},
}

// ControllerProfileByName returns the named controller profile
// (case-insensitive).
func ControllerProfileByName(name string) (ControllerProfile, bool) {
	p, ok := controllerProfiles[strings.ToLower(name)]
	return p, ok
}

// ControllerProfiles returns the names ControllerProfileByName knows,
// sorted.
func ControllerProfiles() []string {
	var names []string
	for n := range controllerProfiles {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}
