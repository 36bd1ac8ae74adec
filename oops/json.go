package oops

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// Kernel addresses exceed 2^53, past which JSON numbers lose precision in most readers (jq, JavaScript),
// so Reports marshal addresses as "0x..." strings. Offsets and sizes stay numbers.

// hexAddr is an address in JSON: "0xffffffffc0a0001c". It also reads plain numbers.
type hexAddr uint64

func (a hexAddr) MarshalJSON() ([]byte, error) {
	return []byte(`"` + fmt.Sprintf("%#x", uint64(a)) + `"`), nil
}

func (a *hexAddr) UnmarshalJSON(b []byte) error {
	s := strings.Trim(string(b), `"`)
	base := 10
	if after, ok := strings.CutPrefix(s, "0x"); ok {
		s, base = after, 16
	}
	v, err := strconv.ParseUint(s, base, 64)
	if err != nil {
		return fmt.Errorf("address %s: %w", b, err)
	}
	*a = hexAddr(v)
	return nil
}

// MarshalJSON writes the frame with its address in hex.
func (f Frame) MarshalJSON() ([]byte, error) {
	type plain Frame
	return json.Marshal(struct {
		plain
		Address hexAddr `json:"address,omitempty"`
	}{plain(f), hexAddr(f.Address)})
}

// UnmarshalJSON reads what MarshalJSON writes.
func (f *Frame) UnmarshalJSON(b []byte) error {
	type plain Frame
	var v struct {
		plain
		Address hexAddr `json:"address,omitempty"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*f = Frame(v.plain)
	f.Address = uint64(v.Address)
	return nil
}

// MarshalJSON writes the instruction with its address in hex.
func (in Instruction) MarshalJSON() ([]byte, error) {
	type plain Instruction
	return json.Marshal(struct {
		plain
		Address hexAddr `json:"address"`
	}{plain(in), hexAddr(in.Address)})
}

// UnmarshalJSON reads what MarshalJSON writes.
func (in *Instruction) UnmarshalJSON(b []byte) error {
	type plain Instruction
	var v struct {
		plain
		Address hexAddr `json:"address"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*in = Instruction(v.plain)
	in.Address = uint64(v.Address)
	return nil
}

// reportJSON is a Report with its fault address and registers in hex; the outer fields hide the
// embedded ones of the same JSON name.
type reportJSON struct {
	plainReport
	FaultAddress *hexAddr           `json:"fault_address,omitempty"`
	Registers    map[string]hexAddr `json:"registers,omitempty"`
}

type plainReport Report

// MarshalJSON writes the report with the fault address and registers in hex.
func (r Report) MarshalJSON() ([]byte, error) {
	v := reportJSON{plainReport: plainReport(r)}
	if r.FaultAddress != nil {
		fa := hexAddr(*r.FaultAddress)
		v.FaultAddress = &fa
	}
	if r.Registers != nil {
		v.Registers = map[string]hexAddr{}
		for k, a := range r.Registers {
			v.Registers[k] = hexAddr(a)
		}
	}
	return json.Marshal(v)
}

// UnmarshalJSON reads what MarshalJSON writes.
func (r *Report) UnmarshalJSON(b []byte) error {
	var v reportJSON
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*r = Report(v.plainReport)
	r.FaultAddress, r.Registers = nil, nil
	if v.FaultAddress != nil {
		fa := uint64(*v.FaultAddress)
		r.FaultAddress = &fa
	}
	if v.Registers != nil {
		r.Registers = map[string]uint64{}
		for k, a := range v.Registers {
			r.Registers[k] = uint64(a)
		}
	}
	return nil
}
