package bench

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"syscall"
	"testing"
	"time"

	"kemu/corpus"
	"kemu/loader"
)

// runDepmod runs kmod's `depmod -b <root> <release>` over the same modules in a scratch root (the
// cache stays untouched: its kernel/ directory is linked in) and returns the wall and CPU (user+system)
// time it took and the modules.dep it wrote.
func runDepmod(b *testing.B, root, release string) (wall, cpu time.Duration, dep string) {
	depmod, err := exec.LookPath("depmod")
	if err != nil {
		if depmod, err = exec.LookPath("/usr/sbin/depmod"); err != nil {
			b.Logf("depmod not installed: no comparison")
			return 0, 0, ""
		}
	}
	scratch := b.TempDir()
	dst := filepath.Join(scratch, "lib", "modules", release)
	src := filepath.Join(root, "lib", "modules", release)
	if err := os.MkdirAll(dst, 0o755); err != nil {
		b.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(src, "kernel"), filepath.Join(dst, "kernel")); err != nil {
		b.Fatal(err)
	}
	for _, f := range []string{"modules.order", "modules.builtin", "modules.builtin.modinfo"} {
		if data, err := os.ReadFile(filepath.Join(src, f)); err == nil {
			_ = os.WriteFile(filepath.Join(dst, f), data, 0o644)
		}
	}
	cmd := exec.Command(depmod, "-b", scratch, release)
	start := time.Now()
	out, err := cmd.CombinedOutput()
	wall = time.Since(start)
	if err != nil {
		b.Fatalf("depmod: %v\n%s", err, out)
	}
	cpu = cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	return wall, cpu, filepath.Join(dst, "modules.dep")
}

// cpuTime is the user+system time this process has used so far.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkLoaderCorpus compares kemu's loader with kmod's depmod on the same tree, the Debian 6.1
// corpus (4023 modules):
//   - depmod (`depmod -b scratch RELEASE`, a fresh process each pass) reads every module's ELF, its
//     symbol tables and .modinfo, resolves every undefined symbol against the other modules' exports
//     and writes modules.dep and its other indexes;
//   - kemu, in a fresh registry each pass, reads every module and does all of load_module() short of
//     running init: signature trailer, ELF validation, modinfo and vermagic checks, layout into
//     regions, symbol resolution against vmlinux (CRCs, namespaces, GPL rules) and the modules loaded
//     before, every relocation, exports, exception/bug/ORC tables and kallsyms, then marks it live.
//
// kemu links in modules.dep order (computed once, before the timer); depmod computes that order. Both
// tools run in every iteration, depmod outside the benchmark timer, and the metrics compare their
// averages: wall time (depmod-s, kemu-s, kemu/depmod) and CPU time, user+system of either process
// (depmod-cpu-s, kemu-cpu-s, kemu/depmod-cpu). On a loaded machine the CPU ratio is the one to read.
// kemu uses every CPU to read and validate files ahead of its sequential linker; depmod runs on one.
func BenchmarkLoaderCorpus(b *testing.B) {
	tree := corpus.ForTest(b, "amd64")
	prof, err := tree.Profile()
	if err != nil {
		b.Fatal(err)
	}
	root, release := tree.Root, tree.Release
	files, err := loader.FindModules(tree.ModulesDir)
	if err != nil {
		b.Fatal(err)
	}
	_, _, depFile := runDepmod(b, root, release)
	var deps map[string][]string
	if depFile != "" {
		deps, err = loader.ReadModulesDep(depFile)
	} else {
		deps, err = loader.DependsFromModinfo(files)
	}
	if err != nil {
		b.Fatal(err)
	}
	order := loader.LoadOrder(files, deps)
	b.ReportAllocs()
	b.ResetTimer()
	var kemuWall, kemuCPU, depmodWall, depmodCPU time.Duration
	var failed int
	for i := 0; i < b.N; i++ {
		start, cpu0 := time.Now(), cpuTime(b)
		k, err := loader.NewKernel(loader.Config{Profile: prof})
		if err != nil {
			b.Fatal(err)
		}
		failed = 0
		k.CheckFiles(order, runtime.NumCPU(), func(r loader.CheckResult) {
			if r.Err != nil {
				failed++
			}
		})
		kemuWall += time.Since(start)
		kemuCPU += cpuTime(b) - cpu0

		b.StopTimer()
		wall, cpu, _ := runDepmod(b, root, release)
		depmodWall += wall
		depmodCPU += cpu
		b.StartTimer()
	}
	b.StopTimer()
	n := time.Duration(b.N)
	kemuWall, kemuCPU, depmodWall, depmodCPU = kemuWall/n, kemuCPU/n, depmodWall/n, depmodCPU/n
	b.ReportMetric(float64(len(order))/kemuWall.Seconds(), "modules/s")
	b.ReportMetric(float64(failed), "failed")
	b.ReportMetric(kemuWall.Seconds(), "kemu-s")
	b.ReportMetric(kemuCPU.Seconds(), "kemu-cpu-s")
	if depmodWall > 0 {
		b.ReportMetric(depmodWall.Seconds(), "depmod-s")
		b.ReportMetric(depmodCPU.Seconds(), "depmod-cpu-s")
		b.ReportMetric(kemuWall.Seconds()/depmodWall.Seconds(), "kemu/depmod")
		b.ReportMetric(kemuCPU.Seconds()/depmodCPU.Seconds(), "kemu/depmod-cpu")
	}
}
