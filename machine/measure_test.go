package machine

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"kemu/mmu"
	"kemu/tlb"
)

// Hand-assembled code on the test profile: the exact accesses of a few instructions.
func TestMeasureCountsEveryAccess(t *testing.T) {
	cases := []struct {
		name                   string
		code                   []byte
		arg                    func(tm testModule) uint64
		fetches, reads, writes uint64
		insns                  uint64
		dataPages              uint64 // distinct pages the data accesses touch: cold dTLB misses
	}{
		// mov rax, [rdi]; ret. The ret reads the return address; the return into the kernel is a
		// fetch of its page.
		{name: "aligned load", code: []byte{0x48, 0x8b, 0x07, 0xc3},
			arg:     func(tm testModule) uint64 { return tm.data + 8 },
			fetches: 2, reads: 2, insns: 2, dataPages: 2},
		{name: "load across a page boundary counts both pages", code: []byte{0x48, 0x8b, 0x07, 0xc3},
			arg:     func(tm testModule) uint64 { return tm.data - 4 },
			fetches: 2, reads: 3, insns: 2, dataPages: 3},
		// mov [rdi], rdi; ret
		{name: "store", code: []byte{0x48, 0x89, 0x3f, 0xc3},
			arg:     func(tm testModule) uint64 { return tm.data + 8 },
			fetches: 2, reads: 1, writes: 1, insns: 2, dataPages: 2},
		// mov rax, rsp; and rax, -4096; mov [rax-4], rax; ret: a store across the boundary between
		// two stack pages, the only adjacent writable pages here.
		{name: "store across a page boundary", code: []byte{0x48, 0x89, 0xe0, 0x48, 0x25, 0x00, 0xf0, 0xff, 0xff,
			0x48, 0x89, 0x40, 0xfc, 0xc3},
			arg:     func(tm testModule) uint64 { return 0 },
			fetches: 2, reads: 1, writes: 2, insns: 4, dataPages: 2},
		// mov eax, [rdi]; mov ax, [rdi+1]; ret: two loads across the boundary, 4 and 2 bytes
		{name: "narrower loads across a page boundary", code: []byte{0x8b, 0x07, 0x66, 0x8b, 0x47, 0x01, 0xc3},
			arg:     func(tm testModule) uint64 { return tm.data - 2 },
			fetches: 2, reads: 5, insns: 3, dataPages: 3},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m := newTestMachine(t, Options{})
			tm := newModule(t, m)
			fn := tm.load(t, m, "measured", tc.code, make([]byte, 16))
			ms, err := m.Measure(tlb.Skylake())
			require.NoError(t, err)
			_, err = m.Call(fn, tc.arg(tm))
			require.NoError(t, err)
			require.NoError(t, ms.Stop())
			require.NoError(t, ms.DecodeErr())

			total := ms.Results()[0].Total
			assert.Equal(t, tc.fetches, total.Counters.Accesses[tlb.Fetch], "fetches")
			assert.Equal(t, tc.reads, total.Counters.Accesses[tlb.Read], "reads")
			assert.Equal(t, tc.writes, total.Counters.Accesses[tlb.Write], "writes")
			assert.Equal(t, tc.insns, total.Instructions, "instructions")
			// A cold TLB misses once per page: the stack page, the data pages, the code page and
			// the kernel page the call returns to.
			assert.Equal(t, tc.dataPages, total.DTLBMisses(), "dTLB misses")
			assert.Equal(t, uint64(2), total.ITLBMisses(), "iTLB misses")
			assert.Zero(t, total.Counters.Faults)
		})
	}
}

