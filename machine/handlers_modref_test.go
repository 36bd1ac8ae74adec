package machine

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// __module_get(THIS_MODULE) pins a module against rmmod until module_put, as mtd pins itself for
// each registered user.
func TestModuleGetPinsTheModule(t *testing.T) {
	m := bootDefault(t, Options{})
	_, err := m.Insmod(fixture(t, "hello"), "", "hello.ko")
	require.NoError(t, err)
	mod := m.registry.Modules()[0]
	require.Zero(t, mod.Refcount())

	call(t, m, hModuleGetUnconditional, mod.ThisModule)
	call(t, m, hModuleGetUnconditional, 0) // built-in: nothing to count
	assert.Equal(t, 1, mod.Refcount())
	assert.Error(t, m.Rmmod("hello", false), "pinned")

	call(t, m, hModulePut, mod.ThisModule)
	assert.NoError(t, m.Rmmod("hello", false))
}
