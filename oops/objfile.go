package oops

import (
	"bytes"
	"compress/gzip"
	"debug/dwarf"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"sync"

	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"
	"golang.org/x/sys/unix"
)

// maxObjectSize bounds a decompressed object file. A vmlinux with full debug info runs to several hundred
// MiB, far past any module, so this is larger than the loader's bound for module images.
const maxObjectSize = 2 << 30

// objectFile is a module (.ko, relocatable) or vmlinux (executable) read for symbolization: its
// symbols, the address each allocated section is given, and, loaded on first use, its DWARF.
//
// Addresses inside an objectFile are "file addresses": sh_addr + value for vmlinux, and for a
// relocatable module a base chosen here per allocated section (as a loader would lay them out) plus the
// symbol's section-relative value. A module's DWARF is relocated against the same bases, so a file
// address can be looked up in it whatever section the code sits in.
type objectFile struct {
	path     string
	data     []byte // the whole (decompressed) file, mapped when mapped is set
	mapped   bool
	name     string // module name from .modinfo, or "vmlinux"
	rel      bool   // ET_REL: a module
	elf      *elf.File
	sections []objSection // by ELF section index
	symbols  []objSymbol  // function and object symbols, sorted by address
	byName   map[string][]int

	dwarfOnce sync.Once
	debug     *debugInfo
	debugErr  error
}

type objSection struct {
	name  string
	addr  uint64 // file address of the section's first byte
	size  uint64
	alloc bool
}

type objSymbol struct {
	name    string
	addr    uint64 // file address
	size    uint64
	section int
	value   uint64 // st_value: section-relative in a module
}

// openObject reads an ELF object file, decompressing xz, zstd or gzip content.
//
// An uncompressed file is mapped rather than read: a debug vmlinux is over 600 MB, of which a lookup
// touches a few pages, and its DWARF sections are then used in place (see sectionBytes). The mapping
// lives as long as the process, or until Symbolizer.Close.
func openObject(path string) (*objectFile, error) {
	data, mapped, err := mapFile(path)
	if err != nil {
		return nil, err
	}
	if !mapped {
		if data, err = decompress(data); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
	}
	o, err := newObject(data)
	if err != nil {
		if mapped {
			_ = unix.Munmap(data)
		}
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	o.path, o.data, o.mapped = path, data, mapped
	return o, nil
}

// mapFile maps an uncompressed ELF file read-only; any other file (compressed, empty, special) is
// read into memory instead.
func mapFile(path string) (data []byte, mapped bool, err error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, false, err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return nil, false, err
	}
	var magic [4]byte
	if info.Mode().IsRegular() && info.Size() >= 64 && info.Size() == int64(int(info.Size())) {
		if _, err := f.ReadAt(magic[:], 0); err == nil && string(magic[:]) == elf.ELFMAG {
			if m, err := unix.Mmap(int(f.Fd()), 0, int(info.Size()), unix.PROT_READ, unix.MAP_PRIVATE); err == nil {
				return m, true, nil
			}
		}
	}
	data, err = io.ReadAll(io.LimitReader(f, maxObjectSize+1))
	if err != nil {
		return nil, false, err
	}
	return data, false, nil
}

// close releases a mapped file; the object must not be used after.
func (o *objectFile) close() {
	if o.mapped {
		_ = unix.Munmap(o.data)
		o.data, o.mapped = nil, false
	}
}

// sectionBytes returns a section's contents: in place when they are stored plainly in the file (no
// copy of hundreds of MB of vmlinux DWARF), else decompressed by debug/elf. The result may be
// read-only memory: callers that modify it copy it first.
func (o *objectFile) sectionBytes(s *elf.Section) ([]byte, error) {
	if s.Type != elf.SHT_NOBITS && s.Flags&elf.SHF_COMPRESSED == 0 && s.Offset+s.FileSize >= s.Offset &&
		s.Offset+s.FileSize <= uint64(len(o.data)) && s.FileSize == s.Size {
		return o.data[s.Offset : s.Offset+s.Size : s.Offset+s.Size], nil
	}
	return s.Data()
}

