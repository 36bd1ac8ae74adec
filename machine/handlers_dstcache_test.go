package machine

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestDstCache(t *testing.T) {
	m, a := bootArena(t)
	dc := a.object("dst_cache", 1)
	require.Zero(t, call(t, m, hDstCacheInit, dc, 0xcc0))
	cache, err := m.readField("dst_cache", "cache", dc, 8)
	require.NoError(t, err)
	require.NotZero(t, cache)
	dst, err := m.readField("dst_cache_pcpu", "dst", m.percpu+cache, 8)
	require.NoError(t, err)
	assert.Zero(t, dst, "no cached route")
	ts, err := m.readField("dst_cache", "reset_ts", dc, 8)
	require.NoError(t, err)
	assert.Equal(t, m.kernel.clock.jiffies(), ts)

	other := a.object("dst_cache", 1)
	require.Zero(t, call(t, m, hDstCacheInit, other, 0xcc0))
	second, err := m.readField("dst_cache", "cache", other, 8)
	require.NoError(t, err)
	assert.NotEqual(t, cache, second, "each cache has its own slots")

	call(t, m, hDstCacheDestroy, dc)
	call(t, m, hDstCacheDestroy, a.object("dst_cache", 1)) // never initialised
	assert.NotContains(t, m.Dmesg(), "cannot release")
}
