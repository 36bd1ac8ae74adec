package loader

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// FuzzLoad feeds arbitrary bytes through the whole load path: decompression, signature trailer, ELF
// checks, layout, resolution, relocation, parameters, and the /proc text of the result. Nothing may
// panic; a failure must be an *Error with an errno.
//
// The seeds are the fixtures without their debug sections: the loader never reads those, and they make
// up nine tenths of each file, so a mutation would mostly land where it cannot matter while every exec
// pays for copying and hashing them (the go fuzzer's cost grows with the input's size). The signed
// fixture stays whole: its signature covers the debug sections.
//
// The fuzzer minimizes every new interesting input (default: up to 60s each, reported as 0 execs/sec
// meanwhile); bound it to keep fuzzing most of the time:
//
//	go test ./loader -run '^$' -fuzz FuzzLoad -fuzztime 10m -fuzzminimizetime 200x
func FuzzLoad(f *testing.F) {
	files, err := filepath.Glob(filepath.Join("..", "testdata", "modules", "*.ko"))
	require.NoError(f, err)
	for _, p := range files {
		b := fixture(f, filepath.Base(p[:len(p)-3]))
		if strings.HasSuffix(p, "_signed.ko") {
			f.Add(b, "")
			continue
		}
		b = withoutDebugSections(f, b)
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

// withoutDebugSections returns a copy of a relocatable ELF whose .debug* sections (and their
// relocations) are empty: section indexes stay as they are, the other sections' bytes are packed
// after the ELF header with their alignment and the section table follows them. It is what
// `strip --strip-debug` makes of a module as far as the loader can tell.
func withoutDebugSections(t testing.TB, b []byte) []byte {
	t.Helper()
	f, err := parseELF(b, nil)
	require.NoError(t, err)
	out := append([]byte(nil), b[:ehdrSize]...)
	offs := make([]uint64, len(f.secs))
	sizes := make([]uint64, len(f.secs))
	for i := 1; i < len(f.secs); i++ {
		s := &f.secs[i]
		sizes[i] = s.Size
		if strings.HasPrefix(s.Name, ".debug") || strings.HasPrefix(s.Name, ".rela.debug") {
			sizes[i] = 0
		}
		if s.Type == shtNobits || sizes[i] == 0 {
			offs[i] = uint64(len(out))
			continue
		}
		for s.Addralign > 1 && uint64(len(out))%s.Addralign != 0 {
			out = append(out, 0)
		}
		offs[i] = uint64(len(out))
		out = append(out, f.sectionData(i)...)
	}
	for len(out)%8 != 0 {
		out = append(out, 0)
	}
	shoff := uint64(len(out))
	le.PutUint64(out[40:], shoff)
	for i := range f.secs {
		h := append([]byte(nil), b[le.Uint64(b[40:])+uint64(i)*shdrSize:][:shdrSize]...)
		if i != 0 {
			le.PutUint64(h[24:], offs[i])
			le.PutUint64(h[32:], sizes[i])
		}
		out = append(out, h...)
	}
	return out
}

// TestWithoutDebugSections: the stripped fixtures load as the whole files do, into the same bytes.
func TestWithoutDebugSections(t *testing.T) {
	for _, name := range []string{"hello", "chardev", "procfs"} {
		t.Run(name, func(t *testing.T) {
			whole := fixture(t, name)
			stripped := withoutDebugSections(t, whole)
			require.Less(t, len(stripped), len(whole)/4)
			k1, _ := testKernel(t, nil)
			m1, err := k1.Load(whole, LoadOptions{})
			require.NoError(t, err)
			k2, _ := testKernel(t, nil)
			m2, err := k2.Load(stripped, LoadOptions{})
			require.NoError(t, err)
			// Every laid-out section holds the same relocated bytes. (Symbols of sections that are not
			// laid out, .modinfo's, keep their place in the temporary copy, which the packing moved.)
			require.Equal(t, m1.Sections, m2.Sections)
			require.NotEmpty(t, m1.Sections)
			for _, s := range m1.Sections {
				b1, ok1 := m1.readAt(s.Addr, s.Size)
				b2, ok2 := m2.readAt(s.Addr, s.Size)
				require.Equal(t, ok1, ok2, s.Name)
				require.Equal(t, b1, b2, s.Name)
			}
			require.Equal(t, m1.Exports, m2.Exports)
			require.Equal(t, [2]uint64{m1.InitFunc, m1.ExitFunc}, [2]uint64{m2.InitFunc, m2.ExitFunc})
		})
	}
}