func TestMeasureKernelCallsAndStop(t *testing.T) {
	m := newTestMachine(t, Options{})
	tm := newModule(t, m)
	a := tm.asm()
	a.movRDI(1)
	a.call(kMsleep)
	a.raw(0xc3)
	fn := tm.load(t, m, "sleeper", a.code, nil)

	ms, err := m.Measure(tlb.Skylake(), tlb.Zen2())
	require.NoError(t, err)
	_, err = m.Call(fn)
	require.NoError(t, err)
	require.NoError(t, ms.Stop())
	assert.Equal(t, uint64(1), ms.Traps())

	results := ms.Results()
	require.Len(t, results, 2)
	byName := map[string]TagResult{}
	for _, r := range results[0].Tags {
		byName[r.Name()] = r
	}
	require.Contains(t, byName, "vmlinux:msleep", "the trap fetches the callee's page")
	assert.Equal(t, uint64(1), byName["vmlinux:msleep"].Fetches())
	assert.Zero(t, byName["vmlinux:msleep"].Instructions, "the handler runs in Go")
	assert.Equal(t, results[0].Total.Counters.Accesses, results[1].Total.Counters.Accesses,
		"every model sees the same stream")

	// Stopped: nothing more is counted, and code runs without the hooks.
	before := ms.Results()[0].Total
	_, err = m.Call(fn)
	require.NoError(t, err)
	assert.Equal(t, before, ms.Results()[0].Total)

	// Started again: counting resumes; Reset zeroes it.
	require.NoError(t, ms.Start())
	_, err = m.Call(fn)
	require.NoError(t, err)
	require.NoError(t, ms.Stop())
	assert.Equal(t, 2*before.Counters.Accesses[tlb.Fetch], ms.Results()[0].Total.Counters.Accesses[tlb.Fetch])
	assert.Equal(t, uint64(2), ms.Traps())
	ms.Reset()
	assert.Zero(t, ms.Results()[0].Total.Counters.TotalAccesses())
	assert.Zero(t, ms.Traps())
}

func TestMeasureNeedsAModel(t *testing.T) {
	m := newTestMachine(t, Options{})
	_, err := m.Measure()
	assert.Error(t, err)
	bad := tlb.Skylake()
	bad.L1I = nil
	_, err = m.Measure(bad)
	assert.Error(t, err)
}

// loadHotChain loads hot9..hot0 and returns hot_bench's address.
func loadHotChain(t *testing.T, m *Machine) uint64 {
	t.Helper()
	for i := 9; i >= 0; i-- {
		name := fmt.Sprintf("hot%d", i)
		_, err := m.Insmod(fixture(t, name), "", name+".ko")
		require.NoError(t, err, m.Dmesg())
	}
	mod, ok := m.Registry().Find("hot0")
	require.True(t, ok)
	sym, ok := mod.Lookup("hot_bench")
	require.True(t, ok)
	return sym.Addr
}

// The hot chain on the embedded Debian profile, attributed per module and symbol. The expected
// counts come from the fixture's disassembly: hotN_mix_add runs 5 instructions, then 24 loop
// iterations of 6 (one table load each, a block each), then ret: 150 instructions, 25 blocks and
// 25 reads (24 table loads and the ret) per call, no writes (ftrace's call site is a NOP).
func TestMeasureHotChain(t *testing.T) {
	if testing.Short() {
		t.Skip("boots the embedded Debian profile and loads ten modules")
	}
	m := bootDefault(t, Options{})
	bench := loadHotChain(t, m)

	const iters = 10
	ms, err := m.Measure(tlb.Skylake())
	require.NoError(t, err)
	sum, err := m.Call(bench, 1)
	require.NoError(t, err)
	require.NoError(t, ms.Stop())
	assert.Equal(t, hotBench1(), sum, "hot_bench(1) with the hooks attached")

	require.NoError(t, ms.Start())
	ms.Reset()
	_, err = m.Call(bench, iters)
	require.NoError(t, err)
	require.NoError(t, ms.Stop())
	require.NoError(t, ms.DecodeErr())

	r := ms.Results()[0]
	rows := map[string]TagResult{}
	for _, row := range r.Tags {
		rows[row.Name()] = row
	}
	for i := 0; i < 10; i++ {
		name := fmt.Sprintf("hot%d:hot%d_mix_add", i, i)
		require.Contains(t, rows, name)
		row := rows[name]
		assert.Equal(t, uint64(150*iters), row.Instructions, name)
		assert.Equal(t, uint64(25*iters), row.Fetches(), name)
		assert.Equal(t, uint64(25*iters), row.Counters.Accesses[tlb.Read], name)
		assert.Zero(t, row.Counters.Accesses[tlb.Write], name)
	}
	assert.Zero(t, r.Traps, "the chain calls no kernel function")

	// Warm after hot_bench(1): 41 code pages (four per module, the return page) fit Skylake's
	// 128-entry iTLB, so a second run misses on none of them.
	assert.Zero(t, r.Total.ITLBMisses())

	modules := r.ByModule()
	require.Len(t, modules.Tags, 11, "ten modules and the kernel page the call returns to")
	var merged uint64
	for _, row := range modules.Tags {
		merged += row.Counters.TotalAccesses()
		if row.Module == "hot3" {
			assert.Equal(t, uint64((150+223+175+8)*iters), row.Instructions, "the three mixing functions and hot3_step")
		}
	}
	assert.Equal(t, r.Total.Counters.TotalAccesses(), merged)

	var text bytes.Buffer
	require.NoError(t, r.WriteText(&text))
	assert.Contains(t, text.String(), "hot0:hot_bench")
	assert.Contains(t, text.String(), "walks by page size: 4K")
}

