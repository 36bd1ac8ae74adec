package tlb

import (
	"errors"
	"fmt"
	"math/bits"
)

// Replacement is how an array picks the entry a fill replaces, when its set
// has no free way.
type Replacement uint8

const (
	// LRU replaces the least recently used entry of the set.
	LRU Replacement = iota
	// BitPLRU is the one-bit pseudo-LRU (also called MRU bits or NRU), a
	// common hardware approximation of LRU: a use sets the entry's bit,
	// clearing the others' once all are set, and a fill replaces the first
	// entry whose bit is clear.
	BitPLRU
)

func (r Replacement) String() string {
	switch r {
	case LRU:
		return "LRU"
	case BitPLRU:
		return "BitPLRU"
	}
	return fmt.Sprintf("Replacement(%d)", r)
}

// ArrayConfig is the geometry of one set-associative array.
type ArrayConfig struct {
	Entries int
	Ways    int   // Ways == Entries: fully associative
	Sizes   Sizes // page sizes it holds; others are fractured or skipped
	Policy  Replacement
}

// Array is an LRU array of entries in sets of ways, holding sizes.
func Array(entries, ways int, sizes Sizes) ArrayConfig {
	return ArrayConfig{Entries: entries, Ways: ways, Sizes: sizes}
}

func (c ArrayConfig) validate() error {
	switch {
	case c.Entries <= 0 || c.Ways <= 0:
		return fmt.Errorf("entries %d, ways %d: both must be positive", c.Entries, c.Ways)
	case c.Ways > c.Entries:
		return fmt.Errorf("%d ways exceed %d entries", c.Ways, c.Entries)
	case c.Entries > maxEntries:
		return fmt.Errorf("%d entries: at most %d", c.Entries, maxEntries)
	case c.Sizes == 0 || c.Sizes&^SizesAll != 0:
		return errors.New("no valid page sizes")
	case c.Policy > BitPLRU:
		return fmt.Errorf("unknown replacement policy %d", c.Policy)
	}
	return nil
}

// maxEntries bounds an array's size: real TLBs have thousands of entries.
const maxEntries = 1 << 20

// validKey marks an entry in use; keys are granule number << 2 | granule code.
const validKey = 1 << 63

// entry is one cached translation (or paging-structure entry); its key is
// kept apart, in array.keys, so that a lookup scans a set's keys in one or
// two cache lines.
type entry struct {
	stamp   uint64 // last use, for LRU
	key     uint64 // a copy of the slot's key, so that a hinted hit reads one slot: see hint
	frame   uint64
	offMask uint64   // held.Bytes()-1, the offset bits phys keeps: precomputed for the hit path
	size    PageSize // the translation's own page size, for counters
	held    PageSize // the size the entry covers (smaller if fractured)
	global  bool
	recent  bool // the BitPLRU bit
}

// phys translates va with a TLB entry that covers it.
func (e *entry) phys(va uint64) uint64 {
	return e.frame | va&e.offMask
}

// granule is a span one entry of an array covers: a page size for TLB
// arrays, the region below one non-leaf entry for paging-structure caches.
type granule struct {
	shift uint
	code  uint8
}

// array is a set-associative array with true LRU replacement. Entries count
// sets*ways: a geometry whose entries are not a multiple of the ways (AMD's
// 2048-entry 12-way L2) loses the remainder.
type array struct {
	ways    int
	sets    uint64
	setMask uint64 // sets-1 when sets is a power of two
	pow2    bool
	// granules are the spans probed, smallest first: kept in the struct
	// rather than behind a slice, to save a dependent load per lookup.
	granules  [numPageSizes]granule
	nGranules int
	// fast says TLB.Access may probe the first granule through its hints:
	// the array has a granule. Tests clear it to compare with find.
	fast    bool
	shift0  uint   // granules[0].shift
	key0    uint64 // validKey | granules[0].code: a key without its granule number
	holds   Sizes  // page sizes held, for TLB arrays
	policy  Replacement
	keys    []uint64 // by slot: validKey | granule number << 2 | code, or 0
	entries []entry  // by slot
}

func newArray(entries, ways int, granules []granule) array {
	sets := uint64(entries / ways)
	a := array{
		ways:    ways,
		sets:    sets,
		setMask: sets - 1,
		pow2:    bits.OnesCount64(sets) == 1,
		keys:    make([]uint64, int(sets)*ways),
		entries: make([]entry, int(sets)*ways),
	}
	a.nGranules = copy(a.granules[:], granules)
	a.fast = a.nGranules > 0
	if a.fast {
		a.shift0 = a.granules[0].shift
		a.key0 = validKey | uint64(a.granules[0].code)
	}
	return a
}

