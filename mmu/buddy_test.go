package mmu

import (
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestFrameAllocatorInitialBlocks(t *testing.T) {
	tests := []struct {
		name   string
		frames uint64
		blocks [MaxOrder + 1]uint64
	}{
		{"one max block", 1024, [MaxOrder + 1]uint64{10: 1}},
		{"two max blocks", 2048, [MaxOrder + 1]uint64{10: 2}},
		{"odd size", 1024 + 512 + 3, [MaxOrder + 1]uint64{0: 1, 1: 1, 9: 1, 10: 1}},
		{"tiny", 5, [MaxOrder + 1]uint64{0: 1, 2: 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, err := NewFrameAllocator(tt.frames)
			require.NoError(t, err)
			s := a.Stats()
			assert.Equal(t, tt.blocks, s.FreeBlocks)
			assert.Equal(t, tt.frames, s.Free)
			assert.Zero(t, s.Used)
		})
	}
}

func TestFrameAllocatorSplitAndMerge(t *testing.T) {
	a, err := NewFrameAllocator(1024)
	require.NoError(t, err)

	p0, err := a.Alloc(0)
	require.NoError(t, err)
	assert.Equal(t, uint64(0), p0, "lowest block first")
	// Splitting one order-10 block for an order-0 request leaves one free block of each order 0..9.
	s := a.Stats()
	for o := 0; o < MaxOrder; o++ {
		assert.Equal(t, uint64(1), s.FreeBlocks[o], "order %d", o)
	}
	assert.Equal(t, uint64(1), s.Used)
	assert.Equal(t, 9, s.LargestFreeOrder)

	p1, err := a.Alloc(0)
	require.NoError(t, err)
	assert.Equal(t, uint64(PageSize), p1, "the buddy of frame 0")
	p3, err := a.Alloc(3)
	require.NoError(t, err)
	assert.Equal(t, uint64(8*PageSize), p3, "order 3 is 8-frame aligned")

	require.NoError(t, a.Free(p0, 0))
	require.NoError(t, a.Free(p3, 3))
	require.NoError(t, a.Free(p1, 0))
	s = a.Stats()
	assert.Equal(t, [MaxOrder + 1]uint64{10: 1}, s.FreeBlocks, "everything merges back")
	assert.Equal(t, 0.0, s.Unusable(MaxOrder))
}

func TestFrameAllocatorErrors(t *testing.T) {
	a, err := NewFrameAllocator(16)
	require.NoError(t, err)
	p, err := a.Alloc(2)
	require.NoError(t, err)

	tests := []struct {
		name  string
		pa    uint64
		order int
	}{
		{"wrong order", p, 1},
		{"inside the block", p + PageSize, 0},
		{"unaligned", p + 1, 2},
		{"beyond RAM", 1 << 30, 0},
		{"never allocated", 8 * PageSize, 3},
		{"bad order", p, MaxOrder + 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.ErrorIs(t, a.Free(tt.pa, tt.order), syscall.EINVAL)
		})
	}
	require.NoError(t, a.Free(p, 2))
	assert.ErrorIs(t, a.Free(p, 2), syscall.EINVAL, "double free")

	_, err = a.Alloc(5)
	assert.ErrorIs(t, err, syscall.ENOMEM, "16 frames hold no order-5 block")
	_, err = a.Alloc(-1)
	assert.ErrorIs(t, err, syscall.EINVAL)
}

func TestFrameStatsUnusable(t *testing.T) {
	a, err := NewFrameAllocator(64)
	require.NoError(t, err)
	// Take every frame, then give back every other one: 32 free frames, all order 0, none mergeable.
	var pas []uint64
	for range 64 {
		pa, err := a.Alloc(0)
		require.NoError(t, err)
		pas = append(pas, pa)
	}
	for i := 0; i < 64; i += 2 {
		require.NoError(t, a.Free(pas[i], 0))
	}
	s := a.Stats()
	assert.Equal(t, uint64(32), s.FreeBlocks[0])
	assert.Equal(t, 0, s.LargestFreeOrder)
	assert.Equal(t, 0.0, s.Unusable(0))
	assert.Equal(t, 1.0, s.Unusable(1), "no order-1 request can be served")
	_, err = a.Alloc(1)
	assert.ErrorIs(t, err, syscall.ENOMEM, "half the memory free but fragmented")

	require.NoError(t, a.Free(pas[1], 0)) // frames 0,1 merge, then 0..3 cannot (3 is taken)
	s = a.Stats()
	assert.Equal(t, uint64(1), s.FreeBlocks[1])
	assert.InDelta(t, 31.0/33.0, s.Unusable(1), 1e-9)
}

func TestFrameAllocatorExact(t *testing.T) {
	a, err := NewFrameAllocator(1024)
	require.NoError(t, err)
	pa, err := a.AllocExact(3)
	require.NoError(t, err)
	assert.Equal(t, uint64(3), a.Stats().Used, "the fourth frame went back")
	next, err := a.Alloc(0)
	require.NoError(t, err)
	assert.Equal(t, pa+3*PageSize, next, "the trimmed tail is reusable at once")
	require.NoError(t, a.Free(next, 0))

	assert.ErrorIs(t, a.FreeExact(pa+PageSize, 2), syscall.EINVAL, "not its start")
	assert.ErrorIs(t, a.FreeExact(pa, 4), syscall.EINVAL, "longer than the run")
	// Like free_pages_exact, a run may be given back in pieces that follow its blocks.
	require.NoError(t, a.FreeExact(pa, 2))
	require.NoError(t, a.FreeExact(pa+2*PageSize, 1))
	assert.Equal(t, [MaxOrder + 1]uint64{10: 1}, a.Stats().FreeBlocks, "all merged back")

	for _, n := range []uint64{1, 5, 7, 100, 513, 1024} {
		pa, err := a.AllocExact(n)
		require.NoError(t, err, "%d", n)
		assert.Equal(t, n, a.Stats().Used)
		require.NoError(t, a.FreeExact(pa, n))
	}
	assert.Equal(t, [MaxOrder + 1]uint64{10: 1}, a.Stats().FreeBlocks)
}
