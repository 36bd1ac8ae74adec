package machine

import (
	"crypto/x509"
	"errors"
	"fmt"
	"sync/atomic"
	"time"
	"unsafe"

	uc "github.com/unicorn-engine/unicorn/bindings/go/unicorn"

	"kemu/loader"
	"kemu/mmu"
	"kemu/placement"
	"kemu/profile"
	"kemu/slab"
	"kemu/vmalloc"
)

// Options are the choices made when a machine boots.
type Options struct {
	// Strict stops a call into a kernel function that has no handler with an oops-style report;
	// by default such a call returns 0 and is recorded for the summary.
	Strict bool
	// Watchdog is how much host time one call into module code may take before the machine
	// reports a soft lockup (the kernel's watchdog fires after 20 s without a reschedule).
	// 0 means DefaultWatchdog.
	Watchdog time.Duration
	// Budget, when non-zero, also bounds each run of guest code to that many instructions, which
	// makes lockup detection deterministic at a large cost in speed (Unicorn then counts every
	// instruction). 0 means no instruction budget.
	Budget uint64
	// Hardware is the "Hardware name:" of oops reports; "" means DefaultHardware.
	Hardware string
	// Strategy is where module memory goes: "vmalloc" (Linux's module_alloc; the default for ""),
	// "kmalloc" (pages from the page allocator, reached through the kernel image's high alias),
	// "kmalloc-directmap" (the same pages through the direct map, out of -mcmodel=kernel's reach) or
	// "hugepack" (text in shared 2M read-only-exec packs). See the placement package.
	Strategy string
	// SigEnforce is module.sig_enforce=1: modules that are unsigned or signed by a key not in Certs
	// are refused (EKEYREJECTED) instead of tainting the kernel E.
	SigEnforce bool
	// Certs are the trusted module-signing certificates (the kernel's builtin keyring).
	Certs []*x509.Certificate
	// LoadFlags are the finit_module() flags every Insmod passes: loader.IgnoreVermagic and
	// loader.IgnoreModversions (insmod/modprobe --force-vermagic, --force-modversion; taint F).
	LoadFlags loader.Flags
}

const (
	// ramSize is the machine's RAM: the kernel image, per-CPU area, slabs, stacks and modules.
	ramSize = 512 << 20
	// DefaultWatchdog is generous for any init function that terminates (billions of guest
	// instructions), short enough that a runaway loop is reported promptly.
	DefaultWatchdog = 5 * time.Second
	// DefaultHardware is what QEMU's default machine reports, the closest thing to kemu's.
	DefaultHardware = "QEMU Standard PC (i440FX + PIIX, 1996), BIOS 1.16.2-debian-1.16.2-1 04/01/2014"
)

// Machine is one emulated computer with one CPU, one kernel and the modules loaded into it. It is
// not safe for concurrent use.
type Machine struct {
	prof *profile.Profile
	opts Options
	cpu  uc.Unicorn
	// cpuInfo is the kernel's view of the CPU (identity, capability and bug bits): the one source
	// for boot_cpu_data, x86_match_cpu, /proc/cpuinfo and load-time code patching.
	cpuInfo CPUInfo

	mem     *mmu.Kernel        // RAM, frames and page tables: the source of truth the CPU mirrors
	vmalloc *vmalloc.Allocator // vmalloc and module areas
	slab    *slab.Allocator    // kmalloc and kmem_cache

	placement placement.Strategy           // where module regions go
	placed    map[uint64]*placement.Placed // placed module regions by base address
	lastFault Fault                        // the access that stopped the CPU, from the invalid-memory hook
	faulted   bool                         // lastFault belongs to the current stop

	layout   layout
	image    *kernelImage
	percpu   uint64 // base of CPU 0's per-CPU area, also its GS base
	task     uint64 // the current task_struct
	stackTop uint64 // top of the current task's kernel stack
	pid      int
	comm     string

	kernel       *kernelState   // the emulated kernel's own objects (allocators, locks, time)
	depth        int            // nesting of Call: >0 while guest code runs
	dead         bool           // a kernel panic halted the machine
	oopses       int            // oops reports so far: the [#N] of the next one
	lockedUp     atomic.Bool    // the watchdog fired for the current call
	taint        loader.Taint   // taints the machine added (D, W, L); the registry keeps the modules'
	modules      []*guestModule // loaded modules in load order
	lastUnloaded string
	dispatch     *dispatcher
	registry     *loader.Kernel // the loaded-module registry
	vfs          *vfs           // devices, /proc entries and the user process opening them (vfs.go)
	driverTable  *driverTable   // bus drivers and subsystem registrations (drivers.go)
	measuring    []*Measurement // measurements started and not stopped: they see TLB shootdowns
}

