package config

import (
	"errors"
	"fmt"
	"math"
	"net"
	"net/url"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/sitelink/sitelink/daemon/nayax"
	"github.com/sitelink/sitelink/store"
)

// Limits checked by Validate.
const (
	maxPowerKW    = 350  // the most a DC charger delivers today; more is a typo
	maxTimeScale  = 3600 // one simulated hour per second is already a blur
	maxDecimals   = 3    // ISO 4217 minor units go up to 3 (BHD, KWD…)
	maxSocketPath = 107  // sun_path is 108 bytes including the NUL
	maxLevelLen   = 64
	maxKeepAlive  = 65535 * time.Second // MQTT's keep-alive is a 16-bit number of seconds
)

var (
	topicLevelRE = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)
	currencyRE   = regexp.MustCompile(`^[A-Z]{3}$`)
)

var brokerSchemes = map[string]bool{
	"tcp": false, "mqtt": false, "ws": false, // value: scheme uses TLS
	"ssl": true, "tls": true, "mqtts": true, "wss": true,
}

type validator struct{ probs Problems }

func (v *validator) add(path, format string, args ...any) {
	v.probs = append(v.probs, Problem{Path: path, Reason: fmt.Sprintf(format, args...)})
}

// Validate checks the meaning of a configuration, whatever built it; the
// syntax (unknown keys, types) is ParseEdge's job. It returns every problem
// found, in the order of the file's sections, or nil.
func (e *Edge) Validate() Problems {
	v := &validator{}
	e.validateNode(v)
	validateMQTT(v, e.MQTT)
	e.validateStorage(v)
	e.validateTerminals(v)
	e.validateBuses(v)
	e.validateStations(v)
	e.validatePolicy(v)
	e.validateTariff(v)
	if len(v.probs) == 0 {
		return nil
	}
	return v.probs
}

// checkTopicLevel validates a value that becomes one MQTT topic level. The
// character set is stricter than MQTT's so that ids are also safe in file
// names, logs and shell commands.
func (v *validator) checkTopicLevel(path, what, s string) {
	switch {
	case s == "":
		v.add(path, "required")
	case !topicLevelRE.MatchString(s):
		v.add(path, "invalid %s %s: use 1 to %d letters, digits, '.', '_' or '-' (it is an MQTT topic level)", what, quote(s), maxLevelLen)
	}
}

func (v *validator) checkAbsPath(path, s string) bool {
	switch {
	case s == "":
		v.add(path, "required")
	case !filepath.IsAbs(s):
		v.add(path, "must be an absolute path, got %s", quote(s))
	default:
		return true
	}
	return false
}

func (v *validator) checkPositive(path string, d Duration) {
	if d <= 0 {
		v.add(path, "must be > 0, got %s", quote(d.String()))
	}
}

func (v *validator) checkNonNegative(path string, f float64) {
	if !(f >= 0) || math.IsInf(f, 1) {
		v.add(path, "must be >= 0, got %s", fmtFloat(f))
	}
}

func fmtFloat(f float64) string { return strconv.FormatFloat(f, 'g', -1, 64) }

func (e *Edge) validateNode(v *validator) {
	v.checkTopicLevel("node.id", "node id", e.Node.ID)
	v.checkAbsPath("node.data_dir", e.Node.DataDir)
	if v.checkAbsPath("node.api_socket", e.Node.APISocket) && len(e.Node.APISocket) > maxSocketPath {
		v.add("node.api_socket", "too long for a unix socket (%d bytes, at most %d)", len(e.Node.APISocket), maxSocketPath)
	}
	if e.Node.MetricsListen != "" {
		v.checkListen("node.metrics_listen", e.Node.MetricsListen)
	}
}

