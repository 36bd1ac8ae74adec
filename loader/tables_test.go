package loader

import (
	"bytes"
	"cmp"
	"compress/gzip"
	"math/rand/v2"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/klauspost/compress/zstd"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/ulikunitz/xz"
)

func compress(t *testing.T, c Compression, data []byte) []byte {
	var buf bytes.Buffer
	switch c {
	case XZ:
		w, err := xz.NewWriter(&buf)
		require.NoError(t, err)
		_, err = w.Write(data)
		require.NoError(t, err)
		require.NoError(t, w.Close())
	case Gzip:
		w := gzip.NewWriter(&buf)
		_, err := w.Write(data)
		require.NoError(t, err)
		require.NoError(t, w.Close())
	case Zstd:
		w, err := zstd.NewWriter(&buf)
		require.NoError(t, err)
		_, err = w.Write(data)
		require.NoError(t, err)
		require.NoError(t, w.Close())
	}
	return buf.Bytes()
}

func TestCompressedModules(t *testing.T) {
	raw := fixture(t, "hello")
	for _, c := range []Compression{XZ, Gzip, Zstd} {
		t.Run(string(c), func(t *testing.T) {
			packed := compress(t, c, raw)
			assert.Equal(t, c, DetectCompression(packed))
			got, err := Decompress(packed)
			require.NoError(t, err)
			assert.Equal(t, raw, got)
			k, _ := testKernel(t, nil)
			m, err := k.Load(packed, LoadOptions{Flags: CompressedFile})
			require.NoError(t, err)
			assert.Equal(t, "hello", m.Name)

			// Output is bounded: a stream that inflates past the limit is refused, not read to the end.
			_, err = decompress(packed, int64(len(raw)-1))
			assert.Equal(t, syscall.EFBIG, Errno(err))
			// A truncated stream is ENOEXEC.
			_, err = Decompress(packed[:len(packed)/2])
			assert.Equal(t, syscall.ENOEXEC, Errno(err))
		})
	}
	assert.Equal(t, None, DetectCompression(raw))
}

func TestModuleTables(t *testing.T) {
	k, _ := testKernel(t, nil)
	bug, err := k.Load(fixture(t, "fault_bug"), LoadOptions{})
	require.NoError(t, err)
	require.NotEmpty(t, bug.BugTable)
	for _, e := range bug.BugTable {
		assert.True(t, bug.Core.Contains(e.Addr) || bug.Init.Contains(e.Addr), "BUG address %#x in the module", e.Addr)
		assert.True(t, strings.HasSuffix(e.File, "fault_bug.c"), e.File)
		assert.NotZero(t, e.Line)
		ud2, ok := bug.readAt(e.Addr, 2)
		require.True(t, ok)
		assert.Equal(t, []byte{0x0f, 0x0b}, ud2, "a bug entry points at ud2")
	}

	copyMod, err := k.Load(fixture(t, "fault_usercopy"), LoadOptions{})
	require.NoError(t, err)
	for i, e := range copyMod.ExTable {
		assert.True(t, copyMod.Core.Contains(e.Insn) || copyMod.Init.Contains(e.Insn))
		assert.True(t, copyMod.Core.Contains(e.Fixup) || copyMod.Init.Contains(e.Fixup))
		if i > 0 {
			assert.LessOrEqual(t, copyMod.ExTable[i-1].Insn, e.Insn, "sorted")
		}
	}

	hello, err := k.Load(fixture(t, "hello"), LoadOptions{})
	require.NoError(t, err)
	require.NotEmpty(t, hello.ORC)
	initFn, _ := hello.Lookup("init_module")
	covered := false
	for i, e := range hello.ORC {
		assert.True(t, hello.Core.Contains(e.IP) || hello.Init.Contains(e.IP), "ORC ip %#x", e.IP)
		if i > 0 {
			assert.LessOrEqual(t, hello.ORC[i-1].IP, e.IP)
		}
		if e.IP == initFn.Addr {
			covered = true
			// At a function's first instruction the frame is the return address only: sp+8, type CALL.
			assert.Equal(t, int16(8), e.SPOffset)
			assert.Equal(t, uint8(0), e.Type)
		}
	}
	assert.True(t, covered, "ORC has an entry at init_module")
}

func TestModinfoTaints(t *testing.T) {
	cases := []struct {
		name, replacement, taints string
		warn                      string
	}{
		{"staging", "staging=Y\x00intree=Y\x00\x00", "CE", "hello: module is from the staging directory, the quality is unknown, you have been warned."},
		{"test", "test=Y\x00intree=Y\x00\x00\x00\x00\x00", "EN", "hello: loading test module taints kernel."},
		{"livepatch", "livepatch=Y\x00intree=Y", "EK", "hello: tainting kernel with TAINT_LIVEPATCH"},
		{"in tree", "intree=Y\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00", "E", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var log []string
			k, _ := testKernel(t, &log)
			e := editFixture(t, "hello")
			e.replace(".modinfo", "author=kemu fixtures", c.replacement)
			m, err := k.Load(e.b, LoadOptions{})
			require.NoError(t, err)
			assert.Equal(t, c.taints, m.Taints.String())
			if c.warn != "" {
				assert.Contains(t, log, c.warn)
			}
		})
	}
}

