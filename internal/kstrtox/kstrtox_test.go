package kstrtox

import (
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestUint64(t *testing.T) {
	for _, c := range []struct {
		in   string
		base uint
		want uint64
		err  syscall.Errno
	}{
		{"0", 0, 0, 0},
		{"42", 0, 42, 0},
		{"+42", 0, 42, 0},
		{"42\n", 0, 42, 0},
		{"42\n\n", 0, 0, syscall.EINVAL},
		{"0x1f", 0, 31, 0},
		{"0X1F", 0, 31, 0},
		{"017", 0, 15, 0},
		{"08", 0, 0, syscall.EINVAL},    // octal: 8 is not a digit
		{"0x", 0, 0, syscall.EINVAL},    // "0x" without a hex digit: octal 0, then "x"
		{"0xg", 0, 0, syscall.EINVAL},   //
		{"0b101", 0, 0, syscall.EINVAL}, // strconv would accept this
		{"0o17", 0, 0, syscall.EINVAL},  // and this
		{"1_000", 0, 0, syscall.EINVAL}, // and this
		{"", 0, 0, syscall.EINVAL},      //
		{"-1", 0, 0, syscall.EINVAL},    // no sign for unsigned
		{"++1", 0, 0, syscall.EINVAL},   //
		{" 1", 0, 0, syscall.EINVAL},    // no leading blanks
		{"ff", 16, 255, 0},              //
		{"0xff", 16, 255, 0},            // base 16 skips 0x
		{"0x", 16, 0, syscall.EINVAL},   //
		{"777", 8, 511, 0},              //
		{"18446744073709551615", 0, 1<<64 - 1, 0},
		{"18446744073709551616", 0, 0, syscall.ERANGE},
		{"99999999999999999999999x", 0, 0, syscall.ERANGE}, // overflow is reported before junk
	} {
		got, err := Uint64(c.in, c.base)
		assert.Equal(t, c.err, err, "%q base %d", c.in, c.base)
		assert.Equal(t, c.want, got, "%q base %d", c.in, c.base)
	}
}

func TestInt(t *testing.T) {
	for _, c := range []struct {
		in   string
		bits int
		want int64
		err  syscall.Errno
	}{
		{"-5", 64, -5, 0},
		{"+5", 64, 5, 0},
		{"-+5", 64, 0, syscall.EINVAL}, // the kernel parses the rest of "-..." without a sign
		{"--5", 64, 0, syscall.EINVAL},
		{"-0x10", 64, -16, 0},
		{"-0", 64, 0, 0},
		{"9223372036854775807", 64, 1<<63 - 1, 0},
		{"9223372036854775808", 64, 0, syscall.ERANGE},
		{"-9223372036854775808", 64, -1 << 63, 0},
		{"-9223372036854775809", 64, 0, syscall.ERANGE},
		{"2147483647", 32, 1<<31 - 1, 0},
		{"2147483648", 32, 0, syscall.ERANGE},
		{"-2147483648", 32, -1 << 31, 0},
		{"127", 8, 127, 0},
		{"-129", 8, 0, syscall.ERANGE},
	} {
		got, err := Int(c.in, 0, c.bits)
		assert.Equal(t, c.err, err, "%q (%d bits)", c.in, c.bits)
		assert.Equal(t, c.want, got, "%q (%d bits)", c.in, c.bits)
	}
}

func TestUint(t *testing.T) {
	got, err := Uint("4294967295", 0, 32)
	assert.Equal(t, syscall.Errno(0), err)
	assert.Equal(t, uint64(1<<32-1), got)
	_, err = Uint("4294967296", 0, 32)
	assert.Equal(t, syscall.ERANGE, err)
	_, err = Uint("256", 0, 8)
	assert.Equal(t, syscall.ERANGE, err)
}

func TestBool(t *testing.T) {
	for in, want := range map[string]struct{ v, ok bool }{
		"y": {true, true}, "Yes": {true, true}, "t": {true, true}, "1": {true, true}, "on": {true, true}, "ON\n": {true, true},
		"n": {false, true}, "F": {false, true}, "0": {false, true}, "off": {false, true}, "of": {false, true},
		"": {false, false}, "o": {false, false}, "maybe": {false, false}, "2": {false, false},
	} {
		v, ok := Bool(in)
		assert.Equal(t, want.ok, ok, "%q", in)
		assert.Equal(t, want.v, v, "%q", in)
	}
}
