package machine

import (
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/knightsc/gapstone"
	uc "github.com/unicorn-engine/unicorn/bindings/go/unicorn"

	"kemu/mmu"
	"kemu/tlb"
)

// Measuring translation cost. A Measurement feeds the access stream of guest code into one or more
// TLB models (the tlb package) while it runs, each access attributed to the module and symbol of
// the code that made it, so that "where a module is placed and what that costs in TLB misses and
// page walks" becomes a number. Several models (presets, cost parameters) can share one run: they
// see the same stream.
//
// Where the stream comes from:
//
//   - Instruction fetches: every basic block Unicorn runs (HOOK_BLOCK) fetches every page it spans,
//     attributed to the block's own module:symbol. A block is decoded once with capstone to count
//     its instructions (cached by address and size), so misses can be given per 1000 instructions.
//   - Data accesses: every guest load and store (HOOK_MEM_READ, HOOK_MEM_WRITE) with its size; an
//     access crossing a page boundary touches both pages. They are attributed to the code that made
//     them: the module:symbol of the block running.
//   - Calls into the emulated kernel: the call fetches the callee's first bytes, which is how the
//     machine traps it (a fetch fault on non-executable kernel text, or an int3 block on a hot-thunk
//     page), so each trap counts one fetch of the callee's page, attributed to vmlinux:<callee>,
//     and no instructions. The return into the kernel that ends a Call counts the same way.
//
// Limits of the model, beyond the tlb package's own:
//
//   - Emulated kernel functions run in Go and touch guest memory through the machine's accessors,
//     not the CPU: apart from the one fetch per trap above, they have no TLB footprint. A real
//     kernel's kmalloc or printk would evict entries the module then misses on; here they do not.
//   - Unicorn's blocks are its translation blocks, not the CPU's fetch stream: a block is fetched
//     whole when it starts (an exception part-way through still counted it all), and there is no
//     prefetching, no speculative fetch down mispredicted paths and no speculative walks.
//   - Instructions are counted per block as decoded, which counts a block cut short by a fault in
//     full; with the fault rare, the count is exact for the code that ran.
//   - Data accesses are what Unicorn reports: string instructions and pushes/pops as their elements,
//     locked operations as a read and a write.
//   - TLB shootdowns reach the models when the kernel would issue them (mmu.Mirror.FlushTLB: at once
//     for a permission change, lazily for vfree, at once for freed module memory), with x86 6.1's
//     rule on this one CPU (see shootdown). A permission change does not also flush for the
//     direct-map alias the kernel updates with it (set_memory_ro's cpa_process_alias).
//   - Attribution is cached by block address for one Start..Stop span: a module unloaded and another
//     loaded at the same address during a span keeps the first one's names.
//
// Measuring is expensive and only on request: memory hooks force every guest access through
// Unicorn's slow path, so Start and Stop drop the translated code (which was generated with or
// without the hooks) and normal runs keep their speed.

// A Measurement is a set of TLB models attached to a machine's CPU. Create it with Machine.Measure;
// it is not safe for concurrent use, like the Machine.
type Measurement struct {
	m     *Machine
	tlbs  []*tlb.TLB
	hooks []uc.Hook

	names     []tlb.TagName       // label -> module and symbol; label 0 is untagged
	labelOf   map[tlb.TagName]int // module and symbol -> label
	tags      [][]tlb.Tag         // [model][label]: each model's tag for a label
	insns     []uint64            // instructions run, per label
	blocks    map[uint64]block    // blocks seen this span, by address
	current   int                 // label of the block running: data accesses are its
	traps     uint64              // calls into the emulated kernel while measuring
	split     splitLoad           // the page-crossing load whose halves Unicorn reports next
	decoder   *gapstone.Engine
	decodeErr error      // first block that could not be read or decoded
	shot      Shootdowns // TLB invalidations of page-table changes while measuring
}

