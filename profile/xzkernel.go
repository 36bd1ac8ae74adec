package profile

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"hash/crc64"
	"io"

	"github.com/ulikunitz/xz/lzma"
)

// The kernel compresses its payload with `xz --check=crc32 --x86 --lzma2` (scripts/xz_wrap.sh): an
// xz stream whose blocks run the LZMA2 output through the x86 BCJ filter. github.com/ulikunitz/xz
// decodes LZMA2 but no BCJ filter, so this file reads the xz container itself (the .xz file format
// specification, version 1.0.4), lets ulikunitz/xz/lzma decode each block's LZMA2 data and undoes
// the BCJ transform here.

const (
	xzFilterX86   = 0x04
	xzFilterLZMA2 = 0x21

	xzCheckNone   = 0x0
	xzCheckCRC32  = 0x1
	xzCheckCRC64  = 0x4
	xzCheckSHA256 = 0xa
)

// maxVmlinux bounds the decompressed size: Debian's vmlinux is ~60 MB; anything far beyond is not a
// kernel, and the bound keeps hostile input from exhausting memory.
const maxVmlinux = 1 << 30

// decompressKernelXZ decodes the xz stream at the start of b; bytes after the stream are ignored.
func decompressKernelXZ(b []byte) ([]byte, error) {
	if len(b) < 12 || !bytes.Equal(b[:6], xzMagic) {
		return nil, errors.New("no xz stream header")
	}
	if b[6] != 0 || b[7]&0xf0 != 0 {
		return nil, fmt.Errorf("unsupported xz stream flags %#x %#x", b[6], b[7])
	}
	if crc32.ChecksumIEEE(b[6:8]) != binary.LittleEndian.Uint32(b[8:12]) {
		return nil, errors.New("xz stream header CRC mismatch")
	}
	check := b[7] & 0x0f
	in := b[12:]
	var out []byte
	for {
		if len(in) == 0 {
			return nil, errors.New("xz stream truncated before its index")
		}
		if in[0] == 0 { // index indicator: no more blocks
			return out, nil
		}
		block, rest, err := decodeXZBlock(in, check)
		if err != nil {
			return nil, fmt.Errorf("xz block %d: %w", len(out), err)
		}
		if len(out)+len(block) > maxVmlinux {
			return nil, fmt.Errorf("xz stream decompresses to more than %d bytes", maxVmlinux)
		}
		out = append(out, block...)
		in = rest
	}
}

// decodeXZBlock decodes one block and returns its data and the input after it.
func decodeXZBlock(in []byte, check byte) (data, rest []byte, err error) {
	hdrSize := (int(in[0]) + 1) * 4
	if len(in) < hdrSize {
		return nil, nil, errors.New("truncated block header")
	}
	hdr := in[:hdrSize]
	if crc32.ChecksumIEEE(hdr[:hdrSize-4]) != binary.LittleEndian.Uint32(hdr[hdrSize-4:]) {
		return nil, nil, errors.New("block header CRC mismatch")
	}
	flags := hdr[1]
	if flags&0x3c != 0 {
		return nil, nil, fmt.Errorf("reserved block flags %#x", flags)
	}
	h := reader{b: hdr[2 : hdrSize-4]}
	if flags&0x40 != 0 {
		h.uint() // compressed size; the LZMA2 end marker tells it too
	}
	if flags&0x80 != 0 {
		h.uint() // uncompressed size
	}
	var x86, haveLZMA2 bool
	var x86Start uint32
	var dictCap int
	for i := 0; i <= int(flags&3); i++ {
		id, propSize := h.uint(), h.uint()
		if h.err != nil || propSize > uint64(len(h.b)) {
			return nil, nil, errors.New("truncated filter flags")
		}
		props := h.b[:propSize]
		h.b = h.b[propSize:]
		switch {
		case id == xzFilterX86 && !haveLZMA2:
			x86 = true
			if len(props) == 4 {
				x86Start = binary.LittleEndian.Uint32(props)
			} else if len(props) != 0 {
				return nil, nil, errors.New("bad x86 BCJ filter properties")
			}
		case id == xzFilterLZMA2 && len(props) == 1 && props[0] <= 40:
			haveLZMA2 = true
			dictCap = lzma2DictSize(props[0])
		default:
			return nil, nil, fmt.Errorf("unsupported xz filter %#x (kemu reads x86 BCJ + LZMA2)", id)
		}
	}
	if !haveLZMA2 || h.err != nil {
		return nil, nil, errors.New("block has no LZMA2 filter")
	}

	counter := &countingReader{r: bytes.NewReader(in[hdrSize:])}
	lz, err := lzma.Reader2Config{DictCap: dictCap}.NewReader2(counter)
	if err != nil {
		return nil, nil, err
	}
	data, err = io.ReadAll(io.LimitReader(lz, maxVmlinux+1))
	if err != nil {
		return nil, nil, fmt.Errorf("LZMA2: %w", err)
	}
	if len(data) > maxVmlinux {
		return nil, nil, fmt.Errorf("block decompresses to more than %d bytes", maxVmlinux)
	}
	if x86 {
		bcjX86Decode(data, x86Start)
	}

	// Block padding to a multiple of four, then the check of the uncompressed data.
	pos := hdrSize + int(counter.n)
	pos = (pos + 3) &^ 3
	var sum hash.Hash
	switch check {
	case xzCheckNone:
	case xzCheckCRC32:
		sum = crc32.NewIEEE()
	case xzCheckCRC64:
		sum = crc64.New(crc64.MakeTable(crc64.ECMA))
	case xzCheckSHA256:
		sum = sha256.New()
	default:
		return nil, nil, fmt.Errorf("unsupported xz check type %#x", check)
	}
	if sum != nil {
		sum.Write(data)
		want := sum.Sum(nil)
		if len(in) < pos+len(want) {
			return nil, nil, errors.New("truncated block check")
		}
		got := in[pos : pos+len(want)]
		if check != xzCheckSHA256 { // CRCs are stored little-endian; Sum returns big-endian
			want = reverse(want)
		}
		if !bytes.Equal(got, want) {
			return nil, nil, errors.New("block check mismatch (corrupt data or a wrong BCJ decode)")
		}
		pos += len(want)
	}
	return data, in[pos:], nil
}

