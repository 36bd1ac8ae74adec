package main

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// runMeasureCmd runs kemu measure with its own flags back at their defaults.
func runMeasureCmd(t *testing.T, args ...string) (string, error) {
	t.Helper()
	saved := measureFlags
	t.Cleanup(func() { measureFlags = saved })
	measureFlags.call, measureFlags.by, measureFlags.iters, measureFlags.warmup = "", "symbol", 1, false
	measureFlags.l2Hit, measureFlags.walk, measureFlags.walkRef = -1, -1, -1
	return runKemu(t, append([]string{"measure"}, args...)...)
}

func TestMeasureHotChainJSON(t *testing.T) {
	if testing.Short() {
		t.Skip("boots the embedded profile and runs the hot chain under the TLB model")
	}
	out, err := runMeasureCmd(t, "hot0", "--call", "hot_bench", "1", "--tlb", "skylake,zen2", "--by", "module",
		"--iters", "2", "--walk-ref", "20", "--json")
	require.NoError(t, err, out)
	var rep measureReport
	require.NoError(t, json.Unmarshal([]byte(out), &rep))
	assert.Equal(t, []string{"hot9", "hot8", "hot7", "hot6", "hot5", "hot4", "hot3", "hot2", "hot1", "hot0"}, rep.Modules,
		"hot0's dependencies, loaded first")
	assert.Equal(t, []uint64{0x4f2bec03fb37b343, 0x4f2bec03fb37b343}, rep.Call.Results, "hot_bench(1) from the fixture README")
	require.Len(t, rep.TLB, 2)
	assert.Equal(t, "skylake", rep.TLB[0].TLB)
	assert.Equal(t, "zen2", rep.TLB[1].TLB)
	assert.Equal(t, 20.0, rep.TLB[0].Costs.WalkRef)
	assert.Len(t, rep.TLB[0].Tags, 11, "ten modules and vmlinux")
	assert.NotZero(t, rep.TLB[0].Total.ITLBMisses())
	assert.Equal(t, "vmalloc", rep.Strategy)
	assert.Equal(t, 10, rep.Placement.Regions)
	assert.NotZero(t, rep.Placement.Pages4K)
}

func TestMeasureText(t *testing.T) {
	if testing.Short() {
		t.Skip("boots the embedded profile and runs the hot chain under the TLB model")
	}
	out, err := runMeasureCmd(t, "hot1", "hot0", "--call", "hot_bench 1", "--warmup")
	require.NoError(t, err, out)
	assert.Contains(t, out, "hot_bench(1) = 0x4f2bec03fb37b343 (1 measured call(s), after a warm-up call)")
	assert.Contains(t, out, "TLB model skylake")
	assert.Contains(t, out, "hot5:hot5_mix_add")
	assert.Contains(t, out, "== module placement (vmalloc)")
}

func TestMeasureArguments(t *testing.T) {
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"unknown preset", []string{"hot9", "--call", "hot9_step 1", "--tlb", "pentium"}, "--tlb"},
		{"call argument not an integer", []string{"hot9", "--call", "hot9_step x"}, `"x" is not an integer`},
		{"too many arguments", []string{"hot9", "--call", "f 1 2 3 4 5 6 7"}, "at most 6"},
		{"no iterations", []string{"hot9", "--call", "hot9_step", "--iters", "0"}, "at least one call"},
		{"bad --by", []string{"hot9", "--call", "hot9_step", "--by", "page"}, "symbol or module"},
		{"no such module", []string{"nosuch_module", "--call", "f"}, "no embedded fixture"},
		{"module after the arguments", []string{"hot9", "1", "hot8", "--call", "f"}, "after the call's arguments"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := runMeasureCmd(t, tc.args...)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
}

func TestMeasureLoadOrder(t *testing.T) {
	mods, err := measureLoadOrder([]string{"hot7", "hot9.ko", "hot8"})
	require.NoError(t, err)
	var names []string
	for _, m := range mods {
		names = append(names, m.name)
	}
	assert.Equal(t, []string{"hot9", "hot8", "hot7"}, names)
}
