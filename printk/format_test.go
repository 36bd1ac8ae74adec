package printk

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// neg returns the two's complement argument slot of a negative int.
func neg(v int64) uint64 { return uint64(v) }

// Guest addresses used by the tests.
const (
	strHello   = 0xffff888000001000
	strHi      = 0xffff888000001100
	strBytes   = 0xffff888000001200
	mac        = 0xffff888000001300
	ip4        = 0xffff888000001400
	ip6        = 0xffff888000001500
	ip6Mapped  = 0xffff888000001600
	uuidBytes  = 0xffff888000001700
	physAddr   = 0xffff888000001800
	vaFmt      = 0xffff888000001900
	vaFmtStr   = 0xffff888000001a00
	vaList     = 0xffff888000001b00
	regSave    = 0xffff888000001c00
	overflow   = 0xffff888000001d00
	escBytes   = 0xffff888000001e00
	bitmap40   = 0xffff888000001f00
	bitmap16   = 0xffff888000002000
	sin4       = 0xffff888000002100
	sin6       = 0xffff888000002200
	sinBad     = 0xffff888000002300
	ip6Zeros   = 0xffff888000002400
	features   = 0xffff888000002500
	rtc        = 0xffff888000002600
	time64     = 0xffff888000002700
	fourcc     = 0xffff888000002800
	fourccBE   = 0xffff888000002900
	resMem     = 0xffff888000002a00
	resIO      = 0xffff888000002b00
	resIRQ     = 0xffff888000002c00
	resUnset   = 0xffff888000002d00
	resBus     = 0xffff888000002e00
	gfpFlags   = 0xffff888000002f00
	modText    = 0xffffffffc0000000
	kernelText = 0xffffffff81000000
	unmapped   = 0xffff888000100000
)

func testEnv() *fakeEnv {
	e := newFakeEnv()
	e.putString(strHello, "hello")
	e.putString(strHi, "hi")
	e.put(strBytes, []byte{0xde, 0xad, 0xbe, 0xef})
	e.put(mac, []byte{0x00, 0x11, 0x22, 0x33, 0x44, 0x55})
	e.put(ip4, []byte{192, 168, 1, 10})
	e.put(ip6, []byte{0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1})
	e.put(ip6Mapped, []byte{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 1, 2, 3, 4})
	e.put(ip6Zeros, []byte{0, 1, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1})
	e.put(uuidBytes, []byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15})
	e.putWords(physAddr, 0x1000)
	e.putWords(features, 0x40000000000b)
	// struct va_format {fmt, va}; the va_list has one register left
	// (gp_offset 40) and then the overflow area.
	e.putWords(vaFmt, vaFmtStr, vaList)
	e.putString(vaFmtStr, "x=%d %s")
	e.put(vaList, []byte{40, 0, 0, 0, 48, 0, 0, 0})
	e.putWords(vaList+8, overflow, regSave)
	e.putWords(regSave, 0, 0, 0, 0, 0, 7)
	e.putWords(overflow, strHi)
	e.put(escBytes, []byte{'a', '\n', '"', 0x01, '\\', 0xe9})
	e.putWords(bitmap40, 0x123456789a)
	e.putWords(bitmap16, 0b110100111)
	e.put(sin4, []byte{2, 0, 0, 80, 10, 0, 0, 1})
	e.put(sin6, []byte{10, 0, 0x1f, 0x90, 0, 0, 0, 5,
		0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 3, 0, 0, 0})
	e.put(sinBad, []byte{1, 0})
	// struct rtc_time for 2024-02-29 13:05:09, and time64_t 1700000000
	// (2023-11-14 22:13:20 UTC), and two FourCC codes.
	e.put(rtc, []byte{9, 0, 0, 0, 5, 0, 0, 0, 13, 0, 0, 0, 29, 0, 0, 0, 1, 0, 0, 0, 124, 0, 0, 0, 4, 0, 0, 0, 59, 0, 0, 0, 0, 0, 0, 0})
	e.putWords(time64, 1700000000)
	e.put(fourcc, []byte{'Y', 'U', 'Y', 'V'})
	// struct resource: start, end, name, flags.
	e.putWords(resMem, 0xfe000000, 0xfe0fffff, 0, ioresourceMem|ioresourceMem64|ioresourcePrefetch)
	e.putWords(resIO, 0xe000, 0xe01f, 0, ioresourceIO)
	e.putWords(resIRQ, 16, 16, 0, ioresourceIRQ)
	e.putWords(resUnset, 0, 0xfff, 0, ioresourceMem|ioresourceUnset)
	e.putWords(resBus, 1, 5, 0, ioresourceBus|ioresourceWindow)
	// gfp_t values: GFP_KERNEL|__GFP_ZERO|__GFP_NOWARN, GFP_ATOMIC, an
	// unnamed bit, 0.
	e.put(gfpFlags, []byte{0xc0, 0x2d, 0, 0, 0x20, 0x0a, 0, 0, 0, 0, 0, 0x10, 0, 0, 0, 0})
	e.put(fourccBE, []byte{'A', 'R', 0x01, 0x80 | 'X'})
	e.symbols = []fakeSymbol{
		{name: "hello_init", addr: modText, size: 0x40, module: "hello"},
		{name: "_printk", addr: kernelText, size: 0x30},
	}
	return e
}

