package modinfo

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestSplitStrings(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []string
	}{
		{"empty", "", nil},
		{"one NUL", "\x00", nil},
		{"one char", "x", nil},
		{"padding only", "\x00\x00\x00\x00", nil},
		{"padding then one char", "\x00\x00x", nil},
		{"two strings", "a=1\x00b=2\x00", []string{"a=1", "b=2"}},
		{"leading padding", "\x00\x00a=1\x00", []string{"a=1"}},
		{"NUL runs", "a\x00\x00\x00b\x00\x00", []string{"a", "b"}},
		{"unterminated last", "a\x00bc", []string{"a", "bc"}},
		{"two chars", "ab", []string{"ab"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, splitStrings([]byte(tc.in)))
		})
	}
}

func TestHexBlock(t *testing.T) {
	seq := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(i)
		}
		return b
	}
	tests := []struct {
		in   []byte
		want string
	}{
		{nil, ""},
		{[]byte{0xAB}, "AB"},
		{[]byte{0x00, 0x0F}, "00:0F"},
		{seq(20), "00:01:02:03:04:05:06:07:08:09:0A:0B:0C:0D:0E:0F:10:11:12:13"},
		{seq(21), "00:01:02:03:04:05:06:07:08:09:0A:0B:0C:0D:0E:0F:10:11:12:13:\n\t\t14"},
		{seq(40)[20:], "14:15:16:17:18:19:1A:1B:1C:1D:1E:1F:20:21:22:23:24:25:26:27"},
	}
	for _, tc := range tests {
		assert.Equal(t, tc.want, hexBlock(tc.in))
	}
}

func TestKeyPad(t *testing.T) {
	for key, want := range map[string]int{"": 15, "name": 11, "sig_hashalgo": 3, "exactly15chars_": 0, "sixteen_chars_ab": 1, "a_key_of_twenty_char": 5} {
		assert.Equal(t, want, keyPad(key), key)
	}
}

func TestParamsOrderAndMerge(t *testing.T) {
	var warnings []string
	params := Params([]Entry{
		{"parm", "a:first"}, {"parmtype", "a:int"}, {"license", "GPL"},
		{"parmtype", "b:bool"}, {"parm", "broken"}, {"parm", "c:"}, {"parm", "a:again"},
	}, func(m string) { warnings = append(warnings, m) })
	str := func(s string) *string { return &s }
	assert.Equal(t, []Param{
		{Name: "c", Description: str("")},
		{Name: "b", Type: str("bool")},
		{Name: "a", Description: str("again"), Type: str("int")},
	}, params, "newest name first, later strings override")
	assert.Equal(t, []string{`Found invalid "parm=broken": missing ':'`}, warnings)
}

func TestFormat(t *testing.T) {
	entries := []Entry{{"license", "GPL"}, {"parm", "p:desc"}, {"parmtype", "p:int"}, {"name", "m"}, {"parmtype", "q:bool"}}
	tests := []struct {
		opt  Options
		want string
	}{
		{Options{Separator: '\n'}, "filename:       /m.ko\nlicense:        GPL\nname:           m\nparm:           q:bool\nparm:           p:desc (int)\n"},
		{Options{Separator: 0}, "filename:       /m.ko\x00license=GPL\x00name=m\x00parm:           q:bool\x00parm:           p:desc (int)\x00"},
		{Options{Filtered: true, Field: "parm", Separator: '\n'}, "q: (bool)\np:desc (int)\n"},
		{Options{Filtered: true, Field: "name", Separator: '\n'}, "m\n"},
		{Options{Filtered: true, Field: "filename", Separator: 0}, "/m.ko\x00"},
		{Options{Filtered: true, Field: "missing", Separator: '\n'}, ""},
		{Options{Filtered: true, Field: "", Separator: '\n'}, ""},
		{Options{Field: "name", Separator: '\n'}, "filename:       /m.ko\nlicense:        GPL\nname:           m\nparm:           q:bool\nparm:           p:desc (int)\n"},
	}
	for _, tc := range tests {
		var buf bytes.Buffer
		Format(&buf, "/m.ko", entries, tc.opt, func(string) { t.Error("unexpected warning") })
		assert.Equal(t, tc.want, buf.String(), "%+v", tc.opt)
	}
}

