package config

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/sitelink/sitelink/daemon/nayax"
	"github.com/sitelink/sitelink/store"
)

// Values of the enumerated keys. Other packages compare against these rather
// than spelling the strings again.
const (
	DriverSim    = "sim"    // simulated station, controlled through the local API
	DriverGPIO   = "gpio"   // contactor and inputs on GPIO lines; energy from a Modbus meter
	DriverModbus = "modbus" // station controller on a Modbus RTU bus

	FlowPreAuthorization = "pre-authorization" // card first, then the driver plugs in
	FlowPreSelection     = "pre-selection"     // driver picks a station on the terminal first

	// How a terminal starts and stops sessions (Terminal.Start, .Stop):
	// the integrator starts (Remote Start: TriggerTransaction), or the
	// consumer picks a station on the terminal and taps (Device Start:
	// StartSession, InfoQuery, TransactionNotify); Nayax matches a stop
	// card itself (StopCallback) or leaves that to us (StopNotify).
	StartRemote  = "remote"
	StartDevice  = "device"
	StopCallback = "callback"
	StopNotify   = "notify"

	VehiclePresent = "present" // simulated vehicle plugged in at start
	VehicleAbsent  = "absent"  // simulated connector empty at start
)

// Edge is the edge daemon's configuration (DESIGN.md §5).
type Edge struct {
	Node      Node       `yaml:"node"`
	MQTT      MQTT       `yaml:"mqtt"`
	Storage   Storage    `yaml:"storage"`
	Terminals []Terminal `yaml:"terminals"`
	Buses     []Bus      `yaml:"buses"` // serial buses, named by meters and modbus stations
	Stations  []Station  `yaml:"stations"`
	Policy    Policy     `yaml:"policy"`
	Tariff    Tariff     `yaml:"tariff"`
}

// Node identifies this site controller and where it keeps its state.
type Node struct {
	ID        string `yaml:"id"`         // MQTT topic level naming this node
	DataDir   string `yaml:"data_dir"`   // holds the bbolt ledger
	APISocket string `yaml:"api_socket"` // local API for the CLI and the sim driver
	// MetricsListen, when set (host:port), also serves /metrics over TCP
	// for a Prometheus that cannot reach the API socket. Empty: socket only.
	MetricsListen string `yaml:"metrics_listen"`
}

// MQTT is the link to the broker.
type MQTT struct {
	Broker         string   `yaml:"broker"`          // URL, e.g. tcp://127.0.0.1:1883
	TopicPrefix    string   `yaml:"topic_prefix"`    // e.g. sitelink/v1
	Group          string   `yaml:"group"`           // shared-subscription group
	Username       string   `yaml:"username"`        // empty: anonymous
	PasswordFile   string   `yaml:"password_file"`   // file holding the password, never the password itself
	TLS            TLS      `yaml:"tls"`             // client TLS; only with a TLS scheme
	KeepAlive      Duration `yaml:"keepalive"`       // MQTT keep-alive, whole seconds
	ConnectTimeout Duration `yaml:"connect_timeout"` // one connection attempt
	ReconnectMin   Duration `yaml:"reconnect_min"`   // first back-off after a lost link
	ReconnectMax   Duration `yaml:"reconnect_max"`   // back-off ceiling
}

// Storage is what the controller keeps on its disk: how long finished
// sessions stay in the ledger, and when the ledger file is compacted. It
// is read when the ledger opens, before the fleet's configuration, so
// only the local file sets it.
type Storage struct {
	// Retention is how long a session whose money is final (settled,
	// cancelled, declined, closed) stays in the ledger after its last
	// change, before it moves to the archive under data_dir/archive.
	// Sessions awaiting reconciliation never move. 0 keeps every session
	// in the ledger.
	Retention Duration `yaml:"retention"`
	// CompactFreePercent: at start, the ledger file is compacted when at
	// least this percentage of it is free space and it is at least
	// CompactMinMB megabytes (MiB) large. 0 never compacts.
	CompactFreePercent int `yaml:"compact_free_percent"`
	CompactMinMB       int `yaml:"compact_min_mb"`
}

