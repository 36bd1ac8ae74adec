package mmu

import "fmt"

// Page sizes x86-64 4-level paging can map with one entry.
const (
	Size4K uint64 = 1 << 12 // a PTE
	Size2M uint64 = 1 << 21 // a PMD with PS set
	Size1G uint64 = 1 << 30 // a PUD with PS set
)

// Level names one level of the 4-level page-table tree, counted from the leaves as Linux's pgtable_level does.
// With 4-level paging the P4D level is folded into the PGD: it has no table of its own.
type Level int

const (
	LevelPTE Level = 1 + iota // page table: 4K pages
	LevelPMD                  // page middle directory: 2M pages or PTE tables
	LevelPUD                  // page upper directory: 1G pages or PMD tables
	LevelPGD                  // page global directory (PML4), what CR3 points at
)

func (l Level) String() string {
	switch l {
	case LevelPTE:
		return "PTE"
	case LevelPMD:
		return "PMD"
	case LevelPUD:
		return "PUD"
	case LevelPGD:
		return "PGD"
	}
	return fmt.Sprintf("level%d", int(l))
}

// shift is log2 of the address span one entry at this level covers.
func (l Level) shift() uint { return PageShift + 9*uint(l-1) }

// Span is the address range one entry at this level covers (the page size of a leaf there).
func (l Level) Span() uint64 { return 1 << l.shift() }

// index is the entry of a table at this level that translates va.
func (l Level) index(va uint64) uint64 { return va >> l.shift() & 511 }

// levelForSize is the level whose leaves are pages of the given size.
func levelForSize(size uint64) (Level, bool) {
	switch size {
	case Size4K:
		return LevelPTE, true
	case Size2M:
		return LevelPMD, true
	case Size1G:
		return LevelPUD, true
	}
	return 0, false
}

// PTE is one 64-bit paging-structure entry in the hardware format (Intel SDM vol. 3A, 4.5): the same layout at
// every level, the PS bit making a PMD or PUD entry a leaf.
type PTE uint64

// Entry bits, named as Linux's _PAGE_BIT_* are.
const (
	PTEPresent  PTE = 1 << 0  // P: the entry is valid
	PTEWrite    PTE = 1 << 1  // RW: writes allowed (ANDed over the levels)
	PTEUser     PTE = 1 << 2  // US: user-mode accesses allowed (ANDed over the levels)
	PTEPWT      PTE = 1 << 3  // page-level write-through
	PTEPCD      PTE = 1 << 4  // page-level cache disable
	PTEAccessed PTE = 1 << 5  // A: set by hardware when the entry is used
	PTEDirty    PTE = 1 << 6  // D: set by hardware on a write through a leaf
	PTEHuge     PTE = 1 << 7  // PS: a PMD/PUD entry maps a 2M/1G page (reserved in a PGD entry)
	PTEGlobal   PTE = 1 << 8  // G: the translation survives CR3 writes
	PTENX       PTE = 1 << 63 // NX (XD): instruction fetches not allowed (ORed over the levels; needs EFER.NXE)
)

// PhysAddrBits is the modelled MAXPHYADDR: address bits at and above it in an entry are reserved.
const PhysAddrBits = 46

const (
	addrMask     = (PTE(1)<<PhysAddrBits - 1) &^ (PageSize - 1)   // bits 12..45: frame or table address
	reservedMask = (PTE(1)<<52 - 1) &^ (PTE(1)<<PhysAddrBits - 1) // bits 46..51: must be zero
	flagMask     = PTENX | PTE(PageSize-1)                        // every bit that is not address
)

// tableEntry is how a present entry pointing to a lower table is written: Linux's _KERNPG_TABLE (P|RW|A|D), so
// that the leaf alone decides write and execute rights; US is added for tables leading to user pages.
const tableEntry = PTEPresent | PTEWrite | PTEAccessed | PTEDirty

func (e PTE) Present() bool { return e&PTEPresent != 0 }

// Addr is the physical address the entry holds: a table, or the first byte of the page it maps.
func (e PTE) Addr() uint64 { return uint64(e & addrMask) }

// leafAt reports whether a present entry at this level maps a page rather than pointing to a table.
func (e PTE) leafAt(l Level) bool { return l == LevelPTE || (l != LevelPGD && e&PTEHuge != 0) }

// reservedAt reports whether a present entry at this level has a reserved bit set (an RSVD page fault).
func (e PTE) reservedAt(l Level) bool {
	if e&reservedMask != 0 {
		return true
	}
	switch {
	case l == LevelPGD:
		return e&PTEHuge != 0
	case l == LevelPUD && e&PTEHuge != 0: // 1G page: bits 13..29 must be zero (bit 12 is PAT)
		return uint64(e)&(Size1G-1)&^(2*PageSize-1) != 0
	case l == LevelPMD && e&PTEHuge != 0: // 2M page: bits 13..20 must be zero
		return uint64(e)&(Size2M-1)&^(2*PageSize-1) != 0
	}
	return false
}

// Perm is the rights this entry alone grants.
func (e PTE) Perm() Perm {
	p := Read
	if e&PTEWrite != 0 {
		p |= Write
	}
	if e&PTENX == 0 {
		p |= Exec
	}
	return p
}

// Attr is the part of a mapping that is not a right: who may use it and how it is cached.
type Attr uint8

const (
	AttrUser         Attr = 1 << iota // US: user-mode accessible (never for kernel memory)
	AttrGlobal                        // G: kernel mappings are global
	AttrWriteThrough                  // PWT
	AttrNoCache                       // PCD
)

// leafEntry builds the leaf entry for a page at pa: Linux's PAGE_KERNEL family sets A and D up front, so the
// model never has to set them on access.
func leafEntry(pa uint64, level Level, perm Perm, attr Attr) PTE {
	e := PTE(pa)&addrMask | PTEPresent | PTEAccessed | PTEDirty | permBits(perm)
	if level != LevelPTE {
		e |= PTEHuge
	}
	if attr&AttrUser != 0 {
		e |= PTEUser
	}
	if attr&AttrGlobal != 0 {
		e |= PTEGlobal
	}
	if attr&AttrWriteThrough != 0 {
		e |= PTEPWT
	}
	if attr&AttrNoCache != 0 {
		e |= PTEPCD
	}
	return e
}

func permBits(perm Perm) PTE {
	var e PTE
	if perm&Write != 0 {
		e |= PTEWrite
	}
	if perm&Exec == 0 {
		e |= PTENX
	}
	return e
}

// attrOf recovers the Attr a leaf entry was made with.
func (e PTE) attr() Attr {
	var a Attr
	if e&PTEUser != 0 {
		a |= AttrUser
	}
	if e&PTEGlobal != 0 {
		a |= AttrGlobal
	}
	if e&PTEPWT != 0 {
		a |= AttrWriteThrough
	}
	if e&PTEPCD != 0 {
		a |= AttrNoCache
	}
	return a
}
