package mmu_test

import (
	"fmt"
	"math/rand/v2"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"kemu/mmu"
	"kemu/mmu/mmutest"
)

// newTables builds an empty tree over fresh RAM with a fake CPU following it.
func newTables(t testing.TB, ram uint64) (*mmu.PageTables, *mmu.FrameAllocator, *mmutest.Mirror) {
	t.Helper()
	mem, err := mmu.NewPhysMem(ram)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, mem.Close()) })
	frames, err := mmu.NewFrameAllocator(ram / mmu.PageSize)
	require.NoError(t, err)
	mirror := mmutest.NewMirror()
	pt, err := mmu.NewPageTables(mem, frames, mirror)
	require.NoError(t, err)
	return pt, frames, mirror
}

// TestWalkHandComputed checks a 4K walk entry by entry. A fresh allocator hands out frames 0, 1, 2, 3 in order,
// so the PGD is at 0x0, the PUD at 0x1000, the PMD at 0x2000 and the page table at 0x3000. For
// va 0xffffc90000001000: PGD index (va>>39)&511 = 0x192, PUD index 0, PMD index 0, PTE index 1.
// Tables are P|RW|A|D (0x63); the leaf is P|RW|A|D|G (0x163) with NX (bit 63) for a non-executable page.
func TestWalkHandComputed(t *testing.T) {
	pt, _, _ := newTables(t, 4<<20)
	const va, pa = 0xffffc90000001000, 0x200000
	require.NoError(t, pt.Map(va, pa, mmu.Size4K, mmu.Size4K, mmu.PermRW, mmu.AttrGlobal))

	w := pt.Walk(va+0x123, mmu.Access{Kind: mmu.AccessWrite})
	require.Equal(t, mmu.FaultNone, w.Fault)
	assert.Equal(t, uint64(pa+0x123), w.PA)
	assert.Equal(t, mmu.Size4K, w.PageSize)
	assert.Equal(t, mmu.PermRW, w.Perm)
	assert.True(t, w.Global)
	assert.False(t, w.User)
	assert.Equal(t, []mmu.Step{
		{Level: mmu.LevelPGD, EntryAddr: 0x192 * 8, Entry: 0x1063},
		{Level: mmu.LevelPUD, EntryAddr: 0x1000, Entry: 0x2063},
		{Level: mmu.LevelPMD, EntryAddr: 0x2000, Entry: 0x3063},
		{Level: mmu.LevelPTE, EntryAddr: 0x3008, Entry: 0x8000000000200163},
	}, w.Steps[:w.NSteps])
	// dump_pagetable: the PTE ends the line without a space; the folded P4D is printed even for an empty PGD entry.
	assert.Equal(t, "PGD 1063 P4D 1063 PUD 2063 PMD 3063 PTE 8000000000200163", pt.DumpEntries(va))
	assert.Equal(t, "PGD 1063 P4D 1063 PUD 2063 PMD 3063 PTE 0", pt.DumpEntries(va+mmu.Size4K))
	assert.Equal(t, "PGD 0 P4D 0 ", pt.DumpEntries(0xffff888000000000))
	assert.Equal(t, "PGD 0 P4D 0 ", pt.DumpEntries(0), "a NULL dereference")
	assert.Equal(t, "PGD 1063 P4D 1063 PUD 0 ", pt.DumpEntries(va+mmu.Size1G))
	assert.Equal(t, "", pt.DumpEntries(0x0000800000000000), "non-canonical: #GP, no page walk")
	assert.Equal(t, uint64(0x192), (uint64(va)>>39)&511, "the index the comment computes")
}

