package mmu

import (
	"fmt"
	"strings"
)

// AccessKind is what the CPU was doing when it needed a translation.
type AccessKind uint8

const (
	AccessRead  AccessKind = iota // a data load
	AccessWrite                   // a data store
	AccessFetch                   // an instruction fetch
)

func (k AccessKind) String() string {
	switch k {
	case AccessWrite:
		return "write access"
	case AccessFetch:
		return "instruction fetch"
	}
	return "read access"
}

// Access is one memory access to translate: its kind and the privilege it is made with (CPL 3 is User).
type Access struct {
	Kind AccessKind
	User bool
}

// PFCode is the page-fault error code the CPU pushes (Intel SDM vol. 3A, 4.7): only the bits this model can
// produce (no protection keys, shadow stacks or SGX).
type PFCode uint32

const (
	PFProtection PFCode = 1 << 0 // P: 0 = the page was not present, 1 = a protection or reserved-bit violation
	PFWrite      PFCode = 1 << 1 // W/R: the access was a write
	PFUser       PFCode = 1 << 2 // U/S: the access was made in user mode
	PFReserved   PFCode = 1 << 3 // RSVD: a paging-structure entry had a reserved bit set
	PFFetch      PFCode = 1 << 4 // I/D: the access was an instruction fetch
)

// Reason is how Linux's show_fault_oops names the fault: "not-present page", "reserved bit violation" or
// "permissions violation".
func (c PFCode) Reason() string {
	switch {
	case c&PFProtection == 0:
		return "not-present page"
	case c&PFReserved != 0:
		return "reserved bit violation"
	}
	return "permissions violation"
}

// Fault is why a walk did not produce a usable translation.
type Fault uint8

const (
	FaultNone         Fault = iota // translated and allowed
	FaultNotPresent                // some level's entry had P clear: #PF with P=0
	FaultReserved                  // an entry had a reserved bit set: #PF with P=1, RSVD=1
	FaultProtection                // translated but the access is not allowed: #PF with P=1
	FaultNonCanonical              // not a canonical address: #GP, no walk at all
)

// Step is one paging-structure entry the walker read.
type Step struct {
	Level     Level
	EntryAddr uint64 // physical address of the entry
	Entry     PTE
}

// Walk is the outcome of translating one address, laid out so that a walk allocates nothing.
type Walk struct {
	VA    uint64
	Steps [4]Step // Steps[:NSteps] are the entries read, PGD first
	// NSteps is how many entries the walk read: 4 for a 4K page, 3 for 2M, 2 for 1G, fewer when it stopped early.
	NSteps int

	// The translation, valid when Fault is FaultNone or FaultProtection.
	PA       uint64 // physical address of VA
	PageSize uint64 // size of the page that maps VA
	Perm     Perm   // effective rights: RW ANDed and NX ORed over the levels
	User     bool   // effective US: user-mode accessible
	Global   bool

	Fault Fault
	Code  PFCode // the #PF error code when Fault is NotPresent, Reserved or Protection
}

// Translated reports whether the walk found a page for VA (whether or not the access was allowed).
func (w *Walk) Translated() bool { return w.Fault == FaultNone || w.Fault == FaultProtection }

