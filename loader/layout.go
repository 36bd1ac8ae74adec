package loader

import (
	"fmt"
	"strings"
	"syscall"

	"kemu/mmu"
)

// layoutSizes is struct module_layout's sizes: each class boundary is page aligned (strict_align with
// CONFIG_STRICT_MODULE_RWX), so every range below gets its own protection.
type layoutSizes struct {
	size, textSize, roSize, roAfterInitSize uint64
}

// maxRegion bounds a region. The kernel's bound is the module area (about 1 GiB); kemu holds every
// region's bytes in host memory, so it refuses regions above 64 MiB (the largest Debian 6.1 module,
// amdgpu, has a 9.2 MiB core region) rather than let a crafted .bss size allocate a gigabyte.
const maxRegion = 64 << 20

// layoutClasses are layout_sections()'s masks: flags a section must have, flags it must not have.
var layoutClasses = [...]struct {
	name      string
	need, not uint64
}{
	{"text", shfExecinstr | shfAlloc, 0},
	{"rodata", shfAlloc, shfWrite},
	{"ro_after_init", shfROAfterInit | shfAlloc, 0},
	{"data", shfWrite | shfAlloc, 0},
	{"other", shfAlloc, 0},
}

// isInitSection is module_init_layout_section() with CONFIG_MODULE_UNLOAD: ".init*" sections go to init.
func isInitSection(name string) bool { return strings.HasPrefix(name, ".init") }

// getOffset is module_get_offset(): the section's aligned offset in a region of *size bytes.
func getOffset(size *uint64, align, secSize uint64) (uint64, error) {
	if align == 0 {
		align = 1
	}
	off := (*size + align - 1) &^ (align - 1) // the kernel's ALIGN()
	end := off + secSize
	if off < *size || end < off || end > maxRegion {
		return 0, syscall.ENOMEM
	}
	*size = end
	return off, nil
}

// layoutSections is layout_sections(): core pass, then init pass, over the five classes.
func (info *loadInfo) layoutSections() error {
	f := info.f
	info.place = make([]placed, len(f.secs))
	for _, init := range []bool{false, true} {
		l := &info.layout.core
		region := CoreRegion
		if init {
			l, region = &info.layout.init, InitRegion
		}
		for m, c := range layoutClasses {
			for i := range f.secs {
				s := &f.secs[i]
				if s.Flags&c.need != c.need || s.Flags&c.not != 0 || info.place[i].ok || isInitSection(s.Name) != init {
					continue
				}
				off, err := getOffset(&l.size, s.Addralign, s.Size)
				if err != nil {
					return kerr(syscall.ENOMEM, "").withDetail("%s: section %s (%d bytes, align %d) does not fit the module area", info.name, s.Name, s.Size, s.Addralign)
				}
				info.place[i] = placed{ok: true, region: region, off: off}
			}
			switch m {
			case 0:
				l.size = pageAlign(l.size)
				l.textSize = l.size
			case 1:
				l.size = pageAlign(l.size)
				l.roSize = l.size
			case 2:
				if init { // ro_after_init does not apply to init memory
					l.roAfterInitSize = l.roSize
				} else {
					l.size = pageAlign(l.size)
					l.roAfterInitSize = l.size
				}
			case 4:
				l.size = pageAlign(l.size)
			}
		}
	}
	return nil
}

// Sizes of the kallsyms bookkeeping layout_symtab() reserves.
const (
	modKallsymsSize  = 32 // struct mod_kallsyms
	modKallsymsAlign = 8
)

