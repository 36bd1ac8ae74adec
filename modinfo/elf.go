package modinfo

import (
	"bytes"
	"encoding/binary"
	"syscall"
)

// ELF constants this reader needs; the full format is the loader's business.
const (
	elfClass32   = 1
	elfClass64   = 2
	elfData2LSB  = 1
	elfData2MSB  = 2
	elfIdentSize = 16
)

// elfFile is just enough of an ELF object to find a section by name: the section header table
// and the section-name string table, checked the way libkmod's kmod_elf_new checks them. The
// reader is written out rather than built on debug/elf because modinfo must accept and reject
// exactly the files kmod does (debug/elf refuses files kmod reads, and the reverse), and because
// every read below is bounds-checked it needs no recover: malformed input is an errno.
type elfFile struct {
	data     []byte
	order    binary.ByteOrder
	is64     bool
	shoff    uint64
	shnum    uint16
	shentsz  uint16
	names    []byte // the section-name string table, NUL-terminated
	shdrSize uint64
}

// parseELF validates the identification, header and section-name table: a bad magic or a file
// no longer than e_ident is ENOEXEC, everything else wrong EINVAL, as in libkmod.
func parseELF(data []byte) (*elfFile, error) {
	size := uint64(len(data))
	if size <= elfIdentSize || !bytes.HasPrefix(data, []byte("\x7fELF")) {
		return nil, syscall.ENOEXEC
	}
	f := &elfFile{data: data}
	var ehdrSize uint64
	switch data[4] {
	case elfClass32:
		ehdrSize, f.shdrSize = 52, 40
	case elfClass64:
		ehdrSize, f.shdrSize, f.is64 = 64, 64, true
	default:
		return nil, syscall.EINVAL
	}
	if size <= ehdrSize {
		return nil, syscall.EINVAL
	}
	switch data[5] {
	case elfData2LSB:
		f.order = binary.LittleEndian
	case elfData2MSB:
		f.order = binary.BigEndian
	default:
		return nil, syscall.EINVAL
	}

	var shstrndx uint16
	if f.is64 {
		f.shoff = f.order.Uint64(data[0x28:])
		f.shentsz = f.order.Uint16(data[0x3a:])
		f.shnum = f.order.Uint16(data[0x3c:])
		shstrndx = f.order.Uint16(data[0x3e:])
	} else {
		f.shoff = uint64(f.order.Uint32(data[0x20:]))
		f.shentsz = f.order.Uint16(data[0x2e:])
		f.shnum = f.order.Uint16(data[0x30:])
		shstrndx = f.order.Uint16(data[0x32:])
	}
	if uint64(f.shentsz) != f.shdrSize {
		return nil, syscall.EINVAL
	}
	tableSize := f.shdrSize * uint64(f.shnum)
	if end := f.shoff + tableSize; end < f.shoff || end > size {
		return nil, syscall.EINVAL
	}
	off, sz, _, ok := f.section(shstrndx)
	if !ok || sz == 0 || data[off+sz-1] != 0 {
		return nil, syscall.EINVAL
	}
	f.names = data[off : off+sz]
	return f, nil
}

// section returns the file range and name offset of section idx; ok is false for index 0, an
// index past the table, or a range outside the file.
func (f *elfFile) section(idx uint16) (off, size uint64, name uint32, ok bool) {
	if idx == 0 || idx >= f.shnum {
		return 0, 0, 0, false
	}
	h := f.data[f.shoff+uint64(idx)*f.shdrSize:]
	if f.is64 {
		name = f.order.Uint32(h[0:])
		off = f.order.Uint64(h[0x18:])
		size = f.order.Uint64(h[0x20:])
	} else {
		name = f.order.Uint32(h[0:])
		off = uint64(f.order.Uint32(h[0x10:]))
		size = uint64(f.order.Uint32(h[0x14:]))
	}
	if end := off + size; end < off || end > uint64(len(f.data)) {
		return 0, 0, 0, false
	}
	return off, size, name, true
}

// sectionData returns the contents of the first section called name (sections with a bad range
// or name offset are passed over, as libkmod does), or ENOENT.
func (f *elfFile) sectionData(name string) ([]byte, error) {
	for i := uint16(1); i < f.shnum; i++ {
		off, size, nameOff, ok := f.section(i)
		if !ok || uint64(nameOff) >= uint64(len(f.names)) {
			continue
		}
		n := f.names[nameOff:]
		n = n[:bytes.IndexByte(n, 0)] // the table ends in NUL: checked in parseELF
		if string(n) == name {
			return f.data[off : off+size], nil
		}
	}
	return nil, syscall.ENOENT
}

// splitStrings cuts a string-table section into its strings the way kmod_elf_get_strings does:
// leading NUL padding is skipped, runs of NULs separate strings, and a final string without its
// NUL still counts. A section of at most one byte after the padding holds nothing.
func splitStrings(sec []byte) []string {
	for len(sec) > 1 && sec[0] == 0 {
		sec = sec[1:]
	}
	if len(sec) <= 1 {
		return nil
	}
	var out []string
	for _, s := range bytes.Split(sec, []byte{0}) {
		if len(s) > 0 {
			out = append(out, string(s))
		}
	}
	return out
}
