package modbus

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"testing"
)

func TestRegisterDecode(t *testing.T) {
	reg := func(typ, order string, scale float64) Register {
		return Register{Function: FuncReadHoldingRegisters, Type: typ, WordOrder: order, Scale: scale}
	}
	f32 := math.Float32bits(1234.5) // 0x449A5000
	tests := []struct {
		name  string
		reg   Register
		words []uint16
		want  float64
	}{
		{"int16 positive", reg(TypeInt16, "", 0), []uint16{0x0102}, 258},
		{"int16 negative", reg(TypeInt16, "", 0), []uint16{0xFFFE}, -2},
		{"uint16", reg(TypeUint16, "", 0), []uint16{0xFFFE}, 65534},
		{"int32 big", reg(TypeInt32, WordOrderBig, 1), []uint16{0xFFFF, 0xFFFE}, -2},
		{"int32 little", reg(TypeInt32, WordOrderLittle, 1), []uint16{0xFFFE, 0xFFFF}, -2},
		{"uint32 big", reg(TypeUint32, WordOrderBig, 1), []uint16{0x0001, 0x0002}, 65538},
		{"uint32 little", reg(TypeUint32, WordOrderLittle, 1), []uint16{0x0002, 0x0001}, 65538},
		{"float32 big", reg(TypeFloat32, WordOrderBig, 1), []uint16{uint16(f32 >> 16), uint16(f32)}, 1234.5},
		{"float32 little", reg(TypeFloat32, WordOrderLittle, 1), []uint16{uint16(f32), uint16(f32 >> 16)}, 1234.5},
		{"float32 negative", reg(TypeFloat32, "", 1), []uint16{0xC000, 0x0000}, -2},
		{"uint64 big", reg(TypeUint64, WordOrderBig, 1), []uint16{0x0000, 0x0001, 0x0000, 0x0002}, 1<<32 + 2},
		{"uint64 little", reg(TypeUint64, WordOrderLittle, 1), []uint16{0x0002, 0x0000, 0x0001, 0x0000}, 1<<32 + 2},
		{"float64 big", reg(TypeFloat64, WordOrderBig, 1), []uint16{0x4093, 0x4A00, 0, 0}, 1234.5},
		{"float64 little", reg(TypeFloat64, WordOrderLittle, 1), []uint16{0, 0, 0x4A00, 0x4093}, 1234.5},
		{"kWh to Wh", reg(TypeFloat32, "", 1000), []uint16{uint16(f32 >> 16), uint16(f32)}, 1234500},
		{"abb 0.01 kWh", reg(TypeUint64, "", 10), []uint16{0, 0, 0x000F, 0x1206}, 9876540},
		{"abb 0.01 W", reg(TypeInt32, "", 0.01), []uint16{0x000B, 0x4AA0}, 7400},
		{"negative scale", reg(TypeInt16, "", -1), []uint16{5}, -5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.reg.Decode(tt.words)
			if err != nil {
				t.Fatalf("Decode(%04X): %v", tt.words, err)
			}
			if math.Abs(got-tt.want) > 1e-9*math.Max(1, math.Abs(tt.want)) {
				t.Fatalf("Decode(%04X) = %v, want %v", tt.words, got, tt.want)
			}
		})
	}
}

