package machine

import (
	"math/rand/v2"
)

// Waiting, completions, driver registration and small services. One task runs module code, so
// nothing it waits for can be done by another task while it waits: a wait either finds its condition
// already true or times out in virtual time.

func init() {
	register("init_wait_entry", hNop)
	register("prepare_to_wait_event", hZero)
	register("finish_wait", hNop)
	register("__init_swait_queue_head", hNop)
	register("schedule", hSchedule)
	register("schedule_timeout", hScheduleTimeout)
	register("schedule_timeout_interruptible", hScheduleTimeout)
	register("schedule_timeout_uninterruptible", hScheduleTimeout)
	register("complete", hComplete)
	register("complete_all", hComplete)
	register("wait_for_completion", hWaitForCompletion)
	register("wait_for_completion_timeout", hWaitForCompletionTimeout)
	register("wait_for_completion_interruptible_timeout", hWaitForCompletionTimeout)
	register("___ratelimit", hTrue)
	register("__msecs_to_jiffies", hMsecsToJiffies)
	register("jiffies_to_msecs", hJiffiesToMsecs)
	register("get_random_bytes", hGetRandomBytes)
	register("get_random_u32", hGetRandomU32)
	register("_find_next_bit", hFindNextBit)
	register("is_vmalloc_addr", hIsVmallocAddr)
	register("try_module_get", hTryModuleGet)
	register("module_put", hModulePut)
	register("rtnl_lock", hNop)
	register("rtnl_unlock", hNop)
	register("put_device", hNop)
	register("sysfs_emit", hSysfsEmit)
	// Bus drivers register in drivers.go; with no devices, interrupts are never raised.
	register("request_threaded_irq", hZero)
	register("devm_request_threaded_irq", hZero)
	register("free_irq", hNop)
}

// schedule() with nothing else runnable returns at once, a jiffy later.
func hSchedule(m *Machine, t *Trap) (uint64, error) {
	if err := m.sleepCheck(t); err != nil {
		return 0, err
	}
	return 0, m.kernel.advance(1e9 / m.kernel.clock.hz)
}

// schedule_timeout(timeout): nobody wakes the task, so the whole timeout passes; returns 0.
func hScheduleTimeout(m *Machine, t *Trap) (uint64, error) {
	if err := m.sleepCheck(t); err != nil {
		return 0, err
	}
	timeout := t.Arg(0)
	if int64(timeout) < 0 || timeout > 1<<31 { // MAX_SCHEDULE_TIMEOUT: would sleep forever
		timeout = 1 << 31
	}
	return 0, m.kernel.advance(timeout * 1e9 / m.kernel.clock.hz)
}

// completionDone is the address of completion.done.
func (m *Machine) completionDone(c uint64) (uint64, bool) {
	off, ok := m.fieldOffset("completion", "done")
	return c + off, ok
}

// complete(x): done++ (complete_all saturates at UINT_MAX).
func hComplete(m *Machine, t *Trap) (uint64, error) {
	addr, ok := m.completionDone(t.Arg(0))
	if !ok {
		return 0, nil
	}
	done, err := m.ReadU32(addr)
	if err != nil {
		return 0, err
	}
	switch {
	case t.Name == "complete_all":
		done = ^uint32(0)
	case done != ^uint32(0):
		done++
	}
	return 0, m.WriteU32(addr, done)
}

// takeCompletion consumes one completion if there is one.
func (m *Machine) takeCompletion(c uint64) (bool, error) {
	addr, ok := m.completionDone(c)
	if !ok {
		return true, nil
	}
	done, err := m.ReadU32(addr)
	if err != nil || done == 0 {
		return false, err
	}
	if done != ^uint32(0) {
		done--
	}
	return true, m.WriteU32(addr, done)
}

// wait_for_completion(x): if nothing completed it, the only task would sleep forever; kemu reports
// the hang as the hung-task detector would after 120 s.
func hWaitForCompletion(m *Machine, t *Trap) (uint64, error) {
	ok, err := m.takeCompletion(t.Arg(0))
	if err != nil || ok {
		return 0, err
	}
	if err := m.kernel.advance(120e9); err != nil {
		return 0, err
	}
	m.logf(levelErr, "INFO: task %s:%d blocked for more than 120 seconds.", m.comm, m.pid)
	m.logf(levelErr, "      %s %s %s", m.kernelTaint().KernelString(), m.prof.Release, firstWord(m.prof.Version))
	return 0, m.softLockup()
}

