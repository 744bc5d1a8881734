package modbus

import (
	"encoding/binary"
	"fmt"
)

// Function codes the driver speaks. Only the single-item writes are
// supported: enabling a charge controller is one coil or one register.
const (
	FuncReadCoils            byte = 0x01
	FuncReadHoldingRegisters byte = 0x03
	FuncReadInputRegisters   byte = 0x04
	FuncWriteSingleCoil      byte = 0x05
	FuncWriteSingleRegister  byte = 0x06
)

// Limits of one RTU frame (Modbus Application Protocol v1.1b3, §6).
const (
	MaxReadRegisters = 125  // registers per read request
	MaxReadCoils     = 2000 // coils per read request
	MaxUnit          = 247  // highest unit address; 0 is broadcast
	maxADU           = 256  // largest RTU frame: unit + PDU (253) + CRC
	exceptionLen     = 5    // unit, function|0x80, code, CRC
	coilOn           = 0xFF00
	coilOff          = 0x0000
)

// CRC16 returns the CRC-16/MODBUS of b (reflected polynomial 0xA001,
// initial value 0xFFFF). On the wire the low byte goes first.
func CRC16(b []byte) uint16 {
	crc := uint16(0xFFFF)
	for _, c := range b {
		crc ^= uint16(c)
		for range 8 {
			if crc&1 != 0 {
				crc = crc>>1 ^ 0xA001
			} else {
				crc >>= 1
			}
		}
	}
	return crc
}

// appendCRC appends the CRC of b in wire order (low byte first).
func appendCRC(b []byte) []byte {
	return binary.LittleEndian.AppendUint16(b, CRC16(b))
}

// checkCRC reports whether the last two bytes of frame are the CRC of the
// bytes before them.
func checkCRC(frame []byte) bool {
	n := len(frame)
	return n >= 2 && CRC16(frame[:n-2]) == binary.LittleEndian.Uint16(frame[n-2:])
}

// Request is one Modbus RTU request. For reads Value is the quantity of
// registers or coils; for writes it is the register value, or 0xFF00 /
// 0x0000 for a coil.
type Request struct {
	Unit     byte
	Function byte
	Address  uint16
	Value    uint16
}

// ReadRequest returns a request reading count registers (function 0x03 or
// 0x04) or coils (0x01) from addr.
func ReadRequest(unit, function byte, addr, count uint16) Request {
	return Request{Unit: unit, Function: function, Address: addr, Value: count}
}

// WriteCoilRequest returns a request switching one coil (function 0x05).
func WriteCoilRequest(unit byte, addr uint16, on bool) Request {
	v := uint16(coilOff)
	if on {
		v = coilOn
	}
	return Request{Unit: unit, Function: FuncWriteSingleCoil, Address: addr, Value: v}
}

// WriteRegisterRequest returns a request writing one holding register
// (function 0x06).
func WriteRegisterRequest(unit byte, addr, value uint16) Request {
	return Request{Unit: unit, Function: FuncWriteSingleRegister, Address: addr, Value: value}
}

// String names the request for error messages.
func (r Request) String() string {
	switch r.Function {
	case FuncReadCoils:
		return fmt.Sprintf("read %d coils unit %d @0x%04X", r.Value, r.Unit, r.Address)
	case FuncReadHoldingRegisters:
		return fmt.Sprintf("read %d holding registers unit %d @0x%04X", r.Value, r.Unit, r.Address)
	case FuncReadInputRegisters:
		return fmt.Sprintf("read %d input registers unit %d @0x%04X", r.Value, r.Unit, r.Address)
	case FuncWriteSingleCoil:
		return fmt.Sprintf("write coil unit %d @0x%04X = %v", r.Unit, r.Address, r.Value == coilOn)
	case FuncWriteSingleRegister:
		return fmt.Sprintf("write register unit %d @0x%04X = %d", r.Unit, r.Address, r.Value)
	}
	return fmt.Sprintf("function 0x%02X unit %d @0x%04X", r.Function, r.Unit, r.Address)
}

// Validate reports whether the request can be sent and answered.
func (r Request) Validate() error {
	if r.Unit == 0 || r.Unit > MaxUnit {
		return fmt.Errorf("%w: unit %d (want 1..%d)", ErrInvalidRequest, r.Unit, MaxUnit)
	}
	switch r.Function {
	case FuncReadHoldingRegisters, FuncReadInputRegisters:
		if r.Value == 0 || r.Value > MaxReadRegisters {
			return fmt.Errorf("%w: %d registers (want 1..%d)", ErrInvalidRequest, r.Value, MaxReadRegisters)
		}
	case FuncReadCoils:
		if r.Value == 0 || r.Value > MaxReadCoils {
			return fmt.Errorf("%w: %d coils (want 1..%d)", ErrInvalidRequest, r.Value, MaxReadCoils)
		}
	case FuncWriteSingleCoil:
		if r.Value != coilOn && r.Value != coilOff {
			return fmt.Errorf("%w: coil value 0x%04X (want 0xFF00 or 0x0000)", ErrInvalidRequest, r.Value)
		}
	case FuncWriteSingleRegister:
	default:
		return fmt.Errorf("%w: function 0x%02X", ErrInvalidRequest, r.Function)
	}
	if r.isRead() && uint32(r.Address)+uint32(r.Value) > 0x10000 {
		return fmt.Errorf("%w: %d items from 0x%04X pass the end of the address space", ErrInvalidRequest, r.Value, r.Address)
	}
	return nil
}

func (r Request) isRead() bool {
	return r.Function == FuncReadCoils || r.Function == FuncReadHoldingRegisters || r.Function == FuncReadInputRegisters
}

