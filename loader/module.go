package loader

import (
	"kemu/mmu"
)

// State is enum module_state; the values are the kernel's.
type State int

const (
	Live     State = 0 // MODULE_STATE_LIVE: init finished
	Coming   State = 1 // MODULE_STATE_COMING: formed, init not finished
	Going    State = 2 // MODULE_STATE_GOING: init failed or being unloaded
	Unformed State = 3 // MODULE_STATE_UNFORMED: still being set up
)

func (s State) String() string {
	switch s {
	case Live:
		return "Live"
	case Coming:
		return "Loading"
	case Going:
		return "Unloading"
	case Unformed:
		return "Unformed"
	}
	return "?"
}

// RegionKind names one of a module's memory regions.
type RegionKind int

const (
	CoreRegion   RegionKind = iota // core_layout: lives until unload
	InitRegion                     // init_layout: .init* sections, freed once init succeeds
	PercpuRegion                   // the per-CPU copy template (the section the kernel copies per CPU)
)

func (k RegionKind) String() string {
	switch k {
	case CoreRegion:
		return "core"
	case InitRegion:
		return "init"
	case PercpuRegion:
		return "percpu"
	}
	return "?"
}

// Range is a page-aligned part of a region with one protection, as module_enable_ro/nx/x set it.
// AfterInit is the protection once init has finished (ro_after_init turns RW into RO); it equals Perm
// for every other range. Offset is where the range's bytes start in Region.Bytes, Addr where they live.
type Range struct {
	Addr, Size uint64
	Offset     uint64
	Perm       mmu.Perm
	AfterInit  mmu.Perm
	Class      string // "text", "rodata", "ro_after_init", "data"
}

// Piece is a part of a region placed at its own address. A region from ModuleAlloc is one piece; a
// PieceMemory may split a region at range boundaries (text in a shared pack, the rest elsewhere).
type Piece struct {
	Offset, Size uint64 // within the region
	Addr         uint64 // guest address of Offset
}

// Region is one allocation holding a module's laid-out sections. Bytes is the relocated image: the
// caller copies each piece's bytes to its address (for a contiguous region, Bytes to [Addr, Addr+Size));
// sections of type NOBITS are zero in it.
type Region struct {
	Kind   RegionKind
	Addr   uint64 // address of the region's first byte
	Size   uint64 // page aligned, as module_alloc rounds it
	Bytes  []byte // len == Size
	Ranges []Range
	Pieces []Piece // sorted by Offset, covering the region
}

// Contains reports whether addr is inside the region.
func (r *Region) Contains(addr uint64) bool {
	_, ok := r.Offset(addr)
	return ok
}

// Offset is the position in Bytes of the byte at guest address addr.
func (r *Region) Offset(addr uint64) (uint64, bool) {
	for _, p := range r.Pieces {
		if addr >= p.Addr && addr-p.Addr < p.Size {
			return p.Offset + addr - p.Addr, true
		}
	}
	return 0, false
}

// AddrOf is the guest address of byte off of the region.
func (r *Region) AddrOf(off uint64) (uint64, bool) {
	for _, p := range r.Pieces {
		if off >= p.Offset && off-p.Offset < p.Size {
			return p.Addr + off - p.Offset, true
		}
	}
	return 0, false
}

// Section is one ALLOC section placed in a region.
type Section struct {
	Name   string
	Index  int // ELF section header index
	Region RegionKind
	Addr   uint64
	Size   uint64
	Flags  uint64 // sh_flags as the kernel saw them (SHF_RO_AFTER_INIT added)
}

// Symbol is one of the module's own ELF symbols after simplify_symbols: defined symbols with their final
// address, as kallsyms keeps them.
type Symbol struct {
	Name string
	Addr uint64
	Size uint64
	Type byte // kallsyms letter (elf_type): t, r, d, b, a, v, w, ... upper-case when exported
	Init bool // lives in the init region (gone from kallsyms once init finished)
}

// Export is a symbol a module (or vmlinux) offers to modules loaded after it.
type Export struct {
	Name      string
	Addr      uint64
	CRC       uint32
	HasCRC    bool
	GPLOnly   bool
	Namespace string
	Owner     *Module // nil for vmlinux

	addrKnown bool // vmlinux exports: System.map has the symbol (per-CPU ones may sit at 0)
}

// ExTableEntry is one __ex_table record (struct exception_table_entry, relative offsets resolved).
type ExTableEntry struct {
	Insn  uint64 // faulting instruction
	Fixup uint64 // where execution continues
	Data  int32  // handler type and its arguments (EX_DATA_*)
}

// BugEntry is one __bug_table record (struct bug_entry with relative pointers and BUGVERBOSE).
type BugEntry struct {
	Addr  uint64 // address of the ud2
	File  string
	Line  uint16
	Flags uint16 // BUGFLAG_WARNING, BUGFLAG_ONCE, BUGFLAG_DONE, ...
}

