// Package libc calls the C library's snprintf, so that printk's tests can
// compare the kernel's vsnprintf with glibc's on the conversions where the
// two agree (plain integers and strings without the kernel's quirks).
package libc

/*
#include <stdio.h>
#include <stdlib.h>

// Every argument is passed as a 64-bit integer: on x86-64 va_arg of a
// narrower integer type reads the low bits of the same slot, which is what
// printk.Args models.
static int snprintf4(char *buf, size_t size, const char *fmt,
		unsigned long long a, unsigned long long b,
		unsigned long long c, unsigned long long d) {
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
#pragma GCC diagnostic ignored "-Wformat-security"
	return snprintf(buf, size, fmt, a, b, c, d);
}
*/
import "C"

import (
	"fmt"
	"unsafe"
)

// Snprintf formats with glibc. It takes at most four arguments, all
// integer-class; string arguments must be C pointers the caller owns.
func Snprintf(format string, args ...uint64) (string, error) {
	if len(args) > 4 {
		return "", fmt.Errorf("libc.Snprintf: %d arguments, at most 4", len(args))
	}
	var a [4]uint64
	copy(a[:], args)
	cformat := C.CString(format)
	defer C.free(unsafe.Pointer(cformat))
	var buf [512]C.char
	n := C.snprintf4(&buf[0], C.size_t(len(buf)), cformat,
		C.ulonglong(a[0]), C.ulonglong(a[1]), C.ulonglong(a[2]), C.ulonglong(a[3]))
	if n < 0 || int(n) >= len(buf) {
		return "", fmt.Errorf("libc.Snprintf(%q): result of %d bytes does not fit", format, n)
	}
	return C.GoStringN(&buf[0], n), nil
}
