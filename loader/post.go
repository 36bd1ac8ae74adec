package loader

import (
	"cmp"
	"slices"
	"sort"
	"syscall"
)

// Record sizes of the tables post_relocation and module_finalize read.
const (
	ksymSize    = 12 // struct kernel_symbol with PREL32 references
	extableSize = 12 // struct exception_table_entry: insn, fixup, data
	bugSize     = 12 // struct bug_entry with CONFIG_DEBUG_BUGVERBOSE: bug_addr_disp, file_disp, line, flags
	orcSize     = 6  // struct orc_entry
)

// postRelocation is post_relocation() and module_finalize() as far as a CPU-less loader can do them:
// the module's exports, its exception table (sorted, as sort_extable does), bug table, ORC tables and
// kallsyms symbols. Alternatives, retpoline, return-thunk and ftrace patching depend on the CPU, which the
// loader does not know: their tables (.altinstructions, .retpoline_sites, .return_sites, __mcount_loc) stay
// in Module.Sections and the machine applies them once the module is in memory.
func (info *loadInfo) postRelocation() error {
	m := info.mod
	var err error
	if m.Exports, err = info.readExports(); err != nil {
		return err
	}
	if m.ExTable, err = info.readExTable(); err != nil {
		return err
	}
	if m.BugTable, err = info.readBugTable(); err != nil {
		return err
	}
	if m.ORC, err = info.readORC(); err != nil {
		return err
	}
	info.buildKallsyms()
	return nil
}

// sectionBytes returns the relocated bytes and address of the placed ALLOC section called name.
func (info *loadInfo) sectionBytes(name string) (b []byte, addr uint64, ok bool) {
	i := info.f.findSec(name)
	if i == 0 || !info.place[i].ok {
		return nil, 0, false
	}
	p := info.place[i]
	r := info.mod.region(p.region)
	return r.Bytes[p.off : p.off+info.f.secs[i].Size], info.addr[i], true
}

// prel32 resolves a PREL32 reference: the field's address plus its signed content.
func prel32(b []byte, addr uint64) uint64 { return addr + uint64(int64(int32(le.Uint32(b)))) }

