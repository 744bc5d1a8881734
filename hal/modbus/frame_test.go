package modbus

import (
	"bytes"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
)

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatalf("bad hex %q: %v", s, err)
	}
	return b
}

func TestCRC16(t *testing.T) {
	// Reference values: the check value of CRC-16/MODBUS in the CRC
	// catalogue ("123456789" -> 0x4B37), and frames whose CRC was computed
	// with pymodbus.utilities.computeCRC, an independent implementation.
	tests := []struct {
		name string
		in   string // hex
		want uint16
	}{
		{"catalogue check", hex.EncodeToString([]byte("123456789")), 0x4B37},
		{"read holding unit 1 @0 x10", "01 03 00 00 00 0A", 0xCDC5},
		{"read input unit 1 @0x0156 x2", "01 04 01 56 00 02", 0x2790},
		{"exception", "01 84 02", 0xC1C2},
		{"empty", "", 0xFFFF},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := CRC16(unhex(t, tt.in)); got != tt.want {
				t.Fatalf("CRC16 = 0x%04X, want 0x%04X", got, tt.want)
			}
		})
	}
}

func TestEncode(t *testing.T) {
	tests := []struct {
		name string
		req  Request
		want string // hex frame, from pymodbus.utilities.computeCRC
	}{
		{"read input registers", ReadRequest(1, FuncReadInputRegisters, 0x0156, 2), "01 04 01 56 00 02 90 27"},
		{"read holding registers", ReadRequest(1, FuncReadHoldingRegisters, 0, 10), "01 03 00 00 00 0A C5 CD"},
		{"read holding abb", ReadRequest(2, FuncReadHoldingRegisters, 0x5000, 4), "02 03 50 00 00 04 55 3A"},
		{"read coils", ReadRequest(3, FuncReadCoils, 400, 1), "03 01 01 90 00 01 FD F9"},
		{"write coil on", WriteCoilRequest(1, 0x0190, true), "01 05 01 90 FF 00 8D EB"},
		{"write register", WriteRegisterRequest(1, 0x0064, 1), "01 06 00 64 00 01 09 D5"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.req.Encode()
			if err != nil {
				t.Fatalf("Encode: %v", err)
			}
			if want := unhex(t, tt.want); !bytes.Equal(got, want) {
				t.Fatalf("Encode = % X, want % X", got, want)
			}
		})
	}
}

func TestEncodeInvalid(t *testing.T) {
	tests := []struct {
		name string
		req  Request
	}{
		{"broadcast unit", ReadRequest(0, FuncReadInputRegisters, 0, 1)},
		{"unit 248", ReadRequest(248, FuncReadInputRegisters, 0, 1)},
		{"zero registers", ReadRequest(1, FuncReadInputRegisters, 0, 0)},
		{"126 registers", ReadRequest(1, FuncReadHoldingRegisters, 0, 126)},
		{"2001 coils", ReadRequest(1, FuncReadCoils, 0, 2001)},
		{"past the end", ReadRequest(1, FuncReadInputRegisters, 0xFFFF, 2)},
		{"unknown function", Request{Unit: 1, Function: 0x10, Value: 1}},
		{"coil value", Request{Unit: 1, Function: FuncWriteSingleCoil, Value: 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := tt.req.Encode(); !errors.Is(err, ErrInvalidRequest) {
				t.Fatalf("Encode = %v, want ErrInvalidRequest", err)
			}
		})
	}
}

func TestDecodeResponse(t *testing.T) {
	readEnergy := ReadRequest(1, FuncReadInputRegisters, 0x0048, 2)
	tests := []struct {
		name     string
		req      Request
		frame    string
		wantData string // hex, for success
		wantErr  error
		wantCode byte // exception code, with wantErr ErrException
	}{
		// Frames as pymodbus 3.0 sent them in the integration rig.
		{"float32 energy", readEnergy, "01 04 04 44 9A 50 00 F3 5B", "44 9A 50 00", nil, 0},
		{"abb uint64", ReadRequest(2, FuncReadHoldingRegisters, 0x5000, 4), "02 03 08 00 00 00 00 00 0F 12 06 26 32", "00 00 00 00 00 0F 12 06", nil, 0},
		{"coils", ReadRequest(3, FuncReadCoils, 400, 1), "03 01 01 00 50 30", "00", nil, 0},
		{"write echo", WriteCoilRequest(1, 0x0190, true), "01 05 01 90 FF 00 8D EB", "", nil, 0},
		{"exception illegal address", ReadRequest(1, FuncReadInputRegisters, 0x0100, 1), "01 84 02 C2 C1", "", ErrException, ExceptionIllegalAddress},
		{"crc error", readEnergy, "01 04 04 44 9A 50 00 F3 5C", "", ErrCRC, 0},
		{"crc error in data", readEnergy, "01 04 04 44 9B 50 00 F3 5B", "", ErrCRC, 0},
		{"short frame", readEnergy, "01 04 04 44 9A", "", ErrShortFrame, 0},
		{"empty", readEnergy, "", "", ErrShortFrame, 0},
		{"short exception", readEnergy, "01 84 02 C2", "", ErrShortFrame, 0},
		{"too long", readEnergy, "01 04 04 44 9A 50 00 F3 5B 00", "", ErrUnexpected, 0},
		{"wrong unit", ReadRequest(2, FuncReadInputRegisters, 0x0048, 2), "01 04 04 44 9A 50 00 F3 5B", "", ErrUnexpected, 0},
		{"wrong function", ReadRequest(1, FuncReadHoldingRegisters, 0x0048, 2), "01 04 04 44 9A 50 00 F3 5B", "", ErrUnexpected, 0},
		{"wrong byte count", ReadRequest(1, FuncReadInputRegisters, 0x0048, 2), crcFrame(t, "01 04 03 44 9A 50 00"), "", ErrUnexpected, 0},
		{"write echo differs", WriteCoilRequest(1, 0x0190, false), "01 05 01 90 FF 00 8D EB", "", ErrUnexpected, 0},
		{"exception to another function", readEnergy, crcFrame(t, "01 83 02"), "", ErrUnexpected, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data, err := tt.req.DecodeResponse(unhex(t, tt.frame))
			if tt.wantErr == nil {
				if err != nil {
					t.Fatalf("DecodeResponse: %v", err)
				}
				if want := unhex(t, tt.wantData); !bytes.Equal(data, want) {
					t.Fatalf("data = % X, want % X", data, want)
				}
				return
			}
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("DecodeResponse = %v, want %v", err, tt.wantErr)
			}
			if tt.wantErr == ErrException {
				var ex *ExceptionError
				if !errors.As(err, &ex) || ex.Code != tt.wantCode || ex.Function != tt.req.Function {
					t.Fatalf("exception = %#v, want code %d to function %d", ex, tt.wantCode, tt.req.Function)
				}
				if !strings.Contains(err.Error(), "illegal data address") {
					t.Fatalf("exception message %q does not name the code", err)
				}
			}
		})
	}
}

