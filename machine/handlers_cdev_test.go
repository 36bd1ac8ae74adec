package machine

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestCdevAlloc(t *testing.T) {
	m, _ := bootArena(t)
	p := call(t, m, hCdevAlloc)
	require.NotZero(t, p)
	off, ok := m.fieldOffset("cdev", "list")
	require.True(t, ok)
	next, err := m.ReadU64(p + off)
	require.NoError(t, err)
	assert.Equal(t, p+off, next, "INIT_LIST_HEAD")
	require.Len(t, kinds(m.Registrations(), cdevDynamic), 1)

	require.Zero(t, call(t, m, hCdevAdd, p, 240<<20, 1))
	call(t, m, hCdevDel, p)
	assert.Empty(t, kinds(m.Registrations(), cdevDynamic))
	// cdev_del freed it: freeing it again is a double free.
	_, err = hKfree(m, &Trap{Name: "kfree", m: m, rsp: m.stackTop - 64, regs: [6]uint64{p}})
	var bug *kernelBug
	assert.ErrorAs(t, err, &bug)

	// A cdev of the module's own (cdev_init) is not freed by cdev_del.
	own := call(t, m, handlers["__kmalloc"], 256, gfpZero)
	call(t, m, hCdevInit, own, 0)
	call(t, m, hCdevDel, own)
	assert.Zero(t, call(t, m, hKfree, own), "still allocated")
}
