package bench

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"kemu/machine"
	"kemu/profile"
	"kemu/tlb"
)

// What module placement costs in translation: the hot chain fixture (hot9..hot0, ten modules whose
// hot_bench runs three page-aligned mixing functions per module over each module's 16 KiB table)
// under each placement strategy the machine supports and each TLB preset. Each benchmark op is one
// hot_bench(hotIters) on a cold TLB model fed by machine.Measure; the metrics are the model's events
// per 1000 guest instructions (counted by decoding each executed block with capstone, exactly, not
// estimated), and the op's time is what measuring costs on the host.

// hotIters is the workload: hot_bench(1000), whose checksum the fixture README gives.
const (
	hotIters    = 1000
	hotChecksum = 0x70d0b39f97f3c7cd
)

// placementStrategies are the machine's placement options, all of them: the ones a machine cannot
// run the hot chain with are skipped with the machine's reason.
var placementStrategies = []string{"vmalloc", "kmalloc", "hugepack"}

// hotChain is a machine with the hot chain loaded under one strategy.
type hotChain struct {
	m     *machine.Machine
	bench uint64 // hot_bench
	err   error  // why this strategy cannot run the chain
}

// bootHotChain boots the embedded kernel with strategy and loads hot9..hot0. A strategy the machine
// or the loader refuses gives a hotChain with err set, so callers can skip with the reason.
func bootHotChain(strategy string) *hotChain {
	prof, err := profile.Default()
	if err != nil {
		return &hotChain{err: err}
	}
	m, err := machine.New(prof, machine.Options{Strategy: strategy})
	if err != nil {
		return &hotChain{err: err}
	}
	for i := 9; i >= 0; i-- {
		name := fmt.Sprintf("hot%d.ko", i)
		image, err := os.ReadFile(filepath.Join("..", "testdata", "modules", name))
		if err == nil {
			_, err = m.Insmod(image, "", name)
		}
		if err != nil {
			m.Close()
			return &hotChain{err: fmt.Errorf("insmod %s: %w", name, err)}
		}
	}
	mod, _ := m.Registry().Find("hot0")
	sym, ok := mod.Lookup("hot_bench")
	if !ok {
		m.Close()
		return &hotChain{err: errors.New("hot0 has no hot_bench")}
	}
	return &hotChain{m: m, bench: sym.Addr}
}

// run measures one hot_bench(hotIters) from a cold model of each configuration.
func (h *hotChain) run(cfgs ...tlb.Config) ([]machine.Result, error) {
	ms, err := h.m.Measure(cfgs...)
	if err != nil {
		return nil, err
	}
	sum, err := h.m.Call(h.bench, hotIters)
	if stopErr := ms.Stop(); err == nil {
		err = stopErr
	}
	if err != nil {
		return nil, err
	}
	if sum != hotChecksum {
		return nil, fmt.Errorf("hot_bench(%d) = %#x, want %#x: the workload did not run as written", hotIters, sum, uint64(hotChecksum))
	}
	if err := ms.DecodeErr(); err != nil {
		return nil, err
	}
	return ms.Results(), nil
}

func BenchmarkPlacement(b *testing.B) {
	for _, strategy := range placementStrategies {
		b.Run("strategy="+strategy, func(b *testing.B) {
			h := bootHotChain(strategy)
			if h.err != nil {
				b.Skipf("the machine cannot run the hot chain with %s placement: %v", strategy, h.err)
			}
			b.Cleanup(func() { h.m.Close() })
			for _, preset := range tlb.PresetNames() {
				b.Run("tlb="+preset, func(b *testing.B) {
					cfg, err := tlb.Preset(preset)
					if err != nil {
						b.Fatal(err)
					}
					var r machine.Result
					for i := 0; i < b.N; i++ {
						rs, err := h.run(cfg)
						if err != nil {
							b.Fatal(err)
						}
						r = rs[0]
					}
					reportPlacementMetrics(b, r.Total)
				})
			}
		})
	}
}

// reportPlacementMetrics reports one run's events per 1000 instructions, and the absolute misses.
func reportPlacementMetrics(b *testing.B, t machine.TagResult) {
	b.ReportMetric(t.PerKiloInstructions(t.ITLBMisses()), "iTLB-miss/kinsn")
	b.ReportMetric(t.PerKiloInstructions(t.DTLBMisses()), "dTLB-miss/kinsn")
	b.ReportMetric(t.PerKiloInstructions(t.STLBMisses()), "STLB-miss/kinsn")
	b.ReportMetric(t.PerKiloInstructions(t.Counters.TotalWalks()), "walks/kinsn")
	b.ReportMetric(t.PerKiloInstructions(t.Counters.TotalWalkRefs()), "walkrefs/kinsn")
	b.ReportMetric(1000*t.Cycles/float64(max(t.Instructions, 1)), "xlat-cycles/kinsn")
	b.ReportMetric(float64(t.ITLBMisses()), "iTLB-misses")
	b.ReportMetric(float64(t.DTLBMisses()), "dTLB-misses")
}

