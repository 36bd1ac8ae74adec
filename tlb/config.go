package tlb

import (
	"errors"
	"fmt"
	"sort"
)

// Config is the geometry and cost parameters of a core's TLBs.
type Config struct {
	Name string
	// L1I and L1D are the first-level arrays, usually one per page size.
	L1I, L1D []ArrayConfig
	// L2 is the second level: unified (the STLB) unless L2I is set, in
	// which case it serves data only.
	L2 []ArrayConfig
	// L2I is a separate second-level instruction TLB (AMD), or nil.
	L2I []ArrayConfig
	// PML4E, PDPTE and PDE are the paging-structure caches; Entries 0
	// leaves one out. Their Sizes and Policy are ignored (LRU).
	PML4E, PDPTE, PDE ArrayConfig
	Costs             Costs
}

// Costs are the latencies, in core cycles, that turn counters into an
// estimated translation cost. They are model parameters, not measurements.
type Costs struct {
	// L2Hit is the latency of a second-level lookup, paid by every
	// first-level miss (a walk starts after the second level misses).
	L2Hit float64
	// Walk is the fixed overhead of a page walk besides its reads.
	Walk float64
	// WalkRef is the latency of one paging-structure read by the walker;
	// those reads usually hit the data caches.
	WalkRef float64
}

func (c Config) validate() error {
	if len(c.L1I) == 0 || len(c.L1D) == 0 || len(c.L2) == 0 {
		return errors.New("L1I, L1D and L2 need at least one array each")
	}
	levels := []struct {
		name   string
		arrays []ArrayConfig
	}{{"L1I", c.L1I}, {"L1D", c.L1D}, {"L2", c.L2}, {"L2I", c.L2I}}
	for _, l := range levels {
		if len(l.arrays) > maxLevelArrays {
			return fmt.Errorf("%s: %d arrays, at most %d", l.name, len(l.arrays), maxLevelArrays)
		}
		for i, a := range l.arrays {
			if err := a.validate(); err != nil {
				return fmt.Errorf("%s array %d: %w", l.name, i, err)
			}
		}
	}
	caches := []struct {
		name  string
		cache ArrayConfig
	}{{"PML4E", c.PML4E}, {"PDPTE", c.PDPTE}, {"PDE", c.PDE}}
	for _, pc := range caches {
		if pc.cache.Entries == 0 {
			continue
		}
		pc.cache.Sizes = Sizes4K // ignored: any valid set will do
		if err := pc.cache.validate(); err != nil {
			return fmt.Errorf("%s cache: %w", pc.name, err)
		}
	}
	return nil
}

// Paging-structure cache sizes are not documented by Intel or AMD. The
// presets assume small fully associative PML4E and PDPTE caches and a
// 32-entry PDE cache, in line with published reverse engineering of recent
// Intel cores; AMD documents a 16-entry page directory cache for Family 16h
// and a larger page walk cache since, taken here as 64 entries.
var (
	intelPML4E = ArrayConfig{Entries: 2, Ways: 2}
	intelPDPTE = ArrayConfig{Entries: 4, Ways: 4}
	intelPDE   = ArrayConfig{Entries: 32, Ways: 4}
	amdPML4E   = ArrayConfig{Entries: 4, Ways: 4}
	amdPDPTE   = ArrayConfig{Entries: 8, Ways: 8}
	amdPDE     = ArrayConfig{Entries: 64, Ways: 4}
)

