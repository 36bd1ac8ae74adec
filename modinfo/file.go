package modinfo

import (
	"bytes"
	"encoding/binary"
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
// or for corrupt compressed data. Files beyond maxModuleSize are ENOMEM rather than read.
func ReadModule(path string) ([]byte, error) {
	raw, err := readBounded(path)
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			return nil, pe.Err
		}
		return nil, err
	}
	return Decompress(raw)
}

func readBounded(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	out := &boundedBuffer{max: maxModuleSize}
	if st, err := f.Stat(); err == nil && st.Mode().IsRegular() {
		if st.Size() > maxModuleSize {
			return nil, syscall.ENOMEM
		}
		out.buf.Grow(int(st.Size()) + bytes.MinRead)
	}
	if _, err := io.Copy(out, f); err != nil {
		if errors.Is(err, errTooLarge) {
			return nil, syscall.ENOMEM
		}
		return nil, err
	}
	return out.buf.Bytes(), nil
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
// corrupt data is EINVAL. The Go decoder reports both as an unexpected EOF, so the frame layout
// (zstdTruncated) and whether all input was read tell them apart.
func unzstd(raw []byte) ([]byte, error) {
	truncated := zstdTruncated(raw)
	in := bytes.NewReader(raw)
	// libzstd refuses windows over 2^27 bytes by default (ZSTD_WINDOWLOG_LIMIT_DEFAULT).
	d, err := zstd.NewReader(in, zstd.WithDecoderConcurrency(1),
		zstd.WithDecoderMaxMemory(uint64(maxModuleSize)), zstd.WithDecoderMaxWindow(1<<27))
	if err != nil {
		return nil, syscall.EINVAL
	}
	defer d.Close()
	return drain(d, func(err error) error {
		switch {
		case truncated && errors.Is(err, io.ErrUnexpectedEOF) && in.Len() == 0:
			return nil // the decoder ran out of input, not into bad data
		}
		// Corrupt data, and also a frame declaring more content than the bound or a window
		// larger than libzstd accepts: libzstd fails those as corrupt too.
		return syscall.EINVAL
	})
}

// zstdTruncated reports whether the input ends inside a frame, walking frame and block headers
// (RFC 8878) without decoding: then libzstd would still be waiting for input when it runs out.
// Anything that is not a frame where one should start counts as corrupt, not truncated.
func zstdTruncated(b []byte) bool {
	for len(b) > 0 {
		if len(b) < 4 {
			return true
		}
		magic := binary.LittleEndian.Uint32(b)
		if magic&0xFFFFFFF0 == 0x184D2A50 { // skippable frame: magic, size, data
			if len(b) < 8 {
				return true
			}
			size := uint64(binary.LittleEndian.Uint32(b[4:]))
			if uint64(len(b)) < 8+size {
				return true
			}
			b = b[8+size:]
			continue
		}
		if magic != 0xFD2FB528 || len(b) < 5 {
			return magic == 0xFD2FB528
		}
		fhd := b[4]
		single := fhd>>5&1 == 1
		hdr := 5 + []int{0, 1, 2, 4}[fhd&3] + []int{0, 2, 4, 8}[fhd>>6]
		if !single {
			hdr++ // window descriptor
		} else if fhd>>6 == 0 {
			hdr++ // single-segment frames always carry a content size, one byte at least
		}
		if len(b) < hdr {
			return true
		}
		b = b[hdr:]
		for last := false; !last; {
			if len(b) < 3 {
				return true
			}
			h := uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16
			last = h&1 == 1
			size := int(h >> 3)
			switch h >> 1 & 3 {
			case 1: // RLE: one byte repeated
				size = 1
			case 3: // reserved
				return false
			}
			if len(b) < 3+size {
				return true
			}
			b = b[3+size:]
		}
		if fhd>>2&1 == 1 { // content checksum
			if len(b) < 4 {
				return true
			}
			b = b[4:]
		}
	}
	return false
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
