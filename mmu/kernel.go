package mmu

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"syscall"
)

// The x86-64 kernel virtual address layout with 4-level paging and KASLR's region randomisation off
// (Documentation/arch/x86/x86_64/mm.rst in Linux 6.1).
const (
	PageOffsetBase  uint64 = 0xffff888000000000 // page_offset_base: the direct map of all RAM
	DirectMapEnd    uint64 = 0xffffc88000000000 // end of the 64 TiB direct-map region
	VmallocStart    uint64 = 0xffffc90000000000 // vmalloc_base: vmalloc and ioremap space
	VmallocEnd      uint64 = 0xffffe90000000000 // exclusive (32 TiB)
	VmemmapBase     uint64 = 0xffffea0000000000 // vmemmap_base: the struct page array (not modelled)
	StartKernelMap  uint64 = 0xffffffff80000000 // __START_KERNEL_map: the kernel image, mapped with 2M pages
	KernelImageSize uint64 = 1 << 30            // KERNEL_IMAGE_SIZE with CONFIG_RANDOMIZE_BASE
	ModulesVaddr    uint64 = StartKernelMap + KernelImageSize
	ModulesEnd      uint64 = 0xffffffffff000000 // MODULES_END (exclusive)
	DefaultMemSize  uint64 = 256 << 20          // RAM of the default machine
	// ModuleLoadPages bounds the random module load offset: module_alloc starts its search 1..1024 pages into
	// the module area (arch/x86/kernel/module.c, get_module_load_offset).
	ModuleLoadPages = 1024
)

// Config describes the machine's memory.
type Config struct {
	MemSize uint64 // bytes of RAM, a multiple of 4K; 0 means DefaultMemSize
	Seed    uint64 // seeds the KASLR-style module load offset, so a run is reproducible
	Mirror  Mirror // the CPU that follows the page tables; nil for none
}

// Kernel is the kernel's address space: RAM, the frame allocator, the page tables (the init_mm of this model)
// with the direct map built, and the layout constants above. The vmalloc and slab packages allocate on top of it.
type Kernel struct {
	Mem    *PhysMem
	Frames *FrameAllocator
	Tables *PageTables

	moduleLoadOffset uint64
}

// NewKernel allocates RAM and maps all of it at PageOffsetBase with the largest pages that fit (1G, then 2M,
// then 4K), read-write, no-execute, global: PAGE_KERNEL as Linux's direct map has it.
func NewKernel(cfg Config) (*Kernel, error) {
	if cfg.MemSize == 0 {
		cfg.MemSize = DefaultMemSize
	}
	if cfg.MemSize > DirectMapEnd-PageOffsetBase {
		return nil, fmt.Errorf("kernel with %#x bytes of RAM: larger than the direct map: %w", cfg.MemSize, syscall.EINVAL)
	}
	mem, err := NewPhysMem(cfg.MemSize)
	if err != nil {
		return nil, err
	}
	k := &Kernel{Mem: mem}
	rng := rand.New(rand.NewPCG(cfg.Seed, 0x6b656d75)) // "kemu"
	k.moduleLoadOffset = uint64(rng.IntN(ModuleLoadPages)+1) * PageSize
	if k.Frames, err = NewFrameAllocator(cfg.MemSize / PageSize); err == nil {
		if k.Tables, err = NewPageTables(mem, k.Frames, cfg.Mirror); err == nil {
			err = k.mapDirect()
		}
	}
	if err != nil {
		return nil, errors.Join(fmt.Errorf("build kernel address space: %w", err), mem.Close())
	}
	return k, nil
}

// mapDirect maps RAM at PageOffsetBase, one Map call per run of equal page size.
func (k *Kernel) mapDirect() error {
	size := k.Mem.Size()
	for pa := uint64(0); pa < size; {
		page := largestPage(pa, size-pa)
		end := pa + page
		for end < size && largestPage(end, size-end) == page {
			end += page
		}
		if err := k.Tables.Map(PageOffsetBase+pa, pa, end-pa, page, PermRW, AttrGlobal); err != nil {
			return fmt.Errorf("direct map: %w", err)
		}
		pa = end
	}
	return nil
}

// largestPage is the largest page size that can map physical address pa with at least that much RAM left.
func largestPage(pa, left uint64) uint64 {
	for _, s := range []uint64{Size1G, Size2M} {
		if pa%s == 0 && left >= s {
			return s
		}
	}
	return Size4K
}

// Close releases RAM. The CPU must no longer use the host pointers it was given.
func (k *Kernel) Close() error { return k.Mem.Close() }

// ModuleLoadOffset is this boot's random offset of the module area's first allocation from ModulesVaddr.
func (k *Kernel) ModuleLoadOffset() uint64 { return k.moduleLoadOffset }

// DirectMap is the direct-map address of physical address pa (Linux's __va).
func (k *Kernel) DirectMap(pa uint64) uint64 { return PageOffsetBase + pa }

// DirectMapPA is the physical address behind a direct-map address (Linux's __pa on one), if va is one.
func (k *Kernel) DirectMapPA(va uint64) (uint64, bool) {
	if va < PageOffsetBase || va-PageOffsetBase >= k.Mem.Size() {
		return 0, false
	}
	return va - PageOffsetBase, true
}

