package printk

import (
	"encoding/binary"
	"fmt"
)

// Prefix types of print_hex_dump() (DUMP_PREFIX_*).
const (
	DumpPrefixNone    = 0
	DumpPrefixAddress = 1 // the hashed address of each row, as %p prints it
	DumpPrefixOffset  = 2 // the row's offset, as %.8x
)

// hexDumpLineMax is print_hex_dump()'s line buffer: 32 bytes as "xx ",
// two spaces, 32 ASCII characters and a NUL.
const hexDumpLineMax = 32*3 + 2 + 32 + 1

// lineBuffer is a C char buffer of size bytes that records what is
// written into it, so that truncated output matches the kernel's byte for
// byte. Only the first hexDumpLineMax+1 bytes are kept: nothing writes more.
type lineBuffer struct {
	size int
	b    []byte
	used int // bytes written, the NUL included
}

func (l *lineBuffer) put(i int, c byte) {
	if i < len(l.b) {
		l.b[i] = c
	}
	l.used = max(l.used, i+1)
}

// snprintf stores s at offset at as snprintf(buf+at, size-at, "%s", s)
// would and returns len(s).
func (l *lineBuffer) snprintf(at int, s string) int {
	room := l.size - at
	if room <= 0 {
		return len(s)
	}
	n := min(len(s), room-1)
	for i := range n {
		l.put(at+i, s[i])
	}
	l.put(at+n, 0)
	return len(s)
}

// HexDumpToBuffer is hex_dump_to_buffer(): one row of data (at most rowsize
// bytes of it) as hex in groups of groupsize bytes, optionally followed by
// the printable ASCII, written into a linebufLen-byte buffer. It returns the
// bytes the kernel stores there (their NUL included, where it writes one)
// and the function's return value: the length of the line, or, when it did
// not fit, the length it would have had.
func HexDumpToBuffer(data []byte, rowsize, groupsize, linebufLen int, ascii bool) (stored []byte, length int) {
	if rowsize != 16 && rowsize != 32 {
		rowsize = 16
	}
	n := min(len(data), rowsize)
	data = data[:n]
	if groupsize <= 0 || groupsize&(groupsize-1) != 0 || groupsize > 8 || n%groupsize != 0 {
		groupsize = 1
	}
	groups := n / groupsize
	asciiColumn := rowsize*2 + rowsize/groupsize + 1
	overflow := func() int {
		if ascii {
			return asciiColumn + n
		}
		return (groupsize*2+1)*groups - 1
	}
	l := &lineBuffer{size: max(linebufLen, 0), b: make([]byte, min(max(linebufLen, 0), hexDumpLineMax+1))}
	done := func() []byte { return l.b[:min(l.used, len(l.b))] }
	if linebufLen <= 0 {
		return nil, overflow()
	}
	lx := 0
	if n > 0 {
		if groupsize > 1 {
			for j := range groups {
				var word uint64
				switch groupsize {
				case 8:
					word = binary.LittleEndian.Uint64(data[8*j:])
				case 4:
					word = uint64(binary.LittleEndian.Uint32(data[4*j:]))
				case 2:
					word = uint64(binary.LittleEndian.Uint16(data[2*j:]))
				}
				s := fmt.Sprintf("%0*x", 2*groupsize, word)
				if j > 0 {
					s = " " + s
				}
				if ret := l.snprintf(lx, s); ret >= l.size-lx {
					return done(), overflow()
				}
				lx += len(s)
			}
		} else {
			for _, c := range data {
				for _, out := range []byte{hexDigits[c>>4], hexDigits[c&0xf], ' '} {
					if l.size < lx+2 {
						l.put(lx, 0)
						return done(), overflow()
					}
					l.put(lx, out)
					lx++
				}
			}
			lx-- // no space after the last byte
		}
		if ascii {
			for lx < asciiColumn {
				if l.size < lx+2 {
					l.put(lx, 0)
					return done(), overflow()
				}
				l.put(lx, ' ')
				lx++
			}
			for _, c := range data {
				if l.size < lx+2 {
					l.put(lx, 0)
					return done(), overflow()
				}
				if !isASCII(c) || !isPrint(c) {
					c = '.'
				}
				l.put(lx, c)
				lx++
			}
		}
	}
	l.put(lx, 0)
	return done(), lx
}

// HexDump is print_hex_dump(): the printk texts it emits, one per row of
// rowsize bytes of data read from addr. level and prefix are the strings the
// caller passed (level is a KERN_<level> prefix such as "\0017").
func (f *Formatter) HexDump(level, prefix string, prefixType, rowsize, groupsize int, addr uint64, data []byte, ascii bool) [][]byte {
	if rowsize != 16 && rowsize != 32 {
		rowsize = 16
	}
	var lines [][]byte
	for i := 0; i < len(data); i += rowsize {
		row := data[i:min(i+rowsize, len(data))]
		stored, _ := HexDumpToBuffer(row, rowsize, groupsize, hexDumpLineMax, ascii)
		text := string(stored[:len(stored)-1]) // without its NUL
		line := level + prefix
		switch prefixType {
		case DumpPrefixAddress:
			var o output
			o.limit = 64
			f.defaultPointer(&o, addr+uint64(i), spec{width: -1, prec: -1})
			line += string(o.b) + ": "
		case DumpPrefixOffset:
			line += fmt.Sprintf("%08x: ", uint32(i))
		}
		lines = append(lines, []byte(line+text+"\n"))
	}
	return lines
}
