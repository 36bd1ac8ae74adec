// Package vmalloc allocates virtually contiguous kernel memory the way Linux's mm/vmalloc.c does: each area is
// a run of pages from the page allocator mapped at fresh addresses in the vmalloc area (vmalloc, vzalloc) or in
// the module area (module_alloc), followed by an unmapped guard page so that running off its end faults.
//
// Areas are found first-fit in address order from the start of their space; the module space starts at the
// boot's random load offset (mmu.Kernel.ModuleLoadOffset), as x86's module_alloc does. Pages are 4K unless a
// request asks for huge pages (2M, as VM_ALLOW_HUGE_VMAP would give), which hugepack placement uses. The frames
// also stay reachable through the direct map, which is how Linux has it: a vmalloc address and its direct-map
// alias share bytes.
//
// Freeing follows 6.1's lazy TLB flushing. vfree clears the area's page-table entries and frees its pages at
// once, but defers the TLB flush: the area's addresses (with the guard page) join a purge list and stay
// reserved until a purge flushes the TLB over the span of everything on the list and makes them reusable. A
// purge happens when the list holds more than lazy_max_pages (32 MiB of pages per log2 of the CPU count: one
// CPU here), when an allocation finds no room (alloc_vmap_area purges and retries), and when module memory is
// freed: module_alloc's areas carry VM_FLUSH_RESET_PERMS, whose vfree purges at once over a span that also
// covers the direct-map alias of the area's pages.
//
// Not modelled: per-CPU vmap blocks, ioremap, NUMA nodes, KASAN shadow; the purge runs synchronously where
// Linux schedules it as work. Not safe for concurrent use (one CPU).
package vmalloc

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"slices"
	"syscall"

	"kemu/mmu"
)

// Space is a virtual address region areas are carved from.
type Space uint8

const (
	SpaceVmalloc Space = iota // VMALLOC_START..VMALLOC_END
	SpaceModules              // MODULES_VADDR+load offset..MODULES_END
)

func (s Space) String() string {
	if s == SpaceModules {
		return "modules"
	}
	return "vmalloc"
}

// Area is one allocation: Size bytes mapped at Addr, then a guard page.
type Area struct {
	Addr, Size uint64
	Space      Space
	PageSize   uint64   // 4K, or 2M for huge areas
	Frames     []uint64 // physical address of each page, in order
	Perm       mmu.Perm // rights the area was mapped with (Protect may have changed parts since)
	Caller     mmu.Caller
}

// End is the first byte after the area's mapped pages (where its guard page starts).
func (a *Area) End() uint64 { return a.Addr + a.Size }

// Request describes an area to allocate.
type Request struct {
	Size   uint64 // bytes, rounded up to whole pages
	Align  uint64 // power of two, at least a page; 0 means the page size
	Space  Space
	Huge   bool     // map with 2M pages (size rounded up to 2M)
	Perm   mmu.Perm // 0 means mmu.PermRW (PAGE_KERNEL)
	Zero   bool     // clear the memory
	Caller mmu.Caller
}

// Allocator hands out areas of the vmalloc and module spaces of one kernel address space.
type Allocator struct {
	k      *mmu.Kernel
	spaces [2]*Spans
	areas  []*Area // live areas sorted by Addr (both spaces: they do not overlap)
	lazy   []lazyArea
	// lazyPages counts the pages on the purge list, guard pages included (vmap_lazy_nr).
	lazyPages uint64
}

// lazyArea is a freed area whose addresses wait for a purge: [addr, addr+size) includes the guard page.
type lazyArea struct {
	space      Space
	addr, size uint64
}

// LazyMaxPages is lazy_max_pages() for one CPU: fls(1) * 32 MiB of pages. More lazily freed pages than this
// trigger a purge.
const LazyMaxPages = 1 * (32 << 20) / mmu.PageSize

// New returns an allocator over the whole vmalloc area and the module area from the kernel's load offset.
func New(k *mmu.Kernel) *Allocator {
	return &Allocator{
		k: k,
		spaces: [2]*Spans{
			SpaceVmalloc: NewSpans(mmu.VmallocStart, mmu.VmallocEnd),
			SpaceModules: NewSpans(mmu.ModulesVaddr+k.ModuleLoadOffset(), mmu.ModulesEnd),
		},
	}
}

