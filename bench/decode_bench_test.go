package bench

import (
	"bytes"
	"debug/elf"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"kemu/oops"
)

// The decode benchmarks symbolize one oops whose call trace runs through every function of a fixture
// module, twice: with kemu decode's library path (parse, symbolize from the .ko's DWARF, disassemble,
// format) and with the kernel's scripts/decode_stacktrace.sh (nm and addr2line per symbol, decodecode
// for the Code: line). Both start cold each time: a fresh Symbolizer, a fresh script process.

const decodeModule = "chardev"

var decodeModuleDir = filepath.Join("..", "testdata", "modules")

// elfFrames prints functions of an object as "name+off/size [mod]" frames, with the object's own sizes.
func elfFrames(tb testing.TB, path, module string, keep func(elf.Symbol) bool) []string {
	tb.Helper()
	f, err := elf.Open(path)
	if err != nil {
		tb.Skipf("%v", err)
	}
	defer f.Close()
	syms, err := f.Symbols()
	if err != nil {
		tb.Fatal(err)
	}
	var frames []string
	for _, s := range syms {
		if elf.ST_TYPE(s.Info) == elf.STT_FUNC && s.Size > 8 && keep(s) {
			fr := fmt.Sprintf("%s+%#x/%#x", s.Name, s.Size/2, s.Size)
			if module != "" {
				fr += " [" + module + "]"
			}
			frames = append(frames, fr)
		}
	}
	return frames
}

// decodeOops builds the oops text: every function of the module as a "name+off/size [mod]" frame,
// then a few kernel frames (sized as vmlinux has them when one is given).
func decodeOops(tb testing.TB, vmlinux string) string {
	tb.Helper()
	frames := elfFrames(tb, filepath.Join(decodeModuleDir, decodeModule+".ko"), decodeModule,
		func(s elf.Symbol) bool { return elf.ST_BIND(s.Info) == elf.STB_LOCAL })
	if len(frames) < 3 {
		tb.Skipf("%s has too few functions", decodeModule)
	}
	kernel := []string{"ksys_read+0x5f/0xe0"}
	if vmlinux != "" {
		want := map[string]bool{"ksys_read": true, "vfs_read": true, "do_syscall_64": true}
		kernel = elfFrames(tb, vmlinux, "", func(s elf.Symbol) bool { return want[s.Name] })
	}
	var b strings.Builder
	w := func(format string, args ...any) {
		fmt.Fprintf(&b, "[   42.%06d] "+format+"\n", append([]any{b.Len()}, args...)...)
	}
	w("BUG: unable to handle page fault for address: ffffffffc0abc000")
	w("#PF: supervisor read access in kernel mode")
	w("Oops: 0000 [#1] PREEMPT SMP NOPTI")
	w("CPU: 1 PID: 1234 Comm: cat Tainted: G           OE      6.1.0-13-amd64 #1  Debian 6.1.55-1")
	w("RIP: 0010:%s", frames[0])
	w("Code: 00 00 55 48 89 e5 41 54 53 48 89 d3 49 89 f4 e8 00 00 00 00 48 c7 c7 00 10 12 a0 e8 00 00 00 00 31 c0 48 8b 04 25 08 00 00 00 <8b> 00 48 89 d8 5b 41 5c 5d c3 66 0f 1f 44 00 00 55 48 89 e5")
	w("RSP: 0018:ffffc90000c23e68 EFLAGS: 00010286")
	w("Call Trace:")
	w(" <TASK>")
	for _, fr := range frames {
		w(" %s", fr)
	}
	for _, fr := range kernel {
		w(" %s", fr)
	}
	w(" </TASK>")
	w("Modules linked in: %s(OE)", decodeModule)
	w("---[ end trace 0000000000000000 ]---")
	return b.String()
}

// decodeWithKemu is what `kemu decode --ko DIR [--vmlinux FILE]` does, minus reading the file.
func decodeWithKemu(tb testing.TB, log, vmlinux string, out io.Writer) {
	reports := oops.ParseString(log)
	s := oops.NewSymbolizer()
	if err := s.AddModules(decodeModuleDir); err != nil {
		tb.Fatal(err)
	}
	if vmlinux != "" {
		if err := s.LoadVmlinux(vmlinux); err != nil {
			tb.Fatal(err)
		}
	}
	for _, r := range reports {
		s.Symbolize(r)
	}
	if err := oops.Format(out, reports); err != nil {
		tb.Fatal(err)
	}
}

