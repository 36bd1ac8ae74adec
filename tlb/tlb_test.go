package tlb

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// pageTable is a fake walker: regions of one page size, identity-offset to
// physical memory at +1 GiB, and a set of global pages.
type pageTable struct {
	huge   map[uint64]PageSize // region base -> size, for 2M and 1G pages
	global map[uint64]bool     // 4K page base -> G bit
	walks  int
}

var errNotMapped = errors.New("not mapped")

const physOffset = 1 << 30

func (p *pageTable) Walk(va uint64) (Translation, error) {
	p.walks++
	if va >= 0x7000_0000_0000 && va < 0xffff_8000_0000_0000 {
		return Translation{}, errNotMapped
	}
	for _, size := range []PageSize{Page1G, Page2M} {
		base := va &^ (size.Bytes() - 1)
		if p.huge[base] == size {
			return Translation{Size: size, Frame: base + physOffset}, nil
		}
	}
	base := va &^ 0xfff
	return Translation{Size: Page4K, Frame: base + physOffset, Global: p.global[base]}, nil
}

// tiny is a small geometry with no paging-structure caches unless added.
func tiny(l1d []ArrayConfig, l2 []ArrayConfig) Config {
	return Config{
		Name: "tiny",
		L1I:  []ArrayConfig{Array(2, 2, SizesAll)},
		L1D:  l1d,
		L2:   l2,
	}
}

func newTLB(t *testing.T, c Config, pt *pageTable) *TLB {
	t.Helper()
	if pt.huge == nil {
		pt.huge = map[uint64]PageSize{}
	}
	tl, err := New(c, pt)
	require.NoError(t, err)
	return tl
}

// run reads each address and returns where each access was satisfied.
func run(t *testing.T, tl *TLB, kind Kind, vas ...uint64) []Where {
	t.Helper()
	var got []Where
	for _, va := range vas {
		out, err := tl.Access(va, kind, Untagged)
		require.NoError(t, err)
		got = append(got, out.Where)
	}
	return got
}

func TestLRUOrder(t *testing.T) {
	// One set of two ways in L1D, an eight-entry L2 behind it.
	tl := newTLB(t, tiny([]ArrayConfig{Array(2, 2, Sizes4K)}, []ArrayConfig{Array(8, 8, SizesAll)}), &pageTable{})
	const a, b, c = 0x1000, 0x2000, 0x3000
	got := run(t, tl, Read, a, b, a, c, b, a)
	// c evicts b (a was used more recently), b then evicts a, a evicts c.
	assert.Equal(t, []Where{Walked, Walked, HitL1, Walked, HitL2, HitL2}, got)
	total := tl.Total()
	assert.Equal(t, uint64(1), total.HitsIn(L1D))
	assert.Equal(t, uint64(5), total.MissesIn(L1D))
	assert.Equal(t, uint64(2), total.HitsIn(L2))
	assert.Equal(t, uint64(3), total.MissesIn(L2))
	assert.Equal(t, uint64(3), total.TotalWalks())
	assert.Equal(t, uint64(12), total.TotalWalkRefs(), "no paging-structure caches: 4 reads a walk")
	assert.Equal(t, uint64(6), total.Accesses[Read])
	// 5 L1 misses * 10 + 3 walks * 5 + 12 reads * 2.
	assert.InDelta(t, 89.0, total.Cycles(Costs{L2Hit: 10, Walk: 5, WalkRef: 2}), 1e-9)
}

func TestSetIndexing(t *testing.T) {
	// Two sets of one way: pages 1 and 3 share set 1, page 2 is in set 0.
	tl := newTLB(t, tiny([]ArrayConfig{Array(2, 1, Sizes4K)}, []ArrayConfig{Array(1, 1, Sizes4K)}), &pageTable{})
	got := run(t, tl, Read, 0x1000, 0x2000, 0x1000, 0x3000, 0x2000, 0x1000)
	assert.Equal(t, []Where{Walked, Walked, HitL1, Walked, HitL1, Walked}, got)
}

func TestNonPowerOfTwoSets(t *testing.T) {
	// Three sets of one way: pages 0 and 3 conflict, 1 and 2 do not.
	tl := newTLB(t, tiny([]ArrayConfig{Array(3, 1, Sizes4K)}, []ArrayConfig{Array(1, 1, Sizes4K)}), &pageTable{})
	got := run(t, tl, Read, 0x0000, 0x1000, 0x2000, 0x3000, 0x1000, 0x2000, 0x0000)
	assert.Equal(t, []Where{Walked, Walked, Walked, Walked, HitL1, HitL1, Walked}, got)
}