// Vmalloc allocates size bytes of virtually contiguous, uninitialised memory (vmalloc).
func (v *Allocator) Vmalloc(size uint64, caller mmu.Caller) (uint64, error) {
	a, err := v.Alloc(Request{Size: size, Caller: caller})
	if err != nil {
		return 0, err
	}
	return a.Addr, nil
}

// Vzalloc is Vmalloc with the memory zeroed (vzalloc).
func (v *Allocator) Vzalloc(size uint64, caller mmu.Caller) (uint64, error) {
	a, err := v.Alloc(Request{Size: size, Zero: true, Caller: caller})
	if err != nil {
		return 0, err
	}
	return a.Addr, nil
}

// ModuleAlloc allocates zeroed module memory in the module area, read-write and no-execute until the loader
// sets its final rights (x86 module_alloc with PAGE_KERNEL).
func (v *Allocator) ModuleAlloc(size uint64, caller mmu.Caller) (uint64, error) {
	a, err := v.Alloc(Request{Size: size, Space: SpaceModules, Zero: true, Caller: caller})
	if err != nil {
		return 0, err
	}
	return a.Addr, nil
}

// Alloc reserves addresses for the request (plus a guard page), backs them with frames and maps them.
func (v *Allocator) Alloc(r Request) (*Area, error) {
	page, order := mmu.Size4K, 0
	if r.Huge {
		page, order = mmu.Size2M, 9
	}
	if r.Perm == 0 {
		r.Perm = mmu.PermRW
	}
	if r.Align == 0 {
		r.Align = page
	}
	if r.Size == 0 || r.Size > 1<<40 || r.Align&(r.Align-1) != 0 || r.Align < page || int(r.Space) >= len(v.spaces) {
		return nil, fmt.Errorf("%s alloc of %#x bytes aligned %#x: %w", r.Space, r.Size, r.Align, syscall.EINVAL)
	}
	size := (r.Size + page - 1) &^ (page - 1)
	addr, err := v.spaces[r.Space].Take(size+mmu.PageSize, r.Align)
	if err != nil && len(v.lazy) > 0 {
		// alloc_vmap_area: no room, so purge the lazily freed areas and try once more.
		v.Purge()
		addr, err = v.spaces[r.Space].Take(size+mmu.PageSize, r.Align)
	}
	if err != nil {
		return nil, fmt.Errorf("%s alloc of %#x bytes: %w", r.Space, r.Size, err)
	}
	a := &Area{Addr: addr, Size: size, Space: r.Space, PageSize: page, Perm: r.Perm, Caller: r.Caller}
	fail := func(err error) (*Area, error) {
		errs := []error{fmt.Errorf("%s alloc of %#x bytes: %w", r.Space, r.Size, err), v.freeFrames(a)}
		v.spaces[r.Space].Give(addr, size+mmu.PageSize)
		return nil, errors.Join(errs...)
	}
	for range size / page {
		pa, err := v.k.Frames.Alloc(order)
		if err != nil {
			return fail(err)
		}
		a.Frames = append(a.Frames, pa)
		if r.Zero {
			if err := v.k.Mem.Zero(pa, page); err != nil {
				return fail(err)
			}
		}
	}
	if err := v.k.Tables.MapFrames(addr, a.Frames, page, r.Perm, mmu.AttrGlobal); err != nil {
		return fail(err)
	}
	i, _ := v.find(addr)
	v.areas = slices.Insert(v.areas, i, a)
	return a, nil
}

func (v *Allocator) freeFrames(a *Area) error {
	order := 0
	if a.PageSize == mmu.Size2M {
		order = 9
	}
	var errs []error
	for _, pa := range a.Frames {
		errs = append(errs, v.k.Frames.Free(pa, order))
	}
	a.Frames = nil
	return errors.Join(errs...)
}

