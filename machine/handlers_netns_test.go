package machine

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// for_each_net over net_namespace_list visits init_net once, from the first pernet registration on.
func TestNetNamespaceList(t *testing.T) {
	m, a := bootArena(t)
	list, ok := m.prof.Lookup("net_namespace_list")
	require.True(t, ok)
	net, ok := m.prof.Lookup("init_net")
	require.True(t, ok)
	off, ok := m.fieldOffset("net", "list")
	require.True(t, ok)

	ops := a.object("pernet_operations", 1)
	require.Zero(t, call(t, m, hRegisterPernet, ops))
	var visited []uint64
	for p, n := list.Addr, 0; n < 4; n++ {
		next, err := m.ReadU64(p)
		require.NoError(t, err)
		if next == list.Addr {
			break
		}
		visited = append(visited, next-off)
		p = next
	}
	assert.Equal(t, []uint64{net.Addr}, visited)
	prev, err := m.ReadU64(list.Addr + 8)
	require.NoError(t, err)
	assert.Equal(t, net.Addr+off, prev, "list_del-safe: prev links back")

	require.NoError(t, m.linkNetNamespaceList(net.Addr))
	next, err := m.ReadU64(list.Addr)
	require.NoError(t, err)
	assert.Equal(t, net.Addr+off, next, "linked once")
}
