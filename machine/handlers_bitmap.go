package machine

import "math/bits"

// __bitmap_weight (lib/bitmap.c): how many of a bitmap's first nbits bits are set, reading whole
// unsigned longs and masking the last partial one, as bitmap_weight() does for sizes not known at
// compile time.

func init() {
	register("__bitmap_weight", hBitmapWeight)
}

func hBitmapWeight(m *Machine, t *Trap) (uint64, error) {
	addr, nbits := t.Arg(0), uint64(uint32(t.Arg(1)))
	var weight uint64
	for i := uint64(0); i*64 < nbits; i++ {
		w, err := m.ReadU64(addr + 8*i)
		if err != nil {
			return 0, err
		}
		if rest := nbits - i*64; rest < 64 {
			w &= 1<<rest - 1
		}
		weight += uint64(bits.OnesCount64(w))
	}
	return weight, nil
}
