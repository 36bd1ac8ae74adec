package machine

import (
	"fmt"
	"strings"

	uc "github.com/unicorn-engine/unicorn/bindings/go/unicorn"

	"kemu/loader"
	"kemu/printk"
)

// Kernel crash reports in Linux 6.1's format (arch/x86/mm/fault.c, arch/x86/kernel/dumpstack.c,
// process_64.c, lib/dump_stack.c). Every report taints the kernel D afterwards (oops_end), kills the
// task that was running module code, and leaves the machine running.

// Page-fault error code bits (X86_PF_*).
const (
	pfProt  = 1 << 0
	pfWrite = 1 << 1
	pfUser  = 1 << 2
	pfInstr = 1 << 4
)

// Selectors and control registers of a 64-bit kernel as Linux sets them up.
const (
	kernelCS = 0x10
	kernelSS = 0x18
	cr0      = 0x80050033
	cr4      = 0x3706f0
	cr3      = 0x10a000
)

// regsSnapshot is the pt_regs of an oops: the CPU state at the faulting instruction.
type regsSnapshot struct {
	rip, rsp, eflags uint64
	gp               [15]uint64 // rax rbx rcx rdx rsi rdi rbp r8..r15
	cr2              uint64
}

var snapshotRegs = []int{
	uc.X86_REG_RAX, uc.X86_REG_RBX, uc.X86_REG_RCX, uc.X86_REG_RDX, uc.X86_REG_RSI, uc.X86_REG_RDI, uc.X86_REG_RBP,
	uc.X86_REG_R8, uc.X86_REG_R9, uc.X86_REG_R10, uc.X86_REG_R11, uc.X86_REG_R12, uc.X86_REG_R13, uc.X86_REG_R14, uc.X86_REG_R15,
	uc.X86_REG_RIP, uc.X86_REG_RSP, uc.X86_REG_EFLAGS,
}

func (m *Machine) snapshot() regsSnapshot {
	var r regsSnapshot
	vals, err := m.cpu.RegReadBatch(snapshotRegs)
	if err != nil || len(vals) != len(snapshotRegs) {
		return r
	}
	copy(r.gp[:], vals[:15])
	r.rip, r.rsp, r.eflags = vals[15], vals[16], vals[17]|0x10000 // RF, as the exception frame shows it
	return r
}

// pageFaultOops reports a kernel-mode page fault that no exception table entry fixes.
func (m *Machine) pageFaultOops(f *Fault) error {
	regs := m.snapshot()
	regs.cr2 = f.Addr
	code := uint64(0)
	if f.Present {
		code |= pfProt
	}
	switch f.Access {
	case AccessWrite:
		code |= pfWrite
	case AccessFetch:
		code |= pfInstr
		regs.rip = f.Addr
	}
	if !canonical(f.Addr) {
		// The CPU raises #GP, not #PF, for a non-canonical address.
		m.die(fmt.Sprintf("general protection fault, probably for non-canonical address %#x", f.Addr), 0, &regs)
		return m.oopsEnd(&regs)
	}
	if m.onStackGuard(f.Addr) {
		return m.stackOverflow(f.Addr, &regs)
	}
	if f.Access == AccessFetch && f.Present {
		m.logf(levelCrit, "kernel tried to execute NX-protected page - exploit attempt? (uid: 0)")
	}
	if f.Addr < pageSize {
		m.logf(levelAlert, "BUG: kernel NULL pointer dereference, address: %016x", f.Addr)
	} else {
		m.logf(levelAlert, "BUG: unable to handle page fault for address: %016x", f.Addr)
	}
	kind := map[Access]string{AccessRead: "read access", AccessWrite: "write access", AccessFetch: "instruction fetch"}[f.Access]
	m.logf(levelAlert, "#PF: supervisor %s in kernel mode", kind)
	why := "not-present page"
	if f.Present {
		why = "permissions violation"
	}
	m.logf(levelAlert, "#PF: error_code(0x%04x) - %s", code, why)
	if line := m.mem.Tables.DumpEntries(f.Addr); line != "" {
		m.logf(levelInfo, "%s", line) // dump_pagetable(): pr_info and pr_cont, trailing space kept
	}
	m.die("Oops", code, &regs)
	m.logf(levelWarning, "CR2: %016x", f.Addr)
	return m.oopsEnd(&regs)
}

