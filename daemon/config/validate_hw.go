package config

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
	"unicode"
)

// Limits of the hardware configuration checked by Validate.
const (
	minUnit     = 1   // Modbus unit ids: 0 is broadcast,
	maxUnit     = 247 // 248..255 are reserved
	maxDebounce = time.Second
	maxPinName  = 64
)

var (
	bauds    = []int{1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200}
	profiles = []string{ProfileSDM630, ProfileSDM120, ProfileSDM72, ProfileABBB2x,
		ProfileSDM72V2, ProfileSDM220, ProfileSDM230, ProfileDTSU666, ProfileEM24, ProfileJanitza, ProfilePAC2200, ProfileGeneric}
	controllerProfiles = []string{ControllerPhoenixEVSer, ControllerBenderCC613}
	registerTypes      = []string{TypeInt16, TypeUint16, TypeInt32, TypeUint32, TypeFloat32, TypeUint64, TypeFloat64}
)

// orList renders a list for a message: "a, b or c".
func orList[T any](items []T) string {
	s := make([]string, len(items))
	for i, it := range items {
		s[i] = fmt.Sprint(it)
	}
	if len(s) < 2 {
		return strings.Join(s, "")
	}
	return strings.Join(s[:len(s)-1], ", ") + " or " + s[len(s)-1]
}

func (e *Edge) validateBuses(v *validator) {
	names := map[string]string{} // name -> path of its first declaration
	ports := map[string]string{}
	for i, b := range e.Buses {
		p := fmt.Sprintf("buses[%d]", i)
		switch {
		case b.Name == "":
			v.add(p+".name", "required")
		case !topicLevelRE.MatchString(b.Name):
			v.add(p+".name", "invalid bus name %s: use 1 to %d letters, digits, '.', '_' or '-'", quote(b.Name), maxLevelLen)
		case names[b.Name] != "":
			v.add(p+".name", "duplicate bus name %s (first at %s)", quote(b.Name), names[b.Name])
		default:
			names[b.Name] = p
		}
		if v.checkAbsPath(p+".port", b.Port) {
			// Two buses on one port would interleave their frames.
			if first := ports[b.Port]; first != "" {
				v.add(p+".port", "port %s already used by %s", quote(b.Port), first)
			} else {
				ports[b.Port] = p
			}
		}
		if !slices.Contains(bauds, b.Baud) {
			v.add(p+".baud", "unsupported baud rate %d (want %s)", b.Baud, orList(bauds))
		}
		if b.Parity != ParityNone && b.Parity != ParityEven && b.Parity != ParityOdd {
			v.add(p+".parity", "unknown parity %s (want N, E or O)", quote(b.Parity))
		}
		if b.StopBits != 1 && b.StopBits != 2 {
			v.add(p+".stop_bits", "must be 1 or 2, got %d", b.StopBits)
		}
		if b.DataBits != 7 && b.DataBits != 8 {
			v.add(p+".data_bits", "must be 7 or 8, got %d", b.DataBits)
		}
		v.checkPositive(p+".timeout", b.Timeout)
		if b.Gap < 0 {
			v.add(p+".gap", "must be >= 0, got %s", quote(b.Gap.String()))
		}
	}
}

// hwCheck carries what the hardware checks of one station need to know
// about the others: pins and bus units must be unique across stations.
type hwCheck struct {
	buses            map[string]bool
	busNames         []string
	contactorTimeout Duration
	pins             map[string]string  // upper-cased pin name -> path of its first use
	units            map[busUnit]string // -> path of its first use
}

type busUnit struct {
	bus  string
	unit int
}

func (e *Edge) newHWCheck() *hwCheck {
	h := &hwCheck{
		buses:            map[string]bool{},
		contactorTimeout: e.Policy.ContactorTimeout,
		pins:             map[string]string{},
		units:            map[busUnit]string{},
	}
	for _, b := range e.Buses {
		if b.Name != "" && !h.buses[b.Name] {
			h.buses[b.Name] = true
			h.busNames = append(h.busNames, b.Name)
		}
	}
	return h
}

// station checks a station's hardware blocks, whichever driver it has: a
// block on the wrong driver is reported by validateStations, and its
// content is still worth checking.
func (h *hwCheck) station(v *validator, p string, s Station) {
	if s.GPIO != nil {
		h.gpio(v, p+".gpio", s.GPIO)
	}
	if s.Modbus != nil {
		h.modbus(v, p+".modbus", s.Modbus)
	}
	if s.Meter != nil {
		h.meter(v, p+".meter", s.Meter)
	}
}