func TestWalkFaults(t *testing.T) {
	const (
		kernRW   = 0xffffc90000000000
		kernRO   = 0xffffc90000001000
		kernRX   = 0xffffc90000002000
		userRW   = 0x0000000000400000
		userRX   = 0x0000000000401000
		huge2M   = 0xffffffffc0200000
		unmapped = 0xffffc90000003000
	)
	pt, _, _ := newTables(t, 8<<20)
	for _, m := range []struct {
		va, size uint64
		perm     mmu.Perm
		attr     mmu.Attr
	}{
		{kernRW, mmu.Size4K, mmu.PermRW, mmu.AttrGlobal},
		{kernRO, mmu.Size4K, mmu.PermRO, mmu.AttrGlobal},
		{kernRX, mmu.Size4K, mmu.PermRX, mmu.AttrGlobal},
		{userRW, mmu.Size4K, mmu.PermRW, mmu.AttrUser},
		{userRX, mmu.Size4K, mmu.PermRX, mmu.AttrUser},
		{huge2M, mmu.Size2M, mmu.PermRX, mmu.AttrGlobal},
	} {
		require.NoError(t, pt.Map(m.va, 0x400000, m.size, m.size, m.perm, m.attr))
	}
	read, write, fetch := mmu.AccessRead, mmu.AccessWrite, mmu.AccessFetch
	tests := []struct {
		name  string
		va    uint64
		kind  mmu.AccessKind
		user  bool
		fault mmu.Fault
		code  mmu.PFCode // hand-written: P=1 W=2 U=4 RSVD=8 I=0x10
	}{
		{"kernel read RW", kernRW, read, false, mmu.FaultNone, 0},
		{"kernel write RW", kernRW, write, false, mmu.FaultNone, 0},
		{"kernel fetch NX", kernRW, fetch, false, mmu.FaultProtection, 0x11},
		{"kernel write RO", kernRO, write, false, mmu.FaultProtection, 0x03},
		{"kernel fetch RX", kernRX, fetch, false, mmu.FaultNone, 0},
		{"kernel write RX", kernRX, write, false, mmu.FaultProtection, 0x03},
		{"kernel read not present", unmapped, read, false, mmu.FaultNotPresent, 0x00},
		{"kernel write not present", unmapped, write, false, mmu.FaultNotPresent, 0x02},
		{"kernel fetch not present", unmapped, fetch, false, mmu.FaultNotPresent, 0x10},
		{"NULL pointer read", 0x8, read, false, mmu.FaultNotPresent, 0x00},
		{"user read kernel page", kernRW, read, true, mmu.FaultProtection, 0x05},
		{"user write kernel page", kernRW, write, true, mmu.FaultProtection, 0x07},
		{"user read own page", userRW, read, true, mmu.FaultNone, 0},
		{"user fetch NX page", userRW, fetch, true, mmu.FaultProtection, 0x15},
		{"user fetch own code", userRX, fetch, true, mmu.FaultNone, 0},
		{"user write not present", userRW + 0x10000, write, true, mmu.FaultNotPresent, 0x06},
		{"SMEP: kernel fetch user code", userRX, fetch, false, mmu.FaultProtection, 0x11},
		{"SMAP: kernel read user page", userRW, read, false, mmu.FaultProtection, 0x01},
		{"2M page fetch", huge2M + 0x1234, fetch, false, mmu.FaultNone, 0},
		{"2M page write", huge2M + 0x1fffff, write, false, mmu.FaultProtection, 0x03},
		{"non-canonical", 0x0000800000000000, read, false, mmu.FaultNonCanonical, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := pt.Walk(tt.va, mmu.Access{Kind: tt.kind, User: tt.user})
			assert.Equal(t, tt.fault, w.Fault)
			assert.Equal(t, tt.code, w.Code, "error code %#x", uint32(w.Code))
			if tt.fault == mmu.FaultNone {
				assert.NoError(t, w.Err())
			} else {
				assert.Error(t, w.Err())
			}
		})
	}
	w := pt.Walk(huge2M+0x1234, mmu.Access{})
	assert.Equal(t, uint64(0x401234), w.PA)
	assert.Equal(t, 3, w.NSteps, "a 2M walk stops at the PMD")
}

func TestWalkReservedBits(t *testing.T) {
	pt, _, _ := newTables(t, 4<<20)
	const va = 0xffffc90000000000
	require.NoError(t, pt.Map(va, 0x100000, mmu.Size4K, mmu.Size4K, mmu.PermRW, 0))
	w := pt.Walk(va, mmu.Access{})
	leaf := w.Steps[3]
	// Set bit 50, above MAXPHYADDR: the next walk faults with P|RSVD and the access bits.
	require.NoError(t, pt.Mem().WriteU64(leaf.EntryAddr, uint64(leaf.Entry)|1<<50))
	w = pt.Walk(va, mmu.Access{Kind: mmu.AccessWrite})
	assert.Equal(t, mmu.FaultReserved, w.Fault)
	assert.Equal(t, mmu.PFCode(0x0b), w.Code)
	assert.Contains(t, w.Err().Error(), "reserved bit violation")

	// A PS bit in a PGD entry is reserved too.
	pgd := w.Steps[0]
	require.NoError(t, pt.Mem().WriteU64(pgd.EntryAddr, uint64(pgd.Entry)|uint64(mmu.PTEHuge)))
	w = pt.Walk(va, mmu.Access{})
	assert.Equal(t, mmu.FaultReserved, w.Fault)
	assert.Equal(t, 1, w.NSteps)

	// A table pointer beyond RAM reads as all ones: reserved, not a crash.
	require.NoError(t, pt.Mem().WriteU64(pgd.EntryAddr, 0x40000063))
	w = pt.Walk(va, mmu.Access{})
	assert.Equal(t, mmu.FaultReserved, w.Fault)
}

