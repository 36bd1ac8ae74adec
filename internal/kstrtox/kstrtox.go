// Package kstrtox converts strings to numbers and booleans by the rules of the kernel's
// lib/kstrtox.c, which every kernel string conversion (module parameters, kstrto*() calls from
// module code, debugfs and sysfs writes) follows. They differ from strconv's: base 0 knows only the
// 0x and 0 prefixes (no 0b, 0o or digit separators), one trailing newline is accepted, and errors
// are the kernel's errnos (EINVAL, ERANGE).
package kstrtox

import "syscall"

// fixupRadix is _parse_integer_fixup_radix(): base 0 becomes 16 for "0x" followed by a hex digit, 8
// for any other leading 0, else 10; with base 16 a "0x" prefix is skipped.
func fixupRadix(s string, base uint) (string, uint) {
	if base == 0 {
		switch {
		case len(s) > 0 && s[0] == '0' && len(s) > 2 && s[1]|0x20 == 'x' && isHex(s[2]):
			base = 16
		case len(s) > 0 && s[0] == '0':
			base = 8
		default:
			base = 10
		}
	}
	if base == 16 && len(s) > 1 && s[0] == '0' && s[1]|0x20 == 'x' {
		s = s[2:]
	}
	return s, base
}

func isHex(c byte) bool {
	return (c >= '0' && c <= '9') || (c|0x20 >= 'a' && c|0x20 <= 'f')
}

// parseUint is _kstrtoull(): digits of base, then at most one newline; no sign.
func parseUint(s string, base uint) (uint64, syscall.Errno) {
	s, base = fixupRadix(s, base)
	if base < 2 || base > 16 {
		return 0, syscall.EINVAL
	}
	var n uint64
	i, overflow := 0, false
	for ; i < len(s); i++ {
		c := s[i]
		var d uint64
		switch {
		case c >= '0' && c <= '9':
			d = uint64(c - '0')
		case c|0x20 >= 'a' && c|0x20 <= 'f':
			d = uint64(c|0x20-'a') + 10
		default:
			d = 16
		}
		if d >= uint64(base) {
			break
		}
		if n > (^uint64(0)-d)/uint64(base) {
			overflow = true
		}
		n = n*uint64(base) + d
	}
	switch {
	case overflow:
		return 0, syscall.ERANGE
	case i == 0:
		return 0, syscall.EINVAL
	}
	if rest := s[i:]; rest != "" && rest != "\n" {
		return 0, syscall.EINVAL
	}
	return n, 0
}

// Uint64 is kstrtoull(s, base): an optional '+', then as parseUint.
func Uint64(s string, base uint) (uint64, syscall.Errno) {
	if len(s) > 0 && s[0] == '+' {
		s = s[1:]
	}
	return parseUint(s, base)
}

// Int64 is kstrtoll(s, base): a '-' (not followed by another sign) or an optional '+'.
func Int64(s string, base uint) (int64, syscall.Errno) {
	if len(s) > 0 && s[0] == '-' {
		u, e := parseUint(s[1:], base)
		if e != 0 {
			return 0, e
		}
		if u > 1<<63 {
			return 0, syscall.ERANGE
		}
		return -int64(u), 0
	}
	u, e := Uint64(s, base)
	if e != 0 {
		return 0, e
	}
	if u > 1<<63-1 {
		return 0, syscall.ERANGE
	}
	return int64(u), 0
}

// Uint is kstrtouint/kstrtou16/kstrtou8 (bits 32, 16, 8) and kstrtoull (64): ERANGE when the value
// does not fit.
func Uint(s string, base uint, bits int) (uint64, syscall.Errno) {
	u, e := Uint64(s, base)
	if e == 0 && bits < 64 && u>>bits != 0 {
		return 0, syscall.ERANGE
	}
	return u, e
}

// Int is kstrtoint/kstrtos16/kstrtos8 (bits 32, 16, 8) and kstrtoll (64): ERANGE when the value
// does not fit.
func Int(s string, base uint, bits int) (int64, syscall.Errno) {
	v, e := Int64(s, base)
	if e == 0 && bits < 64 && (v < -1<<(bits-1) || v > 1<<(bits-1)-1) {
		return 0, syscall.ERANGE
	}
	return v, e
}

// Bool is kstrtobool(): y/Y/t/T/1 and n/N/f/F/0 by the first byte, on/off by the first two; ok is
// false (EINVAL) for anything else.
func Bool(s string) (v, ok bool) {
	if s == "" {
		return false, false
	}
	switch s[0] {
	case 'y', 'Y', 't', 'T', '1':
		return true, true
	case 'n', 'N', 'f', 'F', '0':
		return false, true
	case 'o', 'O':
		if len(s) > 1 {
			switch s[1] {
			case 'n', 'N':
				return true, true
			case 'f', 'F':
				return false, true
			}
		}
	}
	return false, false
}
