package tlb

import (
	"fmt"
)

// Structure names a TLB level, for counters.
type Structure uint8

// TLB structures. L2I exists only in configurations with a separate
// second-level instruction TLB; otherwise fetches that miss L1I use L2.
const (
	L1I Structure = iota
	L1D
	L2I
	L2
	numStructures
)

func (s Structure) String() string {
	if s >= numStructures {
		return fmt.Sprintf("Structure(%d)", s)
	}
	return [...]string{"L1I", "L1D", "L2I", "L2"}[s]
}

// Paging levels a walk reads, top first.
const (
	LevelPML4E = iota
	LevelPDPTE
	LevelPDE
	LevelPTE
	numLevels
)

// levelShift is the address shift below which one entry of a level maps.
var levelShift = [numLevels]uint{39, 30, 21, 12}

// Where says which structure satisfied an access.
type Where uint8

// Outcomes of an access.
const (
	HitL1 Where = iota
	HitL2
	Walked
)

// Outcome is what one access cost.
type Outcome struct {
	Where    Where
	Size     PageSize // of the translation used
	Phys     uint64   // the physical address va translates to
	WalkRefs int      // paging-structure reads, when Where is Walked
}

// maxLevelArrays bounds the arrays of a level; CPUs have one per page size.
const maxLevelArrays = 4

// level is a set of arrays looked up together. The arrays live in the
// struct, not behind a slice, to save a dependent load per lookup.
type level struct {
	id      Structure
	nArrays int
	inline  [maxLevelArrays]array
	hints   [hintsPerSide]hint // for TLB.Access, on first levels only
}

func newLevel(id Structure, configs []ArrayConfig) *level {
	l := &level{id: id}
	for _, c := range configs {
		l.inline[l.nArrays] = newTLBArray(c)
		l.nArrays++
	}
	return l
}

// arrays are the level's arrays, in lookup order.
func (l *level) arrays() []array { return l.inline[:l.nArrays] }

// lookup finds the entry covering va in any of the arrays and marks it
// used at stamp.
func (l *level) lookup(va, stamp uint64) *entry {
	return lookup(l.arrays(), va, stamp)
}

// lookupHinted is lookup for a first level: an entry found in the first
// array's smallest page size is remembered in the hints, for Access.
func (l *level) lookupHinted(va, stamp uint64) *entry {
	arrays := l.arrays()
	a, slot := find(arrays, va)
	if slot < 0 {
		return nil
	}
	if first := &arrays[0]; a == first && first.fast && first.keys[slot]&3 == first.key0&3 {
		l.hints[va>>hintShift%hintsPerSide] = hint{key: first.keys[slot], slot: slot}
	}
	a.touch(slot, stamp)
	return &a.entries[slot]
}

// fill stores tr in the one array that holds it best: the array of its page
// size, or else the one that fractures it into the largest pieces.
func (l *level) fill(va uint64, tr Translation, orig PageSize, stamp uint64) {
	var best *array
	var bestSize PageSize
	arrays := l.arrays()
	for i := range arrays {
		size, ok := arrays[i].largestHeld(tr.Size)
		if ok && (best == nil || size > bestSize) {
			best, bestSize = &arrays[i], size
		}
	}
	if best != nil {
		best.fillTranslation(va, tr, orig, stamp)
	}
}

func (l *level) invalidate(va uint64) { invalidate(l.arrays(), va) }

func (l *level) flush(keepGlobal bool) {
	arrays := l.arrays()
	for i := range arrays {
		arrays[i].flush(keepGlobal)
	}
}

// Tag identifies what an access is attributed to; Untagged is 0.
type Tag uint32

// Untagged is the tag of accesses attributed to nothing in particular.
const Untagged Tag = 0

// TagName is what a tag stands for.
type TagName struct {
	Module string
	Symbol string
}

// TLB is the translation hardware of one core. It is not safe for
// concurrent use.
type TLB struct {
	config Config
	walker Walker
	l1     [2]level               // by side: instruction, data; inline for the hit path
	l2     [2]*level              // the same level twice when the L2 is unified
	psc    [numLevels - 1][]array // PML4E, PDPTE and PDE caches: one array, or none
	stamp  uint64

	counters []Counters // by tag
	tags     map[TagName]Tag
	names    []TagName
}

