package loader

import (
	"fmt"
	"syscall"
)

// x86-64 relocation types the module loader accepts (apply_relocate_add).
const (
	rX86_64None  = 0
	rX86_64_64   = 1
	rX86_64PC32  = 2
	rX86_64PLT32 = 4
	rX86_64_32   = 10
	rX86_64_32S  = 11
	rX86_64PC64  = 24
)

var relocNames = map[uint32]string{
	rX86_64None: "R_X86_64_NONE", rX86_64_64: "R_X86_64_64", rX86_64PC32: "R_X86_64_PC32",
	rX86_64PLT32: "R_X86_64_PLT32", rX86_64_32: "R_X86_64_32", rX86_64_32S: "R_X86_64_32S", rX86_64PC64: "R_X86_64_PC64",
}

func relocName(t uint32) string {
	if n, ok := relocNames[t]; ok {
		return n
	}
	return fmt.Sprintf("type %d", t)
}

// applyRelocations is apply_relocations(): every RELA section whose target is an ALLOC section is applied
// to the target's bytes in its region; REL sections are refused as on x86-64.
func (info *loadInfo) applyRelocations() error {
	f := info.f
	for i := 1; i < len(f.secs); i++ {
		s := &f.secs[i]
		target := int(s.Info)
		if target >= len(f.secs) || f.secs[target].Flags&shfAlloc == 0 {
			continue
		}
		switch {
		case s.Flags&shfRelaLivepatch != 0:
			// Applied by livepatch when the patched object loads, not by the module loader.
		case s.Type == shtRel:
			return kerr(syscall.ENOEXEC, "module %s: REL relocation unsupported", info.name)
		case s.Type == shtRela:
			if err := info.applyRelaSection(i); err != nil {
				return err
			}
		}
	}
	return nil
}

// applyRelaSection is __apply_relocate_add() for one section. The kernel trusts offsets and symbol
// indexes; kemu checks them and names section, offset, type and symbol in every error. The loop runs
// for every relocation of a tree (millions): its failures are built out of line (relocError) so that
// the loop's variables stay in registers.
func (info *loadInfo) applyRelaSection(relIdx int) error {
	f, m := info.f, info.mod
	rs := &f.secs[relIdx]
	tIdx := int(rs.Info)
	t := &f.secs[tIdx]
	p := info.place[tIdx]
	if !p.ok {
		// An ALLOC target that was not laid out cannot happen: every ALLOC section is in some class.
		return kerr(syscall.ENOEXEC, "").withDetail("%s: relocation section %s targets %s, which has no place in the module", m.Name, rs.Name, t.Name)
	}
	region := m.region(p.region)
	bytes := region.Bytes[p.off : p.off+t.Size]
	base := info.addr[tIdx]
	raw := f.sectionData(relIdx)
	syms := info.syms
	isThisModule := tIdx == info.idxMod
	for n := 0; n+relaSize <= len(raw); n += relaSize {
		r := raw[n : n+relaSize]
		off := le.Uint64(r[0:])
		rinfo := le.Uint64(r[8:])
		addend := le.Uint64(r[16:])
		symIdx, typ := rinfo>>32, uint32(rinfo)
		if symIdx >= uint64(len(syms)) {
			return info.relocError(kerr(syscall.ENOEXEC, ""), t, off, typ, nil, "symbol index %d out of range (%d symbols)", symIdx, len(syms))
		}
		sym := &syms[symIdx]
		var width uint64
		switch typ {
		case rX86_64None:
			continue
		case rX86_64_64, rX86_64PC64:
			width = 8
		case rX86_64_32, rX86_64_32S, rX86_64PC32, rX86_64PLT32:
			width = 4
		default:
			return info.relocError(kerr(syscall.ENOEXEC, "%s: Unknown rela relocation: %d", m.Name, typ), t, off, typ, sym, "")
		}
		if off > t.Size || width > t.Size-off {
			return info.relocError(kerr(syscall.ENOEXEC, ""), t, off, typ, sym, "offset past the end of the %d-byte section", t.Size)
		}
		loc := base + off
		val := sym.Value + addend
		dst := bytes[off : off+width]
		if !zeroField(dst) {
			return info.relocError(kerr(syscall.ENOEXEC, "x86/modules: Skipping invalid relocation target, existing value is nonzero for type %d, loc %016x, val %x", typ, loc, val), t, off, typ, sym, "")
		}
		switch typ {
		case rX86_64_64:
			le.PutUint64(dst, val)
		case rX86_64_32:
			le.PutUint32(dst, uint32(val))
			if val != uint64(uint32(val)) {
				return info.relocOverflow(t, off, typ, sym, val)
			}
		case rX86_64_32S:
			le.PutUint32(dst, uint32(val))
			if int64(val) != int64(int32(uint32(val))) {
				return info.relocOverflow(t, off, typ, sym, val)
			}
		case rX86_64PC32, rX86_64PLT32:
			val -= loc
			le.PutUint32(dst, uint32(val))
			// The kernel does not check this overflow (the check is #if 0); a displacement that does not
			// fit would silently jump elsewhere, so kemu refuses it.
			if int64(val) != int64(int32(uint32(val))) {
				return info.relocError(kerr(syscall.ENOEXEC, ""), t, off, typ, nil, "PC-relative displacement %#x to symbol %s does not fit in 32 bits (the kernel would load it corrupted)", int64(val), info.relocSymName(sym))
			}
		case rX86_64PC64:
			val -= loc
			le.PutUint64(dst, val)
		}
		if isThisModule && typ == rX86_64_64 {
			switch sym.Name {
			case "init_module":
				m.InitFunc = val
			case "cleanup_module":
				m.ExitFunc = val
			}
		}
	}
	return nil
}

// relocOverflow is the kernel's overflow report for an absolute relocation whose value does not fit.
func (info *loadInfo) relocOverflow(t *elfSection, off uint64, typ uint32, sym *elfSym, val uint64) error {
	info.k.printk(LogErr, "overflow in relocation type %d val %x", typ, val)
	e := kerr(syscall.ENOEXEC, "`%s' likely not compiled with -mcmodel=kernel", info.mod.Name)
	return info.relocError(e, t, off, typ, nil, "value %#x of symbol %s does not fit", val, info.relocSymName(sym))
}

// relocError gives e kemu's account of a refused relocation: module, target section, offset and type,
// then what is wrong (format, args), then the symbol when sym is not nil.
func (info *loadInfo) relocError(e *Error, t *elfSection, off uint64, typ uint32, sym *elfSym, format string, args ...any) error {
	what := fmt.Sprintf(format, args...)
	if sym != nil {
		if what == "" {
			what = "symbol " + info.relocSymName(sym)
		} else {
			what += " (symbol " + info.relocSymName(sym) + ")"
		}
	}
	return e.withDetail("%s: %s+%#x %s: %s", info.mod.Name, t.Name, off, relocName(typ), what)
}

// relocSymName names a relocation's symbol in messages: section symbols are named by their section.
func (info *loadInfo) relocSymName(sym *elfSym) string {
	if sym.Name == "" && sym.typ() == sttSection && int(sym.Shndx) < len(info.f.secs) {
		return info.f.secs[sym.Shndx].Name
	}
	return sym.Name
}

// zeroField reports whether a 4- or 8-byte relocation target still holds zero, as the kernel requires.
func zeroField(b []byte) bool {
	if len(b) == 8 {
		return le.Uint64(b) == 0
	}
	return le.Uint32(b) == 0
}
