// Package placement decides where a module's memory lives, behind one interface with three strategies, so that
// the machine and the TLB model can compare them on the same module:
//
//   - vmalloc: what Linux does (x86 module_alloc): each region is a vmalloc area of 4K pages in the module area,
//     and the loader's rights are applied page by page.
//   - kmalloc: module memory from the page allocator (Andi Kleen's 2002 patch, and the 2014 "NoMoreModuleVmalloc"
//     idea): physically contiguous 2M chunks, one class of rights each (text, rodata, data), shared by modules and
//     covered by 2M pages of a linear mapping; a large page is split only where one module's rights change inside
//     it (ro_after_init sealed), and the splits are counted.
//   - hugepack: text packed into shared 2M read-only-exec pages in the module area (the execmem ROX cache and
//     bpf_prog_pack idea); the other ranges go to 4K pages in the module area as with vmalloc.
//
// Whatever the strategy, every range gets exactly the rights its kind asks for: text RX, rodata R, ro_after_init
// RW until sealed and R after, data RW; everything but text is NX. Text in a shared read-exec page (a hugepack pack,
// a kmalloc text chunk) is written through mmu.Kernel.WriteVirt (the model's text_poke), never by making the page
// writable.
//
// # Why kmalloc uses the kernel image's high alias, not the direct map
//
// The 2002 kmalloc patch was for i386, where the direct map is the whole kernel address space and any address is
// reachable by 32-bit displacements. x86-64 modules are built with -mcmodel=kernel: calls and references to the
// kernel are R_X86_64_PC32/PLT32 (a signed 32-bit displacement) or R_X86_64_32S (a sign-extended 32-bit
// absolute), so module code must lie within 2 GiB of the kernel's text, in the top 2 GiB of the address space.
// That is why MODULES_VADDR follows the kernel image. The direct map (PageOffsetBase, 0xffff888000000000) is
// terabytes away: a module placed there cannot be linked. Linux 6.1 fails its load with ENOEXEC at the first
// R_X86_64_32/32S that overflows ("overflow in relocation type %d val %Lx", "`%s' likely not compiled with
// -mcmodel=kernel"); PC32/PLT32 displacements it does not check (they would be truncated), which kemu's loader
// refuses too. NewKmallocDirectMap keeps that variant so the failure can be seen.
//
// x86-64 has one other linear mapping of physical memory inside the top 2 GiB: __START_KERNEL_map
// (StartKernelMap), where virtual StartKernelMap+pa maps physical pa for the first KERNEL_IMAGE_SIZE bytes. Linux
// maps its image there (level2_kernel_pgt, 2M pages); it trims the rest away at boot (cleanup_highmap), but
// nothing in the hardware forbids mapping more of it. NewKmalloc therefore takes its memory from the page
// allocator, as kmalloc does for large sizes, and addresses it through that high alias: all physical memory below
// 1 GiB is then within 1 GiB of kernel text, so -mcmodel=kernel relocations resolve. Physical memory whose alias
// is taken by something else (kemu's kernel image, whose pages are not where their alias would put them) or lies
// beyond 1 GiB is passed over.
//
// Large pages need whole 2M pages of one set of rights, and a small module's text, rodata and data would share
// one; so the memory is carved in 2M-aligned chunks by rights (the "separate chunks" answer rather than one block
// per module split to 4K wherever its rights change): module text from read-exec chunks, rodata from read-only
// ones, ro_after_init and data from read-write ones, each chunk one 2M page of the alias (a region's ranges are
// then pieces at different addresses, as with hugepack). Sealing ro_after_init is the one change of rights inside
// a chunk: it splits that 2M page, counted in Stats.DirectMapSplits. Freed text is filled with int3, as in
// hugepack's packs; an empty chunk is unmapped and goes back to the page allocator.
package placement

import (
	"fmt"
	"sort"
	"syscall"

	"kemu/mmu"
)

// Kind is what a range of a module region holds, which decides its rights.
type Kind uint8

const (
	Text        Kind = iota // code: RX
	Rodata                  // constants: R, NX
	RoAfterInit             // __ro_after_init data: RW, NX until the module's init returns, then R, NX
	Data                    // data and bss: RW, NX
)

func (k Kind) String() string {
	return [...]string{"text", "rodata", "ro_after_init", "data"}[min(int(k), 3)]
}

// Perm is the rights a range of this kind has when placed (before ro_after_init is sealed).
func (k Kind) Perm() mmu.Perm {
	switch k {
	case Text:
		return mmu.PermRX
	case Rodata:
		return mmu.PermRO
	}
	return mmu.PermRW
}

// Range is a part of a region with one kind. Offsets of ranges must be page-aligned so that rights can be exact
// (Linux lays modules out that way with CONFIG_STRICT_MODULE_RWX).
type Range struct {
	Offset, Size uint64
	Kind         Kind
}

// Region is one block of module memory the loader lays out, like Linux 6.1's core and init layouts.
type Region struct {
	Name   string // "core", "init"
	Size   uint64
	Align  uint64 // 0 means a page
	Ranges []Range
}

// Piece is a part of a placed region at its own address. Strategies that keep a region contiguous give one piece.
type Piece struct {
	Offset, Size uint64 // within the region
	Addr         uint64 // guest virtual address of Offset
}

// Placed is a region as placed: where each of its pieces lives.
type Placed struct {
	Module string
	Region Region
	Pieces []Piece // sorted by Offset, covering every range (hugepack leaves text's page padding out)
	sealed bool
	state  any // the strategy's own record
}

