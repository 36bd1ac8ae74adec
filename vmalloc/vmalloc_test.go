package vmalloc_test

import (
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"kemu/mmu"
	"kemu/mmu/mmutest"
	"kemu/vmalloc"
)

func setup(t *testing.T) (*mmu.Kernel, *vmalloc.Allocator, *mmutest.Mirror) {
	t.Helper()
	mirror := mmutest.NewMirror()
	k, err := mmu.NewKernel(mmu.Config{MemSize: 16 << 20, Seed: 7, Mirror: mirror})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, k.Close()) })
	return k, vmalloc.New(k), mirror
}

var caller = mmu.Caller{Label: "test"}

func TestVmallocGuardPages(t *testing.T) {
	k, v, _ := setup(t)
	a, err := v.Vmalloc(3*mmu.PageSize+1, caller)
	require.NoError(t, err)
	b, err := v.Vmalloc(mmu.PageSize, caller)
	require.NoError(t, err)
	assert.Equal(t, mmu.VmallocStart, a, "first fit from VMALLOC_START")
	assert.Equal(t, a+5*mmu.PageSize, b, "4 pages, then one guard page")

	tests := []struct {
		name  string
		va    uint64
		fault mmu.Fault
	}{
		{"first page", a, mmu.FaultNone},
		{"last page", a + 4*mmu.PageSize - 1, mmu.FaultNone},
		{"guard page", a + 4*mmu.PageSize, mmu.FaultNotPresent},
		{"next area", b, mmu.FaultNone},
		{"its guard", b + mmu.PageSize, mmu.FaultNotPresent},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := k.Tables.Walk(tt.va, mmu.Access{Kind: mmu.AccessWrite})
			assert.Equal(t, tt.fault, w.Fault)
			if w.Fault == mmu.FaultNone {
				assert.Equal(t, mmu.Size4K, w.PageSize)
				assert.Equal(t, mmu.PermRW, w.Perm, "PAGE_KERNEL: RW, NX")
			}
		})
	}
	area, guard, ok := v.Lookup(a + 4*mmu.PageSize + 8)
	require.True(t, ok)
	assert.True(t, guard)
	assert.Equal(t, a, area.Addr)
}

// TestAliasSharesBytes checks that a vmalloc page and the direct-map address of its frame are one memory, seen
// through the fake CPU's host pointers and through the page walker.
func TestAliasSharesBytes(t *testing.T) {
	k, v, mirror := setup(t)
	va, err := v.Vzalloc(2*mmu.PageSize, caller)
	require.NoError(t, err)
	pa, err := k.Tables.Translate(va+mmu.PageSize+16, mmu.Access{Kind: mmu.AccessWrite})
	require.NoError(t, err)
	direct := k.DirectMap(pa)

	viaVmalloc, err := mirror.Bytes(va+mmu.PageSize+16, 8)
	require.NoError(t, err)
	viaDirect, err := mirror.Bytes(direct, 8)
	require.NoError(t, err)
	assert.Equal(t, make([]byte, 8), viaVmalloc, "vzalloc zeroes")
	copy(viaDirect, "aliased!")
	assert.Equal(t, "aliased!", string(viaVmalloc), "host pointers share the frame")

	got := make([]byte, 8)
	require.NoError(t, k.ReadVirt(va+mmu.PageSize+16, got))
	assert.Equal(t, "aliased!", string(got), "the walker agrees")
	require.NoError(t, k.WriteVirt(va+mmu.PageSize+16, []byte("by vmap!")))
	assert.Equal(t, "by vmap!", string(viaDirect))
}

func TestVfree(t *testing.T) {
	k, v, mirror := setup(t)
	used := k.Frames.Stats().Used
	tables := k.Tables.Stats().Tables
	va, err := v.Vmalloc(5*mmu.PageSize, caller)
	require.NoError(t, err)
	assert.Greater(t, k.Frames.Stats().Used, used+4)

	assert.ErrorIs(t, v.Vfree(va+mmu.PageSize), syscall.EINVAL, "inside an area")
	assert.ErrorIs(t, v.Vfree(mmu.VmallocStart+1<<30), syscall.EINVAL, "nonexistent area")
	require.NoError(t, v.Vfree(va))
	assert.ErrorIs(t, v.Vfree(va), syscall.EINVAL, "double vfree")
	assert.Equal(t, used, k.Frames.Stats().Used, "frames and page tables all given back")
	assert.Equal(t, tables, k.Tables.Stats().Tables)
	_, ok := mirror.Pages[va]
	assert.False(t, ok, "the CPU no longer maps it")
	assert.Empty(t, v.Areas())

	assert.Empty(t, mirror.Flushes, "vfree flushes the TLB lazily")
	assert.Equal(t, uint64(6), v.Stats(vmalloc.SpaceVmalloc).LazyPages, "5 pages and the guard wait for a purge")
	later, err := v.Vmalloc(mmu.PageSize, caller)
	require.NoError(t, err)
	assert.Equal(t, va+6*mmu.PageSize, later, "addresses on the purge list are not reused")
	require.NoError(t, v.Vfree(later))

	v.Purge()
	assert.Equal(t, []mmutest.Flush{{Start: va, End: va + 8*mmu.PageSize}}, mirror.Flushes,
		"one flush over the span of the purge list")
	assert.Zero(t, v.Stats(vmalloc.SpaceVmalloc).LazyPages)
	again, err := v.Vmalloc(mmu.PageSize, caller)
	require.NoError(t, err)
	assert.Equal(t, va, again, "purged addresses are reused first-fit")

	_, err = v.Vmalloc(0, caller)
	assert.ErrorIs(t, err, syscall.EINVAL)
	_, err = v.Vmalloc(64<<20, caller)
	assert.ErrorIs(t, err, syscall.ENOMEM, "more than RAM")
	assert.Len(t, v.Areas(), 1, "a failed allocation leaves nothing behind")
}

