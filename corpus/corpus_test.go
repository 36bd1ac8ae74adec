package corpus

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fakeTree lays out a finished tree the way the fetch script does, with empty files.
func fakeTree(t *testing.T, cache, release string, stamped bool, modules ...string) {
	t.Helper()
	dir := filepath.Join(cache, "debian", release)
	files := []string{
		"profile.kprof",
		"root/usr/lib/debug/boot/System.map-" + release,
		"root/usr/src/linux-headers-" + release + "/Module.symvers",
		"root/boot/vmlinux-" + release,
	}
	if stamped {
		files = append(files, "stamp")
	}
	for _, m := range modules {
		files = append(files, filepath.Join("root/lib/modules", release, m))
	}
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "root/lib/modules", release), 0o755))
	for _, f := range files {
		p := filepath.Join(dir, f)
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		require.NoError(t, os.WriteFile(p, nil, 0o644))
	}
}

func TestDebianFindsCachedTrees(t *testing.T) {
	cache := t.TempDir()
	t.Setenv("KEMU_CACHE", cache)
	fakeTree(t, cache, "6.1.0-9-amd64", true)
	fakeTree(t, cache, "6.1.0-56-amd64", true, "kernel/drivers/net/dummy.ko", "kernel/fs/a.ko.xz", "kernel/fs/b.ko.zst",
		"kernel/fs/c.ko.gz", "modules.dep", "kernel/fs/notes.txt")
	fakeTree(t, cache, "6.1.0-57-amd64", false) // not finished: ignored
	fakeTree(t, cache, "6.1.0-56-cloud-amd64", true)

	tests := []struct {
		flavor  string
		release string
	}{
		{"", "6.1.0-56-amd64"}, // newest finished amd64; 56 > 9 numerically
		{"amd64", "6.1.0-56-amd64"},
		{"cloud-amd64", "6.1.0-56-cloud-amd64"},
	}
	for _, tt := range tests {
		t.Run(tt.flavor, func(t *testing.T) {
			tree, err := Debian(tt.flavor)
			require.NoError(t, err)
			assert.Equal(t, tt.release, tree.Release)
			dir := filepath.Join(cache, "debian", tt.release)
			assert.Equal(t, dir, tree.Dir)
			assert.Equal(t, filepath.Join(dir, "root/lib/modules", tt.release), tree.ModulesDir)
			assert.Equal(t, filepath.Join(dir, "profile.kprof"), tree.ProfilePath)
			assert.FileExists(t, tree.SystemMap)
			assert.FileExists(t, tree.Symvers)
			assert.FileExists(t, tree.Vmlinux)
		})
	}

	tree, err := Debian("amd64")
	require.NoError(t, err)
	mods, err := tree.Modules()
	require.NoError(t, err)
	rel := func(p string) string { r, _ := filepath.Rel(tree.ModulesDir, p); return r }
	var names []string
	for _, m := range mods {
		names = append(names, rel(m))
	}
	assert.Equal(t, []string{"kernel/drivers/net/dummy.ko", "kernel/fs/a.ko.xz", "kernel/fs/b.ko.zst", "kernel/fs/c.ko.gz"}, names)
}

func TestDebianErrors(t *testing.T) {
	cache := t.TempDir()
	t.Setenv("KEMU_CACHE", cache)
	_, err := Debian("arm64")
	assert.ErrorContains(t, err, "unknown flavor")

	fakeTree(t, cache, "6.1.0-56-rt-amd64", true)
	require.NoError(t, os.Remove(filepath.Join(cache, "debian/6.1.0-56-rt-amd64/profile.kprof")))
	_, err = Debian("rt-amd64")
	assert.ErrorContains(t, err, "incomplete")
	assert.ErrorContains(t, err, "profile.kprof")
}

func TestCacheDir(t *testing.T) {
	t.Setenv("KEMU_CACHE", "/tmp/some/cache")
	dir, err := CacheDir()
	require.NoError(t, err)
	assert.Equal(t, "/tmp/some/cache", dir)

	t.Setenv("KEMU_CACHE", "")
	t.Setenv("HOME", "/home/someone")
	dir, err = CacheDir()
	require.NoError(t, err)
	assert.Equal(t, "/home/someone/.cache/kemu", dir)
}
