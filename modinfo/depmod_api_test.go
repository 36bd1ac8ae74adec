package modinfo

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func openFixture(t testing.TB, name string) *Object {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(fixtureDir, name+".ko"))
	require.NoError(t, err)
	o, err := OpenObject(data)
	require.NoError(t, err)
	return o
}

func symbolNamed(syms []Symbol, name string) (Symbol, bool) {
	for _, s := range syms {
		if s.Name == name {
			return s, true
		}
	}
	return Symbol{}, false
}

// TestDepmodSymbols checks exports against imports across the producer/consumer fixtures: the CRC
// consumer recorded for producer_add must be the one producer exports it with.
func TestDepmodSymbols(t *testing.T) {
	exports, err := openFixture(t, "producer").ExportedSymbols()
	require.NoError(t, err)
	exported, ok := symbolNamed(exports, "producer_add")
	require.True(t, ok, "producer exports producer_add: %v", exports)
	assert.NotZero(t, exported.CRC)

	imports, err := openFixture(t, "consumer").DependencySymbols()
	require.NoError(t, err)
	needed, ok := symbolNamed(imports, "producer_add")
	require.True(t, ok, "consumer needs producer_add: %v", imports)
	assert.Equal(t, BindUndef, needed.Bind)
	assert.Equal(t, exported.CRC, needed.CRC)
	layout, ok := symbolNamed(imports, "module_layout")
	require.True(t, ok, "the unreferenced __versions record module_layout is listed")
	assert.Equal(t, layout, imports[len(imports)-1])

	_, err = openFixture(t, "hello").ExportedSymbols()
	assert.ErrorIs(t, err, syscall.ENOENT, "a module exporting nothing")

	info, err := openFixture(t, "hello").Modinfo()
	require.NoError(t, err)
	full, err := Entries(mustRead(t, "hello"))
	require.NoError(t, err)
	assert.Equal(t, full[:len(info)], info, "Modinfo is Entries without the signature fields")
}

func mustRead(t testing.TB, name string) []byte {
	data, err := os.ReadFile(filepath.Join(fixtureDir, name+".ko"))
	require.NoError(t, err)
	return data
}

// FuzzDepmodSymbols feeds damaged modules to the depmod readers: errors are fine, panics are not.
func FuzzDepmodSymbols(f *testing.F) {
	for _, n := range []string{"producer", "consumer", "hello"} {
		data, err := os.ReadFile(filepath.Join(fixtureDir, n+".ko"))
		require.NoError(f, err)
		f.Add(data)
		f.Add(data[:len(data)/2])
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		o, err := OpenObject(data)
		if err != nil {
			return
		}
		_, _ = o.ExportedSymbols()
		_, _ = o.DependencySymbols()
		_, _ = o.Modinfo()
	})
}
