package loader

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/klauspost/compress/zstd"
	"github.com/stretchr/testify/require"
)

// TestMappedFileTruncated: a mapped module file that shrinks while it loads fails the load with EIO,
// leaves nothing registered, and the registry goes on loading other modules.
func TestMappedFileTruncated(t *testing.T) {
	whole := fixture(t, "chardev")
	require.GreaterOrEqual(t, len(whole), mapMinSize)
	path := filepath.Join(t.TempDir(), "chardev.ko")
	require.NoError(t, os.WriteFile(path, whole, 0o644))

	file, img, err := openModuleFile(path, nil)
	require.NoError(t, err)
	require.True(t, file.mapped)
	require.Equal(t, whole, img)
	defer file.release()

	k, _ := testKernel(t, nil)
	p, err := k.Prepare(img, LoadOptions{Path: path})
	require.NoError(t, err)
	require.NoError(t, os.Truncate(path, 0)) // the mapping's pages are gone: reading them faults

	defer panicOnFault()()
	_, err = k.LoadPrepared(p)
	require.Error(t, err)
	require.Equal(t, syscall.EIO, Errno(err), "%v", err)
	require.Empty(t, k.Modules())

	m, err := k.Load(whole, LoadOptions{})
	require.NoError(t, err)
	require.Equal(t, "chardev", m.Name)
}

// TestOpenModuleFile: small files and compressed ones are read, large uncompressed ones mapped; the
// image is the file's content either way.
func TestOpenModuleFile(t *testing.T) {
	dir := t.TempDir()
	big := fixture(t, "chardev")
	small := big[:mapMinSize-1]
	enc, err := zstd.NewWriter(nil)
	require.NoError(t, err)
	compressed := enc.EncodeAll(append(big, make([]byte, 4*mapMinSize)...), nil) // still large once compressed
	require.GreaterOrEqual(t, len(compressed), mapMinSize)
	for _, tc := range []struct {
		name   string
		data   []byte
		mapped bool
	}{
		{"big.ko", big, true},
		{"small.ko", small, false},
		{"empty.ko", nil, false},
		{"big.ko.zst", compressed, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, tc.name)
			require.NoError(t, os.WriteFile(path, tc.data, 0o644))
			buf := make([]byte, 0, 100)
			file, img, err := openModuleFile(path, buf)
			require.NoError(t, err)
			require.Equal(t, tc.mapped, file.mapped)
			want := tc.data
			if tc.name == "big.ko.zst" {
				want = append(big, make([]byte, 4*mapMinSize)...)
			}
			require.Equal(t, string(want), string(img))
			// The caller's buffer comes back for reuse: untouched when the file was mapped, else
			// holding (or grown for) the file's bytes.
			back := file.release()
			if tc.mapped {
				require.Equal(t, cap(buf), cap(back))
				require.Same(t, &buf[:1][0], &back[:1][0])
			} else {
				require.Equal(t, len(tc.data), len(back))
			}
		})
	}
	_, _, err = openModuleFile(filepath.Join(dir, "missing.ko"), nil)
	require.ErrorIs(t, err, os.ErrNotExist)
	var pe *os.PathError
	require.ErrorAs(t, err, &pe)
	require.Equal(t, "open", pe.Op)

	_, _, err = openModuleFile(dir, nil) // a directory opens, but does not read
	require.ErrorIs(t, err, syscall.EISDIR)
	require.ErrorAs(t, err, &pe)
	require.Equal(t, "read", pe.Op)
	require.Equal(t, dir, pe.Path)
}
