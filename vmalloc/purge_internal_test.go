package vmalloc

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"kemu/mmu"
	"kemu/mmu/mmutest"
)

// An allocation that finds no room purges the lazily freed areas and tries again, as alloc_vmap_area does.
func TestAllocPurgesWhenFull(t *testing.T) {
	mirror := mmutest.NewMirror()
	k, err := mmu.NewKernel(mmu.Config{MemSize: 16 << 20, Mirror: mirror})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, k.Close()) })
	v := New(k)
	v.spaces[SpaceVmalloc] = NewSpans(mmu.VmallocStart, mmu.VmallocStart+8*mmu.PageSize) // room for one 4-page area

	first, err := v.Vmalloc(4*mmu.PageSize, mmu.Caller{Label: "test"})
	require.NoError(t, err)
	require.NoError(t, v.Vfree(first))
	require.Empty(t, mirror.Flushes)

	second, err := v.Vmalloc(4*mmu.PageSize, mmu.Caller{Label: "test"})
	require.NoError(t, err)
	assert.Equal(t, first, second, "the purge made the freed addresses reusable")
	assert.Equal(t, []mmutest.Flush{{Start: first, End: first + 5*mmu.PageSize}}, mirror.Flushes)

	_, err = v.Vmalloc(4*mmu.PageSize, mmu.Caller{Label: "test"})
	assert.Error(t, err, "full with nothing to purge")
}
