package oops

import (
	"bytes"
	"debug/elf"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// testObjectSource has inlined code in three text sections, so a lookup that confused sections, or
// relocated DWARF against section-relative addresses, would answer with the wrong function or line.
const testObjectSource = `
static int counter;
static inline __attribute__((always_inline)) int bump(int x) { counter += x; return counter * 3; }
static inline __attribute__((always_inline)) int twice(int x) { return bump(x) + bump(x + 1); }
__attribute__((noinline)) int helper(int *p) { return twice(*p) + 1; }
__attribute__((section(".init.text"))) int mod_init(void) { int v = 4; return helper(&v) + twice(2); }
__attribute__((section(".exit.text"))) void mod_exit(void) { counter = bump(7); }
__attribute__((cold, noinline)) void unlikely_path(void) { counter = -1; }
`

// buildTestObject compiles testObjectSource with gcc -O2 -g -c, the shape of a module object.
func buildTestObject(t *testing.T) string {
	return gccBuild(t, testObjectSource, "m.o", "-c")
}

// gccBuild compiles C source with gcc -O2 -g and the given flags into a temporary file named out.
func gccBuild(t *testing.T, source, out string, flags ...string) string {
	t.Helper()
	if _, err := exec.LookPath("gcc"); err != nil {
		t.Skip("gcc not installed")
	}
	dir := t.TempDir()
	src := filepath.Join(dir, "src.c")
	require.NoError(t, os.WriteFile(src, []byte(source), 0o644))
	obj := filepath.Join(dir, out)
	args := append(append([]string{"-O2", "-g"}, flags...), src, "-o", obj)
	b, err := exec.Command("gcc", args...).CombinedOutput()
	require.NoError(t, err, string(b))
	return obj
}

// addr2line runs binutils' addr2line -i -f -a on section offsets (addresses when section is ""), the
// reference answer: one list of source lines (full paths) per offset.
func addr2line(t *testing.T, file, section string, offs []uint64) [][]SourceLine {
	t.Helper()
	args := []string{"-i", "-f", "-a", "-e", file}
	if section != "" {
		args = append(args, "-j", section)
	}
	for _, off := range offs {
		args = append(args, fmt.Sprintf("%#x", off))
	}
	cmd := exec.Command("addr2line", args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	require.NoError(t, err, "addr2line %s %s: %s", section, file, stderr.String())
	var res [][]SourceLine
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	for i := 0; i < len(lines); {
		if strings.HasPrefix(lines[i], "0x") { // -a: the address starts each answer
			res = append(res, nil)
			i++
			continue
		}
		if i+1 >= len(lines) || len(res) == 0 {
			break
		}
		fileLine, _, _ := strings.Cut(lines[i+1], " (discriminator")
		k := strings.LastIndex(fileLine, ":")
		n, _ := strconv.Atoi(fileLine[k+1:])
		res[len(res)-1] = append(res[len(res)-1], SourceLine{Function: lines[i], File: fileLine[:k], Line: n})
		i += 2
	}
	require.Len(t, res, len(offs))
	return res
}

// sameLines compares our answer with addr2line's by function, file base name and line. binutils 2.40
// mis-numbers DWARF 5 file entries in some units (objdump warns "Corrupt file name list" on them) and
// then names the unit's main file for a header's line; a file name is only accepted to differ when
// addr2line's file provably has no such line.
func sameLines(t *testing.T, want, got []SourceLine, what string) (excused int) {
	t.Helper()
	if !assert.Len(t, got, len(want), what) {
		return 0
	}
	for i := range want {
		w, g := want[i], got[i]
		assert.Equal(t, w.Function, g.Function, "%s: frame %d function", what, i)
		assert.Equal(t, w.Line, g.Line, "%s: frame %d line", what, i)
		if filepath.Base(w.File) == filepath.Base(g.File) {
			continue
		}
		src, err := os.ReadFile(w.File)
		if err == nil && bytes.Count(src, []byte("\n")) < w.Line {
			excused++
			if os.Getenv("H6DBG") != "" {
				t.Logf("%s: addr2line %s:%d, ours %s", what, w.File, w.Line, g.File)
			}
			continue
		}
		assert.Equal(t, filepath.Base(w.File), filepath.Base(g.File), "%s: frame %d file", what, i)
	}
	return excused
}

// compareWithAddr2line checks every step-th byte of every function of an object against addr2line.
func compareWithAddr2line(t *testing.T, path string, step uint64) int {
	o, err := openObject(path)
	require.NoError(t, err)
	di, err := o.dwarf()
	require.NoError(t, err)
	type probe struct {
		sym objSymbol
		off uint64
	}
	bySection := map[int][]probe{}
	for _, s := range o.symbols {
		if s.size == 0 || o.elf.Sections[s.section].Flags&elf.SHF_EXECINSTR == 0 {
			continue
		}
		for off := uint64(0); off < s.size; off += step {
			bySection[s.section] = append(bySection[s.section], probe{s, off})
		}
	}
	checked, excused := 0, 0
	for sec, probes := range bySection {
		var offs []uint64
		for _, p := range probes {
			offs = append(offs, p.sym.value+p.off)
		}
		answers := addr2line(t, path, o.sections[sec].name, offs)
		for i, p := range probes {
			want := answers[i]
			if len(want) == 0 || want[0].Line == 0 {
				continue
			}
			got, err := di.lookup(p.sym.addr + p.off)
			what := fmt.Sprintf("%s+%#x in %s", p.sym.name, p.off, o.sections[sec].name)
			if assert.NoError(t, err, what) {
				excused += sameLines(t, want, got, what)
			}
			checked++
		}
	}
	if excused > 0 {
		t.Logf("%d of %d lookups: addr2line named a file that has no such line; ours named another", excused, checked)
	}
	return checked
}

func TestDWARFMatchesAddr2line(t *testing.T) {
	if _, err := exec.LookPath("addr2line"); err != nil {
		t.Skip("binutils addr2line not installed")
	}
	t.Run("gcc object with .text, .init.text, .exit.text, .text.unlikely", func(t *testing.T) {
		obj := buildTestObject(t)
		n := compareWithAddr2line(t, obj, 1)
		assert.Greater(t, n, 20)
	})
	mods, _ := filepath.Glob("../testdata/modules/*.ko")
	if len(mods) == 0 {
		t.Log("no fixture modules in testdata/modules")
	}
	for _, m := range mods {
		t.Run(filepath.Base(m), func(t *testing.T) {
			assert.Greater(t, compareWithAddr2line(t, m, 1), 0)
		})
	}
}

func TestInlineChain(t *testing.T) {
	obj := buildTestObject(t)
	o, err := openObject(obj)
	require.NoError(t, err)
	di, err := o.dwarf()
	require.NoError(t, err)
	s, ok := o.lookupName("helper", 0, 0)
	require.True(t, ok)
	deepest := 0
	for off := uint64(0); off < s.size; off++ {
		got, err := di.lookup(s.addr + off)
		require.NoError(t, err)
		if len(got) > deepest {
			deepest = len(got)
			assert.Equal(t, "helper", got[len(got)-1].Function)
			assert.False(t, got[len(got)-1].Inlined)
		}
	}
	assert.Equal(t, 3, deepest, "bump inlined into twice inlined into helper")
}

func TestCompressedObjects(t *testing.T) {
	obj := buildTestObject(t)
	raw, err := os.ReadFile(obj)
	require.NoError(t, err)
	for _, tool := range []struct{ cmd, ext string }{{"xz", ".xz"}, {"zstd", ".zst"}, {"gzip", ".gz"}} {
		t.Run(tool.cmd, func(t *testing.T) {
			if _, err := exec.LookPath(tool.cmd); err != nil {
				t.Skipf("%s not installed", tool.cmd)
			}
			var out bytes.Buffer
			c := exec.Command(tool.cmd, "-c")
			if tool.cmd == "xz" {
				c.Args = append(c.Args, "--check=crc32")
			}
			c.Stdin, c.Stdout = bytes.NewReader(raw), &out
			require.NoError(t, c.Run())
			path := filepath.Join(t.TempDir(), "m.ko"+tool.ext)
			require.NoError(t, os.WriteFile(path, out.Bytes(), 0o644))
			o, err := openObject(path)
			require.NoError(t, err)
			_, ok := o.lookupName("helper", 0, 0)
			assert.True(t, ok)
		})
	}
}