// Vfree unmaps and frees the area starting at addr (vfree, module_memfree). Freeing an address that does not
// start a live area is an error: Linux WARNs "Trying to vfree() nonexistent vm area". The TLB flush and the
// reuse of the addresses wait for a purge, except for module memory (see the package comment).
func (v *Allocator) Vfree(addr uint64) error {
	i, ok := v.find(addr)
	if !ok {
		if in, _, found := v.Lookup(addr); found {
			return fmt.Errorf("vfree(%#x): inside the area at %#x, not its start: %w", addr, in.Addr, syscall.EINVAL)
		}
		return fmt.Errorf("vfree(%#x): trying to vfree() nonexistent vm area: %w", addr, syscall.EINVAL)
	}
	a := v.areas[i]
	if err := v.k.Tables.Unmap(a.Addr, a.Size); err != nil {
		return fmt.Errorf("vfree(%#x): %w", addr, err)
	}
	v.areas = slices.Delete(v.areas, i, i+1)
	v.lazy = append(v.lazy, lazyArea{space: a.Space, addr: a.Addr, size: a.Size + mmu.PageSize})
	v.lazyPages += (a.Size + mmu.PageSize) / mmu.PageSize
	switch {
	case a.Space == SpaceModules: // VM_FLUSH_RESET_PERMS: flush now, the direct-map alias too
		lo, hi := uint64(math.MaxUint64), uint64(0)
		for _, pa := range a.Frames {
			lo, hi = min(lo, v.k.DirectMap(pa)), max(hi, v.k.DirectMap(pa)+a.PageSize)
		}
		v.purge(lo, hi)
	case v.lazyPages > LazyMaxPages:
		v.Purge()
	}
	return v.freeFrames(a)
}

// Purge flushes the TLB over the lazily freed areas and makes their addresses reusable (purge_vmap_area_lazy,
// also what vm_unmap_aliases does).
func (v *Allocator) Purge() { v.purge(math.MaxUint64, 0) }

// purge is __purge_vmap_area_lazy(start, end): one flush over [start, end) widened to cover every area on the
// purge list, then the areas' addresses go back to their spaces. With an empty list and an empty range it
// flushes nothing.
func (v *Allocator) purge(start, end uint64) {
	for _, l := range v.lazy {
		start, end = min(start, l.addr), max(end, l.addr+l.size)
	}
	if start < end {
		v.k.Tables.FlushTLB(start, end)
	}
	for _, l := range v.lazy {
		v.spaces[l.space].Give(l.addr, l.size)
	}
	v.lazy, v.lazyPages = v.lazy[:0], 0
}

// find is the index of the area starting at addr, or where one would be inserted.
func (v *Allocator) find(addr uint64) (int, bool) {
	return slices.BinarySearchFunc(v.areas, addr, func(a *Area, addr uint64) int { return cmp.Compare(a.Addr, addr) })
}

// Lookup finds the live area whose pages or guard page contain addr; guard says it was the guard page.
func (v *Allocator) Lookup(addr uint64) (a *Area, guard bool, found bool) {
	i, ok := v.find(addr)
	if !ok {
		i-- // the last area starting below addr
	}
	if i < 0 {
		return nil, false, false
	}
	a = v.areas[i]
	if addr >= a.End()+mmu.PageSize {
		return nil, false, false
	}
	return a, addr >= a.End(), true
}

// Areas lists the live areas in address order.
func (v *Allocator) Areas() []*Area { return slices.Clone(v.areas) }

// Stats is the occupancy of one space, as /proc/vmallocinfo would sum it.
type Stats struct {
	Areas       int
	Bytes       uint64 // mapped bytes (guard pages excluded)
	Pages4K     int
	Pages2M     int
	FreeAddress uint64 // unreserved address space left
	LazyPages   uint64 // pages of freed areas waiting for a purge, guard pages included (both spaces)
}

// Stats reports the occupancy of a space.
func (v *Allocator) Stats(space Space) Stats {
	var s Stats
	if int(space) >= len(v.spaces) {
		return s
	}
	for _, a := range v.areas {
		if a.Space != space {
			continue
		}
		s.Areas++
		s.Bytes += a.Size
		if a.PageSize == mmu.Size2M {
			s.Pages2M += len(a.Frames)
		} else {
			s.Pages4K += len(a.Frames)
		}
	}
	s.FreeAddress = v.spaces[space].Free()
	s.LazyPages = v.lazyPages
	return s
}
