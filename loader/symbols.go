package loader

import (
	"fmt"
	"sync"
	"syscall"

	"kemu/profile"
)

// vmlinuxIndex caches, per profile, each vmlinux export with its System.map address: profiles are
// immutable and shared, and every registry of a machine, test or benchmark pass would build the same
// index, and look the address up again for every symbol it resolves.
var vmlinuxIndex sync.Map // *profile.Profile -> map[string]vmlinuxExport

// vmlinuxExport is one vmlinux export of a profile: its row in the profile's Exports and its address.
type vmlinuxExport struct {
	row   int
	addr  uint64
	known bool // System.map has the symbol (per-CPU ones may sit at 0)
}

func vmlinuxExports(p *profile.Profile) map[string]vmlinuxExport {
	if m, ok := vmlinuxIndex.Load(p); ok {
		return m.(map[string]vmlinuxExport)
	}
	m := make(map[string]vmlinuxExport, len(p.Exports))
	for i, e := range p.Exports {
		if e.Module == "vmlinux" {
			s, ok := p.Lookup(e.Name)
			m[e.Name] = vmlinuxExport{row: i, addr: s.Addr, known: ok}
		}
	}
	actual, _ := vmlinuxIndex.LoadOrStore(p, m)
	return actual.(map[string]vmlinuxExport)
}

// findSymbol is find_symbol(): vmlinux's exports first, then every formed module's, skipping GPL-only
// exports when gplok is false. vmlinux exports come from the profile (Module.symvers rows owned by
// vmlinux), with their addresses from System.map.
func (k *Kernel) findSymbol(name string, gplok bool) (Export, bool) {
	if k.vmlinux == nil {
		k.vmlinux = vmlinuxExports(k.prof)
	}
	if v, ok := k.vmlinux[name]; ok && (gplok || !k.prof.Exports[v.row].GPLOnly) {
		e := &k.prof.Exports[v.row]
		return Export{Name: name, CRC: e.CRC, HasCRC: e.HasCRC, GPLOnly: e.GPLOnly, Namespace: e.Namespace,
			Addr: v.addr, addrKnown: v.known}, true
	}
	// Modules are searched in list order (newest first), as the kernel walks its list.
	list := k.exports[name]
	for i := len(list) - 1; i >= 0; i-- {
		if e := list[i]; e.Owner.State != Unformed && (gplok || !e.GPLOnly) {
			return *e, true
		}
	}
	return Export{}, false
}

// resolveSymbol is resolve_symbol(): find the export, then the GPL, taint, version, namespace and
// reference rules. A nil error with found false means "not found" (weak symbols may stay unresolved).
func (info *loadInfo) resolveSymbol(name string) (addr uint64, found bool, err error) {
	k, m := info.k, info.mod
	e, ok := k.findSymbol(name, m.Taints&TaintProprietary == 0)
	if !ok {
		return 0, false, nil
	}
	if e.GPLOnly {
		info.usingGPLOnly = true
	}
	// inherit_taint(): symbols from a proprietary module make the user proprietary too.
	if e.Owner != nil && e.Owner.Taints&TaintProprietary != 0 {
		if info.usingGPLOnly {
			k.printk(LogErr, "%s: module using GPL-only symbols uses symbols %s from proprietary module %s.", m.Name, name, e.Owner.Name)
			return 0, false, nil
		}
		if m.Taints&TaintProprietary == 0 {
			k.printk(LogWarning, "%s: module uses symbols %s from proprietary module %s, inheriting taint.", m.Name, name, e.Owner.Name)
			m.Taints |= TaintProprietary
		}
	}
	var crc *uint32
	if e.HasCRC {
		c := e.CRC
		crc = &c
	}
	if !info.checkVersion(name, crc) {
		return 0, true, &Error{Errno: syscall.EINVAL, Detail: fmt.Sprintf("%s: disagrees about version of symbol %s", info.name, name)}
	}
	if e.Namespace != "" && !info.importsNamespace(e.Namespace) {
		if !k.config("CONFIG_MODULE_ALLOW_MISSING_NAMESPACE_IMPORTS", false) {
			msg := fmt.Sprintf("%s: module uses symbol (%s) from namespace %s, but does not import it.", m.Name, name, e.Namespace)
			k.printk(LogErr, "%s", msg)
			return 0, true, &Error{Errno: syscall.EINVAL, Detail: msg}
		}
		k.printk(LogWarning, "%s: module uses symbol (%s) from namespace %s, but does not import it.", m.Name, name, e.Namespace)
	}
	if err := k.refModule(m, e.Owner); err != nil {
		if err == syscall.EBUSY { // resolve_symbol_wait(): the owner's init never finishes while we wait
			k.printk(LogWarning, "%s: gave up waiting for init of module %s.", m.Name, e.Owner.Name)
		}
		return 0, true, err
	}
	if e.Owner == nil && !e.addrKnown {
		return 0, true, &Error{Errno: syscall.ENOENT, Detail: fmt.Sprintf("vmlinux export %s has no address in the profile's System.map", name)}
	}
	return e.Addr, true, nil
}