// exceptionOops reports a CPU exception in kernel mode other than a page fault or ud2: a general
// protection fault (non-canonical address), a divide error, an int3 in module code.
func (m *Machine) exceptionOops(rip uint64) error {
	regs := m.snapshot()
	regs.rip = rip
	if addr, ok := m.nonCanonicalOperand(&regs); ok {
		m.die(fmt.Sprintf("general protection fault, probably for non-canonical address %#x", addr), 0, &regs)
	} else {
		m.die("general protection fault", 0, &regs)
	}
	return m.oopsEnd(&regs)
}

// nonCanonicalOperand guesses the non-canonical address behind a #GP: the first general register
// holding one (the kernel decodes the instruction; a register holding the address is what it finds
// in practice).
func (m *Machine) nonCanonicalOperand(r *regsSnapshot) (uint64, bool) {
	for _, v := range r.gp {
		if !canonical(v) {
			return v, true
		}
	}
	return 0, false
}

func canonical(v uint64) bool {
	top := v >> 47
	return top == 0 || top == 0x1ffff
}

// die prints the body common to every oops: header, task line, registers, call trace, modules.
func (m *Machine) die(str string, errCode uint64, regs *regsSnapshot) {
	m.oopses++
	m.logf(levelWarning, "%s: %04x [#%d] PREEMPT SMP NOPTI", str, errCode&0xffff, m.oopses)
	m.showRegs(regs)
	m.printModules()
}

// showRegs is show_regs(): who was running, the registers and the call trace.
func (m *Machine) showRegs(regs *regsSnapshot) {
	m.printTaskInfo()
	m.showRegisters(regs)
	m.printCallTrace(regs)
}

func (m *Machine) printTaskInfo() {
	m.logf(levelWarning, "CPU: 0 PID: %d Comm: %.20s %s %s %s", m.pid, m.comm, m.kernelTaint().KernelString(), m.prof.Release, firstWord(m.prof.Version))
	m.logf(levelWarning, "Hardware name: %s", m.opts.Hardware)
}

// showRegisters is __show_regs(SHOW_REGS_ALL), preceded by the RIP and Code lines.
func (m *Machine) showRegisters(r *regsSnapshot) {
	m.logf(levelWarning, "RIP: %04x:%s", kernelCS, m.formatS(r.rip))
	m.logf(levelWarning, "%s", m.codeLine(r.rip))
	m.logf(levelWarning, "RSP: %04x:%016x EFLAGS: %08x", kernelSS, r.rsp, r.eflags)
	g := r.gp
	m.logf(levelWarning, "RAX: %016x RBX: %016x RCX: %016x", g[0], g[1], g[2])
	m.logf(levelWarning, "RDX: %016x RSI: %016x RDI: %016x", g[3], g[4], g[5])
	m.logf(levelWarning, "RBP: %016x R08: %016x R09: %016x", g[6], g[7], g[8])
	m.logf(levelWarning, "R10: %016x R11: %016x R12: %016x", g[9], g[10], g[11])
	m.logf(levelWarning, "R13: %016x R14: %016x R15: %016x", g[12], g[13], g[14])
	m.logf(levelWarning, "FS:  %016x(%04x) GS:%016x(%04x) knlGS:%016x", 0, 0, m.percpu, 0, 0)
	m.logf(levelWarning, "CS:  %04x DS: %04x ES: %04x CR0: %016x", kernelCS, 0, 0, cr0)
	m.logf(levelWarning, "CR2: %016x CR3: %016x CR4: %016x", r.cr2, cr3, cr4)
}

// Code line geometry (show_opcodes).
const (
	prologueSize = 42
	epilogueSize = 21
)

// codeLine is show_opcodes(): 42 bytes before RIP, the byte at RIP in <>, 21 after.
func (m *Machine) codeLine(rip uint64) string {
	start := rip - prologueSize
	buf := make([]byte, prologueSize+1+epilogueSize)
	if err := m.ReadAt(buf, start); err != nil {
		return fmt.Sprintf("Code: Unable to access opcode bytes at 0x%x.", start)
	}
	var b strings.Builder
	b.WriteString("Code:")
	for i, c := range buf {
		if i == prologueSize {
			fmt.Fprintf(&b, " <%02x>", c)
		} else {
			fmt.Fprintf(&b, " %02x", c)
		}
	}
	return b.String()
}