// TestPlacementOrdering checks what the hot chain shows on this model, deterministically: with
// vmalloc placement (4K pages) its 41 code pages fit every preset's iTLB, so the iTLB misses only
// once per page; its data pages (four table pages per module, spaced alike in every module's
// vmalloc area) overflow the sets of Skylake's 4-way dTLB, while Zen 2's fully associative dTLB and
// Golden Cove's 6-way one keep most of them. Across strategies on Skylake, the same instructions run,
// and the strategies that cover module text with 2M pages (kmalloc through the kernel-image alias,
// hugepack's shared RX packs) take fewer iTLB misses than vmalloc's one 4K page per text page. Data
// placement is not ordered: hugepack keeps data in 4K vmalloc pages whose spacing can conflict in
// Skylake's dTLB sets worse than vmalloc's, which the test logs rather than asserts.
func TestPlacementOrdering(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the hot chain under three TLB models")
	}
	byStrategy := map[string]machine.TagResult{}
	for _, strategy := range placementStrategies {
		h := bootHotChain(strategy)
		require.NoError(t, h.err, "%s placement", strategy)
		results, err := h.run(tlb.Skylake())
		h.m.Close()
		require.NoError(t, err)
		tot := results[0].Total
		byStrategy[strategy] = tot
		t.Logf("skylake %-8s insns %d iTLB %d dTLB %d STLB %d walks %d refs %d cycles %.0f",
			strategy, tot.Instructions, tot.ITLBMisses(), tot.DTLBMisses(), tot.STLBMisses(),
			tot.Counters.TotalWalks(), tot.Counters.TotalWalkRefs(), tot.Cycles)
	}
	vm := byStrategy["vmalloc"]
	for _, strategy := range []string{"kmalloc", "hugepack"} {
		r := byStrategy[strategy]
		assert.Equal(t, vm.Instructions, r.Instructions, "%s runs the same instructions", strategy)
		assert.Less(t, r.ITLBMisses(), vm.ITLBMisses(), "%s covers module text with 2M pages", strategy)
	}
	km := byStrategy["kmalloc"]
	assert.Less(t, km.Counters.TotalWalks(), vm.Counters.TotalWalks(), "kmalloc covers text and data with 2M pages")

	h := bootHotChain("vmalloc")
	require.NoError(t, h.err)
	defer h.m.Close()
	var cfgs []tlb.Config
	for _, name := range tlb.PresetNames() {
		c, err := tlb.Preset(name)
		require.NoError(t, err)
		cfgs = append(cfgs, c)
	}
	results, err := h.run(cfgs...)
	require.NoError(t, err)
	byPreset := map[string]machine.TagResult{}
	for _, r := range results {
		byPreset[r.TLB] = r.Total
		tot := r.Total
		t.Logf("vmalloc %-10s insns %d iTLB %d dTLB %d STLB %d walks %d refs %d cycles %.0f (%.3f iTLB, %.3f dTLB misses/kinsn)",
			r.TLB, tot.Instructions, tot.ITLBMisses(), tot.DTLBMisses(), tot.STLBMisses(), tot.Counters.TotalWalks(),
			tot.Counters.TotalWalkRefs(), tot.Cycles, tot.PerKiloInstructions(tot.ITLBMisses()), tot.PerKiloInstructions(tot.DTLBMisses()))
	}
	sky, cove, zen := byPreset["skylake"], byPreset["goldencove"], byPreset["zen2"]
	require.Equal(t, sky.Counters.Accesses, zen.Counters.Accesses, "one stream for every model")
	for name, r := range byPreset {
		assert.Equal(t, uint64(41), r.ITLBMisses(), "%s: one cold miss per code page", name)
	}
	assert.Greater(t, sky.DTLBMisses(), 10*cove.DTLBMisses(), "Skylake's 4-way dTLB thrashes on the tables")
	assert.Greater(t, sky.DTLBMisses(), 10*zen.DTLBMisses(), "Zen 2's fully associative dTLB holds them")
	assert.Greater(t, sky.Cycles, zen.Cycles)
}

// BenchmarkMeasureOverhead is what watching costs: hot_bench(hotIters) on the vmalloc machine with
// no hooks, and under one TLB model (block, load/store and fetch-fault hooks, Unicorn's slow memory
// path). Both report guest instructions per second (the count from a measured run).
func BenchmarkMeasureOverhead(b *testing.B) {
	h := bootHotChain("vmalloc")
	if h.err != nil {
		b.Fatal(h.err)
	}
	b.Cleanup(func() { h.m.Close() })
	rs, err := h.run(tlb.Skylake())
	if err != nil {
		b.Fatal(err)
	}
	insns := rs[0].Total.Instructions
	for _, measured := range []bool{false, true} {
		b.Run(fmt.Sprintf("measured=%v", measured), func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				if measured {
					if _, err := h.run(tlb.Skylake()); err != nil {
						b.Fatal(err)
					}
				} else if sum, err := h.m.Call(h.bench, hotIters); err != nil || sum != hotChecksum {
					b.Fatalf("hot_bench(%d) = %#x, %v", hotIters, sum, err)
				}
			}
			b.ReportMetric(float64(insns)*float64(b.N)/b.Elapsed().Seconds(), "ginsn/s")
		})
	}
}
