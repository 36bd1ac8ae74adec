package machine

import "kemu/loader"

import "fmt"

// Kernel services without a subsystem of their own: hardening checks, capabilities, delays and
// time, list debugging, module requests.

func init() {
	register("__stack_chk_fail", hStackChkFail)
	register("fortify_panic", hFortifyPanic)
	register("capable", hTrue)
	register("ns_capable", hTrue)
	register("__const_udelay", hConstUdelay)
	register("__udelay", hUdelay)
	register("__ndelay", hNdelay)
	register("__list_add_valid", hListAddValid)
	register("__list_del_entry_valid", hListDelEntryValid)
	register("__request_module", hRequestModule)
	register("__might_sleep", hNop)
	register("__might_resched", hNop)
	register("__SCT__might_resched", hNop)
	register("preempt_schedule", hNop)
	register("preempt_schedule_notrace", hNop)
	register("__preempt_schedule", hNop)
	register("refcount_warn_saturate", hRefcountWarnSaturate)
	register("synchronize_rcu", hNop)
	register("__rcu_read_lock", hNop)
	register("__rcu_read_unlock", hNop)
}

func hTrue(m *Machine, t *Trap) (uint64, error) { return 1, nil }
func hNop(m *Machine, t *Trap) (uint64, error)  { return 0, nil }

// __stack_chk_fail: the canary was overwritten; 6.1 panics naming the function that returned.
func hStackChkFail(m *Machine, t *Trap) (uint64, error) {
	return 0, &kernelPanic{msg: fmt.Sprintf("stack-protector: Kernel stack is corrupted in: %s", m.formatB(t.Return))}
}

// fortify_panic(name): a fortified string function caught an overflow.
func hFortifyPanic(m *Machine, t *Trap) (uint64, error) {
	name, _ := m.ReadCString(t.Arg(0), 64)
	m.logf(levelEmerg, "detected buffer overflow in %s", name)
	return 0, &kernelBug{file: "lib/string_helpers.c", line: 1027}
}

// __const_udelay(xloops): xloops = usecs * 0x10c7 (2^32 / 10^6 rounded up), a busy wait.
func hConstUdelay(m *Machine, t *Trap) (uint64, error) {
	return 0, m.kernel.advance((t.Arg(0)*1000 + 0x10c6) / 0x10c7)
}

func hUdelay(m *Machine, t *Trap) (uint64, error) { return 0, m.kernel.advance(t.Arg(0) * 1e3) }
func hNdelay(m *Machine, t *Trap) (uint64, error) { return 0, m.kernel.advance(t.Arg(0)) }

// __list_add_valid(new, prev, next) is CONFIG_DEBUG_LIST's check (lib/list_debug.c): it reports
// corruption and refuses the add.
func hListAddValid(m *Machine, t *Trap) (uint64, error) {
	nw, prev, next := t.Arg(0), t.Arg(1), t.Arg(2)
	nextPrev, err := m.ReadU64(next + 8)
	if err != nil {
		return 0, err
	}
	prevNext, err := m.ReadU64(prev)
	if err != nil {
		return 0, err
	}
	switch {
	case nextPrev != prev:
		return 0, m.listBug(26, fmt.Sprintf("list_add corruption. next->prev should be prev (%016x), but was %016x. (next=%016x).", prev, nextPrev, next))
	case prevNext != next:
		return 0, m.listBug(29, fmt.Sprintf("list_add corruption. prev->next should be next (%016x), but was %016x. (prev=%016x).", next, prevNext, prev))
	case nw == prev || nw == next:
		return 0, m.listBug(32, fmt.Sprintf("list_add double add: new=%016x, prev=%016x, next=%016x.", nw, prev, next))
	}
	return 1, nil
}

// LIST_POISON1/2 with CONFIG_ILLEGAL_POINTER_VALUE=0xdead000000000000.
const (
	listPoison1 = 0xdead000000000100
	listPoison2 = 0xdead000000000122
)

