package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/gpio/gpioreg"

	"github.com/sitelink/sitelink/daemon/localapi"
	halgpio "github.com/sitelink/sitelink/hal/gpio"
	"github.com/sitelink/sitelink/hal/modbus"
)

const hwUsage = `usage:
  sitelink hw selftest -station N     contactor on/off with feedback check, through the running daemon
                                      (refused while the station has a session)
  sitelink hw lines [-json]           list this host's GPIO lines: name, number, function, level, consumer
  sitelink hw pin -read NAME          print a GPIO line's level (inputs only: reading an output would
                                      reconfigure it)
  sitelink hw pin -set NAME high|low -force
                                      drive a GPIO line directly; only with the daemon stopped
  sitelink hw meter -port DEV -unit N -profile P [-baud 9600] [-parity N] [-stop-bits 1] [-timeout 1s] [-json]
                                      read a Modbus energy meter once: energy and power
  sitelink hw scan -port DEV [-baud 9600] [-parity N] [-stop-bits 1] [-units 1-247] [-timeout 300ms] [-json]
                                      list the Modbus units that answer and guess their profiles
                                      (a silent unit costs one timeout; the estimate is printed first)
`

// gpioChips is where the kernel's GPIO character devices appear.
const gpioChips = "/dev/gpiochip*"

// cmdHW holds the technician's commissioning tools.
func cmdHW(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, hwUsage)
		return exitCode(2)
	}
	sub, args := args[0], args[1:]
	fs := flags("hw "+sub, stderr)
	switch sub {
	case "selftest":
		station := fs.String("station", "", "station `number`")
		socket := socketFlags(fs)
		if err := fs.Parse(args); err != nil {
			return exitCode(2)
		}
		if *station == "" {
			fmt.Fprint(stderr, hwUsage)
			return exitCode(2)
		}
		path, err := socket()
		if err != nil {
			return err
		}
		rep, err := localapi.NewClient(path).SelfTest(*station)
		if err != nil {
			return err
		}
		fmt.Fprint(stdout, rep)
		return nil
	case "lines":
		asJSON := fs.Bool("json", false, "print JSON")
		if err := fs.Parse(args); err != nil {
			return exitCode(2)
		}
		if fs.NArg() != 0 {
			fmt.Fprint(stderr, hwUsage)
			return exitCode(2)
		}
		return hwLines(stdout, stderr, *asJSON)
	case "pin":
		read := fs.String("read", "", "print the level of line `NAME`")
		set := fs.String("set", "", "drive line `NAME` to the level given after it (high or low)")
		force := fs.Bool("force", false, "really drive the line: the daemon must not be running")
		pos, err := parseInterleaved(fs, args)
		if err != nil {
			return exitCode(2)
		}
		switch {
		case *read != "" && *set == "" && len(pos) == 0:
			return hwPinRead(*read, stdout, stderr)
		case *set != "" && *read == "" && len(pos) == 1:
			return hwPinSet(*set, pos[0], *force, stdout, stderr)
		}
		fmt.Fprint(stderr, hwUsage)
		return exitCode(2)
	case "meter":
		var c modbus.BusConfig
		fs.StringVar(&c.Port, "port", "", "serial `device`, e.g. /dev/ttyUSB0")
		unit := fs.Int("unit", 1, "Modbus unit `address` (1..247)")
		profile := fs.String("profile", "", "meter profile: "+strings.Join(modbus.Profiles(), ", "))
		fs.IntVar(&c.Baud, "baud", modbus.DefaultBaud, "bit rate")
		fs.StringVar(&c.Parity, "parity", "N", "parity: N, E or O")
		fs.IntVar(&c.StopBits, "stop-bits", 1, "stop bits: 1 or 2")
		fs.DurationVar(&c.Timeout, "timeout", time.Second, "response timeout")
		asJSON := fs.Bool("json", false, "print JSON")
		if err := fs.Parse(args); err != nil {
			return exitCode(2)
		}
		if c.Port == "" || *profile == "" || fs.NArg() != 0 {
			fmt.Fprint(stderr, hwUsage)
			return exitCode(2)
		}
		return hwMeter(ctx, c, *unit, *profile, *asJSON, stdout, stderr)
	case "scan":
		var c modbus.BusConfig
		fs.StringVar(&c.Port, "port", "", "serial `device`, e.g. /dev/ttyUSB0")
		fs.IntVar(&c.Baud, "baud", modbus.DefaultBaud, "bit rate")
		fs.StringVar(&c.Parity, "parity", "N", "parity: N, E or O")
		fs.IntVar(&c.StopBits, "stop-bits", 1, "stop bits: 1 or 2")
		fs.DurationVar(&c.Timeout, "timeout", 300*time.Millisecond, "response timeout per request")
		units := fs.String("units", "1-247", "unit `ranges` to ask, e.g. 1-10,20")
		asJSON := fs.Bool("json", false, "print the result as JSON")
		if err := fs.Parse(args); err != nil {
			return exitCode(2)
		}
		if c.Port == "" || fs.NArg() != 0 {
			fmt.Fprint(stderr, hwUsage)
			return exitCode(2)
		}
		list, err := parseUnits(*units)
		if err != nil {
			fmt.Fprintf(stderr, "sitelink hw scan: -units %s: %v\n", *units, err)
			return exitCode(2)
		}
		return hwScan(ctx, c, list, *asJSON, stdout, stderr)
	}
	fmt.Fprint(stderr, hwUsage)
	return exitCode(2)
}

