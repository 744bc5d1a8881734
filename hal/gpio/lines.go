package gpio

import (
	"encoding/json"
	"fmt"
	"reflect"
	"sync"

	"periph.io/x/conn/v3/driver/driverreg"
	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/gpio/gpioreg"
	"periph.io/x/conn/v3/pin"
	"periph.io/x/host/v3"
	"periph.io/x/host/v3/gpioioctl"
)

// ioctlDriver is the name periph registers its character-device driver
// under.
const ioctlDriver = "ioctl-gpio"

var (
	initOnce sync.Once
	initErr  error
)

// Init loads periph's host drivers once per process, which registers the
// machine's character-device GPIO lines in gpioreg under their kernel
// names. Call it before Open on real hardware; tests register gpiotest
// pins instead and never call it. It fails when the character-device
// driver found no GPIO chip (or cannot open one).
func Init() error {
	initOnce.Do(func() {
		st, err := host.Init()
		if err != nil {
			initErr = fmt.Errorf("init gpio: %w", err)
			return
		}
		for _, list := range [][]driverreg.DriverFailure{st.Failed, st.Skipped} {
			for _, f := range list {
				if f.D.String() == ioctlDriver {
					initErr = fmt.Errorf("init gpio: %s driver: %w", ioctlDriver, f.Err)
					return
				}
			}
		}
	})
	return initErr
}

// LineInfo describes one registered GPIO line for `sitelink hw`.
type LineInfo struct {
	Name   string // name in gpioreg, as Pin.Name takes it
	Number int    // the driver's number: the offset on its chip for character-device lines
	// Function is periph's function string ("In/High", "Out/Low", "OUT"
	// …), or empty when the line is not configured by this process.
	Function string
	// Level is "High" or "Low" (electrical), or empty when reading it
	// would reconfigure the line (see the package Caveats).
	Level string
	// Consumer is who held the line when Init ran, as the kernel
	// reported it (character-device lines only), e.g. "sitelink@812".
	Consumer string
	// Use names the open Station and role claiming the line in this
	// process, e.g. "station 5 contactor".
	Use string
}

// Lines lists every line registered in gpioreg, in natural name order,
// without reconfiguring any of them. Lines claimed by an open Station
// report the station's view (the settled input level, the commanded
// output level) rather than touching the hardware.
func Lines() ([]LineInfo, error) {
	pins := gpioreg.All()
	out := make([]LineInfo, 0, len(pins))
	for _, p := range pins {
		li := LineInfo{Name: p.Name(), Number: p.Number()}
		if !describeClaimed(p, &li) {
			if err := describe(p, &li); err != nil {
				return nil, fmt.Errorf("list gpio lines: %s: %w", li.Name, err)
			}
		}
		out = append(out, li)
	}
	return out, nil
}

// describe fills li for a line no Station claims.
func describe(p gpio.PinIO, li *LineInfo) error {
	if l, ok := realPin(p).(*gpioioctl.GPIOLine); ok {
		// gpioioctl reads a line that is not an input by re-requesting
		// it as an input with pull-up, and its Func reads outputs that
		// way too: only inputs are safe to read. The direction is not
		// exported except through MarshalJSON.
		li.Consumer = l.Consumer()
		b, err := l.MarshalJSON()
		if err != nil {
			return err
		}
		var d struct{ Direction string }
		if err := json.Unmarshal(b, &d); err != nil {
			return err
		}
		switch d.Direction {
		case "Input":
			li.Function = string(l.Func())
			li.Level = levelOfFunc(pin.Func(li.Function))
		case "Output":
			li.Function = string(gpio.OUT)
		}
		return nil
	}
	var f pin.Func
	if pf, ok := p.(pin.PinFunc); ok {
		f = pf.Func()
	} else {
		f = pin.Func(p.Function())
	}
	li.Function = string(f)
	li.Level = levelOfFunc(f)
	if li.Level == "" && (f == gpio.IN || f == gpio.OUT) {
		li.Level = p.Read().String()
	}
	return nil
}

func levelOfFunc(f pin.Func) string {
	switch f {
	case gpio.IN_HIGH, gpio.OUT_HIGH:
		return gpio.High.String()
	case gpio.IN_LOW, gpio.OUT_LOW:
		return gpio.Low.String()
	}
	return ""
}

// claims records which open Station uses which line, keyed by the real
// (unaliased) pin, so that two stations never share a line and Lines can
// answer from the station's state.
var claims = struct {
	sync.Mutex
	m map[any]claimRecord
}{m: map[any]claimRecord{}}

type claimRecord struct {
	s    *Station
	role string
}

// claimKey is the real pin, or its name for a (hypothetical) driver whose
// pin type cannot be a map key.
func claimKey(p gpio.PinIO) any {
	r := realPin(p)
	if reflect.TypeOf(r).Comparable() {
		return r
	}
	return r.Name()
}

func claim(p gpio.PinIO, s *Station, role string) error {
	claims.Lock()
	defer claims.Unlock()
	k := claimKey(p)
	if c, ok := claims.m[k]; ok {
		return fmt.Errorf("%w: by station %s as %s", ErrLineInUse, c.s.number, c.role)
	}
	claims.m[k] = claimRecord{s: s, role: role}
	return nil
}

func release(pins []gpio.PinIO) {
	claims.Lock()
	defer claims.Unlock()
	for _, p := range pins {
		delete(claims.m, claimKey(p))
	}
}

func unclaimStation(s *Station) {
	claims.Lock()
	defer claims.Unlock()
	for k, c := range claims.m {
		if c.s == s {
			delete(claims.m, k)
		}
	}
}

// describeClaimed fills li from the claiming Station's state and reports
// whether the line is claimed.
func describeClaimed(p gpio.PinIO, li *LineInfo) bool {
	claims.Lock()
	c, ok := claims.m[claimKey(p)]
	claims.Unlock()
	if !ok {
		return false
	}
	s := c.s
	li.Use = "station " + s.number + " " + c.role
	s.mu.Lock()
	defer s.mu.Unlock()
	if c.role == roleContactor {
		l := gpio.Level(s.commanded != s.outActiveLow)
		li.Function, li.Level = string(gpio.OUT_LOW), l.String()
		if l {
			li.Function = string(gpio.OUT_HIGH)
		}
		return true
	}
	for _, in := range s.inputs {
		if in.role == c.role {
			l := gpio.Level(in.level != in.activeLow)
			li.Function, li.Level = string(gpio.IN_LOW), l.String()
			if l {
				li.Function = string(gpio.IN_HIGH)
			}
		}
	}
	return true
}