// New boots a machine for the kernel described by prof.
func New(prof *profile.Profile, opts Options) (*Machine, error) {
	if prof == nil {
		return nil, errors.New("machine: no kernel profile")
	}
	if opts.Watchdog == 0 {
		opts.Watchdog = DefaultWatchdog
	}
	if opts.Hardware == "" {
		opts.Hardware = DefaultHardware
	}
	cpu, err := uc.NewUnicorn(uc.ARCH_X86, uc.MODE_64)
	if err != nil {
		return nil, fmt.Errorf("machine: open unicorn x86-64: %w", err)
	}
	m := &Machine{prof: prof, opts: opts, cpu: cpu, layout: defaultLayout(), pid: 1000, comm: "insmod"}
	// The CPU model can only be chosen before anything else touches the engine (cpufeatures_cpuid.go).
	if err := cpu.SetCPUModel(cpuModel); err != nil {
		m.Close()
		return nil, fmt.Errorf("machine: CPU model: %w", err)
	}
	if m.cpuInfo, err = identifyMachineCPU(cpu); err != nil {
		m.Close()
		return nil, fmt.Errorf("machine: identify CPU: %w", err)
	}
	m.mem, err = mmu.NewKernel(mmu.Config{MemSize: ramSize, Mirror: m})
	if err != nil {
		m.Close()
		return nil, fmt.Errorf("machine: memory: %w", err)
	}
	m.vmalloc = vmalloc.New(m.mem)
	m.slab = slab.New(m.mem)
	m.placed = map[uint64]*placement.Placed{}
	if m.placement, err = m.newPlacement(opts.Strategy); err != nil {
		m.Close()
		return nil, err
	}
	if err := m.boot(); err != nil {
		m.Close()
		return nil, err
	}
	return m, nil
}

// boot brings up, in order, what module code may touch: the fault hook, the kernel image, the
// per-CPU area and the current task with its stack, the kernel's own state and the call dispatcher.
func (m *Machine) boot() error {
	if _, err := m.cpu.HookAdd(uc.HOOK_MEM_INVALID, m.onInvalidMemory, 1, 0); err != nil {
		return fmt.Errorf("machine: add memory fault hook: %w", err)
	}
	m.kernel = newKernelState(m)
	reg, err := loader.NewKernel(loader.Config{
		Profile:    m.prof,
		Memory:     moduleMemory{m},
		SigEnforce: m.opts.SigEnforce,
		Certs:      m.opts.Certs,
		Printk:     func(level int, line string) { m.logf(level, "%s", line) },
	})
	if err != nil {
		return fmt.Errorf("machine: module registry: %w", err)
	}
	m.registry = reg
	m.dispatch = newDispatcher(m)
	steps := []struct {
		what string
		fn   func() error
	}{
		{"kernel image", m.mapImage},
		{"per-CPU area", m.setupPerCPU},
		{"current task", m.setupTask},
		{"kernel state", m.kernel.init},
		{"sysfs", m.initSysfs},
		{"boot CPU data", m.setupCPUData},
		{"timer tick", func() error { m.initTicks(); return nil }},
	}
	for _, s := range steps {
		if err := s.fn(); err != nil {
			return fmt.Errorf("machine: boot: %s: %w", s.what, err)
		}
	}
	return nil
}

// Close releases the CPU and every byte of host memory the machine mapped.
func (m *Machine) Close() error {
	var errs []error
	if m.cpu != nil {
		errs = append(errs, m.cpu.Close())
		m.cpu = nil
	}
	if m.mem != nil {
		errs = append(errs, m.mem.Close())
		m.mem = nil
	}
	return errors.Join(errs...)
}

// Profile is the kernel this machine runs.
func (m *Machine) Profile() *profile.Profile { return m.prof }

// Access is the kind of memory access that faulted.
type Access int

const (
	AccessRead Access = iota
	AccessWrite
	AccessFetch
)

func (a Access) String() string {
	switch a {
	case AccessWrite:
		return "write"
	case AccessFetch:
		return "fetch"
	}
	return "read"
}

// Fault is a guest memory access that the page tables do not allow: what a page fault reports.
type Fault struct {
	Addr    uint64
	Access  Access
	Present bool // the page is mapped but forbids the access (a protection violation)
}

func (f *Fault) Error() string {
	why := "not-present page"
	if f.Present {
		why = "permissions violation"
	}
	return fmt.Sprintf("guest %s at %#x: %s", f.Access, f.Addr, why)
}