// validateMQTT checks the mqtt section, which the edge and the relay share.
// The client id is not part of it: it is node.id or relay.id.
func validateMQTT(v *validator, m MQTT) {
	usesTLS := v.checkBroker(m.Broker)

	switch p := m.TopicPrefix; {
	case p == "":
		v.add("mqtt.topic_prefix", "required")
	case strings.ContainsAny(p, "+#"):
		v.add("mqtt.topic_prefix", "must not contain the wildcards '+' or '#', got %s", quote(p))
	case strings.HasPrefix(p, "/") || strings.HasSuffix(p, "/"):
		v.add("mqtt.topic_prefix", "must not start or end with '/', got %s", quote(p))
	case strings.HasPrefix(p, "$"):
		v.add("mqtt.topic_prefix", "must not start with '$' (reserved by brokers), got %s", quote(p))
	case strings.Contains(p, "//"):
		v.add("mqtt.topic_prefix", "must not contain an empty level ('//'), got %s", quote(p))
	case strings.ContainsFunc(p, unicode.IsControl):
		v.add("mqtt.topic_prefix", "must not contain control characters, got %s", quote(p))
	}
	v.checkTopicLevel("mqtt.group", "group", m.Group)

	if m.PasswordFile != "" && m.Username == "" {
		v.add("mqtt.password_file", "set without mqtt.username")
	}
	t := m.TLS
	switch {
	case t.CertFile != "" && t.KeyFile == "":
		v.add("mqtt.tls.key_file", "required when cert_file is set")
	case t.KeyFile != "" && t.CertFile == "":
		v.add("mqtt.tls.cert_file", "required when key_file is set")
	}
	if usesTLS != nil && !*usesTLS && (t != TLS{}) {
		// paho ignores the TLS settings on a plain scheme: the operator
		// would believe the link is encrypted when it is not.
		v.add("mqtt.tls", "set, but broker %s does not use TLS (use ssl://, mqtts:// or wss://)", quote(m.Broker))
	}

	switch {
	case m.KeepAlive < Duration(time.Second):
		v.add("mqtt.keepalive", "must be at least 1s, got %s", quote(m.KeepAlive.String()))
	case m.KeepAlive > Duration(maxKeepAlive):
		v.add("mqtt.keepalive", "must be at most %s (MQTT limit), got %s", maxKeepAlive, quote(m.KeepAlive.String()))
	}
	v.checkPositive("mqtt.connect_timeout", m.ConnectTimeout)
	v.checkPositive("mqtt.reconnect_min", m.ReconnectMin)
	v.checkPositive("mqtt.reconnect_max", m.ReconnectMax)
	if m.ReconnectMin > 0 && m.ReconnectMax > 0 && m.ReconnectMin > m.ReconnectMax {
		v.add("mqtt.reconnect_min", "must not exceed reconnect_max (%s), got %s", quote(m.ReconnectMax.String()), quote(m.ReconnectMin.String()))
	}
}

// checkBroker validates the broker URL and reports whether its scheme uses
// TLS (nil when the URL is unusable).
func (v *validator) checkBroker(b string) *bool {
	const path = "mqtt.broker"
	if b == "" {
		v.add(path, "required")
		return nil
	}
	u, err := url.Parse(b)
	if err != nil {
		v.add(path, "invalid URL %s", quote(b))
		return nil
	}
	tls, ok := brokerSchemes[u.Scheme]
	if !ok {
		v.add(path, "unsupported scheme in %s (want tcp, ssl, tls, mqtt, mqtts, ws or wss)", quote(b))
		return nil
	}
	if u.User != nil {
		v.add(path, "must not carry credentials; use mqtt.username and mqtt.password_file")
	}
	host, port, err := net.SplitHostPort(u.Host)
	if err != nil || host == "" {
		v.add(path, "want %s://host:port, got %s", u.Scheme, quote(b))
		return &tls
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		v.add(path, "invalid port %s", quote(port))
	}
	return &tls
}