func TestFormat(t *testing.T) {
	key := [2]uint64{1, 2}
	hashed := func(p uint64) string {
		var o output
		o.limit = 64
		o.pointerString(sipHash64(key, p)&0xffffffff, spec{width: -1, prec: -1})
		return string(o.b)
	}
	tests := []struct {
		format string
		args   []uint64
		want   string
	}{
		// Integers and their flags.
		{"%d", []uint64{42}, "42"},
		{"%d", []uint64{0xdeadbeeffffffffb}, "-5"},
		{"%i", []uint64{neg(-7)}, "-7"},
		{"%u", []uint64{0xffffffff}, "4294967295"},
		{"%ld", []uint64{neg(-1)}, "-1"},
		{"%lu", []uint64{neg(-1)}, "18446744073709551615"},
		{"%lld", []uint64{1 << 63}, "-9223372036854775808"},
		{"%Ld", []uint64{neg(-3)}, "-3"},
		{"%zu", []uint64{neg(-1)}, "18446744073709551615"},
		{"%zd", []uint64{neg(-1)}, "-1"},
		{"%td", []uint64{neg(-1)}, "-1"},
		{"%tx", []uint64{neg(-1)}, "ffffffffffffffff"},
		{"%hhd", []uint64{0x1ff}, "-1"},
		{"%hhu", []uint64{0x1ff}, "255"},
		{"%hd", []uint64{0x18000}, "-32768"},
		{"%hx", []uint64{0x12345}, "2345"},
		{"%x", []uint64{255}, "ff"},
		{"%X", []uint64{255}, "FF"},
		{"%#x", []uint64{255}, "0xff"},
		{"%#X", []uint64{255}, "0XFF"},
		{"%#x", []uint64{0}, "0x0"},
		{"%#o", []uint64{8}, "010"},
		{"%#o", []uint64{0}, "0"},
		{"%o", []uint64{8}, "10"},
		{"%5d", []uint64{42}, "   42"},
		{"%-5d|", []uint64{42}, "42   |"},
		{"%05d", []uint64{42}, "00042"},
		{"%05d", []uint64{neg(-42)}, "-0042"},
		{"%-05d|", []uint64{42}, "42   |"},
		{"%+d", []uint64{5}, "+5"},
		{"% d", []uint64{5}, " 5"},
		{"%+ d", []uint64{5}, "+5"},
		{"%+d", []uint64{neg(-5)}, "-5"},
		{"%+u", []uint64{5}, "5"},
		{"%.3d", []uint64{7}, "007"},
		{"%.0d", []uint64{0}, "0"},
		{"%.d", []uint64{0}, "0"},
		{"%8.3d", []uint64{7}, "     007"},
		{"%-8.3d|", []uint64{7}, "007     |"},
		{"%08.3d", []uint64{7}, "00000007"},
		{"%#08x", []uint64{255}, "0x0000ff"},
		{"%#8x", []uint64{255}, "    0xff"},
		{"%#-8x|", []uint64{255}, "0xff    |"},
		{"%2d", []uint64{100}, "100"},
		{"%*d", []uint64{5, 42}, "   42"},
		{"%*d", []uint64{neg(-5), 42}, "42   "},
		{"%-*d|", []uint64{3, 1}, "1  |"},
		{"%.*d", []uint64{3, 7}, "007"},
		{"%.*d", []uint64{neg(-1), 7}, "7"},
		{"%*.*d", []uint64{6, 3, 7}, "   007"},
		{"%99999999d", []uint64{42}, "42"}, // width wraps negative in 24 bits
		// Characters and %%.
		{"%c", []uint64{'A'}, "A"},
		{"%c", []uint64{0x141}, "A"},
		{"%3c", []uint64{'A'}, "  A"},
		{"%-3c|", []uint64{'A'}, "A  |"},
		{"%%", nil, "%"},
		{"%5%", nil, "%"},
		{"100%", nil, "100"},
		// Unsupported conversions end the output.
		{"a%nb", []uint64{0}, "a"},
		{"a%jd", []uint64{1}, "a"},
		{"a%qd", []uint64{1}, "a"},
		{"a%Zd", []uint64{1}, "a"},
		{"a%d%y%d", []uint64{1, 2}, "a1"},
		{"a%LLd", []uint64{1}, "a"},
		{"a\x00%d", []uint64{1}, "a"},
		// Strings.
		{"%s", []uint64{strHello}, "hello"},
		{"%hs", []uint64{strHello}, "hello"},
		{"%.3s", []uint64{strHello}, "hel"},
		{"%.0s|", []uint64{strHello}, "|"},
		{"%8s", []uint64{strHello}, "   hello"},
		{"%-8s|", []uint64{strHello}, "hello   |"},
		{"%3s", []uint64{strHello}, "hello"},
		{"%*s", []uint64{7, strHi}, "     hi"},
		{"%s", []uint64{0}, "(null)"},
		{"%.2s", []uint64{0}, "(n"},
		{"%8s", []uint64{0}, "  (null)"},
		{"%s", []uint64{0x10}, "(efault)"},
		{"%s", []uint64{neg(-22)}, "(efault)"},
		{"%s", []uint64{unmapped}, "(efault)"},
		{"%s and %s", []uint64{strHello, strHi}, "hello and hi"},
		// Plain pointers.
		{"%px", []uint64{0xffffffffc0001234}, "ffffffffc0001234"},
		{"%px", []uint64{1}, "0000000000000001"},
		{"%p", []uint64{0}, "0000000000000000"},
		{"%p", []uint64{neg(-22)}, "ffffffffffffffea"},
		{"%p", []uint64{modText}, hashed(modText)},
		{"%pF", []uint64{modText}, hashed(modText)},
		{"%pK", []uint64{modText}, hashed(modText)},
		{"%pd", []uint64{modText}, hashed(modText)},
		{"[%pabc]", []uint64{physAddr}, "[0x0000000000001000]"},
		{"%pA", []uint64{strHello}, "(%pA?)"},
		{"%pks", []uint64{strHello}, "hello"},
		{"%pus", []uint64{strHello}, "hello"},
		{"%pkx", []uint64{strHello}, "(einval)"},
		// Symbols.
		{"%pS", []uint64{modText + 0x1a}, "hello_init+0x1a/0x40 [hello]"},
		{"%pSR", []uint64{modText + 0x1a}, "hello_init+0x1a/0x40 [hello]"},
		{"%ps", []uint64{modText + 0x1a}, "hello_init [hello]"},
		{"%pS", []uint64{kernelText}, "_printk+0x0/0x30"},
		{"%pB", []uint64{modText + 0x40}, "hello_init+0x40/0x40 [hello]"},
		{"%pS", []uint64{modText + 0x40}, "0xffffffffc0000040"},
		{"[%pSx]", []uint64{kernelText + 1}, "[_printk+0x1/0x30]"},
		{"%pS\n", []uint64{kernelText + 1}, "_printk+0x1/0x30\n"},
		{"%20ps|", []uint64{kernelText}, "             _printk|"},
		// Hex buffers.
		{"%*ph", []uint64{4, strBytes}, "de ad be ef"},
		{"%*phC", []uint64{4, strBytes}, "de:ad:be:ef"},
		{"%*phD", []uint64{4, strBytes}, "de-ad-be-ef"},
		{"%*phN", []uint64{4, strBytes}, "deadbeef"},
		{"%ph", []uint64{strBytes}, "de"},
		{"%*ph|", []uint64{0, strBytes}, "|"},
		{"%4ph", []uint64{0}, "(null)"},
		{"%*ph", []uint64{8, strBytes}, "(efault)"},
		// MAC addresses.
		{"%pM", []uint64{mac}, "00:11:22:33:44:55"},
		{"%pMR", []uint64{mac}, "55:44:33:22:11:00"},
		{"%pMF", []uint64{mac}, "00-11-22-33-44-55"},
		{"%pm", []uint64{mac}, "001122334455"},
		{"%pmR", []uint64{mac}, "554433221100"},
		{"%pM", []uint64{0}, "(null)"},
		// IP addresses.
		{"%pI4", []uint64{ip4}, "192.168.1.10"},
		{"%pi4", []uint64{ip4}, "192.168.001.010"},
		{"%pI4h", []uint64{ip4}, "10.1.168.192"},
		{"%pI4n", []uint64{ip4}, "192.168.1.10"},
		{"%pI6", []uint64{ip6}, "2001:0db8:0000:0000:0000:0000:0000:0001"},
		{"%pi6", []uint64{ip6}, "20010db8000000000000000000000001"},
		{"%pI6c", []uint64{ip6}, "2001:db8::1"},
		{"%pI6c", []uint64{ip6Mapped}, "::ffff:1.2.3.4"},
		{"%pI6c", []uint64{ip6Zeros}, "1:0:0:1::1"},
		{"%pISpc", []uint64{sin6}, "[2001:db8::1]:8080"},
		{"%pISpfsc", []uint64{sin6}, "[2001:db8::1]:8080/5%3"},
		{"%pIS", []uint64{sin6}, "2001:0db8:0000:0000:0000:0000:0000:0001"},
		{"%pISp", []uint64{sin4}, "10.0.0.1:80"},
		{"%piS", []uint64{sin4}, "010.000.000.001"},
		{"%pIS", []uint64{sinBad}, "(einval)"},
		{"%pI", []uint64{ip4}, "(%pI?)"},
		{"%pi", []uint64{ip4}, "(%pi?)"},
		{"%pI4", []uint64{unmapped}, "(efault)"},
		// UUIDs.
		{"%pU", []uint64{uuidBytes}, "00010203-0405-0607-0809-0a0b0c0d0e0f"},
		{"%pUb", []uint64{uuidBytes}, "00010203-0405-0607-0809-0a0b0c0d0e0f"},
		{"%pUl", []uint64{uuidBytes}, "03020100-0504-0706-0809-0a0b0c0d0e0f"},
		{"%pUL", []uint64{uuidBytes}, "03020100-0504-0706-0809-0A0B0C0D0E0F"},
		{"%pUB", []uint64{uuidBytes}, "00010203-0405-0607-0809-0A0B0C0D0E0F"},
		// Escaped buffers.
		{"%*pE", []uint64{6, escBytes}, "a\\n\"\\001\\\xe9"},
		{"%*pEh", []uint64{2, escBytes}, `\x61\x0a`},
		{"%*pEhp", []uint64{2, escBytes}, `a\x0a`},
		{"%*pEs", []uint64{2, escBytes}, `a\n`},
		{"%*pEc", []uint64{3, escBytes}, "a\n\\\""},
		{"%pE", []uint64{escBytes}, "a"},
		// Recursion, errors, addresses, bitmaps.
		{"<%pV>", []uint64{vaFmt}, "<x=7 hi>"},
		{"%pV", []uint64{0}, "(null)"},
		{"%pe", []uint64{neg(-19)}, "-ENODEV"},
		{"%pe", []uint64{neg(-11)}, "-EAGAIN"},
		{"%pe", []uint64{neg(-35)}, "-EDEADLK"},
		{"%pe", []uint64{neg(-517)}, "-EPROBE_DEFER"},
		{"%pe", []uint64{neg(-41)}, "-41"},
		{"%pe", []uint64{neg(-1234)}, "-1234"},
		{"%pe", []uint64{0}, "0000000000000000"},
		{"%pe", []uint64{modText}, hashed(modText)},
		{"%pa", []uint64{physAddr}, "0x0000000000001000"},
		{"%pap", []uint64{physAddr}, "0x0000000000001000"},
		{"%pad", []uint64{physAddr}, "0x0000000000001000"},
		{"%pNF", []uint64{features}, "0x000040000000000b"},
		{"%pN", []uint64{features}, "(%pN?)"},
		{"%*pb", []uint64{40, bitmap40}, "12,3456789a"},
		{"%*pb", []uint64{32, bitmap40}, "3456789a"},
		{"%*pbl", []uint64{16, bitmap16}, "0-2,5,7-8"},
		{"%*pb|", []uint64{0, bitmap16}, "|"},
		// Times and FourCC codes.
		{"%ptR", []uint64{rtc}, "2024-02-29T13:05:09"},
		{"%ptRs", []uint64{rtc}, "2024-02-29 13:05:09"},
		{"%ptRd", []uint64{rtc}, "2024-02-29"},
		{"%ptRt", []uint64{rtc}, "13:05:09"},
		{"%ptRr", []uint64{rtc}, "0124-01-29T13:05:09"},
		{"%ptT", []uint64{time64}, "2023-11-14T22:13:20"},
		{"%ptTds", []uint64{time64}, "2023-11-14"},
		{"%pt", []uint64{time64}, "(%pt?)"},
		{"%ptR", []uint64{0}, "(null)"},
		{"%p4cc", []uint64{fourcc}, "YUYV little-endian (0x56595559)"},
		{"%p4cc", []uint64{fourccBE}, "AR.X big-endian (0xd8015241)"},
		{"%p4c", []uint64{fourcc}, "(%p4?)"},
		// Resources.
		{"%pR", []uint64{resMem}, "[mem 0xfe000000-0xfe0fffff 64bit pref]"},
		{"%pr", []uint64{resMem}, "[mem 0xfe000000-0xfe0fffff flags 0x102200]"},
		{"%pR", []uint64{resIO}, "[io  0xe000-0xe01f]"},
		{"%pR", []uint64{resIRQ}, "[irq 16]"},
		{"%pR", []uint64{resUnset}, "[mem size 0x00001000]"},
		{"%pR", []uint64{resBus}, "[bus 01-05 window]"},
		{"%pR", []uint64{0}, "(null)"},
		// GFP flags.
		{"%pGg", []uint64{gfpFlags}, "GFP_KERNEL|__GFP_NOWARN|__GFP_ZERO"},
		{"%pGg", []uint64{gfpFlags + 4}, "GFP_ATOMIC"},
		{"%pGg", []uint64{gfpFlags + 8}, "0x10000000"},
		{"%pGg|", []uint64{gfpFlags + 12}, "|"},
		{"%pGx", []uint64{gfpFlags}, "(%pG?)"},
		{"%pGp", []uint64{gfpFlags}, hashed(gfpFlags)},
	}
	f := Formatter{Env: testEnv(), Options: Options{PointerKey: key}}
	for _, tc := range tests {
		t.Run(tc.format, func(t *testing.T) {
			got := f.Format([]byte(tc.format), &SliceArgs{Values: tc.args})
			assert.Equal(t, tc.want, string(got))
		})
	}
}

