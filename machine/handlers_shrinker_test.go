package machine

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestShrinkerRegistration(t *testing.T) {
	m, a := bootArena(t)
	field := func(s uint64, name string, size int) uint64 {
		v, err := m.readField("shrinker", name, s, size)
		require.NoError(t, err)
		return v
	}
	plain := a.object("shrinker", 1)
	memcg := a.object("shrinker", 1)
	a.set("shrinker", "flags", memcg, 0, 4, shrinkerMemcgAware)
	memcg2 := a.object("shrinker", 1)
	a.set("shrinker", "flags", memcg2, 0, 4, shrinkerMemcgAware)

	require.Zero(t, call(t, m, hRegisterShrinker, plain, a.str("sunrpc_cred-%d"), 3))
	assert.NotZero(t, field(plain, "nr_deferred", 8), "nr_deferred allocated")
	assert.Equal(t, uint64(shrinkerRegistered), field(plain, "flags", 4))
	regs := kinds(m.Registrations(), shrinkerKind)
	require.Len(t, regs, 1)
	assert.Equal(t, "sunrpc_cred-3", regs[0].Name)

	require.Zero(t, call(t, m, hRegisterShrinker, memcg, a.str("a")))
	require.Zero(t, call(t, m, hRegisterShrinker, memcg2, a.str("b")))
	assert.Zero(t, field(memcg, "nr_deferred", 8), "memcg-aware: per-memcg counters instead")
	assert.Equal(t, uint64(0), field(memcg, "id", 4))
	assert.Equal(t, uint64(1), field(memcg2, "id", 4), "ids are distinct")

	for _, s := range []uint64{plain, memcg, memcg2} {
		call(t, m, hUnregisterShrinker, s)
		assert.Zero(t, field(s, "flags", 4)&shrinkerRegistered)
		assert.Zero(t, field(s, "nr_deferred", 8))
	}
	assert.Empty(t, kinds(m.Registrations(), shrinkerKind))
	call(t, m, hUnregisterShrinker, plain) // not registered: ignored
	memcg3 := a.object("shrinker", 1)
	a.set("shrinker", "flags", memcg3, 0, 4, shrinkerMemcgAware)
	require.Zero(t, call(t, m, hRegisterShrinker, memcg3, a.str("c")))
	assert.Equal(t, uint64(0), field(memcg3, "id", 4), "a freed id is reused")
}