func (e *Edge) validateTerminals(v *validator) {
	stations := make(map[string]bool, len(e.Stations))
	for _, s := range e.Stations {
		stations[s.Number] = true
	}
	machineIDs := map[int64]bool{}
	serials := map[string]bool{}
	claimedBy := map[string]string{} // station number -> terminal path
	for i, t := range e.Terminals {
		p := fmt.Sprintf("terminals[%d]", i)
		switch {
		case t.MachineID < 0:
			v.add(p+".machine_id", "must be > 0, got %d", t.MachineID)
		case t.MachineID == 0 && t.HwSerial == "":
			v.add(p, "machine_id or hw_serial required")
		case t.MachineID > 0 && machineIDs[t.MachineID]:
			v.add(p+".machine_id", "duplicate machine_id %d", t.MachineID)
		}
		machineIDs[t.MachineID] = true
		if t.HwSerial != "" {
			ns := nayax.NormSerial(t.HwSerial)
			switch {
			case len(t.HwSerial) > maxLevelLen || strings.ContainsFunc(t.HwSerial, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }):
				v.add(p+".hw_serial", "invalid hw_serial %s", quote(t.HwSerial))
			case serials[ns]:
				v.add(p+".hw_serial", "duplicate hw_serial %s (leading zeros and case are ignored)", quote(t.HwSerial))
			}
			serials[ns] = true
		}
		if t.Flow != FlowPreAuthorization && t.Flow != FlowPreSelection {
			v.add(p+".flow", "unknown flow %s (want %s or %s)", quote(t.Flow), FlowPreAuthorization, FlowPreSelection)
		}
		switch t.Start {
		case "", StartRemote:
		case StartDevice:
			if t.Flow != FlowPreAuthorization {
				v.add(p+".start", "Device Start is pre-authorization only; this terminal's flow is %s", quote(t.Flow))
			}
		default:
			v.add(p+".start", "unknown start %s (want %s or %s)", quote(t.Start), StartRemote, StartDevice)
		}
		switch t.Stop {
		case "", StopCallback, StopNotify:
		default:
			v.add(p+".stop", "unknown stop %s (want %s or %s)", quote(t.Stop), StopCallback, StopNotify)
		}
		switch {
		case t.PreauthAmount < 0 || math.IsInf(t.PreauthAmount, 0) || math.IsNaN(t.PreauthAmount):
			v.add(p+".preauth_amount", "must be > 0 (or 0 for policy.start_amount), got %s", fmtFloat(t.PreauthAmount))
		case t.PreauthAmount > 0 && t.Start != StartDevice:
			v.add(p+".preauth_amount", "only a Device Start terminal (start: %s) pre-authorizes an amount of its own; remote starts use policy.start_amount", StartDevice)
		case t.PreauthAmount > 0:
			if dp := e.Tariff.DecimalPlace; dp >= 0 && dp <= maxDecimals {
				v.checkExact(p+".preauth_amount", t.PreauthAmount, dp, "tariff.decimal_place")
			}
		}
		if len(t.Stations) == 0 {
			v.add(p+".stations", "at least one station required")
		}
		mine := map[string]bool{}
		for j, s := range t.Stations {
			sp := fmt.Sprintf("%s.stations[%d]", p, j)
			switch {
			case !stations[s]:
				v.add(sp, "unknown station %s", quote(s))
			case mine[s]:
				v.add(sp, "station %s listed twice", quote(s))
			case claimedBy[s] != "":
				v.add(sp, "station %s already claimed by %s", quote(s), claimedBy[s])
			default:
				claimedBy[s] = p
			}
			mine[s] = true
		}
	}
}

