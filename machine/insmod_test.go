package machine

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"kemu/loader"
	"kemu/mmu"
	"kemu/profile"
)

// fixture reads a fixture module from testdata/modules.
func fixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "testdata", "modules", name+".ko"))
	require.NoError(t, err)
	return b
}

// bootDefault boots a machine on the embedded Debian 6.1 profile.
func bootDefault(t testing.TB, opts Options) *Machine {
	t.Helper()
	prof, err := profile.Default()
	require.NoError(t, err)
	m, err := New(prof, opts)
	require.NoError(t, err)
	t.Cleanup(func() { m.Close() })
	return m
}

func TestPlacementStrategies(t *testing.T) {
	prof, err := profile.Default()
	require.NoError(t, err)
	// vmalloc is Linux's module_alloc: hello loads and runs.
	m, err := New(prof, Options{Strategy: "vmalloc"})
	require.NoError(t, err)
	defer m.Close()
	mod, err := m.Insmod(fixture(t, "hello"), "", "hello.ko")
	require.NoError(t, err)
	assert.GreaterOrEqual(t, mod.Core.Addr, mmu.ModulesVaddr)
	assert.Equal(t, 1, m.Placement().Stats().Regions, "init region freed, core placed")

	// kmalloc puts module memory in the direct map, outside the top 2 GiB that -mcmodel=kernel
	// code assumes: the 32-bit sign-extended relocations overflow and the load fails as Linux's does.
	k, err := New(prof, Options{Strategy: "kmalloc"})
	require.NoError(t, err)
	defer k.Close()
	_, err = k.Insmod(fixture(t, "hello"), "", "hello.ko")
	assert.Equal(t, syscall.ENOEXEC, loader.Errno(err))

	_, err = New(prof, Options{Strategy: "hugepack"})
	assert.Error(t, err)
}
