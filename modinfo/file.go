package modinfo

import (
	"bytes"
	"errors"
	"io"
	"os"
	"syscall"

	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"
)

// Compressed module formats are recognised by content, never by file name, in libkmod's order.
// Debian's kmod 30 is built with zstd and xz but without zlib, so a gzip'd module is read as it
// is (and then fails as "Exec format error"), exactly as there.
var (
	magicZstd = []byte{0x28, 0xB5, 0x2F, 0xFD}
	magicXZ   = []byte{0xFD, '7', 'z', 'X', 'Z', 0}
)

// maxModuleSize bounds what decompression may produce, so a compression bomb fails with ENOMEM
// instead of exhausting the host; the largest Debian module is under 40 MiB.
var maxModuleSize int64 = 1 << 30 // a variable so tests can lower it

// magicLen is how many bytes libkmod reads to look for a magic: the longest magic. A shorter
// file is EINVAL whatever it holds.
const magicLen = 6

// ReadModule returns a module file's contents, decompressed when it is zstd or xz data, with the
// errnos libkmod's kmod_file_open gives: the open error, EINVAL for a file shorter than a magic
// or for corrupt compressed data.
func ReadModule(path string) ([]byte, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			return nil, pe.Err
		}
		return nil, err
	}
	return Decompress(raw)
}

// Decompress undoes zstd or xz compression recognised by magic and returns anything else as is.
func Decompress(raw []byte) ([]byte, error) {
	if len(raw) < magicLen {
		return nil, syscall.EINVAL
	}
	switch {
	case bytes.HasPrefix(raw, magicZstd):
		return unzstd(raw)
	case bytes.HasPrefix(raw, magicXZ):
		return unxz(raw)
	}
	return raw, nil
}

// unzstd decompresses a zstd stream. libkmod feeds the decoder until the input ends and keeps
// what came out, so a truncated stream yields its decompressed prefix rather than an error; only
// corrupt data is EINVAL.
func unzstd(raw []byte) ([]byte, error) {
	d, err := zstd.NewReader(bytes.NewReader(raw), zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(uint64(maxModuleSize)))
	if err != nil {
		return nil, syscall.EINVAL
	}
	defer d.Close()
	return drain(d, func(err error) error {
		switch {
		case errors.Is(err, io.ErrUnexpectedEOF):
			return nil
		case errors.Is(err, zstd.ErrDecoderSizeExceeded), errors.Is(err, zstd.ErrWindowSizeExceeded):
			return syscall.ENOMEM
		}
		return syscall.EINVAL
	})
}

// unxz decompresses concatenated xz streams; any decoder error, truncation included, is EINVAL
// as liblzma's are in libkmod.
func unxz(raw []byte) ([]byte, error) {
	r, err := xz.NewReader(bytes.NewReader(raw))
	if err != nil {
		return nil, syscall.EINVAL
	}
	return drain(r, func(error) error { return syscall.EINVAL })
}

// drain reads a decompressor to its end, at most maxModuleSize bytes (ENOMEM beyond). classify
// turns a decoder error into the errno to report, or nil when it only marks where the input
// stopped and the output so far stands. Decoders that can write out each block as it is done
// (zstd's WriteTo) do so, so a stream cut inside its final checksum keeps its last block, as
// with libzstd.
func drain(r io.Reader, classify func(error) error) ([]byte, error) {
	out := &boundedBuffer{max: maxModuleSize}
	_, err := io.Copy(out, r)
	switch {
	case errors.Is(err, errTooLarge):
		return nil, syscall.ENOMEM
	case err != nil:
		if errno := classify(err); errno != nil {
			return nil, errno
		}
	}
	return out.buf.Bytes(), nil
}

var errTooLarge = errors.New("decompressed module too large")

// boundedBuffer collects output up to max bytes. It has only Write, so io.Copy cannot bypass
// the bound through a ReadFrom.
type boundedBuffer struct {
	buf bytes.Buffer
	max int64
}

func (b *boundedBuffer) Write(p []byte) (int, error) {
	if int64(b.buf.Len())+int64(len(p)) > b.max {
		return 0, errTooLarge
	}
	return b.buf.Write(p)
}
