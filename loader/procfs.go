package loader

import (
	"fmt"
	"strings"
)

// The text files a running kernel shows about its modules, byte for byte as Linux 6.1 and kmod print them.

// moduleSize is what /proc/modules reports: init plus core layout sizes (init counts until it is freed).
func (m *Module) moduleSize() uint64 {
	if m.InitFreed {
		return m.Core.Size
	}
	return m.Core.Size + m.Init.Size
}

// ProcModulesLine is m_show() for one module: name, size, refcount, holders, state, address, taints.
func (m *Module) ProcModulesLine() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %d %d ", m.Name, m.moduleSize(), m.refcnt)
	printed := false
	for _, u := range m.usedBy {
		b.WriteString(u.Name + ",")
		printed = true
	}
	if m.Permanent() {
		b.WriteString("[permanent],")
		printed = true
	}
	if !printed {
		b.WriteString("-")
	}
	fmt.Fprintf(&b, " %s 0x%016x", m.State, m.Core.Addr)
	if m.Taints != 0 {
		b.WriteString(" (" + m.Taints.String())
		switch m.State {
		case Going:
			b.WriteString("-")
		case Coming:
			b.WriteString("+")
		}
		b.WriteString(")")
	}
	b.WriteString("\n")
	return b.String()
}

// ProcModules is /proc/modules: every formed module, most recently loaded first.
func (k *Kernel) ProcModules() string {
	var b strings.Builder
	for _, m := range k.Modules() {
		b.WriteString(m.ProcModulesLine())
	}
	return b.String()
}

// Lsmod is kmod's lsmod output: the header, then name, core size, use count and holders per module.
func (k *Kernel) Lsmod() string {
	var b strings.Builder
	b.WriteString("Module                  Size  Used by\n")
	for _, m := range k.Modules() {
		fmt.Fprintf(&b, "%-19s %8d  %d", m.Name, m.Core.Size, m.refcnt)
		for i, u := range m.usedBy {
			if i == 0 {
				b.WriteByte(' ')
			} else {
				b.WriteByte(',')
			}
			b.WriteString(u.Name)
		}
		b.WriteByte('\n')
	}
	return b.String()
}

// Kallsyms is the module part of /proc/kallsyms: "%px %c %s\t[%s]" per symbol, modules in list order.
// While a module is COMING every named symbol of its table is listed (undefined ones with the address
// they resolved to); after init only the core symbols remain.
func (k *Kernel) Kallsyms() string {
	var b strings.Builder
	for _, m := range k.Modules() {
		for _, s := range m.kallsyms {
			if !s.core && m.InitFreed {
				continue
			}
			fmt.Fprintf(&b, "%016x %c %s\t[%s]\n", s.addr, s.typ, m.kallsymNames[s.nameOff:s.nameOff+s.nameLen], m.Name)
		}
	}
	return b.String()
}
