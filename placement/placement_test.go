package placement_test

import (
	"errors"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"kemu/mmu"
	"kemu/mmu/mmutest"
	"kemu/placement"
	"kemu/vmalloc"
)

// A module as Linux 6.1 lays it out with STRICT_MODULE_RWX: core = text, rodata, ro_after_init, data, each
// starting on a page; init = text, data.
var (
	core = placement.Region{Name: "core", Size: 0x6100, Ranges: []placement.Range{
		{Offset: 0x0000, Size: 0x2345, Kind: placement.Text},
		{Offset: 0x3000, Size: 0x1000, Kind: placement.Rodata},
		{Offset: 0x4000, Size: 0x0800, Kind: placement.RoAfterInit},
		{Offset: 0x5000, Size: 0x1100, Kind: placement.Data},
	}}
	initRegion = placement.Region{Name: "init", Size: 0x1100, Ranges: []placement.Range{
		{Offset: 0x0000, Size: 0x0800, Kind: placement.Text},
		{Offset: 0x1000, Size: 0x0100, Kind: placement.Data},
	}}
)

type fixture struct {
	k      *mmu.Kernel
	mirror *mmutest.Mirror
	s      placement.Strategy
}

func strategies() map[string]func(*mmu.Kernel) placement.Strategy {
	return map[string]func(*mmu.Kernel) placement.Strategy{
		"vmalloc":           func(k *mmu.Kernel) placement.Strategy { return placement.NewVmalloc(k, vmalloc.New(k)) },
		"kmalloc":           func(k *mmu.Kernel) placement.Strategy { return placement.NewKmalloc(k) },
		"kmalloc-directmap": func(k *mmu.Kernel) placement.Strategy { return placement.NewKmallocDirectMap(k) },
		"hugepack":          func(k *mmu.Kernel) placement.Strategy { return placement.NewHugepack(k, vmalloc.New(k)) },
	}
}

func newFixture(t *testing.T, mk func(*mmu.Kernel) placement.Strategy) fixture {
	t.Helper()
	mirror := mmutest.NewMirror()
	k, err := mmu.NewKernel(mmu.Config{MemSize: 32 << 20, Seed: 3, Mirror: mirror})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, k.Close()) })
	return fixture{k: k, mirror: mirror, s: mk(k)}
}

// checkRights walks every page of every range and compares with what the kind asks for, in the tables and in
// the CPU mirror.
func checkRights(t *testing.T, f fixture, p *placement.Placed, sealed bool) {
	t.Helper()
	for _, rg := range p.Region.Ranges {
		want := rg.Kind.Perm()
		if sealed && rg.Kind == placement.RoAfterInit {
			want = mmu.PermRO
		}
		for off := rg.Offset; off < rg.Offset+rg.Size; off += mmu.PageSize {
			va, ok := p.Addr(off)
			require.True(t, ok)
			w := f.k.Tables.Walk(va, mmu.Access{})
			require.Equal(t, mmu.FaultNone, w.Fault, "%s %s+%#x", p.Region.Name, rg.Kind, off)
			assert.Equal(t, want, w.Perm, "%s %s+%#x", p.Region.Name, rg.Kind, off)
			assert.False(t, w.User)
			assert.Equal(t, want, f.mirror.Pages[va&^(mmu.PageSize-1)].Perm, "mirror %s+%#x", rg.Kind, off)
		}
	}
}