// layoutSymtab is layout_symtab(): the full symbol and string tables go at the end of the init region
// (kallsyms during init), and room for the core symbols' copy (symbols, names, type letters) at the end of
// the core region, where kallsyms finds them after init (writeCoreKallsyms fills it).
func (info *loadInfo) layoutSymtab() error {
	f := info.f
	sym, str := &f.secs[info.idxSym], &f.secs[info.idxStr]
	tooBig := func() error {
		return kerr(syscall.ENOMEM, "").withDetail("%s: symbol table does not fit the module area", info.name)
	}
	sym.Flags |= shfAlloc
	off, err := getOffset(&info.layout.init.size, sym.Addralign, sym.Size)
	if err != nil {
		return tooBig()
	}
	info.place[info.idxSym] = placed{ok: true, region: InitRegion, off: off}

	var ndst, strtabSize uint64
	livepatch := info.mod.Taints&TaintLivepatch != 0
	for i := range info.syms {
		if i == 0 || livepatch || info.isCoreSymbol(&info.syms[i]) {
			strtabSize += uint64(len(info.syms[i].Name)) + 1
			ndst++
		}
	}
	core := &info.layout.core
	align := sym.Addralign
	if align == 0 {
		align = 1
	}
	info.symoffs = (core.size + align - 1) &^ (align - 1)
	info.stroffs = info.symoffs + ndst*symSize
	info.coreTypeoffs = info.stroffs + strtabSize
	core.size = pageAlign(info.coreTypeoffs + ndst)
	if core.size > maxRegion {
		return tooBig()
	}

	str.Flags |= shfAlloc
	if off, err = getOffset(&info.layout.init.size, str.Addralign, str.Size); err != nil {
		return tooBig()
	}
	info.place[info.idxStr] = placed{ok: true, region: InitRegion, off: off}
	init := &info.layout.init
	init.size = (init.size + modKallsymsAlign - 1) &^ (modKallsymsAlign - 1)
	init.size += modKallsymsSize + uint64(len(info.syms))
	init.size = pageAlign(init.size)
	if init.size > maxRegion {
		return tooBig()
	}
	return nil
}

// isCoreSymbol is is_core_symbol() with CONFIG_KALLSYMS_ALL: named, defined in a core ALLOC section or
// the per-CPU section.
func (info *loadInfo) isCoreSymbol(s *elfSym) bool {
	if s.Shndx == shnUndef || int(s.Shndx) >= len(info.f.secs) || s.NameOff == 0 {
		return false
	}
	if int(s.Shndx) == info.idxPcpu && info.idxPcpu != 0 {
		return true
	}
	sec := &info.f.secs[s.Shndx]
	if sec.Flags&shfAlloc == 0 {
		return false
	}
	p := info.place[s.Shndx]
	return !(p.ok && p.region == InitRegion)
}

// moveModule is move_module(): allocate the regions and copy every placed section's bytes into them.
func (info *loadInfo) moveModule() error {
	k, m, f := info.k, info.mod, info.f
	var err error
	if m.Core, err = info.allocRegion(CoreRegion, info.layout.core.size, rangesOf(info.layout.core, false)); err != nil {
		return err
	}
	if m.Init, err = info.allocRegion(InitRegion, info.layout.init.size, rangesOf(info.layout.init, true)); err != nil {
		k.mem.ModuleFree(m.Core.Addr, m.Core.Size)
		m.Core = Region{}
		return err
	}
	placedSecs := 0
	for _, p := range info.place {
		if p.ok {
			placedSecs++
		}
	}
	m.Sections = make([]Section, 0, placedSecs)
	for i := range f.secs {
		p := info.place[i]
		if !p.ok {
			continue
		}
		r := m.region(p.region)
		s := &f.secs[i]
		info.addr[i], _ = r.AddrOf(p.off) // every placed section lies inside one range, so one piece
		if s.Type != shtNobits {
			copy(r.Bytes[p.off:p.off+s.Size], f.sectionData(i))
		}
		if i != info.idxSym && i != info.idxStr {
			m.Sections = append(m.Sections, Section{Name: s.Name, Index: i, Region: p.region, Addr: info.addr[i], Size: s.Size, Flags: s.Flags})
		}
	}
	m.ThisModule = info.addr[info.idxMod]
	// The per-CPU section gets its own allocation (percpu_modalloc); its bytes are the template the
	// kernel copies to every CPU's area.
	if info.idxPcpu != 0 {
		s := &f.secs[info.idxPcpu]
		if s.Size > maxRegion {
			return kerr(syscall.ENOMEM, "").withDetail("%s: per-CPU section of %d bytes", m.Name, s.Size)
		}
		if s.Size > 0 {
			size := pageAlign(s.Size)
			ranges := []Range{{Size: size, Perm: mmu.PermRW, AfterInit: mmu.PermRW, Class: "percpu"}}
			if m.Percpu, err = info.allocRegion(PercpuRegion, size, ranges); err != nil {
				return err
			}
			if s.Type != shtNobits {
				copy(m.Percpu.Bytes, f.sectionData(info.idxPcpu))
			}
			info.addr[info.idxPcpu] = m.Percpu.Addr
		}
	}
	return nil
}