func TestFetchesUseTheInstructionSide(t *testing.T) {
	tl := newTLB(t, tiny([]ArrayConfig{Array(2, 2, Sizes4K)}, []ArrayConfig{Array(8, 8, SizesAll)}), &pageTable{})
	assert.Equal(t, []Where{Walked, HitL2, HitL1, HitL1}, []Where{
		run(t, tl, Fetch, 0x1000)[0], run(t, tl, Read, 0x1000)[0],
		run(t, tl, Fetch, 0x1000)[0], run(t, tl, Write, 0x1000)[0]})
	c := tl.Total()
	assert.Equal(t, uint64(2), c.HitsIn(L1I)+c.MissesIn(L1I))
	assert.Equal(t, uint64(1), c.HitsIn(L1I))
	assert.Equal(t, uint64(1), c.HitsIn(L1D))
}

func TestSeparateL2I(t *testing.T) {
	c := tiny([]ArrayConfig{Array(1, 1, Sizes4K)}, []ArrayConfig{Array(4, 4, SizesAll)})
	c.L1I = []ArrayConfig{Array(1, 1, Sizes4K)}
	c.L2I = []ArrayConfig{Array(4, 4, SizesAll)}
	tl := newTLB(t, c, &pageTable{})
	// The data walk does not fill the instruction side's L2.
	got := run(t, tl, Read, 0x1000, 0x2000)
	got = append(got, run(t, tl, Fetch, 0x1000, 0x2000, 0x1000)...)
	assert.Equal(t, []Where{Walked, Walked, Walked, Walked, HitL2}, got)
	total := tl.Total()
	assert.Equal(t, uint64(1), total.HitsIn(L2I))
	assert.Equal(t, uint64(2), total.MissesIn(L2I))
	assert.Equal(t, uint64(2), total.MissesIn(L2))
}

func TestPagingStructureCaches(t *testing.T) {
	c := tiny([]ArrayConfig{Array(1, 1, SizesAll)}, []ArrayConfig{Array(1, 1, SizesAll)})
	c.PML4E = ArrayConfig{Entries: 1, Ways: 1}
	c.PDPTE = ArrayConfig{Entries: 1, Ways: 1}
	c.PDE = ArrayConfig{Entries: 1, Ways: 1}
	tl := newTLB(t, c, &pageTable{})
	vas := []uint64{
		0x1000,         // cold: PML4E, PDPTE, PDE, PTE
		0x2000,         // same page table: PDE cache hit, PTE only
		0x20_0000,      // next 2M: PDPTE cache hit, PDE and PTE
		0x4000_0000,    // next 1G: PML4E cache hit, PDPTE, PDE, PTE
		0x80_0000_0000, // next 512G: cold again
	}
	var refs []int
	for _, va := range vas {
		out, err := tl.Access(va, Read, Untagged)
		require.NoError(t, err)
		require.Equal(t, Walked, out.Where)
		refs = append(refs, out.WalkRefs)
	}
	assert.Equal(t, []int{4, 1, 2, 3, 4}, refs)
	total := tl.Total()
	assert.Equal(t, [4]uint64{2, 3, 4, 5}, total.WalkRefs)
	assert.Equal(t, [3]uint64{1, 1, 1}, total.CacheHits)
}

func TestHugePages(t *testing.T) {
	pt := &pageTable{huge: map[uint64]PageSize{0x4000_0000: Page1G, 0x20_0000: Page2M}}
	c := tiny([]ArrayConfig{Array(1, 1, Sizes4K), Array(2, 2, Sizes2M)}, []ArrayConfig{Array(4, 4, Sizes4K2M)})
	c.PDPTE = ArrayConfig{Entries: 1, Ways: 1}
	tl := newTLB(t, c, pt)

	// A 2M page: one entry covers it, and 4K entries do not evict it.
	out, err := tl.Access(0x20_0000, Read, Untagged)
	require.NoError(t, err)
	assert.Equal(t, Outcome{Where: Walked, Size: Page2M, Phys: physOffset + 0x20_0000, WalkRefs: 3}, out)
	run(t, tl, Read, 0x1000)
	out, err = tl.Access(0x3f_f123, Read, Untagged)
	require.NoError(t, err)
	assert.Equal(t, Outcome{Where: HitL1, Size: Page2M, Phys: physOffset + 0x3f_f123}, out)

	// A 1G page is held as 2M pieces: another piece needs another walk,
	// shortened by the PDPTE cache to the PDE read.
	out, err = tl.Access(0x4000_1000, Read, Untagged)
	require.NoError(t, err)
	assert.Equal(t, Walked, out.Where)
	out, err = tl.Access(0x401f_f000, Read, Untagged)
	require.NoError(t, err)
	assert.Equal(t, Outcome{Where: HitL1, Size: Page1G, Phys: physOffset + 0x401f_f000}, out)
	out, err = tl.Access(0x4020_0000, Read, Untagged)
	require.NoError(t, err)
	assert.Equal(t, Outcome{Where: Walked, Size: Page1G, Phys: physOffset + 0x4020_0000, WalkRefs: 2}, out)

	total := tl.Total()
	assert.Equal(t, uint64(1), total.Hits[L1D][Page2M])
	assert.Equal(t, uint64(1), total.Hits[L1D][Page1G])
	assert.Equal(t, uint64(2), total.Walks[Page1G])
}