// Shootdowns count the TLB invalidations the kernel's page-table changes caused while measuring.
type Shootdowns struct {
	FullFlushes uint64 `json:"full_flushes"` // flush_tlb_all: every entry, global ones too
	PageFlushes uint64 `json:"page_flushes"` // invlpg, one page each
}

// tlbSinglePageFlushCeiling is x86's tlb_single_page_flush_ceiling (arch/x86/mm/tlb.c): the most
// pages flush_tlb_kernel_range and cpa_flush invalidate one by one before flushing everything.
const tlbSinglePageFlushCeiling = 33

// shootdown is the TLB flush the kernel issues after changing kernel page tables over [start, end):
// flush_tlb_kernel_range (and cpa_flush, which has the same rule) invalidates page by page up to
// tlb_single_page_flush_ceiling pages and flushes everything, global entries too, beyond; all is a
// flush_tlb_all. Every model of every running measurement sees it.
func (m *Machine) shootdown(start, end uint64, all bool) {
	if len(m.measuring) == 0 || end <= start {
		return
	}
	first, last := pageDown(start), pageUp(end)
	pages := (last - first) / pageSize
	for _, ms := range m.measuring {
		if all || pages > tlbSinglePageFlushCeiling {
			ms.shot.FullFlushes++
			for _, t := range ms.tlbs {
				t.FlushAll()
			}
			continue
		}
		ms.shot.PageFlushes += pages
		for va := first; va < last; va += pageSize {
			for _, t := range ms.tlbs {
				t.Invlpg(va)
			}
		}
	}
}

// block is what is known about one translation block: its size (the cache key with its address),
// who it belongs to and how many instructions it holds.
type block struct {
	size  uint32
	label int
	insns uint32
	trap  bool // the int3 that traps a call to a kernel function sharing a hot-thunk page
}

// splitLoad is a page-crossing load of size bytes whose two aligned halves (at lo and lo+size) are
// still to be reported.
type splitLoad struct {
	lo, size uint64
	left     int
}

// Measure attaches TLB models built from cfgs (at least one) to the machine's CPU and starts
// feeding them; Stop detaches them. Each model walks the machine's page tables as they are at the
// moment of each miss.
func (m *Machine) Measure(cfgs ...tlb.Config) (*Measurement, error) {
	if len(cfgs) == 0 {
		return nil, errors.New("measure: no TLB model")
	}
	ms := &Measurement{m: m, labelOf: map[tlb.TagName]int{}}
	walker := tlb.WalkFunc(m.walkTranslation)
	for _, c := range cfgs {
		t, err := tlb.New(c, walker)
		if err != nil {
			return nil, fmt.Errorf("measure: TLB model %s: %w", c.Name, err)
		}
		ms.tlbs = append(ms.tlbs, t)
		ms.tags = append(ms.tags, nil)
	}
	ms.label(tlb.TagName{}) // label 0: untagged
	if err := ms.Start(); err != nil {
		return nil, err
	}
	return ms, nil
}

// walkTranslation is the page walk of the TLB models: the mmu's walker over the machine's tables.
// A translation the access would not be allowed (a fetch from NX kernel text, which is how kernel
// calls trap) is still a translation: the TLB caches it and the permission check comes after.
func (m *Machine) walkTranslation(va uint64) (tlb.Translation, error) {
	w := m.mem.Tables.Walk(va, mmu.Access{Kind: mmu.AccessRead})
	if !w.Translated() {
		return tlb.Translation{}, w.Err()
	}
	size := tlb.Page4K
	switch w.PageSize {
	case 1 << 21:
		size = tlb.Page2M
	case 1 << 30:
		size = tlb.Page1G
	}
	return tlb.Translation{Size: size, Frame: w.PA &^ (w.PageSize - 1), Global: w.Global}, nil
}

