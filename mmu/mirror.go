package mmu

import "unsafe"

// Mirror is how page-table changes reach the CPU. The page tables in emulated physical memory are the source of
// truth; the CPU (Unicorn 2.0.1, which cannot translate through guest page tables) is told about every change
// so that its flat guest-virtual map always equals what the tables say.
//
// Map is called with the host pointer of the physical frames backing [va, va+size); two virtual ranges may be
// given the same host bytes (the direct map and a vmalloc alias of one frame). Splitting a large page never
// reaches the mirror: the translation does not change, only its representation in the tables.
type Mirror interface {
	Map(va uint64, host unsafe.Pointer, size uint64, perm Perm) error // host: backing bytes for [va, va+size)
	Unmap(va, size uint64) error
	Protect(va, size uint64, perm Perm) error
}

// NopMirror is a Mirror for tables that no CPU looks at (the walker alone is enough for many tests and tools).
type NopMirror struct{}

func (NopMirror) Map(uint64, unsafe.Pointer, uint64, Perm) error { return nil }
func (NopMirror) Unmap(uint64, uint64) error                     { return nil }
func (NopMirror) Protect(uint64, uint64, Perm) error             { return nil }
