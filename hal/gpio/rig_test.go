package gpio

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/gpio/gpioreg"
	"periph.io/x/conn/v3/gpio/gpiotest"

	"github.com/sitelink/sitelink/hal"
)

// waitTimeout bounds every wait of these tests; generous for -race on a
// loaded machine. A passing test never waits that long.
const waitTimeout = 10 * time.Second

// rigSeq makes line names unique across tests, so that a leftover
// registration can never be mistaken for a fresh one.
var rigSeq atomic.Int64

// rigOpts shapes a test rig.
type rigOpts struct {
	feedback        bool          // wire the contactor's auxiliary contact
	activeLow       bool          // every line active-low
	debounce        time.Duration // on every input
	feedbackTimeout time.Duration // 0 means 2s: ample under -race on a busy machine
	// panicOn, if set, makes the settled hook panic inside the watcher
	// goroutine when it returns true.
	panicOn func(role string, level bool) bool
}

// rig is a station's wiring made of gpiotest pins registered in gpioreg,
// so that Open goes through the same name lookup as on hardware.
type rig struct {
	t     *testing.T
	opts  rigOpts
	names map[string]string // role -> registered name
	pins  map[string]*gpiotest.Pin
	relay *relay

	mu      sync.Mutex
	settled chan struct{} // closed and replaced on every settled event
	seq     map[string]int
	last    map[string]bool
	counted map[string]bool
}

// relay is the contactor output: a gpiotest pin whose coil moves the
// auxiliary contact, unless stuck (a welded or dead contactor).
type relay struct {
	*gpiotest.Pin
	fb          *gpiotest.Pin
	onLevel     gpio.Level // electrical output level that energises the coil
	fbActiveLow bool
	stuck       atomic.Bool
	q           chan gpio.Level
}

// Out drives the coil; the auxiliary contact follows asynchronously, as
// a real one does.
func (r *relay) Out(l gpio.Level) error {
	if err := r.Pin.Out(l); err != nil {
		return err
	}
	if r.fb != nil && !r.stuck.Load() {
		closed := l == r.onLevel
		r.q <- gpio.Level(closed != r.fbActiveLow)
	}
	return nil
}

var roleKeys = map[string]string{
	roleContactor: "CONTACTOR",
	roleFeedback:  "FEEDBACK",
	roleVehicle:   "VEHICLE",
	roleCharging:  "CHARGING",
	roleFault:     "FAULT",
	roleStart:     "START",
	roleStop:      "STOP",
}

func newRig(t *testing.T, opts rigOpts) *rig {
	t.Helper()
	if opts.feedbackTimeout == 0 {
		opts.feedbackTimeout = 2 * time.Second
	}
	n := rigSeq.Add(1)
	r := &rig{
		t: t, opts: opts,
		names:   map[string]string{},
		pins:    map[string]*gpiotest.Pin{},
		settled: make(chan struct{}),
		seq:     map[string]int{},
		last:    map[string]bool{},
		counted: map[string]bool{},
	}
	done := make(chan struct{})
	for role, key := range roleKeys {
		name := fmt.Sprintf("T%d_%s", n, key)
		r.names[role] = name
		p := &gpiotest.Pin{N: name, Num: int(n)}
		r.pins[role] = p
		if role == roleContactor {
			continue
		}
		p.EdgesChan = make(chan gpio.Level)
		if err := gpioreg.Register(p); err != nil {
			t.Fatal(err)
		}
	}
	r.relay = &relay{
		Pin:         r.pins[roleContactor],
		onLevel:     gpio.Level(!opts.activeLow),
		fbActiveLow: opts.activeLow,
		q:           make(chan gpio.Level, 1024),
	}
	if opts.feedback {
		r.relay.fb = r.pins[roleFeedback]
		go func() {
			for {
				select {
				case l := <-r.relay.q:
					select {
					case r.relay.fb.EdgesChan <- l:
					case <-done:
						return
					}
				case <-done:
					return
				}
			}
		}()
	}
	if err := gpioreg.Register(r.relay); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		close(done)
		for _, name := range r.names {
			_ = gpioreg.Unregister(name)
		}
	})
	return r
}

// config wires every line of the rig; tests drop what they do not want.
func (r *rig) config() Config {
	in := func(role string) *Pin {
		return &Pin{Name: r.names[role], ActiveLow: r.opts.activeLow, Debounce: r.opts.debounce}
	}
	c := Config{
		Number:          "7",
		Contactor:       Pin{Name: r.names[roleContactor], ActiveLow: r.opts.activeLow},
		Vehicle:         in(roleVehicle),
		Charging:        in(roleCharging),
		Fault:           in(roleFault),
		StartButton:     in(roleStart),
		StopButton:      in(roleStop),
		FeedbackTimeout: r.opts.feedbackTimeout,
	}
	if r.opts.feedback {
		c.ContactorFeedback = in(roleFeedback)
	}
	return c
}

// open opens a station on the rig and closes it when the test ends.
func (r *rig) open(c Config) *Station {
	r.t.Helper()
	st, err := open(c, hooks{settled: r.hook})
	if err != nil {
		r.t.Fatalf("open: %v", err)
	}
	r.t.Cleanup(func() { _ = st.Close() })
	return st
}

func (r *rig) hook(role string, level, counted bool) {
	if r.opts.panicOn != nil && r.opts.panicOn(role, level) {
		panic("test panic in " + role + " watcher")
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.seq[role]++
	r.last[role] = level
	r.counted[role] = counted
	close(r.settled)
	r.settled = make(chan struct{})
}

// send makes an edge to the given logical level on an input.
func (r *rig) send(role string, active bool) {
	r.t.Helper()
	l := gpio.Level(active != r.opts.activeLow)
	select {
	case r.pins[role].EdgesChan <- l:
	case <-time.After(waitTimeout):
		r.t.Fatalf("no watcher took the %s edge within %v", role, waitTimeout)
	}
}

func (r *rig) mark(role string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.seq[role]
}

// waitSettled waits until the role's watcher settled on want after mark
// and returns whether that settlement counted.
func (r *rig) waitSettled(role string, mark int, want bool) bool {
	r.t.Helper()
	deadline := time.After(waitTimeout)
	for {
		r.mu.Lock()
		if r.seq[role] > mark && r.last[role] == want {
			counted := r.counted[role]
			r.mu.Unlock()
			return counted
		}
		ch := r.settled
		r.mu.Unlock()
		select {
		case <-ch:
		case <-deadline:
			r.t.Fatalf("%s input did not settle on %v within %v", role, want, waitTimeout)
		}
	}
}

// set drives an input to a logical level and returns once the station
// has settled on it, so that Read reflects it.
func (r *rig) set(role string, active bool) {
	r.t.Helper()
	m := r.mark(role)
	r.send(role, active)
	r.waitSettled(role, m, active)
}

// level is the electrical level of a rig line.
func (r *rig) level(role string) gpio.Level { return r.pins[role].Read() }

// contactorOn says whether the contactor output energises the coil.
func (r *rig) contactorOn() bool { return r.level(roleContactor) == r.relay.onLevel }

// waitFor waits on st's Changes until cond holds for a Read.
func waitFor(t *testing.T, st *Station, what string, cond func(hal.Reading) bool) hal.Reading {
	t.Helper()
	deadline := time.After(waitTimeout)
	for {
		if r := st.Read(); cond(r) {
			return r
		}
		select {
		case <-st.Changes():
		case <-deadline:
			t.Fatalf("%s: not reached within %v (reading %+v)", what, waitTimeout, st.Read())
		}
	}
}