// readExports reads __ksymtab and __ksymtab_gpl (struct kernel_symbol, PREL32) with the parallel CRC tables.
func (info *loadInfo) readExports() ([]Export, error) {
	m := info.mod
	var out []Export
	for _, tab := range []struct {
		syms, crcs string
		gpl        bool
	}{{"__ksymtab", "__kcrctab", false}, {"__ksymtab_gpl", "__kcrctab_gpl", true}} {
		b, addr, ok := info.sectionBytes(tab.syms)
		if !ok {
			continue
		}
		crcs, _, hasCRC := info.sectionBytes(tab.crcs)
		for i := 0; i+ksymSize <= len(b); i += ksymSize {
			a := addr + uint64(i)
			e := Export{Addr: prel32(b[i:], a), GPLOnly: tab.gpl, Owner: m}
			name, ok := m.stringAt(prel32(b[i+4:], a+4), 4096)
			if !ok {
				return nil, kerr(syscall.ENOEXEC, "").withDetail("%s: %s entry %d: name is not a string inside the module", m.Name, tab.syms, i/ksymSize)
			}
			e.Name = name
			if off := int32(le.Uint32(b[i+8:])); off != 0 {
				if e.Namespace, ok = m.stringAt(prel32(b[i+8:], a+8), 4096); !ok {
					return nil, kerr(syscall.ENOEXEC, "").withDetail("%s: export %s: namespace is not a string inside the module", m.Name, name)
				}
			}
			if j := i / ksymSize * 4; hasCRC && j+4 <= len(crcs) {
				e.CRC, e.HasCRC = le.Uint32(crcs[j:]), true
			}
			out = append(out, e)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// readExTable reads __ex_table and sorts it by instruction address.
func (info *loadInfo) readExTable() ([]ExTableEntry, error) {
	b, addr, ok := info.sectionBytes("__ex_table")
	if !ok {
		return nil, nil
	}
	out := make([]ExTableEntry, 0, len(b)/extableSize)
	for i := 0; i+extableSize <= len(b); i += extableSize {
		a := addr + uint64(i)
		out = append(out, ExTableEntry{Insn: prel32(b[i:], a), Fixup: prel32(b[i+4:], a+4), Data: int32(le.Uint32(b[i+8:]))})
	}
	slices.SortStableFunc(out, func(a, b ExTableEntry) int { return cmp.Compare(a.Insn, b.Insn) })
	return out, nil
}

// readBugTable reads __bug_table (relative pointers, with file and line).
func (info *loadInfo) readBugTable() ([]BugEntry, error) {
	b, addr, ok := info.sectionBytes("__bug_table")
	if !ok {
		return nil, nil
	}
	m := info.mod
	size := bugSize
	verbose := info.k.config("CONFIG_DEBUG_BUGVERBOSE", true)
	if !verbose {
		size = 8 // bug_addr_disp and flags, padded
	}
	out := make([]BugEntry, 0, len(b)/size)
	files := map[uint64]string{} // a module's entries name a few source files many times: one string each
	for i := 0; i+size <= len(b); i += size {
		a := addr + uint64(i)
		e := BugEntry{Addr: prel32(b[i:], a), Flags: le.Uint16(b[i+4:])}
		if verbose {
			e.Line, e.Flags = le.Uint16(b[i+8:]), le.Uint16(b[i+10:])
			if fileAddr := prel32(b[i+4:], a+4); fileAddr != a+4 {
				f, ok := files[fileAddr]
				if !ok {
					f, _ = m.stringAt(fileAddr, 4096)
					files[fileAddr] = f
				}
				e.File = f
			}
		}
		out = append(out, e)
	}
	return out, nil
}

// readORC pairs .orc_unwind_ip (PREL32 addresses) with .orc_unwind entries and sorts them by address,
// as unwind_module_init() does.
func (info *loadInfo) readORC() ([]ORCEntry, error) {
	ips, ipAddr, ok1 := info.sectionBytes(".orc_unwind_ip")
	orc, _, ok2 := info.sectionBytes(".orc_unwind")
	if !ok1 || !ok2 {
		return nil, nil
	}
	n := len(ips) / 4
	if len(ips)%4 != 0 || len(orc)%orcSize != 0 || len(orc)/orcSize != n {
		return nil, kerr(syscall.ENOEXEC, "").withDetail("%s: .orc_unwind_ip (%d bytes) and .orc_unwind (%d bytes) do not match", info.name, len(ips), len(orc))
	}
	out := make([]ORCEntry, n)
	for i := range out {
		o := orc[i*orcSize : i*orcSize+orcSize]
		bits := le.Uint16(o[4:])
		out[i] = ORCEntry{
			IP:       prel32(ips[i*4:], ipAddr+uint64(i*4)),
			SPOffset: int16(le.Uint16(o[0:])),
			BPOffset: int16(le.Uint16(o[2:])),
			SPReg:    uint8(bits & 0xf),
			BPReg:    uint8(bits >> 4 & 0xf),
			Type:     uint8(bits >> 8 & 0x3),
			End:      bits>>10&1 != 0,
		}
	}
	info.k.orcScratch = sortORC(out, info.k.orcScratch)
	return out, nil
}

// sortORC sorts entries by IP, keeping the file order of equal IPs, and returns scratch, the buffer
// it merged through (grown when too small), for the next call: the registry keeps every module's
// table, not the copies it took to sort them.
//
// The linker concatenates each object's ORC entries, which objtool emits section by section in
// address order, so a module's table is a few ascending runs per object (.text, .text.unlikely,
// .init.text, ...). Merging neighbouring runs does O(n log runs) work where a general sort would do
// O(n log n), and since the runs of different objects cover separate stretches of each section, the
// merges move long blocks (mergeORC).
func sortORC(es, scratch []ORCEntry) []ORCEntry {
	bounds := []int{0}
	for i := 1; i < len(es); i++ {
		if es[i].IP < es[i-1].IP {
			bounds = append(bounds, i)
		}
	}
	if len(bounds) == 1 {
		return scratch
	}
	bounds = append(bounds, len(es))
	if cap(scratch) < len(es) {
		scratch = make([]ORCEntry, len(es))
	}
	src, dst := es, scratch[:len(es)]
	for len(bounds) > 2 { // each pass merges neighbouring runs, halving their number
		next := make([]int, 0, len(bounds)/2+2)
		for j := 0; j+1 < len(bounds); j += 2 {
			lo := bounds[j]
			if j+2 < len(bounds) {
				mergeORC(dst[lo:bounds[j+2]], src[lo:bounds[j+1]], src[bounds[j+1]:bounds[j+2]])
			} else {
				copy(dst[lo:bounds[j+1]], src[lo:bounds[j+1]])
			}
			next = append(next, lo)
		}
		bounds = append(next, len(es))
		src, dst = dst, src
	}
	if &src[0] != &es[0] {
		copy(es, src)
	}
	return scratch
}

// mergeORC merges the sorted a and b into dst (len(a)+len(b) long), a's entries first among equals. It
// copies whole blocks: the entries of a that go before b's first, then those of b that go before a's
// first, and so on, each block's end found by galloping (orcLeading).
func mergeORC(dst, a, b []ORCEntry) {
	for len(a) > 0 && len(b) > 0 {
		n := orcLeading(a, b[0].IP, true)
		copy(dst, a[:n])
		dst, a = dst[n:], a[n:]
		if len(a) == 0 {
			break
		}
		n = orcLeading(b, a[0].IP, false)
		copy(dst, b[:n])
		dst, b = dst[n:], b[n:]
	}
	copy(dst, a)
	copy(dst[len(a):], b)
}

// orcLeading returns how many leading entries of the sorted s have an IP below ip (at most ip when
// orEqual): an exponential search from the front, then a binary search, O(log n) for an answer n.
func orcLeading(s []ORCEntry, ip uint64, orEqual bool) int {
	before := func(e *ORCEntry) bool { return e.IP < ip || (orEqual && e.IP == ip) }
	lo, hi := 0, 1 // s[:lo] go before; the answer is below hi unless hi passes the end
	for hi <= len(s) && before(&s[hi-1]) {
		lo, hi = hi, 2*hi
	}
	hi = min(hi, len(s))
	for lo < hi { // s[:lo] go before, s[hi:] do not
		mid := int(uint(lo+hi) >> 1)
		if before(&s[mid]) {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	return lo
}

// elfType is kallsyms' elf_type(): the nm-style letter of a symbol.
func (info *loadInfo) elfType(s *elfSym) byte {
	if s.bind() == stbWeak {
		if s.typ() == sttObject {
			return 'v'
		}
		return 'w'
	}
	switch {
	case s.Shndx == shnUndef:
		return 'U'
	case s.Shndx == shnAbs || (info.idxPcpu != 0 && int(s.Shndx) == info.idxPcpu):
		return 'a'
	case s.Shndx >= shnLoreserve || int(s.Shndx) >= len(info.f.secs):
		return '?'
	}
	sec := &info.f.secs[s.Shndx]
	switch {
	case sec.Flags&shfExecinstr != 0:
		return 't'
	case sec.Flags&shfAlloc != 0 && sec.Type != shtNobits:
		if sec.Flags&shfWrite == 0 {
			return 'r'
		}
		return 'd'
	case sec.Type == shtNobits:
		return 'b'
	}
	return '?'
}

// buildKallsyms is add_kallsyms(): the /proc/kallsyms view of the module (every named symbol of its
// table while it is COMING; only the core symbols once init has finished), and Module.Symbols, the
// symbols defined in the module's own memory that addresses are symbolized against. Letters are
// upper-case for symbols the module exports without GPL restriction (is_exported()).
func (info *loadInfo) buildKallsyms() {
	m := info.mod
	var exported map[string]uint64 // most modules export nothing: no map for them
	for _, e := range m.Exports {
		if !e.GPLOnly {
			if exported == nil {
				exported = make(map[string]uint64, len(m.Exports))
			}
			exported[e.Name] = e.Addr
		}
	}
	livepatch := m.Taints&TaintLivepatch != 0
	m.kallsymNames = info.strtab
	// One pass classifies every symbol for the core copy and both views, which the registry keeps
	// for every module loaded, so they are sized up front rather than grown by appending.
	kinds := info.scratch.kinds[:0]
	named, own := 0, 0
	for i := range info.syms {
		s := &info.syms[i]
		k := symKind{typ: info.elfType(s), core: i == 0 || livepatch || info.isCoreSymbol(s)}
		if i != 0 && s.Name != "" {
			named++
			if k.own = info.ownSymbol(s); k.own {
				own++
			}
		}
		kinds = append(kinds, k)
	}
	info.scratch.kinds = kinds
	info.writeCoreKallsyms(kinds)
	if named != 0 {
		m.kallsyms = make([]kallsym, 0, named)
	}
	if own != 0 {
		m.Symbols = make([]Symbol, 0, own)
	}
	for i := 1; i < len(info.syms); i++ {
		s := &info.syms[i]
		if s.Name == "" { // s_show() skips nameless symbols
			continue
		}
		k := kinds[i]
		typ := k.typ
		if exported != nil && typ >= 'a' && typ <= 'z' {
			if a, ok := exported[s.Name]; ok && a == s.Value {
				typ -= 'a' - 'A'
			}
		}
		m.kallsyms = append(m.kallsyms, kallsym{addr: s.Value, nameOff: s.NameOff, nameLen: uint32(len(s.Name)), typ: typ, core: k.core})
		if k.own {
			p := info.place[s.Shndx]
			m.Symbols = append(m.Symbols, Symbol{Name: s.Name, Addr: s.Value, Size: s.Size, Type: typ, Init: p.ok && p.region == InitRegion})
		}
	}
}

// symKind is what buildKallsyms learns of a symbol: its elf_type letter, whether the core kallsyms
// copy keeps it (symbol 0 always, as layout_symtab counts it) and whether it is an own symbol.
type symKind struct {
	typ       byte
	core, own bool
}

// ownSymbol reports whether a named symbol is defined in the module's own memory (a placed section or
// the per-CPU one, not a section symbol, not in the symbol or string table): Module.Symbols holds those.
func (info *loadInfo) ownSymbol(s *elfSym) bool {
	if s.Shndx == shnUndef || int(s.Shndx) >= len(info.f.secs) || s.typ() == sttSection {
		return false
	}
	pcpu := info.idxPcpu != 0 && int(s.Shndx) == info.idxPcpu
	return (info.place[s.Shndx].ok || pcpu) && int(s.Shndx) != info.idxSym && int(s.Shndx) != info.idxStr
}

// writeCoreKallsyms fills the space layout_symtab() reserved at the end of the core region as
// add_kallsyms() does: the core symbols (Elf64_Sym with st_name rebased), their names and type letters,
// which kallsyms reads once the init region is gone. kinds classifies info.syms (buildKallsyms).
func (info *loadInfo) writeCoreKallsyms(kinds []symKind) {
	core := info.mod.Core.Bytes
	if uint64(len(core)) < info.coreTypeoffs {
		return
	}
	dst, names, types := info.symoffs, info.stroffs, info.coreTypeoffs
	for i := range info.syms {
		if !kinds[i].core {
			continue
		}
		s := &info.syms[i]
		if dst+symSize > info.stroffs || names+uint64(len(s.Name))+1 > info.coreTypeoffs || types >= uint64(len(core)) {
			return // cannot happen: layout_symtab counted the same symbols
		}
		e := core[dst : dst+symSize]
		le.PutUint32(e[0:], uint32(names-info.stroffs))
		e[4], e[5] = s.Info, 0
		le.PutUint16(e[6:], s.Shndx)
		le.PutUint64(e[8:], s.Value)
		le.PutUint64(e[16:], s.Size)
		copy(core[names:], s.Name)
		core[names+uint64(len(s.Name))] = 0
		core[types] = kinds[i].typ
		dst, names, types = dst+symSize, names+uint64(len(s.Name))+1, types+1
	}
}
