package modinfo

import (
	"bytes"
	"strings"
	"syscall"
)

// What depmod reads from a module besides what modinfo shows: the symbols it exports and the ones it
// needs, extracted as libkmod's kmod_elf_get_symbols and kmod_elf_get_dependency_symbols do, so a
// depmod built on them accepts, resolves and ignores exactly what kmod's does.

// SymbolBind is libkmod's enum kmod_symbol_bind; the values are the characters kmod prints for them.
type SymbolBind byte

// Symbol bindings.
const (
	BindNone   SymbolBind = 0
	BindLocal  SymbolBind = 'L'
	BindGlobal SymbolBind = 'G'
	BindWeak   SymbolBind = 'W'
	BindUndef  SymbolBind = 'U'
)

// Symbol is one exported or needed symbol with the CRC the module carries for it (0 when none).
type Symbol struct {
	Name string
	CRC  uint64
	Bind SymbolBind
}

// Object is a module's (decompressed) ELF image in memory, opened the way libkmod's kmod_elf_new
// opens it.
type Object struct {
	f    *elfFile
	data []byte
}

// OpenObject checks the ELF identification, header and section-name table of a decompressed module:
// ENOEXEC when it is not ELF, EINVAL when it is malformed, as libkmod.
func OpenObject(data []byte) (*Object, error) {
	f, err := parseELF(data)
	if err != nil {
		return nil, err
	}
	return &Object{f: f, data: data}, nil
}

// Modinfo lists the .modinfo strings split at their first '=', without the signature fields Entries
// adds (depmod never looks at those, and reading them costs a PKCS#7 parse). ENOENT without .modinfo.
func (o *Object) Modinfo() ([]Entry, error) {
	sec, err := o.f.sectionData(".modinfo")
	if err != nil {
		return nil, err
	}
	strs := splitStrings(sec)
	entries := make([]Entry, 0, len(strs))
	for _, s := range strs {
		key, value, _ := strings.Cut(s, "=")
		entries = append(entries, Entry{Key: key, Value: value})
	}
	return entries, nil
}

// symbolTable is .symtab with .strtab, located as libkmod does (first section of each name).
type symbolTable struct {
	symOff, symCount uint64 // file offset of entry 0 and number of entries
	strOff, strLen   uint64
	entSize          uint64
}

// symbolTable finds .strtab and .symtab; ok is false when either is missing or the table is not a
// whole number of entries.
func (o *Object) symbolTable() (t symbolTable, ok bool) {
	strOff, strLen, err1 := o.f.sectionRange(".strtab")
	symOff, symLen, err2 := o.f.sectionRange(".symtab")
	if err1 != nil || err2 != nil {
		return t, false
	}
	t = symbolTable{symOff: symOff, strOff: strOff, strLen: strLen, entSize: 24}
	if !o.f.is64 {
		t.entSize = 16
	}
	if symLen%t.entSize != 0 {
		return t, false
	}
	t.symCount = symLen / t.entSize
	return t, true
}

// elfSymbol is the part of an Elf32_Sym/Elf64_Sym libkmod reads.
type elfSymbol struct {
	nameOff uint32
	value   uint64
	info    byte
	shndx   uint16
}

// symbol reads entry i of the table.
func (o *Object) symbol(t symbolTable, i uint64) elfSymbol {
	b := o.data[t.symOff+i*t.entSize:]
	if o.f.is64 {
		return elfSymbol{nameOff: o.f.order.Uint32(b), info: b[4], shndx: o.f.order.Uint16(b[6:]), value: o.f.order.Uint64(b[8:])}
	}
	return elfSymbol{nameOff: o.f.order.Uint32(b), value: uint64(o.f.order.Uint32(b[4:])), info: b[12], shndx: o.f.order.Uint16(b[14:])}
}

// stringAt reads the NUL-terminated string at a file offset. Like libkmod it is not confined to the
// section the offset came from; unlike libkmod it stops at the end of the file.
func (o *Object) stringAt(off uint64) []byte {
	if off >= uint64(len(o.data)) {
		return nil
	}
	b := o.data[off:]
	if i := bytes.IndexByte(b, 0); i >= 0 {
		return b[:i]
	}
	return b
}

// ExportedSymbols lists the symbols the module exports, as kmod_elf_get_symbols: the names of its
// __crc_* symbols with their CRCs (read from the section they point into unless absolute), or, when
// there are none or .symtab is unusable, the strings of __ksymtab_strings with CRC 0. ENOENT when
// neither exists.
func (o *Object) ExportedSymbols() ([]Symbol, error) {
	const crcPrefix = "__crc_"
	t, ok := o.symbolTable()
	var out []Symbol
	for i := uint64(1); ok && i < t.symCount; i++ {
		s := o.symbol(t, i)
		if uint64(s.nameOff) >= t.strLen {
			ok, out = false, nil
			break
		}
		name := o.stringAt(t.strOff + uint64(s.nameOff))
		if !bytes.HasPrefix(name, []byte(crcPrefix)) {
			continue
		}
		out = append(out, Symbol{Name: string(name[len(crcPrefix):]), CRC: o.resolveCRC(s.value, s.shndx), Bind: bindFromELF(s.info >> 4)})
	}
	if ok && len(out) > 0 {
		return out, nil
	}
	sec, err := o.f.sectionData("__ksymtab_strings")
	if err != nil {
		return nil, err
	}
	// Same splitting as .modinfo: kmod_elf_get_symbols_symtab and kmod_elf_get_strings agree.
	for _, name := range splitStrings(sec) {
		out = append(out, Symbol{Name: name, Bind: BindGlobal})
	}
	return out, nil
}