// crcFrame appends the CRC to a hex frame body and returns hex.
func crcFrame(t testing.TB, body string) string {
	return hex.EncodeToString(appendCRC(unhex(t, body)))
}

func TestResponseLen(t *testing.T) {
	tests := []struct {
		name   string
		req    Request
		prefix string
		want   int
	}{
		{"registers", ReadRequest(1, FuncReadInputRegisters, 0, 2), "", 9},
		{"max registers", ReadRequest(1, FuncReadInputRegisters, 0, 125), "01 04", 255},
		{"coils", ReadRequest(1, FuncReadCoils, 0, 9), "", 7},
		{"write", WriteRegisterRequest(1, 0, 1), "01", 8},
		{"exception", ReadRequest(1, FuncReadInputRegisters, 0, 2), "01 84", 5},
		{"garbage function with high bit", WriteRegisterRequest(1, 0, 1), "01 FF", 5},
		{"invalid quantity stays bounded", Request{Unit: 1, Function: FuncReadHoldingRegisters, Value: 0xFFFF}, "", 256},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.req.ResponseLen(unhex(t, tt.prefix)); got != tt.want {
				t.Fatalf("ResponseLen = %d, want %d", got, tt.want)
			}
		})
	}
}

func TestBits(t *testing.T) {
	got := Bits([]byte{0b0000_0101, 0b1}, 10)
	want := []bool{true, false, true, false, false, false, false, false, true, false}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("Bits = %v, want %v", got, want)
		}
	}
	if got := Bits(nil, 3); got[0] || got[1] || got[2] {
		t.Fatalf("Bits(nil) = %v, want all false", got)
	}
}

// FuzzDecodeResponse feeds arbitrary frames (a device's answer is outside
// input) to DecodeResponse and ResponseLen: they must never panic, and a
// frame that decodes must be a consistent answer to the request.
func FuzzDecodeResponse(f *testing.F) {
	seeds := []struct {
		unit, fn    byte
		addr, value uint16
		frame       string
	}{
		{1, FuncReadInputRegisters, 0x0048, 2, "01 04 04 44 9A 50 00 F3 5B"},
		{2, FuncReadHoldingRegisters, 0x5000, 4, "02 03 08 00 00 00 00 00 0F 12 06 26 32"},
		{3, FuncReadCoils, 400, 1, "03 01 01 00 50 30"},
		{1, FuncWriteSingleCoil, 0x0190, coilOn, "01 05 01 90 FF 00 8D EB"},
		{1, FuncWriteSingleRegister, 0x0064, 1, "01 06 00 64 00 01 09 D5"},
		{1, FuncReadInputRegisters, 0x0100, 1, "01 84 02 C2 C1"},
		{1, FuncReadInputRegisters, 0x0048, 2, "01 04 04 44 9A"},
		{1, FuncReadInputRegisters, 0x0048, 2, ""},
	}
	for _, s := range seeds {
		f.Add(s.unit, s.fn, s.addr, s.value, unhex(f, s.frame))
	}
	f.Fuzz(func(t *testing.T, unit, fn byte, addr, value uint16, frame []byte) {
		req := Request{Unit: unit, Function: fn, Address: addr, Value: value}
		for i := 0; i <= len(frame); i++ {
			if n := req.ResponseLen(frame[:i]); n < exceptionLen || n > maxADU {
				t.Fatalf("ResponseLen(% X) = %d, outside [%d, %d]", frame[:i], n, exceptionLen, maxADU)
			}
		}
		data, err := req.DecodeResponse(frame)
		if err != nil {
			if !errors.Is(err, ErrShortFrame) && !errors.Is(err, ErrCRC) && !errors.Is(err, ErrUnexpected) && !errors.Is(err, ErrException) {
				t.Fatalf("DecodeResponse error %v is none of the documented ones", err)
			}
			return
		}
		if !checkCRC(frame) || frame[0] != unit || frame[1] != fn {
			t.Fatalf("accepted % X as an answer to %v", frame, req)
		}
		if req.isRead() && len(data) != req.dataLen() {
			t.Fatalf("data length %d, want %d", len(data), req.dataLen())
		}
		_ = Words(data)
		_ = Bits(data, int(value%(MaxReadCoils+1)))
	})
}
