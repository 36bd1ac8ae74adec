package bench

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"kemu/corpus"
	"kemu/depmod"
)

// BenchmarkDepmodCorpus runs kemu's depmod (read every Debian module, resolve, write all ten index
// files) per iteration, in the scratch tree where kmod's depmod ran once first, and checks that it
// rewrote kmod's modules.dep byte for byte. Metrics: kmod's wall and CPU time and kemu's relative to
// them (kemu/kmod, kemu/kmod-cpu; below 1 is faster). CPU time stays meaningful on a loaded machine.
func BenchmarkDepmodCorpus(b *testing.B) {
	tree := corpus.ForTest(b, "amd64")
	release := tree.Release
	kmodWall, kmodCPU, depFile := runDepmod(b, tree.Root, release)
	if depFile == "" {
		b.Skip("kmod's depmod is not installed")
	}
	want, err := os.ReadFile(depFile)
	if err != nil {
		b.Fatal(err)
	}
	base := strings.TrimSuffix(filepath.Dir(depFile), filepath.Join("/lib/modules", release))
	opts := depmod.Options{BaseDir: base, Version: release, ConfigPaths: []string{}}
	b.ResetTimer()
	cpu0 := cpuTime(b)
	for i := 0; i < b.N; i++ {
		x, err := depmod.Build(opts)
		if err != nil {
			b.Fatal(err)
		}
		if err := x.Write(); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	perOp := b.Elapsed() / time.Duration(b.N)
	cpuPerOp := (cpuTime(b) - cpu0) / time.Duration(b.N)
	if got, err := os.ReadFile(depFile); err != nil || !bytes.Equal(got, want) {
		b.Fatalf("modules.dep differs from kmod's (err %v)", err)
	}
	b.ReportMetric(kmodWall.Seconds(), "kmod-s")
	b.ReportMetric(perOp.Seconds()/kmodWall.Seconds(), "kemu/kmod")
	b.ReportMetric(cpuPerOp.Seconds(), "kemu-cpu-s")
	b.ReportMetric(kmodCPU.Seconds(), "kmod-cpu-s")
	b.ReportMetric(cpuPerOp.Seconds()/kmodCPU.Seconds(), "kemu/kmod-cpu")
}
