package loader

import "strings"

// Taint is the kernel's taint bit set (include/linux/panic.h numbering), per module or kernel-wide.
type Taint uint32

// The taint bits, in the kernel's order.
const (
	TaintProprietary    Taint = 1 << 0  // P (G when clear)
	TaintForcedModule   Taint = 1 << 1  // F
	TaintCPUOutOfSpec   Taint = 1 << 2  // S
	TaintForcedRmmod    Taint = 1 << 3  // R
	TaintMachineCheck   Taint = 1 << 4  // M
	TaintBadPage        Taint = 1 << 5  // B
	TaintUser           Taint = 1 << 6  // U
	TaintDie            Taint = 1 << 7  // D
	TaintOverriddenACPI Taint = 1 << 8  // A
	TaintWarn           Taint = 1 << 9  // W
	TaintCrap           Taint = 1 << 10 // C: staging driver
	TaintFirmware       Taint = 1 << 11 // I
	TaintOOTModule      Taint = 1 << 12 // O: out-of-tree
	TaintUnsigned       Taint = 1 << 13 // E: unsigned or unverified module
	TaintSoftLockup     Taint = 1 << 14 // L
	TaintLivepatch      Taint = 1 << 15 // K
	TaintAux            Taint = 1 << 16 // X
	TaintRandstruct     Taint = 1 << 17 // T
	TaintTest           Taint = 1 << 18 // N
)

// taintFlags is taint_flags[] of kernel/panic.c: letter when set, when clear, and whether modules carry it.
var taintFlags = [...]struct {
	set, clear byte
	module     bool
}{
	{'P', 'G', true}, {'F', ' ', true}, {'S', ' ', false}, {'R', ' ', false}, {'M', ' ', false},
	{'B', ' ', false}, {'U', ' ', false}, {'D', ' ', false}, {'A', ' ', false}, {'W', ' ', false},
	{'C', ' ', true}, {'I', ' ', false}, {'O', ' ', true}, {'E', ' ', true}, {'L', ' ', false},
	{'K', ' ', true}, {'X', ' ', true}, {'T', ' ', true}, {'N', ' ', true},
}

// String is the module_flags_taint() view: the letters of the set module taints, in bit order ("OE").
func (t Taint) String() string {
	var b strings.Builder
	for i, f := range taintFlags {
		if f.module && t&(1<<i) != 0 {
			b.WriteByte(f.set)
		}
	}
	return b.String()
}

// KernelString is print_tainted(): "Not tainted" or "Tainted: " and one column per flag.
func (t Taint) KernelString() string {
	if t == 0 {
		return "Not tainted"
	}
	b := []byte("Tainted: ")
	for i, f := range taintFlags {
		if t&(1<<i) != 0 {
			b = append(b, f.set)
		} else {
			b = append(b, f.clear)
		}
	}
	return string(b)
}