// Limits of the storage section.
const (
	// MinRetention keeps a session long after Nayax's late callbacks
	// (ExternalSettlement's 48 h, a settlement's retries over 24 h, a
	// Cortina Cancel after a settlement) could still name it.
	MinRetention = 7 * 24 * time.Hour
	// DefaultRetention is three months: a quarter's reconciliation.
	DefaultRetention = 90 * 24 * time.Hour
)

// TLS holds the files for a TLS connection to the broker.
type TLS struct {
	CAFile     string `yaml:"ca_file"`     // empty: system roots
	CertFile   string `yaml:"cert_file"`   // client certificate, with KeyFile
	KeyFile    string `yaml:"key_file"`    // client key, with CertFile
	ServerName string `yaml:"server_name"` // overrides the broker host for verification
}

// Terminal is one Nayax payment terminal and the stations it pays for.
// Nayax names a terminal by machine id or by hardware serial depending on
// the API, so either (or both) may be configured.
type Terminal struct {
	MachineID int64    `yaml:"machine_id"`
	HwSerial  string   `yaml:"hw_serial"` // kept as written; leading zeros do not matter when matching
	Flow      string   `yaml:"flow"`      // FlowPreAuthorization or FlowPreSelection
	Stations  []string `yaml:"stations"`  // station numbers
	// Start and Stop are the flows the terminal is set up for in Nayax's
	// back office: StartRemote (default) or StartDevice, StopCallback
	// (default) or StopNotify. Device Start is pre-authorization only.
	Start string `yaml:"start"`
	Stop  string `yaml:"stop"`
	// PreauthAmount is what a Device Start pre-authorizes (InfoQuery's
	// Amount), in the currency's units; 0: policy.start_amount.
	PreauthAmount float64 `yaml:"preauth_amount"`
}

// DeviceStart reports whether the consumer starts at the terminal.
func (t Terminal) DeviceStart() bool { return t.Start == StartDevice }

// StopsByNotify reports whether Nayax sends StopNotify for a stop card
// at this terminal.
func (t Terminal) StopsByNotify() bool { return t.Stop == StopNotify }

// Station is one charging point. Exactly the block that matches Driver is
// set (Sim, GPIO or Modbus); Meter may accompany any of them.
type Station struct {
	Number string  `yaml:"number"` // as shown to the driver; an MQTT topic level
	Driver string  `yaml:"driver"` // DriverSim, DriverGPIO or DriverModbus
	Sim    *Sim    `yaml:"sim"`    // only for DriverSim; ParseEdge fills defaults when absent
	GPIO   *GPIO   `yaml:"gpio"`   // only for DriverGPIO, and required there
	Modbus *Modbus `yaml:"modbus"` // only for DriverModbus, and required there
	// Meter is an energy meter on a bus. When set, its readings replace
	// the driver's own energy and power: a GPIO station has none, so it
	// needs one; a modbus station needs one unless Modbus.Energy is set.
	Meter *Meter `yaml:"meter"`
	// MaxPowerKW is the most this station can deliver, so that energy
	// readings beyond it (a misread register, a wrong scale) are caught
	// as implausible instead of billed. 0 means DefaultMaxPowerKW; use
	// PowerLimitKW to read it.
	MaxPowerKW float64 `yaml:"max_power_kw"`
	// PreauthAmount is what a Device Start of this station
	// pre-authorizes, over its terminal's preauth_amount; 0: the
	// terminal's.
	PreauthAmount float64 `yaml:"preauth_amount"`
}

// PowerLimitKW returns MaxPowerKW, or DefaultMaxPowerKW when it is 0 (a
// Station built in code rather than parsed).
func (s Station) PowerLimitKW() float64 {
	if s.MaxPowerKW == 0 {
		return DefaultMaxPowerKW
	}
	return s.MaxPowerKW
}

// Sim configures a simulated station.
type Sim struct {
	Vehicle   string  `yaml:"vehicle"`    // VehiclePresent or VehicleAbsent at start
	PowerKW   float64 `yaml:"power_kw"`   // charging power while the contactor is closed
	TimeScale float64 `yaml:"time_scale"` // >1 makes simulated energy accrue faster than wall time
}