func TestPrecisionWrapsIn16Bits(t *testing.T) {
	got := Format([]byte("%.70000d"), &SliceArgs{Values: []uint64{5}}, testEnv())
	// 70000 stored in a signed 16-bit field is 4464.
	assert.Len(t, got, 4464)
	assert.Equal(t, "005", string(got[len(got)-3:]))
}

func TestHugeWidthsAreCountedNotWritten(t *testing.T) {
	f := Formatter{Env: testEnv()}
	format := []byte(strings.Repeat("%8388607d", 1000))
	text, n := f.Snprintf(16, format, &SliceArgs{})
	assert.Equal(t, strings.Repeat(" ", 15), string(text))
	assert.Equal(t, 1000*8388607, n)
}

func TestHexStringCapsAt64Bytes(t *testing.T) {
	env := testEnv()
	env.put(0xffff888000003000, make([]byte, 100))
	got := Format([]byte("%*phN"), &SliceArgs{Values: []uint64{100, 0xffff888000003000}}, env)
	assert.Equal(t, strings.Repeat("00", 64), string(got))
}

func TestPointerOptions(t *testing.T) {
	args := func() Args { return &SliceArgs{Values: []uint64{modText}} }
	env := testEnv()
	tests := []struct {
		name    string
		options Options
		format  string
		want    string
	}{
		{"no_hash_pointers", Options{NoHashPointers: true}, "%p", "ffffffffc0000000"},
		{"early boot", Options{EarlyBoot: true}, "%p", "(____ptrval____)"},
		{"kptr_restrict=1", Options{KptrRestrict: 1}, "%pK", "ffffffffc0000000"},
		{"kptr_restrict=2", Options{KptrRestrict: 2}, "%pK", "0000000000000000"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := Formatter{Env: env, Options: tc.options}
			assert.Equal(t, tc.want, string(f.Format([]byte(tc.format), args())))
		})
	}

	t.Run("hash depends on key only", func(t *testing.T) {
		a := Formatter{Env: env, Options: Options{PointerKey: [2]uint64{1, 2}}}
		b := Formatter{Env: env, Options: Options{PointerKey: [2]uint64{3, 4}}}
		first := string(a.Format([]byte("%p"), args()))
		assert.Equal(t, first, string(a.Format([]byte("%p"), args())))
		assert.NotEqual(t, first, string(b.Format([]byte("%p"), args())))
		assert.Regexp(t, "^00000000[0-9a-f]{8}$", first)
	})
}