func TestMapErrors(t *testing.T) {
	pt, _, _ := newTables(t, 4<<20)
	const va = 0xffffc90000000000
	require.NoError(t, pt.Map(va, 0, 2*mmu.Size4K, mmu.Size4K, mmu.PermRW, 0))
	tests := []struct {
		name               string
		va, pa, size, page uint64
		errno              syscall.Errno
	}{
		{"overlap", va + mmu.Size4K, 0, mmu.Size4K, mmu.Size4K, syscall.EEXIST},
		{"unaligned va", va + 1, 0, mmu.Size4K, mmu.Size4K, syscall.EINVAL},
		{"unaligned 2M pa", 0xffffc90000200000, mmu.Size4K, mmu.Size2M, mmu.Size2M, syscall.EINVAL},
		{"bad page size", va + 0x10000, 0, 8192, 8192, syscall.EINVAL},
		{"zero size", va + 0x10000, 0, 0, mmu.Size4K, syscall.EINVAL},
		{"beyond RAM", va + 0x10000, 4 << 20, mmu.Size4K, mmu.Size4K, syscall.EINVAL},
		{"non-canonical", 0x0000800000000000, 0, mmu.Size4K, mmu.Size4K, syscall.EINVAL},
		{"crosses the hole", 0x00007ffffffff000, 0, 2 * mmu.Size4K, mmu.Size4K, syscall.EINVAL},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.ErrorIs(t, pt.Map(tt.va, tt.pa, tt.size, tt.page, mmu.PermRW, 0), tt.errno)
		})
	}
	assert.ErrorIs(t, pt.Unmap(va, 3*mmu.Size4K), syscall.ENOENT, "a hole in the range")
	assert.ErrorIs(t, pt.Protect(va+2*mmu.Size4K, mmu.Size4K, mmu.PermRO), syscall.ENOENT)
	assert.Len(t, pt.Leaves(va, 3*mmu.Size4K), 2, "failed calls changed nothing")
}

func TestSplitLargePages(t *testing.T) {
	pt, frames, mirror := newTables(t, 1<<30+8<<20) // enough for a 1G page
	const va = 0xffff888000000000
	require.NoError(t, pt.Map(va, 0, mmu.Size1G, mmu.Size1G, mmu.PermRW, mmu.AttrGlobal))
	base := frames.Stats().Used
	assert.Equal(t, 1, pt.Stats().Mappings.Size1G)

	// Write-protect one 4K page in the middle: 1G -> 512 x 2M, then one 2M -> 512 x 4K.
	target := uint64(va + 3*mmu.Size2M + 5*mmu.Size4K)
	require.NoError(t, pt.Protect(target, mmu.Size4K, mmu.PermRO))
	s := pt.Stats()
	assert.Equal(t, 1, s.Split1G)
	assert.Equal(t, 1, s.Split2M)
	assert.Equal(t, 0, s.Mappings.Size1G)
	assert.Equal(t, 511, s.Mappings.Size2M)
	assert.Equal(t, 512, s.Mappings.Size4K)
	assert.Equal(t, base+2, frames.Stats().Used, "one PMD table and one page table")

	for _, c := range []struct {
		va   uint64
		perm mmu.Perm
		size uint64
	}{
		{target, mmu.PermRO, mmu.Size4K},
		{target - mmu.Size4K, mmu.PermRW, mmu.Size4K},
		{target + mmu.Size4K, mmu.PermRW, mmu.Size4K},
		{va, mmu.PermRW, mmu.Size2M},
		{va + mmu.Size1G - 1, mmu.PermRW, mmu.Size2M},
	} {
		w := pt.Walk(c.va, mmu.Access{})
		require.Equal(t, mmu.FaultNone, w.Fault)
		assert.Equal(t, c.perm, w.Perm, "%#x", c.va)
		assert.Equal(t, c.size, w.PageSize, "%#x", c.va)
		assert.Equal(t, c.va-va, w.PA, "the split kept the translation")
		assert.True(t, w.Global)
	}
	assert.Equal(t, mmu.PermRO, mirror.Pages[target].Perm, "the mirror follows Protect")

	// Unmapping the split 2M range frees its page table; unmapping everything frees all tables but the root.
	require.NoError(t, pt.Unmap(va+3*mmu.Size2M, mmu.Size2M))
	assert.Equal(t, base+1, frames.Stats().Used)
	require.NoError(t, pt.Unmap(va, 3*mmu.Size2M))
	require.NoError(t, pt.Unmap(va+4*mmu.Size2M, mmu.Size1G-4*mmu.Size2M))
	assert.Equal(t, 1, pt.Stats().Tables)
	assert.Equal(t, uint64(1), frames.Stats().Used, "only the PGD is left")
	assert.Empty(t, mirror.Pages)
}

