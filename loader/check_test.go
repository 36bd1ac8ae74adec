package loader

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
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

// TestCheckFilesFlags checks a batch as insmod --force-vermagic / --force-modversion would load it:
// the flags reach every module (the kernel's "kernel tainted" lines, taint F) and a forced load is
// treated as unsigned, so signature enforcement rejects even a correctly signed module.
func TestCheckFilesFlags(t *testing.T) {
	dir := t.TempDir()
	badMagic := editFixture(t, "hello")
	badMagic.replace(".modinfo", "SMP", "XMP")
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, b, 0o644))
		return p
	}
	badMagicPath := write("hello.ko", badMagic.b)
	producerPath := write("producer.ko", fixture(t, "producer"))
	signedPath := write("hello_signed.ko", fixture(t, "hello_signed"))

	cases := []struct {
		name    string
		file    string
		flags   Flags
		enforce bool
		errno   syscall.Errno // 0: loads
		taints  string
		logLine string
	}{
		{"bad vermagic refused", badMagicPath, 0, false, syscall.ENOEXEC, "", "hello: version magic '6.1.0-56-amd64 XMP"},
		{"bad vermagic forced", badMagicPath, IgnoreVermagic, false, 0, "FOE", "hello: bad vermagic: kernel tainted."},
		{"bad vermagic, only modversions forced", badMagicPath, IgnoreModversions, false, syscall.ENOEXEC, "", "hello: version magic '6.1.0-56-amd64 XMP"},
		{"modversions forced", producerPath, IgnoreModversions, false, 0, "FOE", "producer: module_layout: kernel tainted."},
		{"no flags", producerPath, 0, false, 0, "OE", ""},
		{"signed, enforced, not forced", signedPath, 0, true, 0, "O", ""},
		{"signed, enforced, forced: mangled", signedPath, IgnoreVermagic, true, syscall.EKEYREJECTED, "", "Loading of unsigned module is rejected"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var log []string
			k, _ := testKernel(t, &log)
			k.cfg.SigEnforce, k.cfg.Certs = c.enforce, fixtureCerts(t)
			var results []CheckResult
			k.CheckFilesWith([]string{c.file}, CheckOptions{Workers: 2, Flags: c.flags}, func(r CheckResult) {
				results = append(results, r)
			})
			require.Len(t, results, 1)
			r := results[0]
			if c.errno != 0 {
				assert.Equal(t, c.errno, Errno(r.Err), "%v", r.Err)
				assert.Nil(t, r.Module)
			} else {
				require.NoError(t, r.Err)
				assert.Equal(t, c.taints, r.Module.Taints.String())
			}
			if c.logLine != "" {
				assert.True(t, slices.ContainsFunc(log, func(l string) bool { return strings.Contains(l, c.logLine) }), "%q not in %q", c.logLine, log)
			}
		})
	}
}