func TestParseELFErrors(t *testing.T) {
	good := buildELF(elfSpec{modinfo: modinfoSection("name=x")})
	set := func(off int, v byte) []byte {
		b := append([]byte{}, good...)
		b[off] = v
		return b
	}
	tests := []struct {
		name  string
		data  []byte
		errno syscall.Errno
	}{
		{"empty", nil, syscall.ENOEXEC},
		{"ident only", good[:16], syscall.ENOEXEC},
		{"bad magic", set(1, 'X'), syscall.ENOEXEC},
		{"class 0", set(4, 0), syscall.EINVAL},
		{"data 0", set(5, 0), syscall.EINVAL},
		{"header only", good[:64], syscall.EINVAL},
		{"shentsize", buildELF(elfSpec{shentsize: 40, modinfo: modinfoSection("name=x")}), syscall.EINVAL},
		{"table past end", buildELF(elfSpec{shoffDelta: 8, modinfo: modinfoSection("name=x")}), syscall.EINVAL},
		{"table offset wraps", buildELF(elfSpec{shoffDelta: ^uint64(0) - 100, modinfo: modinfoSection("name=x")}), syscall.EINVAL},
		{"shstrndx 0", buildELF(elfSpec{shstrndx: ptr(uint16(0)), modinfo: modinfoSection("name=x")}), syscall.EINVAL},
		{"shstrndx past", buildELF(elfSpec{shstrndx: ptr(uint16(50)), modinfo: modinfoSection("name=x")}), syscall.EINVAL},
		{"names unterminated", buildELF(elfSpec{unterminatedNames: true, modinfo: modinfoSection("name=x")}), syscall.EINVAL},
		{"no .modinfo", buildELF(elfSpec{modinfoName: ".other", modinfo: modinfoSection("name=x")}), syscall.ENOENT},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Entries(tc.data)
			assert.ErrorIs(t, err, tc.errno)
		})
	}
	for _, spec := range []elfSpec{{}, {class32: true}, {bigEndian: true}, {class32: true, bigEndian: true}, {modinfoOutOfFile: true}} {
		spec.modinfo = modinfoSection("license=GPL", "name=x")
		entries, err := Entries(buildELF(spec))
		require.NoError(t, err, "%+v", spec)
		assert.Equal(t, []Entry{{"license", "GPL"}, {"name", "x"}}, entries, "%+v", spec)
	}
}

// TestEntriesNeverPanic feeds truncations and single-byte corruptions of a signed module through
// Entries: malformed input must come back as an error or as entries, not a crash. It samples
// the ELF header, the section header table and the signature trailer, where the structure is;
// FuzzEntries explores further.
func TestEntriesNeverPanic(t *testing.T) {
	signed := readFixture(t, "hello_signed.ko")
	for n := 0; n < len(signed); n += 61 {
		_, _ = Entries(signed[:n])
	}
	shoff := int(binary.LittleEndian.Uint64(signed[0x28:]))
	regions := [][2]int{{0, 64}, {shoff, len(signed) - 2000}, {len(signed) - 600, len(signed)}}
	mod := append([]byte{}, signed...)
	for _, r := range regions {
		for off := r[0]; off < r[1] && off < len(mod); off += 3 {
			old := mod[off]
			for _, v := range []byte{0, 0xFF, old ^ 0x80} {
				mod[off] = v
				_, _ = Entries(mod)
			}
			mod[off] = old
		}
	}
}

func FuzzEntries(f *testing.F) {
	f.Add(buildELF(elfSpec{modinfo: modinfoSection("name=x", "parm=a:b")}))
	f.Add(buildELF(elfSpec{class32: true, bigEndian: true, modinfo: modinfoSection("name=y")}))
	if data, err := os.ReadFile(filepath.Join(fixtureDir, "hello_signed.ko")); err == nil {
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		entries, err := Entries(data)
		if err == nil {
			var buf bytes.Buffer
			Format(&buf, "/f.ko", entries, Options{Separator: '\n'}, func(string) {})
		}
	})
}

