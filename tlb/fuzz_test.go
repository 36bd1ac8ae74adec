package tlb

import (
	"encoding/binary"
	"testing"
)

// FuzzAccess drives a small TLB with an arbitrary stream of accesses and
// invalidations over 4K, 2M and 1G pages, and checks that every access
// translates exactly as the page table does and that the counters add up.
func FuzzAccess(f *testing.F) {
	f.Add([]byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16})
	f.Add([]byte("\x00\x10\x20\x30\x40\x50\x60\x70\x80\x90\xa0\xb0\xc0\xd0\xe0\xf0"))
	f.Fuzz(func(t *testing.T, ops []byte) {
		pt := &pageTable{
			huge:   map[uint64]PageSize{0x4000_0000: Page1G, 0x20_0000: Page2M, 0x60_0000: Page2M},
			global: map[uint64]bool{0x1000: true, 0x3000: true},
		}
		c := Config{
			L1I:   []ArrayConfig{Array(2, 2, Sizes4K), Array(1, 1, Sizes2M)},
			L1D:   []ArrayConfig{Array(4, 2, Sizes4K), Array(2, 2, Sizes2M), Array(1, 1, Sizes1G)},
			L2:    []ArrayConfig{Array(6, 3, Sizes4K2M)},
			PML4E: ArrayConfig{Entries: 1, Ways: 1}, PDPTE: ArrayConfig{Entries: 2, Ways: 2},
			PDE: ArrayConfig{Entries: 2, Ways: 1},
		}
		if len(ops) > 0 && ops[0]&0x80 != 0 {
			c = WithPolicy(c, BitPLRU)
		}
		tl, err := New(c, pt)
		if err != nil {
			t.Fatal(err)
		}
		var ok uint64
		for len(ops) >= 3 {
			op, arg := ops[0], binary.LittleEndian.Uint16(ops[1:3])
			ops = ops[3:]
			// Addresses spread over 4K pages, the two 2M pages and the 1G page.
			va := uint64(arg&0x3f)<<12 | uint64(arg>>6&3)<<21 | uint64(arg>>8&1)<<30 | uint64(arg>>9)
			switch op % 8 {
			case 5:
				tl.Invlpg(va)
				continue
			case 6:
				tl.Flush()
				continue
			case 7:
				tl.FlushAll()
				continue
			}
			out, err := tl.Access(va, Kind(op%3), Untagged)
			if err != nil {
				t.Fatal(err)
			}
			want, _ := pt.Walk(va)
			if phys := want.Frame | va&(want.Size.Bytes()-1); out.Phys != phys || out.Size != want.Size {
				t.Fatalf("%#x: got %+v, page table says %+v", va, out, want)
			}
			ok++
		}
		total := tl.Total()
		l1 := total.HitsIn(L1I) + total.MissesIn(L1I) + total.HitsIn(L1D) + total.MissesIn(L1D)
		if l1 != ok || total.TotalAccesses() != ok {
			t.Fatalf("%d accesses, %d L1 lookups counted, %d accesses counted", ok, l1, total.TotalAccesses())
		}
		if total.MissesIn(L1I)+total.MissesIn(L1D) != total.HitsIn(L2)+total.MissesIn(L2) {
			t.Fatal("every L1 miss looks up L2")
		}
		if total.MissesIn(L2) != total.TotalWalks() {
			t.Fatal("every L2 miss walks")
		}
	})
}
