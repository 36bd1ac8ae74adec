package mmu

import "strings"

// Perm is what a mapping allows: a bit set of Read, Write and Exec. It is the contract type between the memory
// model, its allocators and the CPU mirror. On x86-64 a present page is always readable, so Read is implied by
// any mapping; Perm keeps it explicit because the CPU mirror (Unicorn) wants it spelled out.
type Perm uint8

const (
	Read  Perm = 1 << iota // loads are allowed
	Write                  // stores are allowed (PTE.RW at every level)
	Exec                   // instruction fetches are allowed (PTE.NX clear at every level)
)

// Common permission sets, named as the kernel names them.
const (
	PermRO  = Read                // rodata, ro_after_init once sealed
	PermRW  = Read | Write        // data, the direct map, vmalloc (PAGE_KERNEL)
	PermRX  = Read | Exec         // text (PAGE_KERNEL_ROX)
	PermRWX = Read | Write | Exec // PAGE_KERNEL_EXEC; never used for module memory with STRICT_MODULE_RWX
)

// String renders the set as "rwx" with '-' for a missing right, like /proc/<pid>/maps.
func (p Perm) String() string {
	var b strings.Builder
	for _, r := range []struct {
		bit Perm
		c   byte
	}{{Read, 'r'}, {Write, 'w'}, {Exec, 'x'}} {
		if p&r.bit != 0 {
			b.WriteByte(r.c)
		} else {
			b.WriteByte('-')
		}
	}
	return b.String()
}
