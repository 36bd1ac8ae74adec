package corpus

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"kemu"
	"kemu/profile"
)

// The profile the fetch script wrote is what LoadDir reads from the tree, and the embedded default
// is the same kernel's profile byte for byte when the tree is of the same release.
func TestDebianProfileMatchesTree(t *testing.T) {
	tree := ForTest(t, "amd64")
	fetched, err := tree.Profile()
	require.NoError(t, err)
	fromTree, err := profile.LoadDir(tree.Root)
	require.NoError(t, err)

	assert.Equal(t, tree.Release, fetched.Release)
	assert.True(t, fromTree.Equal(fetched), "profile.kprof differs from LoadDir(%s)", tree.Root)

	var rebuilt bytes.Buffer
	require.NoError(t, profile.Write(&rebuilt, fromTree))
	onDisk, err := os.ReadFile(tree.ProfilePath)
	require.NoError(t, err)
	assert.True(t, bytes.Equal(onDisk, rebuilt.Bytes()), "profile build is deterministic")
	if tree.Release == "6.1.0-56-amd64" {
		assert.True(t, bytes.Equal(kemu.DefaultProfile, onDisk), "the embedded profile is this tree's")
	}
	t.Logf("%s: %s; profile %d bytes", tree.Dir, fetched, len(onDisk))
}

// Every module Debian built carries the vermagic the profile derives from the config, and its
// __versions CRCs for vmlinux symbols are the ones Module.symvers lists.
func TestDebianModulesAgreeWithProfile(t *testing.T) {
	tree := ForTest(t, "amd64")
	p, err := tree.Profile()
	require.NoError(t, err)
	mods, err := tree.Modules()
	require.NoError(t, err)
	require.Greater(t, len(mods), 4000)
	t.Logf("%d modules under %s", len(mods), tree.ModulesDir)

	checked, crcs := 0, 0
	for i, path := range mods {
		if i%40 != 0 || !strings.HasSuffix(path, ".ko") { // a spread sample keeps the test quick
			continue
		}
		f, err := elf.Open(path)
		require.NoError(t, err, path)
		modinfo := section(t, f, ".modinfo")
		assert.Contains(t, string(modinfo), "\x00vermagic="+p.Vermagic+"\x00", filepath.Base(path))
		// struct modversion_info { unsigned long crc; char name[MODULE_NAME_LEN]; }: 64 bytes on x86-64.
		versions := section(t, f, "__versions")
		for off := 0; off+64 <= len(versions); off += 64 {
			crc := uint32(binary.LittleEndian.Uint64(versions[off:]))
			name := string(bytes.TrimRight(versions[off+8:off+64], "\x00"))
			e, ok := p.Export(name)
			if !ok || e.Module != "vmlinux" {
				continue
			}
			assert.Equal(t, e.CRC, crc, "%s: CRC of %s", filepath.Base(path), name)
			crcs++
		}
		f.Close()
		checked++
	}
	assert.Greater(t, checked, 50)
	assert.Greater(t, crcs, 500)
	t.Logf("checked vermagic of %d modules and %d vmlinux CRCs", checked, crcs)
}

func section(t *testing.T, f *elf.File, name string) []byte {
	t.Helper()
	s := f.Section(name)
	if s == nil {
		return nil
	}
	b, err := s.Data()
	require.NoError(t, err)
	return b
}