func TestInitSymtabCopy(t *testing.T) {
	k, _ := testKernel(t, nil)
	m, err := k.Load(fixture(t, "hello"), LoadOptions{})
	require.NoError(t, err)
	f, err := parseELF(fixture(t, "hello"), nil)
	require.NoError(t, err)
	symIdx := 0
	for i, s := range f.secs {
		if s.Type == shtSymtab {
			symIdx = i
		}
	}
	syms, _, err := f.symbols(symIdx, nil)
	require.NoError(t, err)
	// The init region holds the symbol table with final values, as the kernel's copy does after
	// simplify_symbols; check a defined and an undefined symbol.
	initFn, _ := m.Lookup("init_module")
	printk, ok := k.prof.Lookup("_printk")
	require.True(t, ok)
	// Find the copy by its sequence of name offsets (symbol tables are 8-byte aligned).
	var tab []byte
	for o := 0; o+len(syms)*symSize <= len(m.Init.Bytes); o += 8 {
		cand := m.Init.Bytes[o : o+len(syms)*symSize]
		match := true
		for i, s := range syms {
			if le.Uint32(cand[i*symSize:]) != s.NameOff {
				match = false
				break
			}
		}
		if match {
			tab = cand
			break
		}
	}
	require.NotNil(t, tab, "symbol table copy in the init region")
	for i, s := range syms {
		v := le.Uint64(tab[i*symSize+8:])
		switch s.Name {
		case "init_module":
			assert.Equal(t, initFn.Addr, v)
		case "_printk":
			assert.Equal(t, printk.Addr, v)
		}
	}
}

func TestCoreKallsymsCopy(t *testing.T) {
	k, _ := testKernel(t, nil)
	m, err := k.Load(fixture(t, "producer"), LoadOptions{})
	require.NoError(t, err)
	// The copy sits at the end of the core region: find the entry of producer_add by its value.
	add, _ := m.Lookup("producer_add")
	core := m.Core.Bytes
	found := false
	for o := 0; o+symSize <= len(core); o += 8 {
		if le.Uint64(core[o+8:]) == add.Addr && le.Uint64(core[o+16:]) == add.Size && core[o+4]&0xf == sttFunc {
			found = true
			assert.Greater(t, uint64(o), m.Core.Size/2, "in the kallsyms area at the end of core")
		}
	}
	assert.True(t, found, "core kallsyms copy holds producer_add")
	assert.Equal(t, 2, bytes.Count(core, []byte("\x00producer_add\x00")), "its name: once in __ksymtab_strings, once in the kallsyms names")
}

// TestSortORC: the run merge orders entries as a stable sort by IP does, for inputs made of ascending
// runs (what linkers emit, also as objects whose text and unlikely-text runs interleave), random ones
// and ones with many equal IPs; the scratch buffer it returns serves the next sort.
func TestSortORC(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	// objects lays out n objects' entries as a linked module's table is: each object's .text run,
	// then its .text.unlikely run, the objects' stretches following each other in both sections.
	objects := func(n int) []ORCEntry {
		var text, unlikely [][]ORCEntry
		ip := [2]uint64{0x1000, 0x900000}
		for o := 0; o < n; o++ {
			for sec, list := range []*[][]ORCEntry{&text, &unlikely} {
				run := make([]ORCEntry, 1+rng.IntN(300))
				for i := range run {
					run[i].IP = ip[sec]
					ip[sec] += uint64(rng.IntN(40)) // 0 sometimes: equal IPs
				}
				*list = append(*list, run)
			}
		}
		var es []ORCEntry
		for o := 0; o < n; o++ {
			es = append(es, text[o]...)
			es = append(es, unlikely[o]...)
		}
		return es
	}
	for _, tc := range []struct {
		name   string
		n, ips int
		runs   bool
		es     []ORCEntry // when set, the input (n, ips and runs unused)
	}{
		{"empty", 0, 1, false, nil},
		{"one", 1, 1, false, nil},
		{"sorted", 100, 1000, true, nil},
		{"runs", 5000, 1 << 20, true, nil},
		{"random", 3000, 1 << 20, false, nil},
		{"duplicates", 3000, 8, false, nil},
		{"objects", 0, 0, false, objects(40)},
		{"one object", 0, 0, false, objects(1)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			es := tc.es
			if es == nil {
				es = make([]ORCEntry, tc.n)
				for i := range es {
					es[i] = ORCEntry{IP: uint64(rng.IntN(tc.ips))}
				}
				if tc.runs {
					for lo := 0; lo < len(es); lo += 1 + rng.IntN(200) {
						hi := min(lo+1+rng.IntN(200), len(es))
						slices.SortFunc(es[lo:hi], func(a, b ORCEntry) int { return cmp.Compare(a.IP, b.IP) })
					}
				}
			}
			for i := range es {
				es[i].SPOffset = int16(i) // the file position, to check stability
			}
			want := slices.Clone(es)
			slices.SortStableFunc(want, func(a, b ORCEntry) int { return cmp.Compare(a.IP, b.IP) })
			input := slices.Clone(es)
			scratch := sortORC(es, nil)
			require.Equal(t, want, es)

			// Again through the returned buffer: the same order, and the buffer is reused.
			again := sortORC(input, scratch)
			require.Equal(t, want, input)
			if cap(scratch) > 0 {
				require.Same(t, &scratch[:1][0], &again[:1][0])
			}
		})
	}
}

// TestORCLeading: the galloping search counts the leading entries below (or up to) an IP.
func TestORCLeading(t *testing.T) {
	s := []ORCEntry{{IP: 1}, {IP: 3}, {IP: 3}, {IP: 3}, {IP: 7}, {IP: 9}}
	for _, tc := range []struct {
		ip      uint64
		orEqual bool
		want    int
	}{
		{0, false, 0}, {1, false, 0}, {1, true, 1}, {3, false, 1}, {3, true, 4},
		{5, false, 4}, {9, false, 5}, {9, true, 6}, {100, false, 6},
	} {
		require.Equal(t, tc.want, orcLeading(s, tc.ip, tc.orEqual), "ip %d orEqual %v", tc.ip, tc.orEqual)
	}
	require.Zero(t, orcLeading(nil, 5, true))
}
