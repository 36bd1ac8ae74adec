package loader

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestFindVersion: the first __versions record of a name is found whether the table is scanned (small)
// or indexed (large), and an index built for one module is not used for the next.
func TestFindVersion(t *testing.T) {
	table := func(n int) []Version {
		vs := make([]Version, n)
		for i := range vs {
			vs[i] = Version{CRC: uint64(i), Name: fmt.Sprintf("sym%d", i)}
		}
		return vs
	}
	withDup := func(n int) []Version { // sym1 again at the end: the first one counts
		return append(table(n), Version{CRC: 99, Name: "sym1"})
	}
	for _, tc := range []struct {
		name     string
		versions []Version
		lookup   string
		want     int
		found    bool
	}{
		{"small found", table(3), "sym2", 2, true},
		{"small missing", table(3), "other", 0, false},
		{"small duplicate", withDup(3), "sym1", 1, true},
		{"empty", nil, "sym0", 0, false},
		{"large found", table(100), "sym77", 77, true},
		{"large first", table(100), "sym0", 0, true},
		{"large missing", table(100), "sym100", 0, false},
		{"large duplicate", withDup(100), "sym1", 1, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k := &Kernel{}
			info := &loadInfo{k: k, mod: &Module{Versions: tc.versions}}
			i, ok := info.findVersion(tc.lookup)
			require.Equal(t, tc.found, ok)
			require.Equal(t, tc.want, i)
			// Repeated lookups give the same answers (the index is built once per module).
			i, ok = info.findVersion(tc.lookup)
			require.Equal(t, tc.found, ok)
			require.Equal(t, tc.want, i)

			// The next module on the same Kernel gets its own index.
			next := &loadInfo{k: k, mod: &Module{Versions: table(50)[20:]}}
			i, ok = next.findVersion("sym30")
			require.True(t, ok)
			require.Equal(t, 10, i)
			_, ok = next.findVersion("sym77")
			require.False(t, ok)
		})
	}
}

// TestVersionIndexReuse: every record of a large table is found at its index, and a smaller table
// indexed next in the same buffer finds none of the first one's names.
func TestVersionIndexReuse(t *testing.T) {
	big := make([]Version, 5000)
	for i := range big {
		big[i] = Version{Name: fmt.Sprintf("big_symbol_%d", i)}
	}
	var x versionIndex
	x.build(big)
	for i, v := range big {
		got, ok := x.find(big, v.Name)
		require.True(t, ok, v.Name)
		require.Equal(t, i, got)
	}
	small := []Version{{Name: "a"}, {Name: "b"}, {Name: "a"}}
	x.build(small)
	require.Len(t, x.slots, 8)
	for _, name := range []string{"big_symbol_0", "big_symbol_4999", "c"} {
		_, ok := x.find(small, name)
		require.False(t, ok, name)
	}
	i, ok := x.find(small, "a")
	require.True(t, ok)
	require.Zero(t, i)
	i, ok = x.find(small, "b")
	require.True(t, ok)
	require.Equal(t, 1, i)
}

// TestParseVersions: records are CRC and NUL-terminated name (56 bytes at most, a name filling them
// has no NUL); a partial record at the end is ignored.
func TestParseVersions(t *testing.T) {
	record := func(crc uint64, name string) []byte {
		b := make([]byte, versionSize)
		le.PutUint64(b, crc)
		copy(b[8:], name)
		return b
	}
	long := strings.Repeat("x", 56)
	for _, tc := range []struct {
		name string
		data []byte
		want []Version
	}{
		{"empty", nil, []Version{}},
		{"one", record(0x1234, "printk"), []Version{{0x1234, "printk"}}},
		{"several", slices.Concat(record(1, "a"), record(2, ""), record(3, "module_layout")),
			[]Version{{1, "a"}, {2, ""}, {3, "module_layout"}}},
		{"name fills the record", record(7, long), []Version{{7, long}}},
		{"text after the NUL", record(9, "ab\x00cd"), []Version{{9, "ab"}}},
		{"partial record", append(record(5, "kfree"), make([]byte, 10)...), []Version{{5, "kfree"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, parseVersions(tc.data))
		})
	}
}
