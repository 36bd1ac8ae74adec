package session

import (
	"regexp"
	"strings"

	"kemu/machine"
	"kemu/oops"
	"kemu/printk"
	"kemu/slab"
)

// Report is the behaviour report of a session (kemu run/shell/insmod/modprobe --report FILE): what
// the modules asked of the kernel and what they left behind. Fields the machine cannot observe yet
// are listed in NotObserved rather than reported empty.
type Report struct {
	// Kernel is the release the machine ran (uname -r).
	Kernel string `json:"kernel"`
	// Commands is every command of the session with its output and exit status, in order.
	Commands []Record `json:"commands"`
	// Calls counts the calls module code made into each kernel function, most called first, with the
	// first call site; Unimplemented is the subset kemu has no handler for (each returned 0).
	Calls         []APICall `json:"calls"`
	Unimplemented []APICall `json:"unimplemented"`
	// Modules is the modules still loaded when the report was made, as /proc/modules lists them.
	Modules []ModuleState `json:"modules"`
	// Unloaded is the modules the session unloaded, in order.
	Unloaded []string `json:"unloaded"`
	// Registrations is what modules registered with kernel subsystems (drivers of pci, platform, usb,
	// ..., filesystems, crypto algorithms, net and input devices) and have not unregistered.
	Registrations []machine.Registration `json:"registrations"`
	// KernelObjects is the objects the kernel created on modules' behalf and still holds (classes,
	// devices, proc entries), as "struct@address from module:function+offset".
	KernelObjects []string `json:"kernel_objects"`
	// Files is every path a user process can open at the end (device nodes, the modules' /proc
	// entries, the kernel's own /proc files), sorted.
	Files []string `json:"files"`
	// PendingTimers and QueuedWork count the timers still armed and work items not yet run.
	PendingTimers int `json:"pending_timers"`
	QueuedWork    int `json:"queued_work"`
	// Threads is the kernel threads modules started that have not exited, by pid, with their ps
	// state: a thread still there after its module's rmmod is the module's bug.
	Threads []machine.Thread `json:"threads"`
	// Problems is every oops, warning, soft lockup and panic the kernel logged, with the command
	// that was running.
	Problems []Problem `json:"problems"`
	// Context is what decoding the problems needs besides their text: the kernel release and every
	// module loaded at a problem or at the end, with its file and addresses (`kemu decode REPORT`).
	Context *oops.Context `json:"context"`
	// Taint is the kernel's taint flags as an oops header prints them ("Not tainted" or
	// "Tainted: P        W  OE  "); Tainted is /proc/sys/kernel/tainted, the bits as a number.
	Taint   string `json:"taint"`
	Tainted uint32 `json:"tainted"`
	// Leaks is every heap allocation a module made that was still allocated after the module was
	// unloaded, with the code that allocated it.
	Leaks []Leak `json:"leaks"`
	// HeapLive is every heap allocation module code made that is still allocated (loaded modules'
	// memory in use, and leaks), by caller.
	HeapLive []Leak `json:"heap_live"`
	// TLB is the TLB model's account of the session's guest code per module, when one was asked for
	// (Options.TLB): accesses, misses, page walks and their estimated cycles.
	TLB *machine.Result `json:"tlb,omitempty"`
	// VirtualTimeNS is the machine's virtual clock at the end: nanoseconds since boot.
	VirtualTimeNS uint64 `json:"virtual_time_ns"`
	// NotObserved names what the report cannot say yet because the machine does not record it.
	NotObserved []string `json:"not_observed"`
}

// APICall is what the machine recorded about one kernel function module code called.
type APICall struct {
	Function    string `json:"function"`
	Count       int    `json:"count"`
	Implemented bool   `json:"implemented"`  // false: kemu has no handler and the call returned 0
	FirstCaller string `json:"first_caller"` // module:function+offset of the first call site
}

func apiCalls(stats []machine.CallStat) []APICall {
	out := make([]APICall, len(stats))
	for i, c := range stats {
		out[i] = APICall{Function: c.Name, Count: c.Count, Implemented: c.Implemented, FirstCaller: c.FirstCaller}
	}
	return out
}

// ModuleState is one loaded module.
type ModuleState struct {
	Name     string   `json:"name"`
	State    string   `json:"state"` // as /proc/modules shows it: Live, Loading, Unloading
	Size     uint64   `json:"size"`  // core size in bytes
	Refcount int      `json:"refcount"`
	UsedBy   []string `json:"used_by"`
	Taints   string   `json:"taints"` // the module's taint letters ("OE")
}

// Problem is one oops, warning, lockup or panic in the kernel log.
type Problem struct {
	Kind    string `json:"kind"`             // oops, warning, soft_lockup, panic, unimplemented
	Command string `json:"command"`          // the session command during which it was logged
	Title   string `json:"title"`            // the first line of the report ("BUG: kernel NULL pointer dereference, ...")
	Marker  string `json:"marker,omitempty"` // the oops line with its number ("Oops: 0002 [#1] PREEMPT SMP NOPTI")
	RIP     string `json:"rip,omitempty"`    // "RIP: 0010:function+0x../0x.. [module]"
	Text    string `json:"text,omitempty"`   // the report's log lines, for kemu decode

	modules []oops.ContextModule // the modules loaded when it was logged (Report.Context)
}

// Leak is one live heap allocation.
type Leak struct {
	Module string `json:"module"` // the module whose code allocated it
	Addr   uint64 `json:"addr"`
	Size   uint64 `json:"size"`   // bytes requested
	Cache  string `json:"cache"`  // the slab cache it came from ("kmalloc-4k")
	Caller string `json:"caller"` // module:function+offset of the allocating call
}

