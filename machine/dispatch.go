package machine

import (
	"errors"
	"fmt"
	"sort"
	"strings"
)

// Handler emulates one kernel function. It reads its arguments from the trap, may touch guest
// memory through the Machine's checked accessors, and returns the value for rax. An error that is a
// *Fault becomes a kernel oops inside that function; see run.go for the other error kinds.
type Handler func(m *Machine, t *Trap) (uint64, error)

// handlers is every kernel function kemu emulates, by symbol name; handler files register theirs in
// their init functions.
var handlers = map[string]Handler{}

func register(name string, h Handler) {
	if _, dup := handlers[name]; dup {
		panic("machine: two handlers for " + name) // a programming error caught at package init
	}
	handlers[name] = h
}

// Trap is one call from guest code into the emulated kernel: the callee, the caller and the System V
// argument registers at the moment of the call.
type Trap struct {
	Name   string // the kernel symbol called
	Addr   uint64 // its address
	Return uint64 // the return address the caller pushed
	rsp    uint64 // stack pointer at the call (pointing at Return)
	regs   [6]uint64
	m      *Machine
}

// Arg is the i-th integer argument (0-based): rdi rsi rdx rcx r8 r9, then the caller's stack. A
// stack slot that cannot be read yields 0; the caller passed fewer arguments than the prototype has.
func (t *Trap) Arg(i int) uint64 {
	if i < len(t.regs) {
		return t.regs[i]
	}
	v, _ := t.m.ReadU64(t.rsp + 8 + 8*uint64(i-len(t.regs)))
	return v
}

// VarArgs is a cursor over the variadic integer arguments starting at argument first (va_list
// semantics for the integer class: kernel code passes no floating point).
func (t *Trap) VarArgs(first int) *ArgCursor { return &ArgCursor{t: t, next: first} }

// ArgCursor hands out successive arguments of a call.
type ArgCursor struct {
	t    *Trap
	next int
}

// Next returns the next integer argument.
func (c *ArgCursor) Next() uint64 {
	v := c.t.Arg(c.next)
	c.next++
	return v
}

// CallStat is what the machine recorded about one kernel function that module code called.
type CallStat struct {
	Name        string
	Count       int
	Implemented bool
	FirstCaller string // module:symbol+offset of the first call site
}

// CallRecord is one call from guest code into the kernel.
type CallRecord struct {
	Name   string
	Caller string // module:symbol+offset, or the raw address
}

// maxRecords bounds the call log; the per-function counts keep counting past it.
const maxRecords = 1 << 16

// dispatcher maps trap addresses to handlers and records every call.
type dispatcher struct {
	m       *Machine
	byAddr  map[uint64]Handler
	stats   map[string]*CallStat
	records []CallRecord
}

func newDispatcher(m *Machine) *dispatcher {
	d := &dispatcher{m: m, byAddr: map[uint64]Handler{}, stats: map[string]*CallStat{}}
	for name, h := range handlers {
		if s, ok := m.prof.Lookup(name); ok {
			d.byAddr[s.Addr] = h
		}
	}
	return d
}

// isTrap reports whether a fetch at addr is a call into the emulated kernel: an address in the
// kernel image that starts a function.
func (d *dispatcher) isTrap(addr uint64) bool {
	if !d.m.inImage(addr) {
		return false
	}
	if _, ok := d.byAddr[addr]; ok {
		return true
	}
	sym, off, _, ok := d.m.prof.SymbolAt(addr)
	return ok && off == 0 && d.m.isFunction(sym)
}

// errUnimplemented stops a call under Strict mode.
type errUnimplemented struct {
	name, caller string
}

func (e *errUnimplemented) Error() string {
	return fmt.Sprintf("unimplemented kernel function %s called from %s", e.name, e.caller)
}

// call runs the handler for the kernel function at addr with the registers of the trapping call.
// It never panics: a handler panic (a kemu bug) is recovered here, at the boundary between guest and
// emulated kernel, and reported as an error so that the machine survives it.
func (d *dispatcher) call(addr uint64, regs [6]uint64, rsp uint64) (ret uint64, retAddr uint64, err error) {
	m := d.m
	t := &Trap{Addr: addr, rsp: rsp, regs: regs, m: m}
	if sym, off, _, ok := m.prof.SymbolAt(addr); ok && off == 0 {
		t.Name = sym.Name
	} else {
		t.Name = fmt.Sprintf("%#x", addr)
	}
	t.Return, err = m.ReadU64(rsp)
	if err != nil {
		return 0, 0, err
	}
	caller := m.describe(t.Return)
	h, implemented := d.byAddr[addr]
	d.record(t.Name, caller, implemented)
	if !implemented {
		if m.opts.Strict {
			return 0, t.Return, &errUnimplemented{name: t.Name, caller: caller}
		}
		return 0, t.Return, nil
	}
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("kemu bug: handler for %s panicked: %v", t.Name, r)
		}
	}()
	ret, err = h(m, t)
	return ret, t.Return, err
}

func (d *dispatcher) record(name, caller string, implemented bool) {
	st := d.stats[name]
	if st == nil {
		st = &CallStat{Name: name, Implemented: implemented, FirstCaller: caller}
		d.stats[name] = st
	}
	st.Count++
	if len(d.records) < maxRecords {
		d.records = append(d.records, CallRecord{Name: name, Caller: caller})
	}
}

// Calls is the log of calls from guest code into the kernel, oldest first (the first 65536).
func (m *Machine) Calls() []CallRecord { return m.dispatch.records }

// CallStats summarises the calls per kernel function, most called first.
func (m *Machine) CallStats() []CallStat {
	out := make([]CallStat, 0, len(m.dispatch.stats))
	for _, s := range m.dispatch.stats {
		out = append(out, *s)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Count != out[j].Count {
			return out[i].Count > out[j].Count
		}
		return out[i].Name < out[j].Name
	})
	return out
}

// Unimplemented lists the kernel functions module code called that have no handler (each returned 0).
func (m *Machine) Unimplemented() []CallStat {
	var out []CallStat
	for _, s := range m.CallStats() {
		if !s.Implemented {
			out = append(out, s)
		}
	}
	return out
}

// Summary is a human-readable account of the kernel calls: totals and the unimplemented functions.
func (m *Machine) Summary() string {
	var b strings.Builder
	total := 0
	for _, s := range m.CallStats() {
		total += s.Count
	}
	fmt.Fprintf(&b, "%d calls into the kernel, %d distinct functions\n", total, len(m.dispatch.stats))
	for _, s := range m.Unimplemented() {
		fmt.Fprintf(&b, "unimplemented: %s (%d calls, first from %s)\n", s.Name, s.Count, s.FirstCaller)
	}
	return b.String()
}

var errTaskDied = errors.New("task killed by an oops")
