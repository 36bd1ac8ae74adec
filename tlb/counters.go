package tlb

// Counters are the events of a stream of accesses. A first-level miss is
// counted under the page size of the translation that resolved it.
type Counters struct {
	Accesses [3]uint64 // by Kind
	Hits     [numStructures][numPageSizes]uint64
	Misses   [numStructures][numPageSizes]uint64
	Walks    [numPageSizes]uint64 // by the page size found
	// WalkRefs counts paging-structure reads by level (LevelPML4E..LevelPTE).
	WalkRefs [numLevels]uint64
	// CacheHits counts walks shortened by the PML4E, PDPTE or PDE cache
	// (the deepest one that hit).
	CacheHits [numLevels - 1]uint64
	// Faults counts accesses the walker could not translate.
	Faults uint64
}

// Add accumulates o into c.
func (c *Counters) Add(o *Counters) {
	for i := range c.Accesses {
		c.Accesses[i] += o.Accesses[i]
	}
	for s := range c.Hits {
		for z := range c.Hits[s] {
			c.Hits[s][z] += o.Hits[s][z]
			c.Misses[s][z] += o.Misses[s][z]
		}
	}
	for z := range c.Walks {
		c.Walks[z] += o.Walks[z]
	}
	for l := range c.WalkRefs {
		c.WalkRefs[l] += o.WalkRefs[l]
	}
	for l := range c.CacheHits {
		c.CacheHits[l] += o.CacheHits[l]
	}
	c.Faults += o.Faults
}

// TotalAccesses sums accesses of all kinds.
func (c *Counters) TotalAccesses() uint64 {
	return c.Accesses[Fetch] + c.Accesses[Read] + c.Accesses[Write]
}

// HitsIn sums the hits of one structure over page sizes.
func (c *Counters) HitsIn(s Structure) uint64 { return sum(c.Hits[s][:]) }

// MissesIn sums the misses of one structure over page sizes.
func (c *Counters) MissesIn(s Structure) uint64 { return sum(c.Misses[s][:]) }

// TotalWalks sums walks over page sizes.
func (c *Counters) TotalWalks() uint64 { return sum(c.Walks[:]) }

// TotalWalkRefs sums paging-structure reads over levels.
func (c *Counters) TotalWalkRefs() uint64 { return sum(c.WalkRefs[:]) }

// Cycles estimates the translation cycles the events cost under p: every
// first-level miss pays a second-level lookup, every walk its overhead and
// its reads. First-level hits are free, as they overlap the cache access.
func (c *Counters) Cycles(p Costs) float64 {
	l1Misses := c.MissesIn(L1I) + c.MissesIn(L1D)
	return float64(l1Misses)*p.L2Hit +
		float64(c.TotalWalks())*p.Walk +
		float64(c.TotalWalkRefs())*p.WalkRef
}

func sum(v []uint64) uint64 {
	var s uint64
	for _, x := range v {
		s += x
	}
	return s
}

// Counters returns the counters of one tag.
func (t *TLB) Counters(tag Tag) Counters {
	if int(tag) >= len(t.counters) {
		return Counters{}
	}
	return t.counters[tag]
}

// Total returns the counters summed over all tags.
func (t *TLB) Total() Counters {
	var total Counters
	for i := range t.counters {
		total.Add(&t.counters[i])
	}
	return total
}

// Cycles estimates the cost of everything counted so far with the
// configuration's latencies.
func (t *TLB) Cycles() float64 {
	total := t.Total()
	return total.Cycles(t.config.Costs)
}

// ResetCounters zeroes all counters, keeping the cached translations.
func (t *TLB) ResetCounters() {
	clear(t.counters)
}
