package machine

import (
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// debugfs files, created through the handlers as module code would create them.

// guestString is a NUL-terminated copy of s in kernel memory.
func guestString(t *testing.T, m *Machine, s string) uint64 {
	t.Helper()
	p, err := m.kmallocBytes(append([]byte(s), 0), kemuCaller)
	require.NoError(t, err)
	return p
}

func TestDebugfsValues(t *testing.T) {
	m := bootDefault(t, Options{})
	dir, err := hDebugfsCreate(entryDir)(m, trapWith(m, guestString(t, m, "kemu"), 0))
	require.NoError(t, err)
	require.False(t, isErrPtr(dir))
	vars, err := m.kernel.kzalloc(64)
	require.NoError(t, err)
	require.NoError(t, m.WriteAt([]byte{7, 0, 0, 0}, vars))
	require.NoError(t, m.WriteU32(vars+8, uint32(0xfffffffd))) // -3
	create := func(typ, name string, mode, addr uint64) {
		_, err := hDebugfsCreateValue(valueFormats[typ])(m, trapWith(m, guestString(t, m, name), mode, dir, addr))
		require.NoError(t, err)
	}
	create("u32", "count", 0o644, vars)
	create("x8", "flags", 0o444, vars)
	create("atomic_t", "level", 0o644, vars+8)
	create("bool", "on", 0o600, vars+16)
	create("bool", "ro", 0o400, vars+16)
	assert.Subset(t, m.Paths(), []string{"/sys/kernel/debug/kemu/count", "/sys/kernel/debug/kemu/on"})
	assert.NotContains(t, m.Paths(), "/sys/kernel/debug/kemu", "directories are not files")

	steps := []struct {
		path, write string
		werr        error
		read        string
	}{
		{"kemu/count", "", nil, "7\n"},
		{"kemu/flags", "", nil, "0x07\n"},
		{"kemu/count", "0x10\n", nil, "16\n"},
		{"kemu/count", "017", nil, "15\n"},
		{"kemu/count", "12abc", syscall.EINVAL, "15\n"},
		{"kemu/count", "4294967297", nil, "1\n"}, // stored truncated to 32 bits, as *(u32 *)data = val
		{"kemu/flags", "3", syscall.EACCES, "0x01\n"},
		{"kemu/level", "", nil, "-3\n"},
		{"kemu/level", "-20", nil, "-20\n"},
		{"kemu/on", "", nil, "N\n"},
		{"kemu/on", "on\n", nil, "Y\n"},
		{"kemu/on", "maybe", syscall.EINVAL, "Y\n"},
		{"kemu/ro", "n", syscall.EINVAL, "Y\n"},
	}
	for _, s := range steps {
		t.Run(s.path+" "+s.write, func(t *testing.T) {
			if s.write != "" {
				f, err := m.Open(debugfsRoot+s.path, syscall.O_WRONLY)
				require.NoError(t, err)
				n, err := f.Write([]byte(s.write))
				if s.werr != nil {
					assert.ErrorIs(t, err, s.werr)
				} else {
					require.NoError(t, err)
					assert.Equal(t, len(s.write), n)
				}
				require.NoError(t, f.Close())
			}
			assert.Equal(t, s.read, readFile(t, m, debugfsRoot+s.path))
		})
	}

	f, err := m.Open(debugfsRoot+"kemu/count", syscall.O_RDONLY)
	require.NoError(t, err)
	_, err = hDebugfsRemove(m, trapWith(m, dir))
	require.NoError(t, err)
	_, err = f.Read(16)
	assert.ErrorIs(t, err, syscall.EIO, "a file of a removed entry")
	require.NoError(t, f.Close())
	assert.NotContains(t, m.Paths(), "/sys/kernel/debug/kemu/count")
	_, err = m.Open(debugfsRoot+"kemu/count", syscall.O_RDONLY)
	assert.ErrorIs(t, err, syscall.ENOENT)
	_, err = m.Open(debugfsRoot+"kemu", syscall.O_RDONLY)
	assert.ErrorIs(t, err, syscall.ENOENT)
}

func TestDebugfsFileOverModuleOperations(t *testing.T) {
	m := bootWith(t, "chardev")
	require.NotEmpty(t, m.files().misc)
	fops := m.field("miscdevice", "fops", m.files().misc[0].addr)
	name := guestString(t, m, "kemu_misc_view")
	d, err := hDebugfsCreate(debugFops)(m, trapWith(m, name, 0o600, 0, 0, fops))
	require.NoError(t, err)
	require.False(t, isErrPtr(d))
	again, err := hDebugfsCreate(debugFops)(m, trapWith(m, name, 0o600, 0, 0, fops))
	require.NoError(t, err)
	assert.Equal(t, negErrno(syscall.EEXIST), again)

	mod, ok := m.Registry().Find("chardev")
	require.True(t, ok)
	before := mod.Refcount()
	f, err := m.Open(debugfsRoot+"kemu_misc_view", syscall.O_RDONLY)
	require.NoError(t, err)
	assert.Equal(t, before+1, mod.Refcount(), "the real fops' owner is pinned while open")
	assert.Equal(t, "kemu misc device\n", readAll(t, f, 64))
	require.NoError(t, f.Close())
	assert.Equal(t, before, mod.Refcount())
}

func TestParseKernelInt(t *testing.T) {
	for _, c := range []struct {
		in     string
		signed bool
		want   uint64
		err    error
	}{
		{"42", false, 42, nil},
		{"42\n", false, 42, nil},
		{"+42", false, 42, nil},
		{"0x2a", false, 42, nil},
		{"052", false, 42, nil},
		{"0", false, 0, nil},
		{"-1", true, ^uint64(0), nil},
		{"-1", false, 0, syscall.EINVAL},
		{"1_000", false, 0, syscall.EINVAL},
		{"0b101", false, 0, syscall.EINVAL},
		{"42\n\n", false, 0, syscall.EINVAL},
		{"", false, 0, syscall.EINVAL},
		{"18446744073709551616", false, 0, syscall.ERANGE},
		{"9223372036854775808", true, 0, syscall.ERANGE},
		{"-9223372036854775808", true, 1 << 63, nil},
	} {
		got, err := parseKernelInt(c.in, c.signed)
		if c.err != nil {
			assert.ErrorIs(t, err, c.err, "%q", c.in)
			continue
		}
		require.NoError(t, err, "%q", c.in)
		assert.Equal(t, c.want, got, "%q", c.in)
	}
}

func TestDebugfsBlobAndProcMkdirMode(t *testing.T) {
	m := bootDefault(t, Options{})
	data := guestString(t, m, "blob bytes")
	blob := guestStruct(t, m, "debugfs_blob_wrapper")
	m.setField("debugfs_blob_wrapper", "data", blob, 8, data)
	m.setField("debugfs_blob_wrapper", "size", blob, 8, 4)
	d, err := hDebugfsCreate(debugBlob)(m, trapWith(m, guestString(t, m, "blob"), 0o444, 0, blob))
	require.NoError(t, err)
	require.False(t, isErrPtr(d))
	assert.Equal(t, "blob", readFile(t, m, debugfsRoot+"blob"))
	f, err := m.Open(debugfsRoot+"blob", syscall.O_WRONLY)
	require.NoError(t, err)
	_, err = f.Write([]byte("x"))
	assert.ErrorIs(t, err, syscall.EINVAL)
	require.NoError(t, f.Close())

	tr := trapWith(m, guestString(t, m, "kemu"), 0o555, 0)
	tr.Name = "proc_mkdir_mode"
	dir, err := procCreate(entryDir)(m, tr)
	require.NoError(t, err)
	require.NotZero(t, dir)
	_, err = m.Open("/proc/kemu", syscall.O_RDONLY)
	assert.ErrorIs(t, err, syscall.EISDIR)
}