// Start attaches the hooks (again, after Stop): counting resumes where it stopped, the models keep
// their cached translations.
func (ms *Measurement) Start() error {
	if ms.hooks != nil {
		return nil
	}
	if ms.m.cpu == nil {
		return errors.New("measure: machine is closed")
	}
	decoder, err := gapstone.New(gapstone.CS_ARCH_X86, gapstone.CS_MODE_64)
	if err != nil {
		return fmt.Errorf("measure: capstone: %w", err)
	}
	ms.decoder = &decoder
	ms.blocks = map[uint64]block{}
	cpu := ms.m.cpu
	for _, h := range []struct {
		what string
		typ  int
		cb   any
	}{
		{"block", uc.HOOK_BLOCK, ms.onBlock},
		{"memory access", uc.HOOK_MEM_READ | uc.HOOK_MEM_WRITE, ms.onData},
		{"kernel call", uc.HOOK_MEM_FETCH_PROT | uc.HOOK_MEM_FETCH_UNMAPPED, ms.onFetchFault},
	} {
		hook, err := cpu.HookAdd(h.typ, h.cb, 1, 0)
		if err != nil {
			ms.Stop()
			return fmt.Errorf("measure: add %s hook: %w", h.what, err)
		}
		ms.hooks = append(ms.hooks, hook)
	}
	// Code translated before the hooks has no calls to them (and the fast memory path): drop it.
	if err := ms.m.dropAllTranslations(); err != nil {
		ms.Stop()
		return fmt.Errorf("measure: %w", err)
	}
	ms.m.measuring = append(ms.m.measuring, ms)
	return nil
}

// Stop detaches the hooks; the results stay readable. Guest code runs at full speed again.
func (ms *Measurement) Stop() error {
	var errs []error
	if ms.m.cpu != nil {
		for _, h := range ms.hooks {
			errs = append(errs, ms.m.cpu.HookDel(h))
		}
		if ms.hooks != nil {
			errs = append(errs, ms.m.dropAllTranslations())
		}
	}
	ms.hooks = nil
	ms.m.measuring = slices.DeleteFunc(ms.m.measuring, func(o *Measurement) bool { return o == ms })
	if ms.decoder != nil {
		// gapstone returns its Errno even for CS_ERR_OK, and cs_close cannot fail on a handle
		// cs_open made: nothing to report.
		_ = ms.decoder.Close()
		ms.decoder = nil
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("measure: stop: %w", err)
	}
	return nil
}

// Reset zeroes the counts (the models keep their cached translations): measure a warm run by
// running once, resetting, and running again.
func (ms *Measurement) Reset() {
	for _, t := range ms.tlbs {
		t.ResetCounters()
	}
	clear(ms.insns)
	ms.traps = 0
	ms.shot = Shootdowns{}
}

// onBlock is the HOOK_BLOCK callback: the block's fetches and instructions.
func (ms *Measurement) onBlock(_ uc.Unicorn, addr uint64, size uint32) {
	b, ok := ms.blocks[addr]
	if !ok || b.size != size {
		b = ms.newBlock(addr, size)
		ms.blocks[addr] = b
	}
	ms.current = b.label
	ms.insns[b.label] += uint64(b.insns)
	if b.trap {
		ms.traps++
	}
	n := uint64(size)
	if n == 0 {
		n = 1
	}
	ms.access(addr, n, tlb.Fetch, b.label)
}

// onData is the HOOK_MEM_READ/WRITE callback: one load or store by the block running.
func (ms *Measurement) onData(_ uc.Unicorn, typ int, addr uint64, size int, _ int64) {
	n := uint64(max(size, 1))
	if typ != uc.MEM_WRITE && ms.splitRead(addr, n) {
		return
	}
	kind := tlb.Read
	if typ == uc.MEM_WRITE {
		kind = tlb.Write
	}
	ms.access(addr, n, kind, ms.current)
}

