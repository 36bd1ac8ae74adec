package machine

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"kemu/loader"
	"kemu/mmu"
	"kemu/placement"
)

// Every fixture that runs its init and cleanup to the end, under every placement strategy: the modules load,
// run and unload, each range of their memory has exactly its rights, and each strategy's placement shows in the
// page tables (hugepack: text in 2M pages; kmalloc: the high alias, large pages split where rights change).

// hotBench1Want is hot_bench(1) over hot0..hot9 as the fixture README gives it.
const hotBench1Want = 0x4f2bec03fb37b343

// strategyLoads are the fixtures in load order (the hot chain's dependencies first), with their parameters.
var strategyLoads = []struct {
	name, params string
	errno        syscall.Errno // init's failure, 0 for success
}{
	{name: "hello"}, {name: "chardev"}, {name: "producer"}, {name: "consumer"}, {name: "compute"},
	{name: "timers"}, {name: "procfs"},
	{name: "fault_bug", params: "fault_bug_state=0"},
	{name: "fault_loop", params: "fault_loop_ready=1"},
	{name: "fault_recursion", params: "fault_recursion_limit=10"},
	{name: "fault_enodev", errno: syscall.ENODEV},
	{name: "hot9"}, {name: "hot8"}, {name: "hot7"}, {name: "hot6"}, {name: "hot5"},
	{name: "hot4"}, {name: "hot3"}, {name: "hot2"}, {name: "hot1"}, {name: "hot0"},
}

func TestStrategiesRunEveryFixture(t *testing.T) {
	if testing.Short() {
		t.Skip("boots the embedded Debian profile per strategy and loads every fixture")
	}
	require.Equal(t, uint64(hotBench1Want), hotBench1(), "the Go model of hot_bench agrees with the README")
	strategies := []struct {
		name  string
		check func(t *testing.T, m *Machine, mods []*loader.Module)
	}{
		{"vmalloc", checkVmallocPlacement},
		{"kmalloc", checkKmallocPlacement},
		{"hugepack", checkHugepackPlacement},
	}
	for _, s := range strategies {
		t.Run(s.name, func(t *testing.T) {
			m := bootDefault(t, Options{Strict: true, Strategy: s.name})
			require.Equal(t, s.name, m.Placement().Name())
			var mods []*loader.Module
			for _, l := range strategyLoads {
				mod, err := m.Insmod(fixture(t, l.name), l.params, l.name+".ko")
				if l.errno != 0 {
					assert.Equal(t, l.errno, loader.Errno(err), m.Dmesg())
					continue
				}
				require.NoError(t, err, m.Dmesg())
				require.Equal(t, loader.Live, mod.State)
				mods = append(mods, mod)
			}
			_, err := m.Idle(1e9) // the timers fixture's timer and work run
			require.NoError(t, err)
			assert.Contains(t, m.Messages(), fmt.Sprintf("hot0: hot_bench(1) = %#x", uint64(hotBench1Want)), m.Dmesg())

			hot0, ok := m.Registry().Find("hot0")
			require.True(t, ok)
			bench, ok := hot0.Lookup("hot_bench")
			require.True(t, ok)
			sum, err := m.Call(bench.Addr, 1)
			require.NoError(t, err)
			assert.Equal(t, uint64(hotBench1Want), sum, "hot_bench(1) called again after every init")

			for _, mod := range mods {
				checkRangeRights(t, m, mod)
			}
			st := m.Placement().Stats()
			t.Logf("%s, %d modules: %+v", s.name, len(mods), st)
			assert.Equal(t, len(mods), st.Regions, "one core region per live module: init regions are freed")
			s.check(t, m, mods)

			for i := len(mods) - 1; i >= 0; i-- {
				require.NoError(t, m.Rmmod(mods[i].Name, false), m.Dmesg())
			}
			assert.Empty(t, m.Registry().Modules())
			assert.Zero(t, m.oopses, m.Dmesg())
			st = m.Placement().Stats()
			assert.Zero(t, st.Regions)
			assert.Zero(t, st.Used, "every placed byte given back")

			// The freed memory (for hugepack, the same pack addresses) serves the next module, whose code
			// must run, not the stale translations of the last one's.
			before := len(m.Messages())
			_, err = m.Insmod(fixture(t, "compute"), "", "compute.ko")
			require.NoError(t, err, m.Dmesg())
			assert.Equal(t, []string{
				fmt.Sprintf("compute: compute_crc_loop(1) = 0x%08x", crcLoop(1)),
				fmt.Sprintf("compute: compute_crc_loop(10) = 0x%08x", crcLoop(10)),
			}, m.Messages()[before:])

			// An oops in module code names the function, wherever the strategy put its text.
			_, err = m.Insmod(fixture(t, "fault_null"), "", "fault_null.ko")
			assert.ErrorIs(t, err, ErrKilled)
			assert.Contains(t, m.Messages(), " do_one_initcall+0x41/0x220", m.Dmesg())
			assert.True(t, slices.ContainsFunc(m.Messages(), func(l string) bool {
				return strings.HasPrefix(l, "RIP: 0010:fault_null_init+")
			}), m.Dmesg())
		})
	}
}

