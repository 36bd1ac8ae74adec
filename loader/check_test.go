package loader

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestLoadOrder(t *testing.T) {
	deps := map[string][]string{"a": {"b", "c"}, "b": {"c"}, "x": {"y"}, "y": {"x"}}
	got := LoadOrder([]string{"/m/a.ko", "/m/b.ko.xz", "/m/c.ko", "/m/d-e.ko", "/m/x.ko", "/m/y.ko"}, deps)
	assert.Equal(t, []string{"/m/c.ko", "/m/b.ko.xz", "/m/a.ko", "/m/d-e.ko", "/m/y.ko", "/m/x.ko"}, got)
	assert.Equal(t, "d_e", ModuleName("/m/d-e.ko.zst"))
}

func TestCheckFixtureTree(t *testing.T) {
	k, _ := testKernel(t, nil)
	files, err := FindModules(filepath.Join("..", "testdata", "modules"))
	require.NoError(t, err)
	deps, err := DependsFromModinfo(files)
	require.NoError(t, err)
	require.Equal(t, []string{"hot1"}, deps["hot0"])
	order := LoadOrder(files, deps)
	failed := map[string]string{}
	n := 0
	k.CheckFiles(order, 2, func(r CheckResult) {
		n++
		if r.Err != nil {
			failed[ModuleName(r.Path)] = r.Err.Error()
		}
	})
	assert.Equal(t, len(files), n)
	// The two fixtures built to fail, and the signed copy of hello (same name: EEXIST).
	assert.Len(t, failed, 3, "%v", failed)
	for _, name := range []string{"consumer_nons", "proprietary", "hello_signed"} {
		assert.Contains(t, failed, name)
	}
	for _, name := range []string{"hot0", "consumer", "producer"} {
		m, ok := k.Find(name)
		require.True(t, ok, name)
		assert.Equal(t, Live, m.State)
	}
}

func TestParseModinfo(t *testing.T) {
	mi := parseModinfo([]byte("license=GPL\x00\x00\x00name=x\x00intree\x00depends=a,b\x00alias=p\x00alias=q=r\x00vermagic="))
	assert.Equal(t, Modinfo{{"license", "GPL"}, {"name", "x"}, {"depends", "a,b"}, {"alias", "p"}, {"alias", "q=r"}, {"vermagic", ""}}, mi)
	_, ok := mi.Get("intree")
	assert.False(t, ok, "a string without '=' is no tag")
	assert.Equal(t, []string{"p", "q=r"}, mi.All("alias"))

	v := parseVersions(append(append(make([]byte, 8), []byte("module_layout")...), make([]byte, 64-8-13+10)...))
	assert.Equal(t, []Version{{CRC: 0, Name: "module_layout"}}, v, "a partial trailing record is ignored")
}

func TestInsmodError(t *testing.T) {
	cases := []struct {
		err  error
		want string
	}{
		{kerr(syscall.ENOEXEC, "Invalid ELF header len 0"), "Invalid module format"},
		{kerr(syscall.ENOENT, "x: Unknown symbol y (err -2)"), "Unknown symbol in module"},
		{kerr(syscall.EINVAL, "x"), "Invalid parameters"},
		{&Error{Errno: syscall.EEXIST}, "File exists"},
		{fmt.Errorf("wrapped: %w", &Error{Errno: syscall.EKEYREJECTED}), "Key was rejected by service"},
	}
	for _, c := range cases {
		assert.Equal(t, "insmod: ERROR: could not insert module m.ko: "+c.want, InsmodError("m.ko", c.err))
	}
}

func TestReadModulesDep(t *testing.T) {
	dir := t.TempDir()
	dep := filepath.Join(dir, "modules.dep")
	require.NoError(t, os.WriteFile(dep, []byte("kernel/a/x-y.ko.xz: kernel/b/z.ko kernel/c/w.ko\nkernel/b/z.ko: kernel/c/w.ko\nkernel/c/w.ko:\n"), 0o644))
	assert.Equal(t, dep, FindModulesDep(dir))
	deps, err := ReadModulesDep(dep)
	require.NoError(t, err)
	assert.Equal(t, map[string][]string{"x_y": {"z", "w"}, "z": {"w"}, "w": nil}, deps)
	order := LoadOrder([]string{"/t/kernel/a/x-y.ko.xz", "/t/kernel/b/z.ko", "/t/kernel/c/w.ko"}, deps)
	assert.Equal(t, []string{"/t/kernel/c/w.ko", "/t/kernel/b/z.ko", "/t/kernel/a/x-y.ko.xz"}, order)
	assert.Equal(t, "", FindModulesDep(filepath.Join(dir, "none")))
}