// lzma2DictSize decodes the LZMA2 dictionary-size property byte: 2 or 3 times a power of two.
func lzma2DictSize(p byte) int {
	if p == 40 {
		return 0xffffffff
	}
	return (2 | int(p&1)) << (p/2 + 11)
}

// bcjX86Decode undoes the x86 branch converter in place. The encoder rewrote the 32-bit operand of
// every plausible CALL (E8) and JMP (E9) from relative to absolute (operand + position after the
// instruction), so equal targets look alike and compress better; decoding subtracts the position
// again. Which E8/E9 bytes count as instructions is decided by the same heuristic on both sides:
// the operand's top byte must be 0x00 or 0xFF (a near, sign-extended displacement), and a recent
// history of such bytes among the previous few positions (prevMask) vetoes some cases.
// start is the filter's start offset, the stream position of data[0].
func bcjX86Decode(data []byte, start uint32) {
	// For each history mask (shifted right once): whether a conversion is allowed, and which
	// operand byte (counted from the top) must be re-tested after the conversion.
	allowed := [8]bool{true, true, true, false, true, false, false, false}
	bitNumber := [8]uint32{0, 1, 2, 2, 3, 3, 3, 3}
	msbOK := func(b byte) bool { return b == 0x00 || b == 0xff }

	if len(data) < 5 {
		return
	}
	prevMask := uint32(0)
	prevPos := start - 5 // wraps like the reference's uint32 arithmetic
	for i := 0; i <= len(data)-5; {
		if data[i] != 0xe8 && data[i] != 0xe9 {
			i++
			continue
		}
		pos := start + uint32(i)
		distance := pos - prevPos
		prevPos = pos
		if distance > 5 {
			prevMask = 0
		} else {
			for k := uint32(0); k < distance; k++ {
				prevMask &= 0x77
				prevMask <<= 1
			}
		}
		top := data[i+4]
		if msbOK(top) && allowed[(prevMask>>1)&7] && prevMask>>1 < 0x10 {
			src := binary.LittleEndian.Uint32(data[i+1:])
			var dest uint32
			for {
				dest = src - (pos + 5)
				if prevMask == 0 {
					break
				}
				n := bitNumber[prevMask>>1]
				if !msbOK(byte(dest >> (24 - n*8))) {
					break
				}
				src = dest ^ (1<<(32-n*8) - 1)
			}
			dest &= 0x01ffffff
			if dest&0x01000000 != 0 {
				dest |= 0xff000000 // sign-extend from bit 24, as the encoder's operand had 0x00/0xFF on top
			}
			binary.LittleEndian.PutUint32(data[i+1:], dest)
			i += 5
			prevMask = 0
		} else {
			i++
			prevMask |= 1
			if msbOK(top) {
				prevMask |= 0x10
			}
		}
	}
}

// countingReader counts the bytes the LZMA2 decoder consumed, to find the block padding after it.
type countingReader struct {
	r io.ByteReader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	// Byte at a time, so the LZMA2 decoder never reads past its end marker into the next block.
	if len(p) == 0 {
		return 0, nil
	}
	b, err := c.ReadByte()
	if err != nil {
		return 0, err
	}
	p[0] = b
	return 1, nil
}

// ReadByte is what the LZMA2 decoder uses when its input has it.
func (c *countingReader) ReadByte() (byte, error) {
	b, err := c.r.ReadByte()
	if err == nil {
		c.n++
	}
	return b, err
}

func reverse(b []byte) []byte {
	out := make([]byte, len(b))
	for i := range b {
		out[i] = b[len(b)-1-i]
	}
	return out
}