// checkRangeRights walks every page of every core range of a live module and compares its rights with the
// loader's: text RX and never writable, everything else NX, ro_after_init read-only once init returned.
func checkRangeRights(t *testing.T, m *Machine, mod *loader.Module) {
	t.Helper()
	for _, rg := range mod.Core.Ranges {
		for off := uint64(0); off < rg.Size; off += mmu.PageSize {
			w := m.mem.Tables.Walk(rg.Addr+off, mmu.Access{})
			require.Equal(t, mmu.FaultNone, w.Fault, "%s %s+%#x", mod.Name, rg.Class, off)
			assert.Equal(t, rg.AfterInit, w.Perm, "%s %s+%#x at %#x", mod.Name, rg.Class, off, rg.Addr+off)
			if rg.Class == "text" {
				assert.Zero(t, w.Perm&mmu.Write, "%s text writable", mod.Name)
			} else {
				assert.Zero(t, w.Perm&mmu.Exec, "%s %s executable", mod.Name, rg.Class)
			}
		}
	}
}

// pageSizes counts the page sizes mapping each range of a class in the modules' core regions.
func pageSizes(m *Machine, mods []*loader.Module, text bool) map[uint64]int {
	sizes := map[uint64]int{}
	for _, mod := range mods {
		for _, rg := range mod.Core.Ranges {
			if (rg.Class == "text") == text {
				sizes[m.mem.Tables.Walk(rg.Addr, mmu.Access{}).PageSize]++
			}
		}
	}
	return sizes
}

// vmalloc: Linux's module_alloc, 4K pages in the module area.
func checkVmallocPlacement(t *testing.T, m *Machine, mods []*loader.Module) {
	for _, mod := range mods {
		assert.GreaterOrEqual(t, mod.Core.Addr, mmu.ModulesVaddr, mod.Name)
		assert.Len(t, mod.Core.Pieces, 1, "one contiguous region")
	}
	st := m.Placement().Stats()
	assert.Zero(t, st.Pages2M)
	assert.Positive(t, st.Pages4K)
}

