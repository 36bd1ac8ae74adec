package machine

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A seven-node tree, keys 1..7 with 4 at the root, walked both ways.
func TestRbTreeWalk(t *testing.T) {
	m, a := bootArena(t)
	size, ok := m.structSize("rb_node")
	require.True(t, ok)
	node := map[int]uint64{}
	for k := 1; k <= 7; k++ {
		node[k] = a.alloc(size)
	}
	link := func(parent, left, right int) {
		a.set("rb_node", "rb_left", node[parent], 0, 8, node[left])
		a.set("rb_node", "rb_right", node[parent], 0, 8, node[right])
		for _, c := range []int{left, right} {
			a.set("rb_node", "__rb_parent_color", node[c], 0, 8, node[parent]|1) // red
		}
	}
	link(4, 2, 6)
	link(2, 1, 3)
	link(6, 5, 7)
	root := a.alloc(8)
	require.NoError(t, m.WriteU64(root, node[4]))
	key := map[uint64]int{}
	for k, n := range node {
		key[n] = k
	}

	walk := func(first, step Handler) []int {
		var keys []int
		for n := call(t, m, first, root); n != 0 && len(keys) < 10; n = call(t, m, step, n) {
			keys = append(keys, key[n])
		}
		return keys
	}
	assert.Equal(t, []int{1, 2, 3, 4, 5, 6, 7}, walk(handlers["rb_first"], handlers["rb_next"]))
	assert.Equal(t, []int{7, 6, 5, 4, 3, 2, 1}, walk(handlers["rb_last"], handlers["rb_prev"]))

	empty := a.alloc(8)
	assert.Zero(t, call(t, m, handlers["rb_first"], empty))
	assert.Zero(t, call(t, m, handlers["rb_last"], empty))
	cleared := a.alloc(size)
	a.set("rb_node", "__rb_parent_color", cleared, 0, 8, cleared) // RB_CLEAR_NODE
	assert.Zero(t, call(t, m, handlers["rb_next"], cleared))
}