// splitRead recognises the halves of a load that crosses a page. Unicorn (QEMU's softmmu slow
// path) reports such a load, then the two aligned loads of the same size it is made of, which the
// model must not count again: the first report already touched both pages. Stores are reported
// once.
func (ms *Measurement) splitRead(addr, n uint64) bool {
	if ms.split.left > 0 && n == ms.split.size && (addr == ms.split.lo || addr == ms.split.lo+n) {
		ms.split.left--
		return true
	}
	ms.split.left = 0
	if addr>>mmu.PageShift != (addr+n-1)>>mmu.PageShift && n&(n-1) == 0 {
		ms.split = splitLoad{lo: addr &^ (n - 1), size: n, left: 2}
	}
	return false
}

// onFetchFault sees the fetch faults that end a Unicorn run: calls into the emulated kernel (and the
// return that ends a Call) fetch the callee's page as a real call would. It never handles the
// fault: the machine's own hook and run loop do.
func (ms *Measurement) onFetchFault(_ uc.Unicorn, _ int, addr uint64, _ int, _ int64) bool {
	if ms.m.dispatch != nil && ms.m.dispatch.isTrap(addr) {
		ms.traps++
	}
	label := ms.labelAt(addr)
	ms.current = label
	ms.access(addr, 1, tlb.Fetch, label)
	return false
}

// access feeds one access to every model. An address no walk translates is a page fault the
// machine reports on its own; the models count it (Counters.Faults) and cache nothing.
func (ms *Measurement) access(addr, n uint64, kind tlb.Kind, label int) {
	for i, t := range ms.tlbs {
		_ = t.AccessRange(addr, n, kind, ms.tags[i][label])
	}
}

// newBlock resolves a block's attribution and counts its instructions.
func (ms *Measurement) newBlock(addr uint64, size uint32) block {
	b := block{size: size, label: ms.labelAt(addr)}
	if ms.m.dispatch != nil && ms.m.onHotPage(addr) && ms.m.dispatch.isTrap(addr) {
		// The fetch is real (the call reaches the callee's page); the int3 is kemu's, not the
		// kernel's: the function runs in Go and counts no instructions.
		b.trap = true
		return b
	}
	code := make([]byte, size)
	if err := ms.m.ReadAt(code, addr); err != nil {
		ms.noteDecodeErr(fmt.Errorf("read block %#x+%d: %w", addr, size, err))
		return b
	}
	insns, err := ms.decoder.Disasm(code, addr, 0)
	if err != nil {
		ms.noteDecodeErr(fmt.Errorf("decode block %#x+%d: %w", addr, size, err))
	}
	b.insns = uint32(len(insns))
	return b
}

func (ms *Measurement) noteDecodeErr(err error) {
	if ms.decodeErr == nil {
		ms.decodeErr = err
	}
}

// labelAt attributes an address: module:symbol for module memory, vmlinux:symbol for the kernel
// image, untagged for anything else.
func (ms *Measurement) labelAt(addr uint64) int {
	var n tlb.TagName
	switch {
	case ms.m.registry != nil && ms.inModule(addr, &n):
	case ms.m.inImage(addr):
		n.Module = "vmlinux"
		if s, _, _, ok := ms.m.prof.SymbolAt(addr); ok {
			n.Symbol = s.Name
		}
	}
	return ms.label(n)
}

func (ms *Measurement) inModule(addr uint64, n *tlb.TagName) bool {
	mod, ok := ms.m.registry.ModuleAt(addr)
	if !ok {
		return false
	}
	n.Module = mod.Name
	if s, _, ok := mod.SymbolAt(addr); ok {
		n.Symbol = s.Name
	}
	return true
}

// label returns the label of a name, registering it with every model on first use.
func (ms *Measurement) label(n tlb.TagName) int {
	if l, ok := ms.labelOf[n]; ok {
		return l
	}
	l := len(ms.names)
	ms.names = append(ms.names, n)
	ms.labelOf[n] = l
	ms.insns = append(ms.insns, 0)
	for i, t := range ms.tlbs {
		tag := tlb.Untagged
		if n != (tlb.TagName{}) {
			tag = t.Tag(n.Module, n.Symbol)
		}
		ms.tags[i] = append(ms.tags[i], tag)
	}
	return l
}

