package loader

import (
	"encoding/binary"
	"strings"
	"syscall"
)

// The ELF layer: a bounds-checked view of a relocatable x86-64 object. Every offset and size is checked
// against the file before it is used, so no input can make it read out of range or allocate more than the
// file's own size; parsing follows elf_validity_check() in the kernel's order with its messages.

// ELF constants the loader uses.
const (
	ehdrSize = 64
	shdrSize = 64
	symSize  = 24
	relaSize = 24

	etRel    = 1
	emX86_64 = 62

	shtNull     = 0
	shtProgbits = 1
	shtSymtab   = 2
	shtStrtab   = 3
	shtRela     = 4
	shtNobits   = 8
	shtRel      = 9

	shfWrite     = 0x1
	shfAlloc     = 0x2
	shfExecinstr = 0x4
	// shfROAfterInit is the kernel's private SHF_RO_AFTER_INIT (module.h), set on .data..ro_after_init
	// and __jump_table before layout.
	shfROAfterInit = 0x00200000
	// shfRelaLivepatch marks livepatch relocation sections, applied by livepatch, not the loader.
	shfRelaLivepatch = 0x00100000

	shnUndef     = 0
	shnLoreserve = 0xff00
	shnLivepatch = 0xff20
	shnAbs       = 0xfff1
	shnCommon    = 0xfff2

	stbLocal  = 0
	stbGlobal = 1
	stbWeak   = 2

	sttObject  = 1
	sttFunc    = 2
	sttSection = 3
)

var le = binary.LittleEndian

// elfSection is one section header plus its name.
type elfSection struct {
	Name               string
	NameOff            uint32
	Type               uint32
	Flags              uint64
	Addr, Offset, Size uint64
	Link, Info         uint32
	Addralign, Entsize uint64
}

// elfSym is one Elf64_Sym.
type elfSym struct {
	NameOff uint32
	Name    string
	Info    uint8
	Shndx   uint16
	Value   uint64
	Size    uint64
}

func (s *elfSym) bind() uint8 { return s.Info >> 4 }
func (s *elfSym) typ() uint8  { return s.Info & 0xf }

// elfFile is a validated relocatable object.
type elfFile struct {
	data     []byte
	machine  uint16
	shstrndx int
	secs     []elfSection
	shstrtab []byte
}

// sectionData returns the file bytes of section i (nil for NOBITS/NULL). elf_validity_check has
// guaranteed they are inside the file for every other type.
func (f *elfFile) sectionData(i int) []byte {
	s := &f.secs[i]
	if s.Type == shtNobits || s.Type == shtNull {
		return nil
	}
	return f.data[s.Offset : s.Offset+s.Size]
}

// cstring reads the NUL-terminated string at off in b; it stops at the end of b when there is no NUL.
func cstring(b []byte, off uint64) string {
	if off >= uint64(len(b)) {
		return ""
	}
	b = b[off:]
	for i, c := range b {
		if c == 0 {
			return string(b[:i])
		}
	}
	return string(b)
}

