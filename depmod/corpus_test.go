package depmod

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"kemu/corpus"
)

// corpusTree lays Debian's modules out as a depmod tree: base/lib/modules/<release> with the module
// directory linked in and the files depmod reads (modules.order, modules.builtin[.modinfo]) copied.
func corpusTree(tb testing.TB, tree *corpus.Tree) (base, modDir string) {
	tb.Helper()
	base = tb.TempDir()
	modDir = filepath.Join(base, "lib/modules", tree.Release)
	require.NoError(tb, os.MkdirAll(modDir, 0o755))
	entries, err := os.ReadDir(tree.ModulesDir)
	require.NoError(tb, err)
	for _, e := range entries {
		src := filepath.Join(tree.ModulesDir, e.Name())
		switch {
		case e.Name() == "build" || e.Name() == "source" || strings.HasSuffix(e.Name(), ".bin"):
		case e.IsDir():
			require.NoError(tb, os.Symlink(src, filepath.Join(modDir, e.Name())))
		case e.Name() == "modules.order" || strings.HasPrefix(e.Name(), "modules.builtin"):
			data, err := os.ReadFile(src)
			require.NoError(tb, err)
			require.NoError(tb, os.WriteFile(filepath.Join(modDir, e.Name()), data, 0o644))
		}
	}
	return base, modDir
}

// TestCorpusMatchesKmod runs kmod's depmod and ours on Debian's whole module tree and compares
// every file they write.
func TestCorpusMatchesKmod(t *testing.T) {
	kmodDepmod(t)
	tree := corpus.ForTest(t, "amd64")
	base, modDir := corpusTree(t, tree)
	args := []string{"-C", t.TempDir(), "-b", base, tree.Release}

	start := time.Now()
	want := runKmod(t, modDir, args...)
	kmodTime := time.Since(start)
	start = time.Now()
	got := runKemu(t, modDir, args...)
	kemuTime := time.Since(start)

	require.Equal(t, 0, want.code, want.stderr)
	assert.Equal(t, want.code, got.code)
	assert.Equal(t, want.stderr, got.stderr)
	require.Equal(t, keys(want.files), keys(got.files))
	for name, data := range want.files {
		assert.True(t, bytes.Equal(data, got.files[name]), "%s differs", name)
	}
	lines := func(name string) int { return bytes.Count(want.files[name], []byte("\n")) }
	require.Greater(t, lines("modules.dep"), 4000)
	t.Logf("%d modules, %d aliases, %d symbols, %d softdeps, %d devnames: kmod %v, kemu %v",
		lines("modules.dep"), lines("modules.alias")-1, lines("modules.symbols")-1,
		lines("modules.softdep")-1, lines("modules.devname")-1, kmodTime.Round(time.Millisecond), kemuTime.Round(time.Millisecond))

	// The symbol checks of -e -E against the kernel's Module.symvers, printed with -n.
	if _, err := os.Stat(tree.Symvers); err != nil {
		t.Skipf("no Module.symvers: %v", err)
	}
	args = append([]string{"-n", "-e", "-E", tree.Symvers}, args...)
	want, got = runKmod(t, modDir, args...), runKemu(t, modDir, args...)
	assert.Equal(t, want.code, got.code)
	assert.Equal(t, want.stderr, got.stderr)
	assert.True(t, want.stdout == got.stdout, "depmod -n output differs")
	t.Logf("-e -E Module.symvers: %d warnings", strings.Count(want.stderr, "\n"))
}

// TestResolveMatchesModprobe compares Resolve with kmod's modprobe (see matchModprobe) on the Debian
// tree indexed by our depmod: every module with soft dependencies, every 25th module of
// modules.order and every 15th alias without wildcards.
func TestResolveMatchesModprobe(t *testing.T) {
	modprobe := kmodModprobe(t)
	tree := corpus.ForTest(t, "amd64")
	base, modDir := corpusTree(t, tree)
	x, err := Build(Options{BaseDir: base, Version: tree.Release, ConfigPaths: []string{}})
	require.NoError(t, err)
	require.NoError(t, x.Write())
	db, err := LoadDB(modDir)
	require.NoError(t, err)

	var names []string
	for _, r := range db.softdeps {
		names = append(names, r.pattern)
	}
	for i, m := range x.Modules {
		if i%25 == 0 {
			names = append(names, m.Name)
		}
	}
	plain := 0
	for _, a := range db.aliases {
		if !strings.ContainsAny(a.pattern, "*?[") {
			if plain%15 == 0 {
				names = append(names, a.pattern)
			}
			plain++
		}
	}
	checked := matchModprobe(t, modprobe, db, base, tree.Release, names)
	require.Greater(t, checked, 200)
	t.Logf("%d names resolved as modprobe --show-depends does", checked)
}
