package hal

import (
	"context"
	"errors"
	"time"
)

// Sentinel errors of station drivers.
var (
	// ErrNotConfirmed means the contactor did not reach the commanded
	// position within the driver's confirmation timeout.
	ErrNotConfirmed = errors.New("contactor not confirmed")
	// ErrFaulted means the station is faulted and refuses to close its
	// contactor.
	ErrFaulted = errors.New("station faulted")
	// ErrClosed means the station was closed.
	ErrClosed = errors.New("station closed")
)

// CPState is the IEC 61851 control pilot state of a charging point.
type CPState string

// IEC 61851 control pilot states.
const (
	CPUnknown CPState = ""  // not (yet) known
	CPA       CPState = "A" // no vehicle
	CPB       CPState = "B" // vehicle connected, not ready / not charging
	CPC       CPState = "C" // vehicle charging
	CPD       CPState = "D" // vehicle charging, ventilation required
	CPE       CPState = "E" // no power / short circuit
	CPF       CPState = "F" // station fault
)

// VehiclePresent reports whether the state says a vehicle is plugged in.
func (s CPState) VehiclePresent() bool { return s == CPB || s == CPC || s == CPD }

// Charging reports whether the vehicle asks for energy.
func (s CPState) Charging() bool { return s == CPC || s == CPD }

// Reading is a snapshot of a station as its driver last saw it.
type Reading struct {
	CP        CPState   // control pilot state
	Contactor bool      // contactor closed (confirmed position)
	EnergyWh  float64   // meter register: total imported energy, Wh
	PowerW    float64   // instantaneous active power, W
	Fault     string    // non-empty while faulted: why
	At        time.Time // when the reading was taken
}

// Station is one charging point as the session engine sees it. Drivers
// keep their own polling or edge-waiting goroutines; methods never block
// longer than the driver's confirmation timeout or ctx.
type Station interface {
	// Number is the station number as configured (Nayax's
	// ServiceStationNumber).
	Number() string
	// SetContactor switches the contactor and returns once the driver has
	// confirmed the new position, or ErrNotConfirmed / ErrFaulted.
	// Opening must succeed whenever physically possible, faulted or not.
	SetContactor(ctx context.Context, on bool) error
	// Read returns the latest snapshot without blocking on the hardware.
	Read() Reading
	// Changes delivers a value (coalesced, never blocking the driver)
	// whenever CP state, contactor or fault changed.
	Changes() <-chan struct{}
	// Halt opens the contactor: the safe, inert state.
	Halt() error
	// Close halts the station and releases its resources.
	Close() error
}