// kmalloc: chunks of the high alias StartKernelMap+pa, within 2 GiB of kernel text, one class of rights per
// 2M page shared by the modules; sealing ro_after_init splits a data chunk's page, which the stats count.
func checkKmallocPlacement(t *testing.T, m *Machine, mods []*loader.Module) {
	for _, mod := range mods {
		for _, pc := range mod.Core.Pieces {
			pa, err := m.mem.Tables.Translate(pc.Addr, mmu.Access{})
			require.NoError(t, err)
			assert.Equal(t, mmu.StartKernelMap+pa, pc.Addr, "%s in the high alias", mod.Name)
			assert.Less(t, pc.Addr+pc.Size, mmu.ModulesVaddr, mod.Name)
			assert.False(t, pc.Addr < m.image.end && pc.Addr+pc.Size > m.image.start, "%s clear of the kernel image", mod.Name)
		}
	}
	assert.Equal(t, map[uint64]int{mmu.Size2M: len(mods)}, pageSizes(m, mods, true), "text in 2M pages")
	st := m.Placement().Stats()
	assert.Positive(t, st.Pages2M)
	sealed := 0
	for _, mod := range mods {
		for _, rg := range mod.Core.Ranges {
			if rg.Class == "ro_after_init" {
				sealed++
			}
		}
	}
	assert.Equal(t, sealed > 0, st.DirectMapSplits > 0, "%d ro_after_init ranges sealed, %d splits", sealed, st.DirectMapSplits)
}

// hugepack: every module's text in shared 2M read-only-exec pages, the rest in 4K pages.
func checkHugepackPlacement(t *testing.T, m *Machine, mods []*loader.Module) {
	assert.Equal(t, map[uint64]int{mmu.Size2M: len(mods)}, pageSizes(m, mods, true), "text in 2M pages")
	rest := pageSizes(m, mods, false)
	assert.Equal(t, map[uint64]int{mmu.Size4K: rest[mmu.Size4K]}, rest, "rodata, ro_after_init, data in 4K pages")
	assert.GreaterOrEqual(t, rest[mmu.Size4K], len(mods))
	packs := map[uint64]bool{}
	for _, mod := range mods {
		packs[mod.Core.Addr&^(mmu.Size2M-1)] = true
		assert.GreaterOrEqual(t, len(mod.Core.Pieces), 2, "%s: text apart from the rest", mod.Name)
	}
	st := m.Placement().Stats()
	assert.Equal(t, len(packs), st.Pages2M, "one 2M leaf per pack")
	assert.Less(t, len(packs), len(mods), "modules share packs")
}

// The kmalloc idea as i386 had it: module memory addressed through the direct map. On x86-64 that is terabytes
// from kernel text, so -mcmodel=kernel relocations cannot reach and the load fails with ENOEXEC.
func TestKmallocDirectMapCannotReachTheKernel(t *testing.T) {
	m := bootDefault(t, Options{Strategy: "kmalloc-directmap"})
	_, err := m.Insmod(fixture(t, "hello"), "", "hello.ko")
	require.Error(t, err)
	assert.True(t, errors.Is(err, syscall.ENOEXEC), "%v", err)
	assert.Equal(t, "insmod: ERROR: could not insert module hello.ko: Invalid module format", loader.InsmodError("hello.ko", err))
	assert.Contains(t, err.Error(), "does not fit")
	assert.Empty(t, m.Registry().Modules())
	assert.Zero(t, m.Placement().Stats().Regions, "the failed load gave its memory back")
}

func TestUnknownStrategy(t *testing.T) {
	m, err := New(bootDefault(t, Options{}).Profile(), Options{Strategy: "slab"})
	assert.Nil(t, m)
	assert.ErrorIs(t, err, syscall.EINVAL)
	assert.True(t, strings.Contains(err.Error(), "hugepack"), "the error lists the strategies: %v", err)
}

func TestRangeKind(t *testing.T) {
	tests := []struct {
		class string
		want  placement.Kind
		err   error
	}{
		{"text", placement.Text, nil},
		{"rodata", placement.Rodata, nil},
		{"ro_after_init", placement.RoAfterInit, nil},
		{"data", placement.Data, nil},
		{"bss", 0, syscall.EINVAL},
		{"", 0, syscall.EINVAL},
	}
	for _, tt := range tests {
		t.Run(tt.class, func(t *testing.T) {
			got, err := rangeKind(tt.class)
			if tt.err != nil {
				assert.ErrorIs(t, err, tt.err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}
