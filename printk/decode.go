package printk

// conversion is what a format directive converts, after the kernel's
// format_decode(): integer kinds carry the argument's C type.
type conversion uint8

const (
	convInvalid conversion = iota
	convPercent
	convChar
	convString
	convPointer
	convLongLong
	convLong // unsigned long and long alike: 64 bits
	convSize
	convPtrdiff
	convByte
	convShort
	convInt
)

// decode reads one directive at format[0] == '%', taking '*' width and
// precision from args in order. It returns the spec, the conversion and the
// format after the directive (for %p: after the 'p', at the extension; for
// an invalid conversion: at the offending byte, or empty at the end).
func decode(format []byte, args Args) (spec, conversion, []byte) {
	sp := spec{width: -1, prec: -1, base: 10}
	i := 1
	at := func(i int) byte { return byteAt(format, i) }
flags:
	for ; ; i++ {
		switch at(i) {
		case '-':
			sp.flags |= flagLeft
		case '+':
			sp.flags |= flagPlus
		case ' ':
			sp.flags |= flagSpace
		case '#':
			sp.flags |= flagSpecial
		case '0':
			sp.flags |= flagZeroPad
		default:
			break flags
		}
	}

	if isDigit(at(i)) {
		var n int32
		n, i = atoi(format, i)
		sp.width = signExtend24(n)
	} else if at(i) == '*' {
		i++
		w := int32(args.Next())
		if signExtend24(w) != w {
			w = clamp(w, -fieldWidthMax, fieldWidthMax)
		}
		if w < 0 {
			w = -w
			sp.flags |= flagLeft
		}
		sp.width = w
	}

	if at(i) == '.' {
		i++
		if isDigit(at(i)) {
			var n int32
			n, i = atoi(format, i)
			sp.prec = max(signExtend16(n), 0)
		} else if at(i) == '*' {
			i++
			p := int32(args.Next())
			if signExtend16(p) != p {
				p = clamp(p, 0, precisionMax)
			}
			sp.prec = max(p, 0)
		}
	}

	var qualifier byte
	switch c := at(i); c {
	case 'h', 'l', 'L', 'z', 't':
		qualifier = c
		i++
		if at(i) == c && (c == 'l' || c == 'h') {
			qualifier = c - 'a' + 'A' // 'L' for ll, 'H' for hh
			i++
		}
	}

	conv := at(i)
	if conv == 0 {
		return sp, convInvalid, format[min(i, len(format)):]
	}
	rest := format[i+1:]
	switch conv {
	case 'c':
		return sp, convChar, rest
	case 's':
		return sp, convString, rest
	case 'p':
		return sp, convPointer, rest
	case '%':
		return sp, convPercent, rest
	case 'o':
		sp.base = 8
	case 'x':
		sp.flags |= flagSmall
		sp.base = 16
	case 'X':
		sp.base = 16
	case 'd', 'i':
		sp.flags |= flagSign
	case 'u':
	default:
		// %n included: 6.1 treats it as any unsupported conversion.
		return sp, convInvalid, format[i:]
	}
	switch qualifier {
	case 'L':
		return sp, convLongLong, rest
	case 'l':
		return sp, convLong, rest
	case 'z':
		return sp, convSize, rest
	case 't':
		return sp, convPtrdiff, rest
	case 'H':
		return sp, convByte, rest
	case 'h':
		return sp, convShort, rest
	}
	return sp, convInt, rest
}

// integerArg narrows or widens a raw argument slot to the C type va_arg
// would have read, sign-extending for signed conversions.
func integerArg(conv conversion, sp spec, raw uint64) uint64 {
	signed := sp.flags&flagSign != 0
	switch conv {
	case convByte:
		if signed {
			return uint64(int64(int8(raw)))
		}
		return uint64(uint8(raw))
	case convShort:
		if signed {
			return uint64(int64(int16(raw)))
		}
		return uint64(uint16(raw))
	case convInt:
		if signed {
			return uint64(int64(int32(raw)))
		}
		return uint64(uint32(raw))
	}
	return raw // long, long long, size_t, ptrdiff_t: all 64 bits
}

// atoi is the kernel's skip_atoi(): decimal digits in int arithmetic, which
// wraps on overflow (the kernel builds with -fno-strict-overflow).
func atoi(s []byte, i int) (int32, int) {
	var n int32
	for i < len(s) && isDigit(s[i]) {
		n = n*10 + int32(s[i]-'0')
		i++
	}
	return n, i
}

func clamp(v, lo, hi int32) int32 {
	return min(max(v, lo), hi)
}