// Addr is the address of byte off of the region.
func (p *Placed) Addr(off uint64) (uint64, bool) {
	i := sort.Search(len(p.Pieces), func(i int) bool { return p.Pieces[i].Offset+p.Pieces[i].Size > off })
	if i == len(p.Pieces) || off < p.Pieces[i].Offset {
		return 0, false
	}
	return p.Pieces[i].Addr + off - p.Pieces[i].Offset, true
}

// Base is the address of the region's first byte.
func (p *Placed) Base() uint64 {
	a, _ := p.Addr(0)
	return a
}

// Stats is what a strategy's placements cost.
type Stats struct {
	Regions         int    // live placed regions
	Requested       uint64 // bytes the regions asked for
	Used            uint64 // bytes of memory held to back them (pages, whole packs)
	Pages4K         int    // leaf mappings covering the placed memory, per size: what the TLB has to cache
	Pages2M         int
	Pages1G         int
	DirectMapSplits int // large pages of the linear mapping (high alias or direct map) split to apply rights (kmalloc)
}

// Wasted is memory held but not asked for (rounding, power-of-two orders, free space in packs).
func (s Stats) Wasted() uint64 { return s.Used - s.Requested }

// Strategy places module regions in kernel memory.
type Strategy interface {
	// Name is the strategy's name: "vmalloc", "kmalloc" or "hugepack".
	Name() string
	// Place allocates and maps each region and applies its ranges' rights.
	Place(module string, regions []Region) ([]*Placed, error)
	// SetPerm changes the rights of [off, off+size) of a placed region (page-aligned offset).
	SetPerm(p *Placed, off, size uint64, perm mmu.Perm) error
	// Seal makes the region's ro_after_init ranges read-only, as the loader does once init has returned.
	Seal(p *Placed) error
	// Free releases a placed region (the init region after init, everything at unload).
	Free(p *Placed) error
	// Stats reports the cost of what is placed now.
	Stats() Stats
}

// validate checks a region's ranges: inside it, in order, not overlapping, page-aligned.
func validate(r Region) error {
	if r.Size == 0 {
		return fmt.Errorf("region %s: empty: %w", r.Name, syscall.EINVAL)
	}
	if r.Align != 0 && (r.Align&(r.Align-1) != 0 || r.Align > mmu.Size2M) {
		return fmt.Errorf("region %s: alignment %#x: %w", r.Name, r.Align, syscall.EINVAL)
	}
	var end uint64
	for _, rg := range r.Ranges {
		switch {
		case rg.Offset%mmu.PageSize != 0:
			return fmt.Errorf("region %s: %s range at %#x not page-aligned: %w", r.Name, rg.Kind, rg.Offset, syscall.EINVAL)
		case rg.Offset < end:
			return fmt.Errorf("region %s: %s range at %#x overlaps the previous one: %w", r.Name, rg.Kind, rg.Offset, syscall.EINVAL)
		case rg.Size == 0 || rg.Offset > r.Size || rg.Size > r.Size-rg.Offset:
			return fmt.Errorf("region %s: %s range [%#x, +%#x) outside %#x bytes: %w", r.Name, rg.Kind, rg.Offset, rg.Size, r.Size, syscall.EINVAL)
		case rg.Kind > Data:
			return fmt.Errorf("region %s: range kind %d: %w", r.Name, rg.Kind, syscall.EINVAL)
		}
		end = rg.Offset + rg.Size
	}
	return nil
}

func pageUp(n uint64) uint64 { return (n + mmu.PageSize - 1) &^ (mmu.PageSize - 1) }

// protectRanges applies each range's rights to a contiguous placement at base.
func protectRanges(pt *mmu.PageTables, base uint64, r Region) error {
	for _, rg := range r.Ranges {
		if err := pt.Protect(base+rg.Offset, pageUp(rg.Size), rg.Kind.Perm()); err != nil {
			return fmt.Errorf("region %s: %s range: %w", r.Name, rg.Kind, err)
		}
	}
	return nil
}

// checkPerm validates a SetPerm request against the region and returns the page-rounded size.
func checkPerm(p *Placed, off, size uint64) (uint64, error) {
	if p == nil || off%mmu.PageSize != 0 || size == 0 || off >= p.Region.Size || size > p.Region.Size-off {
		return 0, fmt.Errorf("set rights of [%#x, +%#x): outside the region or unaligned: %w", off, size, syscall.EINVAL)
	}
	return pageUp(size), nil
}

// sealRanges calls set for each ro_after_init range of p, once.
func sealRanges(p *Placed, set func(off, size uint64) error) error {
	if p.sealed {
		return fmt.Errorf("module %s region %s: ro_after_init already sealed: %w", p.Module, p.Region.Name, syscall.EINVAL)
	}
	for _, rg := range p.Region.Ranges {
		if rg.Kind == RoAfterInit {
			if err := set(rg.Offset, rg.Size); err != nil {
				return err
			}
		}
	}
	p.sealed = true
	return nil
}

// countLeaves adds the distinct leaf mappings covering [addr, addr+size) to the stats.
func countLeaves(pt *mmu.PageTables, seen map[uint64]bool, s *Stats, addr, size uint64) {
	for _, l := range pt.Leaves(addr, size) {
		if seen[l.VA] {
			continue
		}
		seen[l.VA] = true
		switch l.Size {
		case mmu.Size4K:
			s.Pages4K++
		case mmu.Size2M:
			s.Pages2M++
		case mmu.Size1G:
			s.Pages1G++
		}
	}
}
