package printk

import (
	"bytes"
	"encoding/binary"
	"math"
)

// Assignment is one store vsscanf makes through a pointer argument: the
// bytes (a little-endian integer, or characters) to write at Addr.
type Assignment struct {
	Addr  uint64
	Bytes []byte
}

// Sscanf is the kernel's vsscanf(): it matches input against format, taking
// a pointer from args for each conversion, and returns the number of
// conversions assigned (what sscanf returns) and the stores to make, in
// order. Both strings end at their first NUL. The kernel's differences from
// C are kept: "%[" takes no ranges and needs a width, "%*" skips to the next
// white space, and numbers wrap instead of saturating.
func Sscanf(input, format []byte, args Args) (int, []Assignment) {
	input, format = cString(input), cString(format)
	in := func(i int) byte { return byteAt(input, i) }
	fm := func(i int) byte { return byteAt(format, i) }
	var stores []Assignment
	storeInt := func(size int, v uint64) {
		b := binary.LittleEndian.AppendUint64(nil, v)
		stores = append(stores, Assignment{Addr: args.Next(), Bytes: b[:size]})
	}
	str, f, num := 0, 0, 0
	// takeString stores, NUL-terminated, the next input bytes for which ok
	// holds, at most width of them.
	takeString := func(addr uint64, width int, ok func(byte) bool) {
		var chars []byte
		for ; in(str) != 0 && ok(in(str)) && width > 0; width-- {
			chars = append(chars, in(str))
			str++
		}
		stores = append(stores, Assignment{Addr: addr, Bytes: append(chars, 0)})
		num++
	}

scan:
	for fm(f) != 0 {
		// White space in the format matches any white space, or none.
		if isSpace(fm(f)) {
			f = skipSpaces(format, f+1)
			str = skipSpaces(input, str)
		}
		// Anything but a conversion must match exactly.
		if c := fm(f); c != '%' && c != 0 {
			if c != in(str) {
				break
			}
			f++
			str++
			continue
		}
		if fm(f) == 0 {
			break
		}
		f++

		if fm(f) == '*' { // skip a field: up to the next white space
			if in(str) == 0 {
				break
			}
			for c := fm(f); !isSpace(c) && c != '%' && c != 0; c = fm(f) {
				if c == '[' { // "%*[" is not supported
					return num, stores
				}
				f++
			}
			for !isSpace(in(str)) && in(str) != 0 {
				str++
			}
			continue
		}

		width := -1 // the kernel keeps it in an s16
		if isDigit(fm(f)) {
			var n int32
			n, f = atoi(format, f)
			if width = int(int16(n)); width <= 0 {
				break
			}
		}

		var qualifier byte
		if c := fm(f); c == 'h' || c|0x20 == 'l' || c == 'z' {
			qualifier = c
			f++
			if fm(f) == c && (c == 'h' || c == 'l') {
				qualifier = c - 'a' + 'A' // 'H' for hh, 'L' for ll
				f++
			}
		}
		if fm(f) == 0 {
			break
		}
		if fm(f) == 'n' { // characters consumed so far, into an int
			storeInt(4, uint64(str))
			f++
			continue
		}
		if in(str) == 0 {
			break
		}

		base, signed := 10, false
		conv := fm(f)
		f++
		switch conv {
		case 'c':
			addr := args.Next()
			if width == -1 {
				width = 1
			}
			var chars []byte
			for {
				chars = append(chars, in(str))
				str++
				if width--; width <= 0 || in(str) == 0 {
					break
				}
			}
			stores = append(stores, Assignment{Addr: addr, Bytes: chars})
			num++
			continue
		case 's':
			addr := args.Next()
			if width == -1 {
				width = math.MaxInt16
			}
			str = skipSpaces(input, str)
			takeString(addr, width, func(c byte) bool { return !isSpace(c) })
			continue
		case '[':
			addr := args.Next()
			if width == -1 {
				return num, stores
			}
			negate := fm(f) == '^'
			if negate {
				f++
			}
			var set [256]bool
			n := 0
			for ; fm(f) != 0 && fm(f) != ']'; f++ {
				set[fm(f)] = true
				n++
			}
			if fm(f) == 0 || n == 0 {
				return num, stores
			}
			f++
			if negate {
				for i := range set {
					set[i] = !set[i]
				}
				set[0] = false
			}
			if !set[in(str)] {
				return num, stores
			}
			takeString(addr, width, func(c byte) bool { return set[c] })
			continue
		case 'o':
			base = 8
		case 'x', 'X':
			base = 16
		case 'i':
			base, signed = 0, true
		case 'd':
			signed = true
		case 'u':
		case '%':
			if in(str) != '%' {
				return num, stores
			}
			str++
			continue
		default:
			return num, stores
		}

		str = skipSpaces(input, str)
		digit := in(str)
		if signed && digit == '-' {
			if width == 1 {
				break scan
			}
			digit = in(str + 1)
		}
		if digit == 0 ||
			base == 16 && !isXDigit(digit) ||
			(base == 10 || base == 0) && !isDigit(digit) ||
			base == 8 && (!isDigit(digit) || digit > '7') {
			break
		}
		maxChars := math.MaxInt32
		if width >= 0 {
			maxChars = width
		}
		var val uint64
		if signed {
			val, str = strntoll(input, str, maxChars, uint(base))
		} else {
			val, str = strntoull(input, str, maxChars, uint(base))
		}
		switch qualifier {
		case 'H':
			storeInt(1, val)
		case 'h':
			storeInt(2, val)
		case 'l', 'L', 'z':
			storeInt(8, val)
		default:
			storeInt(4, val)
		}
		num++
	}
	return num, stores
}

