// Package profile describes one built Linux kernel as far as module loading, execution and crash
// decoding need it: its release and vermagic, its configuration, the symbol map (System.map), the
// export table with CRCs, licences and namespaces (Module.symvers), and its BTF type information.
//
// A Profile is read from one of three sources: the compact profile embedded in kemu (Default), a
// compact profile file (Read, format.go), or a directory of kernel build outputs or an unpacked
// Debian kernel (LoadDir, load.go). It is immutable once built: every lookup is safe for
// concurrent use.
//
// Kernel struct layouts come from BTF (btf.go): Struct("module").Field("mkobj.kobj.name") gives an
// offset, size and C type; Enum, Constant and TypeSize cover the rest. The BTF is parsed on first
// use. The files of the package, top-down: profile.go (the type and symbol lookups), the parsers
// (symvers.go, sysmap.go, config.go, vermagic.go), vmlinux.go and xzkernel.go (vmlinux out of
// vmlinuz, BTF and banner out of vmlinux), load.go, format.go, btf.go, default.go.
package profile

import (
	"bytes"
	"fmt"
	"maps"
	"slices"
	"sort"
)

// Symbol is one System.map line: an address, the nm type letter and a name.
type Symbol struct {
	Addr uint64
	Type byte // nm letter: T t D d B b R r A W V ...
	Name string
}

// Export is one Module.symvers row: a symbol some part of the kernel exports to modules.
type Export struct {
	Name      string
	CRC       uint32 // modversions CRC; meaningful only when HasCRC
	HasCRC    bool   // Module.symvers always has a CRC column; 0x00000000 with CONFIG_MODVERSIONS=n
	Module    string // "vmlinux" or the path-less module name that exports it (e.g. "drivers/md/dm-mod")
	GPLOnly   bool   // EXPORT_SYMBOL_GPL
	Namespace string // "" when exported without a namespace
}

// Profile is a kernel's description. Symbols is sorted by address (ties by name); Exports by name.
type Profile struct {
	Release  string            // uname -r, e.g. "6.1.0-56-amd64"
	Version  string            // uname -v, e.g. "#1 SMP PREEMPT_DYNAMIC Debian 6.1.192-2 (2026-...)"; may be ""
	Vermagic string            // what modules built for it carry, e.g. "6.1.0-56-amd64 SMP preempt mod_unload modversions "
	Config   map[string]string // "CONFIG_X" -> value as written in .config ("y", "m", "\"text\"", "123")
	Symbols  []Symbol          // System.map
	Exports  []Export          // Module.symvers
	BTF      []byte            // the raw .BTF section of vmlinux; nil when the source had none

	byName map[string]int // index into Symbols of the first symbol with that name
	types  *typeIndex     // BTF, parsed on first use (btf.go)
}

// finish sorts the tables and builds the indexes; every constructor calls it last.
func (p *Profile) finish() {
	sort.SliceStable(p.Symbols, func(i, j int) bool { return symbolLess(p.Symbols[i], p.Symbols[j]) })
	sort.SliceStable(p.Exports, func(i, j int) bool { return p.Exports[i].Name < p.Exports[j].Name })
	p.types = &typeIndex{raw: p.BTF}
	p.byName = make(map[string]int, len(p.Symbols))
	for i, s := range p.Symbols {
		if _, dup := p.byName[s.Name]; !dup {
			p.byName[s.Name] = i
		}
	}
}

// symbolLess orders System.map symbols by address, then name.
func symbolLess(a, b Symbol) bool {
	if a.Addr != b.Addr {
		return a.Addr < b.Addr
	}
	return a.Name < b.Name
}

// Export returns the export record for name, if any part of the kernel exports it.
func (p *Profile) Export(name string) (*Export, bool) {
	i := sort.Search(len(p.Exports), func(i int) bool { return p.Exports[i].Name >= name })
	if i < len(p.Exports) && p.Exports[i].Name == name {
		return &p.Exports[i], true
	}
	return nil, false
}

// Lookup returns the System.map symbol called name (the first one, for names defined more than once).
func (p *Profile) Lookup(name string) (Symbol, bool) {
	if p.byName == nil {
		p.finish()
	}
	i, ok := p.byName[name]
	if !ok {
		return Symbol{}, false
	}
	return p.Symbols[i], true
}

// SymbolAt finds the symbol containing addr: the last symbol at or below it. size is the distance to
// the next symbol at a higher address (System.map has no sizes; this is what kallsyms reports too),
// 0 for the last one. ok is false below the first symbol.
func (p *Profile) SymbolAt(addr uint64) (sym Symbol, off, size uint64, ok bool) {
	i := sort.Search(len(p.Symbols), func(i int) bool { return p.Symbols[i].Addr > addr }) - 1
	if i < 0 {
		return Symbol{}, 0, 0, false
	}
	// Several names may share an address; report the first, as kallsyms does.
	for i > 0 && p.Symbols[i-1].Addr == p.Symbols[i].Addr {
		i--
	}
	sym = p.Symbols[i]
	j := i + 1
	for j < len(p.Symbols) && p.Symbols[j].Addr == sym.Addr {
		j++
	}
	if j < len(p.Symbols) {
		size = p.Symbols[j].Addr - sym.Addr
	}
	return sym, addr - sym.Addr, size, true
}

// SizeOf is the number of bytes between the symbol called name and the next higher symbol: the
// storage a data object occupies, as far as System.map can tell.
func (p *Profile) SizeOf(name string) (uint64, bool) {
	s, ok := p.Lookup(name)
	if !ok {
		return 0, false
	}
	_, _, size, _ := p.SymbolAt(s.Addr)
	return size, true
}

// ConfigBool reports whether CONFIG_name is "y" (or "m" when module counts as set).
func (p *Profile) ConfigBool(name string) bool {
	v := p.Config[name]
	return v == "y" || v == "m"
}

// Equal reports whether two profiles describe the same kernel with the same content: release,
// version, vermagic, config, symbols, exports and BTF.
func (p *Profile) Equal(q *Profile) bool {
	return p.Release == q.Release && p.Version == q.Version && p.Vermagic == q.Vermagic &&
		maps.Equal(p.Config, q.Config) && slices.Equal(p.Symbols, q.Symbols) &&
		slices.Equal(p.Exports, q.Exports) && bytes.Equal(p.BTF, q.BTF)
}

func (p *Profile) String() string {
	return fmt.Sprintf("kernel %s (%d symbols, %d exports, %d bytes BTF)", p.Release, len(p.Symbols), len(p.Exports), len(p.BTF))
}

// New finishes a Profile assembled by hand (tests, converters): it sorts the tables and builds the
// indexes. The Profile must not be modified afterwards.
func New(p *Profile) *Profile {
	p.finish()
	return p
}