// ORCEntry is one ORC unwind record paired with the instruction address it starts at.
type ORCEntry struct {
	IP       uint64
	SPOffset int16
	BPOffset int16
	SPReg    uint8
	BPReg    uint8
	Type     uint8
	End      bool
}

// Modinfo is the .modinfo section: key=value strings in file order.
type Modinfo []ModinfoEntry

// ModinfoEntry is one .modinfo string.
type ModinfoEntry struct{ Key, Value string }

// Get returns the first value for key, as get_modinfo does.
func (mi Modinfo) Get(key string) (string, bool) {
	for _, e := range mi {
		if e.Key == key {
			return e.Value, true
		}
	}
	return "", false
}

// All returns every value for key in file order (alias, depends, import_ns, parm, ...).
func (mi Modinfo) All(key string) []string {
	var out []string
	for _, e := range mi {
		if e.Key == key {
			out = append(out, e.Value)
		}
	}
	return out
}

// Version is one __versions record: the CRC the module was built against for an imported symbol.
type Version struct {
	CRC  uint64
	Name string
}

// kallsym is one line of the module's /proc/kallsyms view. Names are offsets into the module's string
// table (kallsymNames), so the thousands of entries of a loaded tree hold no pointers to scan.
type kallsym struct {
	addr    uint64
	nameOff uint32
	nameLen uint32
	typ     byte
	core    bool // kept after init (is_core_symbol)
}

// Module is a module as the loader produced it and the registry tracks it.
type Module struct {
	Name     string
	Path     string // file it came from, when known
	State    State
	Modinfo  Modinfo
	Versions []Version // nil when the module has no __versions (or its use was ignored)

	Core, Init Region
	InitFreed  bool   // init finished: the init region is freed (the caller unmaps it) and its symbols are gone
	Percpu     Region // Size 0 when the module has no per-CPU data
	Sections   []Section

	ThisModule uint64 // address of the module's struct module (.gnu.linkonce.this_module)
	StateAddr  uint64 // address of its state field (holds COMING in the bytes Load returns; the caller writes LIVE/GOING)
	InitFunc   uint64 // init_module(), 0 when the module has none
	ExitFunc   uint64 // cleanup_module(), 0 when the module has none

	Symbols  []Symbol // symbols defined in the module's memory, in symbol-table order
	Exports  []Export // what it exports, sorted by name
	ExTable  []ExTableEntry
	BugTable []BugEntry
	ORC      []ORCEntry // sorted by IP
	Params   []Param

	Taints Taint
	SigOK  bool // a signature was verified against a trusted key

	usedBy       []*Module         // source_list: modules that use this one
	uses         []*Module         // target_list: modules this one uses
	refcnt       int               // module_refcount(): what /proc/modules prints
	charps       map[uint64]uint64 // charp parameter variable -> its kmalloc'd value, freed with the module
	kallsyms     []kallsym         // add_kallsyms(): the symbol table as /proc/kallsyms shows it
	kallsymNames string
}

// UsedBy is the modules holding a reference to m through symbol use, most recent first as the kernel lists them.
func (m *Module) UsedBy() []*Module { return append([]*Module(nil), m.usedBy...) }

// Uses is the modules m resolved symbols from.
func (m *Module) Uses() []*Module { return append([]*Module(nil), m.uses...) }

// Refcount is module_refcount(m).
func (m *Module) Refcount() int { return m.refcnt }

// Permanent reports a module with an init function but no exit: it cannot be unloaded without force.
func (m *Module) Permanent() bool { return m.InitFunc != 0 && m.ExitFunc == 0 }

// SymbolAt finds the module symbol containing addr (kallsyms' lookup: the closest symbol at or below
// addr, its size the distance to the next one when the ELF size is 0).
func (m *Module) SymbolAt(addr uint64) (sym Symbol, off uint64, ok bool) {
	best := -1
	for i, s := range m.Symbols {
		if s.Addr <= addr && (best < 0 || s.Addr > m.Symbols[best].Addr) {
			if m.InitFreed && s.Init {
				continue
			}
			best = i
		}
	}
	if best < 0 {
		return Symbol{}, 0, false
	}
	s := m.Symbols[best]
	if !m.Core.Contains(addr) && (m.InitFreed || !m.Init.Contains(addr)) {
		return Symbol{}, 0, false
	}
	return s, addr - s.Addr, true
}

// Lookup returns the module's own symbol called name.
func (m *Module) Lookup(name string) (Symbol, bool) {
	for _, s := range m.Symbols {
		if s.Name == name {
			return s, true
		}
	}
	return Symbol{}, false
}