// findDecodeStacktrace locates Linux 6.1's scripts/decode_stacktrace.sh: $KEMU_DECODE_STACKTRACE, the
// scripts directories Debian's kernel packages install, or, from the linux-source-6.1 package's
// tarball, extracted once into the user cache. Debian's linux-kbuild and linux-headers packages do not
// ship it.
func findDecodeStacktrace(tb testing.TB) string {
	tb.Helper()
	if p := os.Getenv("KEMU_DECODE_STACKTRACE"); p != "" {
		return p
	}
	for _, pattern := range []string{
		"/usr/src/linux-headers-*/scripts/decode_stacktrace.sh",
		"/usr/lib/linux-kbuild-*/scripts/decode_stacktrace.sh",
		"/usr/src/linux-source-*/scripts/decode_stacktrace.sh",
	} {
		if m, _ := filepath.Glob(pattern); len(m) > 0 {
			return m[0]
		}
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		tb.Skipf("decode_stacktrace.sh not found and no cache directory: %v", err)
	}
	dir := filepath.Join(cache, "kemu", "linux-6.1-scripts")
	script := filepath.Join(dir, "scripts", "decode_stacktrace.sh")
	if _, err := os.Stat(script); err == nil {
		return script
	}
	tarballs, _ := filepath.Glob("/usr/src/linux-source-6.1*.tar.xz")
	if len(tarballs) == 0 {
		tb.Skip("decode_stacktrace.sh not found: set KEMU_DECODE_STACKTRACE, or apt-get install linux-source-6.1 " +
			"(Debian's linux-kbuild-6.1 and linux-headers do not ship it)")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		tb.Fatal(err)
	}
	cmd := exec.Command("tar", "-xJf", tarballs[0], "-C", dir, "--strip-components=1", "--wildcards",
		"*/scripts/decode_stacktrace.sh", "*/scripts/decodecode")
	if out, err := cmd.CombinedOutput(); err != nil {
		tb.Skipf("extract decode_stacktrace.sh from %s: %v: %s", tarballs[0], err, out)
	}
	return script
}

// decodeWithScript runs decode_stacktrace.sh with the fixture directory as base path and module path,
// and vmlinux for kernel frames; with none (/dev/null) kernel frames stay as they are, as they do for
// kemu without --vmlinux.
func decodeWithScript(tb testing.TB, script, log, vmlinux string, out io.Writer) {
	if vmlinux == "" {
		vmlinux = "/dev/null"
	}
	cmd := exec.Command("bash", script, vmlinux, decodeModuleDir, decodeModuleDir)
	cmd.Stdin, cmd.Stdout = strings.NewReader(log), out
	if err := cmd.Run(); err != nil {
		tb.Fatalf("decode_stacktrace.sh: %v", err)
	}
}

// BenchmarkDecode decodes the same oops both ways in each iteration and reports each one's time and
// their ratio (script time / kemu time). Both outputs must carry the module's source lines.
func BenchmarkDecode(b *testing.B) {
	benchmarkDecode(b, "", decodeModule+".c:")
}

// BenchmarkDecodeVmlinux adds kernel frames resolved through a debug vmlinux ($KEMU_DEBUG_VMLINUX,
// from Debian's linux-image-<release>-dbg package), where the script runs nm over the whole vmlinux
// for each kernel symbol.
func BenchmarkDecodeVmlinux(b *testing.B) {
	vmlinux := os.Getenv("KEMU_DEBUG_VMLINUX")
	if vmlinux == "" {
		b.Skip("set KEMU_DEBUG_VMLINUX to a vmlinux with debug info (linux-image-<release>-dbg)")
	}
	benchmarkDecode(b, vmlinux, "read_write.c:")
}

func benchmarkDecode(b *testing.B, vmlinux, wantSource string) {
	log := decodeOops(b, vmlinux)
	script := findDecodeStacktrace(b)
	for _, tool := range []string{"addr2line", "nm", "readelf", "objdump", "as"} {
		if _, err := exec.LookPath(tool); err != nil {
			b.Skipf("decode_stacktrace.sh needs %s (binutils)", tool)
		}
	}
	var kemuOut, scriptOut bytes.Buffer
	decodeWithKemu(b, log, vmlinux, &kemuOut)
	decodeWithScript(b, script, log, vmlinux, &scriptOut)
	for name, out := range map[string]string{"kemu": kemuOut.String(), "decode_stacktrace.sh": scriptOut.String()} {
		if !strings.Contains(out, wantSource) {
			b.Fatalf("%s printed no %s source lines:\n%s", name, wantSource, out)
		}
	}
	var kemuTime, scriptTime time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		start := time.Now()
		decodeWithKemu(b, log, vmlinux, io.Discard)
		kemuTime += time.Since(start)
		start = time.Now()
		decodeWithScript(b, script, log, vmlinux, io.Discard)
		scriptTime += time.Since(start)
	}
	b.ReportMetric(float64(kemuTime.Nanoseconds())/float64(b.N), "kemu-ns/op")
	b.ReportMetric(float64(scriptTime.Nanoseconds())/float64(b.N), "script-ns/op")
	b.ReportMetric(float64(scriptTime)/float64(kemuTime), "script/kemu")
}

// BenchmarkDecodeKemu times kemu's library path alone, for profiling.
func BenchmarkDecodeKemu(b *testing.B) {
	log := decodeOops(b, "")
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		decodeWithKemu(b, log, "", io.Discard)
	}
}