// Policy holds the session engine's limits.
type Policy struct {
	PlugTimeout      Duration `yaml:"plug_timeout"`      // authorized but no vehicle: cancel after this
	MinEnergyWh      float64  `yaml:"min_energy_wh"`     // below this a session is cancelled, not settled
	ContactorTimeout Duration `yaml:"contactor_timeout"` // contactor feedback deadline before faulting
	EnergyCheckpoint Duration `yaml:"energy_checkpoint"` // how often a running session's energy is committed
	// BudgetStopAt stops a session when the price of its energy reaches
	// this percentage of the authorized amount, so that what it settles
	// never falls short of what was delivered: the energy of one engine
	// tick (250 ms at the station's power) must fit in the rest.
	BudgetStopAt float64 `yaml:"budget_stop_at"`
	// Remote Start: the amount pre-authorized when a start names none,
	// how long the terminal waits for a card (TriggerTransaction's
	// TransactionTimeout), and how long a requested session waits for
	// Nayax's callback beyond that before it is closed.
	StartAmount    float64  `yaml:"start_amount"`
	TriggerTimeout Duration `yaml:"trigger_timeout"`
	// Reservation is how long an InfoQuery that found a station free
	// keeps it for that transaction (so that two consumers cannot pay
	// for one station): until its TransactionNotify, this time, or the
	// station being used otherwise.
	Reservation Duration `yaml:"reservation"`
	// ResultTimeout is how long a settlement or cancel request waits for
	// Nayax's answer (through the relay) before it is sent again.
	ResultTimeout Duration `yaml:"result_timeout"`
	// RetryMin and RetryMax bound the backoff after Nayax failed a request
	// (no answer, or a "try again" code such as 50).
	RetryMin Duration `yaml:"retry_min"`
	RetryMax Duration `yaml:"retry_max"`
}

// Tariff is the price a session is settled at.
type Tariff struct {
	Currency     string  `yaml:"currency"`      // ISO 4217, e.g. EUR
	DecimalPlace int     `yaml:"decimal_place"` // minor-unit digits used by Nayax
	PricePerKWh  float64 `yaml:"price_per_kwh"` // in Currency units
	SessionFee   float64 `yaml:"session_fee"`   // added once per settled session
	// PosDisplay is the text a Device Start terminal shows before the
	// card (InfoQuery's PosDisplay: fields separated by ";"), with
	// {station}, {price}, {currency} and {fee} filled in; empty:
	// DefaultPosDisplay (and the fee when there is one). It must show
	// {price}: the price per kWh before the session starts (EU AFIR).
	PosDisplay string `yaml:"pos_display"`
}

// DefaultPosDisplay is Tariff.PosDisplay's default.
const DefaultPosDisplay = ";Charging Station:{station};Price:{price} {currency}/kWh;"

// Exact returns the tariff as a session records it when it starts
// (store.Tariff): price and fee in millionths of the currency unit,
// exactly as the operator wrote them (0.39 is 390000, not the double
// nearest to 0.39). Validate refuses a tariff for which it fails.
func (t Tariff) Exact() (store.Tariff, error) {
	price, err := store.ParseDecimal(store.FloatDecimal(t.PricePerKWh), store.PriceDecimals, store.MaxScaled)
	if err != nil {
		return store.Tariff{}, fmt.Errorf("tariff.price_per_kwh: %w", err)
	}
	fee, err := store.ParseDecimal(store.FloatDecimal(t.SessionFee), store.PriceDecimals, store.MaxScaled)
	if err != nil {
		return store.Tariff{}, fmt.Errorf("tariff.session_fee: %w", err)
	}
	st := store.Tariff{Currency: t.Currency, DecimalPlace: t.DecimalPlace, PricePerKWhMicro: price, SessionFeeMicro: fee}
	return st, nil
}

// Default returns a configuration with every default filled in, no
// terminals, no stations and an empty Node.ID (which has no sensible
// default: it must be unique in the fleet).
func Default() Edge {
	return Edge{
		Node: Node{
			DataDir:   "/var/lib/sitelink",
			APISocket: "/run/sitelink/api.sock",
		},
		MQTT: defaultMQTT(),
		Storage: Storage{
			Retention:          Duration(DefaultRetention),
			CompactFreePercent: 50,
			CompactMinMB:       32,
		},
		Policy: Policy{
			PlugTimeout:      Duration(120 * time.Second),
			MinEnergyWh:      10,
			ContactorTimeout: Duration(2 * time.Second),
			EnergyCheckpoint: Duration(10 * time.Second),
			BudgetStopAt:     98,
			StartAmount:      20,
			TriggerTimeout:   Duration(60 * time.Second),
			Reservation:      Duration(90 * time.Second),
			ResultTimeout:    Duration(90 * time.Second),
			RetryMin:         Duration(5 * time.Second),
			RetryMax:         Duration(10 * time.Minute),
		},
		Tariff: Tariff{
			Currency:     "EUR",
			DecimalPlace: 2,
		},
	}
}

