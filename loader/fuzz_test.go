package loader

import (
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// FuzzLoad feeds arbitrary bytes through the whole load path: decompression, ELF checks, layout,
// resolution, relocation, parameters. Nothing may panic; a failure must be an *Error with an errno.
func FuzzLoad(f *testing.F) {
	files, err := filepath.Glob(filepath.Join("..", "testdata", "modules", "*.ko"))
	require.NoError(f, err)
	for _, p := range files {
		b := fixture(f, filepath.Base(p[:len(p)-3]))
		f.Add(b, "")
		// Mutations around the places the checks look at: headers, section table, symbols.
		f.Add(b[:len(b)/2], "")
		for _, off := range []int{16, 40, 58, 60, 62, len(b) - 100, len(b) / 3} {
			m := append([]byte(nil), b...)
			m[off] ^= 0x5a
			f.Add(m, "x=1")
		}
	}
	f.Add([]byte("\x7fELF"), "")
	f.Add([]byte{0xfd, '7', 'z', 'X', 'Z', 0, 0, 0}, "")
	p, err := defaultProfile()
	require.NoError(f, err)
	f.Fuzz(func(t *testing.T, data []byte, params string) {
		k, err := NewKernel(Config{Profile: p})
		if err != nil {
			t.Fatal(err)
		}
		m, err := k.Load(data, LoadOptions{Params: params})
		if err != nil {
			if Errno(err) == 0 {
				t.Fatalf("error without errno: %v", err)
			}
			return
		}
		if m.State != Coming || m.Core.Size != uint64(len(m.Core.Bytes)) {
			t.Fatalf("bad module %s state %s", m.Name, m.State)
		}
		_ = k.ProcModules()
		_ = k.Kallsyms()
	})
}
