package loader

import (
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// symbolBytes reads n bytes of the module variable called name.
func symbolBytes(t *testing.T, m *Module, name string, n uint64) []byte {
	t.Helper()
	s, ok := m.Lookup(name)
	require.True(t, ok, name)
	b, ok := m.readAt(s.Addr, n)
	require.True(t, ok)
	return b
}

func TestParams(t *testing.T) {
	k, _ := testKernel(t, nil)
	if _, err := k.paramLayoutOf(); err != nil {
		t.Skipf("profile without BTF: %v", err)
	}
	type want struct {
		sym string
		n   uint64
		val []byte
	}
	cases := []struct {
		name  string
		args  string
		want  []want
		errno syscall.Errno
		msg   string
		warn  string
		charp string
	}{
		{name: "defaults", args: "", want: []want{{"count", 4, []byte{3, 0, 0, 0}}, {"limit", 4, []byte{100, 0, 0, 0}}, {"verbose", 1, []byte{0}}}},
		{name: "int decimal", args: "count=42", want: []want{{"count", 4, []byte{42, 0, 0, 0}}}},
		{name: "int negative hex", args: "count=-0x10", want: []want{{"count", 4, []byte{0xf0, 0xff, 0xff, 0xff}}}},
		{name: "int octal", args: "count=010", want: []want{{"count", 4, []byte{8, 0, 0, 0}}}},
		{name: "int trailing newline", args: "count=7\n", want: []want{{"count", 4, []byte{7, 0, 0, 0}}}},
		{name: "int overflow", args: "count=2147483648", errno: syscall.ERANGE, msg: "hello: `2147483648' invalid for parameter `count'"},
		{name: "int garbage", args: "count=12x", errno: syscall.EINVAL, msg: "hello: `12x' invalid for parameter `count'"},
		{name: "int without value", args: "count", errno: syscall.EINVAL, msg: "hello: `' invalid for parameter `count'"},
		{name: "uint negative", args: "limit=-1", errno: syscall.EINVAL, msg: "hello: `-1' invalid for parameter `limit'"},
		{name: "uint max", args: "limit=4294967295", want: []want{{"limit", 4, []byte{0xff, 0xff, 0xff, 0xff}}}},
		{name: "bool bare", args: "verbose", want: []want{{"verbose", 1, []byte{1}}}},
		{name: "bool on/off", args: "verbose=on verbose=off", want: []want{{"verbose", 1, []byte{0}}}},
		{name: "bool Y", args: "verbose=Y", want: []want{{"verbose", 1, []byte{1}}}},
		{name: "bool bad", args: "verbose=maybe", errno: syscall.EINVAL, msg: "hello: `maybe' invalid for parameter `verbose'"},
		{name: "string", args: "tag=abc", want: []want{{"tag", 4, []byte("abc\x00")}}},
		{name: "string quoted with space", args: `tag="a b"`, want: []want{{"tag", 4, []byte("a b\x00")}}},
		{name: "string too long", args: "tag=0123456789abcdef", errno: syscall.ENOSPC, msg: "hello: `0123456789abcdef' too large for parameter `tag'"},
		{name: "array", args: "values=9,8", want: []want{{"values", 12, []byte{9, 0, 0, 0, 8, 0, 0, 0, 3, 0, 0, 0}}, {"nvalues", 4, []byte{2, 0, 0, 0}}}},
		{name: "array too long", args: "values=1,2,3,4,5", errno: syscall.EINVAL, msg: "hello: `1,2,3,4,5' invalid for parameter `values'"},
		{name: "array bad element", args: "values=1,x", errno: syscall.EINVAL, msg: "hello: `1,x' invalid for parameter `values'"},
		{name: "unknown ignored", args: "bogus=1 count=5", warn: "hello: unknown parameter 'bogus' ignored", want: []want{{"count", 4, []byte{5, 0, 0, 0}}}},
		{name: "unknown with a dash", args: "cou-nt=5", warn: "hello: unknown parameter 'cou-nt' ignored"},
		{name: "after dashes ignored", args: "count=5 -- count=6", warn: "hello: parameters 'count=6' after `--' ignored", want: []want{{"count", 4, []byte{5, 0, 0, 0}}}},
		{name: "charp", args: "whom=kernel", charp: "kernel"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var log []string
			k, mem := testKernel(t, &log)
			m, err := k.Load(fixture(t, "hello"), LoadOptions{Params: c.args})
			if c.errno != 0 {
				require.Error(t, err)
				assert.Equal(t, c.errno, Errno(err), "%v", err)
				assert.Equal(t, c.msg, err.Error())
				assert.Contains(t, log, c.msg)
				return
			}
			require.NoError(t, err, "log %q", log)
			if c.warn != "" {
				assert.Contains(t, log, c.warn)
			}
			for _, w := range c.want {
				assert.Equal(t, w.val, symbolBytes(t, m, w.sym, w.n), w.sym)
			}
			if c.charp != "" {
				ptr := le.Uint64(symbolBytes(t, m, "whom", 8))
				b, ok := mem.Heap(ptr)
				require.True(t, ok, "whom points at a kernel allocation")
				assert.Equal(t, c.charp+"\x00", string(b))
			}
			types := map[string]string{}
			for _, p := range m.Params {
				types[p.Name] = p.Type
			}
			assert.Equal(t, map[string]string{"count": "int", "limit": "uint", "verbose": "bool", "whom": "charp",
				"tag": "string", "values": "array of int"}, types)
		})
	}
}