// namedPin is one configured line of a GPIO block with its key.
type namedPin struct {
	key    string
	pin    GPIOPin
	output bool
}

// pins lists the configured lines, contactor first, in the file's order.
func (g *GPIO) pins() []namedPin {
	out := []namedPin{{key: "contactor", pin: g.Contactor, output: true}}
	for _, in := range []struct {
		key string
		pin *GPIOPin
	}{
		{"contactor_feedback", g.ContactorFeedback},
		{"vehicle", g.Vehicle},
		{"charging", g.Charging},
		{"fault", g.Fault},
		{"start_button", g.StartButton},
		{"stop_button", g.StopButton},
	} {
		if in.pin != nil {
			out = append(out, namedPin{key: in.key, pin: *in.pin})
		}
	}
	return out
}

func (h *hwCheck) gpio(v *validator, p string, g *GPIO) {
	for _, np := range g.pins() {
		h.pin(v, p+"."+np.key, np)
	}
	v.checkPositive(p+".feedback_timeout", g.FeedbackTimeout)
	if g.FeedbackTimeout > 0 && h.contactorTimeout > 0 && g.FeedbackTimeout >= h.contactorTimeout {
		// The engine gives up on the whole switch after contactor_timeout;
		// a longer feedback wait could never report its own failure.
		v.add(p+".feedback_timeout", "must be below policy.contactor_timeout (%s), got %s", quote(h.contactorTimeout.String()), quote(g.FeedbackTimeout.String()))
	}
}

func (h *hwCheck) pin(v *validator, p string, np namedPin) {
	name := np.pin.Pin
	switch {
	case name == "":
		v.add(p+".pin", "required")
	case len(name) > maxPinName || strings.ContainsFunc(name, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }):
		v.add(p+".pin", "invalid pin name %s", quote(name))
	default:
		// Case is ignored: two names differing only by case are a typo,
		// not two lines.
		k := strings.ToUpper(name)
		if first := h.pins[k]; first != "" {
			v.add(p+".pin", "pin %s already used by %s", quote(name), first)
		} else {
			h.pins[k] = p
		}
	}
	switch pull := np.pin.Pull; {
	case np.output && pull != "":
		v.add(p+".pull", "only used on inputs")
	case pull != "" && pull != PullUp && pull != PullDown && pull != PullNone:
		v.add(p+".pull", "unknown pull %s (want up, down or none; leave it out for the default)", quote(pull))
	}
	switch d := np.pin.Debounce; {
	case np.output && d != 0:
		v.add(p+".debounce", "only used on inputs")
	case d < 0 || d > Duration(maxDebounce):
		v.add(p+".debounce", "must be between 0s and %s, got %s", maxDebounce, quote(d.String()))
	}
}

// busUnit checks a device's bus and unit id, and that no other device on
// the bus has the same id: two devices answering one request garble both
// answers.
func (h *hwCheck) busUnit(v *validator, p, bus string, unit int) {
	known := false
	switch {
	case bus == "":
		v.add(p+".bus", "required")
	case !h.buses[bus]:
		if len(h.busNames) == 0 {
			v.add(p+".bus", "unknown bus %s: no buses declared (add it under buses)", quote(bus))
		} else {
			v.add(p+".bus", "unknown bus %s (declared: %s)", quote(bus), strings.Join(h.busNames, ", "))
		}
	default:
		known = true
	}
	if unit < minUnit || unit > maxUnit {
		v.add(p+".unit", "must be between %d and %d, got %d", minUnit, maxUnit, unit)
		return
	}
	if !known {
		return
	}
	k := busUnit{bus, unit}
	if first := h.units[k]; first != "" {
		v.add(p+".unit", "unit %d on bus %s already used by %s", unit, quote(bus), first)
	} else {
		h.units[k] = p
	}
}

// Limits of Modbus.MaxCurrentA: what IEC 61851 can signal.
const (
	minCurrentA = 6
	maxCurrentA = 80
)

