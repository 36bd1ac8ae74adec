package machine

import "fmt"

// The per-CPU area and the current task. On x86-64 SMP, per-CPU variables are linked at offsets from 0
// in .data..percpu and reached through %gs, whose base is the CPU's copy of that section
// (__per_cpu_offset[cpu]). The stack protector's canary lives at %gs:0x28 (fixed_percpu_data).

const (
	canaryOffset   = 0x28               // offsetof(struct fixed_percpu_data, stack_canary)
	stackCanary    = 0x5a17e3c0d00d1e00 // low byte 0, as the kernel's canaries, to stop string overreads
	threadSize     = 16 << 10           // THREAD_SIZE: 16 KiB kernel stacks on x86-64 (KASAN off)
	preemptEnabled = 0x80000000         // PREEMPT_ENABLED: the inverted NEED_RESCHED bit alone
	fallbackTask   = 0x2600             // sizeof(struct task_struct) in Debian's 6.1 when BTF is missing
	modulePerCPU   = 256 << 10          // PERCPU_MODULE_RESERVE-like room for modules' per-CPU data
)

// setupPerCPU maps CPU 0's per-CPU area, points GS at it and fills the variables modules read.
func (m *Machine) setupPerCPU() error {
	size := uint64(64 << 10)
	if end, ok := m.prof.Lookup("__per_cpu_end"); ok && end.Addr > 0 && end.Addr < 1<<26 {
		size = pageUp(end.Addr)
	}
	// The first chunk has room after the static variables for modules' per-CPU data.
	m.kernel.percpuNext, m.kernel.percpuEnd = size, size+modulePerCPU
	order := 0
	for pageSize<<order < size+modulePerCPU {
		order++
	}
	base, err := m.mem.AllocPages(order, true)
	if err != nil {
		return err
	}
	m.percpu = base
	m.setReg(regGSBase, base)
	if err := m.WriteU64(base+canaryOffset, stackCanary); err != nil {
		return err
	}
	if err := m.setPerCPU("this_cpu_off", 8, base); err != nil {
		return err
	}
	if err := m.setPerCPU("__preempt_count", 4, preemptEnabled); err != nil {
		return err
	}
	if s, ok := m.prof.Lookup("__per_cpu_offset"); ok && m.inImage(s.Addr) {
		if err := m.WriteU64(s.Addr, base); err != nil {
			return err
		}
	}
	return nil
}

// setPerCPU writes CPU 0's copy of a per-CPU variable, if the kernel has it.
func (m *Machine) setPerCPU(name string, size int, v uint64) error {
	s, ok := m.prof.Lookup(name)
	if !ok || !m.perCPUSymbol(s) {
		return nil
	}
	if size == 4 {
		return m.WriteU32(m.percpu+s.Addr, uint32(v))
	}
	return m.WriteU64(m.percpu+s.Addr, v)
}

// perCPUValue reads CPU 0's copy of a 64-bit per-CPU variable.
func (m *Machine) perCPUValue(name string) (uint64, bool) {
	s, ok := m.prof.Lookup(name)
	if !ok || !m.perCPUSymbol(s) {
		return 0, false
	}
	v, err := m.ReadU64(m.percpu + s.Addr)
	return v, err == nil
}

// setupTask creates the task that runs module code (insmod's), with its kernel stack.
func (m *Machine) setupTask() error {
	stack, err := m.kernel.vmallocStack()
	if err != nil {
		return fmt.Errorf("kernel stack: %w", err)
	}
	m.stackTop = stack + threadSize
	size := uint64(fallbackTask)
	if s, ok := m.structSize("task_struct"); ok {
		size = s
	}
	task, err := m.kernel.kzalloc(size)
	if err != nil {
		return fmt.Errorf("task_struct: %w", err)
	}
	m.task = task
	m.setField("task_struct", "pid", task, 4, uint64(m.pid))
	m.setField("task_struct", "tgid", task, 4, uint64(m.pid))
	m.setField("task_struct", "stack", task, 8, stack)
	if off, ok := m.fieldOffset("task_struct", "comm"); ok {
		comm := make([]byte, 16)
		copy(comm[:15], m.comm)
		if err := m.WriteAt(comm, task+off); err != nil {
			return err
		}
	}
	if err := m.setPerCPU("current_task", 8, task); err != nil {
		return err
	}
	return m.setPerCPU("cpu_current_top_of_stack", 8, m.stackTop)
}
