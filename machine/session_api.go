package machine

import (
	"kemu/loader"
	"kemu/printk"
	"kemu/slab"
)

// Read-only views the session package (kemu run/shell and their behaviour report) needs: the log's
// records with their sequence numbers (dmesg -c), the kernel's taint, what is still held on the heap
// and what the kernel is still holding for modules. None of them changes the machine.

// LogRecords is the kernel log's records, oldest first; Seq numbers them across ring-buffer drops.
func (m *Machine) LogRecords() []printk.Record { return m.kernel.log.Records() }

// Tainted is the kernel-wide taint as /proc/sys/kernel/tainted has it: the modules' taints plus the
// ones the machine added (D for an oops, W for a warning, L for a soft lockup).
func (m *Machine) Tainted() loader.Taint { return m.kernelTaint() }

// HeapObjects is every live kmalloc/kmem_cache allocation in address order, each with the caller
// that made it ("module:symbol+0xoff" for module code, a label for the kernel's own).
func (m *Machine) HeapObjects() []slab.Allocation { return m.slab.Leaks() }

// KernelObjects describes the kernel objects the emulated kernel created for modules (classes,
// devices, proc entries) and still holds, as "struct@0xaddr from module:symbol+0xoff", oldest first.
func (m *Machine) KernelObjects() []string {
	out := make([]string, len(m.kernel.objects))
	for i, o := range m.kernel.objects {
		out[i] = o.desc
	}
	return out
}

// Pending is the number of armed timers and queued work items that have not run yet.
func (m *Machine) Pending() (timers, work int) { return len(m.kernel.timers), len(m.kernel.work) }

// Now is the virtual time since boot in nanoseconds, the clock dmesg stamps records with.
func (m *Machine) Now() uint64 { return m.kernel.clock.ns }