// resolveCRC is kmod_elf_resolve_crc: an absolute (or undefined) __crc_ symbol's value is the CRC,
// otherwise it is the offset of a 32-bit CRC in the section it belongs to; all ones when that
// cannot be read.
func (o *Object) resolveCRC(value uint64, shndx uint16) uint64 {
	const shnAbs = 0xfff1
	if shndx == shnAbs || shndx == 0 {
		return value
	}
	off, size, _, ok := o.f.section(shndx)
	if !ok || size < 4 || value > size-4 {
		return ^uint64(0)
	}
	return uint64(o.f.order.Uint32(o.data[off+value:]))
}

func bindFromELF(bind byte) SymbolBind {
	switch bind {
	case 0:
		return BindLocal
	case 1:
		return BindGlobal
	case 2:
		return BindWeak
	}
	return BindNone
}

// DependencySymbols lists the symbols the module needs, as kmod_elf_get_dependency_symbols: every
// undefined, named .symtab symbol in table order (BindWeak or BindUndef) with the CRC of its
// __versions record (0 without one), then the __versions records no symbol claimed (module_layout)
// with BindUndef. EINVAL without a usable .symtab/.strtab or with a name outside .strtab.
func (o *Object) DependencySymbols() ([]Symbol, error) {
	const emSparc, emSparcV9 = 2, 43
	versions, err := o.f.sectionData("__versions")
	verLen, crcLen := uint64(64), uint64(8)
	if !o.f.is64 {
		crcLen = 4
	}
	if err != nil || uint64(len(versions))%verLen != 0 {
		versions = nil
	}
	t, ok := o.symbolTable()
	if !ok {
		return nil, syscall.EINVAL
	}
	// Version records, searched linearly as kmod does (the first record of a name wins): a module
	// has tens of them, and a map per module would cost more than the search.
	type record struct {
		name    []byte
		crc     uint64
		visited bool
	}
	records := make([]record, uint64(len(versions))/verLen)
	for i := range records {
		r := versions[uint64(i)*verLen:]
		records[i].name = cutNUL(r[crcLen:verLen])
		if crcLen == 8 {
			records[i].crc = o.f.order.Uint64(r)
		} else {
			records[i].crc = uint64(o.f.order.Uint32(r))
		}
	}
	machine := o.f.order.Uint16(o.data[18:])
	var out []Symbol
	for i := uint64(1); i < t.symCount; i++ {
		s := o.symbol(t, i)
		if s.shndx != 0 {
			continue
		}
		const sttRegister = 13
		if (machine == emSparc || machine == emSparcV9) && s.info&0xf == sttRegister {
			continue
		}
		if uint64(s.nameOff) >= t.strLen {
			return nil, syscall.EINVAL
		}
		name := o.stringAt(t.strOff + uint64(s.nameOff))
		if len(name) == 0 {
			continue
		}
		sym := Symbol{Name: string(name), Bind: BindUndef}
		if s.info>>4 == 2 {
			sym.Bind = BindWeak
		}
		for j := range records {
			if bytes.Equal(records[j].name, name) {
				sym.CRC = records[j].crc
				records[j].visited = true
				break
			}
		}
		out = append(out, sym)
	}
	for _, r := range records {
		if !r.visited {
			out = append(out, Symbol{Name: string(r.name), CRC: r.crc, Bind: BindUndef})
		}
	}
	return out, nil
}

// cutNUL cuts b at its first NUL.
func cutNUL(b []byte) []byte {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		return b[:i]
	}
	return b
}

// sectionRange is sectionData's lookup returning the section's file range.
func (f *elfFile) sectionRange(name string) (off, size uint64, err error) {
	for i := uint16(1); i < f.shnum; i++ {
		o, sz, nameOff, ok := f.section(i)
		if !ok || uint64(nameOff) >= uint64(len(f.names)) {
			continue
		}
		if string(cutNUL(f.names[nameOff:])) == name {
			return o, sz, nil
		}
	}
	return 0, 0, syscall.ENOENT
}

// Strerror renders an error as glibc's strerror renders its errno, for tools that print kmod's
// messages (depmod).
func Strerror(err error) string { return strerror(err) }

// IsCompressed reports whether a module file's contents start with a compression magic ReadModule
// undoes (zstd, xz); callers that map uncompressed files use it to pick their path.
func IsCompressed(head []byte) bool {
	return bytes.HasPrefix(head, magicZstd) || bytes.HasPrefix(head, magicXZ)
}
