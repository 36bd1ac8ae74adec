package printk

// Escape classes of %pE, as string_escape_mem() names them.
const (
	escapeSpace   = 1 << 0 // \f \n \r \t \v
	escapeSpecial = 1 << 1 // \" \\ \a \e
	escapeNull    = 1 << 2 // \0
	escapeOctal   = 1 << 3 // \NNN
	escapeNP      = 1 << 4 // only non-printable characters
	escapeHex     = 1 << 5 // \xHH
	escapeAny     = escapeSpace | escapeOctal | escapeSpecial | escapeNull
)

// escaped is %*pE[achnops]: the field width is the byte count (1 if absent).
func (f *Formatter) escaped(o *output, addr uint64, sp spec, flagChars []byte) {
	if sp.width == 0 {
		return
	}
	if msg := checkPointer(addr); msg != "" {
		o.errorString(msg, sp)
		return
	}
	var flags uint
	for _, c := range flagChars {
		bit := escapeFlag(c)
		if bit == 0 {
			break
		}
		flags |= bit
	}
	if flags == 0 {
		flags = escapeAny | escapeNP
	}
	n := int32(1)
	if sp.width > 0 {
		n = sp.width
	}
	src := make([]byte, n)
	if !f.readOrEfault(o, addr, src, sp) {
		return
	}
	for _, c := range src {
		escapeByte(o, c, flags)
	}
}

// escapeByte writes c escaped by the first class in flags that claims it.
func escapeByte(o *output, c byte, flags uint) {
	if flags&escapeNP != 0 && isPrint(c) {
		o.byte(c)
		return
	}
	if flags&escapeSpace != 0 {
		if to := spaceEscape(c); to != 0 {
			o.byte('\\')
			o.byte(to)
			return
		}
	}
	if flags&escapeSpecial != 0 {
		if to := specialEscape(c); to != 0 {
			o.byte('\\')
			o.byte(to)
			return
		}
	}
	if flags&escapeNull != 0 && c == 0 {
		o.str(`\0`)
		return
	}
	if flags&escapeOctal != 0 {
		o.byte('\\')
		o.byte('0' + c>>6)
		o.byte('0' + c>>3&7)
		o.byte('0' + c&7)
		return
	}
	if flags&escapeHex != 0 {
		o.str(`\x`)
		o.byte(hexDigits[c>>4])
		o.byte(hexDigits[c&0xf])
		return
	}
	o.byte(c)
}

// escapeFlag is the class a %pE flag letter selects, or 0.
func escapeFlag(c byte) uint {
	switch c {
	case 'a':
		return escapeAny
	case 'c':
		return escapeSpecial
	case 'h':
		return escapeHex
	case 'n':
		return escapeNull
	case 'o':
		return escapeOctal
	case 'p':
		return escapeNP
	case 's':
		return escapeSpace
	}
	return 0
}

// spaceEscape is the letter after '\' for white space other than ' ', or 0.
func spaceEscape(c byte) byte {
	switch c {
	case '\n':
		return 'n'
	case '\r':
		return 'r'
	case '\t':
		return 't'
	case '\v':
		return 'v'
	case '\f':
		return 'f'
	}
	return 0
}

// specialEscape is the letter after '\' for \\ \a \e and \", or 0.
func specialEscape(c byte) byte {
	switch c {
	case '\\':
		return '\\'
	case '\a':
		return 'a'
	case 0x1b:
		return 'e'
	case '"':
		return '"'
	}
	return 0
}
