package machine

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"kemu/loader"
	"kemu/mmu"
)

func TestFreePages(t *testing.T) {
	m, _ := bootArena(t)
	const order = 2
	p := call(t, m, hGetFreePages, 0, order)
	require.NotZero(t, p)
	assert.Zero(t, p&(mmu.PageSize-1), "page aligned")
	require.NoError(t, m.WriteU64(p+mmu.PageSize<<order-8, 0xfeed), "all 2^order pages are mapped")

	z := call(t, m, hGetZeroedPage, 0)
	require.NotZero(t, z)
	buf := make([]byte, mmu.PageSize)
	require.NoError(t, m.ReadAt(buf, z))
	assert.Equal(t, make([]byte, mmu.PageSize), buf, "get_zeroed_page zeroes")

	assert.Zero(t, call(t, m, hGetFreePages, gfpNoWarn, mmu.MaxOrder+1), "beyond MAX_ORDER")
	assert.NotContains(t, m.Dmesg(), "beyond MAX_ORDER", "__GFP_NOWARN")
	assert.Zero(t, call(t, m, hGetFreePages, 0, mmu.MaxOrder+1))
	assert.Contains(t, m.Dmesg(), "beyond MAX_ORDER")

	call(t, m, hFreePages, p, order)
	call(t, m, hFreePages, z, 0)
	call(t, m, hFreePages, 0, 0)
	assert.NotContains(t, m.Dmesg(), "Bad page state")
	call(t, m, hFreePages, z, 0) // twice
	assert.Contains(t, m.Dmesg(), "Bad page state")
	assert.NotZero(t, m.taint&loader.TaintBadPage)
	again := call(t, m, hGetFreePages, 0, order)
	assert.Equal(t, p, again, "freed pages are reused")
}
