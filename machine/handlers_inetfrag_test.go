package machine

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// nf_defrag_ipv6's life: inet_frags_init, a fqdir for init_net, fqdir_exit, inet_frags_fini. The
// cache exists in between and is gone after; the count follows the fqdirs.
func TestInetFrags(t *testing.T) {
	m, a := bootArena(t)
	f := a.object("inet_frags", 1)
	a.set("inet_frags", "frags_cache_name", f, 0, 8, a.str("nf-frags"))
	a.set("inet_frags", "qsize", f, 0, 4, 200)
	refcnt := func() uint64 {
		v, err := m.readField("inet_frags", "refcnt", f, 4)
		require.NoError(t, err)
		return v
	}
	cache := func() uint64 {
		v, err := m.readField("inet_frags", "frags_cachep", f, 8)
		require.NoError(t, err)
		return v
	}

	require.Zero(t, call(t, m, hInetFragsInit, f))
	require.NotZero(t, cache())
	_, known := m.kernel.caches[cache()]
	assert.True(t, known, "a kmem_cache of the machine's")
	assert.Equal(t, uint64(1), refcnt())

	slot := a.alloc(8)
	net, _ := m.prof.Lookup("init_net")
	require.Zero(t, call(t, m, hFqdirInit, slot, f, net.Addr))
	fq, err := m.ReadU64(slot)
	require.NoError(t, err)
	require.NotZero(t, fq)
	owner, err := m.readField("fqdir", "f", fq, 8)
	require.NoError(t, err)
	assert.Equal(t, f, owner)
	assert.Equal(t, uint64(2), refcnt(), "the fqdir holds a reference")

	call(t, m, hFqdirExit, fq)
	assert.Equal(t, uint64(1), refcnt())
	held := cache()
	call(t, m, hInetFragsFini, f)
	assert.Zero(t, cache())
	_, known = m.kernel.caches[held]
	assert.False(t, known, "the cache is destroyed")
	assert.NotContains(t, m.Dmesg(), "blocked for more than")
}