func TestFlushKeepsGlobalEntries(t *testing.T) {
	pt := &pageTable{global: map[uint64]bool{0x1000: true}}
	tl := newTLB(t, tiny([]ArrayConfig{Array(4, 4, Sizes4K)}, []ArrayConfig{Array(4, 4, Sizes4K)}), pt)
	run(t, tl, Read, 0x1000, 0x2000)
	tl.Flush()
	assert.Equal(t, []Where{HitL1, Walked}, run(t, tl, Read, 0x1000, 0x2000))
	tl.FlushAll()
	assert.Equal(t, []Where{Walked, Walked}, run(t, tl, Read, 0x1000, 0x2000))
}

func TestInvlpg(t *testing.T) {
	pt := &pageTable{global: map[uint64]bool{0x1000: true}}
	c := tiny([]ArrayConfig{Array(4, 4, Sizes4K)}, []ArrayConfig{Array(4, 4, Sizes4K)})
	c.PDE = ArrayConfig{Entries: 1, Ways: 1}
	tl := newTLB(t, c, pt)
	run(t, tl, Read, 0x1000, 0x2000)
	tl.Invlpg(0x1abc)
	out, err := tl.Access(0x1000, Read, Untagged)
	require.NoError(t, err)
	// The global page is gone from both levels, and so is the PDE cache.
	assert.Equal(t, Walked, out.Where)
	assert.Equal(t, 4, out.WalkRefs)
	assert.Equal(t, []Where{HitL1}, run(t, tl, Read, 0x2000))
}

func TestFaults(t *testing.T) {
	tl := newTLB(t, tiny([]ArrayConfig{Array(4, 4, Sizes4K)}, []ArrayConfig{Array(4, 4, Sizes4K)}), &pageTable{})
	_, err := tl.Access(0x7000_0000_0000, Read, Untagged)
	require.ErrorIs(t, err, errNotMapped)
	_, err = tl.Access(0x7000_0000_0000, Read, Untagged)
	require.Error(t, err, "a fault is not cached")
	c := tl.Total()
	assert.Equal(t, uint64(2), c.Faults)
	_, err = tl.Access(0x1000, Read, Tag(99))
	assert.Error(t, err)
	_, err = tl.Access(0x1000, Kind(7), Untagged)
	assert.Error(t, err)
}

func TestAttribution(t *testing.T) {
	tl := newTLB(t, tiny([]ArrayConfig{Array(4, 4, Sizes4K)}, []ArrayConfig{Array(4, 4, Sizes4K)}), &pageTable{})
	hello := tl.Tag("hello", "hello_init")
	other := tl.Tag("other", "")
	assert.Equal(t, hello, tl.Tag("hello", "hello_init"))
	assert.NotEqual(t, hello, other)
	for _, va := range []uint64{0x1000, 0x1000, 0x2000} {
		_, err := tl.Access(va, Fetch, hello)
		require.NoError(t, err)
	}
	_, err := tl.Access(0x1000, Fetch, other)
	require.NoError(t, err)

	h, o := tl.Counters(hello), tl.Counters(other)
	assert.Equal(t, uint64(3), h.Accesses[Fetch])
	assert.Equal(t, uint64(2), h.TotalWalks())
	assert.Equal(t, uint64(1), h.HitsIn(L1I))
	assert.Equal(t, uint64(1), o.HitsIn(L1I))
	assert.Equal(t, uint64(0), o.TotalWalks())
	total := tl.Total()
	assert.Equal(t, uint64(4), total.Accesses[Fetch])
	assert.Equal(t, []TagName{{}, {"hello", "hello_init"}, {"other", ""}}, tl.Tags())

	tl.ResetCounters()
	assert.Equal(t, Counters{}, tl.Total())
	assert.Equal(t, []Where{HitL1}, run(t, tl, Fetch, 0x1000), "reset keeps the entries")
}