// model is the reference: page -> translation, as simple as it gets.
type model map[uint64]struct {
	pa   uint64
	perm mmu.Perm
}

// TestRandomAgainstModel runs random Map/Unmap/Protect sequences of 4K and 2M pages in a 16 MiB window and
// checks, after each step, that the tables, the walker and the mirror agree with the reference model.
func TestRandomAgainstModel(t *testing.T) {
	const (
		window = 0xffffc90000000000
		span   = 16 << 20
		ram    = 64 << 20
	)
	for seed := range uint64(8) {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 1))
			pt, frames, mirror := newTables(t, ram)
			ref := model{}
			perms := []mmu.Perm{mmu.PermRO, mmu.PermRW, mmu.PermRX}
			for step := range 300 {
				page := mmu.Size4K
				if rng.IntN(4) == 0 {
					page = mmu.Size2M
				}
				n := uint64(1 + rng.IntN(4))
				va := window + uint64(rng.IntN(int(span/page)-int(n)))*page
				size := n * page
				perm := perms[rng.IntN(len(perms))]
				allMapped, noneMapped := true, true
				for off := uint64(0); off < size; off += mmu.Size4K {
					_, ok := ref[va+off]
					allMapped = allMapped && ok
					noneMapped = noneMapped && !ok
				}
				switch op := rng.IntN(3); op {
				case 0:
					pa := uint64(rng.IntN(int(ram/page)-int(n))) * page
					err := pt.Map(va, pa, size, page, perm, 0)
					if !noneMapped {
						require.ErrorIs(t, err, syscall.EEXIST, "step %d", step)
						break
					}
					require.NoError(t, err, "step %d", step)
					for off := uint64(0); off < size; off += mmu.Size4K {
						ref[va+off] = struct {
							pa   uint64
							perm mmu.Perm
						}{pa + off, perm}
					}
				case 1, 2:
					if page == mmu.Size2M { // sub-ranges of large pages: shift and shrink by whole 4K pages
						va += uint64(rng.IntN(8)) * mmu.Size4K
						size -= uint64(rng.IntN(8)) * mmu.Size4K
					}
					allMapped = true
					for off := uint64(0); off < size; off += mmu.Size4K {
						_, ok := ref[va+off]
						allMapped = allMapped && ok
					}
					var err error
					if op == 1 {
						err = pt.Unmap(va, size)
					} else {
						err = pt.Protect(va, size, perm)
					}
					if !allMapped {
						require.ErrorIs(t, err, syscall.ENOENT, "step %d", step)
						break
					}
					require.NoError(t, err, "step %d", step)
					for off := uint64(0); off < size; off += mmu.Size4K {
						if op == 1 {
							delete(ref, va+off)
						} else {
							e := ref[va+off]
							e.perm = perm
							ref[va+off] = e
						}
					}
				}
				checkModel(t, pt, mirror, ref, window, span)
			}
			// Tear down: every table but the root comes back.
			for va := range ref {
				require.NoError(t, pt.Unmap(va, mmu.Size4K))
			}
			assert.Equal(t, uint64(1), frames.Stats().Used)
		})
	}
}