// What the report cannot say.
const (
	notObservedWrites = "memory written outside the module's own memory: the machine does not track writes to kernel data"
	notObservedTLB    = "TLB statistics: no TLB model was attached to the session (kemu run --measure)"
)

// Report summarises the session so far.
func (s *Session) Report() *Report {
	reg := s.m.Registry()
	taint := s.m.Tainted()
	timers, work := s.m.Pending()
	r := &Report{
		Kernel:        s.prof.Release,
		Commands:      nonNil(s.records),
		Calls:         apiCalls(s.m.CallStats()),
		Unimplemented: apiCalls(s.m.Unimplemented()),
		Unloaded:      nonNil(s.removed),
		Registrations: nonNil(s.m.Registrations()),
		KernelObjects: nonNil(s.m.KernelObjects()),
		Files:         nonNil(s.m.Paths()),
		PendingTimers: timers,
		QueuedWork:    work,
		Threads:       nonNil(s.m.Threads()),
		Problems:      nonNil(s.problems),
		Context:       s.oopsContext(),
		Taint:         taint.KernelString(),
		Tainted:       uint32(taint),
		Leaks:         nonNil(s.leaks),
		HeapLive:      nonNil(moduleHeap(s.m.HeapObjects(), s.kernelObjectAddrs(), "")),
		VirtualTimeNS: s.m.Now(),
		NotObserved:   []string{notObservedWrites},
	}
	if s.tlb != nil {
		if results := s.tlb.Results(); len(results) > 0 {
			byModule := results[0].ByModule()
			r.TLB = &byModule
		}
	} else {
		r.NotObserved = append(r.NotObserved, notObservedTLB)
	}
	r.Modules = []ModuleState{}
	for _, mod := range reg.Modules() {
		ms := ModuleState{Name: mod.Name, State: mod.State.String(), Size: mod.Core.Size, Refcount: mod.Refcount(),
			UsedBy: []string{}, Taints: mod.Taints.String()}
		for _, h := range mod.UsedBy() {
			ms.UsedBy = append(ms.UsedBy, h.Name)
		}
		r.Modules = append(r.Modules, ms)
	}
	return r
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// noteLeaks records what module name left on the heap once it was unloaded: allocations whose
// allocating call was in its code. Objects the kernel created for it (devices, proc entries) are the
// kernel's to free and not counted.
func (s *Session) noteLeaks(name string) {
	s.leaks = append(s.leaks, moduleHeap(s.m.HeapObjects(), s.kernelObjectAddrs(), name)...)
}

// moduleHeap is the allocations made by module code (of module only, unless it is ""), minus the
// kernel objects at skip.
func moduleHeap(objs []slab.Allocation, skip map[uint64]bool, module string) []Leak {
	var out []Leak
	for _, a := range objs {
		mod, _, ok := strings.Cut(a.Caller.Label, ":")
		if !ok || a.Caller.Addr == 0 || skip[a.Addr] || (module != "" && mod != module) {
			continue
		}
		out = append(out, Leak{Module: mod, Addr: a.Addr, Size: a.Requested, Cache: a.Cache, Caller: a.Caller.Label})
	}
	return out
}

// kernelObjectAddrs is the addresses of the kernel objects the machine created for modules, parsed
// from its "struct@0xaddr from caller" descriptions.
func (s *Session) kernelObjectAddrs() map[uint64]bool {
	addrs := map[uint64]bool{}
	for _, o := range s.m.KernelObjects() {
		_, rest, ok := strings.Cut(o, "@")
		if !ok {
			continue
		}
		hex, _, _ := strings.Cut(rest, " ")
		if v, err := parseInt(hex); err == nil {
			addrs[v] = true
		}
	}
	return addrs
}

// Patterns of the first lines of the kernel's problem reports.
var (
	oopsMarker = regexp.MustCompile(`^[A-Za-z][^:]*: [0-9a-f]{4} \[#\d+\]`)
	oopsTitle  = regexp.MustCompile(`^(BUG: |kernel BUG at |Kernel BUG at |kernel tried to execute )`)
)

// noteOopses collects the problem reports the kernel logged while command ran.
func (s *Session) noteOopses(command string) {
	var recs []printk.Record
	for _, r := range s.m.LogRecords() {
		if r.Seq >= s.logSeq {
			recs = append(recs, r)
		}
	}
	title, titleAt := "", 0
	for i, r := range recs {
		text := r.Text
		p := Problem{Command: command, Title: text}
		switch {
		case strings.HasPrefix(text, "watchdog: BUG: soft lockup"):
			p.Kind = "soft_lockup"
		case oopsTitle.MatchString(text):
			title, titleAt = text, i
			continue
		case oopsMarker.MatchString(text):
			p.Kind, p.Marker = "oops", text
			if title != "" {
				p.Title = title
			}
		case strings.HasPrefix(text, "WARNING: CPU: "):
			p.Kind = "warning"
		case strings.HasPrefix(text, "Kernel panic - not syncing"):
			p.Kind = "panic"
		case strings.HasPrefix(text, "kemu: unimplemented kernel function"):
			p.Kind = "unimplemented"
		default:
			continue
		}
		start := i
		if p.Kind == "oops" && title != "" {
			start = titleAt
		}
		title = ""
		p.RIP = ripAfter(recs[i+1:])
		if p.Kind != "unimplemented" {
			p.Text, p.modules = problemText(recs[start:]), s.contextModules()
		}
		s.problems = append(s.problems, p)
	}
}

// ripAfter is the RIP line of the register dump that follows a report's first line.
func ripAfter(recs []printk.Record) string {
	for _, r := range recs {
		if strings.HasPrefix(r.Text, "RIP: ") {
			return r.Text
		}
		if strings.HasPrefix(r.Text, "---[ end trace") {
			break
		}
	}
	return ""
}
