package machine

import (
	"fmt"
	"strconv"
	"syscall"

	"kemu/printk"
)

// kernelState is the emulated kernel's own bookkeeping: its allocators, virtual time and log.
type kernelState struct {
	m *Machine

	heap    *bumpHeap // direct-map objects (kmalloc and friends)
	vmalloc *bumpHeap // vmalloc area: kernel stacks, vmalloc()
	modarea *bumpHeap // the module area: module_alloc()

	percpuNext, percpuEnd uint64 // dynamic per-CPU chunk for modules' per-CPU data (offsets)

	clock clock
	log   printk.Log

	caches map[uint64]*kmemCache // kmem_cache objects by guest address

	locks     map[uint64]*lockState // every lock module code touched, by address
	spinDepth int                   // spinlocks held: preemption (and sleeping) disabled
	requested []string              // request_module() names

	majors, miscMinors int      // dynamic device numbers handed out
	objects            []string // kernel objects created for modules (classes, devices, proc entries)

	timers map[uint64]uint64 // armed timer_list addresses -> expiry in jiffies
	work   []uint64          // queued work_struct addresses, in order
}

func newKernelState(m *Machine) *kernelState {
	return &kernelState{
		m:       m,
		heap:    &bumpHeap{m: m, base: m.layout.directMap + 0x1000000, limit: 256 << 20, guard: false},
		vmalloc: &bumpHeap{m: m, base: m.layout.vmallocBase, limit: 1 << 30, guard: true},
		modarea: &bumpHeap{m: m, base: m.layout.modules, limit: m.layout.modulesEnd - m.layout.modules, guard: true},
		caches:  map[uint64]*kmemCache{},
		locks:   map[uint64]*lockState{},
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

// bumpHeap hands out page-backed objects from one region of the address space, each in its own
// fresh host mapping so that freeing one can unmap it and later accesses fault. It is the machine's
// allocator until the slab and vmalloc packages take over.
type bumpHeap struct {
	m     *Machine
	base  uint64
	next  uint64
	limit uint64
	guard bool // leave an unmapped page before every allocation (vmalloc's guard pages)
	live  map[uint64]uint64
}

func (h *bumpHeap) alloc(size uint64) (uint64, error) {
	if size == 0 {
		return 0, fmt.Errorf("allocate 0 bytes: %w", syscall.EINVAL)
	}
	if h.live == nil {
		h.live = map[uint64]uint64{}
	}
	if h.guard {
		h.next += pageSize
	}
	span := pageUp(size)
	if h.next+span > h.limit {
		return 0, fmt.Errorf("allocate %d bytes: %w", size, syscall.ENOMEM)
	}
	va := h.base + h.next
	if _, err := h.m.mapNew(va, span, PermRead|PermWrite); err != nil {
		return 0, err
	}
	h.next += span
	h.live[va] = size
	return va, nil
}

func (h *bumpHeap) free(va uint64) error {
	size, ok := h.live[va]
	if !ok {
		return fmt.Errorf("free %#x: not allocated: %w", va, syscall.EINVAL)
	}
	delete(h.live, va)
	return h.m.unmap(va, pageUp(size))
}

func (h *bumpHeap) sizeOf(va uint64) (uint64, bool) {
	s, ok := h.live[va]
	return s, ok
}

func (k *kernelState) kzalloc(size uint64) (uint64, error) { return k.heap.alloc(size) }

// vmallocStack allocates a THREAD_SIZE kernel stack with an unmapped guard page below it, so that a
// stack overflow faults instead of corrupting a neighbour.
func (k *kernelState) vmallocStack() (uint64, error) { return k.vmalloc.alloc(threadSize) }