// Skylake is a Skylake client core, from the Intel 64 and IA-32
// Architectures Optimization Reference Manual (Skylake microarchitecture,
// TLB parameters): iTLB 4K 128 entries 8-way, 2M 8 entries fully
// associative per thread; dTLB 4K 64 4-way, 2M 32 4-way, 1G 4 fully
// associative; STLB 1536 entries 12-way shared by 4K and 2M, 1G 16 4-way.
// The iTLB has no 1G entries: 1G code pages are held as 2M. The STLB hit
// latency of about 9 cycles is from the same manual's discussion of STLB
// misses; WalkRef assumes the walker's reads hit L1/L2 data caches.
func Skylake() Config {
	return Config{
		Name:  "skylake",
		L1I:   []ArrayConfig{Array(128, 8, Sizes4K), Array(8, 8, Sizes2M)},
		L1D:   []ArrayConfig{Array(64, 4, Sizes4K), Array(32, 4, Sizes2M), Array(4, 4, Sizes1G)},
		L2:    []ArrayConfig{Array(1536, 12, Sizes4K2M), Array(16, 4, Sizes1G)},
		PML4E: intelPML4E, PDPTE: intelPDPTE, PDE: intelPDE,
		Costs: Costs{L2Hit: 9, Walk: 10, WalkRef: 12},
	}
}

// GoldenCove is a Golden Cove (Alder Lake P-core, Sapphire Rapids) core,
// from the Intel optimization manual's Golden Cove TLB table: iTLB 4K 256
// entries 8-way, 2M 32 entries; dTLB (loads) 4K 96 6-way, 2M 32 4-way, 1G 8
// fully associative; STLB 2048 entries 16-way for all page sizes. Golden
// Cove can run four walks in parallel, which this serial model ignores.
func GoldenCove() Config {
	return Config{
		Name:  "goldencove",
		L1I:   []ArrayConfig{Array(256, 8, Sizes4K), Array(32, 32, Sizes2M)},
		L1D:   []ArrayConfig{Array(96, 6, Sizes4K), Array(32, 4, Sizes2M), Array(8, 8, Sizes1G)},
		L2:    []ArrayConfig{Array(2048, 16, SizesAll)},
		PML4E: intelPML4E, PDPTE: intelPDPTE, PDE: intelPDE,
		Costs: Costs{L2Hit: 8, Walk: 10, WalkRef: 12},
	}
}

// Zen2 is an AMD Zen 2 core, from AMD's Software Optimization Guide for
// Family 17h Models 30h and greater (pub. 56305): L1 iTLB 64 entries fully
// associative, all page sizes; L2 iTLB 512 entries 8-way (4K, 2M); L1 dTLB
// 64 entries fully associative, all page sizes; L2 dTLB 2048 entries 12-way
// (4K, 2M), where 1G pages are held as 2M entries. The L2 hit latency of 7
// cycles is from the same guide.
func Zen2() Config {
	return Config{
		Name:  "zen2",
		L1I:   []ArrayConfig{Array(64, 64, SizesAll)},
		L1D:   []ArrayConfig{Array(64, 64, SizesAll)},
		L2I:   []ArrayConfig{Array(512, 8, Sizes4K2M)},
		L2:    []ArrayConfig{Array(2048, 12, Sizes4K2M)},
		PML4E: amdPML4E, PDPTE: amdPDPTE, PDE: amdPDE,
		Costs: Costs{L2Hit: 7, Walk: 10, WalkRef: 12},
	}
}

// WithPolicy returns c with every TLB array using policy p (the
// paging-structure caches keep LRU).
func WithPolicy(c Config, p Replacement) Config {
	for _, arrays := range []*[]ArrayConfig{&c.L1I, &c.L1D, &c.L2, &c.L2I} {
		set := append([]ArrayConfig(nil), (*arrays)...)
		for i := range set {
			set[i].Policy = p
		}
		if *arrays != nil {
			*arrays = set
		}
	}
	return c
}

var presets = map[string]func() Config{
	"skylake":    Skylake,
	"goldencove": GoldenCove,
	"zen2":       Zen2,
}

// Preset returns the named preset: skylake, goldencove or zen2.
func Preset(name string) (Config, error) {
	p, ok := presets[name]
	if !ok {
		return Config{}, fmt.Errorf("unknown TLB preset %q (have %v)", name, PresetNames())
	}
	return p(), nil
}

// PresetNames lists the presets, sorted.
func PresetNames() []string {
	names := make([]string, 0, len(presets))
	for n := range presets {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}
