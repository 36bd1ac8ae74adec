package printk

import (
	"encoding/binary"
	"testing"

	"github.com/stretchr/testify/assert"
)

func le(size int, v uint64) []byte {
	return binary.LittleEndian.AppendUint64(nil, v)[:size]
}

func TestSscanf(t *testing.T) {
	// Pointer arguments are 0x100, 0x200, ... in order.
	ptrs := &SliceArgs{}
	for i := range 8 {
		ptrs.Values = append(ptrs.Values, uint64(0x100*(i+1)))
	}
	type store = Assignment
	tests := []struct {
		input, format string
		n             int
		stores        []store
	}{
		{"12 34", "%d %d", 2, []store{{0x100, le(4, 12)}, {0x200, le(4, 34)}}},
		{"12    34", "%d%d", 2, []store{{0x100, le(4, 12)}, {0x200, le(4, 34)}}},
		{"0x1f", "%x", 1, []store{{0x100, le(4, 31)}}},
		{"0x1f", "%i", 1, []store{{0x100, le(4, 31)}}},
		{"017", "%i", 1, []store{{0x100, le(4, 15)}}},
		{"-12", "%i", 1, []store{{0x100, le(4, neg(-12))}}},
		{"-12", "%u", 0, nil},
		{"777 8", "%o %o", 1, []store{{0x100, le(4, 0777)}}},
		{"300", "%hhu", 1, []store{{0x100, le(1, 44)}}},
		{"-2", "%hd", 1, []store{{0x100, le(2, 0xfffe)}}},
		{"-5", "%lld", 1, []store{{0x100, le(8, neg(-5))}}},
		{"7", "%Lu", 1, []store{{0x100, le(8, 7)}}},
		{"9", "%zu", 1, []store{{0x100, le(8, 9)}}},
		{"18446744073709551617", "%llu", 1, []store{{0x100, le(8, 1)}}},
		{"1234567", "%5d", 1, []store{{0x100, le(4, 12345)}}},
		{"0x5", "%1x", 1, []store{{0x100, le(4, 0)}}},
		{"-", "%d", 0, nil},
		{"-5", "%1d", 0, nil},
		{"abc", "%d", 0, nil},
		{"1-2", "%d:%d", 1, []store{{0x100, le(4, 1)}}},
		{"5", "%d%d", 1, []store{{0x100, le(4, 5)}}},
		{"%7", "%%%d", 1, []store{{0x100, le(4, 7)}}},
		{"7", "%q", 0, nil},
		{"  hello world", "%s", 1, []store{{0x100, []byte("hello\x00")}}},
		{"abcdef", "%3s%s", 2, []store{{0x100, []byte("abc\x00")}, {0x200, []byte("def\x00")}}},
		{"xyz", "%c", 1, []store{{0x100, []byte("x")}}},
		{"xy", "%3c", 1, []store{{0x100, []byte("xy")}}},
		{"00:0a:95", "%2[^:]:%2[^:]:%2[^:]", 3, []store{{0x100, []byte("00\x00")}, {0x200, []byte("0a\x00")}, {0x300, []byte("95\x00")}}},
		{"abcx", "%9[abc]", 1, []store{{0x100, []byte("abc\x00")}}},
		{"abc", "%[abc]", 0, nil},
		{"x", "%9[abc]", 0, nil},
		{"skip 42", "%*s %d", 1, []store{{0x100, le(4, 42)}}},
		{"abc", "ab%n", 0, []store{{0x100, le(4, 2)}}},
		{"a\xa0 7", "a %d", 1, []store{{0x100, le(4, 7)}}},
		{"12", "%0d", 0, nil},
		{"", "%d", 0, nil},
	}
	for _, tc := range tests {
		t.Run(tc.format+" on "+tc.input, func(t *testing.T) {
			args := &SliceArgs{Values: ptrs.Values}
			n, stores := Sscanf([]byte(tc.input), []byte(tc.format), args)
			assert.Equal(t, tc.n, n)
			assert.Equal(t, tc.stores, stores)
		})
	}
}

func TestSimpleStrto(t *testing.T) {
	tests := []struct {
		s     string
		base  uint
		value int64
		end   int
	}{
		{"0x1fg", 0, 31, 4},
		{"0x1f", 16, 31, 4},
		{"0x", 16, 0, 2},
		{"0x", 0, 0, 1},
		{"017", 0, 15, 3},
		{"42abc", 10, 42, 2},
		{"-12abc", 10, -12, 3},
		{"z", 10, 0, 0},
		{"101", 2, 5, 3},
		{"18446744073709551617", 10, 1, 20},
	}
	for _, tc := range tests {
		t.Run(tc.s, func(t *testing.T) {
			v, end := SimpleStrtoll([]byte(tc.s), tc.base)
			assert.Equal(t, tc.value, v)
			assert.Equal(t, tc.end, end)
		})
	}
	v, end := SimpleStrtoull([]byte("-1"), 10)
	assert.Equal(t, uint64(0), v, "no sign for the unsigned form")
	assert.Equal(t, 0, end)
}

func FuzzSscanf(f *testing.F) {
	f.Add([]byte("00:0a:95 12 abc"), []byte("%2[^:]:%2[^:]:%*s %d %3c %n"))
	f.Add([]byte("-0x1f 017"), []byte("%i %hhi %lli %zu %s"))
	f.Fuzz(func(t *testing.T, input, format []byte) {
		n, stores := Sscanf(input, format, &SliceArgs{Values: []uint64{1, 2, 3, 4, 5, 6, 7, 8}})
		if n < 0 || n > len(stores) {
			t.Fatalf("%d conversions but %d stores", n, len(stores))
		}
	})
}
