package printk

import "strconv"

// Flags of a conversion, as number() knows them.
const (
	flagSign    = 1 << iota // signed conversion (%d, %i)
	flagLeft                // '-': left-justify
	flagPlus                // '+': show a plus sign
	flagSpace               // ' ': space in place of a plus sign
	flagZeroPad             // '0': pad with zeros
	flagSmall               // lower-case hex digits
	flagSpecial             // '#': "0x" before hex, "0" before octal
)

// Field limits: 6.1 keeps width in a signed 24-bit field and precision in a
// signed 16-bit field of struct printf_spec.
const (
	fieldWidthMax = 1<<23 - 1
	precisionMax  = 1<<15 - 1
)

// spec is one decoded conversion. Width and precision are -1 when absent.
type spec struct {
	flags uint8
	base  uint8
	width int32
	prec  int32
}

// signExtend24 is what storing v into the 24-bit width field leaves.
func signExtend24(v int32) int32 { return v << 8 >> 8 }

// signExtend16 is what storing v into the 16-bit precision field leaves.
func signExtend16(v int32) int32 { return int32(int16(v)) }

// number prints num as the kernel's number() does: sign, then "0x"/"0"
// prefix, then padding, then precision zeros, then digits, with the kernel's
// quirks (the prefix is printed for zero in hex, and a precision shorter
// than the digits is ignored).
func (o *output) number(num uint64, sp spec) {
	var tmp [24]byte
	needPrefix := sp.flags&flagSpecial != 0 && sp.base != 10
	isZero := num == 0
	width, prec, flags := sp.width, sp.prec, sp.flags
	if flags&flagLeft != 0 {
		flags &^= flagZeroPad
	}
	var sign byte
	if flags&flagSign != 0 {
		switch {
		case int64(num) < 0:
			sign = '-'
			num = -num
			width--
		case flags&flagPlus != 0:
			sign = '+'
			width--
		case flags&flagSpace != 0:
			sign = ' '
			width--
		}
	}
	if needPrefix {
		if sp.base == 16 {
			width -= 2
		} else if !isZero {
			width--
		}
	}
	base := int(sp.base)
	if base != 8 && base != 16 {
		base = 10
	}
	digits := strconv.AppendUint(tmp[:0], num, base)
	if flags&flagSmall == 0 {
		for i, c := range digits {
			if c >= 'a' {
				digits[i] = c - 'a' + 'A'
			}
		}
	}
	n := int32(len(digits))
	if n > prec {
		prec = n
	}
	width -= prec
	if flags&(flagZeroPad|flagLeft) == 0 {
		o.repeat(' ', width)
		width = 0
	}
	if sign != 0 {
		o.byte(sign)
	}
	if needPrefix {
		if sp.base == 16 || !isZero {
			o.byte('0')
		}
		if sp.base == 16 {
			o.byte('X' | flags&flagSmall)
		}
	}
	if flags&flagLeft == 0 {
		o.repeat(' '+flags&flagZeroPad, width)
		width = 0
	}
	o.repeat('0', prec-n)
	o.bytes(digits)
	o.repeat(' ', width)
}

// specialHex prints num as "0x" and 2*size zero-padded hex digits, the
// kernel's special_hex_number().
func (o *output) specialHex(num uint64, size int32) {
	o.number(num, spec{flags: flagSpecial | flagSmall | flagZeroPad, base: 16, width: 2 + 2*size, prec: -1})
}

// pointerString prints ptr in hex, zero-padded to 16 digits unless a width
// was given: the kernel's pointer_string().
func (o *output) pointerString(ptr uint64, sp spec) {
	sp.base = 16
	sp.flags |= flagSmall
	if sp.width == -1 {
		sp.width = 16
		sp.flags |= flagZeroPad
	}
	o.number(ptr, sp)
}

// padded prints s (already cut to the precision) right- or left-justified in
// the field width, as string_nocheck() and widen_string() do together.
func (o *output) padded(s string, sp spec) {
	if sp.prec >= 0 && int32(len(s)) > sp.prec {
		s = s[:sp.prec]
	}
	spaces := sp.width - int32(len(s))
	if sp.flags&flagLeft == 0 {
		o.repeat(' ', spaces)
	}
	o.str(s)
	if sp.flags&flagLeft != 0 {
		o.repeat(' ', spaces)
	}
}

// errorString prints one of the kernel's "(null)"-style messages; an absent
// precision becomes 16 so that a message never runs away.
func (o *output) errorString(s string, sp spec) {
	if sp.prec == -1 {
		sp.prec = 16
	}
	o.padded(s, sp)
}