// allocRegion is module_alloc() for one region: through the caller's PieceMemory when it has one,
// else ModuleAlloc for one contiguous piece. The ranges get their addresses from the pieces.
func (info *loadInfo) allocRegion(kind RegionKind, size uint64, ranges []Range) (Region, error) {
	k, m := info.k, info.mod
	r := Region{Kind: kind}
	if size == 0 {
		return r, nil
	}
	fail := func(err error) (Region, error) {
		return Region{}, &Error{Errno: syscall.ENOMEM, Detail: fmt.Sprintf("%s: allocating %s region: %v", m.Name, kind, err)}
	}
	if pm, ok := k.mem.(PieceMemory); ok {
		pieces, err := pm.ModuleAllocPieces(m.Name, kind, size, ranges)
		if err != nil {
			return fail(err)
		}
		if len(pieces) == 0 || pieces[0].Offset != 0 {
			return fail(fmt.Errorf("the allocator returned no piece at offset 0"))
		}
		r.Pieces = pieces
	} else {
		addr, err := k.mem.ModuleAlloc(m.Name, kind, size)
		if err != nil {
			return fail(err)
		}
		r.Pieces = []Piece{{Offset: 0, Size: size, Addr: addr}}
	}
	r.Addr, r.Size = r.Pieces[0].Addr, size
	for i := range ranges {
		rg := &ranges[i]
		a, ok1 := r.AddrOf(rg.Offset)
		end, ok2 := r.AddrOf(rg.Offset + rg.Size - 1)
		if !ok1 || !ok2 || end-a != rg.Size-1 {
			k.mem.ModuleFree(r.Addr, size)
			return fail(fmt.Errorf("the allocator's pieces split the %s range at offset %#x", rg.Class, rg.Offset))
		}
		rg.Addr = a
	}
	r.Ranges = ranges
	r.Bytes = k.spare.get(size)
	return r, nil
}

// region returns the module's region of kind.
func (m *Module) region(kind RegionKind) *Region {
	switch kind {
	case InitRegion:
		return &m.Init
	case PercpuRegion:
		return &m.Percpu
	}
	return &m.Core
}

// rangesOf is what module_enable_ro/nx/x make of a layout: text RO+X, rodata RO+NX, ro_after_init RW+NX
// until init finishes and RO after, data (and the kallsyms copy) RW+NX.
func rangesOf(l layoutSizes, init bool) []Range {
	out := make([]Range, 0, 4)
	add := func(from, to uint64, perm, after mmu.Perm, class string) {
		if to > from {
			out = append(out, Range{Offset: from, Size: to - from, Perm: perm, AfterInit: after, Class: class})
		}
	}
	add(0, l.textSize, mmu.PermRX, mmu.PermRX, "text")
	add(l.textSize, l.roSize, mmu.PermRO, mmu.PermRO, "rodata")
	if !init {
		add(l.roSize, l.roAfterInitSize, mmu.PermRW, mmu.PermRO, "ro_after_init")
	}
	add(l.roAfterInitSize, l.size, mmu.PermRW, mmu.PermRW, "data")
	return out
}

// readAt returns n bytes of the module's memory at addr, from whichever region holds them.
func (m *Module) readAt(addr, n uint64) ([]byte, bool) {
	for _, r := range []*Region{&m.Core, &m.Init, &m.Percpu} {
		off, ok := r.Offset(addr)
		if !ok || n > r.Size-off || uint64(len(r.Bytes)) != r.Size {
			continue
		}
		// The bytes must be contiguous in guest memory too.
		if end, ok := r.AddrOf(off + n - 1); n > 0 && (!ok || end-addr != n-1) {
			return nil, false
		}
		return r.Bytes[off : off+n], true
	}
	return nil, false
}

// stringAt reads a NUL-terminated string from module memory (at most max bytes).
func (m *Module) stringAt(addr uint64, max int) (string, bool) {
	for _, r := range []*Region{&m.Core, &m.Init, &m.Percpu} {
		if off, ok := r.Offset(addr); ok && uint64(len(r.Bytes)) == r.Size {
			b := r.Bytes[off:]
			if len(b) > max {
				b = b[:max]
			}
			for i, c := range b {
				if c == 0 {
					return string(b[:i]), true
				}
			}
			return "", false
		}
	}
	return "", false
}