// oopsEnd finishes a report as oops_end() does: end marker, the register summary again, taint D;
// the task that ran the module code dies.
func (m *Machine) oopsEnd(regs *regsSnapshot) error {
	m.registry.AddTaint(loader.TaintDie) // before the end marker, as oops_end() does
	m.logf(levelWarning, "---[ end trace 0000000000000000 ]---")
	m.showRegisters(regs)
	return errTaskDied
}

// kernelBug is an error a handler returns for a BUG() inside the emulated kernel (list corruption,
// a bad free): it is reported like a BUG in module code, with the kernel function as RIP.
type kernelBug struct {
	file string
	line int
	msg  string // printed before the cut-here line, e.g. "list_add corruption. ..."
}

func (b *kernelBug) Error() string {
	return fmt.Sprintf("kernel BUG at %s:%d: %s", b.file, b.line, b.msg)
}

func (m *Machine) bugOops(b *kernelBug) error {
	if b.msg != "" {
		m.logf(levelErr, "%s", b.msg)
	}
	m.logf(levelWarning, "------------[ cut here ]------------")
	m.logf(levelCrit, "kernel BUG at %s:%d!", b.file, b.line)
	regs := m.snapshot()
	m.die("invalid opcode", 0, &regs)
	return m.oopsEnd(&regs)
}

// kernelPanic halts the machine (stack-protector failure, fortify_panic, BUG in atomic context).
type kernelPanic struct{ msg string }

func (p *kernelPanic) Error() string { return "Kernel panic - not syncing: " + p.msg }

func (m *Machine) panicMachine(p *kernelPanic) error {
	m.logf(levelEmerg, "Kernel panic - not syncing: %s", p.msg)
	regs := m.snapshot()
	m.printTaskInfo()
	m.printCallTrace(&regs)
	m.logf(levelEmerg, "---[ end Kernel panic - not syncing: %s ]---", p.msg)
	m.dead = true
	return errMachineHalted
}

// unimplementedReport stops a call in Strict mode: an oops-style report naming the missing function.
func (m *Machine) unimplementedReport(e *errUnimplemented) error {
	regs := m.snapshot()
	m.logf(levelAlert, "kemu: unimplemented kernel function %s called from %s", e.name, e.caller)
	m.die("kemu: unimplemented kernel function", 0, &regs)
	return m.oopsEnd(&regs)
}

// softLockup is the watchdog's report for a CPU that never left module code; the task is stopped
// (the real one would spin forever), and the kernel is tainted L. spun is the virtual time the task
// has already been seen spinning: the report comes 22 s into the spin, as the kernel's watchdog
// (twice watchdog_thresh, sampled every 4 s) typically catches it.
func (m *Machine) softLockup(spun uint64) error {
	const stuck = 22e9
	if spun < stuck {
		_ = m.kernel.advance(stuck - spun)
	}
	regs := m.snapshot()
	m.logf(levelEmerg, "watchdog: BUG: soft lockup - CPU#0 stuck for 22s! [%s:%d]", m.comm, m.pid)
	m.printModules()
	m.taint |= loader.TaintSoftLockup
	m.printTaskInfo()
	m.showRegisters(&regs)
	m.printCallTrace(&regs)
	return fmt.Errorf("soft lockup: %w", errTaskDied)
}

// onStackGuard reports whether addr lies in the unmapped page below the current kernel stack.
func (m *Machine) onStackGuard(addr uint64) bool {
	bottom := m.stackTop - threadSize
	return addr < bottom && addr >= bottom-pageSize
}

// stackOverflow is handle_stack_overflow(): with VMAP_STACK the overflow hits the guard page and
// the double-fault handler reports it, pointers hashed as %p prints them.
func (m *Machine) stackOverflow(addr uint64, regs *regsSnapshot) error {
	line := m.formatter().Format([]byte("BUG: TASK stack guard page was hit at %p (stack is %p..%p)"),
		&printk.SliceArgs{Values: []uint64{addr, m.stackTop - threadSize, m.stackTop}})
	m.logf(levelEmerg, "%s", line)
	m.die("stack guard page", 0, regs)
	return m.oopsEnd(regs)
}
