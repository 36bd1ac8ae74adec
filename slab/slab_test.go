package slab_test

import (
	"errors"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"kemu/mmu"
	"kemu/slab"
)

func setup(t *testing.T, opts ...slab.Option) (*mmu.Kernel, *slab.Allocator) {
	t.Helper()
	k, err := mmu.NewKernel(mmu.Config{MemSize: 32 << 20})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, k.Close()) })
	return k, slab.New(k, opts...)
}

var (
	alice = mmu.Caller{Label: "alice_init", Addr: 0xffffffffc0001234}
	bob   = mmu.Caller{Label: "bob_exit"}
)

func TestKmallocSizeClasses(t *testing.T) {
	_, a := setup(t)
	tests := []struct {
		size, ksize uint64
	}{
		{1, 8}, {8, 8}, {9, 16}, {33, 64}, {65, 96}, {96, 96}, {97, 128}, {129, 192}, {193, 256},
		{257, 512}, {600, 1024}, {1025, 2048}, {3000, 4096}, {4097, 8192}, {8192, 8192},
		{8193, 16384}, {12 << 10, 16384}, {16385, 32768}, {1 << 20, 1 << 20},
	}
	for _, tt := range tests {
		addr, err := a.Kmalloc(tt.size, alice, false)
		require.NoError(t, err, "kmalloc(%d)", tt.size)
		assert.GreaterOrEqual(t, addr, mmu.PageOffsetBase, "from the direct map")
		got, err := a.Ksize(addr)
		require.NoError(t, err)
		assert.Equal(t, tt.ksize, got, "ksize(kmalloc(%d))", tt.size)
		if tt.ksize&(tt.ksize-1) == 0 {
			assert.Zero(t, addr%min(tt.ksize, mmu.PageSize), "power-of-two sizes are naturally aligned")
		}
	}
	zero, err := a.Kmalloc(0, alice, false)
	require.NoError(t, err)
	assert.Equal(t, uint64(slab.ZeroSizePtr), zero)
	assert.NoError(t, a.Kfree(zero, alice))
	assert.NoError(t, a.Kfree(0, alice), "kfree(NULL)")
	_, err = a.Kmalloc(64<<20, alice, false)
	assert.ErrorIs(t, err, syscall.ENOMEM)
}

func TestAccountingAndLeaks(t *testing.T) {
	_, a := setup(t)
	x, err := a.Kmalloc(100, alice, false) // kmalloc-128
	require.NoError(t, err)
	_, err = a.Kmalloc(12<<10, alice, true) // 16 KiB from the page allocator
	require.NoError(t, err)
	y, err := a.Kmalloc(8, bob, false)
	require.NoError(t, err)
	require.NoError(t, a.Kfree(y, bob))

	callers := a.Callers()
	require.Len(t, callers, 2)
	assert.Equal(t, alice, callers[0].Caller)
	assert.Equal(t, uint64(100+12<<10), callers[0].Requested)
	assert.Equal(t, uint64(128+16<<10), callers[0].Allocated)
	assert.Equal(t, uint64(28+4<<10), callers[0].Wasted())
	assert.Equal(t, 2, callers[0].Live)
	assert.Equal(t, bob, callers[1].Caller)
	assert.Equal(t, 0, callers[1].Live)
	assert.Equal(t, 1, callers[1].Frees)
	assert.Zero(t, callers[1].Allocated)

	tot := a.Totals()
	assert.Equal(t, slab.Totals{Live: 2, Quarantined: 1, Requested: 100 + 12<<10, Allocated: 128 + 16<<10,
		SlabPages: 2, LargePages: 4}, tot, "one kmalloc-128 slab, one kmalloc-8 slab, a 16 KiB block")

	leaks := a.Leaks()
	require.Len(t, leaks, 2)
	assert.Equal(t, slab.Allocation{Addr: x, Requested: 100, Size: 128, Cache: "kmalloc-128", Caller: alice}, leaks[0])
	assert.Equal(t, "page allocator", leaks[1].Cache)
}

