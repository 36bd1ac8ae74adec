package loader

import (
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"kemu/profile"
)

// defaultProfile is the embedded Debian 6.1.0-56-amd64 profile, decoded once for all tests.
var defaultProfile = sync.OnceValues(profile.Default)

// testKernel returns a registry over the embedded Debian profile whose log lines go to *log.
func testKernel(t testing.TB, log *[]string) (*Kernel, *FlatMemory) {
	t.Helper()
	p, err := defaultProfile()
	require.NoError(t, err)
	mem := NewFlatMemory()
	k, err := NewKernel(Config{Profile: p, Memory: mem, Printk: func(level int, line string) {
		if log != nil {
			*log = append(*log, line)
		}
	}})
	require.NoError(t, err)
	return k, mem
}

func fixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "testdata", "modules", name+".ko"))
	require.NoError(t, err)
	return b
}

func TestLoadHello(t *testing.T) {
	var log []string
	k, _ := testKernel(t, &log)
	m, err := k.Load(fixture(t, "hello"), LoadOptions{})
	require.NoError(t, err, "log: %q", log)
	// The kernel's lines in the kernel's order: check_modinfo, then the signature taint once formed.
	assert.Equal(t, []string{
		"hello: loading out-of-tree module taints kernel.",
		"hello: module verification failed: signature and/or required key missing - tainting kernel",
	}, log)
	assert.Equal(t, "hello", m.Name)
	assert.Equal(t, Coming, m.State)
	initFn, ok := m.Lookup("init_module")
	require.True(t, ok)
	assert.Equal(t, initFn.Addr, m.InitFunc)
	exitFn, ok := m.Lookup("cleanup_module")
	require.True(t, ok)
	assert.Equal(t, exitFn.Addr, m.ExitFunc)
	this, ok := m.Lookup("__this_module")
	require.True(t, ok)
	assert.Equal(t, this.Addr, m.ThisModule)
	// struct module's init pointer holds init_module after relocation.
	st, err := k.prof.Struct("module")
	require.NoError(t, err)
	initOff, err := st.Offset("init")
	require.NoError(t, err)
	b, ok := m.readAt(m.ThisModule+initOff, 8)
	require.True(t, ok)
	assert.Equal(t, m.InitFunc, le.Uint64(b))
	assert.Equal(t, []string{"text", "rodata", "data"}, classes(m.Core.Ranges))
	assert.Equal(t, []string{"text", "data"}, classes(m.Init.Ranges), "init has .init.text, .init.data and the symbol tables")
	assert.Equal(t, "hello", cstring(symbolBytes(t, m, "__this_module", 24+56)[24:], 0), "struct module's name")
	state, ok := m.readAt(m.StateAddr, 4)
	require.True(t, ok)
	assert.Equal(t, m.ThisModule, m.StateAddr, "state is struct module's first field")
	assert.Equal(t, []byte{byte(Coming), 0, 0, 0}, state)
}

func classes(rs []Range) []string {
	var out []string
	for _, r := range rs {
		out = append(out, r.Class)
	}
	return out
}
