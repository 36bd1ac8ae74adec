package oops

import (
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// Symbolizer turns the addresses and symbol references of a Report into symbols and source lines.
// Load whatever sources are at hand, in any combination, then call Symbolize:
//
//   - a frame printed as "name+off/size [mod]" resolves by name against the module's own symbol table
//     (size-matched, since local symbols share names): no load address is needed, KASLR or not;
//   - a bare address resolves through /proc/kallsyms or System.map, or through module load addresses
//     (/proc/modules or a Context) and the module file, or through vmlinux (shifted by the KASLR offset
//     when kallsyms is also given);
//   - source lines and inline frames come from the DWARF of the module file or vmlinux.
type Symbolizer struct {
	table   *symbolTable
	loaded  []loadedModule
	koPaths map[string]string // module name -> file
	objects map[string]*objectFile
	failed  map[string]error // module files that could not be read, reported once
	vmlinux *objectFile
	// moduleFS holds the module files named EmbeddedPrefix + name, in moduleFSDir (AddModuleFS).
	moduleFS    fs.FS
	moduleFSDir string
	// Warnings collects problems met while symbolizing (unreadable module files, missing DWARF).
	Warnings []string
}

// NewSymbolizer returns a Symbolizer with no sources: it still disassembles Code: lines.
func NewSymbolizer() *Symbolizer {
	return &Symbolizer{koPaths: map[string]string{}, objects: map[string]*objectFile{}, failed: map[string]error{}}
}

// Close releases the object files the Symbolizer mapped. It must not be used after.
func (s *Symbolizer) Close() {
	for _, o := range s.objects {
		o.close()
	}
	if s.vmlinux != nil {
		s.vmlinux.close()
	}
}

// LoadKallsyms reads a /proc/kallsyms dump (module symbols carry "[mod]").
func (s *Symbolizer) LoadKallsyms(path string) error { return s.loadTable(path) }

// LoadSystemMap reads a System.map.
func (s *Symbolizer) LoadSystemMap(path string) error { return s.loadTable(path) }

func (s *Symbolizer) loadTable(path string) error {
	t, err := readPath(path, readSymbolTable)
	if err != nil {
		return err
	}
	if s.table != nil {
		t.syms = append(t.syms, s.table.syms...)
		t.finish()
	}
	s.table = t
	return nil
}

// LoadModules reads a /proc/modules dump for module load addresses.
func (s *Symbolizer) LoadModules(path string) error {
	mods, err := readPath(path, readProcModules)
	if err != nil {
		return err
	}
	s.loaded = append(s.loaded, mods...)
	return nil
}

// readPath opens a file and reads it with read, naming the file in any error.
func readPath[T any](path string, read func(io.Reader) (T, error)) (T, error) {
	f, err := os.Open(path)
	if err != nil {
		var zero T
		return zero, err
	}
	defer f.Close()
	v, err := read(f)
	if err != nil {
		return v, fmt.Errorf("%s: %w", path, err)
	}
	return v, nil
}

// AddModules registers module files: a directory is searched recursively for *.ko, *.ko.xz, *.ko.zst
// and *.ko.gz; a file is taken as it is. Files are opened when a frame needs them.
func (s *Symbolizer) AddModules(path string) error {
	info, err := os.Stat(path)
	if err != nil {
		return err
	}
	if !info.IsDir() {
		s.koPaths[moduleFileName(path)] = path
		return nil
	}
	return filepath.WalkDir(path, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil // unreadable subdirectories are skipped, not fatal
		}
		if !d.IsDir() && isModuleFile(p) {
			if _, dup := s.koPaths[moduleFileName(p)]; !dup {
				s.koPaths[moduleFileName(p)] = p
			}
		}
		return nil
	})
}

var moduleSuffixes = []string{".ko", ".ko.xz", ".ko.zst", ".ko.gz"}

func isModuleFile(p string) bool {
	for _, suf := range moduleSuffixes {
		if strings.HasSuffix(p, suf) {
			return true
		}
	}
	return false
}

// moduleFileName is the module name a file's name implies: the kernel prints names with '_' where
// file names may have '-'.
func moduleFileName(p string) string {
	base := filepath.Base(p)
	for _, suf := range moduleSuffixes {
		if n, ok := strings.CutSuffix(base, suf); ok {
			base = n
			break
		}
	}
	return normalizeModule(base)
}

func normalizeModule(name string) string { return strings.ReplaceAll(name, "-", "_") }

// LoadVmlinux reads the kernel image, for kernel symbols and, with debug info, kernel source lines.
func (s *Symbolizer) LoadVmlinux(path string) error {
	o, err := openObject(path)
	if err != nil {
		return err
	}
	if o.rel {
		return fmt.Errorf("%s: a relocatable object, not vmlinux", path)
	}
	s.vmlinux = o
	return nil
}

