package tlb

import (
	"fmt"
	"strings"
)

// Report renders the counters per tag as a table: accesses, first- and
// second-level misses, walks and their reads, misses per thousand accesses,
// and estimated cycles with the configuration's costs. Tags with no
// accesses are left out; the last row is the total.
func (t *TLB) Report() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%-32s %12s %10s %10s %10s %10s %8s %12s\n",
		"tag", "accesses", "L1I miss", "L1D miss", "L2 miss", "walk refs", "L1 MPKA", "cycles")
	row := func(name string, c *Counters) {
		l1 := c.MissesIn(L1I) + c.MissesIn(L1D)
		l2 := c.MissesIn(L2) + c.MissesIn(L2I)
		mpka := 0.0
		if n := c.TotalAccesses(); n > 0 {
			mpka = 1000 * float64(l1) / float64(n)
		}
		fmt.Fprintf(&b, "%-32s %12d %10d %10d %10d %10d %8.2f %12.0f\n", name, c.TotalAccesses(),
			c.MissesIn(L1I), c.MissesIn(L1D), l2, c.TotalWalkRefs(), mpka, c.Cycles(t.config.Costs))
	}
	for i := range t.counters {
		c := &t.counters[i]
		if c.TotalAccesses() == 0 {
			continue
		}
		row(t.names[i].String(), c)
	}
	total := t.Total()
	row("total", &total)
	return b.String()
}

// String is "module:symbol", "module", or "(untagged)".
func (n TagName) String() string {
	switch {
	case n.Module == "" && n.Symbol == "":
		return "(untagged)"
	case n.Symbol == "":
		return n.Module
	}
	return n.Module + ":" + n.Symbol
}
