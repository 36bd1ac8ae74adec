package machine

import (
	"math/rand/v2"
)

// Jiffies conversions, randomness, module references and small services. Sleeping, waiting and
// waking are in sched_wait.go, kernel threads in kthread.go.

func init() {
	register("__init_swait_queue_head", hNop)
	register("___ratelimit", hTrue)
	register("__msecs_to_jiffies", hMsecsToJiffies)
	register("jiffies_to_msecs", hJiffiesToMsecs)
	register("get_random_bytes", hGetRandomBytes)
	register("get_random_u32", hGetRandomU32)
	register("_find_next_bit", hFindNextBit)
	register("is_vmalloc_addr", hIsVmallocAddr)
	register("try_module_get", hTryModuleGet)
	register("module_put", hModulePut)
	register("put_device", hNop)
	register("sysfs_emit", hSysfsEmit)
	// Bus drivers register in drivers.go; with no devices, interrupts are never raised.
	register("request_threaded_irq", hZero)
	register("devm_request_threaded_irq", hZero)
	register("free_irq", hNop)
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
	if m.moduleGet(t.Arg(0)) {
		return 1, nil
	}
	return 0, nil
}

// moduleGet is try_module_get on the module whose struct module is at this (0: built-in).
func (m *Machine) moduleGet(this uint64) bool {
	if this == 0 {
		return true
	}
	for _, mod := range m.registry.Modules() {
		if mod.ThisModule == this {
			return m.registry.Get(mod)
		}
	}
	return true
}

// modulePut is module_put.
func (m *Machine) modulePut(this uint64) {
	for _, mod := range m.registry.Modules() {
		if this != 0 && mod.ThisModule == this {
			m.registry.Put(mod)
		}
	}
}

func hModulePut(m *Machine, t *Trap) (uint64, error) {
	m.modulePut(t.Arg(0))
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