func TestRegisterDecodeErrors(t *testing.T) {
	tests := []struct {
		name  string
		reg   Register
		words []uint16
		want  error
	}{
		{"float NaN", Register{Function: 4, Type: TypeFloat32}, []uint16{0x7FC0, 0}, ErrInvalidValue},
		{"float +Inf", Register{Function: 4, Type: TypeFloat32}, []uint16{0x7F80, 0}, ErrInvalidValue},
		{"float64 NaN", Register{Function: 4, Type: TypeFloat64}, []uint16{0x7FF8, 0, 0, 0}, ErrInvalidValue},
		{"abb uint64 not available", Register{Function: 3, Type: TypeUint64, MaxIsInvalid: true}, []uint16{0xFFFF, 0xFFFF, 0xFFFF, 0xFFFF}, ErrInvalidValue},
		{"abb int32 not available", Register{Function: 3, Type: TypeInt32, MaxIsInvalid: true}, []uint16{0x7FFF, 0xFFFF}, ErrInvalidValue},
		{"uint16 not available", Register{Function: 3, Type: TypeUint16, MaxIsInvalid: true}, []uint16{0xFFFF}, ErrInvalidValue},
		{"too few words", Register{Function: 4, Type: TypeFloat32}, []uint16{1}, ErrUnexpected},
		{"too many words", Register{Function: 4, Type: TypeInt16}, []uint16{1, 2}, ErrUnexpected},
		{"unknown type", Register{Function: 4, Type: "int8"}, []uint16{1}, ErrBadRegister},
		{"unknown function", Register{Function: 1, Type: TypeUint16}, []uint16{1}, ErrBadRegister},
		{"unknown word order", Register{Function: 4, Type: TypeUint32, WordOrder: "middle"}, []uint16{1, 2}, ErrBadRegister},
		{"NaN scale", Register{Function: 4, Type: TypeUint16, Scale: math.NaN()}, []uint16{1}, ErrBadRegister},
		{"past the end", Register{Function: 4, Type: TypeUint64, Address: 0xFFFE}, []uint16{1, 2, 3, 4}, ErrBadRegister},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := tt.reg.Decode(tt.words); !errors.Is(err, tt.want) {
				t.Fatalf("Decode = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestRegisterWords(t *testing.T) {
	for typ, want := range map[string]uint16{
		TypeInt16: 1, TypeUint16: 1, TypeInt32: 2, TypeUint32: 2, TypeFloat32: 2, TypeUint64: 4, TypeFloat64: 4, "bogus": 0,
	} {
		if got := (Register{Type: typ}).Words(); got != want {
			t.Errorf("Register{Type: %q}.Words() = %d, want %d", typ, got, want)
		}
	}
}

func TestProfiles(t *testing.T) {
	want := []string{"abb-b2x", "dtsu666", "em24", "generic", "janitza-umg604", "pac2200",
		"sdm120", "sdm220", "sdm230", "sdm630", "sdm72", "sdm72v2"}
	if got := Profiles(); !slices.Equal(got, want) {
		t.Fatalf("Profiles() = %v, want %v", got, want)
	}
	tests := []struct {
		name           string
		energy, power  uint16
		fn             byte
		energyTypeWant string
	}{
		{"sdm630", 0x0048, 0x0034, FuncReadInputRegisters, TypeFloat32},
		{"SDM120", 0x0048, 0x000C, FuncReadInputRegisters, TypeFloat32},
		{"sdm72", 0x0048, 0x0034, FuncReadInputRegisters, TypeFloat32},
		{"abb-b2x", 0x5000, 0x5B14, FuncReadHoldingRegisters, TypeUint64},
		{"sdm220", 0x0048, 0x000C, FuncReadInputRegisters, TypeFloat32},
		{"sdm230", 0x0048, 0x000C, FuncReadInputRegisters, TypeFloat32},
		{"sdm72v2", 0x0048, 0x0034, FuncReadInputRegisters, TypeFloat32},
		{"dtsu666", 0x101E, 0x2012, FuncReadHoldingRegisters, TypeFloat32},
		{"em24", 0x0042, 0x0028, FuncReadInputRegisters, TypeInt32},
		{"janitza-umg604", 19068, 19026, FuncReadHoldingRegisters, TypeFloat32},
		{"pac2200", 801, 65, FuncReadInputRegisters, TypeFloat64},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, ok := ProfileByName(tt.name)
			if !ok {
				t.Fatalf("ProfileByName(%q) not found", tt.name)
			}
			if err := p.Validate(); err != nil {
				t.Fatalf("Validate: %v", err)
			}
			if p.Energy.Address != tt.energy || p.Power.Address != tt.power || p.Energy.Function != tt.fn || p.Energy.Type != tt.energyTypeWant {
				t.Fatalf("profile %+v, want energy 0x%04X power 0x%04X function %d type %s", p, tt.energy, tt.power, tt.fn, tt.energyTypeWant)
			}
		})
	}
	t.Run("generic needs registers", func(t *testing.T) {
		p, ok := ProfileByName("generic")
		if !ok {
			t.Fatal("generic not found")
		}
		if err := p.Validate(); !errors.Is(err, ErrBadRegister) {
			t.Fatalf("empty generic profile Validate = %v, want ErrBadRegister", err)
		}
		p.Energy = Register{Function: FuncReadHoldingRegisters, Address: 10, Type: TypeUint32}
		if err := p.Validate(); err != nil {
			t.Fatalf("generic with energy only: %v", err)
		}
	})
	if _, ok := ProfileByName("sdm999"); ok {
		t.Fatal("ProfileByName(sdm999) found a profile")
	}
}

// FuzzDecodeRegister decodes arbitrary register contents (a device's
// answer) with every type and word order: never a panic, never a NaN or
// infinity returned as a value.
func FuzzDecodeRegister(f *testing.F) {
	f.Add(uint8(4), false, false, uint16(0x449A), uint16(0x5000), uint16(0), uint16(0))
	f.Add(uint8(5), true, true, uint16(0xFFFF), uint16(0xFFFF), uint16(0xFFFF), uint16(0xFFFF))
	f.Add(uint8(4), true, false, uint16(0x7FC0), uint16(0), uint16(0), uint16(0))
	types := []string{TypeInt16, TypeUint16, TypeInt32, TypeUint32, TypeFloat32, TypeUint64, TypeFloat64}
	f.Fuzz(func(t *testing.T, typ uint8, little, maxInvalid bool, w0, w1, w2, w3 uint16) {
		r := Register{Function: FuncReadInputRegisters, Type: types[int(typ)%len(types)], Scale: 1000, MaxIsInvalid: maxInvalid}
		if little {
			r.WordOrder = WordOrderLittle
		}
		words := []uint16{w0, w1, w2, w3}[:r.Words()]
		v, err := r.Decode(words)
		if err != nil {
			if !errors.Is(err, ErrInvalidValue) {
				t.Fatalf("Decode(%04X) as %s: %v", words, r, err)
			}
			return
		}
		if math.IsNaN(v) || math.IsInf(v, 0) {
			t.Fatalf("Decode(%04X) as %s = %v", words, r, v)
		}
	})
}

func ExampleRegister_Decode() {
	// Eastron's total import energy: float32 kWh in two input registers,
	// high word first; scaled to Wh.
	p, _ := ProfileByName("sdm630")
	wh, err := p.Energy.Decode([]uint16{0x449A, 0x5000})
	fmt.Println(p.Energy, wh, err)
	// Output: input 0x0048 float32 x1000 1.2345e+06 <nil>
}
