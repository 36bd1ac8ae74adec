package oops

import (
	"debug/elf"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const testKernelSource = `
static volatile int state;
static inline __attribute__((always_inline)) void poke(int v) { state = v * 2; }
__attribute__((noinline)) void do_work(int v) { poke(v); poke(v + 1); state++; }
__attribute__((noinline)) void kmain(void) { do_work(3); do_work(4); for (;;) ; }
`

// buildTestKernel links a small static executable, standing in for vmlinux: an ET_EXEC with symbols at
// link addresses and DWARF that needs no relocation. _text is defined, as in vmlinux, for KASLR.
func buildTestKernel(t *testing.T) string {
	return gccBuild(t, testKernelSource, "vmlinux", "-static", "-nostdlib", "-no-pie", "-Wl,-e,kmain", "-Wl,--defsym,_text=kmain")
}

func elfFunc(t *testing.T, path, name string) (addr, size uint64) {
	f, err := elf.Open(path)
	require.NoError(t, err)
	defer f.Close()
	syms, err := f.Symbols()
	require.NoError(t, err)
	for _, s := range syms {
		if s.Name == name {
			return s.Value, s.Size
		}
	}
	t.Fatalf("no %s in %s", name, path)
	return
}

func TestSymbolizeVmlinux(t *testing.T) {
	needAddr2line(t)
	vmlinux := buildTestKernel(t)
	workAddr, workSize := elfFunc(t, vmlinux, "do_work")
	textAddr, _ := elfFunc(t, vmlinux, "_text")
	const kaslr = 0x1e000000

	addr2lineExec := func(addr uint64) []SourceLine {
		return addr2line(t, vmlinux, "", []uint64{addr})[0]
	}
	log := fmt.Sprintf(`[ 1.0] BUG: unable to handle page fault for address: 0000000000001000
[ 1.1] RIP: 0010:do_work+0x4/%#x
[ 1.2] Call Trace:
[ 1.3]  <TASK>
[ 1.4]  ? 0x%x
[ 1.5]  </TASK>
[ 1.6] ---[ end trace 0000000000000000 ]---
`, workSize, workAddr+kaslr+6)
	r := ParseString(log)[0]
	s := NewSymbolizer()
	require.NoError(t, s.LoadVmlinux(vmlinux))
	require.NoError(t, s.LoadKallsyms(writeFile(t, "kallsyms", fmt.Sprintf("%016x T _text\n", textAddr+kaslr))))
	s.Symbolize(r)

	sameLines(t, addr2lineExec(workAddr+4), r.RIP.Source, "RIP by name in vmlinux")
	assert.Equal(t, fmt.Sprintf("do_work+0x6/%#x", workSize), symbolString(r.Trace[0]), "address moved back by the KASLR offset")
	sameLines(t, addr2lineExec(workAddr+5), r.Trace[0].Source, "return address through vmlinux")
}