// onInvalidMemory remembers which access stopped the CPU; returning false lets Unicorn stop with
// the matching error, which the run loop turns into a trap or an oops.
func (m *Machine) onInvalidMemory(_ uc.Unicorn, typ int, addr uint64, _ int, _ int64) bool {
	// The run is ending (a trap into the kernel or a fault): no tick may land between the guest's last
	// instruction and the kernel call, or what the guest read of jiffies would depend on host speed.
	m.kernel.sched.ticks.hold()
	f := Fault{Addr: addr}
	switch typ {
	case uc.MEM_WRITE_UNMAPPED, uc.MEM_WRITE_PROT:
		f.Access = AccessWrite
	case uc.MEM_FETCH_UNMAPPED, uc.MEM_FETCH_PROT:
		f.Access = AccessFetch
	}
	f.Present = typ == uc.MEM_WRITE_PROT || typ == uc.MEM_READ_PROT || typ == uc.MEM_FETCH_PROT
	m.lastFault, m.faulted = f, true
	return false
}

// Perm is the mmu's permission set; the machine is the mmu's Mirror onto the CPU.
type Perm = mmu.Perm

const (
	PermRead  = mmu.Read
	PermWrite = mmu.Write
	PermExec  = mmu.Exec
)

var _ mmu.Mirror = (*Machine)(nil)

// prot is Unicorn's spelling of a permission set.
func prot(p Perm) int {
	prot := 0
	if p&PermRead != 0 {
		prot |= uc.PROT_READ
	}
	if p&PermWrite != 0 {
		prot |= uc.PROT_WRITE
	}
	if p&PermExec != 0 {
		prot |= uc.PROT_EXEC
	}
	return prot
}

// Map implements mmu.Mirror: [va, va+size) shows the host bytes with perm.
func (m *Machine) Map(va uint64, host unsafe.Pointer, size uint64, perm Perm) error {
	if va%pageSize != 0 || size%pageSize != 0 {
		return fmt.Errorf("mirror map %#x+%#x: not page aligned", va, size)
	}
	if err := m.cpu.MemMapPtr(va, size, prot(perm), host); err != nil {
		return fmt.Errorf("mirror map %#x+%#x: %w", va, size, err)
	}
	return m.dropTranslations(va, va+size) // no shootdown: x86 TLBs cache no not-present entries
}

// Unmap implements mmu.Mirror.
func (m *Machine) Unmap(va, size uint64) error {
	if err := m.dropTranslations(va, va+size); err != nil {
		return err
	}
	if err := m.cpu.MemUnmap(va, size); err != nil {
		return fmt.Errorf("mirror unmap %#x+%#x: %w", va, size, err)
	}
	return nil
}

// Protect implements mmu.Mirror.
func (m *Machine) Protect(va, size uint64, perm Perm) error {
	if err := m.cpu.MemProtect(va, size, prot(perm)); err != nil {
		return fmt.Errorf("mirror protect %#x+%#x: %w", va, size, err)
	}
	return m.dropTranslations(va, va+size)
}

// FlushTLB implements mmu.Mirror: Unicorn's own TLB follows Map, Unmap and Protect at once
// (dropTranslations), so a flush only reaches the TLB models of running measurements.
func (m *Machine) FlushTLB(start, end uint64, all bool) { m.shootdown(start, end, all) }

// protect changes the rights of [va, va+size) in the page tables (and so on the CPU).
func (m *Machine) protect(va, size uint64, perm Perm) error {
	start := pageDown(va)
	return m.mem.Tables.Protect(start, pageUp(va+size)-start, perm)
}

const pageSize = mmu.PageSize

func pageDown(v uint64) uint64 { return v &^ (pageSize - 1) }
func pageUp(v uint64) uint64   { return (v + pageSize - 1) &^ (pageSize - 1) }

// The general-purpose registers in the order the oops register dump and the ABI helpers use them.
var (
	regGSBase = uc.X86_REG_GS_BASE
	argRegs   = []int{uc.X86_REG_RDI, uc.X86_REG_RSI, uc.X86_REG_RDX, uc.X86_REG_RCX, uc.X86_REG_R8, uc.X86_REG_R9}
)

func (m *Machine) reg(r int) uint64 {
	v, _ := m.cpu.RegRead(r) // reads of valid x86 registers cannot fail
	return v
}

func (m *Machine) setReg(r int, v uint64) {
	_ = m.cpu.RegWrite(r, v) // writes of valid x86 registers cannot fail
}

// kernelTaint is print_tainted()'s mask: what modules brought plus what the machine added.
func (m *Machine) kernelTaint() loader.Taint { return m.taint | m.registry.Taint() }

// CPU is the Unicorn engine itself, for measurement tools (benchmarks, TLB models) that attach
// hooks or time raw runs. Code that runs module code should use Call.
func (m *Machine) CPU() uc.Unicorn { return m.cpu }

// StackTop is the top of the current task's kernel stack, where Call starts its frames.
func (m *Machine) StackTop() uint64 { return m.stackTop }

// Memory is the machine's address space: RAM, frames and page tables (for walkers and TLB models).
func (m *Machine) Memory() *mmu.Kernel { return m.mem }

// Placement is the strategy placing module memory, for its statistics.
func (m *Machine) Placement() placement.Strategy { return m.placement }
