package oops

import (
	"bufio"
	"bytes"
	"debug/elf"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"kemu/corpus"
)

// systemMapAddr reads one symbol's address from a System.map, independently of readSymbolTable.
func systemMapAddr(t *testing.T, path, name string) uint64 {
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) == 3 && fields[2] == name {
			v, err := strconv.ParseUint(fields[0], 16, 64)
			require.NoError(t, err)
			return v
		}
	}
	t.Fatalf("%s not in %s", name, path)
	return 0
}

// TestDebianCorpus decodes against Debian's real System.map and module files: kernel return addresses
// resolve through the System.map, and a frame of a real (stripped, so line-less) module resolves by
// name among its 4000 siblings.
func TestDebianCorpus(t *testing.T) {
	tree := corpus.ForTest(t, "")
	initcall := systemMapAddr(t, tree.SystemMap, "do_one_initcall")

	ko := filepath.Join(tree.ModulesDir, "kernel", "net", "key", "af_key.ko")
	matches, _ := filepath.Glob(ko + "*")
	if len(matches) == 0 {
		t.Skipf("no af_key module in %s", tree.ModulesDir)
	}
	o, err := openObject(matches[0])
	require.NoError(t, err, "real Debian modules read, compressed or not")
	assert.Equal(t, "af_key", o.name)
	raw, err := os.ReadFile(matches[0])
	require.NoError(t, err)
	raw, err = decompress(raw)
	require.NoError(t, err)
	f, err := elf.NewFile(bytes.NewReader(raw)) // the symbol table as debug/elf reads it
	require.NoError(t, err)
	syms, err := f.Symbols()
	require.NoError(t, err)
	var fn elf.Symbol
	for _, s := range syms {
		if elf.ST_TYPE(s.Info) == elf.STT_FUNC && elf.ST_BIND(s.Info) == elf.STB_LOCAL && s.Size > 0x40 {
			fn = s
			break
		}
	}
	require.NotEmpty(t, fn.Name)

	log := fmt.Sprintf(`[ 7.0] BUG: kernel NULL pointer dereference, address: 0000000000000000
[ 7.1] Oops: 0000 [#1] PREEMPT SMP NOPTI
[ 7.2] CPU: 0 PID: 1 Comm: modprobe Not tainted %s #1  Debian 6.1.0
[ 7.3] RIP: 0010:%s+0x10/%#x [af_key]
[ 7.4] Call Trace:
[ 7.5]  <TASK>
[ 7.6]  [<%x>] ? 0x%x
[ 7.7]  </TASK>
[ 7.8] ---[ end trace 0000000000000000 ]---
`, tree.Release, fn.Name, fn.Size, initcall+0x56, initcall+0x56)
	r := ParseString(log)[0]
	s := NewSymbolizer()
	require.NoError(t, s.LoadSystemMap(tree.SystemMap))
	require.NoError(t, s.AddModules(tree.ModulesDir))
	s.Symbolize(r)

	assert.Equal(t, "do_one_initcall", r.Trace[0].Symbol)
	assert.Equal(t, uint64(0x56), r.Trace[0].Offset)
	mod, addr, ok := s.objectAddress(r.RIP)
	require.True(t, ok, "the module frame resolves by name")
	assert.Equal(t, "af_key", mod.name)
	assert.Equal(t, mod.sections[fn.Section].addr+fn.Value+0x10, addr)
}

// TestDebianDebugVmlinux resolves a kernel frame through Debian's debug vmlinux (from the
// linux-image-*-dbg package, 600 MB unpacked), when $KEMU_DEBUG_VMLINUX names it.
func TestDebianDebugVmlinux(t *testing.T) {
	path := os.Getenv("KEMU_DEBUG_VMLINUX")
	if path == "" {
		t.Skip("set KEMU_DEBUG_VMLINUX to a vmlinux with debug info (linux-image-<release>-dbg: /usr/lib/debug/boot/vmlinux-<release>)")
	}
	needAddr2line(t)
	r := parseFile(t, "kemu_null.txt")[0]
	require.Equal(t, "do_one_initcall", r.Trace[0].Symbol)
	s := NewSymbolizer()
	require.NoError(t, s.LoadVmlinux(path))
	s.Symbolize(r)
	start := systemMapAddrFromELF(t, path, "do_one_initcall")
	want := addr2line(t, path, "", []uint64{start + r.Trace[0].Offset - 1})[0]
	sameLines(t, want, r.Trace[0].Source, "do_one_initcall return address in vmlinux")
}

// systemMapAddrFromELF reads a symbol's address with debug/elf.
func systemMapAddrFromELF(t *testing.T, path, name string) uint64 {
	f, err := elf.Open(path)
	require.NoError(t, err)
	defer f.Close()
	syms, err := f.Symbols()
	require.NoError(t, err)
	for _, s := range syms {
		if s.Name == name {
			return s.Value
		}
	}
	t.Fatalf("no %s in %s", name, path)
	return 0
}
