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

// remapTable is a walker whose 4K translations a test can change: page
// va>>12 maps to frame (va>>12 + shift[va>>12]) << 12, and the huge pages
// of pageTable stay put.
type remapTable struct {
	pageTable
	shift map[uint64]uint64
}

func (r *remapTable) Walk(va uint64) (Translation, error) {
	tr, err := r.pageTable.Walk(va)
	if err == nil && tr.Size == Page4K {
		tr.Frame += r.shift[va>>12] << 12
	}
	return tr, err
}

// FuzzHintsAgree checks Access's inline hit path against the general one:
// two TLBs see the same stream of accesses, invalidations, flushes and
// remappings (some without the invlpg the OS would do, so stale entries are
// hit), one with its hints and inline probe and one with them disabled. Every
// outcome, every counter and every cached entry must agree.
func FuzzHintsAgree(f *testing.F) {
	f.Add([]byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17})
	f.Add([]byte("\x81\x10\x20\x30\x40\x50\x60\x70\x80\x90\xa0\xb0\xc0\xd0\xe0\xf0\x03\x08"))
	f.Add([]byte("\x02\x00\x00\x08\x00\x00\x00\x00\x00\x09\x00\x00\x00\x00\x00\x08\x00\x00\x00\x00\x00"))
	f.Fuzz(func(t *testing.T, ops []byte) {
		if len(ops) == 0 {
			return
		}
		geometries := []Config{
			{ // set-associative, two sizes per side
				L1I: []ArrayConfig{Array(4, 2, Sizes4K), Array(1, 1, Sizes2M)},
				L1D: []ArrayConfig{Array(8, 2, Sizes4K), Array(2, 2, Sizes2M), Array(1, 1, Sizes1G)},
				L2:  []ArrayConfig{Array(6, 3, Sizes4K2M)},
				PDE: ArrayConfig{Entries: 2, Ways: 1},
			},
			{ // fully associative, all sizes in one array (Zen-like)
				L1I: []ArrayConfig{Array(4, 4, SizesAll)},
				L1D: []ArrayConfig{Array(4, 4, SizesAll)},
				L2:  []ArrayConfig{Array(8, 4, Sizes4K2M)},
			},
			{ // a first array that is not a power of two sets, and one that holds only 2M
				L1I: []ArrayConfig{Array(6, 2, Sizes4K)},
				L1D: []ArrayConfig{Array(2, 2, Sizes2M), Array(6, 2, Sizes4K)},
				L2:  []ArrayConfig{Array(6, 3, SizesAll)},
			},
		}
		c := geometries[int(ops[0]&0x7f)%len(geometries)]
		if ops[0]&0x80 != 0 {
			c = WithPolicy(c, BitPLRU)
		}
		ops = ops[1:]
		newTable := func() *remapTable {
			return &remapTable{
				pageTable: pageTable{
					huge:   map[uint64]PageSize{0x4000_0000: Page1G, 0x20_0000: Page2M},
					global: map[uint64]bool{0x1000: true},
				},
				shift: map[uint64]uint64{},
			}
		}
		ptFast, ptRef := newTable(), newTable()
		fast, err := New(c, ptFast)
		if err != nil {
			t.Fatal(err)
		}
		ref, err := New(c, ptRef)
		if err != nil {
			t.Fatal(err)
		}
		for side := range ref.l1 {
			ref.l1[side].inline[0].fast = false
		}
		tag := fast.Tag("m", "f")
		ref.Tag("m", "f")
		for i := 0; len(ops) >= 3; i++ {
			op, arg := ops[0], binary.LittleEndian.Uint16(ops[1:3])
			ops = ops[3:]
			va := uint64(arg&0x1f)<<12 | uint64(arg>>5&1)<<21 | uint64(arg>>6&1)<<30 | uint64(arg>>7)
			switch op % 10 {
			case 5:
				fast.Invlpg(va)
				ref.Invlpg(va)
			case 6:
				fast.Flush()
				ref.Flush()
			case 7:
				fast.FlushAll()
				ref.FlushAll()
			case 8, 9: // remap the 4K page; with invlpg on 8 only
				ptFast.shift[va>>12]++
				ptRef.shift[va>>12]++
				if op%10 == 8 {
					fast.Invlpg(va)
					ref.Invlpg(va)
				}
			default:
				kind := Kind(op % 3)
				got, errGot := fast.Access(va, kind, tag)
				want, errWant := ref.Access(va, kind, tag)
				if got != want || (errGot == nil) != (errWant == nil) {
					t.Fatalf("op %d: access %#x (%v): inline path %+v %v, general path %+v %v",
						i, va, kind, got, errGot, want, errWant)
				}
			}
		}
		if fast.Total() != ref.Total() {
			t.Fatalf("counters differ:\ninline  %+v\ngeneral %+v", fast.Total(), ref.Total())
		}
		levels := func(tl *TLB) []*level { return []*level{&tl.l1[0], &tl.l1[1], tl.l2[0], tl.l2[1]} }
		for li, l := range levels(fast) {
			r := levels(ref)[li]
			for ai, a := range l.arrays() {
				b := r.arrays()[ai]
				for slot := range a.keys {
					if a.keys[slot] != b.keys[slot] || a.entries[slot] != b.entries[slot] {
						t.Fatalf("level %d array %d slot %d: inline path %#x %+v, general %#x %+v",
							li, ai, slot, a.keys[slot], a.entries[slot], b.keys[slot], b.entries[slot])
					}
				}
			}
		}
	})
}
