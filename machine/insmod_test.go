package machine

import (
	"os"
	"path/filepath"
	"testing"

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

func TestInsmodHelloDebug(t *testing.T) {
	m := bootDefault(t, Options{})
	_, err := m.Insmod(fixture(t, "hello"), "", "hello.ko")
	t.Log(m.Dmesg())
	t.Log(m.Summary())
	require.NoError(t, err)
}