func TestRightsExactlyAsAsked(t *testing.T) {
	for name, mk := range strategies() {
		t.Run(name, func(t *testing.T) {
			f := newFixture(t, mk)
			placed, err := f.s.Place("hello", []placement.Region{core, initRegion})
			require.NoError(t, err)
			require.Len(t, placed, 2)
			checkRights(t, f, placed[0], false)
			checkRights(t, f, placed[1], false)

			// Code runs from text and nowhere else; a kernel write to rodata is a protection fault (0x3).
			text, _ := placed[0].Addr(0x100)
			assert.Equal(t, mmu.FaultNone, f.k.Tables.Walk(text, mmu.Access{Kind: mmu.AccessFetch}).Fault)
			data, _ := placed[0].Addr(0x5000)
			assert.Equal(t, mmu.PFCode(0x11), f.k.Tables.Walk(data, mmu.Access{Kind: mmu.AccessFetch}).Code)
			ro, _ := placed[0].Addr(0x3000)
			assert.Equal(t, mmu.PFCode(0x3), f.k.Tables.Walk(ro, mmu.Access{Kind: mmu.AccessWrite}).Code)

			// The loader writes text through text_poke and reads it back through the CPU's view.
			require.NoError(t, f.k.WriteVirt(text, []byte{0x55, 0xc3}))
			host, err := f.mirror.Bytes(text, 2)
			require.NoError(t, err)
			assert.Equal(t, []byte{0x55, 0xc3}, host)

			// After init: ro_after_init sealed, init freed.
			rai, _ := placed[0].Addr(0x4000)
			assert.Equal(t, mmu.FaultNone, f.k.Tables.Walk(rai, mmu.Access{Kind: mmu.AccessWrite}).Fault)
			require.NoError(t, f.s.Seal(placed[0]))
			checkRights(t, f, placed[0], true)
			assert.Equal(t, mmu.FaultProtection, f.k.Tables.Walk(rai, mmu.Access{Kind: mmu.AccessWrite}).Fault)
			assert.ErrorIs(t, f.s.Seal(placed[0]), syscall.EINVAL, "sealed once")

			require.NoError(t, f.s.Free(placed[1]))
			assert.ErrorIs(t, f.s.Free(placed[1]), syscall.EINVAL, "freed twice")
			assert.Equal(t, 1, f.s.Stats().Regions)
			require.NoError(t, f.s.Free(placed[0]))
			assert.Equal(t, placement.Stats{DirectMapSplits: f.s.Stats().DirectMapSplits}, f.s.Stats(), "nothing held")
		})
	}
}

func TestStatsPerStrategy(t *testing.T) {
	const k4, m2 = mmu.PageSize, mmu.Size2M
	tests := []struct {
		name             string
		used             uint64
		pages4K, pages2M int
		splits           bool
	}{
		// core: 0x6100 bytes = 7 pages; init: 0x1100 = 2 pages.
		{"vmalloc", 9 * k4, 9, 0, false},
		// one 2M chunk per class (text, rodata, data), shared by both regions; nothing split before sealing.
		{"kmalloc", 3 * m2, 0, 3, false},
		{"kmalloc-directmap", 3 * m2, 0, 3, false},
		// both texts in one 2M pack; the rest: core 0x3000..0x6100 = 4 pages, init 0x1000..0x1100 = 1 page.
		{"hugepack", m2 + 5*k4, 5, 1, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, strategies()[tt.name])
			_, err := f.s.Place("hello", []placement.Region{core, initRegion})
			require.NoError(t, err)
			st := f.s.Stats()
			assert.Equal(t, 2, st.Regions)
			assert.Equal(t, core.Size+initRegion.Size, st.Requested)
			assert.Equal(t, tt.used, st.Used)
			assert.Equal(t, tt.used-st.Requested, st.Wasted())
			assert.Equal(t, tt.pages4K, st.Pages4K)
			assert.Equal(t, tt.pages2M, st.Pages2M)
			assert.Equal(t, tt.splits, st.DirectMapSplits > 0, "splits: %d", st.DirectMapSplits)
		})
	}
}

func TestHugepackSharesPacks(t *testing.T) {
	f := newFixture(t, strategies()["hugepack"])
	a, err := f.s.Place("a", []placement.Region{core})
	require.NoError(t, err)
	b, err := f.s.Place("b", []placement.Region{core})
	require.NoError(t, err)
	ta, tb := a[0].Base(), b[0].Base()
	assert.Equal(t, ta&^(mmu.Size2M-1), tb&^(mmu.Size2M-1), "both texts in one 2M page")
	assert.Zero(t, tb%64)
	assert.Equal(t, 1, f.s.Stats().Pages2M)
	w := f.k.Tables.Walk(tb, mmu.Access{Kind: mmu.AccessFetch})
	assert.Equal(t, mmu.Size2M, w.PageSize)

	err = f.s.SetPerm(a[0], 0, 0x1000, mmu.PermRW)
	assert.ErrorIs(t, err, syscall.EPERM, "text in a shared ROX page stays RX")
	require.NoError(t, f.s.SetPerm(a[0], 0x5000, 0x1000, mmu.PermRO), "data can change")
	d, _ := a[0].Addr(0x5000)
	assert.Equal(t, mmu.PermRO, f.k.Tables.Walk(d, mmu.Access{}).Perm)

	// Freeing a leaves int3 where its text was; the pack stays for b, and goes with b.
	require.NoError(t, f.s.Free(a[0]))
	got := make([]byte, 4)
	require.NoError(t, f.k.ReadVirt(ta, got))
	assert.Equal(t, []byte{0xcc, 0xcc, 0xcc, 0xcc}, got)
	assert.Equal(t, 1, f.s.Stats().Pages2M)
	require.NoError(t, f.s.Free(b[0]))
	assert.Zero(t, f.s.Stats().Used)
	assert.Equal(t, mmu.FaultNotPresent, f.k.Tables.Walk(tb, mmu.Access{}).Fault)
}