func TestAccessRange(t *testing.T) {
	pt := &pageTable{huge: map[uint64]PageSize{0x20_0000: Page2M}}
	tl := newTLB(t, tiny([]ArrayConfig{Array(4, 4, Sizes4K), Array(2, 2, Sizes2M)}, []ArrayConfig{Array(8, 8, SizesAll)}), pt)
	tests := []struct {
		name     string
		va, n    uint64
		accesses uint64
	}{
		{"inside one 4K page", 0x1010, 0x20, 1},
		{"across a 4K boundary", 0x1ff0, 0x20, 2},
		{"three 4K pages", 0x1ff0, 0x1020, 3},
		{"inside one 2M page across 4K boundaries", 0x20_0ff0, 0x3000, 1},
		{"empty", 0x1000, 0, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tl.ResetCounters()
			require.NoError(t, tl.AccessRange(tc.va, tc.n, Fetch, Untagged))
			c := tl.Total()
			assert.Equal(t, tc.accesses, c.Accesses[Fetch])
		})
	}
	assert.ErrorIs(t, tl.AccessRange(0x7000_0000_0000, 16, Fetch, Untagged), errNotMapped)
}

func TestConfigValidation(t *testing.T) {
	good := tiny([]ArrayConfig{Array(4, 4, Sizes4K)}, []ArrayConfig{Array(4, 4, Sizes4K)})
	tests := []struct {
		name   string
		modify func(*Config)
	}{
		{"no L1D", func(c *Config) { c.L1D = nil }},
		{"zero ways", func(c *Config) { c.L2[0].Ways = 0 }},
		{"more ways than entries", func(c *Config) { c.L2[0].Ways = 8 }},
		{"no sizes", func(c *Config) { c.L1I[0].Sizes = 0 }},
		{"too big", func(c *Config) { c.L2[0] = Array(1<<40, 4, Sizes4K) }},
		{"too many arrays", func(c *Config) {
			c.L1D = append(c.L1D, Array(1, 1, Sizes4K), Array(1, 1, Sizes4K), Array(1, 1, Sizes4K), Array(1, 1, Sizes4K))
		}},
		{"bad cache", func(c *Config) { c.PDE = ArrayConfig{Entries: 4, Ways: 0} }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := good
			c.L1D = append([]ArrayConfig(nil), good.L1D...)
			c.L2 = append([]ArrayConfig(nil), good.L2...)
			c.L1I = append([]ArrayConfig(nil), good.L1I...)
			tc.modify(&c)
			_, err := New(c, &pageTable{})
			assert.Error(t, err)
		})
	}
	_, err := New(good, nil)
	assert.Error(t, err)
}

func TestPresets(t *testing.T) {
	assert.Equal(t, []string{"goldencove", "skylake", "zen2"}, PresetNames())
	for _, name := range PresetNames() {
		t.Run(name, func(t *testing.T) {
			c, err := Preset(name)
			require.NoError(t, err)
			assert.Equal(t, name, c.Name)
			tl, err := New(c, &pageTable{})
			require.NoError(t, err)
			// 64 consecutive 4K pages fit every preset's L1 dTLB.
			for round := range 2 {
				for i := range uint64(64) {
					out, err := tl.Access(0xffffffffc0000000+i<<12, Read, Untagged)
					require.NoError(t, err)
					if round == 1 {
						assert.Equal(t, HitL1, out.Where)
					}
				}
			}
			assert.Positive(t, tl.Cycles())
		})
	}
	_, err := Preset("pentium")
	assert.Error(t, err)
}

