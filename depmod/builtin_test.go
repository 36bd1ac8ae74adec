package depmod

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"kemu/modinfo"
)

func TestBuiltinInfoAndLookupName(t *testing.T) {
	dir := t.TempDir()
	write := func(name, data string) {
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644))
	}
	write("modules.dep", "kernel/snd-x.ko:\n")
	write("modules.builtin", "kernel/drivers/a-b.ko\nkernel/fs/c.ko\n")
	write("modules.builtin.modinfo", "a_b.license=GPL\x00a_b.flag\x00a_b.alias=fs-ab\x00c.alias=fs-c\x00a_b.late=not in the first run\x00")
	db, err := LoadDB(dir)
	require.NoError(t, err)

	cases := []struct {
		module string
		want   []modinfo.Entry
		err    error
	}{
		{"a_b", []modinfo.Entry{{Key: "license", Value: "GPL"}, {Key: "flag", Value: ""}, {Key: "alias", Value: "fs-ab"}}, nil},
		{"c", []modinfo.Entry{{Key: "alias", Value: "fs-c"}}, nil},
		{"nosuch", nil, syscall.ENOSYS},
	}
	for _, c := range cases {
		got, err := db.BuiltinInfo(c.module)
		assert.Equal(t, c.want, got, c.module)
		assert.ErrorIs(t, err, c.err)
	}

	names := []struct {
		name string
		want []Match
	}{
		{"snd-x", []Match{{Module: "snd_x"}}},
		{"snd_x.ko", []Match{{Module: "snd_x"}}},
		{"a-b", []Match{{Module: "a_b"}}},
		{"fs-c", []Match{{"c", "fs_c"}}}, // a built-in module's alias counts; modules.alias's do not
		{"nosuch", nil},
	}
	for _, n := range names {
		assert.Equal(t, n.want, db.LookupName(n.name), n.name)
	}

	require.NoError(t, os.Remove(filepath.Join(dir, "modules.builtin.modinfo")))
	_, err = db.BuiltinInfo("a_b")
	assert.ErrorIs(t, err, syscall.ENOENT, "an older kernel has no modules.builtin.modinfo")
}