func TestNextArg(t *testing.T) {
	cases := []struct {
		in, param string
		val       *string
		rest      string
	}{
		{"a=1 b", "a", ptr("1"), "b"},
		{"a", "a", nil, ""},
		{`a="x y" b`, "a", ptr("x y"), "b"},
		{`"a=x y" b`, "a", ptr("x y"), "b"},
		{"=v", "=v", nil, ""},
		{"a= b", "a", ptr(""), "b"},
	}
	for _, c := range cases {
		p, v, rest := nextArg(c.in)
		assert.Equal(t, c.param, p, c.in)
		assert.Equal(t, c.val, v, c.in)
		assert.Equal(t, c.rest, rest, c.in)
	}
}

func ptr(s string) *string { return &s }

func TestScalarParams(t *testing.T) {
	const base = ModulesVaddr
	cases := []struct {
		typ, val string
		want     []byte
		errno    syscall.Errno
	}{
		{"byte", "255", []byte{0xff}, 0},
		{"byte", "256", nil, syscall.ERANGE},
		{"byte", "-1", nil, syscall.EINVAL},
		{"short", "-32768", []byte{0x00, 0x80}, 0},
		{"short", "32768", nil, syscall.ERANGE},
		{"ushort", "0xffff", []byte{0xff, 0xff}, 0},
		{"ushort", "0x10000", nil, syscall.ERANGE},
		{"int", "+12", []byte{12, 0, 0, 0}, 0},
		{"int", "-2147483649", nil, syscall.ERANGE},
		{"int", "0x", nil, syscall.EINVAL},
		{"int", "08", nil, syscall.EINVAL},
		{"int", "", nil, syscall.EINVAL},
		{"uint", "037", []byte{31, 0, 0, 0}, 0},
		{"hexint", "0xdeadbeef", []byte{0xef, 0xbe, 0xad, 0xde}, 0},
		{"long", "-9223372036854775808", []byte{0, 0, 0, 0, 0, 0, 0, 0x80}, 0},
		{"long", "9223372036854775808", nil, syscall.ERANGE},
		{"ulong", "18446744073709551615", []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, 0},
		{"ulong", "18446744073709551616", nil, syscall.ERANGE},
		{"ullong", "1\n", []byte{1, 0, 0, 0, 0, 0, 0, 0}, 0},
		{"ullong", "1\n\n", nil, syscall.EINVAL},
		{"bool", "on", []byte{1}, 0},
		{"bool", "of", []byte{0}, 0},
		{"bool", "ox", nil, syscall.EINVAL},
		{"bool", "o", nil, syscall.EINVAL},
		{"invbool", "y", []byte{0}, 0},
		{"invbool", "N", []byte{1}, 0},
		{"bint", "t", []byte{1, 0, 0, 0}, 0},
	}
	for _, c := range cases {
		t.Run(c.typ+"="+c.val, func(t *testing.T) {
			m := &Module{Core: Region{Addr: base, Size: PageSize, Bytes: make([]byte, PageSize), Pieces: []Piece{{Size: PageSize, Addr: base}}}}
			for i := range m.Core.Bytes[:16] {
				m.Core.Bytes[i] = 0x55
			}
			info := &loadInfo{mod: m}
			errno := info.setScalar(c.typ, base, c.val)
			assert.Equal(t, c.errno, errno)
			if c.errno == 0 {
				assert.Equal(t, c.want, m.Core.Bytes[:len(c.want)])
				assert.Equal(t, byte(0x55), m.Core.Bytes[len(c.want)], "writes exactly the type's size")
			}
		})
	}
}