// hint remembers the slot of the first first-level array where the entry
// for a page of its smallest size was last found. It is only a guess, checked
// against the slot's key (the entry's copy of it, on the same cache line as
// what a hit reads next) before use: fills, invalidations and flushes need
// not know about hints. Hints are direct-mapped by 4K page number, so a hit
// costs one compare instead of a scan of the set's ways.
type hint struct {
	key  uint64 // the entry's key; 0 matches no key
	slot int
}

// hintsPerSide is the number of hints per side: a power of two, at least
// the entries of a typical first-level array, so that pages cycling through
// one rarely evict each other's hints.
const (
	hintsPerSide = 256
	hintShift    = 12
)

// Sides of the first two levels. A first-level side is also that level's
// Structure, which the hit path uses to index counters.
const (
	sideInstruction = int(L1I)
	sideData        = int(L1D)
)

// New builds a TLB with geometry c whose misses are resolved by walker.
func New(c Config, walker Walker) (*TLB, error) {
	if err := c.validate(); err != nil {
		return nil, fmt.Errorf("tlb config %q: %w", c.Name, err)
	}
	if walker == nil {
		return nil, fmt.Errorf("tlb config %q: no walker", c.Name)
	}
	t := &TLB{
		config:   c,
		walker:   walker,
		counters: make([]Counters, 1),
		tags:     map[TagName]Tag{{}: Untagged},
		names:    []TagName{{}},
	}
	t.l1[sideInstruction] = *newLevel(L1I, c.L1I)
	t.l1[sideData] = *newLevel(L1D, c.L1D)
	t.l2[sideData] = newLevel(L2, c.L2)
	t.l2[sideInstruction] = t.l2[sideData]
	if len(c.L2I) > 0 {
		t.l2[sideInstruction] = newLevel(L2I, c.L2I)
	}
	for lvl, pc := range []ArrayConfig{c.PML4E, c.PDPTE, c.PDE} {
		if pc.Entries > 0 {
			t.psc[lvl] = []array{newArray(pc.Entries, pc.Ways, []granule{{shift: levelShift[lvl]}})}
		}
	}
	return t, nil
}

// Config returns the configuration the TLB was built with.
func (t *TLB) Config() Config { return t.config }

// Tag returns the tag for module and symbol, registering it on first use.
func (t *TLB) Tag(module, symbol string) Tag {
	name := TagName{Module: module, Symbol: symbol}
	if tag, ok := t.tags[name]; ok {
		return tag
	}
	tag := Tag(len(t.names))
	t.tags[name] = tag
	t.names = append(t.names, name)
	t.counters = append(t.counters, Counters{})
	return tag
}

// Tags lists the registered tags, Untagged first.
func (t *TLB) Tags() []TagName { return append([]TagName(nil), t.names...) }

// Access translates va for an access of kind attributed to tag. An error
// means the walker found no translation (a page fault); nothing is cached.
//
// Access is the hot path of every measurement, so the common case, a hit in
// the smallest page size of the first first-level array, is written out here
// as straight-line code with no calls: a hint (see hints) names the slot to
// check, and when it is stale one set is scanned. Either way the entry is
// the one find would return, since find probes that array and page size
// first and a page has at most one entry in an array.
func (t *TLB) Access(va uint64, kind Kind, tag Tag) (Outcome, error) {
	counters := t.counters // a local, so that the stores below cannot change it
	if int(tag) >= len(counters) || kind > Write {
		return Outcome{}, t.badAccess(va, kind, tag)
	}
	t.stamp++
	c := &counters[tag]
	c.Accesses[kind]++
	side := sideData
	if kind == Fetch {
		side = sideInstruction
	}
	l1 := &t.l1[side]
	if a := &l1.inline[0]; a.fast {
		key := a.key0 | va>>(a.shift0&63)<<2 // &63 spares the compiler handling shifts past 63
		h := &l1.hints[va>>hintShift%hintsPerSide]
		if slot := h.slot; h.key == key && uint(slot) < uint(len(a.entries)) && a.entries[slot].key == key {
			e := &a.entries[slot]
			if a.policy == LRU {
				e.stamp = t.stamp
			} else {
				a.touchPLRU(slot)
			}
			c.Hits[side][e.size]++ // the first level's Structure is its side
			return Outcome{Where: HitL1, Size: e.size, Phys: e.phys(va)}, nil
		}
	}
	return t.access(va, side, c)
}

func (t *TLB) badAccess(va uint64, kind Kind, tag Tag) error {
	if int(tag) >= len(t.counters) {
		return fmt.Errorf("access %#x: unknown tag %d", va, tag)
	}
	return fmt.Errorf("access %#x: unknown kind %d", va, kind)
}

