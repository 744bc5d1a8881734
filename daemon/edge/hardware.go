package edge

import (
	"sync"
	"time"

	"github.com/sitelink/sitelink/daemon/config"
	"github.com/sitelink/sitelink/hal"
	"github.com/sitelink/sitelink/hal/gpio"
	"github.com/sitelink/sitelink/hal/modbus"
)

var gpioInit = sync.OnceValue(gpio.Init)

// openGPIO builds a gpio station; its buttons reach the engine like the
// local API does (button).
func (ss *stationSet) openGPIO(sc config.Station) (hal.Station, error) {
	if err := gpioInit(); err != nil {
		// Not fatal by itself: Open names any line it cannot find, which
		// is the error a technician can act on.
		ss.log.Warn("gpio host drivers", "err", err)
	}
	g := sc.GPIO
	pin := func(p *config.GPIOPin) *gpio.Pin {
		if p == nil {
			return nil
		}
		return &gpio.Pin{Name: p.Pin, ActiveLow: p.ActiveLow, Debounce: p.Debounce.D(), Pull: gpio.Pull(p.Pull)}
	}
	number := sc.Number
	return gpio.Open(gpio.Config{
		Number:            number,
		Contactor:         *pin(&g.Contactor),
		ContactorFeedback: pin(g.ContactorFeedback),
		Vehicle:           pin(g.Vehicle),
		Charging:          pin(g.Charging),
		Fault:             pin(g.Fault),
		StartButton:       pin(g.StartButton),
		StopButton:        pin(g.StopButton),
		FeedbackTimeout:   g.FeedbackTimeout.D(),
		Logger:            ss.log.With("station", number),
		OnStart: func() {
			ss.button(number, "start", func(e *engine) error {
				_, err := e.startSession(number, "", time.Now())
				return err
			})
		},
		OnStop: func() {
			ss.button(number, "stop", func(e *engine) error { return e.stopStation(number, time.Now()) })
		},
	})
}

// openBus starts a bus. A port that is missing (a USB adapter not
// enumerated yet) or goes away later is no error: the bus retries it on
// its own goroutine, and meanwhile the stations on it are faulted by
// their failing transactions ("rs485-1 (/dev/ttyUSB0): no such file or
// directory") while every other station, MQTT and the API go on. Only a
// bad bus configuration fails (Validate has caught it before).
func (ss *stationSet) openBus(b config.Bus) (*modbus.Bus, error) {
	return modbus.StartBus(modbus.BusConfig{Name: b.Name, Port: b.Port, Baud: b.Baud, Parity: b.Parity,
		StopBits: b.StopBits, DataBits: b.DataBits, Timeout: b.Timeout.D(), Gap: b.Gap.D(), Reopen: ss.reopen}, ss.log)
}

func register(r config.Register) modbus.Register {
	return modbus.Register{Function: byte(r.Function), Address: r.Address, Type: r.Type, WordOrder: r.WordOrder, Scale: r.Scale}
}

func registerPtr(r *config.Register) *modbus.Register {
	if r == nil {
		return nil
	}
	m := register(*r)
	return &m
}

// newMeter builds the meter of a station's meter block: a named profile
// (its registers replaced by any given in the block) or a generic one.
func (ss *stationSet) newMeter(sc config.Station) (*modbus.Meter, error) {
	m := sc.Meter
	p, ok := modbus.ProfileByName(m.Profile)
	if !ok {
		p = modbus.Profile{Name: m.Profile}
	}
	if m.Energy != nil {
		p.Energy = register(*m.Energy)
	}
	if m.Power != nil {
		p.Power = register(*m.Power)
	}
	return modbus.NewMeter(modbus.MeterConfig{Name: "station " + sc.Number, Bus: ss.buses[m.Bus], Unit: byte(m.Unit), Profile: p,
		Interval: m.Interval.D(), MaxPowerKW: sc.PowerLimitKW(), Logger: ss.log.With("station", sc.Number, "meter", m.Profile)})
}

// openModbus builds a charge controller station on its bus.
func (ss *stationSet) openModbus(cfg *config.Edge, sc config.Station) (hal.Station, error) {
	mb := sc.Modbus
	m := modbus.ControllerMap{State: register(mb.State), StateEncoding: mb.State.Encoding,
		Enable: modbus.Enable{Coil: mb.Enable.Coil, Address: mb.Enable.Address}}
	if p, ok := modbus.ControllerProfileByName(mb.Profile); ok {
		m = p.Map // validated: state and enable are not given with a profile
	}
	m.Energy, m.Power = registerPtr(mb.Energy), registerPtr(mb.Power)
	c := modbus.ControllerConfig{
		Number: sc.Number, Bus: ss.buses[mb.Bus], Unit: byte(mb.Unit), Map: m, MaxCurrentA: mb.MaxCurrentA,
		Interval: mb.Interval.D(), ConfirmTimeout: cfg.Policy.ContactorTimeout.D(), MaxPowerKW: sc.PowerLimitKW(),
		Logger: ss.log.With("station", sc.Number),
	}
	if sc.Meter != nil {
		m, err := ss.newMeter(sc)
		if err != nil {
			return nil, err
		}
		c.Meter = m // the controller polls it itself
	}
	return modbus.OpenController(c)
}

// metered gives a station (sim or gpio) the energy of its meter block: a
// broken meter faults that station, and only it.
type metered struct {
	hal.Station
	m *modbus.Meter
}

var _ hal.Station = metered{}

func (s metered) Read() hal.Reading {
	r := s.Station.Read()
	mr := s.m.Last()
	// Energy and power come from the meter only, never mixed with the
	// driver's own: the last good register while it fails, no power.
	r.EnergyWh, r.PowerW = mr.EnergyWh, 0
	switch {
	case mr.Err != nil:
		if r.Fault == "" {
			r.Fault = "meter: " + mr.Err.Error()
		}
	case !mr.Valid:
		if r.Fault == "" {
			r.Fault = "meter: no reading yet"
		}
	default:
		r.PowerW = mr.PowerW
	}
	return r
}

// busTimeout is the configured answer timeout of a bus.
func busTimeout(cfg *config.Edge, name string) time.Duration {
	if b, ok := cfg.Bus(name); ok {
		return b.Timeout.D()
	}
	return time.Second
}