// UseContext takes module load addresses and files, and kernel symbol sources, from a Context.
func (s *Symbolizer) UseContext(c *Context) error {
	var errs []error
	for _, m := range c.Modules {
		name := normalizeModule(m.Name)
		if m.Path != "" {
			s.koPaths[name] = m.Path
		}
		if m.Base != 0 || len(m.Sections) > 0 {
			s.loaded = append(s.loaded, loadedModule{name: name, base: m.Base, size: m.Size, sections: m.Sections, path: m.Path})
		}
	}
	if c.Kallsyms != "" {
		errs = append(errs, s.LoadKallsyms(c.Kallsyms))
	}
	if c.SystemMap != "" {
		errs = append(errs, s.LoadSystemMap(c.SystemMap))
	}
	if c.Vmlinux != "" {
		errs = append(errs, s.LoadVmlinux(c.Vmlinux))
	}
	return errors.Join(errs...)
}

// module returns a module's object file, opening it on first use.
func (s *Symbolizer) module(name string) *objectFile {
	name = normalizeModule(name)
	if o, ok := s.objects[name]; ok {
		return o
	}
	path, ok := s.koPaths[name]
	if !ok {
		return nil
	}
	if _, failed := s.failed[name]; failed {
		return nil
	}
	o, err := s.openModule(path)
	if err == nil && !o.rel {
		err = fmt.Errorf("%s: not a relocatable module", path)
	}
	if err != nil {
		s.failed[name] = err
		s.Warnings = append(s.Warnings, fmt.Sprintf("module %s: %v", name, err))
		return nil
	}
	s.objects[name] = o
	return o
}

// Symbolize fills in symbols, source lines, register annotations and the disassembly of a report.
func (s *Symbolizer) Symbolize(r *Report) {
	if r.RIP != nil {
		s.resolve(r.RIP)
	}
	for i := range r.Trace {
		s.resolve(&r.Trace[i])
	}
	for i := range r.Stacks {
		for j := range r.Stacks[i].Frames {
			s.resolve(&r.Stacks[i].Frames[j])
		}
	}
	for name, v := range r.Registers {
		if v < 0xffff800000000000 || name == "CR2" || name == "CR3" || name == "EFLAGS" {
			continue // only kernel addresses can name code or data
		}
		if f, ok := s.symbolAt(v); ok {
			if r.RegisterSyms == nil {
				r.RegisterSyms = map[string]Frame{}
			}
			r.RegisterSyms[name] = f
		}
	}
	if r.Code != nil {
		var rip uint64
		if r.RIP != nil && r.RIP.HasAddress {
			rip = r.RIP.Address
		}
		r.Disassembly = Disassemble(r.Code, rip)
		s.annotateCode(r)
	}
}

// annotateCode gives each instruction of the Code: listing its source line, found at the RIP's file
// address moved by the instruction's distance from the trap. Only instructions inside the RIP's
// function are annotated: bytes past its ends belong to whatever the running kernel put there, which
// need not be what the module file has next.
func (s *Symbolizer) annotateCode(r *Report) {
	if r.RIP == nil || len(r.Disassembly) == 0 {
		return
	}
	o, ripAddr, ok := s.objectAddress(r.RIP)
	if !ok {
		return
	}
	di, err := o.dwarf()
	if err != nil {
		return
	}
	for i := range r.Disassembly {
		in := &r.Disassembly[i]
		if off := int64(r.RIP.Offset) + int64(in.Offset); off < 0 || r.RIP.Size != 0 && off >= int64(r.RIP.Size) {
			continue
		}
		addr := ripAddr + uint64(int64(in.Offset))
		if lines, err := di.lookup(addr); err == nil && len(lines) > 0 {
			l := lines[0]
			in.Source = &l
		}
	}
}

// resolve completes one frame: symbol from address, address from symbol where a load address is known,
// and source lines.
func (s *Symbolizer) resolve(f *Frame) {
	if f.Symbol == "" && f.HasAddress {
		if sym, ok := s.symbolAt(f.Address); ok {
			f.Symbol, f.Offset, f.Size, f.Module = sym.Symbol, sym.Offset, sym.Size, sym.Module
		}
	}
	o, addr, ok := s.objectAddress(f)
	if !ok {
		return
	}
	di, err := o.dwarf()
	if err != nil {
		s.warnOnce(o, err)
		return
	}
	if !f.IsIP && addr > 0 {
		addr-- // a return address: the call is the instruction before it
	}
	if lines, err := di.lookup(addr); err == nil {
		f.Source = lines
	}
}

func (s *Symbolizer) warnOnce(o *objectFile, err error) {
	key := "dwarf:" + o.path
	if _, seen := s.failed[key]; seen {
		return
	}
	s.failed[key] = err
	s.Warnings = append(s.Warnings, fmt.Sprintf("%s: %v", o.path, err))
}