func (e *Edge) validateStations(v *validator) {
	if len(e.Stations) == 0 {
		v.add("stations", "at least one station required")
	}
	for i, s := range e.Stations {
		p := fmt.Sprintf("stations[%d].preauth_amount", i)
		term, _ := e.TerminalOf(s.Number)
		switch {
		case s.PreauthAmount == 0:
		case s.PreauthAmount < 0 || math.IsInf(s.PreauthAmount, 0) || math.IsNaN(s.PreauthAmount):
			v.add(p, "must be > 0 (or 0 for its terminal's), got %s", fmtFloat(s.PreauthAmount))
		case !term.DeviceStart():
			v.add(p, "only a station of a Device Start terminal (start: %s) pre-authorizes an amount of its own", StartDevice)
		default:
			if dp := e.Tariff.DecimalPlace; dp >= 0 && dp <= maxDecimals {
				v.checkExact(p, s.PreauthAmount, dp, "tariff.decimal_place")
			}
		}
	}
	seen := map[string]bool{}
	hw := e.newHWCheck()
	for i, s := range e.Stations {
		p := fmt.Sprintf("stations[%d]", i)
		v.checkTopicLevel(p+".number", "station number", s.Number)
		if s.Number != "" && seen[s.Number] {
			v.add(p+".number", "duplicate station number %s", quote(s.Number))
		}
		seen[s.Number] = true

		switch s.Driver {
		case DriverSim:
			if s.Sim != nil {
				validateSim(v, p+".sim", *s.Sim)
			}
		case DriverGPIO:
			if s.GPIO == nil {
				v.add(p+".gpio", "required with driver %s", DriverGPIO)
			}
			if s.Meter == nil {
				// A session's bill is its energy; GPIO lines cannot
				// measure any, so without a meter nothing is billed.
				v.add(p+".meter", "required with driver %s (GPIO lines cannot measure energy)", DriverGPIO)
			}
		case DriverModbus:
			if s.Modbus == nil {
				v.add(p+".modbus", "required with driver %s", DriverModbus)
			} else if s.Meter == nil && s.Modbus.Energy == nil {
				v.add(p+".meter", "required unless modbus.energy is set (without an energy reading nothing is billed)")
			}
		default:
			v.add(p+".driver", "unknown driver %s (want %s, %s or %s)", quote(s.Driver), DriverSim, DriverGPIO, DriverModbus)
		}
		for _, b := range []struct {
			key, driver string
			set         bool
		}{
			{"sim", DriverSim, s.Sim != nil},
			{"gpio", DriverGPIO, s.GPIO != nil},
			{"modbus", DriverModbus, s.Modbus != nil},
		} {
			if b.set && s.Driver != b.driver {
				v.add(p+"."+b.key, "only used with driver %s (this station's driver is %s)", b.driver, quote(s.Driver))
			}
		}
		if !(s.MaxPowerKW >= 0 && s.MaxPowerKW <= maxPowerKW) {
			v.add(p+".max_power_kw", "must be > 0 and <= %d, got %s", maxPowerKW, fmtFloat(s.MaxPowerKW))
		} else if s.Driver == DriverSim && s.Sim != nil && s.Sim.PowerKW > s.PowerLimitKW() && s.Sim.PowerKW <= maxPowerKW {
			// The sim would deliver energy that the plausibility check
			// then refuses.
			v.add(p+".sim.power_kw", "exceeds the station's max_power_kw (%s); raise max_power_kw", fmtFloat(s.PowerLimitKW()))
		}
		hw.station(v, p, s)
	}
}

func validateSim(v *validator, p string, s Sim) {
	if s.Vehicle != VehiclePresent && s.Vehicle != VehicleAbsent {
		v.add(p+".vehicle", "unknown vehicle state %s (want %s or %s)", quote(s.Vehicle), VehiclePresent, VehicleAbsent)
	}
	if !(s.PowerKW > 0 && s.PowerKW <= maxPowerKW) {
		v.add(p+".power_kw", "must be > 0 and <= %d, got %s", maxPowerKW, fmtFloat(s.PowerKW))
	}
	if !(s.TimeScale >= 1 && s.TimeScale <= maxTimeScale) {
		v.add(p+".time_scale", "must be between 1 and %d, got %s", maxTimeScale, fmtFloat(s.TimeScale))
	}
}

func (e *Edge) validateStorage(v *validator) {
	s := e.Storage
	if r := s.Retention; r != 0 && r < Duration(MinRetention) {
		v.add("storage.retention", "must be at least 7d (Nayax's late callbacks must still find their session), or 0 to keep every session in the ledger, got %s", quote(r.String()))
	}
	if p := s.CompactFreePercent; p != 0 && (p < 10 || p > 90) {
		v.add("storage.compact_free_percent", "must be 0 (never compact) or between 10 and 90, got %d", p)
	}
	if s.CompactMinMB < 0 {
		v.add("storage.compact_min_mb", "must be >= 0, got %d", s.CompactMinMB)
	}
}