func TestSipHashKernelVector(t *testing.T) {
	// lib/test_siphash.c: key 00..0f, message 00..07.
	key := [2]uint64{0x0706050403020100, 0x0f0e0d0c0b0a0908}
	assert.Equal(t, uint64(0x93f5f5799a932462), sipHash64(key, 0x0706050403020100))
}

func TestSnprintf(t *testing.T) {
	f := Formatter{Env: testEnv()}
	tests := []struct {
		size   int
		format string
		args   []uint64
		text   string
		length int
	}{
		{5, "hello world", nil, "hell", 11},
		{0, "hello", nil, "", 5},
		{1, "hello", nil, "", 5},
		{4, "%6s", []uint64{strHi}, "   ", 6},
		{6, "%-6s|", []uint64{strHi}, "hi   ", 7},
		{100, "%d-%s", []uint64{3, strHi}, "3-hi", 4},
		{3, "%#x", []uint64{0x1234}, "0x", 6},
		{1 << 31, "hello", nil, "", 0},
	}
	for _, tc := range tests {
		t.Run(tc.format, func(t *testing.T) {
			text, n := f.Snprintf(tc.size, []byte(tc.format), &SliceArgs{Values: tc.args})
			assert.Equal(t, tc.text, string(text))
			assert.Equal(t, tc.length, n)
		})
	}
}