// newTLBArray builds an array holding the page sizes of c.
func newTLBArray(c ArrayConfig) array {
	var gs []granule
	for s := Page4K; s < numPageSizes; s++ {
		if c.Sizes.Has(s) {
			gs = append(gs, granule{shift: s.Shift(), code: uint8(s)})
		}
	}
	a := newArray(c.Entries, c.Ways, gs)
	a.holds = c.Sizes
	a.policy = c.Policy
	return a
}

// set returns the first slot and the keys of the set a granule number maps to.
func (a *array) set(n uint64) (int, []uint64) {
	i := n & a.setMask
	if !a.pow2 {
		i = n % a.sets
	}
	base := int(i) * a.ways
	return base, a.keys[base : base+a.ways : base+a.ways]
}

// find returns the first of arrays with an entry covering va, and that
// entry's slot; slot is -1 if none has one. A granule number has at most one
// entry in an array. Every lookup goes through this one function: the hit
// path of the whole model.
func find(arrays []array, va uint64) (a *array, slot int) {
	for ai := range arrays {
		a = &arrays[ai]
		for _, g := range a.granules[:a.nGranules] {
			n := va >> g.shift
			key := validKey | n<<2 | uint64(g.code)
			base, keys := a.set(n)
			for i, k := range keys {
				if k == key {
					return a, base + i
				}
			}
		}
	}
	return nil, -1
}

// lookup finds the entry covering va in arrays and marks it used at stamp.
func lookup(arrays []array, va, stamp uint64) *entry {
	a, slot := find(arrays, va)
	if slot < 0 {
		return nil
	}
	a.touch(slot, stamp)
	return &a.entries[slot]
}

// touch records a use of the entry in slot for the replacement policy.
func (a *array) touch(slot int, stamp uint64) {
	if a.policy == LRU {
		a.entries[slot].stamp = stamp
		return
	}
	a.touchPLRU(slot)
}

// touchPLRU sets the entry's BitPLRU bit, and clears the others in its set
// once all are set.
func (a *array) touchPLRU(slot int) {
	a.entries[slot].recent = true
	base := slot - slot%a.ways
	set := a.entries[base : base+a.ways]
	for i := range set {
		if !set[i].recent {
			return
		}
	}
	for i := range set {
		set[i].recent = base+i == slot
	}
}

// fill stores an entry for the granule of g containing va, in a free way or
// in place of the one the replacement policy picks.
func (a *array) fill(va uint64, g granule, e entry) {
	n := va >> g.shift
	base, keys := a.set(n)
	set := a.entries[base : base+len(keys)]
	victim := -1
	for i, k := range keys {
		if k == 0 {
			victim = i
			break
		}
	}
	if victim < 0 {
		victim = 0
		for i := range set {
			if a.policy == BitPLRU && !set[i].recent {
				victim = i
				break
			}
			if a.policy == LRU && set[i].stamp < set[victim].stamp {
				victim = i
			}
		}
	}
	keys[victim] = validKey | n<<2 | uint64(g.code)
	e.key = keys[victim]
	set[victim] = e
	a.touch(base+victim, e.stamp)
}

// largestHeld is the largest page size the array holds that is not larger
// than size: the pieces a translation of that size is stored as.
func (a *array) largestHeld(size PageSize) (PageSize, bool) {
	for s := int(size); s >= int(Page4K); s-- {
		if a.holds.Has(PageSize(s)) {
			return PageSize(s), true
		}
	}
	return 0, false
}

// fillTranslation stores tr for va, fractured if the array does not hold
// tr's page size; orig is the page size the walk found, kept for counters.
func (a *array) fillTranslation(va uint64, tr Translation, orig PageSize, stamp uint64) {
	held, ok := a.largestHeld(tr.Size)
	if !ok {
		return
	}
	frame := tr.Frame + (va&(tr.Size.Bytes()-1))&^(held.Bytes()-1)
	a.fill(va, granule{shift: held.Shift(), code: uint8(held)},
		entry{stamp: stamp, frame: frame, offMask: held.Bytes() - 1, size: orig, held: held, global: tr.Global})
}

// invalidate drops every entry covering va in arrays: one per page size
// an array holds.
func invalidate(arrays []array, va uint64) {
	for i := range arrays {
		for {
			a, slot := find(arrays[i:i+1], va)
			if slot < 0 {
				break
			}
			a.keys[slot] = 0
			a.entries[slot] = entry{}
		}
	}
}

// flush drops all entries, or all but global ones.
func (a *array) flush(keepGlobal bool) {
	for i := range a.entries {
		if !keepGlobal || !a.entries[i].global {
			a.keys[i] = 0
			a.entries[i] = entry{}
		}
	}
}