// wait_for_completion_timeout(x, timeout): the remaining jiffies (at least 1) or 0 on timeout.
func hWaitForCompletionTimeout(m *Machine, t *Trap) (uint64, error) {
	ok, err := m.takeCompletion(t.Arg(0))
	if err != nil {
		return 0, err
	}
	if ok {
		return max(t.Arg(1), 1), nil
	}
	return 0, m.kernel.advance(t.Arg(1) * 1e9 / m.kernel.clock.hz)
}

func hMsecsToJiffies(m *Machine, t *Trap) (uint64, error) {
	hz := m.kernel.clock.hz
	return (uint64(uint32(t.Arg(0)))*hz + 999) / 1000, nil
}

func hJiffiesToMsecs(m *Machine, t *Trap) (uint64, error) {
	return t.Arg(0) * 1000 / m.kernel.clock.hz, nil
}

// get_random_bytes(buf, n): from the machine's seeded generator, so runs are reproducible.
func hGetRandomBytes(m *Machine, t *Trap) (uint64, error) {
	b := make([]byte, min(t.Arg(1), 1<<20))
	for i := range b {
		b[i] = byte(m.kernel.random().Uint32())
	}
	return 0, m.WriteAt(b, t.Arg(0))
}

func hGetRandomU32(m *Machine, t *Trap) (uint64, error) {
	return uint64(m.kernel.random().Uint32()), nil
}

func (k *kernelState) random() *rand.Rand {
	if k.rng == nil {
		k.rng = rand.New(rand.NewPCG(0x6b656d75, 0x72616e64))
	}
	return k.rng
}

// _find_next_bit(addr, size, offset): the first set bit at or after offset, or size.
func hFindNextBit(m *Machine, t *Trap) (uint64, error) {
	addr, size := t.Arg(0), t.Arg(1)
	for bit := t.Arg(2); bit < size; bit++ {
		if bit%64 == 0 && size-bit >= 64 {
			w, err := m.ReadU64(addr + bit/8)
			if err != nil {
				return 0, err
			}
			if w == 0 {
				bit += 63
				continue
			}
		}
		w, err := m.ReadU64(addr + bit/64*8)
		if err != nil {
			return 0, err
		}
		if w&(1<<(bit%64)) != 0 {
			return bit, nil
		}
	}
	return size, nil
}

func hIsVmallocAddr(m *Machine, t *Trap) (uint64, error) {
	if p := t.Arg(0); p >= m.layout.vmallocBase && p < m.layout.vmemmapBase {
		return 1, nil
	}
	return 0, nil
}

// try_module_get(mod): fails for a module that is going away; NULL (built-in) always succeeds.
func hTryModuleGet(m *Machine, t *Trap) (uint64, error) {
	if t.Arg(0) == 0 {
		return 1, nil
	}
	for _, mod := range m.registry.Modules() {
		if mod.ThisModule == t.Arg(0) {
			if m.registry.Get(mod) {
				return 1, nil
			}
			return 0, nil
		}
	}
	return 1, nil
}

func hModulePut(m *Machine, t *Trap) (uint64, error) {
	for _, mod := range m.registry.Modules() {
		if mod.ThisModule == t.Arg(0) {
			m.registry.Put(mod)
		}
	}
	return 0, nil
}

// sysfs_emit(buf, fmt, ...): formats into a PAGE_SIZE sysfs buffer; buf must be page aligned.
func hSysfsEmit(m *Machine, t *Trap) (uint64, error) {
	if t.Arg(0) == 0 || t.Arg(0)%pageSize != 0 {
		m.logf(levelWarning, "invalid sysfs_emit: buf:%016x", t.Arg(0))
		return 0, nil
	}
	return m.snprintf(true, t.Arg(0), pageSize, t.Arg(1), t.VarArgs(2))
}

func firstWord(s string) string {
	for i := range s {
		if s[i] == ' ' {
			return s[:i]
		}
	}
	return s
}
