package modbus

import (
	"context"
	"fmt"
	"math"
	"strings"
)

// Register value types.
const (
	TypeInt16   = "int16"
	TypeUint16  = "uint16"
	TypeInt32   = "int32"
	TypeUint32  = "uint32"
	TypeFloat32 = "float32"
	TypeUint64  = "uint64"
	// TypeFloat64 is an IEEE 754 double in four registers (Siemens PAC
	// energy counters).
	TypeFloat64 = "float64"
)

// Word orders: which 16-bit register holds the most significant word of a
// 32- or 64-bit value. Bytes inside a register are always big-endian
// (the protocol fixes that); meters differ only in the word order.
const (
	WordOrderBig    = "big"    // most significant word first ("ABCD"): Eastron, ABB
	WordOrderLittle = "little" // least significant word first ("CDAB")
)

// Register says where a value lives and how to turn its registers into a
// number.
type Register struct {
	// Function is FuncReadHoldingRegisters (3) or FuncReadInputRegisters
	// (4).
	Function byte
	// Address is the 0-based protocol address (input register 30073 in
	// a manual's 1-based notation is Address 0x0048 = 72).
	Address uint16
	// Type is one of the Type constants.
	Type string
	// WordOrder is WordOrderBig or WordOrderLittle; empty means big.
	WordOrder string
	// Scale multiplies the raw number into the unit the caller wants
	// (Wh for energy, W for power: 1000 for a kWh register). Zero means 1.
	Scale float64
	// MaxIsInvalid treats the largest value of the type (all bits set for
	// unsigned types, the largest positive for signed ones) as "not
	// available", the way ABB meters mark a quantity they do not measure.
	MaxIsInvalid bool
}

// Words returns how many 16-bit registers the value occupies; 0 for an
// unknown type.
func (r Register) Words() uint16 {
	switch r.Type {
	case TypeInt16, TypeUint16:
		return 1
	case TypeInt32, TypeUint32, TypeFloat32:
		return 2
	case TypeUint64, TypeFloat64:
		return 4
	}
	return 0
}

// IsZero reports whether the register is unset (an optional register that
// was not configured).
func (r Register) IsZero() bool { return r == Register{} }

// Validate reports whether the register can be read and decoded.
func (r Register) Validate() error {
	switch {
	case r.Function != FuncReadHoldingRegisters && r.Function != FuncReadInputRegisters:
		return fmt.Errorf("%w: function %d (want 3 holding or 4 input)", ErrBadRegister, r.Function)
	case r.Words() == 0:
		return fmt.Errorf("%w: type %q (want int16, uint16, int32, uint32, float32, float64 or uint64)", ErrBadRegister, r.Type)
	case r.WordOrder != "" && r.WordOrder != WordOrderBig && r.WordOrder != WordOrderLittle:
		return fmt.Errorf("%w: word order %q (want big or little)", ErrBadRegister, r.WordOrder)
	case math.IsNaN(r.Scale) || math.IsInf(r.Scale, 0):
		return fmt.Errorf("%w: scale %v", ErrBadRegister, r.Scale)
	case uint32(r.Address)+uint32(r.Words()) > 0x10000:
		return fmt.Errorf("%w: %s at 0x%04X passes the end of the address space", ErrBadRegister, r.Type, r.Address)
	}
	return nil
}

// String describes the register for logs and errors.
func (r Register) String() string {
	table := "holding"
	if r.Function == FuncReadInputRegisters {
		table = "input"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s 0x%04X %s", table, r.Address, r.Type)
	if r.WordOrder == WordOrderLittle {
		b.WriteString(" little")
	}
	if r.Scale != 0 && r.Scale != 1 {
		fmt.Fprintf(&b, " x%g", r.Scale)
	}
	return b.String()
}

// Decode turns the registers read at r.Address into the scaled value.
func (r Register) Decode(words []uint16) (float64, error) {
	if err := r.Validate(); err != nil {
		return 0, err
	}
	if len(words) != int(r.Words()) {
		return 0, fmt.Errorf("decode %s: %w: %d registers, want %d", r, ErrUnexpected, len(words), r.Words())
	}
	// Assemble most significant word first.
	var u uint64
	for i := range words {
		w := words[i]
		if r.WordOrder == WordOrderLittle {
			w = words[len(words)-1-i]
		}
		u = u<<16 | uint64(w)
	}
	var v float64
	invalid := false
	switch r.Type {
	case TypeInt16:
		v = float64(int16(u))
		invalid = r.MaxIsInvalid && u == math.MaxInt16
	case TypeUint16:
		v = float64(uint16(u))
		invalid = r.MaxIsInvalid && u == math.MaxUint16
	case TypeInt32:
		v = float64(int32(u))
		invalid = r.MaxIsInvalid && u == math.MaxInt32
	case TypeUint32:
		v = float64(uint32(u))
		invalid = r.MaxIsInvalid && u == math.MaxUint32
	case TypeFloat32:
		f := float64(math.Float32frombits(uint32(u)))
		v = f
		invalid = math.IsNaN(f) || math.IsInf(f, 0)
	case TypeUint64:
		v = float64(u)
		invalid = r.MaxIsInvalid && u == math.MaxUint64
	case TypeFloat64:
		v = math.Float64frombits(u)
		invalid = math.IsNaN(v) || math.IsInf(v, 0)
	}
	if invalid {
		return 0, fmt.Errorf("decode %s: %w: raw 0x%X", r, ErrInvalidValue, u)
	}
	if r.Scale != 0 {
		v *= r.Scale
		// A huge float64 (a garbled answer) scaled past the largest
		// float64 is no reading either.
		if math.IsInf(v, 0) {
			return 0, fmt.Errorf("decode %s: %w: raw 0x%X scaled by %g overflows", r, ErrInvalidValue, u, r.Scale)
		}
	}
	return v, nil
}

// Read reads and decodes the register from unit through rd.
func (r Register) Read(ctx context.Context, rd Reader, unit byte) (float64, error) {
	if err := r.Validate(); err != nil {
		return 0, err
	}
	words, err := rd.ReadRegisters(ctx, unit, r.Function, r.Address, r.Words())
	if err != nil {
		return 0, err
	}
	return r.Decode(words)
}
