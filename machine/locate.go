package machine

import (
	"github.com/knightsc/gapstone"
	uc "github.com/unicorn-engine/unicorn/bindings/go/unicorn"
)

// Unicorn 2.0.1 does not always report the faulting instruction after a data fault: when the fault
// happens inside a translation block, RIP may still hold the block's first instruction while the
// registers already reflect the instructions before the faulting one. faultingInstruction finds the
// real one by decoding forward from the reported RIP and computing each memory operand's effective
// address from the (already updated) registers: the first instruction whose operand covers the fault
// address is the one that faulted.

// maxBlockScan bounds the instructions decoded: a translation block is at most a few dozen.
const maxBlockScan = 64

// gprByName maps capstone's register names to Unicorn's registers for address computation.
var gprByName = map[string]int{
	"rax": uc.X86_REG_RAX, "rbx": uc.X86_REG_RBX, "rcx": uc.X86_REG_RCX, "rdx": uc.X86_REG_RDX,
	"rsi": uc.X86_REG_RSI, "rdi": uc.X86_REG_RDI, "rbp": uc.X86_REG_RBP, "rsp": uc.X86_REG_RSP,
	"r8": uc.X86_REG_R8, "r9": uc.X86_REG_R9, "r10": uc.X86_REG_R10, "r11": uc.X86_REG_R11,
	"r12": uc.X86_REG_R12, "r13": uc.X86_REG_R13, "r14": uc.X86_REG_R14, "r15": uc.X86_REG_R15,
}

// faultingInstruction returns the address of the instruction at or after rip whose memory operand
// covers addr, or rip when none can be found.
func (m *Machine) faultingInstruction(rip, addr uint64) uint64 {
	code := make([]byte, 16*maxBlockScan)
	n := 0
	for n < len(code) {
		// Read page by page: the block may end just before an unmapped page.
		chunk := min(uint64(len(code)-n), pageDown(rip+uint64(n))+pageSize-(rip+uint64(n)))
		if m.ReadAt(code[n:n+int(chunk)], rip+uint64(n)) != nil {
			break
		}
		n += int(chunk)
	}
	if n == 0 {
		return rip
	}
	engine, err := gapstone.New(gapstone.CS_ARCH_X86, gapstone.CS_MODE_64)
	if err != nil {
		return rip
	}
	defer engine.Close()
	if engine.SetOption(gapstone.CS_OPT_DETAIL, gapstone.CS_OPT_ON) != nil {
		return rip
	}
	insns, err := engine.Disasm(code[:n], rip, maxBlockScan)
	if err != nil {
		return rip
	}
	for _, in := range insns {
		if in.X86 == nil {
			continue
		}
		for _, op := range in.X86.Operands {
			if op.Type != gapstone.X86_OP_MEM {
				continue
			}
			ea, ok := m.effectiveAddress(&engine, in, op.Mem)
			size := uint64(max(op.Size, 1))
			if ok && addr >= ea && addr < ea+size {
				return uint64(in.Address)
			}
		}
	}
	return rip
}

// effectiveAddress computes base + index*scale + disp (+ the GS base for %gs: operands), with RIP
// meaning the next instruction.
func (m *Machine) effectiveAddress(e *gapstone.Engine, in gapstone.Instruction, mem gapstone.X86MemoryOperand) (uint64, bool) {
	ea := uint64(mem.Disp)
	if mem.Base != 0 {
		name := e.RegName(mem.Base)
		switch r, ok := gprByName[name]; {
		case name == "rip":
			ea += uint64(in.Address) + uint64(in.Size)
		case ok:
			ea += m.reg(r)
		default:
			return 0, false
		}
	}
	if mem.Index != 0 {
		r, ok := gprByName[e.RegName(mem.Index)]
		if !ok {
			return 0, false
		}
		ea += m.reg(r) * uint64(mem.Scale)
	}
	if mem.Segment != 0 && e.RegName(mem.Segment) == "gs" {
		ea += m.percpu
	}
	return ea, true
}
