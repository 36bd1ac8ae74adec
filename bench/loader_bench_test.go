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

// BenchmarkLoaderCorpus links every Debian module (validation, layout, resolution, relocation) in
// modules.dep order, per iteration, next to kmod's depmod over the same tree, which reads the same
// files and resolves the same symbols to compute dependencies. Metrics: modules/s; depmod's wall time
// and kemu's relative to it (kemu/depmod); the same for CPU time (user+system, both processes), which
// stays meaningful on a loaded machine where wall time does not.
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
	depmodWall, depmodCPU, depFile := runDepmod(b, root, release)
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
	b.ResetTimer()
	cpu0 := cpuTime(b)
	var failed int
	for i := 0; i < b.N; i++ {
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
	}
	b.StopTimer()
	perOp := b.Elapsed() / time.Duration(b.N)
	cpuPerOp := (cpuTime(b) - cpu0) / time.Duration(b.N)
	b.ReportMetric(float64(len(order))/perOp.Seconds(), "modules/s")
	b.ReportMetric(float64(failed), "failed")
	b.ReportMetric(cpuPerOp.Seconds(), "kemu-cpu-s")
	if depmodWall > 0 {
		b.ReportMetric(depmodWall.Seconds(), "depmod-s")
		b.ReportMetric(perOp.Seconds()/depmodWall.Seconds(), "kemu/depmod")
		b.ReportMetric(depmodCPU.Seconds(), "depmod-cpu-s")
		b.ReportMetric(cpuPerOp.Seconds()/depmodCPU.Seconds(), "kemu/depmod-cpu")
	}
}