// Cold, the iTLB misses exactly once per code page the chain runs: module code is in 4K vmalloc
// pages, one per mixing function and one for the rest of each module's text.
func TestMeasureHotChainColdCodePages(t *testing.T) {
	if testing.Short() {
		t.Skip("boots the embedded Debian profile and loads ten modules")
	}
	m := bootDefault(t, Options{})
	bench := loadHotChain(t, m)
	pages := map[uint64]bool{pageDown(m.returnSite()): true}
	for i := 0; i < 10; i++ {
		mod, ok := m.Registry().Find(fmt.Sprintf("hot%d", i))
		require.True(t, ok)
		for _, fn := range []string{"_mix_add", "_mix_xor", "_mix_rot", "_step"} {
			sym, ok := mod.Lookup(fmt.Sprintf("hot%d%s", i, fn))
			require.True(t, ok)
			pages[pageDown(sym.Addr)] = true
		}
	}
	require.Len(t, pages, 41)

	ms, err := m.Measure(tlb.Skylake())
	require.NoError(t, err)
	_, err = m.Call(bench, 3)
	require.NoError(t, err)
	require.NoError(t, ms.Stop())
	total := ms.Results()[0].Total
	assert.Equal(t, uint64(len(pages)), total.ITLBMisses())
	assert.GreaterOrEqual(t, total.STLBMisses(), uint64(len(pages)), "a cold STLB walks for every code page")
}

// Page-table changes while measuring reach the models when and as x86 6.1 flushes them: invlpg for a
// few pages, a full flush for a large range, and vfree's flush only at the purge.
func TestMeasureSeesShootdowns(t *testing.T) {
	m := newTestMachine(t, Options{})
	tm := newModule(t, m)
	fn := tm.load(t, m, "reader", []byte{0x48, 0x8b, 0x07, 0xc3}, make([]byte, 16)) // mov rax, [rdi]; ret
	ms, err := m.Measure(tlb.Skylake())
	require.NoError(t, err)
	misses := func() (itlb, dtlb uint64) {
		_, err := m.Call(fn, tm.data)
		require.NoError(t, err)
		total := ms.Results()[0].Total
		return total.ITLBMisses(), total.DTLBMisses()
	}
	i0, d0 := misses()
	i1, d1 := misses()
	require.Equal(t, [2]uint64{i0, d0}, [2]uint64{i1, d1}, "a warm second call misses nothing")

	// One page made read-only: invlpg of that page, whose next read misses once.
	require.NoError(t, m.protect(tm.data, pageSize, PermRead))
	i2, d2 := misses()
	assert.Equal(t, i1, i2, "code pages stay cached")
	assert.Equal(t, d1+1, d2, "the data page misses once")
	assert.Equal(t, Shootdowns{PageFlushes: 1}, ms.Shootdowns())

	// vfree of 40 pages flushes nothing yet: the flush waits for the purge of the lazily freed areas,
	// which spans more than the 33-page ceiling, so everything goes, global entries too.
	area, err := m.vmalloc.Vzalloc(40*pageSize, mmu.Caller{Label: "test"})
	require.NoError(t, err)
	require.NoError(t, m.vmalloc.Vfree(area))
	assert.Equal(t, Shootdowns{PageFlushes: 1}, ms.Shootdowns(), "vfree flushes lazily")
	m.vmalloc.Purge()
	assert.Equal(t, uint64(1), ms.Shootdowns().FullFlushes)
	i3, d3 := misses()
	assert.Equal(t, i2+2, i3, "module text and the kernel page it returns to miss again")
	assert.Equal(t, d2+2, d3, "the data and stack pages miss again")

	var text bytes.Buffer
	res := ms.Results()[0]
	require.NoError(t, res.WriteText(&text))
	assert.Contains(t, text.String(), "TLB shootdowns from page-table changes: full flushes 1, single-page invalidations 1")

	// Stopped, the measurement sees no more.
	require.NoError(t, ms.Stop())
	require.NoError(t, m.protect(tm.data, pageSize, PermRead|PermWrite))
	assert.Equal(t, Shootdowns{FullFlushes: 1, PageFlushes: 1}, ms.Shootdowns())
}