func TestModuleAlloc(t *testing.T) {
	k, v, _ := setup(t)
	va, err := v.ModuleAlloc(10000, mmu.Caller{Label: "hello"})
	require.NoError(t, err)
	assert.Equal(t, mmu.ModulesVaddr+k.ModuleLoadOffset(), va, "first module at the random load offset")
	w := k.Tables.Walk(va, mmu.Access{Kind: mmu.AccessFetch})
	assert.Equal(t, mmu.FaultProtection, w.Fault, "module memory starts non-executable")
	next, err := v.ModuleAlloc(1, mmu.Caller{Label: "world"})
	require.NoError(t, err)
	assert.Equal(t, va+4*mmu.PageSize, next, "3 pages and a guard")

	st := v.Stats(vmalloc.SpaceModules)
	assert.Equal(t, vmalloc.Stats{Areas: 2, Bytes: 4 * mmu.PageSize, Pages4K: 4,
		FreeAddress: mmu.ModulesEnd - mmu.ModulesVaddr - k.ModuleLoadOffset() - 6*mmu.PageSize}, st, "two guard pages reserved too")

	huge, err := v.Alloc(vmalloc.Request{Size: 1, Space: vmalloc.SpaceModules, Huge: true, Perm: mmu.PermRX})
	require.NoError(t, err)
	assert.Zero(t, huge.Addr%mmu.Size2M)
	assert.Equal(t, mmu.Size2M, huge.Size)
	w = k.Tables.Walk(huge.Addr+0x1234, mmu.Access{Kind: mmu.AccessFetch})
	assert.Equal(t, mmu.FaultNone, w.Fault)
	assert.Equal(t, mmu.Size2M, w.PageSize)
	require.NoError(t, v.Vfree(huge.Addr))
}

// Freeing module memory (VM_FLUSH_RESET_PERMS) purges at once, over a span that covers the lazily freed areas
// and the direct-map alias of the module's pages.
func TestModuleFreeFlushesAtOnce(t *testing.T) {
	k, v, mirror := setup(t)
	buf, err := v.Vmalloc(mmu.PageSize, caller)
	require.NoError(t, err)
	require.NoError(t, v.Vfree(buf))
	mod, err := v.Alloc(vmalloc.Request{Size: 2 * mmu.PageSize, Space: vmalloc.SpaceModules, Caller: caller})
	require.NoError(t, err)
	lo, hi := k.DirectMap(mod.Frames[0]), k.DirectMap(mod.Frames[0])
	for _, pa := range mod.Frames {
		lo, hi = min(lo, k.DirectMap(pa)), max(hi, k.DirectMap(pa)+mmu.PageSize)
	}
	require.Empty(t, mirror.Flushes)
	require.NoError(t, v.Vfree(mod.Addr))
	require.Len(t, mirror.Flushes, 1)
	f := mirror.Flushes[0]
	assert.False(t, f.All)
	assert.Equal(t, min(lo, buf), f.Start, "from the lowest of the direct-map alias and the lazy vmalloc area")
	assert.Equal(t, mod.End()+mmu.PageSize, f.End, "to the module area's guard page")
	assert.Zero(t, v.Stats(vmalloc.SpaceModules).LazyPages)
}

// More than lazy_max_pages of lazily freed pages trigger a purge.
func TestLazyPurgeThreshold(t *testing.T) {
	_, v, mirror := setup(t)
	const chunk = 4 << 20 // 1024 pages, 1025 with the guard: the 8th free passes 8192
	for i := range 8 {
		va, err := v.Vmalloc(chunk, caller)
		require.NoError(t, err)
		require.NoError(t, v.Vfree(va))
		if i < 7 {
			require.Empty(t, mirror.Flushes, "free %d", i)
		}
	}
	require.Len(t, mirror.Flushes, 1, "the 8th free passes lazy_max_pages")
	assert.Equal(t, mmutest.Flush{Start: mmu.VmallocStart, End: mmu.VmallocStart + 8*(chunk+mmu.PageSize)}, mirror.Flushes[0])
	assert.Zero(t, v.Stats(vmalloc.SpaceVmalloc).LazyPages)
}
