package machine

import (
	"errors"
	"fmt"
	"sort"
	"syscall"

	"kemu/loader"
	"kemu/mmu"
	"kemu/placement"
)

// Loading, initialising and unloading modules: init_module()/finit_module() and delete_module()
// with the loader doing the linking and keeping the registry, and the machine providing the memory
// and running init and exit.

// ErrKilled is what insmod or rmmod sees when the module code it ran oopsed: the task died.
var ErrKilled = errors.New("Killed")

// newPlacement returns the placement strategy Options.Strategy names, over the machine's memory. See the
// placement package for what each does; "kmalloc-directmap" is the kmalloc idea as i386 had it, which x86-64
// code cannot reach (its loads fail with the loader's relocation overflow), kept to show why.
func (m *Machine) newPlacement(name string) (placement.Strategy, error) {
	switch name {
	case "", "vmalloc":
		return placement.NewVmalloc(m.mem, m.vmalloc), nil
	case "kmalloc":
		return placement.NewKmalloc(m.mem), nil
	case "kmalloc-directmap":
		return placement.NewKmallocDirectMap(m.mem), nil
	case "hugepack":
		return placement.NewHugepack(m.mem, m.vmalloc), nil
	}
	return nil, fmt.Errorf("machine: unknown placement strategy %q (vmalloc, kmalloc, kmalloc-directmap, hugepack): %w",
		name, syscall.EINVAL)
}

// moduleMemory is the loader's view of the machine's memory: module regions placed by the
// machine's placement strategy, kernel allocations from the slab allocator. It implements
// loader.PieceMemory, so a strategy may put a region's text apart from the rest (hugepack's shared
// read-only-exec packs); each range is placed with the rights its class has.
type moduleMemory struct{ m *Machine }

// ModuleAllocPieces is module_alloc() through the placement strategy for core and init regions, and
// a chunk of the per-CPU area for per-CPU data (whose "address" is an offset from the per-CPU base,
// as the kernel's percpu pointers are).
func (mm moduleMemory) ModuleAllocPieces(module string, kind loader.RegionKind, size uint64, ranges []loader.Range) ([]loader.Piece, error) {
	k := mm.m.kernel
	if kind == loader.PercpuRegion {
		off := pageUp(k.percpuNext)
		if off+size > k.percpuEnd {
			return nil, fmt.Errorf("per-CPU data of %s: %w", module, syscall.ENOMEM)
		}
		k.percpuNext = off + size
		return []loader.Piece{{Offset: 0, Size: size, Addr: off}}, nil
	}
	// Offsets inside a region were laid out from a page-aligned base, so every piece starts on a page.
	region := placement.Region{Name: kind.String(), Size: size, Align: mmu.PageSize}
	for _, rg := range ranges {
		kd, err := rangeKind(rg.Class)
		if err != nil {
			return nil, fmt.Errorf("module_alloc %s %s: %w", module, kind, err)
		}
		region.Ranges = append(region.Ranges, placement.Range{Offset: rg.Offset, Size: rg.Size, Kind: kd})
	}
	placed, err := mm.m.placement.Place(module, []placement.Region{region})
	if err != nil {
		return nil, fmt.Errorf("module_alloc %s %s: %w", module, kind, err)
	}
	p := placed[0]
	mm.m.placed[p.Base()] = p
	pieces := make([]loader.Piece, len(p.Pieces))
	for i, pc := range p.Pieces {
		pieces[i] = loader.Piece{Offset: pc.Offset, Size: pc.Size, Addr: pc.Addr}
	}
	return pieces, nil
}

// rangeKind is the placement kind of a loader range class.
func rangeKind(class string) (placement.Kind, error) {
	switch class {
	case "text":
		return placement.Text, nil
	case "rodata":
		return placement.Rodata, nil
	case "ro_after_init":
		return placement.RoAfterInit, nil
	case "data":
		return placement.Data, nil
	}
	return 0, fmt.Errorf("range class %q: %w", class, syscall.EINVAL)
}