// defaultMQTT is the mqtt section's defaults, the same for the edge and the
// relay: both must agree on the topic prefix out of the box.
func defaultMQTT() MQTT {
	return MQTT{
		Broker:         "tcp://127.0.0.1:1883",
		TopicPrefix:    "sitelink/v1",
		Group:          "default",
		KeepAlive:      Duration(30 * time.Second),
		ConnectTimeout: Duration(10 * time.Second),
		ReconnectMin:   Duration(time.Second),
		ReconnectMax:   Duration(60 * time.Second),
	}
}

// DefaultSim returns the settings a sim station gets when it has no sim
// block, and the base that a partial sim block is merged over.
func DefaultSim() Sim {
	return Sim{Vehicle: VehiclePresent, PowerKW: 7.4, TimeScale: 1}
}

func defaultTerminal() Terminal { return Terminal{Flow: FlowPreAuthorization} }

func defaultStation() Station { return Station{Driver: DriverSim, MaxPowerKW: DefaultMaxPowerKW} }

// ParseEdge reads an edge configuration: defaults first, the YAML merged
// over them, then Validate. Unknown keys, values of the wrong type and
// semantic problems are all collected; the error is then a Problems listing
// every one of them (a YAML syntax error yields a single Problem with its
// line). On error the returned *Edge is nil.
func ParseEdge(data []byte) (*Edge, error) {
	e := Default()
	if probs := parseInto(data, &e, e.fillSimDefaults); probs != nil {
		return nil, probs
	}
	return &e, nil
}

// Placeholder marks a value that the packaged template
// (/etc/sitelink/sitelink.yaml, configs/sitelink.yaml) leaves for the
// installer to set. A value holding it is refused wherever it appears, so
// an unedited template never starts: it would run a site with somebody
// else's node id, terminal and price.
const Placeholder = "CHANGE-ME"

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// validated is a configuration that parseInto can check after decoding.
type validated interface{ Validate() Problems }

// parseInto merges data over cfg (a pointer holding the defaults), runs
// complete (per-element defaults that depend on what was read), then
// cfg.Validate, and returns every problem found, or nil. It is the one
// parsing path for every kind of configuration, so they all report alike.
func parseInto(data []byte, cfg validated, complete func()) Problems {
	return parseChecked(data, cfg, complete, nil)
}

// parseChecked is parseInto, then host (when not nil): the checks of the
// files and devices the configuration names (hostCheck). Its problems get
// their lines like Validate's; one on a key that already has a problem is
// left out, as it judges a value that is wrong anyway.
func parseChecked(data []byte, cfg validated, complete func(), host func() Problems) Problems {
	d := newDecoder()
	if p := d.decodeDocument(data, cfg); p != nil {
		return Problems{*p}
	}
	if d.placeholders > 0 {
		// Said once, first (a problem without a line sorts first), so
		// that whoever starts an unedited template learns what it is.
		d.add(Problem{Reason: fmt.Sprintf("this is the packaged template, not yet edited: set the %d %s marked %s below, then run `sitelink config check` on the file", d.placeholders, plural(d.placeholders, "value", "values"), Placeholder)})
	}
	if complete != nil {
		complete()
	}
	if d.runaway != nil {
		// Reading stopped half-way; judging the half-read rest would
		// only add noise.
		return d.problems()
	}
	for _, p := range cfg.Validate() {
		if d.isFailed(p.Path) {
			// The value was already reported as undecodable; a second
			// problem about the default left in its place would mislead.
			continue
		}
		p.Line = d.lineFor(p.Path)
		d.add(p)
	}
	if host != nil {
		judged := map[string]bool{}
		for _, p := range d.probs {
			judged[p.Path] = true
		}
		for _, p := range host() {
			if judged[p.Path] || d.isFailed(p.Path) {
				continue
			}
			p.Line = d.lineFor(p.Path)
			d.add(p)
		}
	}
	return d.problems()
}

