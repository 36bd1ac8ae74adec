package machine

import (
	"strconv"
	"strings"
)

// sscanf and the simple_strto* family (lib/vsprintf.c, lib/kstrtox.c): the integer, string and
// character conversions modules use to parse parameters and sysfs input.

func init() {
	register("sscanf", hSscanf)
	register("simple_strtoul", hSimpleStrto(false))
	register("simple_strtoull", hSimpleStrto(false))
	register("simple_strtol", hSimpleStrto(true))
	register("simple_strtoll", hSimpleStrto(true))
}

// scanInt reads an integer the way the kernel's _parse_integer does after simple_strto*'s base
// detection: optional sign (signed only), 0x/0 prefixes for base 0 (and 0x for 16), digits up to
// the first invalid one. It returns the value and the bytes consumed (0: no digits).
func scanInt(s string, base int, signed bool) (uint64, int) {
	i, neg := 0, false
	if signed && i < len(s) && (s[i] == '-' || s[i] == '+') {
		neg = s[i] == '-'
		i++
	}
	hasHexPrefix := i+1 < len(s) && s[i] == '0' && (s[i+1]|0x20) == 'x' && i+2 < len(s) && isHexDigit(s[i+2])
	switch {
	case base == 0 && hasHexPrefix:
		base, i = 16, i+2
	case base == 0 && i < len(s) && s[i] == '0':
		base = 8
	case base == 0:
		base = 10
	case base == 16 && hasHexPrefix:
		i += 2
	}
	start := i
	var v uint64
	for ; i < len(s); i++ {
		d, err := strconv.ParseUint(s[i:i+1], 36, 8)
		if err != nil || int(d) >= base {
			break
		}
		v = v*uint64(base) + d
	}
	if i == start {
		return 0, 0
	}
	if neg {
		v = -v
	}
	return v, i
}

func isHexDigit(c byte) bool { return strings.IndexByte("0123456789abcdefABCDEF", c) >= 0 }

// simple_strtoul(cp, endp, base): the value, *endp past the digits.
func hSimpleStrto(signed bool) Handler {
	return func(m *Machine, t *Trap) (uint64, error) {
		s, err := m.ReadCString(t.Arg(0), 128)
		if err != nil {
			return 0, err
		}
		v, n := scanInt(s, int(t.Arg(2)), signed)
		if t.Arg(1) != 0 {
			if err := m.WriteU64(t.Arg(1), t.Arg(0)+uint64(n)); err != nil {
				return 0, err
			}
		}
		return v, nil
	}
}

// sscanf(buf, fmt, ...): %d %i %u %x %o with h/hh/l/ll/z sizes, %s (with width), %c, %n, %%, and
// literal matching; it returns the conversions stored, stopping at the first mismatch.
func hSscanf(m *Machine, t *Trap) (uint64, error) {
	in, err := m.ReadCString(t.Arg(0), 1<<16)
	if err != nil {
		return 0, err
	}
	f, err := m.ReadCString(t.Arg(1), 1<<12)
	if err != nil {
		return 0, err
	}
	args := t.VarArgs(2)
	pos, stored := 0, uint64(0)
	skipSpace := func() {
		for pos < len(in) && isSpace(in[pos]) {
			pos++
		}
	}
	for i := 0; i < len(f); i++ {
		c := f[i]
		if isSpace(c) {
			skipSpace()
			continue
		}
		if c != '%' || i+1 >= len(f) {
			if pos >= len(in) || in[pos] != c {
				return stored, nil
			}
			pos++
			continue
		}
		i++
		if f[i] == '%' {
			if pos >= len(in) || in[pos] != '%' {
				return stored, nil
			}
			pos++
			continue
		}
		suppress := f[i] == '*'
		if suppress {
			i++
		}
		width := 0
		for i < len(f) && f[i] >= '0' && f[i] <= '9' {
			width = width*10 + int(f[i]-'0')
			i++
		}
		size := 4
		for i < len(f) && strings.IndexByte("hlzL", f[i]) >= 0 {
			switch f[i] {
			case 'h':
				if size == 2 {
					size = 1
				} else {
					size = 2
				}
			default:
				size = 8
			}
			i++
		}
		if i >= len(f) {
			return stored, nil
		}
		conv := f[i]
		field := in[pos:]
		if conv != 'c' && conv != 'n' {
			skipSpace()
			field = in[pos:]
		}
		if width > 0 && width < len(field) {
			field = field[:width]
		}
		var out []byte
		switch conv {
		case 'n':
			if !suppress {
				if err := m.WriteU32(args.Next(), uint32(pos)); err != nil {
					return stored, err
				}
			}
			continue
		case 'c':
			n := max(width, 1)
			if len(field) < n {
				return stored, nil
			}
			out, pos = []byte(field[:n]), pos+n
		case 's':
			n := 0
			for n < len(field) && !isSpace(field[n]) {
				n++
			}
			if n == 0 {
				return stored, nil
			}
			out, pos = append([]byte(field[:n]), 0), pos+n
		case 'd', 'i', 'u', 'x', 'X', 'o':
			base := map[byte]int{'d': 10, 'i': 0, 'u': 10, 'x': 16, 'X': 16, 'o': 8}[conv]
			v, n := scanInt(field, base, conv == 'd' || conv == 'i')
			if n == 0 {
				return stored, nil
			}
			pos += n
			out = make([]byte, size)
			for b := range out {
				out[b] = byte(v >> (8 * b))
			}
		default:
			return stored, nil
		}
		if suppress {
			continue
		}
		if err := m.WriteAt(out, args.Next()); err != nil {
			return stored, err
		}
		stored++
	}
	return stored, nil
}

func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'
}