// TLBs are the models, in the order Measure was given their configurations.
func (ms *Measurement) TLBs() []*tlb.TLB { return ms.tlbs }

// Traps is the number of calls into the emulated kernel while measuring.
func (ms *Measurement) Traps() uint64 { return ms.traps }

// Shootdowns are the TLB invalidations page-table changes caused while measuring.
func (ms *Measurement) Shootdowns() Shootdowns { return ms.shot }

// DecodeErr is the first block that could not be read or decoded for counting instructions (its
// instructions count as none), or nil.
func (ms *Measurement) DecodeErr() error { return ms.decodeErr }

// TagResult is what one module:symbol (or a total) cost under one model.
type TagResult struct {
	Module       string       `json:"module"`
	Symbol       string       `json:"symbol,omitempty"`
	Instructions uint64       `json:"instructions"`
	Counters     tlb.Counters `json:"counters"`
	Cycles       float64      `json:"cycles"` // estimated translation cycles, with the model's costs
}

// Name is "module:symbol", "module" or "(untagged)".
func (r TagResult) Name() string { return tlb.TagName{Module: r.Module, Symbol: r.Symbol}.String() }

// Fetches, DataAccesses: the accesses the model saw.
func (r TagResult) Fetches() uint64 { return r.Counters.Accesses[tlb.Fetch] }

func (r TagResult) DataAccesses() uint64 {
	return r.Counters.Accesses[tlb.Read] + r.Counters.Accesses[tlb.Write]
}

// ITLBMisses and DTLBMisses are first-level misses; STLBMisses are second-level misses (the
// unified STLB, or AMD's L2 iTLB and L2 dTLB), each one a page walk.
func (r TagResult) ITLBMisses() uint64 { return r.Counters.MissesIn(tlb.L1I) }
func (r TagResult) DTLBMisses() uint64 { return r.Counters.MissesIn(tlb.L1D) }
func (r TagResult) STLBMisses() uint64 {
	return r.Counters.MissesIn(tlb.L2) + r.Counters.MissesIn(tlb.L2I)
}

// PerKiloInstructions scales an event count to events per 1000 instructions run (0 with none).
func (r TagResult) PerKiloInstructions(events uint64) float64 {
	if r.Instructions == 0 {
		return 0
	}
	return 1000 * float64(events) / float64(r.Instructions)
}

// Result is one model's account of a measurement: per module:symbol, most costly first, and the
// total.
type Result struct {
	TLB   string      `json:"tlb"`
	Costs tlb.Costs   `json:"costs"`
	Tags  []TagResult `json:"tags"`
	Total TagResult   `json:"total"`
	Traps uint64      `json:"kernel_calls"`
	// Shootdowns are the flushes the model saw (the same for every model of a measurement).
	Shootdowns Shootdowns `json:"shootdowns"`
}

// Results are the models' accounts, in the order of their configurations.
func (ms *Measurement) Results() []Result {
	out := make([]Result, len(ms.tlbs))
	for i, t := range ms.tlbs {
		costs := t.Config().Costs
		r := Result{TLB: t.Config().Name, Costs: costs, Traps: ms.traps, Shootdowns: ms.shot}
		r.Total = TagResult{Module: "total"}
		for l, n := range ms.names {
			c := t.Counters(ms.tags[i][l])
			if c.TotalAccesses() == 0 && ms.insns[l] == 0 {
				continue
			}
			r.Tags = append(r.Tags, TagResult{Module: n.Module, Symbol: n.Symbol, Instructions: ms.insns[l],
				Counters: c, Cycles: c.Cycles(costs)})
			r.Total.Instructions += ms.insns[l]
		}
		r.Total.Counters = t.Total()
		r.Total.Cycles = r.Total.Counters.Cycles(costs)
		sortTagResults(r.Tags)
		out[i] = r
	}
	return out
}

