package loader

import (
	"fmt"
	"syscall"
)

// Memory is what the loader asks of its caller: guest addresses for module regions (module_alloc) and
// kernel heap allocations (kmalloc, for charp parameters). The loader fills the bytes itself and returns
// them in the Module; the caller copies them to guest memory and applies the ranges' permissions.
type Memory interface {
	// ModuleAlloc reserves a page-aligned, zeroed region of size bytes (a multiple of the page size) for
	// one of module's regions and returns its guest address. Errors are reported as ENOMEM.
	ModuleAlloc(module string, kind RegionKind, size uint64) (uint64, error)
	// ModuleFree releases a region: on a failed load, for init memory once init succeeded, on unload.
	ModuleFree(addr, size uint64)
	// KernelAlloc allocates len(data) bytes of kernel memory, stores data there and returns the address.
	KernelAlloc(data []byte) (uint64, error)
	// KernelFree releases an allocation made by KernelAlloc.
	KernelFree(addr uint64)
}

// PieceMemory is an optional extension of Memory for placements that may put parts of a region at
// different addresses (hugepack packs text into shared pages apart from the rest). When the caller's
// Memory implements it, the loader calls ModuleAllocPieces instead of ModuleAlloc with the region's
// ranges (Offset, Size, Perm, Class set; Addr zero) and links every section at the address its piece
// gives. Pieces must be sorted by Offset, cover the region and not split a range. ModuleFree is called
// with the address of the region's first byte and its size.
type PieceMemory interface {
	ModuleAllocPieces(module string, kind RegionKind, size uint64, ranges []Range) ([]Piece, error)
}

// Kernel address-space constants of x86-64 with 4-level paging.
const (
	PageSize      = 4096
	ModulesVaddr  = 0xffffffffc0000000 // MODULES_VADDR
	ModulesEnd    = 0xffffffffff000000 // MODULES_END
	directMapBase = 0xffff888000000000 // page_offset_base without KASLR
)

func pageAlign(n uint64) uint64 { return (n + PageSize - 1) &^ (PageSize - 1) }

// FlatMemory is a Memory that only hands out addresses: regions are placed one after another in the
// module area with a guard page between them, kernel allocations in the direct map. It keeps the bytes
// of kernel allocations so tests can read charp parameters back. It is what `kemu check` links against.
type FlatMemory struct {
	next, nextHeap uint64
	heap           map[uint64][]byte
}

// NewFlatMemory returns an empty FlatMemory whose first region starts at the module area base.
func NewFlatMemory() *FlatMemory {
	return &FlatMemory{next: ModulesVaddr, nextHeap: directMapBase + 0x100000000, heap: map[uint64][]byte{}}
}

// ModuleAlloc implements Memory.
func (f *FlatMemory) ModuleAlloc(module string, kind RegionKind, size uint64) (uint64, error) {
	size = pageAlign(size)
	if size == 0 || size > ModulesEnd-f.next || ModulesEnd-f.next-size < PageSize {
		return 0, fmt.Errorf("module_alloc %s %s region of %d bytes: %w", module, kind, size, syscall.ENOMEM)
	}
	addr := f.next
	f.next += size + PageSize // guard page
	return addr, nil
}

// ModuleFree implements Memory; address space is not reused.
func (f *FlatMemory) ModuleFree(addr, size uint64) {}

// KernelAlloc implements Memory.
func (f *FlatMemory) KernelAlloc(data []byte) (uint64, error) {
	addr := f.nextHeap
	f.nextHeap += (uint64(len(data)) + 15) &^ 15
	if len(data) == 0 {
		f.nextHeap += 16
	}
	f.heap[addr] = append([]byte(nil), data...)
	return addr, nil
}

// KernelFree implements Memory.
func (f *FlatMemory) KernelFree(addr uint64) { delete(f.heap, addr) }

// Heap returns the bytes of the kernel allocation at addr.
func (f *FlatMemory) Heap(addr uint64) ([]byte, bool) {
	b, ok := f.heap[addr]
	return b, ok
}
