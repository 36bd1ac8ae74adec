package machine

import (
	uc "github.com/unicorn-engine/unicorn/bindings/go/unicorn"

	"kemu/loader"
)

// BUG(), WARN() and exception-table fixups: the two ways module code asks the kernel to handle a trap
// at a known instruction.

// bug_entry flags (include/asm-generic/bug.h).
const (
	bugFlagWarning   = 1 << 0
	bugFlagOnce      = 1 << 1
	bugFlagDone      = 1 << 2
	bugFlagNoCutHere = 1 << 3
)

const cutHere = "------------[ cut here ]------------"

// invalidOpcode handles #UD at rip: a ud2 listed in the module's __bug_table is a BUG (oops) or a
// WARN (report, taint W, continue after the ud2); anything else is an "invalid opcode" oops.
func (m *Machine) invalidOpcode(rip uint64) (uint64, error) {
	regs := m.snapshot()
	regs.rip = rip
	g := m.moduleAt(rip)
	if g == nil {
		m.die("invalid opcode", 0, &regs)
		return 0, m.oopsEnd(&regs)
	}
	b, ok := g.bugs[rip]
	if !ok {
		m.die("invalid opcode", 0, &regs)
		return 0, m.oopsEnd(&regs)
	}
	if b.warning {
		if !b.done {
			m.warn(b, &regs)
			if b.once {
				b.done = true
				g.bugs[rip] = b
			}
		}
		m.setReg(uc.X86_REG_RIP, rip+2)
		return rip + 2, nil
	}
	if !b.noCut {
		m.logf(levelWarning, "%s", cutHere)
	}
	if b.file != "" {
		m.logf(levelCrit, "kernel BUG at %s:%d!", b.file, b.line)
	} else {
		m.logf(levelCrit, "Kernel BUG at %s [verbose debug info unavailable]", m.formatB(rip))
	}
	m.die("invalid opcode", 0, &regs)
	return 0, m.oopsEnd(&regs)
}

// warn is __warn(): the WARNING line, modules, registers, trace, end marker, taint W.
func (m *Machine) warn(b bugEntry, regs *regsSnapshot) {
	if !b.noCut {
		m.logf(levelWarning, "%s", cutHere)
	}
	if b.file != "" {
		m.logf(levelWarning, "WARNING: CPU: 0 PID: %d at %s:%d %s", m.pid, b.file, b.line, m.formatS(regs.rip))
	} else {
		m.logf(levelWarning, "WARNING: CPU: 0 PID: %d at %s", m.pid, m.formatS(regs.rip))
	}
	m.printModules()
	m.showRegs(regs)
	m.logf(levelWarning, "---[ end trace 0000000000000000 ]---")
	m.taint |= loader.TaintWarn
}

// exception_table_entry handler types and data fields (arch/x86/include/asm/extable_fixup_types.h).
const (
	exTypeDefault = 1
	exTypeFault   = 2
	exTypeUaccess = 3
	exTypeImmReg  = 17
	exTrapPF      = 14 // X86_TRAP_PF, what EX_TYPE_FAULT leaves in rax
)

// ptRegsOrder maps EX_DATA_REG's pt_regs index to Unicorn registers.
var ptRegsOrder = []int{
	uc.X86_REG_R15, uc.X86_REG_R14, uc.X86_REG_R13, uc.X86_REG_R12, uc.X86_REG_RBP, uc.X86_REG_RBX,
	uc.X86_REG_R11, uc.X86_REG_R10, uc.X86_REG_R9, uc.X86_REG_R8, uc.X86_REG_RAX, uc.X86_REG_RCX,
	uc.X86_REG_RDX, uc.X86_REG_RSI, uc.X86_REG_RDI,
}

// exceptionFixup applies the module's __ex_table entry for a faulting instruction, as
// fixup_exception() does, and returns where execution continues.
func (m *Machine) exceptionFixup(rip uint64) (uint64, bool) {
	g := m.moduleAt(rip)
	if g == nil {
		return 0, false
	}
	e, ok := g.extable[rip]
	if !ok {
		return 0, false
	}
	switch e.data & 0xff {
	case exTypeFault:
		m.setReg(uc.X86_REG_RAX, exTrapPF)
	case exTypeImmReg:
		reg := int(e.data>>8) & 0xf
		imm := int64(e.data >> 16) // sign-extended immediate
		if reg < len(ptRegsOrder) {
			m.setReg(ptRegsOrder[reg], uint64(imm))
		}
	}
	return e.fixup, true
}
