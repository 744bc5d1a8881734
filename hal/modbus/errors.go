package modbus

import "errors"

// Sentinel errors of the Modbus RTU driver. Transaction errors are wrapped
// with the operation ("read input registers unit 1 @0x0048: ..."); test
// them with errors.Is. Exception responses are *ExceptionError, which also
// matches ErrException.
var (
	// ErrCRC means a response arrived complete but its CRC did not match:
	// line noise, a collision on the bus or a wrong baud rate.
	ErrCRC = errors.New("crc mismatch")
	// ErrShortFrame means fewer bytes arrived than the response needs
	// before the timeout, or a frame is too short to be a response.
	ErrShortFrame = errors.New("short frame")
	// ErrUnexpected means a response with a valid CRC that does not answer
	// the request: another unit, another function, a wrong length or a
	// write echo that differs from the request.
	ErrUnexpected = errors.New("unexpected response")
	// ErrTimeout means the unit did not answer at all within the bus
	// timeout: wrong unit number, wiring, or the device is off.
	ErrTimeout = errors.New("no response")
	// ErrException is matched by every *ExceptionError: the device
	// answered and refused the request.
	ErrException = errors.New("exception response")
	// ErrInvalidRequest means a request that cannot be encoded: unit 0
	// (broadcast, which never answers) or above 247, an unsupported
	// function, or a quantity outside what one frame carries.
	ErrInvalidRequest = errors.New("invalid request")
	// ErrBusClosed means the Bus was closed.
	ErrBusClosed = errors.New("bus closed")
	// ErrPortUnavailable is matched by every *PortError: the bus's serial
	// port is missing or failed, and is being reopened.
	ErrPortUnavailable = errors.New("serial port unavailable")
	// ErrBadConfig means a configuration the driver cannot work with; the
	// message says which field.
	ErrBadConfig = errors.New("bad configuration")
	// ErrBadRegister means a Register definition with an unknown function,
	// type or word order.
	ErrBadRegister = errors.New("bad register definition")
	// ErrInvalidValue means a register decoded to no usable number: a
	// float NaN or infinity, or a "not available" marker.
	ErrInvalidValue = errors.New("invalid register value")
	// ErrUnknownState means the controller's state register held a value
	// that is no IEC 61851 state A–F in the configured encoding.
	ErrUnknownState = errors.New("unknown CP state value")
)
