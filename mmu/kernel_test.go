package mmu_test

import (
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"kemu/mmu"
	"kemu/mmu/mmutest"
)

func newKernel(t testing.TB, ram uint64, seed uint64) (*mmu.Kernel, *mmutest.Mirror) {
	t.Helper()
	mirror := mmutest.NewMirror()
	k, err := mmu.NewKernel(mmu.Config{MemSize: ram, Seed: seed, Mirror: mirror})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, k.Close()) })
	return k, mirror
}

func TestDirectMapPageSizes(t *testing.T) {
	tests := []struct {
		name             string
		ram              uint64
		n1G, n2M, n4K    int
		mirrorCallsAtMap int
	}{
		{"16 MiB", 16 << 20, 0, 8, 0, 1},
		{"1 GiB + 6 MiB + 8 KiB", 1<<30 + 6<<20 + 8<<10, 1, 3, 2, 3},
		{"3 MiB", 3 << 20, 0, 1, 256, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k, mirror := newKernel(t, tt.ram, 0)
			var got [3]int
			for _, l := range k.Tables.Leaves(mmu.PageOffsetBase, tt.ram) {
				switch l.Size {
				case mmu.Size1G:
					got[0]++
				case mmu.Size2M:
					got[1]++
				case mmu.Size4K:
					got[2]++
				}
				assert.Equal(t, mmu.PermRW, l.Perm, "direct map is RW NX")
				assert.Equal(t, mmu.AttrGlobal, l.Attr)
				assert.Equal(t, l.VA-mmu.PageOffsetBase, l.PA)
			}
			assert.Equal(t, [3]int{tt.n1G, tt.n2M, tt.n4K}, got)
			assert.Equal(t, tt.mirrorCallsAtMap, mirror.Calls, "one mirror call per run of equal pages")
			pa, err := k.Tables.Translate(mmu.PageOffsetBase+tt.ram-1, mmu.Access{Kind: mmu.AccessWrite})
			require.NoError(t, err)
			assert.Equal(t, tt.ram-1, pa)
			_, err = k.Tables.Translate(mmu.PageOffsetBase+tt.ram, mmu.Access{})
			var pf *mmu.PageFaultError
			assert.ErrorAs(t, err, &pf, "nothing past RAM")
		})
	}
}

func TestModuleLoadOffset(t *testing.T) {
	seen := map[uint64]bool{}
	for seed := range uint64(20) {
		a, _ := newKernel(t, 4<<20, seed)
		b, _ := newKernel(t, 4<<20, seed)
		off := a.ModuleLoadOffset()
		assert.Equal(t, off, b.ModuleLoadOffset(), "same seed, same offset")
		assert.Zero(t, off%mmu.PageSize)
		assert.GreaterOrEqual(t, off, uint64(mmu.PageSize))
		assert.LessOrEqual(t, off, uint64(mmu.ModuleLoadPages*mmu.PageSize))
		seen[off] = true
	}
	assert.Greater(t, len(seen), 10, "seeds spread the offset")
}

func TestKernelImageAndAliases(t *testing.T) {
	k, mirror := newKernel(t, 32<<20, 1)

	text, err := k.MapKernelImage(0, 2*mmu.Size2M, mmu.PermRX)
	require.NoError(t, err)
	assert.Equal(t, mmu.StartKernelMap, text)
	w := k.Tables.Walk(text+mmu.Size2M+5, mmu.Access{Kind: mmu.AccessFetch})
	require.Equal(t, mmu.FaultNone, w.Fault)
	assert.Equal(t, mmu.Size2M, w.PageSize, "2M-aligned image ranges use 2M pages")

	stubs, err := k.MapKernelImage(0x1000000+0x3000, 3*mmu.PageSize, mmu.PermRW)
	require.NoError(t, err)
	w = k.Tables.Walk(stubs, mmu.Access{Kind: mmu.AccessWrite})
	require.Equal(t, mmu.FaultNone, w.Fault)
	assert.Equal(t, mmu.Size4K, w.PageSize)

	_, err = k.MapKernelImage(0, mmu.PageSize, mmu.PermRW)
	assert.ErrorIs(t, err, syscall.EEXIST, "already mapped")
	_, err = k.MapKernelImage(mmu.KernelImageSize, mmu.PageSize, mmu.PermRW)
	assert.ErrorIs(t, err, syscall.EINVAL)

	// The image page and its direct-map alias are the same bytes: through the walker (WriteVirt/ReadVirt)
	// and through the host pointers the CPU was given.
	msg := []byte("hello from the kernel image")
	require.NoError(t, k.WriteVirt(stubs+mmu.PageSize-4, msg), "crosses a page boundary")
	got := make([]byte, len(msg))
	pa, err := k.Tables.Translate(stubs+mmu.PageSize-4, mmu.Access{})
	require.NoError(t, err)
	require.NoError(t, k.ReadVirt(k.DirectMap(pa), got[:4]))
	assert.Equal(t, msg[:4], got[:4])
	host, err := mirror.Bytes(k.DirectMap(pa), 4)
	require.NoError(t, err)
	assert.Equal(t, msg[:4], host)
	host, err = mirror.Bytes(stubs+mmu.PageSize-4, 4)
	require.NoError(t, err)
	host[0] = 'J'
	require.NoError(t, k.ReadVirt(stubs+mmu.PageSize-4, got))
	assert.Equal(t, "Jello from the kernel image", string(got))

	assert.ErrorIs(t, k.ReadVirt(stubs+3*mmu.PageSize-2, got), syscall.EFAULT, "runs off the mapping")
}

func TestAllocPages(t *testing.T) {
	k, _ := newKernel(t, 8<<20, 0)
	before := k.Frames.Stats().Used
	va, err := k.AllocPages(2, true)
	require.NoError(t, err)
	pa, ok := k.DirectMapPA(va)
	require.True(t, ok)
	assert.Equal(t, va, k.DirectMap(pa))
	assert.Equal(t, before+4, k.Frames.Stats().Used)
	require.NoError(t, k.FreePages(va, 2))
	assert.Error(t, k.FreePages(va, 2), "double free")
	assert.ErrorIs(t, k.FreePages(0xffffc90000000000, 0), syscall.EINVAL)
}

func TestAreaOf(t *testing.T) {
	tests := []struct {
		va   uint64
		area string
	}{
		{0x400000, "user"},
		{0xffff888000001000, "direct map"},
		{0xffffc90000003000, "vmalloc"},
		{0xffffea0000000040, "vmemmap"},
		{0xffffffff81000000, "kernel image"},
		{0xffffffffc0123000, "modules"},
		{0xffffffffff600000, ""}, // vsyscall page: not modelled
		{0x0000800000000000, ""}, // non-canonical
	}
	for _, tt := range tests {
		assert.Equal(t, tt.area, mmu.AreaOf(tt.va), "%#x", tt.va)
	}
}
