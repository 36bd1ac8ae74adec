package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// runKemu runs the command tree with args and returns what it printed. Cobra keeps flag values
// between runs, so the global flags start from their defaults each time.
func runKemu(t *testing.T, args ...string) (string, error) {
	t.Helper()
	saved := global
	t.Cleanup(func() { global = saved })
	global = globalFlags{strategy: "vmalloc", tlb: "skylake"}
	var out bytes.Buffer
	rootCmd.SetOut(&out)
	rootCmd.SetErr(&out)
	rootCmd.SetArgs(args)
	err := rootCmd.Execute()
	return out.String(), err
}

func kernelDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	files := map[string]string{
		"Module.symvers":                "0x92997ed8\t_printk\tvmlinux\tEXPORT_SYMBOL\t\n0xeade228f\tdma_buf_export\tvmlinux\tEXPORT_SYMBOL_GPL\tDMA_BUF\n",
		"System.map-6.1.0-99-test":      "ffffffff81a07e3d T _printk\nffffffff81b00000 T dma_buf_export\n",
		"config-6.1.0-99-test":          "CONFIG_SMP=y\nCONFIG_MODULE_UNLOAD=y\nCONFIG_HZ=250\n",
		"include/config/kernel.release": "ignored when the names carry the release\n",
	}
	for name, content := range files {
		require.NoError(t, os.MkdirAll(filepath.Dir(filepath.Join(dir, name)), 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644))
	}
	return dir
}

func TestProfileBuildAndShow(t *testing.T) {
	dir := kernelDir(t)
	file := filepath.Join(t.TempDir(), "test.kprof")

	out, err := runKemu(t, "profile", "build", dir, "-o", file)
	require.NoError(t, err)
	assert.Contains(t, out, "kernel 6.1.0-99-test (2 symbols, 2 exports, 0 bytes BTF)")
	require.FileExists(t, file)

	for _, src := range []string{file, dir} {
		out, err = runKemu(t, "profile", "show", src)
		require.NoError(t, err)
		assert.Contains(t, out, "release:   6.1.0-99-test\n")
		assert.Contains(t, out, `vermagic:  "6.1.0-99-test SMP mod_unload "`)
		assert.Contains(t, out, "exports:   2 (1 GPL-only, 1 in a namespace)")
		assert.Contains(t, out, "  CONFIG_HZ=250\n")
	}

	out, err = runKemu(t, "profile", "show", "--json", file)
	require.NoError(t, err)
	var s profileSummary
	require.NoError(t, json.Unmarshal([]byte(out), &s))
	assert.Equal(t, profileSummary{
		Release: "6.1.0-99-test", Vermagic: "6.1.0-99-test SMP mod_unload ", Symbols: 2, Exports: 2,
		GPLExports: 1, Namespaced: 1, ConfigCount: 3, Config: map[string]string{"CONFIG_SMP": "y", "CONFIG_MODULE_UNLOAD": "y", "CONFIG_HZ": "250"},
	}, s)

	out, err = runKemu(t, "--kernel", file, "profile", "show")
	require.NoError(t, err)
	assert.Contains(t, out, "release:   6.1.0-99-test\n", "--kernel selects the profile")
}

func TestProfileShowDefault(t *testing.T) {
	out, err := runKemu(t, "profile", "show")
	require.NoError(t, err)
	assert.Contains(t, out, "release:   6.1.0-56-amd64\n")
	assert.Contains(t, out, `vermagic:  "6.1.0-56-amd64 SMP preempt mod_unload modversions "`)
}

func TestProfileStruct(t *testing.T) {
	out, err := runKemu(t, "profile", "struct", "module", "state", "mkobj.kobj.name")
	require.NoError(t, err)
	assert.Equal(t, "struct module: size "+moduleSize(t)+"\n"+
		"         0     4  state                            enum module_state\n"+
		"        80     8  mkobj.kobj.name                  const char *\n", out)

	out, err = runKemu(t, "profile", "struct", "kobject")
	require.NoError(t, err)
	assert.Contains(t, out, "struct kobject: size 64\n")
	assert.Contains(t, out, "      60:0     4  state_initialized                unsigned int :1\n")
	assert.Contains(t, out, "      60:1     4  state_in_sysfs                   unsigned int :1\n")

	out, err = runKemu(t, "--json", "profile", "struct", "list_head")
	require.NoError(t, err)
	var layout struct {
		Name   string
		Size   uint64
		Fields []struct{ Path string }
	}
	require.NoError(t, json.Unmarshal([]byte(out), &layout))
	assert.Equal(t, "list_head", layout.Name)
	assert.Equal(t, uint64(16), layout.Size)
	require.Len(t, layout.Fields, 2)
	assert.Equal(t, "prev", layout.Fields[1].Path)

	_, err = runKemu(t, "profile", "struct", "module", "nosuch")
	assert.ErrorContains(t, err, `no member "nosuch"`)
	_, err = runKemu(t, "profile", "struct", "no_such_struct")
	assert.ErrorContains(t, err, "not in the kernel's BTF")
}

// moduleSize is sizeof(struct module) in the embedded profile, as text.
func moduleSize(t *testing.T) string {
	p, err := loadProfile()
	require.NoError(t, err)
	s, err := p.Struct("module")
	require.NoError(t, err)
	return strconv.FormatUint(s.Size, 10)
}

func TestLoadProfile(t *testing.T) {
	saved := global
	t.Cleanup(func() { global = saved })

	global.kernel = ""
	p, err := loadProfile()
	require.NoError(t, err)
	assert.Equal(t, "6.1.0-56-amd64", p.Release)

	global.kernel = kernelDir(t)
	p, err = loadProfile()
	require.NoError(t, err)
	assert.Equal(t, "6.1.0-99-test", p.Release)

	global.kernel = filepath.Join(t.TempDir(), "missing.kprof")
	_, err = loadProfile()
	assert.ErrorIs(t, err, os.ErrNotExist)
}

func TestProfileCommandErrors(t *testing.T) {
	dir := kernelDir(t)
	notKernel := filepath.Join(dir, "config-6.1.0-99-test")
	tests := []struct {
		name    string
		args    []string
		wantErr string
	}{
		{"build needs -o", []string{"profile", "build", dir, "-o", ""}, "-o FILE is required"},
		{"build of a missing directory", []string{"profile", "build", filepath.Join(dir, "nope"), "-o", filepath.Join(dir, "x.kprof")}, "no such file"},
		{"build of an incomplete directory", []string{"profile", "build", filepath.Join(dir, "include"), "-o", filepath.Join(dir, "x.kprof")}, "no Module.symvers"},
		{"show of a file that is not a profile", []string{"profile", "show", notKernel}, "not a kemu profile"},
		{"vmlinux of a file that is not a bzImage", []string{"profile", "vmlinux", notKernel, "-o", filepath.Join(dir, "vmlinux")}, "not a bzImage"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := runKemu(t, tt.args...)
			require.ErrorContains(t, err, tt.wantErr)
		})
	}
	assert.NoFileExists(t, filepath.Join(dir, "x.kprof"), "a failed build leaves no file")
	assert.NoFileExists(t, filepath.Join(dir, "vmlinux"))
}
