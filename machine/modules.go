package machine

import (
	"fmt"
	"sort"
	"strings"

	"kemu/loader"
)

// guestModule is what the machine keeps about a loaded module to run and report on it: where its
// code is, its symbols, and the tables the CPU side consults (bug and exception tables).
type guestModule struct {
	name    string
	flags   string // taint letters for "Modules linked in:", e.g. "OE"
	state   moduleState
	regions []span // core and (until freed) init memory
	symbols []modSymbol
	bugs    map[uint64]bugEntry
	extable map[uint64]exEntry // by faulting instruction
	mod     *loader.Module     // the registry's record; nil for code mapped by tests
}

type moduleState int

const (
	stateLive moduleState = iota
	stateComing
	stateGoing
)

type span struct{ start, end uint64 }

type modSymbol struct {
	name string
	addr uint64
	size uint64
	init bool
}

// entryAlias reports the global aliases module_init() and module_exit() give a module's entry points.
func entryAlias(name string) bool { return name == "init_module" || name == "cleanup_module" }

// bugEntry is a __bug_table record: where a ud2 is and what it means.
type bugEntry struct {
	file    string
	line    int
	warning bool // BUGFLAG_WARNING: WARN() continues after the report
	once    bool // BUGFLAG_ONCE: report only the first time
	done    bool // BUGFLAG_DONE: a WARN_ONCE that already fired
	noCut   bool // BUGFLAG_NO_CUT_HERE: the caller already printed the cut-here line
}

// exEntry is an __ex_table record: where to continue after a fault, and how.
type exEntry struct {
	fixup uint64
	data  int32
}

func (g *guestModule) contains(addr uint64) bool {
	for _, r := range g.regions {
		if addr >= r.start && addr < r.end {
			return true
		}
	}
	return false
}

// symbolAt is kallsyms for the module: the closest symbol at or below addr within its memory.
func (g *guestModule) symbolAt(addr uint64) (modSymbol, uint64, bool) {
	if !g.contains(addr) {
		return modSymbol{}, 0, false
	}
	i := sort.Search(len(g.symbols), func(i int) bool { return g.symbols[i].addr > addr }) - 1
	for ; i >= 0; i-- {
		s := g.symbols[i]
		if s.init && g.state == stateLive {
			continue
		}
		// Of several names at one address kallsyms reports the first in the symbol table, where
		// local symbols precede global ones: the static fault_null_init rather than init_module,
		// the global alias module_init() defines for it (cleanup_module likewise).
		for j := i - 1; j >= 0 && g.symbols[j].addr == s.addr; j-- {
			if entryAlias(s.name) && !entryAlias(g.symbols[j].name) {
				s = g.symbols[j]
			}
		}
		size := s.size
		if i+1 < len(g.symbols) && (size == 0 || g.symbols[i+1].addr-s.addr < size) && g.symbols[i+1].addr > s.addr {
			size = g.symbols[i+1].addr - s.addr
		}
		s.size = size
		return s, addr - s.addr, true
	}
	return modSymbol{}, 0, false
}

// moduleAt is the module whose memory holds addr.
func (m *Machine) moduleAt(addr uint64) *guestModule {
	for _, g := range m.modules {
		if g.contains(addr) {
			return g
		}
	}
	return nil
}

// symbolize finds the symbol containing addr, in a module or the kernel image, as kallsyms does.
func (m *Machine) symbolize(addr uint64) (name string, off, size uint64, module string, ok bool) {
	if g := m.moduleAt(addr); g != nil {
		if s, off, ok := g.symbolAt(addr); ok {
			return s.name, off, s.size, g.name, true
		}
		return "", 0, 0, "", false
	}
	if m.inImage(addr) {
		if s, off, size, ok := m.prof.SymbolAt(addr); ok {
			return s.Name, off, size, "", true
		}
	}
	return "", 0, 0, "", false
}

// formatS is %pS: "sym+0xoff/0xsize [module]", or the bare address.
func (m *Machine) formatS(addr uint64) string {
	name, off, size, mod, ok := m.symbolize(addr)
	if !ok {
		return fmt.Sprintf("0x%x", addr)
	}
	s := fmt.Sprintf("%s+%#x/%#x", name, off, size)
	if off == 0 {
		s = fmt.Sprintf("%s+0x0/%#x", name, size)
	}
	if mod != "" {
		s += " [" + mod + "]"
	}
	return s
}

// formatB is %pB for return addresses: the call may be the function's last instruction, so the
// lookup uses addr-1 and the printed offset adds the 1 back.
func (m *Machine) formatB(addr uint64) string {
	name, off, size, mod, ok := m.symbolize(addr - 1)
	if !ok {
		return fmt.Sprintf("0x%x", addr)
	}
	s := fmt.Sprintf("%s+%#x/%#x", name, off+1, size)
	if mod != "" {
		s += " [" + mod + "]"
	}
	return s
}

// describe names a code address for the call log: "module:symbol+0xoff", "symbol+0xoff" in the
// kernel, or the raw address.
func (m *Machine) describe(addr uint64) string {
	name, off, _, mod, ok := m.symbolize(addr)
	if !ok {
		return fmt.Sprintf("%#x", addr)
	}
	if mod != "" {
		return fmt.Sprintf("%s:%s+%#x", mod, name, off)
	}
	return fmt.Sprintf("%s+%#x", name, off)
}

// isText reports whether addr could be a return address: inside a module or a kernel function.
func (m *Machine) isText(addr uint64) bool {
	if m.moduleAt(addr) != nil {
		return true
	}
	if !m.inImage(addr) {
		return false
	}
	if m.image.textEnd != 0 {
		return addr >= m.image.textStart && addr < m.image.textEnd
	}
	s, _, _, ok := m.prof.SymbolAt(addr)
	return ok && m.isFunction(s)
}

// printCallTrace is show_trace_log_lvl(): every code address on the stack between RSP and the top,
// without "? " where the ORC unwinder vouches for it as a return address (orc.go).
func (m *Machine) printCallTrace(r *regsSnapshot) {
	stack := "TASK"
	if m.kernel.softirq {
		stack = "IRQ" // timer callbacks run from the timer softirq on the interrupt stack
	}
	m.logf(levelWarning, "Call Trace:")
	m.logf(levelWarning, " <%s>", stack)
	if r.rsp <= m.stackTop && r.rsp >= m.stackTop-threadSize {
		reliable := m.reliableSlots(r.rip, r.rsp, r.gp[6])
		for sp := r.rsp &^ 7; sp < m.stackTop; sp += 8 {
			v, err := m.ReadU64(sp)
			if err != nil {
				break
			}
			if !m.isText(v) {
				continue
			}
			if reliable[sp] {
				m.logf(levelWarning, " %s", m.formatB(v))
			} else {
				m.logf(levelWarning, " ? %s", m.formatB(v))
			}
		}
	}
	m.logf(levelWarning, " </%s>", stack)
}

// printModules is print_modules(): the loaded modules, most recent first, with their flags.
func (m *Machine) printModules() {
	var b strings.Builder
	b.WriteString("Modules linked in:")
	for i := len(m.modules) - 1; i >= 0; i-- {
		g := m.modules[i]
		flags := g.flags
		switch g.state {
		case stateComing:
			flags += "+"
		case stateGoing:
			flags += "-"
		}
		if flags != "" {
			flags = "(" + flags + ")"
		}
		fmt.Fprintf(&b, " %s%s", g.name, flags)
	}
	if m.lastUnloaded != "" {
		fmt.Fprintf(&b, " [last unloaded: %s]", m.lastUnloaded)
	}
	m.logf(levelWarning, "%s", b.String())
}