// ModuleAlloc implements loader.Memory for a region without range information: all of it data.
// (The loader uses ModuleAllocPieces, which this memory has.)
func (mm moduleMemory) ModuleAlloc(module string, kind loader.RegionKind, size uint64) (uint64, error) {
	pieces, err := mm.ModuleAllocPieces(module, kind, size, []loader.Range{{Size: size, Class: "data"}})
	if err != nil {
		return 0, err
	}
	return pieces[0].Addr, nil
}

// ModuleFree is module_memfree(); per-CPU chunks are not reused.
func (mm moduleMemory) ModuleFree(addr, size uint64) {
	if p, ok := mm.m.placed[addr]; ok {
		delete(mm.m.placed, addr)
		_ = mm.m.placement.Free(p)
	}
}

func (mm moduleMemory) KernelAlloc(data []byte) (uint64, error) {
	p, err := mm.m.slab.Kmalloc(uint64(len(data)), mmu.Caller{Label: "module parameter"}, false)
	if err != nil {
		return 0, err
	}
	return p, mm.m.WriteAt(data, p)
}

func (mm moduleMemory) KernelFree(addr uint64) {
	_ = mm.m.slab.Kfree(addr, mmu.Caller{Label: "module parameter"})
}

// setRangePerm applies rights to one range of a placed module region.
func (m *Machine) setRangePerm(r *loader.Region, rg loader.Range, perm mmu.Perm) error {
	p, ok := m.placed[r.Addr]
	if !ok {
		return fmt.Errorf("region at %#x was not placed by this machine", r.Addr)
	}
	return m.placement.SetPerm(p, rg.Offset, rg.Size, perm)
}

// regionSpans is where a region's bytes live: one span per piece.
func regionSpans(r *loader.Region) []span {
	out := make([]span, 0, len(r.Pieces))
	for _, pc := range r.Pieces {
		out = append(out, span{pc.Addr, pc.Addr + pc.Size})
	}
	return out
}

// Registry is the machine's loaded-module registry (states, uses, /proc/modules).
func (m *Machine) Registry() *loader.Kernel { return m.registry }

// Insmod loads a module image with a parameter string ("a=1 b=x") and runs its init, as
// finit_module() does. On success the module is LIVE and its init memory is gone. If init returns
// an error the module is unloaded and the error carries the errno; if init oopses, the error is
// ErrKilled and the module stays in the registry, COMING, as in the kernel.
func (m *Machine) Insmod(image []byte, params, path string) (*loader.Module, error) {
	if m.dead {
		return nil, errMachineHalted
	}
	mod, err := m.registry.Load(image, loader.LoadOptions{Flags: m.opts.LoadFlags, Params: params, Path: path})
	if err != nil {
		return nil, err
	}
	g, err := m.install(mod)
	if err != nil {
		_ = m.registry.FailInit(mod, -int(syscall.ENOMEM))
		return nil, err
	}
	if mod.InitFunc == 0 {
		return mod, m.initDone(g, 0)
	}
	ret, err := m.Call(mod.InitFunc)
	if err != nil {
		if errors.Is(err, errTaskDied) || errors.Is(err, errMachineHalted) {
			return mod, ErrKilled
		}
		return mod, err
	}
	initRet := int(int32(ret))
	if initRet < 0 {
		g.state = stateGoing
		m.forget(g)
		return nil, m.registry.FailInit(mod, initRet)
	}
	return mod, m.initDone(g, initRet)
}

// initDone finishes a successful init: LIVE, init memory freed, ro_after_init sealed.
func (m *Machine) initDone(g *guestModule, initRet int) error {
	mod := g.mod
	if err := m.registry.MarkLive(mod, initRet); err != nil {
		return err
	}
	g.state = stateLive
	g.regions = regionSpans(&mod.Core)
	for _, r := range mod.Core.Ranges {
		if r.AfterInit != r.Perm {
			if err := m.setRangePerm(&mod.Core, r, r.AfterInit); err != nil {
				return err
			}
		}
	}
	return nil
}

