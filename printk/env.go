package printk

import (
	"encoding/binary"
	"fmt"
)

// Args yields a call's integer-class variadic arguments in order, as va_arg
// does on x86-64: general-purpose registers first, then the stack. The kernel
// uses no floating-point arguments, so a single stream is enough. Next must
// not fail: a source that runs dry returns 0, as reading garbage would.
type Args interface {
	Next() uint64
}

// Env is the guest as the formatter sees it: bounded memory reads that fail
// instead of faulting, and kallsyms.
type Env interface {
	// ReadString returns the bytes at addr up to (not including) the first
	// NUL, reading at most max bytes. It fails if any byte it needs is
	// unreadable.
	ReadString(addr uint64, max int) (string, error)
	// Read fills buf from addr, or fails if any byte is unreadable.
	Read(addr uint64, buf []byte) error
	// Symbolize finds the symbol containing addr: its name, addr's offset
	// into it, its size and its module ("" for the kernel image).
	Symbolize(addr uint64) (name string, off, size uint64, module string, ok bool)
}

// SliceArgs is Args over a fixed list, for tests and for callers that have
// already gathered the arguments. Reading past the end yields 0.
type SliceArgs struct {
	Values []uint64
	next   int
}

// Next returns the next value, or 0 once the list is exhausted.
func (a *SliceArgs) Next() uint64 {
	if a.next >= len(a.Values) {
		return 0
	}
	v := a.Values[a.next]
	a.next++
	return v
}

// VaList walks a guest x86-64 va_list, the way va_arg does for integer
// arguments. The System V va_list is
//
//	struct { u32 gp_offset; u32 fp_offset; void *overflow_arg_area; void *reg_save_area; }
//
// gp_offset below 48 selects the next of the six saved registers in
// reg_save_area; after that arguments come from overflow_arg_area in 8-byte
// slots. VaList works on its own copy (va_copy), never writing the guest's.
// A read that fails yields 0 and is remembered in Err.
type VaList struct {
	env      Env
	gpOffset uint32
	overflow uint64
	regSave  uint64
	// Err is the first failed read, if any.
	Err error
}

// vaListSize is sizeof(va_list) on x86-64.
const vaListSize = 24

// gpRegisterBytes is the size of the six general-purpose argument registers
// in reg_save_area.
const gpRegisterBytes = 6 * 8

// NewVaList reads the va_list at addr.
func NewVaList(env Env, addr uint64) (*VaList, error) {
	var raw [vaListSize]byte
	if err := env.Read(addr, raw[:]); err != nil {
		return nil, fmt.Errorf("read va_list at %#x: %w", addr, err)
	}
	return &VaList{
		env:      env,
		gpOffset: binary.LittleEndian.Uint32(raw[0:]),
		overflow: binary.LittleEndian.Uint64(raw[8:]),
		regSave:  binary.LittleEndian.Uint64(raw[16:]),
	}, nil
}

// Next returns the next integer-class argument.
func (v *VaList) Next() uint64 {
	var slot uint64
	if v.gpOffset < gpRegisterBytes {
		slot = v.regSave + uint64(v.gpOffset)
		v.gpOffset += 8
	} else {
		slot = v.overflow
		v.overflow += 8
	}
	var raw [8]byte
	if err := v.env.Read(slot, raw[:]); err != nil {
		if v.Err == nil {
			v.Err = fmt.Errorf("va_arg at %#x: %w", slot, err)
		}
		return 0
	}
	return binary.LittleEndian.Uint64(raw[:])
}