// parseELF is elf_validity_check(): it returns ENOEXEC with the kernel's message for every malformed input.
// The section headers are decoded into reuse when it is large enough (see loadScratch).
func parseELF(data []byte, reuse []elfSection) (*elfFile, error) {
	noexec := func(format string, args ...any) error { return kerr(syscall.ENOEXEC, format, args...) }
	if len(data) < ehdrSize {
		return nil, noexec("Invalid ELF header len %d", len(data))
	}
	if string(data[:4]) != "\x7fELF" {
		return nil, noexec("Invalid ELF header magic: != \x7fELF")
	}
	if t := le.Uint16(data[16:]); t != etRel {
		return nil, noexec("Invalid ELF header type: %d != %d", t, etRel)
	}
	machine := le.Uint16(data[18:])
	if machine != emX86_64 {
		return nil, noexec("Invalid architecture in ELF header: %d", machine)
	}
	if le.Uint16(data[58:]) != shdrSize {
		return nil, noexec("Invalid ELF section header size")
	}
	shoff := le.Uint64(data[40:])
	shnum := uint64(le.Uint16(data[60:]))
	shstrndx := uint64(le.Uint16(data[62:]))
	n := uint64(len(data))
	if shoff >= n || shnum*shdrSize > n-shoff {
		return nil, noexec("Invalid ELF section header overflow")
	}
	if shstrndx == shnUndef || shstrndx >= shnum {
		return nil, noexec("Invalid ELF section name index: %d || e_shstrndx (%d) >= e_shnum (%d)", shstrndx, shstrndx, shnum)
	}
	if uint64(cap(reuse)) < shnum {
		reuse = make([]elfSection, shnum)
	}
	f := &elfFile{data: data, machine: machine, shstrndx: int(shstrndx), secs: reuse[:shnum]}
	for i := range f.secs {
		h := data[shoff+uint64(i)*shdrSize:]
		f.secs[i] = elfSection{
			NameOff: le.Uint32(h[0:]), Type: le.Uint32(h[4:]), Flags: le.Uint64(h[8:]),
			Addr: le.Uint64(h[16:]), Offset: le.Uint64(h[24:]), Size: le.Uint64(h[32:]),
			Link: le.Uint32(h[40:]), Info: le.Uint32(h[44:]), Addralign: le.Uint64(h[48:]), Entsize: le.Uint64(h[56:]),
		}
	}
	inFile := func(s *elfSection) bool {
		end := s.Offset + s.Size
		return end >= s.Offset && end <= n
	}
	str := &f.secs[shstrndx]
	if !inFile(str) {
		return nil, noexec("Invalid ELF section hdr(type %d)", str.Type)
	}
	if str.Size == 0 {
		return nil, noexec("empty section name table")
	}
	f.shstrtab = data[str.Offset : str.Offset+str.Size]
	if f.shstrtab[len(f.shstrtab)-1] != 0 {
		return nil, noexec("ELF Spec violation: section name table isn't null terminated")
	}
	if s0 := &f.secs[0]; s0.Type != shtNull || s0.Size != 0 || s0.Addr != 0 {
		return nil, noexec("ELF Spec violation: section 0 type(%d)!=SH_NULL or non-zero len or addr", s0.Type)
	}
	for i := 1; i < len(f.secs); i++ {
		s := &f.secs[i]
		switch s.Type {
		case shtNull, shtNobits:
			continue
		case shtSymtab:
			if s.Link == shnUndef || uint64(s.Link) >= shnum {
				return nil, noexec("Invalid ELF sh_link!=SHN_UNDEF(%d) or (sh_link(%d) >= hdr->e_shnum(%d)", s.Link, s.Link, shnum)
			}
		}
		if !inFile(s) {
			return nil, noexec("Invalid ELF section in module (section %d type %d)", i, s.Type)
		}
		if s.Flags&shfAlloc != 0 && uint64(s.NameOff) >= str.Size {
			return nil, noexec("Invalid ELF section name in module (section %d type %d)", i, s.Type)
		}
	}
	// Names: the kernel reads them unchecked for non-ALLOC sections; kemu bounds them (an out-of-range
	// name reads as "").
	names := string(f.shstrtab) // one allocation; every name is a substring of it
	for i := range f.secs {
		f.secs[i].Name = substring(names, uint64(f.secs[i].NameOff))
	}
	return f, nil
}

// findSec is find_sec(): the first ALLOC section called name, 0 when there is none.
func (f *elfFile) findSec(name string) int {
	for i := 1; i < len(f.secs); i++ {
		if f.secs[i].Flags&shfAlloc != 0 && f.secs[i].Name == name {
			return i
		}
	}
	return 0
}

// symbols parses the symbol table at index symIdx with its string table. Unlike the kernel, which trusts
// st_name, a name offset outside the string table is an error. The names are substrings of one copy of
// the string table (returned too): one allocation per module, not one per symbol. The symbols are
// decoded into reuse when it is large enough (see loadScratch).
func (f *elfFile) symbols(symIdx int, reuse []elfSym) ([]elfSym, string, error) {
	sec := &f.secs[symIdx]
	strIdx := int(sec.Link)
	strSec := &f.secs[strIdx]
	if strSec.Type == shtNobits || strSec.Type == shtNull {
		return nil, "", kerr(syscall.ENOEXEC, "").withDetail("symbol table's string table (section %d) has no data", strIdx)
	}
	strtab := string(f.sectionData(strIdx))
	raw := f.sectionData(symIdx)
	n := len(raw) / symSize
	if cap(reuse) < n {
		reuse = make([]elfSym, n)
	}
	syms := reuse[:n]
	for i := range syms {
		b := raw[i*symSize:]
		s := elfSym{NameOff: le.Uint32(b[0:]), Info: b[4], Shndx: le.Uint16(b[6:]), Value: le.Uint64(b[8:]), Size: le.Uint64(b[16:])}
		if s.NameOff != 0 && uint64(s.NameOff) >= uint64(len(strtab)) {
			return nil, "", kerr(syscall.ENOEXEC, "").withDetail("symbol %d: name offset %#x outside the string table (%d bytes)", i, s.NameOff, len(strtab))
		}
		s.Name = substring(strtab, uint64(s.NameOff))
		syms[i] = s
	}
	return syms, strtab, nil
}

// substring is cstring for a string: the NUL-terminated part of s at off, sharing s's bytes.
func substring(s string, off uint64) string {
	if off >= uint64(len(s)) {
		return ""
	}
	s = s[off:]
	if i := strings.IndexByte(s, 0); i >= 0 {
		return s[:i]
	}
	return s
}
