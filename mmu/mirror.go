package mmu

import "unsafe"

// Mirror is how page-table changes reach the CPU. The page tables in emulated physical memory are the source of
// truth; the CPU (Unicorn 2.0.1, which cannot translate through guest page tables) is told about every change
// so that its flat guest-virtual map always equals what the tables say.
//
// Map is called with the host pointer of the physical frames backing [va, va+size); two virtual ranges may be
// given the same host bytes (the direct map and a vmalloc alias of one frame). Splitting a large page never
// reaches the mirror as a mapping change: the translation does not change, only its representation in the
// tables (but the kernel flushes the TLB for it, see FlushTLB).
//
// FlushTLB is the kernel's TLB shootdown after a change, which x86 leaves to software: invalidate the cached
// translations of [start, end), as flush_tlb_kernel_range does, or every translation, global ones too, when
// all is set (flush_tlb_all). Where it is called is the kernel's policy: PageTables.Protect flushes at once as
// change_page_attr does, PageTables.Unmap leaves it to its caller as vunmap_range_noflush does (vfree flushes
// lazily), and a split of a large page flushes everything as __split_large_page does. The Map, Unmap and
// Protect calls change what the CPU can reach at once: only cached translations wait for FlushTLB.
type Mirror interface {
	Map(va uint64, host unsafe.Pointer, size uint64, perm Perm) error // host: backing bytes for [va, va+size)
	Unmap(va, size uint64) error
	Protect(va, size uint64, perm Perm) error
	FlushTLB(start, end uint64, all bool)
}

// NopMirror is a Mirror for tables that no CPU looks at (the walker alone is enough for many tests and tools).
type NopMirror struct{}

func (NopMirror) Map(uint64, unsafe.Pointer, uint64, Perm) error { return nil }
func (NopMirror) Unmap(uint64, uint64) error                     { return nil }
func (NopMirror) Protect(uint64, uint64, Perm) error             { return nil }
func (NopMirror) FlushTLB(uint64, uint64, bool)                  {}