// Walk translates va for an access as the CPU's page walker does with CR0.WP, EFER.NXE, CR4.SMEP and CR4.SMAP set
// and EFLAGS.AC clear (how Linux 6.1 runs): supervisor writes honour RW, supervisor code may neither run nor
// touch user pages. It never changes the tables (A and D are set when entries are made).
func (pt *PageTables) Walk(va uint64, acc Access) Walk {
	w := Walk{VA: va}
	code := PFCode(0)
	if acc.Kind == AccessWrite {
		code |= PFWrite
	}
	if acc.User {
		code |= PFUser
	}
	if acc.Kind == AccessFetch {
		code |= PFFetch
	}
	if !Canonical(va) {
		w.Fault = FaultNonCanonical
		return w
	}
	table := pt.root
	writable, user, exec := true, true, true
	for level := LevelPGD; level >= LevelPTE; level-- {
		addr := table + level.index(va)*8
		e := pt.read(table, level.index(va))
		w.Steps[w.NSteps] = Step{Level: level, EntryAddr: addr, Entry: e}
		w.NSteps++
		if !e.Present() {
			w.Fault, w.Code = FaultNotPresent, code
			return w
		}
		if e.reservedAt(level) {
			w.Fault, w.Code = FaultReserved, code|PFProtection|PFReserved
			return w
		}
		writable = writable && e&PTEWrite != 0
		user = user && e&PTEUser != 0
		exec = exec && e&PTENX == 0
		if e.leafAt(level) {
			w.PageSize = level.Span()
			w.PA = e.Addr() | va&(w.PageSize-1)
			w.Global = e&PTEGlobal != 0
			break
		}
		table = e.Addr()
	}
	w.Perm, w.User = Read, user
	if writable {
		w.Perm |= Write
	}
	if exec {
		w.Perm |= Exec
	}
	if !allowed(acc, w.Perm, user) {
		w.Fault, w.Code = FaultProtection, code|PFProtection
	}
	return w
}

// allowed applies the x86 rules for an access to a page with these effective rights.
func allowed(acc Access, perm Perm, userPage bool) bool {
	if acc.User != userPage { // user code on a supervisor page; or SMEP/SMAP: kernel on a user page
		return false
	}
	switch acc.Kind {
	case AccessWrite:
		return perm&Write != 0
	case AccessFetch:
		return perm&Exec != 0
	}
	return true
}

// Translate is the physical address of va for an access, or an error naming the fault.
func (pt *PageTables) Translate(va uint64, acc Access) (uint64, error) {
	w := pt.Walk(va, acc)
	if w.Fault == FaultNone {
		return w.PA, nil
	}
	return 0, w.Err()
}

// Err describes a failed walk as Linux's page-fault oops does; nil when the walk succeeded.
func (w *Walk) Err() error {
	switch w.Fault {
	case FaultNone:
		return nil
	case FaultNonCanonical:
		return fmt.Errorf("general protection fault, non-canonical address %#x", w.VA)
	}
	return &PageFaultError{Addr: w.VA, Code: w.Code}
}

// PageFaultError is a #PF: the faulting address (CR2) and the error code.
type PageFaultError struct {
	Addr uint64
	Code PFCode
}

func (e *PageFaultError) Error() string {
	mode := "supervisor"
	if e.Code&PFUser != 0 {
		mode = "user"
	}
	kind := AccessRead
	switch {
	case e.Code&PFFetch != 0:
		kind = AccessFetch
	case e.Code&PFWrite != 0:
		kind = AccessWrite
	}
	return fmt.Sprintf("page fault at %#x: %s %s, error_code(0x%04x) - %s", e.Addr, mode, kind, uint32(e.Code), e.Code.Reason())
}

// DumpEntries renders the entries translating va as Linux 6.1's dump_pagetable (arch/x86/mm/fault.c) prints them
// in an oops: "PGD %lx P4D %lx PUD %lx PMD %lx PTE %lx", stopping after the first entry that is not present or
// maps a large page. Every entry but the PTE is followed by a space (the PTE ends the line).
//
// The kernel is built with CONFIG_X86_5LEVEL and runs with 4-level paging, so the P4D level is folded at run
// time: pgd_present() is always true then, and the P4D "entry" is the PGD entry itself. Hence the P4D is printed
// even when the PGD entry is 0 ("PGD 0 P4D 0 " for a NULL dereference), repeating the PGD's value, and it is
// p4d_present() that stops the walk.
func (pt *PageTables) DumpEntries(va uint64) string {
	if !Canonical(va) {
		return ""
	}
	w := pt.Walk(va, Access{})
	var b strings.Builder
	for _, s := range w.Steps[:w.NSteps] {
		switch s.Level {
		case LevelPGD:
			fmt.Fprintf(&b, "PGD %x P4D %x ", uint64(s.Entry), uint64(s.Entry))
		case LevelPTE:
			fmt.Fprintf(&b, "PTE %x", uint64(s.Entry))
		default:
			fmt.Fprintf(&b, "%s %x ", s.Level, uint64(s.Entry))
		}
	}
	return b.String()
}