func TestPlaceErrors(t *testing.T) {
	bad := []placement.Region{
		{Name: "empty"},
		{Name: "unaligned", Size: 0x2000, Ranges: []placement.Range{{Offset: 0x800, Size: 0x100, Kind: placement.Data}}},
		{Name: "overlap", Size: 0x3000, Ranges: []placement.Range{
			{Offset: 0, Size: 0x2000, Kind: placement.Text}, {Offset: 0x1000, Size: 0x100, Kind: placement.Data}}},
		{Name: "outside", Size: 0x1000, Ranges: []placement.Range{{Offset: 0, Size: 0x1001, Kind: placement.Text}}},
	}
	for name, mk := range strategies() {
		t.Run(name, func(t *testing.T) {
			f := newFixture(t, mk)
			for _, r := range bad {
				_, err := f.s.Place("m", []placement.Region{core, r})
				assert.ErrorIs(t, err, syscall.EINVAL, r.Name)
			}
			assert.Zero(t, f.s.Stats().Regions, "nothing placed when any region is bad")
			err := f.s.Free(&placement.Placed{})
			assert.True(t, errors.Is(err, syscall.EINVAL))
		})
	}
}

func TestPlacedAddr(t *testing.T) {
	p := placement.Placed{Region: core, Pieces: []placement.Piece{
		{Offset: 0, Size: 0x2345, Addr: 0xffffffffc0200000},
		{Offset: 0x2345, Size: 0x6100 - 0x2345, Addr: 0xffffffffc1002345},
	}}
	tests := []struct {
		off  uint64
		addr uint64
		ok   bool
	}{
		{0, 0xffffffffc0200000, true},
		{0x2344, 0xffffffffc0202344, true},
		{0x2345, 0xffffffffc1002345, true},
		{0x60ff, 0xffffffffc10060ff, true},
		{0x6100, 0, false},
	}
	for _, tt := range tests {
		addr, ok := p.Addr(tt.off)
		assert.Equal(t, tt.ok, ok, "%#x", tt.off)
		assert.Equal(t, tt.addr, addr, "%#x", tt.off)
	}
}

func TestHugepackLargeText(t *testing.T) {
	f := newFixture(t, strategies()["hugepack"])
	big := placement.Region{Name: "core", Size: 3<<20 + 0x1000, Ranges: []placement.Range{
		{Offset: 0, Size: 3 << 20, Kind: placement.Text},
		{Offset: 3 << 20, Size: 0x1000, Kind: placement.Data},
	}}
	p, err := f.s.Place("big", []placement.Region{big})
	require.NoError(t, err)
	st := f.s.Stats()
	assert.Equal(t, 2, st.Pages2M, "3 MiB of text needs a pack of two 2M pages")
	assert.Equal(t, 1, st.Pages4K)
	assert.Equal(t, uint64(4<<20+mmu.PageSize), st.Used)
	last, ok := p[0].Addr(3<<20 - 1)
	require.True(t, ok)
	first, _ := p[0].Addr(0)
	assert.Equal(t, first+3<<20-1, last, "text stays contiguous")
	assert.Equal(t, mmu.PermRX, f.k.Tables.Walk(last, mmu.Access{}).Perm)

	// Small text still fits into the big pack's free tail.
	q, err := f.s.Place("small", []placement.Region{core})
	require.NoError(t, err)
	assert.Equal(t, 2, f.s.Stats().Pages2M)
	assert.GreaterOrEqual(t, q[0].Base(), first+3<<20, "after the big text")
	assert.Less(t, q[0].Base(), first+4<<20, "in the same pack")
}