// objectAddress finds the object file holding a frame's code and the frame's file address in it.
func (s *Symbolizer) objectAddress(f *Frame) (*objectFile, uint64, bool) {
	if f.Symbol != "" {
		o := s.vmlinux
		if f.Module != "" {
			o = s.module(f.Module)
		}
		if o != nil {
			if sym, ok := o.lookupName(f.Symbol, f.Offset, f.Size); ok {
				return o, sym.addr + f.Offset, true
			}
		}
	}
	if !f.HasAddress {
		return nil, 0, false
	}
	if m, ok := s.loadedAt(f.Address); ok {
		if o := s.module(m.name); o != nil {
			if addr, ok := moduleFileAddress(o, m, f.Address); ok {
				return o, addr, true
			}
		}
		return nil, 0, false
	}
	if s.vmlinux != nil {
		return s.vmlinux, f.Address - s.kaslrOffset(), true
	}
	return nil, 0, false
}

// symbolAt names the code or data at a runtime address.
func (s *Symbolizer) symbolAt(addr uint64) (Frame, bool) {
	if s.table != nil {
		if sym, ok := s.table.lookup(addr); ok {
			f := Frame{Symbol: sym.name, Offset: addr - sym.addr, Size: sym.size, Module: sym.module}
			if s.trueSize(&f) {
				return f, true
			}
		}
	}
	if m, ok := s.loadedAt(addr); ok {
		if o := s.module(m.name); o != nil {
			if fa, ok := moduleFileAddress(o, m, addr); ok {
				if sym, ok := o.lookupAddr(fa); ok {
					return Frame{Symbol: sym.name, Offset: fa - sym.addr, Size: sym.size, Module: m.name}, true
				}
			}
		}
		return Frame{}, false
	}
	if s.vmlinux != nil {
		fa := addr - s.kaslrOffset()
		if sym, ok := s.vmlinux.lookupAddr(fa); ok {
			return Frame{Symbol: sym.name, Offset: fa - sym.addr, Size: sym.size}, true
		}
	}
	return Frame{}, false
}

// trueSize replaces a table symbol's guessed size (the gap to the next symbol) with the size in the
// module file or vmlinux when one is at hand, and reports false when the offset falls past the
// symbol's real end: the address is in code the table does not list.
func (s *Symbolizer) trueSize(f *Frame) bool {
	o := s.vmlinux
	if f.Module != "" {
		o = s.module(f.Module)
	}
	if o == nil {
		return true
	}
	sym, ok := o.lookupName(f.Symbol, f.Offset, 0)
	if !ok || sym.size == 0 {
		return true
	}
	f.Size = sym.size
	return f.Offset < sym.size
}

// kaslrOffset is how far the running kernel was moved from vmlinux's link address, known when both
// kallsyms (runtime) and vmlinux (link time) name _text.
func (s *Symbolizer) kaslrOffset() uint64 {
	if s.table == nil || s.vmlinux == nil {
		return 0
	}
	run, ok1 := s.table.byName("_text")
	link, ok2 := s.vmlinux.lookupName("_text", 0, 0)
	if !ok1 || !ok2 {
		return 0
	}
	return run.addr - link.addr
}

// loadedAt finds the loaded module whose memory holds addr.
func (s *Symbolizer) loadedAt(addr uint64) (loadedModule, bool) {
	for _, m := range s.loaded {
		if m.size != 0 && addr >= m.base && addr < m.base+m.size {
			return m, true
		}
		for name, start := range m.sections {
			if addr < start {
				continue
			}
			if o := s.module(m.name); o != nil {
				for _, sec := range o.sections {
					if sec.name == name && addr < start+sec.size {
						return m, true
					}
				}
			}
		}
	}
	return loadedModule{}, false
}

// moduleFileAddress converts a runtime address inside a loaded module to the module file's address:
// exactly through the section load addresses when known, otherwise through the core text layout the
// 6.1 loader gives a module (see coreTextLayout).
func moduleFileAddress(o *objectFile, m loadedModule, addr uint64) (uint64, bool) {
	best, found := uint64(0), false
	for name, start := range m.sections {
		for _, sec := range o.sections {
			if sec.name == name && sec.alloc && addr >= start && addr-start < sec.size { // an empty section holds no address
				best, found = sec.addr+(addr-start), true
			}
		}
	}
	if found || m.base == 0 {
		return best, found
	}
	for _, t := range coreTextLayout(o) {
		sec := o.sections[t.index]
		if addr >= m.base+t.offset && addr < m.base+t.offset+sec.size {
			return sec.addr + (addr - m.base - t.offset), true
		}
	}
	return 0, false
}

type layoutPlace struct {
	index  int
	offset uint64
}

// coreTextLayout places a module's executable non-init sections the way Linux 6.1's layout_sections
// does for the core region, which /proc/modules' address points at: in section header order, each
// aligned to its sh_addralign, code first.
func coreTextLayout(o *objectFile) []layoutPlace {
	var places []layoutPlace
	var size uint64
	for i, s := range o.elf.Sections {
		const want = elf.SHF_ALLOC | elf.SHF_EXECINSTR
		if s.Flags&want != want || strings.HasPrefix(s.Name, ".init") {
			continue
		}
		align := max(s.Addralign, 1)
		size = (size + align - 1) &^ (align - 1)
		places = append(places, layoutPlace{index: i, offset: size})
		size += s.Size
	}
	return places
}