func TestBadFrees(t *testing.T) {
	k, a := setup(t)
	x, err := a.Kmalloc(40, alice, false)
	require.NoError(t, err)
	big, err := a.Kmalloc(20000, alice, false)
	require.NoError(t, err)
	require.NoError(t, a.Kfree(x, bob))
	require.NoError(t, a.Kfree(big, bob))
	live, err := a.Kmalloc(40, alice, false)
	require.NoError(t, err)
	bigLive, err := a.Kmalloc(9000, alice, false)
	require.NoError(t, err)
	vmallocAddr := uint64(mmu.VmallocStart)

	tests := []struct {
		name           string
		addr           uint64
		kind           slab.ReportKind
		object         uint64
		alloc, freedBy mmu.Caller
	}{
		{"double free", x, slab.DoubleFree, x, alice, bob},
		{"double free of a large allocation", big, slab.DoubleFree, big, alice, bob},
		{"interior pointer", live + 8, slab.InvalidFree, live, alice, mmu.Caller{}},
		{"interior pointer into a large allocation", bigLive + 5000, slab.InvalidFree, bigLive, alice, mmu.Caller{}},
		{"foreign pointer", vmallocAddr, slab.InvalidFree, 0, mmu.Caller{}, mmu.Caller{}},
		{"direct-map page never kmalloc'd", k.DirectMap(30 << 20), slab.InvalidFree, 0, mmu.Caller{}, mmu.Caller{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := a.Kfree(tt.addr, mmu.Caller{Label: "culprit"})
			var r *slab.Report
			require.True(t, errors.As(err, &r), "got %v", err)
			assert.Equal(t, tt.kind, r.Kind)
			assert.Equal(t, tt.object, r.Object)
			assert.Equal(t, tt.alloc, r.Alloc)
			assert.Equal(t, tt.freedBy, r.Free)
			assert.Equal(t, "culprit", r.Culprit.Label)
		})
	}
	assert.Len(t, a.Reports(), len(tests))
	assert.Contains(t, a.Reports()[0].Error(), "double-free of")
	assert.Contains(t, a.Reports()[0].Error(), "allocated by alice_init (0xffffffffc0001234), freed by bob_exit")
	// Nothing was corrupted: the live object is still live and freeable once.
	size, err := a.Ksize(live)
	require.NoError(t, err)
	assert.Equal(t, uint64(64), size)
	require.NoError(t, a.Kfree(live, alice))
}

func TestUseAfterFree(t *testing.T) {
	k, a := setup(t, slab.WithQuarantine(4))
	x, err := a.Kmalloc(64, alice, false)
	require.NoError(t, err)
	require.NoError(t, a.Kfree(x, bob))

	// The freed object is poisoned: 0x6b ... 0xa5.
	got := make([]byte, 64)
	require.NoError(t, k.ReadVirt(x, got))
	assert.Equal(t, byte(slab.PoisonFree), got[0])
	assert.Equal(t, byte(slab.PoisonEnd), got[63])

	// An observed read of it is reported with both callers.
	err = a.Check(x+16, 8, false, mmu.Caller{Label: "reader"})
	var r *slab.Report
	require.ErrorAs(t, err, &r)
	assert.Equal(t, slab.UseAfterFree, r.Kind)
	assert.Equal(t, x, r.Object)
	assert.Equal(t, alice, r.Alloc)
	assert.Equal(t, bob, r.Free)
	assert.Contains(t, r.Error(), "use-after-free read at")
	assert.NoError(t, a.Check(x-64, 8, false, alice), "the neighbour slot is not freed")

	// A write to it is found by the poison audit, and again when it leaves the quarantine.
	require.NoError(t, k.WriteVirt(x+20, []byte{1}))
	audit := a.Audit()
	require.Len(t, audit, 1)
	assert.Equal(t, x+20, audit[0].Addr)
	assert.True(t, audit[0].Write)
	err = a.Flush()
	require.ErrorAs(t, err, &r)
	assert.Equal(t, slab.UseAfterFree, r.Kind)

	// While quarantined the slot is not reused; once flushed it is.
	y, err := a.Kmalloc(64, alice, false)
	require.NoError(t, err)
	z, err := a.Kmalloc(64, alice, false)
	require.NoError(t, err)
	assert.Contains(t, []uint64{y, z}, x, "the slot comes back after the quarantine")
	assert.NoError(t, a.Check(x, 8, true, alice), "live again")
}