// SimpleStrtoull is simple_strtoull(): the value of the number at the start
// of s in base (0: by its 0x or 0 prefix) and how many bytes it took; it
// wraps on overflow.
func SimpleStrtoull(s []byte, base uint) (uint64, int) {
	return strntoull(cString(s), 0, math.MaxInt32, base)
}

// SimpleStrtoll is simple_strtoll() and simple_strtol(): SimpleStrtoull
// with an optional leading '-'.
func SimpleStrtoll(s []byte, base uint) (int64, int) {
	v, end := strntoll(cString(s), 0, math.MaxInt32, base)
	return int64(v), end
}

// strntoll is simple_strntoll(): a '-' and then simple_strntoull().
func strntoll(s []byte, pos, maxChars int, base uint) (uint64, int) {
	if byteAt(s, pos) == '-' && maxChars > 0 {
		v, end := strntoull(s, pos+1, maxChars-1, base)
		return -v, end
	}
	return strntoull(s, pos, maxChars, base)
}

// strntoull is simple_strntoull(): at most maxChars bytes from pos, the
// "0x" prefix included; it returns the value and the end position.
func strntoull(s []byte, pos, maxChars int, base uint) (uint64, int) {
	start := pos
	if base == 0 {
		switch {
		case byteAt(s, pos) != '0':
			base = 10
		case byteAt(s, pos+1)|0x20 == 'x' && isXDigit(byteAt(s, pos+2)):
			base = 16
		default:
			base = 8
		}
	}
	if base == 16 && byteAt(s, pos) == '0' && byteAt(s, pos+1)|0x20 == 'x' {
		pos += 2
	}
	if pos-start >= maxChars {
		// Too short for the prefix and a digit: skipped, not converted.
		return 0, start + maxChars
	}
	var v uint64
	for n := maxChars - (pos - start); n > 0; n-- {
		c := byteAt(s, pos)
		var digit uint
		switch {
		case isDigit(c):
			digit = uint(c - '0')
		case c|0x20 >= 'a' && c|0x20 <= 'f':
			digit = uint(c|0x20-'a') + 10
		default:
			return v, pos
		}
		if digit >= base {
			return v, pos
		}
		v = v*uint64(base) + uint64(digit)
		pos++
	}
	return v, pos
}

// skipSpaces is skip_spaces(): the first position at or after i that is not
// white space.
func skipSpaces(s []byte, i int) int {
	for isSpace(byteAt(s, i)) {
		i++
	}
	return i
}

// cString is s up to its first NUL.
func cString(s []byte) []byte {
	if end := bytes.IndexByte(s, 0); end >= 0 {
		return s[:end]
	}
	return s
}
