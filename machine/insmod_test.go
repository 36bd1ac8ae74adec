package machine

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

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

func TestLoadTimeTextPatching(t *testing.T) {
	m := bootDefault(t, Options{})
	mod, err := m.Insmod(fixture(t, "compute"), "", "compute.ko")
	require.NoError(t, err)
	fn, ok := mod.Lookup("compute_crc_loop")
	require.True(t, ok)
	head, err := m.Read(fn.Addr, 5)
	require.NoError(t, err)
	assert.Equal(t, nop5, head, "ftrace turned `call __fentry__` into a 5-byte NOP")

	// Every .return_sites entry now holds `ret; int3 x4` instead of `jmp __x86_return_thunk`.
	var sites int
	for _, sec := range mod.Sections {
		if sec.Name != ".return_sites" {
			continue
		}
		table, err := m.Read(sec.Addr, sec.Size)
		require.NoError(t, err)
		for i := 0; i+4 <= len(table); i += 4 {
			site := sec.Addr + uint64(i) + uint64(int64(int32(uint32(table[i])|uint32(table[i+1])<<8|uint32(table[i+2])<<16|uint32(table[i+3])<<24)))
			if !m.mapped(site) {
				continue // in the freed init region
			}
			b, err := m.Read(site, 5)
			require.NoError(t, err)
			assert.Equal(t, retInt3x4, b, "site %#x", site)
			sites++
		}
	}
	assert.Positive(t, sites)
}