// sortTagResults orders rows by estimated cycles, then name, so the costly code leads.
func sortTagResults(rows []TagResult) {
	less := func(a, b *TagResult) bool {
		if a.Cycles != b.Cycles {
			return a.Cycles > b.Cycles
		}
		return a.Name() < b.Name()
	}
	for i := 1; i < len(rows); i++ { // insertion sort: a few dozen rows, stable
		for j := i; j > 0 && less(&rows[j], &rows[j-1]); j-- {
			rows[j], rows[j-1] = rows[j-1], rows[j]
		}
	}
}

// ByModule is the result with the rows of each module merged into one (named by the module alone),
// most costly first.
func (r Result) ByModule() Result {
	out := r
	out.Tags = nil
	index := map[string]int{}
	for _, t := range r.Tags {
		i, ok := index[t.Module]
		if !ok {
			i = len(out.Tags)
			index[t.Module] = i
			out.Tags = append(out.Tags, TagResult{Module: t.Module})
		}
		row := &out.Tags[i]
		row.Instructions += t.Instructions
		row.Counters.Add(&t.Counters)
		row.Cycles += t.Cycles
	}
	sortTagResults(out.Tags)
	return out
}

// WriteText prints the result as a table, one row per module:symbol then the total, followed by
// the walks: their number per page size found and their paging-structure reads per level.
func (r *Result) WriteText(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "TLB model %s (costs: L2 hit %.0f, walk %.0f + %.0f per reference, cycles)\n",
		r.TLB, r.Costs.L2Hit, r.Costs.Walk, r.Costs.WalkRef)
	head := "module"
	for _, t := range r.Tags {
		if t.Symbol != "" {
			head = "module:symbol"
			break
		}
	}
	fmt.Fprintf(&b, "%-36s %10s %10s %10s %9s %9s %9s %8s %9s %9s %10s\n", head, "insns",
		"fetches", "data", "iTLB miss", "dTLB miss", "STLB miss", "walks", "walk refs", "iTLB MPKI", "cycles")
	row := func(t *TagResult) {
		fmt.Fprintf(&b, "%-36s %10d %10d %10d %9d %9d %9d %8d %9d %9.3f %10.0f\n", t.Name(), t.Instructions,
			t.Fetches(), t.DataAccesses(), t.ITLBMisses(), t.DTLBMisses(), t.STLBMisses(),
			t.Counters.TotalWalks(), t.Counters.TotalWalkRefs(), t.PerKiloInstructions(t.ITLBMisses()), t.Cycles)
	}
	for i := range r.Tags {
		row(&r.Tags[i])
	}
	row(&r.Total)
	c := &r.Total.Counters
	fmt.Fprintf(&b, "walks by page size: 4K %d, 2M %d, 1G %d; walk references by level: PML4E %d, PDPTE %d, PDE %d, PTE %d\n",
		c.Walks[tlb.Page4K], c.Walks[tlb.Page2M], c.Walks[tlb.Page1G],
		c.WalkRefs[tlb.LevelPML4E], c.WalkRefs[tlb.LevelPDPTE], c.WalkRefs[tlb.LevelPDE], c.WalkRefs[tlb.LevelPTE])
	fmt.Fprintf(&b, "per 1000 instructions: iTLB misses %.3f, dTLB misses %.3f, STLB misses %.3f, walk references %.3f; %d kernel calls\n",
		r.Total.PerKiloInstructions(r.Total.ITLBMisses()), r.Total.PerKiloInstructions(r.Total.DTLBMisses()),
		r.Total.PerKiloInstructions(r.Total.STLBMisses()), r.Total.PerKiloInstructions(c.TotalWalkRefs()), r.Traps)
	if sd := r.Shootdowns; sd != (Shootdowns{}) {
		fmt.Fprintf(&b, "TLB shootdowns from page-table changes: full flushes %d, single-page invalidations %d\n",
			sd.FullFlushes, sd.PageFlushes)
	}
	_, err := io.WriteString(w, b.String())
	return err
}
