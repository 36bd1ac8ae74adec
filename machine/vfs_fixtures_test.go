package machine

import (
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The iterdev and kobj fixtures' load and unload messages (testdata/modules/iterdev.c, kobj.c),
// and the cost of a read through ->read_iter.

func TestVfsFixturesInitAndExit(t *testing.T) {
	cases := []struct {
		name string
		init []string
		exit []string
	}{
		{"iterdev", append(loadLines("iterdev"), "iterdev: kemu_iter and kemu_wait registered"), []string{"iterdev: exit"}},
		{"kobj", append(loadLines("kobj"), "kobj: created /sys/kernel/kemu_kobj"), []string{"kobj: exit, value 7 after 0 stores"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := bootSysfs(t, c.name)
			assert.Equal(t, c.init, m.Messages())
			require.NoError(t, m.Rmmod(c.name, false))
			assert.Equal(t, append(c.init, c.exit...), m.Messages())
			for _, r := range m.Registrations() {
				assert.NotEqual(t, c.name, r.Module, "left registered: %+v", r)
			}
			for _, p := range m.Paths() {
				assert.False(t, strings.Contains(p, "kemu_"), "left openable: %s", p)
			}
		})
	}
}

// BenchmarkReadIter is one open(2), read(2) of the 17-byte content and close(2) of /dev/kemu_iter:
// a kiocb and an iov_iter per read, copy_to_iter emulated in Go.
func BenchmarkReadIter(b *testing.B) {
	m := bootDefault(b, Options{})
	_, err := m.Insmod(fixture(b, "iterdev"), "", "iterdev.ko")
	require.NoError(b, err)
	benchOpenReadClose(b, m, "/dev/kemu_iter", 64)
}

// benchOpenReadClose times open(2), one read(2) of n bytes and close(2) of path.
func benchOpenReadClose(b *testing.B, m *Machine, path string, n int) {
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		f, err := m.Open(path, syscall.O_RDONLY)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := f.Read(n); err != nil {
			b.Fatal(err)
		}
		if err := f.Close(); err != nil {
			b.Fatal(err)
		}
	}
}
