package loader

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"os"
	"syscall"

	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"
)

// MaxImageSize bounds a decompressed module image. The largest Debian 6.1 module is about 20 MiB
// uncompressed; 256 MiB leaves room while keeping a decompression bomb from exhausting the host.
const MaxImageSize = 256 << 20

// Compression names a module file's compression, detected from its content.
type Compression string

const (
	None Compression = ""
	XZ   Compression = "xz"
	Zstd Compression = "zstd"
	Gzip Compression = "gzip"
)

// DetectCompression identifies xz, zstd and gzip streams by their magic bytes.
func DetectCompression(data []byte) Compression {
	switch {
	case bytes.HasPrefix(data, []byte{0xfd, '7', 'z', 'X', 'Z', 0}):
		return XZ
	case bytes.HasPrefix(data, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		return Zstd
	case bytes.HasPrefix(data, []byte{0x1f, 0x8b}):
		return Gzip
	}
	return None
}

// Decompress returns the module image inside data: data itself when it is not compressed, otherwise the
// decompressed bytes, at most MaxImageSize of them. Corrupt streams are ENOEXEC, as the kernel's
// module_decompress() reports them; an image over the bound is EFBIG.
func Decompress(data []byte) ([]byte, error) { return decompress(data, MaxImageSize) }

func decompress(data []byte, limit int64) ([]byte, error) {
	c := DetectCompression(data)
	var r io.Reader
	var err error
	switch c {
	case None:
		return data, nil
	case XZ:
		r, err = xz.NewReader(bytes.NewReader(data))
	case Gzip:
		r, err = gzip.NewReader(bytes.NewReader(data))
	case Zstd:
		var d *zstd.Decoder
		d, err = zstd.NewReader(bytes.NewReader(data), zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(MaxImageSize))
		if err == nil {
			defer d.Close()
			r = d
		}
	}
	if err != nil {
		return nil, &Error{Errno: syscall.ENOEXEC, Detail: fmt.Sprintf("%s stream: %v", c, err)}
	}
	var out bytes.Buffer
	n, err := io.Copy(&out, io.LimitReader(r, limit+1))
	if err != nil {
		return nil, &Error{Errno: syscall.ENOEXEC, Detail: fmt.Sprintf("decompressing %s: %v", c, err)}
	}
	if n > limit {
		return nil, &Error{Errno: syscall.EFBIG, Detail: fmt.Sprintf("%s image larger than %d bytes", c, limit)}
	}
	return out.Bytes(), nil
}

// ReadFile reads a module file and decompresses it when its content is compressed.
func ReadFile(path string) ([]byte, error) {
	_, img, err := readFile(path, nil)
	return img, err
}

// readFile reads the file at path into buf (grown when it is too small) and returns the bytes read
// (buf's storage, for reuse once img is no longer needed) and the module image: the same bytes, or
// their decompression.
func readFile(path string, buf []byte) (data, img []byte, err error) {
	f, err := os.Open(path)
	if err != nil {
		return buf, nil, err
	}
	defer f.Close()
	size := int64(-1)
	if st, err := f.Stat(); err == nil {
		size = st.Size()
	}
	return readOpenFile(f, path, size, buf)
}

// readOpenFile is readFile for an open file called name whose size is known (-1 when it is not).
func readOpenFile(f io.Reader, name string, size int64, buf []byte) (data, img []byte, err error) {
	// One byte more than the size, as os.ReadFile does, so that the read normally ends at EOF
	// without growing the buffer; a file that grows meanwhile is still read to its end.
	want := 512
	if size >= 0 && size < 1<<40 {
		want = int(size) + 1
	}
	if cap(buf) < want { // grown with headroom, so that a reused buffer is seldom reallocated
		buf = make([]byte, 0, max(want, 2*cap(buf)))
	}
	data = buf[:0]
	for {
		n, err := f.Read(data[len(data):cap(data)])
		data = data[:len(data)+n]
		if err == io.EOF {
			break
		}
		if err != nil {
			return data, nil, err // a *PathError naming the file
		}
		if len(data) == cap(data) {
			data = append(data, 0)[:len(data)]
		}
	}
	img, err = Decompress(data)
	if err != nil {
		return data, nil, fmt.Errorf("%s: %w", name, err)
	}
	return data, img, nil
}