func (e *Edge) validatePolicy(v *validator) {
	p := e.Policy
	v.checkPositive("policy.plug_timeout", p.PlugTimeout)
	v.checkNonNegative("policy.min_energy_wh", p.MinEnergyWh)
	v.checkPositive("policy.contactor_timeout", p.ContactorTimeout)
	v.checkPositive("policy.energy_checkpoint", p.EnergyCheckpoint)
	if !(p.BudgetStopAt > 0 && p.BudgetStopAt <= 100) {
		v.add("policy.budget_stop_at", "must be a percentage of the authorized amount above 0 and at most 100, got %s", fmtFloat(p.BudgetStopAt))
	}
	if !(p.StartAmount > 0) || math.IsInf(p.StartAmount, 1) {
		v.add("policy.start_amount", "must be > 0, got %s", fmtFloat(p.StartAmount))
	} else if dp := e.Tariff.DecimalPlace; dp >= 0 && dp <= maxDecimals {
		v.checkExact("policy.start_amount", p.StartAmount, dp, "tariff.decimal_place")
	}
	v.checkPositive("policy.trigger_timeout", p.TriggerTimeout)
	if p.TriggerTimeout > 0 && (p.TriggerTimeout%Duration(time.Second) != 0 || p.TriggerTimeout > Duration(time.Hour)) {
		v.add("policy.trigger_timeout", "must be whole seconds, at most 1h (Nayax's TransactionTimeout), got %s", quote(p.TriggerTimeout.String()))
	}
	v.checkPositive("policy.reservation", p.Reservation)
	v.checkPositive("policy.result_timeout", p.ResultTimeout)
	v.checkPositive("policy.retry_min", p.RetryMin)
	v.checkPositive("policy.retry_max", p.RetryMax)
	if p.RetryMin > p.RetryMax {
		v.add("policy.retry_min", "must not exceed retry_max (%s), got %s", quote(p.RetryMax.String()), quote(p.RetryMin.String()))
	}
}

func (e *Edge) validateTariff(v *validator) {
	t := e.Tariff
	if !currencyRE.MatchString(t.Currency) {
		v.add("tariff.currency", "invalid currency %s: want a 3-letter upper-case ISO 4217 code such as \"EUR\"", quote(t.Currency))
	}
	if t.DecimalPlace < 0 || t.DecimalPlace > maxDecimals {
		v.add("tariff.decimal_place", "must be between 0 and %d, got %d", maxDecimals, t.DecimalPlace)
	}
	v.checkNonNegative("tariff.price_per_kwh", t.PricePerKWh)
	v.checkNonNegative("tariff.session_fee", t.SessionFee)
	if t.PricePerKWh == 0 && !(t.SessionFee > 0) {
		// Every session would cost 0: each ends with a cancel, energy
		// given away. A free site is not a payment site.
		v.add("tariff.price_per_kwh", "must be > 0 unless tariff.session_fee is: every session would cost 0.00 (its hold cancelled, the energy given away)")
	}
	v.checkExact("tariff.price_per_kwh", t.PricePerKWh, store.PriceDecimals, "millionths of the currency unit")
	v.checkExact("tariff.session_fee", t.SessionFee, store.PriceDecimals, "millionths of the currency unit")
	if f := t.PosDisplay; f != "" {
		rest := f
		for _, field := range PosDisplayFields {
			rest = strings.ReplaceAll(rest, field, "")
		}
		switch {
		case len(f) > maxPosDisplay:
			v.add("tariff.pos_display", "longer than %d characters", maxPosDisplay)
		case !strings.Contains(f, "{price}"):
			v.add("tariff.pos_display", "must show {price}: the price per kWh before the session starts (EU AFIR)")
		case strings.ContainsAny(rest, "{}"):
			v.add("tariff.pos_display", "unknown field in %s: use %s", quote(f), strings.Join(PosDisplayFields, ", "))
		case strings.ContainsFunc(f, unicode.IsControl):
			v.add("tariff.pos_display", "no control characters")
		}
	}
}

// PosDisplayFields are the fields Tariff.PosDisplay may use.
var PosDisplayFields = []string{"{station}", "{price}", "{currency}", "{fee}"}

// maxPosDisplay bounds the terminal text; a terminal's screen shows a few
// short lines.
const maxPosDisplay = 200

// checkExact refuses a non-negative amount or price that the ledger's
// integers cannot hold exactly (store/money.go): more decimals than
// places, or too large. Money is never rounded on its way in; the negative
// and NaN cases are checkNonNegative's.
func (v *validator) checkExact(path string, f float64, places int, unit string) {
	if !(f >= 0) || math.IsInf(f, 1) {
		return
	}
	_, err := store.ParseDecimal(store.FloatDecimal(f), places, store.MaxScaled)
	switch {
	case errors.Is(err, store.ErrTooPrecise):
		v.add(path, "must have at most %d decimals (%s), got %s", places, unit, store.FloatDecimal(f))
	case err != nil:
		v.add(path, "must be at most %s, got %s", store.FormatDecimal(store.MaxScaled, places), fmtFloat(f))
	}
}