func (h *hwCheck) modbus(v *validator, p string, m *Modbus) {
	h.busUnit(v, p, m.Bus, m.Unit)
	if m.MaxCurrentA != 0 && (m.MaxCurrentA < minCurrentA || m.MaxCurrentA > maxCurrentA) {
		v.add(p+".max_current_a", "must be between %d and %d, got %d", minCurrentA, maxCurrentA, m.MaxCurrentA)
	}
	switch {
	case m.Profile == "":
		checkRegister(v, p+".state", m.State, true)
	case !slices.Contains(controllerProfiles, m.Profile):
		v.add(p+".profile", "unknown controller profile %s (want %s, or none with state and enable given)", quote(m.Profile), orList(controllerProfiles))
	default:
		if m.State.Function != 0 {
			v.add(p+".state", "set by profile %s: remove it, or the profile", m.Profile)
		}
		if m.Enable != (Enable{}) {
			v.add(p+".enable", "set by profile %s: remove it, or the profile", m.Profile)
		}
		if m.Profile == ControllerBenderCC613 && m.MaxCurrentA == 0 {
			v.add(p+".max_current_a", "required with profile %s: its current limit is its enable", m.Profile)
		}
	}
	v.checkPositive(p+".interval", m.Interval)
	if m.Energy != nil {
		checkRegister(v, p+".energy", *m.Energy, false)
	}
	if m.Power != nil {
		checkRegister(v, p+".power", *m.Power, false)
	}
}

func (h *hwCheck) meter(v *validator, p string, m *Meter) {
	h.busUnit(v, p, m.Bus, m.Unit)
	switch {
	case m.Profile == "":
		v.add(p+".profile", "required (%s)", orList(profiles))
	case !slices.Contains(profiles, m.Profile):
		v.add(p+".profile", "unknown profile %s (want %s)", quote(m.Profile), orList(profiles))
	case m.Profile == ProfileGeneric && m.Energy == nil:
		v.add(p+".energy", "required with profile %s", ProfileGeneric)
	}
	v.checkPositive(p+".interval", m.Interval)
	if m.Energy != nil {
		checkRegister(v, p+".energy", *m.Energy, false)
	}
	if m.Power != nil {
		checkRegister(v, p+".power", *m.Power, false)
	}
}

// checkRegister checks a register; state is true for Modbus.State, the
// only one with an encoding and without a default function.
func checkRegister(v *validator, p string, r Register, state bool) {
	switch {
	case r.Function == FunctionHolding || r.Function == FunctionInput:
	case r.Function == 0 && state:
		v.add(p+".function", "required: 3 (holding registers) or 4 (input registers)")
	default:
		v.add(p+".function", "must be 3 (holding registers) or 4 (input registers), got %d", r.Function)
	}
	typeOK := slices.Contains(registerTypes, r.Type)
	if !typeOK {
		v.add(p+".type", "unknown type %s (want %s)", quote(r.Type), orList(registerTypes))
	}
	if r.WordOrder != WordOrderBig && r.WordOrder != WordOrderLittle {
		v.add(p+".word_order", "unknown word_order %s (want big or little)", quote(r.WordOrder))
	}
	if state {
		if r.Encoding != EncodingIndex && r.Encoding != EncodingIndex1 && r.Encoding != EncodingASCII {
			v.add(p+".encoding", "unknown encoding %s (want index, index1 or ascii)", quote(r.Encoding))
		}
		if typeOK && r.Type == TypeFloat32 {
			v.add(p+".type", "float32 cannot hold a state; use an integer type such as uint16")
		}
		return
	}
	if !(r.Scale > 0) || math.IsInf(r.Scale, 1) {
		v.add(p+".scale", "must be > 0, got %s", fmtFloat(r.Scale))
	}
	if r.Encoding != "" {
		v.add(p+".encoding", "only used on the state register")
	}
}

// CheckPins reports every configured GPIO line for which exists returns
// false, e.g. `stations[0].gpio.contactor.pin: no GPIO line "GPIO99" on
// this host`. It is separate from Validate because a configuration is also
// checked on machines that are not its target; `sitelink config check`
// runs it on the target with a lookup into the host's GPIO registry.
// exists must not be nil. Empty pin names are left to Validate. The
// problems carry no line: the Edge no longer knows its file.
func (e *Edge) CheckPins(exists func(name string) bool) Problems {
	var probs Problems
	for i, s := range e.Stations {
		if s.GPIO == nil {
			continue
		}
		for _, np := range s.GPIO.pins() {
			if np.pin.Pin == "" || exists(np.pin.Pin) {
				continue
			}
			probs = append(probs, Problem{
				Path:   fmt.Sprintf("stations[%d].gpio.%s.pin", i, np.key),
				Reason: fmt.Sprintf("no GPIO line %s on this host", quote(np.pin.Pin)),
			})
		}
	}
	return probs
}