// TestKmallocAddressing checks where each kmalloc variant puts a region: the high alias (StartKernelMap + pa,
// within 2 GiB of kernel text, as -mcmodel=kernel needs) or the direct map (PageOffsetBase + pa, far beyond it).
func TestKmallocAddressing(t *testing.T) {
	const kernelText = 0xffffffff81000000 // _text of an x86-64 kernel without KASLR
	tests := []struct {
		name      string
		base      uint64
		reachable bool
	}{
		{"kmalloc", mmu.StartKernelMap, true},
		{"kmalloc-directmap", mmu.PageOffsetBase, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, strategies()[tt.name])
			placed, err := f.s.Place("hello", []placement.Region{core})
			require.NoError(t, err)
			va := placed[0].Base()
			pa, err := f.k.Tables.Translate(va, mmu.Access{})
			require.NoError(t, err)
			assert.Equal(t, tt.base+pa, va, "the linear mapping's address of the block")
			dist := int64(va - kernelText)
			assert.Equal(t, tt.reachable, dist < 1<<31 && dist >= -(1<<31), "rel32 reach from kernel text: %#x", va)
			assert.Equal(t, va, f.k.DirectMap(pa)+tt.base-mmu.PageOffsetBase)
		})
	}
}

// TestKmallocChunksKeepLargePages: modules share a chunk per class and keep its 2M page; sealing one module's
// ro_after_init splits the data chunk's page (counted), and only its pages change.
func TestKmallocChunksKeepLargePages(t *testing.T) {
	f := newFixture(t, strategies()["kmalloc"])
	a, err := f.s.Place("a", []placement.Region{core})
	require.NoError(t, err)
	b, err := f.s.Place("b", []placement.Region{core})
	require.NoError(t, err)
	for _, off := range []uint64{0, 0x3000, 0x5000} { // text, rodata, data: a's and b's in one 2M page each
		va, _ := a[0].Addr(off)
		vb, _ := b[0].Addr(off)
		assert.Equal(t, va&^(mmu.Size2M-1), vb&^(mmu.Size2M-1), "offset %#x shares a chunk", off)
		assert.Equal(t, mmu.Size2M, f.k.Tables.Walk(va, mmu.Access{}).PageSize)
	}
	st := f.s.Stats()
	assert.Equal(t, 3, st.Pages2M)
	assert.Zero(t, st.Pages4K)
	assert.Zero(t, st.DirectMapSplits)

	require.NoError(t, f.s.Seal(a[0]))
	checkRights(t, f, a[0], true)
	checkRights(t, f, b[0], false)
	st = f.s.Stats()
	assert.Equal(t, 2, st.Pages2M, "text and rodata chunks stay whole")
	assert.Equal(t, 512, st.Pages4K, "the data chunk's page split")
	assert.Equal(t, 1, st.DirectMapSplits)

	require.NoError(t, f.s.Free(a[0]))
	checkRights(t, f, b[0], false)
	require.NoError(t, f.s.Free(b[0]))
	assert.Zero(t, f.s.Stats().Used, "empty chunks go back to the page allocator")
}

// TestKmallocAliasAvoidsTheImage: physical memory whose alias something else occupies (kemu's kernel image, whose
// pages are not where their alias would put them) is passed over, and the blocks passed over go back.
func TestKmallocAliasAvoidsTheImage(t *testing.T) {
	f := newFixture(t, strategies()["kmalloc"])
	// Where the next chunk would come from: occupy its alias.
	probe, err := f.k.Frames.Alloc(9)
	require.NoError(t, err)
	require.NoError(t, f.k.Frames.Free(probe, 9))
	require.NoError(t, f.k.Tables.Map(mmu.StartKernelMap+probe, 0, mmu.Size2M, mmu.Size2M, mmu.PermRW, mmu.AttrGlobal))
	free := f.k.Frames.Stats().Free

	placed, err := f.s.Place("hello", []placement.Region{initRegion})
	require.NoError(t, err)
	for _, pc := range placed[0].Pieces {
		pa, err := f.k.Tables.Translate(pc.Addr, mmu.Access{})
		require.NoError(t, err)
		assert.NotEqual(t, probe, pa&^(mmu.Size2M-1), "chunk inside the occupied alias")
		assert.Equal(t, mmu.StartKernelMap+pa, pc.Addr)
	}
	checkRights(t, f, placed[0], false)
	used := free - f.k.Frames.Stats().Free
	assert.LessOrEqual(t, used, uint64(2*512+2), "only the text and data chunks and the alias's page tables: %d frames", used)
	assert.GreaterOrEqual(t, used, uint64(2*512))
}