// Encode returns the request frame: unit, function, address, value, CRC.
func (r Request) Encode() ([]byte, error) {
	if err := r.Validate(); err != nil {
		return nil, err
	}
	b := make([]byte, 0, 8)
	b = append(b, r.Unit, r.Function)
	b = binary.BigEndian.AppendUint16(b, r.Address)
	b = binary.BigEndian.AppendUint16(b, r.Value)
	return appendCRC(b), nil
}

// dataLen is the number of data bytes a normal response to r carries
// after its byte count.
func (r Request) dataLen() int {
	switch r.Function {
	case FuncReadHoldingRegisters, FuncReadInputRegisters:
		return 2 * int(r.Value)
	case FuncReadCoils:
		return (int(r.Value) + 7) / 8
	}
	return 0
}

// ResponseLen returns how many bytes the response to r has, judging from
// the bytes already received (prefix): an exception response is shorter
// than a normal one, and the second byte says which it is. The result is
// always between 5 and 256, so a reader can loop "until ResponseLen bytes
// or the timeout" without trusting the device.
func (r Request) ResponseLen(prefix []byte) int {
	if len(prefix) >= 2 && prefix[1]&0x80 != 0 {
		return exceptionLen
	}
	n := 8 // write echo: unit, function, address, value, CRC
	if r.isRead() {
		n = 3 + r.dataLen() + 2 // unit, function, byte count, data, CRC
	}
	return min(max(n, exceptionLen), maxADU)
}

// DecodeResponse checks frame as the response to r and returns its data:
// the register or coil bytes of a read (byte count stripped, still in wire
// order), nil for a write whose echo matched. Checks run in order: length
// (ErrShortFrame), CRC (ErrCRC), unit and function (ErrUnexpected or
// *ExceptionError), then the byte count or echo (ErrUnexpected).
func (r Request) DecodeResponse(frame []byte) ([]byte, error) {
	want := r.ResponseLen(frame)
	switch {
	case len(frame) < want:
		return nil, fmt.Errorf("%w: %d of %d bytes", ErrShortFrame, len(frame), want)
	case len(frame) > want:
		return nil, fmt.Errorf("%w: %d bytes, want %d", ErrUnexpected, len(frame), want)
	case !checkCRC(frame):
		return nil, ErrCRC
	case frame[0] != r.Unit:
		return nil, fmt.Errorf("%w: from unit %d, want %d", ErrUnexpected, frame[0], r.Unit)
	case frame[1] == r.Function|0x80:
		return nil, &ExceptionError{Function: r.Function, Code: frame[2]}
	case frame[1] != r.Function:
		return nil, fmt.Errorf("%w: function 0x%02X, want 0x%02X", ErrUnexpected, frame[1], r.Function)
	}
	if r.isRead() {
		if int(frame[2]) != r.dataLen() {
			return nil, fmt.Errorf("%w: byte count %d, want %d", ErrUnexpected, frame[2], r.dataLen())
		}
		return frame[3 : 3+r.dataLen()], nil
	}
	if binary.BigEndian.Uint16(frame[2:]) != r.Address || binary.BigEndian.Uint16(frame[4:]) != r.Value {
		return nil, fmt.Errorf("%w: write echo % X differs from the request", ErrUnexpected, frame[2:6])
	}
	return nil, nil
}

// Words converts register bytes in wire order (big-endian) to registers.
// An odd trailing byte is ignored.
func Words(b []byte) []uint16 {
	w := make([]uint16, len(b)/2)
	for i := range w {
		w[i] = binary.BigEndian.Uint16(b[2*i:])
	}
	return w
}

// Bits unpacks n coils from a read-coils response (least significant bit
// of the first byte is the first coil). Coils beyond b read as false.
func Bits(b []byte, n int) []bool {
	out := make([]bool, n)
	for i := range out {
		if i/8 < len(b) {
			out[i] = b[i/8]&(1<<(i%8)) != 0
		}
	}
	return out
}

// Exception codes of the Modbus application protocol.
const (
	ExceptionIllegalFunction   byte = 0x01
	ExceptionIllegalAddress    byte = 0x02
	ExceptionIllegalValue      byte = 0x03
	ExceptionDeviceFailure     byte = 0x04
	ExceptionAcknowledge       byte = 0x05
	ExceptionDeviceBusy        byte = 0x06
	ExceptionMemoryParity      byte = 0x08
	ExceptionGatewayPath       byte = 0x0A
	ExceptionGatewayNoResponse byte = 0x0B
)

var exceptionNames = map[byte]string{
	ExceptionIllegalFunction:   "illegal function",
	ExceptionIllegalAddress:    "illegal data address",
	ExceptionIllegalValue:      "illegal data value",
	ExceptionDeviceFailure:     "server device failure",
	ExceptionAcknowledge:       "acknowledge",
	ExceptionDeviceBusy:        "server device busy",
	ExceptionMemoryParity:      "memory parity error",
	ExceptionGatewayPath:       "gateway path unavailable",
	ExceptionGatewayNoResponse: "gateway target failed to respond",
}

// ExceptionError is an exception response: the device understood the
// request and refused it (function|0x80 followed by Code).
type ExceptionError struct {
	Function byte // the function of the request, without 0x80
	Code     byte // exception code
}

// Error names the code.
func (e *ExceptionError) Error() string {
	name, ok := exceptionNames[e.Code]
	if !ok {
		name = "unknown exception"
	}
	return fmt.Sprintf("exception 0x%02X (%s) to function 0x%02X", e.Code, name, e.Function)
}

// Unwrap makes every ExceptionError match ErrException.
func (e *ExceptionError) Unwrap() error { return ErrException }