// AllocPages takes 2^order frames from the page allocator and returns their direct-map address, zeroed when
// asked (alloc_pages + page_address).
func (k *Kernel) AllocPages(order int, zero bool) (uint64, error) {
	pa, err := k.Frames.Alloc(order)
	if err != nil {
		return 0, err
	}
	if zero {
		if err := k.Mem.Zero(pa, PageSize<<order); err != nil {
			return 0, errors.Join(err, k.Frames.Free(pa, order))
		}
	}
	return k.DirectMap(pa), nil
}

// FreePages gives back what AllocPages returned for the same order.
func (k *Kernel) FreePages(va uint64, order int) error {
	pa, ok := k.DirectMapPA(va)
	if !ok {
		return fmt.Errorf("free pages at %#x: not a direct-map address: %w", va, syscall.EINVAL)
	}
	return k.Frames.Free(pa, order)
}

// MapFrames maps len(frames) consecutive pages of pageSize at va, page i backed by frames[i]; physically
// contiguous runs reach the Mirror as one call. On failure nothing stays mapped.
func (pt *PageTables) MapFrames(va uint64, frames []uint64, pageSize uint64, perm Perm, attr Attr) error {
	for i := 0; i < len(frames); {
		j := i + 1
		for j < len(frames) && frames[j] == frames[j-1]+pageSize {
			j++
		}
		at := va + uint64(i)*pageSize
		if err := pt.Map(at, frames[i], uint64(j-i)*pageSize, pageSize, perm, attr); err != nil {
			if i > 0 {
				err = errors.Join(err, pt.Unmap(va, uint64(i)*pageSize))
			}
			return err
		}
		i = j
	}
	return nil
}

// MapKernelImage backs [StartKernelMap+offset, +size) of the kernel image area with newly allocated, zeroed
// frames and maps it with perm, in 2M pages where offset and size allow (as the real image is mapped) and 4K pages
// otherwise. The machine uses it for the image's data and stub regions. It returns the virtual address.
func (k *Kernel) MapKernelImage(offset, size uint64, perm Perm) (uint64, error) {
	if size == 0 || offset%PageSize != 0 || offset >= KernelImageSize || size > KernelImageSize-offset {
		return 0, fmt.Errorf("map kernel image [+%#x, +%#x): outside the %#x-byte image area or unaligned: %w",
			offset, size, KernelImageSize, syscall.EINVAL)
	}
	size = (size + PageSize - 1) &^ (PageSize - 1)
	page, order := Size4K, 0
	if offset%Size2M == 0 && size%Size2M == 0 {
		page, order = Size2M, 9
	}
	frames := make([]uint64, 0, size/page)
	release := func() error {
		var errs []error
		for _, pa := range frames {
			errs = append(errs, k.Frames.Free(pa, order))
		}
		return errors.Join(errs...)
	}
	for range size / page {
		pa, err := k.Frames.Alloc(order)
		if err == nil {
			err = k.Mem.Zero(pa, page)
			frames = append(frames, pa)
		}
		if err != nil {
			return 0, errors.Join(fmt.Errorf("map kernel image [+%#x, +%#x): %w", offset, size, err), release())
		}
	}
	va := StartKernelMap + offset
	if err := k.Tables.MapFrames(va, frames, page, perm, AttrGlobal); err != nil {
		return 0, errors.Join(fmt.Errorf("map kernel image [+%#x, +%#x): %w", offset, size, err), release())
	}
	return va, nil
}

// ReadVirt copies kernel virtual memory at va into buf through the page tables, ignoring rights (as the kernel's
// own copy routines with text_poke do). It fails with EFAULT at the first untranslated byte.
func (k *Kernel) ReadVirt(va uint64, buf []byte) error {
	return k.virt(va, buf, k.Mem.Read)
}

// WriteVirt copies buf into kernel virtual memory at va through the page tables, ignoring rights (text_poke:
// how module text is written into read-only-exec pages).
func (k *Kernel) WriteVirt(va uint64, buf []byte) error {
	return k.virt(va, buf, k.Mem.Write)
}

func (k *Kernel) virt(va uint64, buf []byte, op func(uint64, []byte) error) error {
	for len(buf) > 0 {
		w := k.Tables.Walk(va, Access{})
		if !w.Translated() {
			return fmt.Errorf("kernel address %#x: not mapped: %w", va, syscall.EFAULT)
		}
		n := min(uint64(len(buf)), w.PageSize-va&(w.PageSize-1))
		if err := op(w.PA, buf[:n]); err != nil {
			return fmt.Errorf("kernel address %#x: %w", va, err)
		}
		buf, va = buf[n:], va+n
	}
	return nil
}

// AreaOf names the region of the kernel address layout va falls in, for fault reports: "direct map",
// "vmalloc", "vmemmap", "kernel image", "modules", "user" or "" (a hole, or non-canonical).
func AreaOf(va uint64) string {
	switch {
	case va < 1<<47:
		return "user"
	case va >= PageOffsetBase && va < DirectMapEnd:
		return "direct map"
	case va >= VmallocStart && va < VmallocEnd:
		return "vmalloc"
	case va >= VmemmapBase && va < VmemmapBase+1<<40:
		return "vmemmap"
	case va >= StartKernelMap && va < ModulesVaddr:
		return "kernel image"
	case va >= ModulesVaddr && va < ModulesEnd:
		return "modules"
	}
	return ""
}
