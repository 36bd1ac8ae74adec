package loader

import (
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"kemu/profile"
)

// defaultProfile is the embedded Debian profile, or, while a build has none embedded, one assembled
// from the installed linux-headers (Module.symvers, .config) with made-up addresses and no BTF.
var defaultProfile = sync.OnceValues(func() (*profile.Profile, error) {
	if p, err := profile.Default(); err == nil {
		return p, nil
	}
	return headersProfile("/usr/src/linux-headers-6.1.0-56-amd64", "6.1.0-56-amd64")
})

func headersProfile(dir, release string) (*profile.Profile, error) {
	f, err := os.Open(filepath.Join(dir, "Module.symvers"))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	exports, err := profile.ParseSymvers(f)
	if err != nil {
		return nil, err
	}
	c, err := os.Open(filepath.Join(dir, ".config"))
	if err != nil {
		return nil, err
	}
	defer c.Close()
	config, err := profile.ParseConfig(c)
	if err != nil {
		return nil, err
	}
	p := &profile.Profile{Release: release, Config: config, Exports: exports, Vermagic: profile.Vermagic(release, config, "")}
	for i, e := range exports {
		if e.Module == "vmlinux" {
			p.Symbols = append(p.Symbols, profile.Symbol{Addr: 0xffffffff81000000 + uint64(i)*64, Type: 'T', Name: e.Name})
		}
	}
	return profile.New(p), nil
}

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
	t.Logf("log: %q", log)
	assert.Equal(t, "hello", m.Name)
	assert.Equal(t, Coming, m.State)
	assert.NotZero(t, m.InitFunc)
	assert.NotZero(t, m.ThisModule)
	for _, r := range m.Core.Ranges {
		t.Logf("core %#x %#x %s %s", r.Addr, r.Size, r.Perm, r.Class)
	}
	for _, s := range m.Symbols {
		t.Logf("%#x %c %s", s.Addr, s.Type, s.Name)
	}
	t.Logf("params %+v", m.Params)
	_ = syscall.ENOEXEC
}
