package machine

import (
	"math"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestSeekOnFiles(t *testing.T) {
	m := bootWith(t, "chardev", "procfs")
	f, err := m.Open("/proc/kemu_procfs", syscall.O_RDONLY)
	require.NoError(t, err)
	first, err := f.Read(8)
	require.NoError(t, err)
	assert.Equal(t, "opens: 1", string(first))
	for _, c := range []struct {
		offset int64
		whence int
		want   int64
		err    error
		rest   string
	}{
		{0, seekSet, 0, nil, procfsText(1)},
		{7, seekSet, 7, nil, procfsText(1)[7:]},
		{-3, seekCur, int64(len(procfsText(1))) - 3, nil, "16\n"},
		{0, seekEnd, 0, syscall.EINVAL, ""},
		{-1, seekSet, 0, syscall.EINVAL, ""},
	} {
		pos, err := f.Seek(c.offset, c.whence)
		if c.err != nil {
			assert.ErrorIs(t, err, c.err, "seek(%d, %d)", c.offset, c.whence)
			continue
		}
		require.NoError(t, err)
		assert.Equal(t, c.want, pos)
		assert.Equal(t, c.rest, readAll(t, f, 5), "after seek(%d, %d)", c.offset, c.whence)
	}
	require.NoError(t, f.Close())

	dev, err := m.Open("/dev/kemu_chardev", syscall.O_RDONLY)
	require.NoError(t, err)
	_, err = dev.Seek(0, seekSet)
	assert.ErrorIs(t, err, syscall.ESPIPE, "chardev has no llseek")
	require.NoError(t, dev.Close())

	served, err := m.Open("/proc/devices", syscall.O_RDONLY)
	require.NoError(t, err)
	text := readAll(t, served, 7)
	_, err = served.Seek(0, seekSet)
	require.NoError(t, err)
	assert.Equal(t, text, readAll(t, served, 64))
	require.NoError(t, served.Close())
}

func TestLlseekHelpers(t *testing.T) {
	m := bootDefault(t, Options{})
	file, inode := guestStruct(t, m, "file"), guestStruct(t, m, "inode")
	m.setField("file", "f_inode", file, 8, inode)
	m.setField("inode", "i_size", inode, 8, 100)
	einval, enxio := negErrno(syscall.EINVAL), negErrno(syscall.ENXIO)
	neg := func(v int64) uint64 { return uint64(v) }
	for _, c := range []struct {
		name    string
		h       Handler
		args    []uint64
		want    uint64
		wantPos uint64
	}{
		{"default set", hDefaultLlseek, []uint64{10, seekSet}, 10, 10},
		{"default cur", hDefaultLlseek, []uint64{5, seekCur}, 15, 15},
		{"default cur 0", hDefaultLlseek, []uint64{0, seekCur}, 15, 15},
		{"default end", hDefaultLlseek, []uint64{neg(-1), seekEnd}, 99, 99},
		{"default negative", hDefaultLlseek, []uint64{neg(-1), seekSet}, einval, 99},
		{"default data past the end", hDefaultLlseek, []uint64{100, seekData}, enxio, 99},
		{"default hole", hDefaultLlseek, []uint64{5, seekHole}, 100, 100},
		{"default bad whence", hDefaultLlseek, []uint64{0, 9}, einval, 100},
		{"generic beyond the end", hGenericFileLlseek, []uint64{math.MaxInt64, seekSet}, math.MaxInt64, math.MaxInt64},
		{"fixed within", hFixedSizeLlseek, []uint64{neg(-10), seekEnd, 50}, 40, 40},
		{"fixed beyond", hFixedSizeLlseek, []uint64{60, seekSet, 50}, einval, 40},
		{"noop", hNoopLlseek, []uint64{7, seekSet}, 40, 40},
		{"setpos", hVfsSetpos, []uint64{8, 10}, 8, 8},
		{"setpos beyond", hVfsSetpos, []uint64{11, 10}, einval, 8},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := c.h(m, trapWith(m, append([]uint64{file}, c.args...)...))
			require.NoError(t, err)
			assert.Equal(t, c.want, got)
			pos, err := m.ReadU64(file + m.offset("file", "f_pos"))
			require.NoError(t, err)
			assert.Equal(t, c.wantPos, pos)
		})
	}
}
