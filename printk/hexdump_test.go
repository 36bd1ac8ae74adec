package printk

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestHexDumpToBuffer(t *testing.T) {
	seq := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(i + 1)
		}
		return b
	}
	tests := []struct {
		name                  string
		data                  []byte
		rowsize, group, bufsz int
		ascii                 bool
		stored                string
		length                int
	}{
		{"bytes and ascii", []byte("0123456789abcdef"), 16, 1, 200, true,
			"30 31 32 33 34 35 36 37 38 39 61 62 63 64 65 66  0123456789abcdef\x00", 65},
		{"32-bit groups", seq(8), 16, 4, 200, false, "04030201 08070605\x00", 17},
		{"16-bit groups", seq(4), 16, 2, 200, false, "0201 0403\x00", 9},
		{"64-bit group", seq(8), 16, 8, 200, false, "0807060504030201\x00", 16},
		{"odd length falls back to bytes", seq(3), 16, 2, 200, false, "01 02 03\x00", 8},
		{"group not a power of two", seq(3), 16, 3, 200, false, "01 02 03\x00", 8},
		{"one row only", seq(40), 32, 1, 200, false, strings.TrimSuffix(hexBytes(seq(32)), " ") + "\x00", 95},
		{"rowsize 8 means 16", seq(20), 8, 1, 200, false, strings.TrimSuffix(hexBytes(seq(16)), " ") + "\x00", 47},
		{"unprintable ascii", []byte{0x00, 0x41, 0x7f, 0xe9}, 16, 1, 200, true,
			"00 41 7f e9" + strings.Repeat(" ", 38) + ".A..\x00", 53},
		{"empty", nil, 16, 1, 200, true, "\x00", 0},
		{"byte overflow", []byte{0xab, 0xcd}, 16, 1, 4, false, "ab \x00", 5},
		{"byte overflow with ascii", []byte{0xab, 0xcd}, 16, 1, 4, true, "ab \x00", 51},
		{"group overflow", seq(8), 16, 4, 10, false, "04030201 \x00", 17},
		{"no buffer", []byte{0xab, 0xcd}, 16, 1, 0, false, "", 5},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			stored, length := HexDumpToBuffer(tc.data, tc.rowsize, tc.group, tc.bufsz, tc.ascii)
			assert.Equal(t, tc.stored, string(stored))
			assert.Equal(t, tc.length, length)
		})
	}
}

// hexBytes is "xx " per byte.
func hexBytes(b []byte) string {
	var s strings.Builder
	for _, c := range b {
		s.WriteString(string([]byte{hexDigits[c>>4], hexDigits[c&0xf], ' '}))
	}
	return s.String()
}

func TestHexDump(t *testing.T) {
	data := []byte("ABCDEFGHIJKLMNOPQRST")
	f := Formatter{Env: testEnv(), Options: Options{NoHashPointers: true}}

	lines := f.HexDump("\0017", "buf: ", DumpPrefixOffset, 16, 1, 0xffff888000001000, data, true)
	require.Len(t, lines, 2)
	assert.Equal(t, "\0017buf: 00000000: 41 42 43 44 45 46 47 48 49 4a 4b 4c 4d 4e 4f 50  ABCDEFGHIJKLMNOP\n", string(lines[0]))
	assert.Equal(t, "\0017buf: 00000010: 51 52 53 54"+strings.Repeat(" ", 38)+"QRST\n", string(lines[1]))

	lines = f.HexDump("", "", DumpPrefixAddress, 16, 4, 0xffff888000001000, data[:8], false)
	assert.Equal(t, []string{"ffff888000001000: 44434241 48474645\n"}, toStrings(lines))

	lines = f.HexDump("", "x ", DumpPrefixNone, 32, 2, 0, data[:4], false)
	assert.Equal(t, []string{"x 4241 4443\n"}, toStrings(lines))

	var log Log
	for _, line := range f.HexDump("\0017", "", DumpPrefixNone, 16, 1, 0, data[:2], false) {
		log.Printk(0, line)
	}
	assert.Equal(t, "[    0.000000] 41 42\n", log.Dmesg())
}

func toStrings(lines [][]byte) []string {
	var s []string
	for _, l := range lines {
		s = append(s, string(l))
	}
	return s
}