// checkModel compares the tables (through Leaves), the walker and the mirror with the reference model. It
// compares with plain operators and reports once, because it runs thousands of times.
func checkModel(t *testing.T, pt *mmu.PageTables, mirror *mmutest.Mirror, ref model, window, span uint64) {
	t.Helper()
	var pages int
	for _, l := range pt.Leaves(window, span) {
		for off := uint64(0); off < l.Size; off += mmu.Size4K {
			want, ok := ref[l.VA+off]
			if !ok || want.pa != l.PA+off || want.perm != l.Perm {
				t.Fatalf("tables map %#x -> %#x %v; model: %#x %v (present %v)", l.VA+off, l.PA+off, l.Perm, want.pa, want.perm, ok)
			}
			pages++
		}
	}
	if pages != len(ref) || len(mirror.Pages) != len(ref) {
		t.Fatalf("pages: tables %d, mirror %d, model %d", pages, len(mirror.Pages), len(ref))
	}
	for va, want := range ref {
		got, ok := mirror.Pages[va]
		if !ok || got.Perm != want.perm || got.Host != pt.Mem().HostPtr(want.pa) {
			t.Fatalf("mirror %#x: %+v (present %v); model %#x %v", va, got, ok, want.pa, want.perm)
		}
		w := pt.Walk(va+0x10, mmu.Access{})
		if w.Fault != mmu.FaultNone || w.PA != want.pa+0x10 || w.Perm != want.perm {
			t.Fatalf("walk %#x: fault %d pa %#x perm %v; model %#x %v", va, w.Fault, w.PA, w.Perm, want.pa, want.perm)
		}
	}
}

func BenchmarkWalk(b *testing.B) {
	for _, bc := range []struct {
		name string
		page uint64
	}{{"4K", mmu.Size4K}, {"2M", mmu.Size2M}, {"1G", mmu.Size1G}} {
		b.Run(bc.name, func(b *testing.B) {
			pt, _, _ := newTables(b, 1<<30+8<<20)
			const va = 0xffff888000000000
			require.NoError(b, pt.Map(va, 0, mmu.Size1G, bc.page, mmu.PermRW, 0))
			b.ReportAllocs()
			var sink uint64
			for i := 0; b.Loop(); i++ {
				w := pt.Walk(va+uint64(i*4096)%mmu.Size1G, mmu.Access{})
				sink += w.PA
			}
			_ = sink
		})
	}
}

// TestCorruptedTablesNeverPanic lets "module code" scribble over page-table frames (they are ordinary RAM,
// reachable through the direct map), then keeps using the tables. Every operation must return, with an error
// where it cannot make sense of them; a panic fails the test.
func TestCorruptedTablesNeverPanic(t *testing.T) {
	const window = 0xffffc90000000000
	for seed := range uint64(20) {
		rng := rand.New(rand.NewPCG(seed, 2))
		pt, _, _ := newTables(t, 8<<20)
		for i := range 16 {
			page := mmu.Size4K
			if i%4 == 0 {
				page = mmu.Size2M
			}
			_ = pt.Map(window+uint64(rng.IntN(64))*mmu.Size2M, uint64(rng.IntN(3))*mmu.Size2M, page, page, mmu.PermRW, 0)
		}
		var tables []uint64
		for _, va := range []uint64{window, window + 17*mmu.Size2M} {
			w := pt.Walk(va, mmu.Access{})
			for _, s := range w.Steps[:w.NSteps] {
				tables = append(tables, s.EntryAddr&^(mmu.PageSize-1))
			}
		}
		for range 32 {
			at := tables[rng.IntN(len(tables))] + uint64(rng.IntN(512))*8
			require.NoError(t, pt.Mem().WriteU64(at, rng.Uint64()&^(1<<63>>uint(rng.IntN(64)))))
		}
		for range 200 {
			va := window + uint64(rng.IntN(64*512))*mmu.Size4K
			size := uint64(1+rng.IntN(600)) * mmu.Size4K
			switch rng.IntN(6) {
			case 0:
				_ = pt.Map(va, uint64(rng.IntN(1024))*mmu.Size4K, mmu.Size4K, mmu.Size4K, mmu.PermRX, 0)
			case 1:
				_ = pt.Unmap(va, size)
			case 2:
				_ = pt.Protect(va, size, mmu.PermRO)
			case 3:
				_ = pt.Leaves(va, size)
			case 4:
				_ = pt.DumpEntries(va)
			default:
				w := pt.Walk(va, mmu.Access{Kind: mmu.AccessFetch})
				_ = w.Err()
			}
		}
	}
}
