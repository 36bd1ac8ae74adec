package machine

import (
	"sort"

	"kemu/loader"
)

// The ORC unwinder for module frames (arch/x86/kernel/unwind_orc.c, module tables only): from the
// faulting RIP and RSP it follows each module frame to its caller using the module's .orc_unwind
// entries. The stack slots it finds return addresses in are the trace's reliable frames; every other
// code address on the stack is printed with "? ", as the kernel's trace does. The kernel image has no
// ORC table here, so the walk ends at the first return into the kernel (do_one_initcall for init).

// ORC register and type numbers (arch/x86/include/asm/orc_types.h, include/linux/objtool.h).
const (
	orcRegUndefined = 0
	orcRegPrevSP    = 1
	orcRegBP        = 4
	orcRegSP        = 5
	orcTypeCall     = 0
)

// maxFrames bounds the walk (the kernel stops at the end of the stack; a corrupt chain must not spin).
const maxFrames = 256

// orcLookup is orc_find() for a module: the entry covering ip.
func orcLookup(table []loader.ORCEntry, ip uint64) (loader.ORCEntry, bool) {
	i := sort.Search(len(table), func(i int) bool { return table[i].IP > ip }) - 1
	if i < 0 {
		return loader.ORCEntry{}, false
	}
	return table[i], true
}

// reliableSlots unwinds the module frames from (rip, rsp, rbp) and returns the stack addresses that
// hold genuine return addresses.
func (m *Machine) reliableSlots(rip, rsp, rbp uint64) map[uint64]bool {
	slots := map[uint64]bool{}
	first := true
	for n := 0; n < maxFrames; n++ {
		g := m.moduleAt(rip)
		if g == nil || g.mod == nil {
			return slots
		}
		ip := rip
		if !first {
			ip-- // a return address: the call may be the function's last instruction
		}
		e, ok := orcLookup(g.mod.ORC, ip)
		if !ok || e.End || e.Type != orcTypeCall {
			return slots
		}
		var cfa uint64
		switch e.SPReg {
		case orcRegSP:
			cfa = rsp + uint64(int64(e.SPOffset))
		case orcRegBP:
			cfa = rbp + uint64(int64(e.SPOffset))
		default:
			return slots
		}
		ret, err := m.ReadU64(cfa - 8)
		if err != nil {
			return slots
		}
		switch e.BPReg {
		case orcRegPrevSP:
			if rbp, err = m.ReadU64(cfa + uint64(int64(e.BPOffset))); err != nil {
				return slots
			}
		case orcRegBP:
			if rbp, err = m.ReadU64(rbp + uint64(int64(e.BPOffset))); err != nil {
				return slots
			}
		case orcRegUndefined:
		}
		slots[cfa-8] = true
		rip, rsp, first = ret, cfa, false
	}
	return slots
}
