package printk

// The kernel's ctype (lib/ctype.c) is Latin-1, not ASCII: bytes 0xa0-0xff
// are printable, and most of 0xc0-0xff are letters. That matters for which
// bytes end a %p extension and which %pE passes through.

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// isXDigit reports the kernel's isxdigit().
func isXDigit(c byte) bool { return isDigit(c) || (c|0x20 >= 'a' && c|0x20 <= 'f') }

// isSpace reports the kernel's isspace(): C white space and Latin-1 NBSP.
func isSpace(c byte) bool { return c == ' ' || (c >= '\t' && c <= '\r') || c == 0xa0 }

// isAlpha reports the kernel's isalpha().
func isAlpha(c byte) bool {
	switch {
	case c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z':
		return true
	case c >= 0xc0:
		return c != 0xd7 && c != 0xf7 // × and ÷ are punctuation
	}
	return false
}

// isAlnum reports the kernel's isalnum().
func isAlnum(c byte) bool { return isDigit(c) || isAlpha(c) }

// isPrint reports the kernel's isprint(): ASCII graphic characters and space,
// and Latin-1 0xa0-0xff.
func isPrint(c byte) bool { return (c >= 0x20 && c < 0x7f) || c >= 0xa0 }

// isASCII reports the kernel's isascii().
func isASCII(c byte) bool { return c < 0x80 }

// byteAt is s[i], or NUL past the end: formats are C strings, and the
// kernel's parsers look one byte ahead without checking for the end.
func byteAt(s []byte, i int) byte {
	if i < len(s) {
		return s[i]
	}
	return 0
}