func hListDelEntryValid(m *Machine, t *Trap) (uint64, error) {
	entry := t.Arg(0)
	next, err := m.ReadU64(entry)
	if err != nil {
		return 0, err
	}
	prev, err := m.ReadU64(entry + 8)
	if err != nil {
		return 0, err
	}
	switch {
	case next == listPoison1:
		return 0, m.listBug(49, fmt.Sprintf("list_del corruption, %016x->next is LIST_POISON1 (%016x)", entry, uint64(listPoison1)))
	case prev == listPoison2:
		return 0, m.listBug(52, fmt.Sprintf("list_del corruption, %016x->prev is LIST_POISON2 (%016x)", entry, uint64(listPoison2)))
	}
	prevNext, err := m.ReadU64(prev)
	if err != nil {
		return 0, err
	}
	nextPrev, err := m.ReadU64(next + 8)
	if err != nil {
		return 0, err
	}
	switch {
	case prevNext != entry:
		return 0, m.listBug(56, fmt.Sprintf("list_del corruption. prev->next should be %016x, but was %016x. (prev=%016x)", entry, prevNext, prev))
	case nextPrev != entry:
		return 0, m.listBug(60, fmt.Sprintf("list_del corruption. next->prev should be %016x, but was %016x. (next=%016x)", entry, nextPrev, next))
	}
	return 1, nil
}

// listBug is CHECK_DATA_CORRUPTION with CONFIG_BUG_ON_DATA_CORRUPTION (Debian sets it): BUG().
func (m *Machine) listBug(line int, msg string) error {
	return &kernelBug{file: "lib/list_debug.c", line: line, msg: msg}
}

// __request_module(wait, fmt, ...): recorded; kemu has no modprobe to run, so it fails as a kernel
// without modprobe does (-ENOENT from call_usermodehelper).
func hRequestModule(m *Machine, t *Trap) (uint64, error) {
	name, err := m.format(t.Arg(1), t.VarArgs(2))
	if err != nil {
		return 0, err
	}
	m.kernel.requested = append(m.kernel.requested, string(name))
	return negErrno(2), nil
}

// refcount_warn_saturate(r, t): the refcount_t misuse warning of lib/refcount.c.
func hRefcountWarnSaturate(m *Machine, t *Trap) (uint64, error) {
	msgs := []string{"saturated; leaking memory", "addition on 0; use-after-free", "addition on 0; use-after-free",
		"underflow; use-after-free", "decrement hit 0; leaking memory"}
	kind := t.Arg(1)
	msg := "saturated; leaking memory"
	if kind < uint64(len(msgs)) {
		msg = msgs[kind]
	}
	_ = m.WriteU32(t.Arg(0), 0xc0000000) // REFCOUNT_SATURATED
	m.logf(levelWarning, "%s", cutHere)
	m.logf(levelWarning, "refcount_t: %s.", msg)
	regs := m.snapshot()
	regs.rip = t.Addr
	m.logf(levelWarning, "WARNING: CPU: 0 PID: %d at lib/refcount.c:%d %s", m.pid, 25, m.formatS(t.Addr))
	m.printModules()
	m.showRegs(&regs)
	m.logf(levelWarning, "---[ end trace 0000000000000000 ]---")
	m.taint |= loader.TaintWarn
	return 0, nil
}

// sleepCheck is schedule_debug()'s "scheduling while atomic" for a sleep under a spinlock.
func (m *Machine) sleepCheck(t *Trap) error {
	count := m.kernel.preemptCount()
	if count == 0 {
		return nil
	}
	m.logf(levelErr, "BUG: scheduling while atomic: %s/%d/0x%08x", m.comm, m.pid, count)
	m.printModules()
	regs := m.snapshot()
	m.printTaskInfo()
	m.printCallTrace(&regs)
	m.taint |= loader.TaintWarn
	return nil
}
