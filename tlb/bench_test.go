package tlb

import (
	"syscall"
	"testing"
	"time"
)

// cpuTime is the process's user+system time: on a shared machine it shows
// what one lookup costs better than wall time does.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// reportRate reports lookups per second by wall and by CPU time.
func reportRate(b *testing.B, cpuStart time.Duration) {
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds()/1e6, "Mlookups/s")
	b.ReportMetric(float64(b.N)/(cpuTime(b)-cpuStart).Seconds()/1e6, "Mlookups/cpu-s")
}

// BenchmarkAccessHit measures the hit path on each preset: reads cycling
// over 64 4K pages, which all stay in the first-level dTLB.
func BenchmarkAccessHit(b *testing.B) {
	for _, name := range PresetNames() {
		b.Run(name, func(b *testing.B) {
			c, err := Preset(name)
			if err != nil {
				b.Fatal(err)
			}
			benchmarkHits(b, c)
		})
	}
}

func benchmarkHits(b *testing.B, c Config) {
	tl, err := New(c, &pageTable{huge: map[uint64]PageSize{}})
	if err != nil {
		b.Fatal(err)
	}
	const base = 0xffffffffc0000000
	for i := range uint64(64) {
		if _, err := tl.Access(base+i<<12, Read, Untagged); err != nil {
			b.Fatal(err)
		}
	}
	tag := tl.Tag("hello", "")
	b.ReportAllocs()
	b.ResetTimer()
	cpu := cpuTime(b)
	for i := range b.N {
		if _, err := tl.Access(base+uint64(i&63)<<12, Read, tag); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	reportRate(b, cpu)
	cnt := tl.Counters(tag)
	if cnt.HitsIn(L1D) != uint64(b.N) {
		b.Fatalf("%d of %d accesses hit L1D", cnt.HitsIn(L1D), b.N)
	}
}

// BenchmarkAccessMixed cycles over 4096 pages: L1 misses that hit the STLB
// and, past its capacity, walks.
func BenchmarkAccessMixed(b *testing.B) {
	tl, err := New(Skylake(), &pageTable{huge: map[uint64]PageSize{}})
	if err != nil {
		b.Fatal(err)
	}
	const base = 0xffffffffc0000000
	b.ReportAllocs()
	cpu := cpuTime(b)
	for i := range b.N {
		if _, err := tl.Access(base+uint64(i*7&4095)<<12, Fetch, Untagged); err != nil {
			b.Fatal(err)
		}
	}
	reportRate(b, cpu)
}