// decompress returns data itself unless its first bytes name a compressed stream.
func decompress(data []byte) ([]byte, error) {
	var r io.Reader
	var err error
	switch {
	case bytes.HasPrefix(data, []byte("\xfd7zXZ\x00")):
		r, err = xz.NewReader(bytes.NewReader(data))
	case bytes.HasPrefix(data, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		var d *zstd.Decoder
		d, err = zstd.NewReader(bytes.NewReader(data), zstd.WithDecoderConcurrency(1))
		if err == nil {
			defer d.Close()
			r = d
		}
	case bytes.HasPrefix(data, []byte{0x1f, 0x8b}):
		r, err = gzip.NewReader(bytes.NewReader(data))
	default:
		return data, nil
	}
	if err != nil {
		return nil, fmt.Errorf("open compressed stream: %w", err)
	}
	out, err := io.ReadAll(io.LimitReader(r, maxObjectSize+1))
	if err != nil {
		return nil, fmt.Errorf("decompress: %w", err)
	}
	if len(out) > maxObjectSize {
		return nil, fmt.Errorf("decompressed object larger than %d bytes", maxObjectSize)
	}
	return out, nil
}

// newObject reads the ELF image; debug/elf is not hardened against every malformed input, so a panic
// inside it is turned into an error here, at the one boundary where foreign bytes are parsed.
func newObject(data []byte) (o *objectFile, err error) {
	defer func() {
		if p := recover(); p != nil {
			o, err = nil, fmt.Errorf("malformed ELF: %v", p)
		}
	}()
	f, err := elf.NewFile(bytes.NewReader(data))
	if err != nil {
		return nil, err
	}
	if f.Class != elf.ELFCLASS64 || f.Machine != elf.EM_X86_64 {
		return nil, fmt.Errorf("not an x86-64 ELF64 object (%v %v)", f.Class, f.Machine)
	}
	o = &objectFile{elf: f, rel: f.Type == elf.ET_REL, name: "vmlinux", byName: map[string][]int{}}
	o.layoutSections()
	if err := o.readSymbols(); err != nil {
		return nil, err
	}
	if o.rel {
		o.name = moduleName(f)
	}
	return o, nil
}

// layoutSections gives each allocated section of a module its own range, aligned as it asks, starting
// above zero so no code sits at address 0 (DWARF 4 range lists end at a 0,0 pair).
func (o *objectFile) layoutSections() {
	next := uint64(0x1000)
	for _, s := range o.elf.Sections {
		os := objSection{name: s.Name, addr: s.Addr, size: s.Size, alloc: s.Flags&elf.SHF_ALLOC != 0}
		if o.rel && os.alloc {
			align := max(s.Addralign, 16)
			next = (next + align - 1) &^ (align - 1)
			os.addr = next
			next += s.Size
		}
		o.sections = append(o.sections, os)
	}
}

func (o *objectFile) readSymbols() error {
	syms, err := o.elf.Symbols()
	if err != nil && !errors.Is(err, elf.ErrNoSymbols) {
		return fmt.Errorf("read symbols: %w", err)
	}
	for _, s := range syms {
		typ := elf.ST_TYPE(s.Info)
		if typ != elf.STT_FUNC && typ != elf.STT_OBJECT && typ != elf.STT_NOTYPE || s.Name == "" {
			continue
		}
		idx := int(s.Section)
		if idx <= 0 || idx >= len(o.sections) || !o.sections[idx].alloc {
			continue
		}
		addr := s.Value
		if o.rel {
			addr += o.sections[idx].addr
		}
		o.symbols = append(o.symbols, objSymbol{name: s.Name, addr: addr, size: s.Size, section: idx, value: s.Value})
	}
	sort.SliceStable(o.symbols, func(i, j int) bool { return o.symbols[i].addr < o.symbols[j].addr })
	for i, s := range o.symbols {
		o.byName[s.name] = append(o.byName[s.name], i)
	}
	return nil
}

// moduleName is the name= entry of .modinfo, which is what the kernel prints in "[mod]".
func moduleName(f *elf.File) string {
	s := f.Section(".modinfo")
	if s == nil {
		return ""
	}
	data, err := s.Data()
	if err != nil {
		return ""
	}
	for _, kv := range bytes.Split(data, []byte{0}) {
		if name, ok := bytes.CutPrefix(kv, []byte("name=")); ok {
			return string(name)
		}
	}
	return ""
}

// lookupName finds a symbol by name. Local symbols may share a name, so the size printed in the oops
// picks one. The kernel prints not st_size but the distance to the next symbol (or to the end of the
// module's text), which adds the alignment padding after the function; so a printed size matches a
// symbol when it is st_size or up to a page larger (no alignment pads more), the closest such symbol
// winning. size 0 means "not
// printed" and takes the first symbol of that name. The offset must fall inside the printed size.
const maxSymbolPadding = 4096

func (o *objectFile) lookupName(name string, offset, size uint64) (objSymbol, bool) {
	var best *objSymbol
	for _, i := range o.byName[name] {
		s := &o.symbols[i]
		if size == 0 {
			return *s, true
		}
		if size < s.size || size-s.size >= maxSymbolPadding || offset > size {
			continue
		}
		if best == nil || size-s.size < size-best.size {
			best = s
		}
	}
	if best == nil {
		return objSymbol{}, false
	}
	return *best, true
}

// lookupAddr finds the symbol covering a file address. Symbols may nest or alias, so it looks back
// over a few that start at or below the address. "__pfx_" padding symbols never name code, and the
// init_module/cleanup_module aliases that module_init()/module_exit() create give way to the function
// they alias, the name the source and the oops use.
func (o *objectFile) lookupAddr(addr uint64) (objSymbol, bool) {
	i := sort.Search(len(o.symbols), func(i int) bool { return o.symbols[i].addr > addr }) - 1
	var found *objSymbol
	for j := i; j >= 0 && j > i-64; j-- {
		s := &o.symbols[j]
		if addr >= s.addr+max(s.size, 1) || strings.HasPrefix(s.name, "__pfx_") {
			continue
		}
		if found != nil && (s.addr != found.addr || isModuleAlias(s.name)) {
			break
		}
		found = s
		if !isModuleAlias(s.name) {
			break
		}
	}
	if found == nil {
		return objSymbol{}, false
	}
	return *found, true
}

func isModuleAlias(name string) bool { return name == "init_module" || name == "cleanup_module" }

// sectionAt names the allocated section holding a file address.
func (o *objectFile) sectionAt(addr uint64) (int, bool) {
	for i, s := range o.sections {
		if s.alloc && addr >= s.addr && addr < s.addr+s.size {
			return i, true
		}
	}
	return 0, false
}

// dwarf loads the object's debug info on first use.
func (o *objectFile) dwarf() (*debugInfo, error) {
	o.dwarfOnce.Do(func() {
		var d *dwarf.Data
		d, o.debugErr = o.loadDWARF()
		if o.debugErr == nil {
			o.debug = newDebugInfo(d)
		}
	})
	return o.debug, o.debugErr
}
