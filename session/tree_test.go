package session

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"kemu/depmod"
	"kemu/machine"
	"kemu/profile"
)

// copyFixtures copies fixture modules into dir.
func copyFixtures(t *testing.T, dir string, names ...string) {
	t.Helper()
	require.NoError(t, os.MkdirAll(dir, 0o755))
	for _, name := range names {
		data, err := os.ReadFile(filepath.Join("..", "testdata", "modules", name+".ko"))
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(dir, name+".ko"), data, 0o644))
	}
}

// TestDirTreeIndexed: a tree depmod indexed is read through its modules.dep, and modprobe names the
// files in it.
func TestDirTreeIndexed(t *testing.T) {
	root := t.TempDir()
	const release = "6.1.0-56-amd64"
	modDir := filepath.Join(root, "lib", "modules", release)
	copyFixtures(t, filepath.Join(modDir, "extra"), "producer", "consumer")
	x, err := depmod.Build(depmod.Options{BaseDir: root, Version: release, ConfigPaths: []string{}})
	require.NoError(t, err)
	require.NoError(t, x.Write())

	tree, err := DirTree(root)
	require.NoError(t, err)
	assert.Equal(t, modDir, tree.Dir())
	assert.Equal(t, []string{"consumer"}, tree.Lookup("consumer"))

	prof, err := profile.Default()
	require.NoError(t, err)
	s, err := New(prof, Options{Machine: machine.Options{}, Tree: tree})
	require.NoError(t, err)
	defer s.Close()
	rec := run(t, s, "modprobe -v consumer")
	assert.Equal(t, "insmod "+modDir+"/extra/producer.ko \ninsmod "+modDir+"/extra/consumer.ko \n", rec.Output)
	assert.Equal(t, 0, rec.Status)
	rec = run(t, s, "modprobe hello")
	assert.Equal(t, "modprobe: FATAL: Module hello not found in directory "+modDir+"\n", rec.Output)
}

// TestEmbeddedTree: the fixtures are indexed as /lib/modules/<release>, named by their files, and the
// temporary copy goes away with Close.
func TestEmbeddedTree(t *testing.T) {
	tree, err := EmbeddedTree("6.1.0-56-amd64")
	require.NoError(t, err)
	assert.Equal(t, "/lib/modules/6.1.0-56-amd64", tree.Dir())
	assert.Equal(t, []string{"hello_signed"}, tree.Lookup("hello-signed"))
	loads, err := tree.Resolve("hot0")
	require.NoError(t, err)
	require.Len(t, loads, 10)
	assert.Equal(t, "hot9", loads[0].Name)
	assert.Equal(t, "/lib/modules/6.1.0-56-amd64/hot0.ko", tree.Show(loads[9].Path))
	_, ok := tree.File("hello.ko")
	assert.True(t, ok)
	_, ok = tree.File("nosuch.ko")
	assert.False(t, ok)
	require.NoError(t, tree.Close())
	_, err = os.Stat(tree.tmp)
	assert.True(t, os.IsNotExist(err))
}