// LoadEdge reads and parses the file at path. A read error is wrapped with
// the operation and carries the path; a configuration problem is returned as
// ParseEdge's Problems, unwrapped and with their File set, so that it
// prints one "FILE:LINE: key: problem" per line. The files the
// configuration names are not read: see LoadEdgeChecked.
func LoadEdge(path string) (*Edge, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read edge config: %w", err)
	}
	e, err := ParseEdge(data)
	if probs, ok := err.(Problems); ok {
		return nil, probs.inFile(path)
	}
	return e, err
}

func (e *Edge) fillSimDefaults() {
	for i := range e.Stations {
		s := &e.Stations[i]
		if s.Driver == DriverSim && s.Sim == nil {
			sim := DefaultSim()
			s.Sim = &sim
		}
	}
}

// Bus returns the declared bus with the given name.
func (e *Edge) Bus(name string) (Bus, bool) {
	for _, b := range e.Buses {
		if b.Name == name {
			return b, true
		}
	}
	return Bus{}, false
}

// Station returns the station with the given number.
func (e *Edge) Station(number string) (Station, bool) {
	for _, s := range e.Stations {
		if s.Number == number {
			return s, true
		}
	}
	return Station{}, false
}

// TerminalFor returns the terminal that a Nayax message names, by machine id
// or by hardware serial (zero or empty arguments match nothing). Serials
// compare by nayax.NormSerial: Nayax sends them sometimes with and
// sometimes without their leading zeros. A machine id match wins over a
// serial match. Whether the message's other identifier agrees is
// Conflict's question.
func (e *Edge) TerminalFor(machineID int64, hwSerial string) (Terminal, bool) {
	if machineID > 0 {
		for _, t := range e.Terminals {
			if t.MachineID == machineID {
				return t, true
			}
		}
	}
	if want := nayax.NormSerial(hwSerial); want != "" {
		for _, t := range e.Terminals {
			if nayax.NormSerial(t.HwSerial) == want {
				return t, true
			}
		}
	}
	return Terminal{}, false
}

// Conflict returns the Nayax field that names another terminal than t:
// "MachineId" when the message and t both have a machine id and they
// differ, "HwSerial" when both have a serial and nayax.SameSerial says
// they differ, else "". An identifier that either side lacks (0, or a
// serial that is empty or only spaces) is no evidence either way. A
// session's terminal is checked as Terminal{MachineID: s.MachineID,
// HwSerial: s.HwSerial}: a stop or cancel that names another terminal
// must not end someone else's session.
func (t Terminal) Conflict(machineID int64, hwSerial string) string {
	switch {
	case machineID != 0 && t.MachineID != 0 && machineID != t.MachineID:
		return "MachineId"
	case nayax.NormSerial(hwSerial) != "" && nayax.NormSerial(t.HwSerial) != "" && !nayax.SameSerial(hwSerial, t.HwSerial):
		return "HwSerial"
	}
	return ""
}

// TerminalOf returns the terminal that pays for the numbered station
// (validation lets a station belong to one terminal at most).
func (e *Edge) TerminalOf(station string) (Terminal, bool) {
	for _, t := range e.Terminals {
		if t.HasStation(station) {
			return t, true
		}
	}
	return Terminal{}, false
}

// HasStation reports whether the terminal pays for the numbered station.
func (t Terminal) HasStation(number string) bool {
	return slices.Contains(t.Stations, number)
}

// DBPath is the bbolt ledger's file inside the data directory.
func (e *Edge) DBPath() string {
	return filepath.Join(e.Node.DataDir, "sitelink.db")
}

// ArchiveDir is where sessions go when they leave the ledger
// (storage.retention): one JSON Lines file per month.
func (e *Edge) ArchiveDir() string {
	return filepath.Join(e.Node.DataDir, "archive")
}

// StoreOptions returns o with the ledger options this configuration
// sets: the archive directory and the compaction threshold.
func (e *Edge) StoreOptions(o store.Options) store.Options {
	o.ArchiveDir = e.ArchiveDir()
	o.CompactFreePercent = e.Storage.CompactFreePercent
	o.CompactMinBytes = int64(e.Storage.CompactMinMB) << 20
	return o
}