func TestQuarantineDelaysReuse(t *testing.T) {
	_, a := setup(t, slab.WithQuarantine(2))
	var freed []uint64
	for range 3 {
		p, err := a.Kmalloc(32, alice, false)
		require.NoError(t, err)
		freed = append(freed, p)
	}
	for _, p := range freed {
		require.NoError(t, a.Kfree(p, bob))
	}
	// Three freed, two held: only the first is reusable.
	p, err := a.Kmalloc(32, alice, false)
	require.NoError(t, err)
	assert.Equal(t, freed[0], p)
	q, err := a.Kmalloc(32, alice, false)
	require.NoError(t, err)
	assert.NotContains(t, freed, q)
}

func TestKmemCache(t *testing.T) {
	k, a := setup(t)
	before := k.Frames.Stats().Used
	c, err := a.KmemCacheCreate("my_cache", 100, 64)
	require.NoError(t, err)
	assert.Equal(t, uint64(128), c.Size, "100 bytes aligned to 64")
	other, err := a.KmemCacheCreate("other", 100, 0)
	require.NoError(t, err)
	assert.Equal(t, uint64(104), other.Size)

	x, err := c.Alloc(alice, true)
	require.NoError(t, err)
	assert.Zero(t, x%64)
	got := make([]byte, 100)
	require.NoError(t, k.ReadVirt(x, got))
	assert.Equal(t, make([]byte, 100), got, "kmem_cache_zalloc")

	var r *slab.Report
	require.ErrorAs(t, other.Free(x, bob), &r)
	assert.Equal(t, slab.CacheMismatch, r.Kind)
	assert.Contains(t, r.Error(), "kmem_cache_free(other)")

	assert.ErrorIs(t, a.KmemCacheDestroy(c), syscall.EBUSY, "still has objects")
	require.NoError(t, c.Free(x, bob))
	st := c.Stats()
	assert.Equal(t, 0, st.Live)
	assert.Equal(t, 1, st.Quarantined)
	require.NoError(t, a.KmemCacheDestroy(c))
	require.NoError(t, a.KmemCacheDestroy(other))
	assert.ErrorIs(t, a.KmemCacheDestroy(c), syscall.EINVAL)
	_, err = c.Alloc(alice, false)
	assert.ErrorIs(t, err, syscall.EINVAL)
	assert.Equal(t, before, k.Frames.Stats().Used, "slabs went back to the page allocator")
	_, err = a.KmemCacheCreate("bad", 10, 3)
	assert.ErrorIs(t, err, syscall.EINVAL)
}

func BenchmarkKmallocKfree(b *testing.B) {
	k, err := mmu.NewKernel(mmu.Config{MemSize: 64 << 20})
	require.NoError(b, err)
	defer k.Close()
	a := slab.New(k)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		p, err := a.Kmalloc(uint64(8+i%500), alice, false)
		if err != nil {
			b.Fatal(err)
		}
		if err := a.Kfree(p, alice); err != nil {
			b.Fatal(err)
		}
	}
}

func TestManySlabsComeBack(t *testing.T) {
	k, a := setup(t, slab.WithQuarantine(16))
	before := k.Frames.Stats().Used
	var ptrs []uint64
	seen := map[uint64]bool{}
	for i := range 3000 {
		p, err := a.Kmalloc(uint64(40+i%3*100), alice, i%2 == 0) // kmalloc-64, -192, -256
		require.NoError(t, err)
		require.False(t, seen[p], "%#x handed out twice", p)
		seen[p] = true
		ptrs = append(ptrs, p)
	}
	assert.Greater(t, a.Totals().SlabPages, 40)
	for _, p := range ptrs {
		require.NoError(t, a.Kfree(p, bob))
	}
	require.NoError(t, a.Flush())
	assert.Empty(t, a.Leaks())
	tot := a.Totals()
	assert.Zero(t, tot.Live)
	assert.Equal(t, 3, tot.SlabPages, "one empty order-0 slab kept per cache used")
	assert.Equal(t, before+3, k.Frames.Stats().Used)
	assert.Empty(t, a.Reports())
}