func TestModulePlacementContrast(t *testing.T) {
	// The question kemu asks: 1 MiB of hot code in 4K pages against the
	// same code in one 2M page, on Skylake's iTLB (128 4K entries).
	const code = 0xffffffffc0000000
	pt := &pageTable{huge: map[uint64]PageSize{}}
	vmalloc := newTLB(t, Skylake(), pt)
	packed := newTLB(t, Skylake(), &pageTable{huge: map[uint64]PageSize{code: Page2M}})
	for range 3 {
		require.NoError(t, vmalloc.AccessRange(code, 1<<20, Fetch, Untagged))
		require.NoError(t, packed.AccessRange(code, 1<<20, Fetch, Untagged))
	}
	v, p := vmalloc.Total(), packed.Total()
	assert.Equal(t, uint64(3*256), v.MissesIn(L1I), "256 pages cycle through 128 LRU entries: every fetch misses")
	assert.Equal(t, uint64(256), v.TotalWalks(), "the STLB holds all 256")
	assert.Equal(t, uint64(1), p.TotalWalks())
	assert.Equal(t, uint64(2), p.HitsIn(L1I))
	assert.Greater(t, vmalloc.Cycles(), 100*packed.Cycles())
}

func TestReport(t *testing.T) {
	c := tiny([]ArrayConfig{Array(4, 4, Sizes4K)}, []ArrayConfig{Array(4, 4, Sizes4K)})
	c.Costs = Costs{L2Hit: 10, Walk: 5, WalkRef: 2}
	tl := newTLB(t, c, &pageTable{})
	hello := tl.Tag("hello", "hello_init")
	tl.Tag("idle", "")
	for _, va := range []uint64{0x1000, 0x1000, 0x2000, 0x1000} {
		_, err := tl.Access(va, Read, hello)
		require.NoError(t, err)
	}
	lines := strings.Split(strings.TrimSpace(tl.Report()), "\n")
	require.Len(t, lines, 3, "header, hello, total; idle had no accesses")
	// 4 accesses, 2 L1D misses, 2 L2 misses, 8 walk reads, 500 misses per
	// thousand, 2*10 + 2*5 + 8*2 = 46 cycles.
	assert.Equal(t, []string{"hello:hello_init", "4", "0", "2", "2", "8", "500.00", "46"}, strings.Fields(lines[1]))
	assert.Equal(t, "total", strings.Fields(lines[2])[0])
}

func TestReplacementPolicies(t *testing.T) {
	// One set of four ways; a fifth page, then a sweep back over the first.
	const a, b, c, d, e = 0x1000, 0x2000, 0x3000, 0x4000, 0x5000
	pattern := []uint64{a, b, c, d, e, a, b, c, d}
	tests := []struct {
		policy Replacement
		want   []Where
	}{
		// LRU: e evicts a, a evicts b, b evicts c, c evicts d, d misses.
		{LRU, []Where{Walked, Walked, Walked, Walked, Walked, Walked, Walked, Walked, Walked}},
		// BitPLRU: filling d sets the last bit, so the others are cleared;
		// e replaces a (way 0), a replaces b (way 1), b replaces c (way 2)
		// and clears the rest, c replaces e (way 0): d is still there.
		{BitPLRU, []Where{Walked, Walked, Walked, Walked, Walked, Walked, Walked, Walked, HitL1}},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprint(tc.policy), func(t *testing.T) {
			l1 := ArrayConfig{Entries: 4, Ways: 4, Sizes: Sizes4K, Policy: tc.policy}
			tl := newTLB(t, tiny([]ArrayConfig{l1}, []ArrayConfig{Array(1, 1, Sizes4K)}), &pageTable{})
			assert.Equal(t, tc.want, run(t, tl, Read, pattern...))
		})
	}
}

func TestWithPolicy(t *testing.T) {
	c := WithPolicy(Zen2(), BitPLRU)
	for _, arrays := range [][]ArrayConfig{c.L1I, c.L1D, c.L2, c.L2I} {
		for _, a := range arrays {
			assert.Equal(t, BitPLRU, a.Policy)
		}
	}
	assert.Equal(t, LRU, Zen2().L2[0].Policy, "the preset itself is unchanged")
	assert.Nil(t, WithPolicy(Skylake(), BitPLRU).L2I)
	_, err := New(WithPolicy(Skylake(), Replacement(9)), &pageTable{})
	assert.Error(t, err)
}

func TestPageSizes(t *testing.T) {
	assert.Equal(t, uint64(4096), Page4K.Bytes())
	assert.Equal(t, uint64(2<<20), Page2M.Bytes())
	assert.Equal(t, uint64(1<<30), Page1G.Bytes())
	assert.Equal(t, uint64(1<<30), PageSize(9).Bytes())
	assert.Equal(t, "2M", Page2M.String())
	assert.Equal(t, "PageSize(9)", PageSize(9).String())
	assert.Equal(t, "fetch", Fetch.String())
	assert.Equal(t, "L2I", L2I.String())
}