func TestVaList(t *testing.T) {
	env := newFakeEnv()
	env.put(0x1000, []byte{32, 0, 0, 0, 48, 0, 0, 0}) // two registers left
	env.putWords(0x1008, 0x3000, 0x2000)
	env.putWords(0x2000, 0, 0, 0, 0, 10, 11)
	env.putWords(0x3000, 12, 13)
	va, err := NewVaList(env, 0x1000)
	require.NoError(t, err)
	got := []uint64{va.Next(), va.Next(), va.Next(), va.Next()}
	assert.Equal(t, []uint64{10, 11, 12, 13}, got)
	assert.NoError(t, va.Err)
	assert.Equal(t, uint64(0), va.Next(), "past the overflow area")
	assert.Error(t, va.Err)

	_, err = NewVaList(env, 0x9000)
	assert.Error(t, err)
}

func FuzzFormat(f *testing.F) {
	for _, seed := range []string{"%d %s %p", "%*ph %pV %pI6c", "%-#0+ 12.5llx", "%pISpfsc %*pE %*pbl", "%.*s%*c"} {
		f.Add([]byte(seed), uint64(strHello), uint64(7), uint64(vaFmt))
	}
	env := testEnv()
	f.Fuzz(func(t *testing.T, format []byte, a, b, c uint64) {
		args := func() Args { return &SliceArgs{Values: []uint64{a, b, c, a, b, c}} }
		fm := Formatter{Env: env}
		full := fm.Format(format, args())
		text, n := fm.Snprintf(32, format, args())
		if n != len(full) || !strings.HasPrefix(string(full), string(text)) || len(text) > 31 {
			t.Fatalf("snprintf %q (%d) is not a prefix of %q", text, n, full)
		}
	})
}

