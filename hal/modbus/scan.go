package modbus

import (
	"context"
	"errors"
	"slices"
)

// ScanResult is what one unit answered to a Scan.
type ScanResult struct {
	Unit byte
	// Meters and Controllers name the profiles whose registers the unit
	// answers the way that model does, sorted; both empty when none fits.
	// Models with the same registers (sdm630 and sdm72v2, the
	// single-phase Eastrons) cannot be told apart and are all listed:
	// any of them reads the unit correctly.
	Meters, Controllers []string
	// Err is set when the unit answered with a broken frame (a CRC error
	// or a short or unexpected frame): a wrong baud rate or parity, or
	// two devices with one address.
	Err error
}

// ScanProbeRequests bounds the requests Scan sends to a unit that
// answers: the distinct registers of all profiles, plus the presence
// request.
func ScanProbeRequests() int {
	seen := map[probeKey]bool{{FuncReadHoldingRegisters, 0, 1}: true}
	add := func(r Register) { seen[keyOf(r)] = true }
	for _, p := range profiles {
		add(p.Energy)
		if !p.Power.IsZero() {
			add(p.Power)
		}
		for _, r := range append(slices.Clone(p.Present), p.Absent...) {
			add(r)
		}
	}
	for _, p := range controllerProfiles {
		add(p.Map.State)
	}
	return len(seen)
}

// Scan asks each unit in units whether it answers, and guesses the
// profiles of those that do. A unit that does not answer costs one bus
// timeout (the presence request, holding register 0, which any device
// answers with data or an exception). One that answers gets one request
// per distinct register of the profiles (ScanProbeRequests); a function
// it does not answer at all is given up after its first timeout, so a
// present unit costs at most two timeouts more. progress, if not nil, is
// called before each unit. Scan returns the units that answered, in the
// order asked, and stops early with ctx's error or a bus failure (a
// closed or lost port).
func Scan(ctx context.Context, r Reader, units []byte, progress func(unit byte)) ([]ScanResult, error) {
	var out []ScanResult
	for _, u := range units {
		if progress != nil {
			progress(u)
		}
		res, present, err := scanUnit(ctx, r, u)
		if err != nil {
			return out, err
		}
		if present {
			out = append(out, res)
		}
	}
	return out, nil
}

type probeKey struct {
	function byte
	addr     uint16
	words    uint16
}

func keyOf(r Register) probeKey { return probeKey{r.Function, r.Address, r.Words()} }

type probeAnswer struct {
	words []uint16
	err   error
}

// prober reads a unit's registers once each, and gives up on a function
// that timed out.
type prober struct {
	ctx     context.Context
	r       Reader
	unit    byte
	cache   map[probeKey]probeAnswer
	silent  map[byte]bool // functions that timed out
	fatal   error         // a bus failure: stop scanning
	garbled error         // a broken answer
}

func (p *prober) read(k probeKey) probeAnswer {
	if a, ok := p.cache[k]; ok {
		return a
	}
	if p.silent[k.function] || p.fatal != nil {
		return probeAnswer{err: ErrTimeout}
	}
	w, err := p.r.ReadRegisters(p.ctx, p.unit, k.function, k.addr, k.words)
	switch {
	case err == nil, errors.Is(err, ErrException):
	case errors.Is(err, ErrTimeout):
		p.silent[k.function] = true
	case errors.Is(err, ErrCRC), errors.Is(err, ErrShortFrame), errors.Is(err, ErrUnexpected):
		if p.garbled == nil {
			p.garbled = err
		}
	default:
		p.fatal = err
	}
	a := probeAnswer{w, err}
	p.cache[k] = a
	return a
}

// value reads and decodes r; ok is false if either fails.
func (p *prober) value(r Register) (float64, bool) {
	a := p.read(keyOf(r))
	if a.err != nil {
		return 0, false
	}
	v, err := r.Decode(a.words)
	return v, err == nil
}

// refused reports whether the unit answered r with an exception.
func (p *prober) refused(r Register) bool {
	return errors.Is(p.read(keyOf(r)).err, ErrException)
}

func (p *prober) meter(pr Profile) bool {
	if _, ok := p.value(pr.Energy); !ok {
		return false
	}
	if !pr.Power.IsZero() {
		if _, ok := p.value(pr.Power); !ok {
			return false
		}
	}
	for _, r := range pr.Present {
		if _, ok := p.value(r); !ok {
			return false
		}
	}
	for _, r := range pr.Absent {
		if !p.refused(r) {
			return false
		}
	}
	return true
}

func (p *prober) controller(cp ControllerProfile) bool {
	v, ok := p.value(cp.Map.State)
	if !ok {
		return false
	}
	_, err := decodeState(v, cp.Map.StateEncoding)
	return err == nil
}

func scanUnit(ctx context.Context, r Reader, unit byte) (ScanResult, bool, error) {
	p := &prober{ctx: ctx, r: r, unit: unit, cache: map[probeKey]probeAnswer{}, silent: map[byte]bool{}}
	res := ScanResult{Unit: unit}
	first := p.read(probeKey{FuncReadHoldingRegisters, 0, 1})
	if err := ctx.Err(); err != nil {
		return res, false, err
	}
	if p.fatal != nil {
		return res, false, p.fatal
	}
	if errors.Is(first.err, ErrTimeout) {
		return res, false, nil
	}
	for _, name := range Profiles() {
		if pr, ok := profiles[name]; ok && p.meter(pr) {
			res.Meters = append(res.Meters, name)
		}
	}
	for _, name := range ControllerProfiles() {
		if p.controller(controllerProfiles[name]) {
			res.Controllers = append(res.Controllers, name)
		}
	}
	if err := ctx.Err(); err != nil {
		return res, false, err
	}
	if p.fatal != nil {
		return res, false, p.fatal
	}
	res.Err = p.garbled
	return res, true, nil
}
