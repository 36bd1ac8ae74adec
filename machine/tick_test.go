package machine

import (
	"math/bits"
	"testing"

	"github.com/stretchr/testify/require"

	"kemu/tlb"
)

// hotChainRef is hot_bench(iters) computed in Go from the fixture's source (hot_chain.h): each
// iteration runs the chain's ten links, each link its three mixing loops over its table.
func hotChainRef(iters uint64) uint64 {
	const n, stride, touches = 2048, 67, 24
	step := func(idx int, x uint64) uint64 {
		table := func(i uint64) uint64 { return (i + 1 + uint64(idx)*n) * 0x9E3779B97F4A7C15 }
		j := x % n
		for i := 0; i < touches; i++ {
			x += table(j)
			j = (j + stride) % n
		}
		j = (x >> 7) % n
		for i := uint64(0); i < touches; i++ {
			x ^= table(j) + i
			j = (j + 3*stride) % n
		}
		j = (x >> 13) % n
		for i := 0; i < touches; i++ {
			x = bits.RotateLeft64(x, 5) + table(j)
			j = (j + 5*stride) % n
		}
		return x
	}
	sum := uint64(0)
	for i := uint64(0); i < iters; i++ {
		x := sum + i
		for idx := 0; idx < 10; idx++ {
			x = step(idx, x)
		}
		sum = x
	}
	return sum
}

// Ticks delivered while guest code runs must not disturb it: hot_bench(3000) runs long enough (tens of
// milliseconds of host time) to be ticked many times and must still compute the reference checksum,
// with and without a measurement's hooks. (Stopping Unicorn 2.0.1 asynchronously and resuming it
// changed the result on every run: see tickState.)
func TestTicksDoNotDisturbGuestCode(t *testing.T) {
	if testing.Short() {
		t.Skip("boots the embedded Debian profile and loads ten modules")
	}
	m := bootDefault(t, Options{})
	bench := loadHotChain(t, m)
	want := hotChainRef(3000)
	for i := range 2 {
		got, err := m.Call(bench, 3000)
		require.NoError(t, err)
		require.Equal(t, want, got, "run %d", i)
	}
	ms, err := m.Measure(tlb.Skylake())
	require.NoError(t, err)
	got, err := m.Call(bench, 300)
	require.NoError(t, err)
	require.NoError(t, ms.Stop())
	require.Equal(t, hotChainRef(300), got, "measured")
}