func BenchmarkFormat(b *testing.B) {
	f := Formatter{Env: testEnv()}
	format := []byte("\0016%s: probe of %pS failed with error %pe (%d bytes at %px)\n")
	b.ReportAllocs()
	for range b.N {
		f.Format(format, &SliceArgs{Values: []uint64{strHello, modText + 0x1a, neg(-19), 4096, physAddr}})
	}
}

func TestWarnings(t *testing.T) {
	tests := []struct {
		format string
		want   []string
	}{
		{"ok %d", nil},
		{"a%nb", []string{"Please remove unsupported %n in format string\n"}},
		{"%5.2qd", []string{"Please remove unsupported %q in format string\n"}},
		{"100%", []string{"Please remove unsupported %\x00 in format string\n"}},
		{"%pA", []string{"Please remove %pA from non-Rust code\n"}},
	}
	for _, tc := range tests {
		t.Run(tc.format, func(t *testing.T) {
			var got []string
			f := Formatter{Env: testEnv(), Warn: func(m string) { got = append(got, m) }}
			f.Format([]byte(tc.format), &SliceArgs{Values: []uint64{1, strHello}})
			assert.Equal(t, tc.want, got)
		})
	}
}

func TestErrnoName(t *testing.T) {
	assert.Equal(t, "-ENODEV", ErrnoName(-19))
	assert.Equal(t, "ENODEV", ErrnoName(19))
	assert.Equal(t, "-ERESTARTSYS", ErrnoName(-512))
	assert.Equal(t, "", ErrnoName(0))
	assert.Equal(t, "", ErrnoName(-531))
	assert.Equal(t, "", ErrnoName(-1<<63))
}