// install copies a linked module into guest memory, applies its page permissions and registers
// what the CPU side needs to run and report on it.
func (m *Machine) install(mod *loader.Module) (*guestModule, error) {
	g := &guestModule{
		name: mod.Name, flags: mod.Taints.String(), state: stateComing, mod: mod,
		bugs: map[uint64]bugEntry{}, extable: map[uint64]exEntry{},
	}
	for _, r := range []*loader.Region{&mod.Core, &mod.Init} {
		if r.Size == 0 {
			continue
		}
		// The placement mapped every range with its rights already; the bytes go in as text_poke
		// writes them, through the page tables whatever the rights (text packs are never writable).
		for _, pc := range r.Pieces {
			if pc.Offset+pc.Size > uint64(len(r.Bytes)) {
				return nil, fmt.Errorf("install %s %s region: piece [%#x, +%#x) outside its %#x bytes",
					mod.Name, r.Kind, pc.Offset, pc.Size, len(r.Bytes))
			}
			if err := m.mem.WriteVirt(pc.Addr, r.Bytes[pc.Offset:pc.Offset+pc.Size]); err != nil {
				return nil, fmt.Errorf("install %s %s region at %#x: %w", mod.Name, r.Kind, pc.Addr, err)
			}
			// A shared pack's addresses may have held another module's code: forget its translations.
			if err := m.dropTranslations(pc.Addr, pc.Addr+pc.Size); err != nil {
				return nil, fmt.Errorf("install %s: %w", mod.Name, err)
			}
		}
		g.regions = append(g.regions, regionSpans(r)...)
	}
	if mod.Percpu.Size != 0 {
		if err := m.WriteAt(mod.Percpu.Bytes, m.percpu+mod.Percpu.Addr); err != nil {
			return nil, fmt.Errorf("install %s per-CPU data: %w", mod.Name, err)
		}
	}
	if err := m.patchModuleText(mod); err != nil {
		return nil, err
	}
	for _, s := range mod.Symbols {
		g.symbols = append(g.symbols, modSymbol{name: s.Name, addr: s.Addr, size: s.Size, init: s.Init})
	}
	sort.SliceStable(g.symbols, func(i, j int) bool { return g.symbols[i].addr < g.symbols[j].addr })
	for _, b := range mod.BugTable {
		g.bugs[b.Addr] = bugEntry{
			file: b.File, line: int(b.Line),
			warning: b.Flags&bugFlagWarning != 0, once: b.Flags&bugFlagOnce != 0,
			done: b.Flags&bugFlagDone != 0, noCut: b.Flags&bugFlagNoCutHere != 0,
		}
	}
	for _, e := range mod.ExTable {
		g.extable[e.Insn] = exEntry{fixup: e.Fixup, data: e.Data}
	}
	m.modules = append(m.modules, g)
	return g, nil
}

// forget drops a module the registry freed.
func (m *Machine) forget(g *guestModule) {
	for i, x := range m.modules {
		if x == g {
			m.modules = append(m.modules[:i:i], m.modules[i+1:]...)
			return
		}
	}
}

// Rmmod unloads a module as delete_module() does: the registry's checks, the exit function, then
// the memory. force is rmmod -f.
func (m *Machine) Rmmod(name string, force bool) error {
	if m.dead {
		return errMachineHalted
	}
	mod, err := m.registry.Delete(name, force)
	if err != nil {
		return err
	}
	var g *guestModule
	for _, x := range m.modules {
		if x.mod == mod {
			g = x
		}
	}
	if g != nil {
		g.state = stateGoing
	}
	if mod.ExitFunc != 0 {
		if _, err := m.Call(mod.ExitFunc); err != nil {
			if errors.Is(err, errTaskDied) || errors.Is(err, errMachineHalted) {
				return ErrKilled
			}
			return err
		}
	}
	m.registry.Remove(mod)
	if g != nil {
		m.forget(g)
	}
	m.lastUnloaded = name
	return nil
}