func TestDecompress(t *testing.T) {
	hello := readFixture(t, "hello.ko")
	tests := []struct {
		name  string
		in    []byte
		want  []byte
		errno syscall.Errno
	}{
		{"plain", hello, hello, 0},
		{"xz", xzBytes(t, hello), hello, 0},
		{"zstd", zstdBytes(t, hello), hello, 0},
		{"gzip is not decompressed", gzipBytes(t, hello), gzipBytes(t, hello), 0},
		{"shorter than a magic", []byte("\x7fELF\x02"), nil, syscall.EINVAL},
		{"xz truncated", xzBytes(t, hello)[:200], nil, syscall.EINVAL},
		{"xz corrupt", corrupt(xzBytes(t, hello), 100), nil, syscall.EINVAL},
		{"zstd corrupt", corrupt(zstdBytes(t, hello), 20), nil, syscall.EINVAL},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Decompress(tc.in)
			if tc.errno != 0 {
				assert.ErrorIs(t, err, tc.errno)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
	z := zstdBytes(t, hello)
	got, err := Decompress(z[:len(z)-50])
	require.NoError(t, err, "libkmod keeps what a truncated zstd stream decoded")
	assert.True(t, bytes.HasPrefix(hello, got))
}

func TestSignatureEntriesOfFixture(t *testing.T) {
	entries, err := Entries(readFixture(t, "hello_signed.ko"))
	require.NoError(t, err)
	got := map[string]string{}
	for _, e := range entries {
		got[e.Key] = e.Value
	}
	assert.Equal(t, "PKCS#7", got["sig_id"])
	assert.Equal(t, "kemu test-only module signing key", got["signer"])
	assert.Equal(t, "sha256", got["sig_hashalgo"])
	assert.Len(t, got["sig_key"], 20*3-1)
	assert.Equal(t, "hello", got["name"])
	unsigned, err := Entries(readFixture(t, "hello.ko"))
	require.NoError(t, err)
	assert.Equal(t, len(entries)-5, len(unsigned))
}

func TestParseArgs(t *testing.T) {
	tests := []struct {
		args     []string
		filtered bool
		field    string
		sep      byte
		json     bool
		operand  []string
		status   int
		done     bool
		stderr   string
	}{
		{args: []string{"a.ko"}, sep: '\n', operand: []string{"a.ko"}},
		{args: []string{"-F", "", "a.ko"}, filtered: true, sep: '\n', operand: []string{"a.ko"}},
		{args: []string{"a.ko", "-F", "name", "b.ko"}, field: "name", sep: '\n', operand: []string{"a.ko", "b.ko"}},
		{args: []string{"-0p", "a.ko"}, field: "parm", sep: 0, operand: []string{"a.ko"}},
		{args: []string{"-Flicense", "-n"}, field: "filename", sep: '\n'},
		{args: []string{"--fiel=x", "--json", "--", "-a"}, field: "x", sep: '\n', json: true, operand: []string{"-a"}},
		{args: []string{"--set-version", "6.1", "-", "-bdir"}, sep: '\n', operand: []string{"-"}},
		{args: []string{"-z"}, status: 1, done: true, stderr: "modinfo: invalid option -- 'z'\n"},
		{args: []string{"-k"}, status: 1, done: true, stderr: "modinfo: option requires an argument -- 'k'\n"},
		{args: []string{"--basedir"}, status: 1, done: true, stderr: "modinfo: option '--basedir' requires an argument\n"},
		{args: []string{"--help=1"}, status: 1, done: true, stderr: "modinfo: option '--help' doesn't allow an argument\n"},
		{args: []string{"--xyz=1"}, status: 1, done: true, stderr: "modinfo: unrecognized option '--xyz=1'\n"},
		{args: []string{"--f"}, status: 1, done: true, stderr: "modinfo: option '--f' is ambiguous; possibilities: '--filename' '--field'\n"},
		{args: []string{"-h"}, status: 0, done: true},
		{args: []string{"--vers"}, status: 0, done: true},
	}
	for _, tc := range tests {
		var out, errb bytes.Buffer
		c, status, done := parseArgs(tc.args, &out, &errb)
		assert.Equal(t, tc.status, status, "%q", tc.args)
		assert.Equal(t, tc.done, done, "%q", tc.args)
		assert.Equal(t, tc.stderr, errb.String(), "%q", tc.args)
		if !tc.done {
			assert.Equal(t, tc.field, c.opt.Field, "%q", tc.args)
			assert.Equal(t, tc.filtered || tc.field != "", c.opt.Filtered, "%q", tc.args)
			assert.Equal(t, tc.sep, c.opt.Separator, "%q", tc.args)
			assert.Equal(t, tc.json, c.json, "%q", tc.args)
			assert.Equal(t, tc.operand, c.args, "%q", tc.args)
		} else if tc.status == 0 {
			assert.NotEmpty(t, out.String(), "help and version print something")
		}
	}
}

func TestModuleNameAndStrerror(t *testing.T) {
	for path, want := range map[string]string{"/a/b/snd-hda-intel.ko.xz": "snd_hda_intel", "x.ko": "x", "dir.d/name": "name", "-.ko": "_"} {
		assert.Equal(t, want, moduleName(path), path)
	}
	assert.Equal(t, "Exec format error", strerror(syscall.ENOEXEC))
	assert.Equal(t, "No such file or directory", strerror(syscall.ENOENT))
	assert.Equal(t, "Too many open files", strerror(syscall.EMFILE))
}

func TestJSON(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "m.ko"), buildELF(elfSpec{modinfo: modinfoSection("parm=p:desc", "parmtype=p:int", "name=m")}), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "bad.ko"), []byte("not an ELF file"), 0o644))
	var out, errb bytes.Buffer
	code := Main([]string{"--json", filepath.Join(dir, "m.ko"), filepath.Join(dir, "bad.ko"), filepath.Join(dir, "nope.ko")}, &out, &errb)
	assert.Equal(t, 1, code)
	assert.Equal(t, "modinfo: ERROR: Module "+filepath.Join(dir, "nope.ko")+" not found.\n", errb.String())
	var reports []report
	require.NoError(t, json.Unmarshal(out.Bytes(), &reports))
	require.Len(t, reports, 2)
	assert.Equal(t, filepath.Join(dir, "m.ko"), reports[0].Filename)
	assert.Equal(t, []Entry{{"parm", "p:desc"}, {"parmtype", "p:int"}, {"name", "m"}}, reports[0].Entries)
	require.Len(t, reports[0].Params, 1)
	assert.Equal(t, "int", *reports[0].Params[0].Type)
	assert.Equal(t, "Exec format error", reports[1].Error)

	out.Reset()
	require.Equal(t, 0, Main([]string{"--json", "-F", "name", filepath.Join(dir, "m.ko")}, &out, &errb))
	reports = nil
	require.NoError(t, json.Unmarshal(out.Bytes(), &reports))
	require.Len(t, reports, 1)
	assert.Equal(t, []Entry{{"name", "m"}}, reports[0].Entries)
	assert.Empty(t, reports[0].Params)
}