func (info *loadInfo) importsNamespace(ns string) bool {
	for _, v := range info.mod.Modinfo.All("import_ns") {
		if v == ns {
			return true
		}
	}
	return false
}

// symbolError accumulates simplify_symbols() failures: the kernel reports every unknown symbol and
// returns the last error.
type symbolError struct {
	first *Error
	n     int
	errno syscall.Errno
}

// simplifySymbols is simplify_symbols(): undefined symbols get their exporter's address, defined ones
// their section's final address added.
func (info *loadInfo) simplifySymbols() error {
	k, m, f := info.k, info.mod, info.f
	var fail symbolError
	report := func(e *Error) {
		if fail.first == nil {
			fail.first = e
		}
		fail.n++
		fail.errno = e.Errno
	}
	for i := 1; i < len(info.syms); i++ {
		s := &info.syms[i]
		switch s.Shndx {
		case shnCommon:
			if len(s.Name) >= 9 && s.Name[:9] == "__gnu_lto" {
				continue
			}
			msg := fmt.Sprintf("%s: please compile with -fno-common", m.Name)
			k.printk(LogWarning, "%s", msg)
			report((&Error{Errno: syscall.ENOEXEC, Msg: msg, Detail: "common symbol " + s.Name}).logged())
		case shnAbs, shnLivepatch:
		case shnUndef:
			addr, found, err := info.resolveSymbol(s.Name)
			if found && err == nil {
				s.Value = addr
				continue
			}
			// Unresolved weak symbols stay 0; so does the _GLOBAL_OFFSET_TABLE_ old binutils leave behind.
			if !found && (s.bind() == stbWeak || s.Name == "_GLOBAL_OFFSET_TABLE_") {
				continue
			}
			errno := syscall.ENOENT
			var detail string
			if err != nil {
				errno = Errno(err)
				if le, ok := err.(*Error); ok {
					detail = le.Detail
				}
			}
			msg := fmt.Sprintf("%s: Unknown symbol %s (err %d)", m.Name, s.Name, -int(errno))
			k.printk(LogWarning, "%s", msg)
			report((&Error{Errno: errno, Msg: msg, Detail: detail}).logged())
		default:
			if int(s.Shndx) >= len(f.secs) {
				report(kerr(syscall.ENOEXEC, "").withDetail("%s: symbol %s has section index %d, the file has %d sections", m.Name, s.Name, s.Shndx, len(f.secs)))
				continue
			}
			s.Value += info.addr[s.Shndx]
		}
	}
	info.writeSymbolValues()
	if fail.first == nil {
		return nil
	}
	e := *fail.first
	e.Errno = fail.errno
	if fail.n > 1 {
		more := fmt.Sprintf("and %d more symbol errors", fail.n-1)
		if e.Detail != "" {
			e.Detail += "; " + more
		} else {
			e.Detail = more
		}
	}
	return &e
}

// FindExport looks an exported symbol up as find_symbol() does for __symbol_get(): vmlinux first, then
// the formed modules. Owner is nil for vmlinux exports.
func (k *Kernel) FindExport(name string) (Export, bool) { return k.findSymbol(name, true) }

// writeSymbolValues mirrors simplify_symbols' in-place update: the kernel rewrites st_value in the symbol
// table that move_module() copied to the init region, so kallsyms reads final addresses from it.
func (info *loadInfo) writeSymbolValues() {
	p := info.place[info.idxSym]
	if !p.ok {
		return
	}
	r := info.mod.region(p.region)
	tab := r.Bytes[p.off : p.off+info.f.secs[info.idxSym].Size]
	for i := range info.syms {
		if off := i*symSize + 8; off+8 <= len(tab) {
			le.PutUint64(tab[off:], info.syms[i].Value)
		}
	}
}