// parseInterleaved parses flags that may come after positional arguments
// ("-set X5 high -force"), which flag.Parse alone stops at.
func parseInterleaved(fs interface {
	Parse([]string) error
	Args() []string
}, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// initGPIO loads the host's GPIO lines. On a host without any GPIO chip
// (a development PC, a container) it prints a note and reports false
// with a nil error, so that `hw lines` can succeed with nothing to list.
func initGPIO(note io.Writer) (bool, error) {
	err := halgpio.Init()
	if err == nil {
		return true, nil
	}
	if chips, _ := filepath.Glob(gpioChips); len(chips) == 0 {
		fmt.Fprintf(note, "no GPIO chips on this host (nothing matches %s): there are no lines to use here (%v)\n", gpioChips, err)
		return false, nil
	}
	return false, err
}

func hwLines(stdout, stderr io.Writer, asJSON bool) error {
	note := stdout
	if asJSON {
		note = stderr // stdout stays JSON
	}
	ok, err := initGPIO(note)
	if !ok {
		if asJSON && err == nil {
			return printJSON(stdout, []lineJSON{})
		}
		return err
	}
	lines, err := halgpio.Lines()
	if err != nil {
		return err
	}
	if asJSON {
		out := make([]lineJSON, 0, len(lines))
		for _, l := range lines {
			out = append(out, lineJSON{l.Name, l.Number, l.Function, l.Level, l.Consumer, l.Use})
		}
		return printJSON(stdout, out)
	}
	if len(lines) == 0 {
		fmt.Fprintln(stdout, "no GPIO lines registered")
		return nil
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tNUMBER\tFUNCTION\tLEVEL\tCONSUMER\tUSE")
	for _, l := range lines {
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\n", l.Name, l.Number, dash(l.Function), dash(l.Level), dash(l.Consumer), dash(l.Use))
	}
	return tw.Flush()
}

// lineJSON is a line of `hw lines -json`.
type lineJSON struct {
	Name     string `json:"name"`
	Number   int    `json:"number"`
	Function string `json:"function"`
	Level    string `json:"level"`
	Consumer string `json:"consumer"`
	Use      string `json:"use"`
}

// findLine resolves name (a kernel name, an alias or a number) in gpioreg.
func findLine(name string, stderr io.Writer) (gpio.PinIO, error) {
	ok, err := initGPIO(stderr)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, exitCode(1)
	}
	p := gpioreg.ByName(name)
	if p == nil {
		fmt.Fprintf(stderr, "sitelink hw pin: no GPIO line %q (see sitelink hw lines)\n", name)
		return nil, exitCode(1)
	}
	return p, nil
}

func hwPinRead(name string, stdout, stderr io.Writer) error {
	p, err := findLine(name, stderr)
	if err != nil {
		return err
	}
	line := p
	if r, ok := p.(gpio.RealPin); ok {
		line = r.Real()
	}
	lines, err := halgpio.Lines()
	if err != nil {
		return err
	}
	for _, l := range lines {
		if l.Name != line.Name() {
			continue
		}
		if l.Level == "" {
			// Lines leaves outputs unread: periph reads a line by
			// requesting it as an input, which would drop a contactor.
			fmt.Fprintf(stderr, "sitelink hw pin: %s is %s; its level cannot be read without reconfiguring it as an input\n", l.Name, dash(l.Function))
			return exitCode(1)
		}
		fmt.Fprintf(stdout, "%s %s\n", l.Name, l.Level)
		return nil
	}
	fmt.Fprintf(stderr, "sitelink hw pin: %s is not listed by sitelink hw lines\n", name)
	return exitCode(1)
}

func hwPinSet(name, level string, force bool, stdout, stderr io.Writer) error {
	var l gpio.Level
	switch strings.ToLower(level) {
	case "high", "1", "on":
		l = gpio.High
	case "low", "0", "off":
		l = gpio.Low
	default:
		fmt.Fprintf(stderr, "sitelink hw pin: level %q: want high or low\n", level)
		return exitCode(2)
	}
	if !force {
		fmt.Fprintf(stderr, `sitelink hw pin: refusing to drive %s without -force.
Driving a contactor line from the shell bypasses every safety of the daemon:
no vehicle, fault or feedback check, no payment, no energy metering.
Stop the daemon first (systemctl stop sitelink); it must not be running.
`, name)
		return exitCode(2)
	}
	p, err := findLine(name, stderr)
	if err != nil {
		return err
	}
	if err := p.Out(l); err != nil {
		return fmt.Errorf("drive %s %s: %w", p.Name(), l, err)
	}
	fmt.Fprintf(stdout, "%s driven %s (the kernel may reset the line when this command exits)\n", p.Name(), l)
	return nil
}

func hwMeter(ctx context.Context, c modbus.BusConfig, unit int, profile string, asJSON bool, stdout, stderr io.Writer) error {
	p, ok := modbus.ProfileByName(profile)
	if !ok {
		fmt.Fprintf(stderr, "sitelink hw meter: unknown profile %q; known: %s\n", profile, strings.Join(modbus.Profiles(), ", "))
		return exitCode(2)
	}
	if unit < 1 || unit > modbus.MaxUnit {
		fmt.Fprintf(stderr, "sitelink hw meter: unit %d: want 1..%d\n", unit, modbus.MaxUnit)
		return exitCode(2)
	}
	bus, err := modbus.OpenBus(c, nil)
	if err != nil {
		return err
	}
	defer bus.Close()
	m, err := modbus.NewMeter(modbus.MeterConfig{Bus: bus, Unit: byte(unit), Profile: p})
	if err != nil {
		return err
	}
	r, err := m.ReadOnce(ctx)
	if !asJSON {
		fmt.Fprintf(stdout, "meter unit %d on %s, profile %s\n", unit, c.Port, profile)
	}
	if err != nil {
		if errors.Is(err, modbus.ErrTimeout) {
			fmt.Fprintf(stderr, "sitelink hw meter: timeout: unit %d did not answer within %v; check the wiring (A/B), the unit address, baud rate and parity\n", unit, c.Timeout)
		} else {
			fmt.Fprintf(stderr, "sitelink hw meter: read failed: %v\n", err)
		}
		return exitCode(1)
	}
	if asJSON {
		return printJSON(stdout, struct {
			Port     string  `json:"port"`
			Unit     int     `json:"unit"`
			Profile  string  `json:"profile"`
			EnergyWh float64 `json:"energy_wh"`
			PowerW   float64 `json:"power_w"`
			Flag     string  `json:"flag,omitempty"`
		}{c.Port, unit, profile, r.RawEnergyWh, r.PowerW, r.Flag})
	}
	fmt.Fprintf(stdout, "energy  %s kWh (%s Wh)\n", num(r.RawEnergyWh/1000, 3), num(r.RawEnergyWh, 0))
	fmt.Fprintf(stdout, "power   %s W\n", num(r.PowerW, 1))
	if r.Flag != "" {
		fmt.Fprintf(stdout, "flag    %s\n", r.Flag)
	}
	return nil
}

// num formats v with at most prec decimals and no trailing zeros: a
// float32 register rarely holds the exact decimal the meter shows.
func num(v float64, prec int) string {
	s := strconv.FormatFloat(v, 'f', prec, 64)
	if strings.Contains(s, ".") {
		s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	}
	if s == "-0" {
		s = "0"
	}
	return s
}

// parseUnits reads unit ranges ("1-247", "1,2,5-9") into a sorted list
// without duplicates.
func parseUnits(s string) ([]byte, error) {
	seen := map[int]bool{}
	for _, part := range strings.Split(s, ",") {
		lo, hi, isRange := strings.Cut(strings.TrimSpace(part), "-")
		a, err := strconv.Atoi(lo)
		if err != nil {
			return nil, fmt.Errorf("%q is no unit number", part)
		}
		b := a
		if isRange {
			if b, err = strconv.Atoi(hi); err != nil {
				return nil, fmt.Errorf("%q is no unit range", part)
			}
		}
		if a < 1 || b > modbus.MaxUnit || a > b {
			return nil, fmt.Errorf("%q: want units in 1..%d, low to high", part, modbus.MaxUnit)
		}
		for u := a; u <= b; u++ {
			seen[u] = true
		}
	}
	var out []byte
	for u := 1; u <= modbus.MaxUnit; u++ {
		if seen[u] {
			out = append(out, byte(u))
		}
	}
	return out, nil
}

// scanUnit is one line of `hw scan -json`.
type scanUnit struct {
	Unit        int      `json:"unit"`
	Meters      []string `json:"meters"`
	Controllers []string `json:"controllers"`
	Error       string   `json:"error,omitempty"`
}

func hwScan(ctx context.Context, c modbus.BusConfig, units []byte, asJSON bool, stdout, stderr io.Writer) error {
	bus, err := modbus.OpenBus(c, nil)
	if err != nil {
		return err
	}
	defer bus.Close()
	bc := bus.Config()
	// A silent unit costs the timeout, the request and the longest answer
	// on the line (11 bits a character) and the gap; one that answers
	// costs at most two timeouts more (see modbus.Scan).
	perSilent := bc.Timeout + bc.Gap + time.Duration(8+9)*11*time.Second/time.Duration(bc.Baud)
	fmt.Fprintf(stderr, "scanning %d units on %s at %d baud %d%s%d: about %v if none answers (%v timeout each); "+
		"a unit that answers takes up to %d requests more, at most two of them timing out\n",
		len(units), c.Port, bc.Baud, bc.DataBits, bc.Parity, bc.StopBits,
		(time.Duration(len(units)) * perSilent).Round(100*time.Millisecond), bc.Timeout, modbus.ScanProbeRequests()-1)
	found, err := modbus.Scan(ctx, bus, units, nil)
	if err != nil {
		return fmt.Errorf("scan %s: %w", c.Port, err)
	}
	if asJSON {
		out := make([]scanUnit, 0, len(found))
		for _, r := range found {
			u := scanUnit{Unit: int(r.Unit), Meters: r.Meters, Controllers: r.Controllers}
			if u.Meters == nil {
				u.Meters = []string{}
			}
			if u.Controllers == nil {
				u.Controllers = []string{}
			}
			if r.Err != nil {
				u.Error = r.Err.Error()
			}
			out = append(out, u)
		}
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(out)
	}
	if len(found) == 0 {
		fmt.Fprintf(stdout, "no unit answered on %s; check the wiring (A/B), baud rate and parity\n", c.Port)
		return nil
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "UNIT\tKIND\tPROFILES\tMODEL")
	for _, r := range found {
		switch {
		case r.Err != nil:
			fmt.Fprintf(tw, "%d\t-\t-\tgarbled answer (%v): check baud rate and parity, or two devices with this address\n", r.Unit, r.Err)
		case len(r.Meters) > 0:
			fmt.Fprintf(tw, "%d\tmeter\t%s\t%s\n", r.Unit, strings.Join(r.Meters, ", "), profileModels(r.Meters, false))
		case len(r.Controllers) > 0:
			fmt.Fprintf(tw, "%d\tcontroller\t%s\t%s\n", r.Unit, strings.Join(r.Controllers, ", "), profileModels(r.Controllers, true))
		default:
			fmt.Fprintf(tw, "%d\t-\t-\tanswers, but no built-in profile fits (use profile generic)\n", r.Unit)
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%d of %d units answered\n", len(found), len(units))
	return nil
}

// profileModels names the devices of profiles: the same registers, any
// of them reads the unit.
func profileModels(names []string, controller bool) string {
	models := make([]string, len(names))
	for i, n := range names {
		if controller {
			p, _ := modbus.ControllerProfileByName(n)
			models[i] = p.Model
		} else {
			p, _ := modbus.ProfileByName(n)
			models[i] = p.Model
		}
	}
	return strings.Join(models, " or ")
}