func TestDecompressBound(t *testing.T) {
	hello := readFixture(t, "hello.ko")
	defer func(old int64) { maxModuleSize = old }(maxModuleSize)
	maxModuleSize = int64(len(hello))
	for name, packed := range map[string][]byte{"xz": xzBytes(t, hello), "zstd": zstdBytes(t, hello)} {
		got, err := Decompress(packed)
		require.NoError(t, err, name)
		assert.Equal(t, hello, got, name)
	}
	maxModuleSize = int64(len(hello)) - 1
	_, err := Decompress(xzBytes(t, hello))
	assert.ErrorIs(t, err, syscall.ENOMEM, "xz output past the bound")
	_, err = Decompress(zstdBytes(t, hello))
	assert.ErrorIs(t, err, syscall.EINVAL, "a zstd frame declaring more than the bound is refused up front")
}

func TestReadModuleErrors(t *testing.T) {
	dir := t.TempDir()
	_, err := ReadModule(filepath.Join(dir, "missing.ko"))
	assert.ErrorIs(t, err, syscall.ENOENT)
	_, err = ReadModule(dir)
	assert.ErrorIs(t, err, syscall.EISDIR)

	defer func(old int64) { maxModuleSize = old }(maxModuleSize)
	maxModuleSize = 100
	big := filepath.Join(dir, "big.ko")
	require.NoError(t, os.WriteFile(big, make([]byte, 101), 0o644))
	_, err = ReadModule(big)
	assert.ErrorIs(t, err, syscall.ENOMEM)
	require.NoError(t, os.WriteFile(big, make([]byte, 100), 0o644))
	got, err := ReadModule(big)
	require.NoError(t, err)
	assert.Len(t, got, 100)
}
