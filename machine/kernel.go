package machine

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"

	"kemu/mmu"
	"kemu/printk"
)

// kernelState is the emulated kernel's own bookkeeping: its allocators, virtual time and log.
type kernelState struct {
	m *Machine

	percpuNext, percpuEnd uint64 // dynamic per-CPU chunk for modules' per-CPU data (offsets)

	clock clock
	sched scheduler // tasks and the run queue (sched.go)
	log   printk.Log

	caches map[uint64]*kmemCache // kmem_cache objects by guest address

	locks     map[uint64]*lockState // every lock module code touched, by address
	spinDepth int                   // spinlocks held: preemption (and sleeping) disabled
	softirq   bool                  // a timer callback is running (softirq context)
	requested []string              // request_module() names

	majors, miscMinors int            // dynamic device numbers handed out
	objects            []kernelObject // kernel objects created for modules and not yet released

	timers  map[uint64]uint64 // armed timer_list (or delayed_work) addresses -> expiry in jiffies
	delayed map[uint64]bool   // which timers entries are delayed work rather than timer_lists
	rng     *rand.Rand        // get_random_bytes and friends, seeded: runs are reproducible
	work    []uint64          // queued work_struct addresses, in order
}

func newKernelState(m *Machine) *kernelState {
	return &kernelState{
		m:      m,
		caches: map[uint64]*kmemCache{},
		locks:  map[uint64]*lockState{},
	}
}

// init gives the kernel's data objects the values modules depend on.
func (k *kernelState) init() error {
	hz := uint64(250)
	if v, err := strconv.ParseUint(k.m.prof.Config["CONFIG_HZ"], 10, 32); err == nil && v > 0 {
		hz = v
	}
	k.clock = clock{hz: hz}
	words := []struct {
		name string
		v    uint64
	}{
		{"page_offset_base", k.m.layout.directMap},
		{"vmalloc_base", k.m.layout.vmallocBase},
		{"vmemmap_base", k.m.layout.vmemmapBase},
		{"phys_base", 0},
	}
	for _, w := range words {
		if err := k.m.setKernelWord(w.name, w.v); err != nil {
			return err
		}
	}
	if err := k.m.initParavirt(); err != nil {
		return err
	}
	if err := k.initKmallocCaches(); err != nil {
		return err
	}
	if err := k.initWorkqueues(); err != nil {
		return err
	}
	return k.syncJiffies()
}

// setKernelWord stores a 64-bit value into a kernel-image data symbol, if the kernel has it.
func (m *Machine) setKernelWord(name string, v uint64) error {
	s, ok := m.prof.Lookup(name)
	if !ok || !m.inImage(s.Addr) {
		return nil
	}
	if err := m.WriteU64(s.Addr, v); err != nil {
		return fmt.Errorf("initialise %s: %w", name, err)
	}
	return nil
}

// clock is virtual time: nanoseconds since boot, moved only by the emulated kernel (sleeps, delays,
// the watchdog), so runs are reproducible.
type clock struct {
	ns uint64
	hz uint64
}

// initialJiffies is INITIAL_JIFFIES: jiffies start 300 s before wrapping, to catch wrap bugs early.
func (c clock) jiffies() uint64 {
	initial := uint64(uint32(-int32(300 * c.hz)))
	return initial + c.ns*c.hz/1e9
}

// advance moves virtual time forward and publishes the new jiffies.
func (k *kernelState) advance(ns uint64) error {
	k.clock.ns += ns
	return k.syncJiffies()
}

func (k *kernelState) syncJiffies() error {
	j := k.clock.jiffies()
	if err := k.m.setKernelWord("jiffies_64", j); err != nil {
		return err
	}
	return k.m.setKernelWord("jiffies", j)
}

// kernelObject is a kernel object created on a module's behalf (a class, a device, a proc entry):
// its address and "struct@0xaddr from module:symbol+0xoff".
type kernelObject struct {
	addr uint64
	desc string
}

// releaseObject frees a kernel object the emulated kernel created, when the module destroys it
// (class_destroy, device_destroy, proc_remove ...); an address that is not one is left alone (the
// module's own struct, as device_register takes).
func (m *Machine) releaseObject(addr uint64, caller mmu.Caller) error {
	i := slices.IndexFunc(m.kernel.objects, func(o kernelObject) bool { return o.addr == addr })
	if i < 0 {
		return nil
	}
	m.kernel.objects = slices.Delete(m.kernel.objects, i, i+1)
	return m.kfree(addr, caller)
}

// kzalloc allocates zeroed kernel memory for the kernel's own objects.
func (k *kernelState) kzalloc(size uint64) (uint64, error) {
	return k.m.slab.Kmalloc(size, mmu.Caller{Label: "kemu"}, true)
}

// vmallocStack allocates a THREAD_SIZE kernel stack in the vmalloc area (VMAP_STACK): the unmapped
// page below it catches overflows.
func (k *kernelState) vmallocStack() (uint64, error) {
	return k.m.vmalloc.Vzalloc(threadSize, mmu.Caller{Label: "kernel stack"})
}

// softirqOffset is SOFTIRQ_OFFSET: what serving softirqs adds to preempt_count.
const softirqOffset = 0x100

// preemptCount is preempt_count() as far as kemu models it: spinlocks held plus softirq context.
func (k *kernelState) preemptCount() int {
	n := k.spinDepth
	if k.softirq {
		n += softirqOffset
	}
	return n
}