// access is Access past its hint: the first level searched in full, then
// the second level and the walker.
func (t *TLB) access(va uint64, side int, c *Counters) (Outcome, error) {
	l1 := &t.l1[side]
	if e := l1.lookupHinted(va, t.stamp); e != nil {
		c.Hits[l1.id][e.size]++
		return Outcome{Where: HitL1, Size: e.size, Phys: e.phys(va)}, nil
	}
	return t.miss(va, side, c)
}

// miss resolves a first-level miss from the second level or a walk.
func (t *TLB) miss(va uint64, side int, c *Counters) (Outcome, error) {
	l1, l2 := &t.l1[side], t.l2[side]
	if e := l2.lookup(va, t.stamp); e != nil {
		c.Misses[l1.id][e.size]++
		c.Hits[l2.id][e.size]++
		held := Translation{Size: e.held, Frame: e.frame, Global: e.global}
		l1.fill(va, held, e.size, t.stamp)
		return Outcome{Where: HitL2, Size: e.size, Phys: e.phys(va)}, nil
	}

	tr, err := t.walker.Walk(va)
	if err != nil {
		c.Faults++
		return Outcome{}, fmt.Errorf("page walk for %#x: %w", va, err)
	}
	if tr.Size >= numPageSizes {
		c.Faults++
		return Outcome{}, fmt.Errorf("page walk for %#x: invalid page size %d", va, tr.Size)
	}
	tr.Frame &^= tr.Size.Bytes() - 1
	c.Misses[l1.id][tr.Size]++
	c.Misses[l2.id][tr.Size]++
	c.Walks[tr.Size]++
	refs := t.walk(va, tr.Size, c)
	l2.fill(va, tr, tr.Size, t.stamp)
	l1.fill(va, tr, tr.Size, t.stamp)
	phys := tr.Frame | va&(tr.Size.Bytes()-1)
	return Outcome{Where: Walked, Size: tr.Size, Phys: phys, WalkRefs: refs}, nil
}

// walk counts the paging-structure reads of a walk to a page of size,
// starting below the deepest paging-structure cache hit, and caches the
// non-leaf entries it read.
func (t *TLB) walk(va uint64, size PageSize, c *Counters) int {
	leaf := LevelPTE - int(size)
	start := LevelPML4E
	for lvl := leaf - 1; lvl >= LevelPML4E; lvl-- {
		if lookup(t.psc[lvl], va, t.stamp) != nil {
			c.CacheHits[lvl]++
			start = lvl + 1
			break
		}
	}
	for lvl := start; lvl <= leaf; lvl++ {
		c.WalkRefs[lvl]++
		if lvl < leaf && t.psc[lvl] != nil {
			p := &t.psc[lvl][0]
			p.fill(va, p.granules[0], entry{stamp: t.stamp})
		}
	}
	return leaf - start + 1
}

// AccessRange accesses every page that [va, va+n) touches, as an
// instruction fetch of a basic block does; it stops at the first fault.
func (t *TLB) AccessRange(va, n uint64, kind Kind, tag Tag) error {
	if n == 0 {
		return nil
	}
	last := va + n - 1
	if last < va {
		last = ^uint64(0)
	}
	for p := va; ; {
		out, err := t.Access(p, kind, tag)
		if err != nil {
			return err
		}
		next := (p | (out.Size.Bytes() - 1)) + 1
		if next == 0 || next > last {
			return nil
		}
		p = next
	}
}

// Flush is a CR3 write without PCIDs: non-global entries and all
// paging-structure caches go.
func (t *TLB) Flush() { t.flush(true) }

// FlushAll is toggling CR4.PGE: every entry goes, global ones too.
func (t *TLB) FlushAll() { t.flush(false) }

func (t *TLB) flush(keepGlobal bool) {
	for side := range t.l1 {
		t.l1[side].flush(keepGlobal)
		t.l2[side].flush(keepGlobal)
	}
	t.flushCaches()
}

// Invlpg drops the translations of the page containing va, global or not,
// in every page size, and all paging-structure caches (SDM §4.10.4.1).
func (t *TLB) Invlpg(va uint64) {
	for side := range t.l1 {
		t.l1[side].invalidate(va)
		t.l2[side].invalidate(va)
	}
	t.flushCaches()
}

func (t *TLB) flushCaches() {
	for _, p := range t.psc {
		for i := range p {
			p[i].flush(false)
		}
	}
}
