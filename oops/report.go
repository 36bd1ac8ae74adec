package oops

// Kind classifies a report by what the kernel printed first.
type Kind string

// The kinds of report Parse recognizes.
const (
	KindNullDeref  Kind = "null-deref"  // "BUG: kernel NULL pointer dereference" (4.x: "unable to handle kernel NULL pointer dereference")
	KindPageFault  Kind = "page-fault"  // "BUG: unable to handle page fault" (4.x: "unable to handle kernel paging request")
	KindBug        Kind = "bug"         // "kernel BUG at file:line!" and other "BUG: ..." lines
	KindWarning    Kind = "warning"     // "WARNING: CPU: n PID: n at file:line"
	KindGPF        Kind = "gpf"         // "general protection fault"
	KindSoftLockup Kind = "soft-lockup" // "watchdog: BUG: soft lockup"
	KindKASAN      Kind = "kasan"       // "BUG: KASAN: ..."
	KindHungTask   Kind = "hung-task"   // "INFO: task x:123 blocked for more than 120 seconds."
	KindRCUStall   Kind = "rcu-stall"   // "rcu: INFO: rcu_preempt self-detected stall on CPU"
	KindUBSAN      Kind = "ubsan"       // "UBSAN: array-index-out-of-bounds in file:line"
	KindPanic      Kind = "panic"       // "Kernel panic - not syncing" with no report before it
	KindOops       Kind = "oops"        // an "Oops:"/"invalid opcode:"-style line whose header was lost
)

// Report is one crash report found in a log. Fields the log did not show stay zero.
type Report struct {
	Title string `json:"title"` // the header line as printed
	Kind  Kind   `json:"kind"`
	// FirstLine and LastLine are the 1-based input lines the report spans (other CPUs' lines included).
	FirstLine int `json:"first_line"`
	LastLine  int `json:"last_line"`
	// Truncated is set when the input ended in the middle of the report (inside the call trace or
	// before any RIP or trace was printed).
	Truncated bool `json:"truncated,omitempty"`

	FaultAddress *uint64 `json:"fault_address,omitempty"` // page faults, GPF's non-canonical address
	BugAt        string  `json:"bug_at,omitempty"`        // "file:line" of BUG()/WARN()
	Oops         string  `json:"oops,omitempty"`          // "Oops: 0002 [#1] PREEMPT SMP NOPTI" line
	Panic        string  `json:"panic,omitempty"`         // message of a "Kernel panic - not syncing" that followed

	CPU      *int   `json:"cpu,omitempty"`
	PID      *int   `json:"pid,omitempty"`
	Comm     string `json:"comm,omitempty"`
	Tainted  bool   `json:"tainted"`
	Taint    string `json:"taint,omitempty"` // the flags as printed, e.g. "G           OE"
	Version  string `json:"version,omitempty"`
	Build    string `json:"build,omitempty"` // what follows the release, e.g. "#1 Debian 6.1.55-1"
	Hardware string `json:"hardware,omitempty"`

	RIP       *Frame            `json:"rip,omitempty"`
	Registers map[string]uint64 `json:"registers,omitempty"`
	Code      *Code             `json:"code,omitempty"`
	Trace     []Frame           `json:"trace,omitempty"`
	// Stacks holds further stacks a report prints after its call trace, e.g. KASAN's
	// "Allocated by task 1:" and "Freed by task 1:".
	Stacks []Stack `json:"stacks,omitempty"`

	Modules      []Module `json:"modules,omitempty"` // "Modules linked in:"
	LastUnloaded string   `json:"last_unloaded,omitempty"`

	// Filled in by a Symbolizer.
	Disassembly  []Instruction    `json:"disassembly,omitempty"`
	RegisterSyms map[string]Frame `json:"register_symbols,omitempty"`

	// Lines are the report's cleaned lines (prefixes stripped, other callers' lines left out).
	Lines []string `json:"-"`
}

// Frame is one code location: the RIP or a call trace entry. A frame shows an address, a symbol, or both.
type Frame struct {
	Address    uint64 `json:"address,omitempty"`
	HasAddress bool   `json:"has_address,omitempty"`
	Symbol     string `json:"symbol,omitempty"`
	Offset     uint64 `json:"offset,omitempty"`
	Size       uint64 `json:"size,omitempty"`
	Module     string `json:"module,omitempty"`
	// Unreliable frames were printed with "? ": a stale value found on the stack.
	Unreliable bool `json:"unreliable,omitempty"`
	// Context is the stack section the frame was printed in: "TASK", "IRQ", "NMI", "SOFTIRQ", "#DF"...
	Context string `json:"context,omitempty"`
	// IsIP marks the faulting instruction itself; every other frame is a return address, whose
	// source line is that of the call before it (looked up at pc-1).
	IsIP bool `json:"is_ip,omitempty"`

	// Filled in by a Symbolizer: source locations, innermost (inlined) function first.
	Source []SourceLine `json:"source,omitempty"`
}

// SourceLine is one source location of a frame; all but the last of a frame's list are inlined.
type SourceLine struct {
	Function string `json:"function"`
	File     string `json:"file"`
	Line     int    `json:"line"`
	Inlined  bool   `json:"inlined,omitempty"`
}

// Stack is a named list of frames.
type Stack struct {
	Title  string  `json:"title"`
	Frames []Frame `json:"frames"`
}

// Code is a "Code:" line: bytes around the RIP, with the trapping byte at index Trap.
type Code struct {
	Bytes []byte `json:"bytes"`
	Trap  int    `json:"trap"` // -1 when no byte was marked
}

// Module is one entry of "Modules linked in:".
type Module struct {
	Name  string `json:"name"`
	Flags string `json:"flags,omitempty"` // "OE", "+", "-"...
}

// Instruction is one disassembled instruction of the Code: bytes.
type Instruction struct {
	// Address is the instruction's address when the RIP's is known; otherwise its offset in the bytes.
	Address uint64 `json:"address"`
	// Offset is the instruction's distance in bytes from the trapping instruction (negative before it).
	Offset   int    `json:"offset"`
	Bytes    []byte `json:"bytes"`
	Text     string `json:"text"`
	Trapping bool   `json:"trapping,omitempty"`
	// Source is the instruction's innermost source line, when the RIP's module or vmlinux has DWARF.
	Source *SourceLine `json:"source,omitempty"`
}
