package machine

import (
	"encoding/binary"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// retInt3x4 is what apply_returns leaves at a 5-byte `jmp __x86_return_thunk` (ret, then int3).
var retInt3x4 = []byte{0xc3, 0xcc, 0xcc, 0xcc, 0xcc}

// fakeText is module text at base for patcher tests.
type fakeText struct {
	base uint64
	b    []byte
}

func (f *fakeText) ReadAt(b []byte, addr uint64) error {
	if addr < f.base || addr-f.base+uint64(len(b)) > uint64(len(f.b)) {
		return fmt.Errorf("read %#x+%d outside the fake text", addr, len(b))
	}
	copy(b, f.b[addr-f.base:])
	return nil
}

func (f *fakeText) poke(addr uint64, b []byte) error {
	if addr < f.base || addr-f.base+uint64(len(b)) > uint64(len(f.b)) {
		return fmt.Errorf("poke %#x+%d outside the fake text", addr, len(b))
	}
	copy(f.b[addr-f.base:], b)
	return nil
}

func (f *fakeText) at(addr uint64, n int) []byte { return f.b[addr-f.base : addr-f.base+uint64(n)] }

const (
	textBase    = 0xffffffffc0000000
	thunkRAX    = 0xffffffff81e01580 // __x86_indirect_thunk_array: one 32-byte thunk per register
	returnThunk = 0xffffffff81e01d30
)

// newFakePatcher is a patcher over 8 KiB of int3 text with the given features.
func newFakePatcher(t *testing.T, features ...Feature) (*textPatcher, *fakeText) {
	mem := &fakeText{base: textBase, b: make([]byte, 8192)}
	for i := range mem.b {
		mem.b[i] = 0xcc
	}
	var fs FeatureSet
	for _, f := range features {
		fs.Set(f)
	}
	p := &textPatcher{mem: mem, features: &fs, thunks: map[uint64]int{}, returnThunk: returnThunk}
	for i := range retpolineRegs {
		p.thunks[thunkRAX+uint64(32*i)] = i
	}
	t.Cleanup(p.close)
	return p, mem
}

// rel32 encodes op (and any prefix bytes before it) branching from site to target.
func rel32(site, target uint64, op ...byte) []byte {
	b := append([]byte{}, op...)
	return binary.LittleEndian.AppendUint32(b, uint32(target-(site+uint64(len(op))+4)))
}

// siteTable is a .retpoline_sites/.return_sites table at addr listing sites.
func siteTable(addr uint64, sites ...uint64) []byte {
	var b []byte
	for i, s := range sites {
		b = binary.LittleEndian.AppendUint32(b, uint32(s-(addr+uint64(4*i))))
	}
	return b
}

// checkSitePatch puts insn at site, applies a one-entry site table and compares the site's bytes.
func checkSitePatch(t *testing.T, apply func(*textPatcher, []byte, uint64) error, site uint64, insn, want []byte, features ...Feature) {
	p, mem := newFakePatcher(t, features...)
	copy(mem.at(site, len(insn)), insn)
	table := uint64(textBase + 0x1000)
	require.NoError(t, apply(p, siteTable(table, site), table))
	assert.Equal(t, want, mem.at(site, len(want)))
}

func TestApplyRetpolines(t *testing.T) {
	site := uint64(textBase + 0x100)
	thunk := func(reg int) uint64 { return thunkRAX + uint64(32*reg) }
	for _, c := range []struct {
		name     string
		features []Feature
		insn     []byte
		want     []byte
	}{
		// call rel32 -> call *%rax, then three one-byte NOPs merged into NOP3.
		{"call rax", nil, rel32(site, thunk(0), 0xe8), []byte{0xff, 0xd0, 0x0f, 0x1f, 0x00}},
		// cs jmp rel32 (6 bytes) -> REX.B jmp *%r11, int3, then NOP2.
		{"cs jmp r11", nil, rel32(site, thunk(11), 0x2e, 0xe9), []byte{0x41, 0xff, 0xe3, 0xcc, 0x66, 0x90}},
		// je rel32 -> jne +4 over jmp *%rcx; int3; a lone NOP stays a NOP1.
		{"je rcx", nil, rel32(site, thunk(1), 0x0f, 0x84), []byte{0x75, 0x04, 0xff, 0xe1, 0xcc, 0x90}},
		{"lfence call rax", []Feature{featRetpoline, featRetpolineLfence}, rel32(site, thunk(0), 0xe8),
			[]byte{0x0f, 0xae, 0xe8, 0xff, 0xd0}},
		{"generic retpolines keep the thunk", []Feature{featRetpoline}, rel32(site, thunk(2), 0xe8),
			rel32(site, thunk(2), 0xe8)},
		{"not a thunk", nil, rel32(site, thunk(0)+8, 0xe8), rel32(site, thunk(0)+8, 0xe8)},
		{"rsp is never rewritten", nil, rel32(site, thunk(4), 0xe8), rel32(site, thunk(4), 0xe8)},
	} {
		t.Run(c.name, func(t *testing.T) {
			checkSitePatch(t, (*textPatcher).applyRetpolines, site, c.insn, c.want, c.features...)
		})
	}
}

func TestApplyReturns(t *testing.T) {
	site := uint64(textBase + 0x200)
	for _, c := range []struct {
		name     string
		features []Feature
		insn     []byte
		want     []byte
	}{
		{"jmp return thunk", nil, rel32(site, returnThunk, 0xe9), retInt3x4},
		{"RETHUNK keeps the thunk", []Feature{featRethunk}, rel32(site, returnThunk, 0xe9), rel32(site, returnThunk, 0xe9)},
		{"jmp elsewhere", nil, rel32(site, returnThunk+32, 0xe9), rel32(site, returnThunk+32, 0xe9)},
	} {
		t.Run(c.name, func(t *testing.T) {
			checkSitePatch(t, (*textPatcher).applyReturns, site, c.insn, c.want, c.features...)
		})
	}
}

// altEntry is one struct alt_instr at entry.
func altEntry(entry, instr, repl uint64, cpuid uint16, instrLen, replLen byte) []byte {
	b := binary.LittleEndian.AppendUint32(nil, uint32(instr-entry))
	b = binary.LittleEndian.AppendUint32(b, uint32(repl-(entry+4)))
	b = binary.LittleEndian.AppendUint16(b, cpuid)
	return append(b, instrLen, replLen)
}

func TestApplyAlternatives(t *testing.T) {
	const (
		site  = textBase + 0x300
		repl  = textBase + 0x800
		table = textBase + 0x1000
		smap  = Feature(9*32 + 20) // X86_FEATURE_SMAP
	)
	stac := []byte{0x0f, 0x01, 0xcb}
	for _, c := range []struct {
		name              string
		features          []Feature
		orig, replacement []byte
		cpuid             uint16
		want              []byte
	}{
		// The feature is there: the replacement, NOP-padded, the padding merged.
		{"stac over 5 NOPs", []Feature{smap}, []byte{0x90, 0x90, 0x90, 0x90, 0x90}, stac, uint16(smap),
			[]byte{0x0f, 0x01, 0xcb, 0x66, 0x90}},
		// The feature is missing: the site keeps its bytes, its NOPs merged all the same.
		{"no SMAP", nil, []byte{0x90, 0x90, 0x90}, stac, uint16(smap), []byte{0x0f, 0x1f, 0x00}},
		{"ALT_NOT and missing", nil, []byte{0x90, 0x90, 0x90}, stac, uint16(smap) | altNotBit, stac},
		{"ALT_NOT and present", []Feature{smap}, []byte{0x90, 0x90, 0x90}, stac, uint16(smap) | altNotBit,
			[]byte{0x0f, 0x1f, 0x00}},
		// A call in the replacement kept its target: rel32 from the site to 0x...3000.
		{"call re-aimed", []Feature{smap}, []byte{0x90, 0x90, 0x90, 0x90, 0x90},
			rel32(repl, textBase+0x3000, 0xe8), uint16(smap), rel32(site, textBase+0x3000, 0xe8)},
		// recompute_jump: a forward target 0x10 past the site fits a jmp rel8 (0x10-2), then NOP3.
		{"jmp shortened", []Feature{smap}, []byte{0x90, 0x90, 0x90, 0x90, 0x90},
			rel32(repl, site+0x10, 0xe9), uint16(smap), []byte{0xeb, 0x0e, 0x0f, 0x1f, 0x00}},
		// A backward target stays a 5-byte jmp (the kernel's backward test never passes).
		{"jmp backwards", []Feature{smap}, []byte{0x90, 0x90, 0x90, 0x90, 0x90},
			rel32(repl, site-0x10, 0xe9), uint16(smap), rel32(site, site-0x10, 0xe9)},
		{"replacement longer than the site", []Feature{smap}, []byte{0x90, 0x90}, stac, uint16(smap),
			[]byte{0x90, 0x90}},
	} {
		t.Run(c.name, func(t *testing.T) {
			p, mem := newFakePatcher(t, c.features...)
			copy(mem.at(site, len(c.orig)), c.orig)
			copy(mem.at(repl, len(c.replacement)), c.replacement)
			e := altEntry(table, site, repl, c.cpuid, byte(len(c.orig)), byte(len(c.replacement)))
			require.NoError(t, p.applyAlternatives(e, table))
			assert.Equal(t, c.want, mem.at(site, len(c.want)))
		})
	}
}

func TestOptimizeNOPs(t *testing.T) {
	p, _ := newFakePatcher(t)
	b := []byte{0x48, 0x89, 0xc7, 0x90, 0x90, 0x90, 0x90, 0x31, 0xc0, 0x90}
	p.optimizeNOPs(b, textBase)
	assert.Equal(t, []byte{0x48, 0x89, 0xc7, 0x0f, 0x1f, 0x40, 0x00, 0x31, 0xc0, 0x90}, b,
		"four NOPs after a mov become NOP4; a single NOP stays")
	long := make([]byte, 11)
	for i := range long {
		long[i] = 0x90
	}
	p.optimizeNOPs(long, textBase)
	assert.Equal(t, append(append([]byte{}, x86NOPs[8]...), x86NOPs[3]...), long, "NOP8 then NOP3")
}

// The fixture fault_usercopy inlines user_access_begin/unsafe_get_user/user_access_end: its
// .altinstructions put stac, lfence (barrier_nospec) and clac over 3-byte NOP runs and guard a
// LA57 movabs. On this CPU (SMAP, LFENCE_RDTSC, no LA57) the kernel writes, by hand:
func TestAlternativesOnFixture(t *testing.T) {
	m := bootDefault(t, Options{})
	mod, err := m.Insmod(fixture(t, "fault_usercopy"), "", "fault_usercopy.ko")
	require.NoError(t, err, m.Dmesg())
	var text uint64
	for _, s := range mod.Sections {
		if s.Name == ".text.unlikely" {
			text = s.Addr
		}
	}
	require.NotZero(t, text)
	for _, c := range []struct {
		off  uint64
		want []byte
		what string
	}{
		{0x00, nop5, "call __fentry__ (ftrace)"},
		{0x05, []byte{0x48, 0xb8, 0x00, 0xf0, 0xff, 0xff, 0xff, 0x7f, 0x00, 0x00}, "TASK_SIZE_MAX without LA57: unpatched"},
		{0x15, []byte{0x0f, 0x01, 0xcb}, "stac (SMAP)"},
		{0x18, []byte{0x0f, 0xae, 0xe8}, "lfence (LFENCE_RDTSC)"},
		{0x24, []byte{0x0f, 0x01, 0xca}, "clac (SMAP)"},
		{0x2e, []byte{0x0f, 0x01, 0xca}, "clac (SMAP) on the error path"},
	} {
		got, err := m.Read(text+c.off, uint64(len(c.want)))
		require.NoError(t, err)
		assert.Equal(t, c.want, got, "%s at .text.unlikely+%#x", c.what, c.off)
	}
	assert.Contains(t, m.Messages(), "fault_usercopy: unsafe_get_user from 0000000000000010: -14",
		"stac/clac run on the CPU and the fault is fixed up")
}

// Arbitrary tables and text never panic the patcher: entries pointing outside the text are
// errors or skipped, and every write stays inside the text.
func FuzzTextPatcher(f *testing.F) {
	f.Add(altEntry(textBase+0x1000, textBase+0x300, textBase+0x800, 9*32+20, 5, 3), []byte{0x90, 0x90, 0x90, 0x90, 0x90})
	f.Add(siteTable(textBase+0x1000, textBase+0x100), rel32(textBase+0x100, thunkRAX, 0x2e, 0xe8))
	f.Add([]byte{0xff, 0xff, 0xff, 0x7f, 0, 0, 0, 0x80, 0xff, 0xff, 0xff, 0xff}, []byte{0x0f, 0x0f, 0x0f})
	f.Fuzz(func(t *testing.T, table, code []byte) {
		p, mem := newFakePatcher(t, featRetpolineLfence, Feature(9*32+20))
		copy(mem.b[0x100:0x1000], code)
		copy(mem.b[0x800:0x1000], code)
		at := uint64(textBase + 0x1000)
		copy(mem.b[0x1000:], table)
		_ = p.applyRetpolines(table, at)
		_ = p.applyReturns(table, at)
		_ = p.applyAlternatives(table, at)
		_ = p.applyFtraceNOPs(table, at)
		assert.Len(t, mem.b, 8192)
	})
}
