package machine

import (
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestIDR(t *testing.T) {
	m, a := bootArena(t)
	idr := a.object("idr", 1)
	steps := []struct {
		name string
		h    Handler
		args []uint64
		want uint64
	}{
		{"first id from start", hIdrAlloc, []uint64{idr, 0xa0, 1, 0}, 1},
		{"next lowest", hIdrAlloc, []uint64{idr, 0xa1, 1, 0}, 2},
		{"bounded range full", hIdrAlloc, []uint64{idr, 0xa2, 1, 3}, negErrno(syscall.ENOSPC)},
		{"negative start", hIdrAlloc, []uint64{idr, 0xa2, uint64(0xffffffff), 0}, negErrno(syscall.EINVAL)},
		{"find", hIdrFind, []uint64{idr, 2}, 0xa1},
		{"remove returns the pointer", hIdrRemove, []uint64{idr, 1}, 0xa0},
		{"find removed", hIdrFind, []uint64{idr, 1}, 0},
		{"freed id is reused", hIdrAlloc, []uint64{idr, 0xa3, 1, 0}, 1},
		{"replace", hIdrReplace, []uint64{idr, 0xb3, 1}, 0xa3},
		{"replace missing", hIdrReplace, []uint64{idr, 0xb4, 9}, negErrno(syscall.ENOENT)},
	}
	for _, s := range steps {
		assert.Equal(t, s.want, call(t, m, s.h, s.args...), s.name)
	}
	next := a.alloc(4)
	require.NoError(t, m.WriteU32(next, 2))
	assert.Equal(t, uint64(0xa1), call(t, m, hIdrGetNext, idr, next))
	got, err := m.ReadU32(next)
	require.NoError(t, err)
	assert.Equal(t, uint32(2), got)
	call(t, m, hIdrDestroy, idr)
	assert.Equal(t, uint64(0), call(t, m, hIdrFind, idr, 2), "destroyed")

	ida := a.object("ida", 1)
	assert.Equal(t, uint64(5), call(t, m, hIdaAllocRange, ida, 5, 6, 0))
	assert.Equal(t, uint64(6), call(t, m, hIdaAllocRange, ida, 5, 6, 0))
	assert.Equal(t, negErrno(syscall.ENOSPC), call(t, m, hIdaAllocRange, ida, 5, 6, 0))
	call(t, m, hIdaFree, ida, 5)
	assert.Equal(t, uint64(5), call(t, m, hIdaAllocRange, ida, 5, 6, 0))
	call(t, m, hIdaFree, ida, 9)
	assert.Contains(t, m.Dmesg(), "ida_free called for id=9 which is not allocated.")
}

func TestStrsep(t *testing.T) {
	m, a := bootArena(t)
	str := a.str("a,b;c")
	cursor := a.alloc(8)
	require.NoError(t, m.WriteU64(cursor, str))
	var tokens []string
	for range 5 {
		tok := call(t, m, hStrsep, cursor, a.str(",;"))
		if tok == 0 {
			break
		}
		s, err := m.ReadCString(tok, 16)
		require.NoError(t, err)
		tokens = append(tokens, s)
	}
	assert.Equal(t, []string{"a", "b", "c"}, tokens, "then *s is NULL and strsep returns NULL")
}

func TestDmiMatch(t *testing.T) {
	m, a := bootArena(t)
	e, err := m.prof.Enum("dmi_field")
	require.NoError(t, err)
	slot := func(name string) byte {
		v, ok := e.Value(name)
		require.True(t, ok, name)
		return byte(v)
	}
	size, _ := m.structSize("dmi_system_id")
	matchesOff, ok := m.fieldOffset("dmi_system_id", "matches")
	require.True(t, ok)
	matchSize, _ := m.structSize("dmi_strmatch")
	table := a.object("dmi_system_id", 4)
	set := func(entry, i int, slotByte byte, s string) {
		p := table + uint64(entry)*size + matchesOff + uint64(i)*matchSize
		require.NoError(t, m.WriteAt(append([]byte{slotByte}, append([]byte(s), 0)...), p))
	}
	set(0, 0, slot("DMI_SYS_VENDOR"), "LENOVO")                                   // another machine
	set(1, 0, slot("DMI_SYS_VENDOR"), "QEM")                                      // substring of QEMU
	set(1, 1, slot("DMI_PRODUCT_NAME")|0x80, "Standard PC (i440FX + PIIX, 1996)") // exact
	set(2, 0, slot("DMI_PRODUCT_NAME")|0x80, "Standard PC")                       // exact, so no match
	assert.Equal(t, uint64(1), call(t, m, hDmiMatch(false), table))
	assert.Equal(t, table+size, call(t, m, hDmiMatch(true), table))
}

func TestNotifierAndSysctlRecords(t *testing.T) {
	m, a := bootArena(t)
	chain := a.object("blocking_notifier_head", 1)
	nb := a.object("notifier_block", 1)
	register, unregister := hNotifierRegister(1), hNotifierUnregister(1)
	assert.Equal(t, uint64(0), call(t, m, register, chain, nb))
	assert.Equal(t, negErrno(syscall.EEXIST), call(t, m, register, chain, nb))
	assert.Equal(t, uint64(0), call(t, m, unregister, chain, nb))
	assert.Equal(t, negErrno(syscall.ENOENT), call(t, m, unregister, chain, nb))

	table := a.object("ctl_table", 2)
	a.set("ctl_table", "procname", table, 0, 8, a.str("max_links"))
	h := call(t, m, hRegisterSysctl(true), a.str("fs/kemu"), table)
	require.NotZero(t, h)
	regs := kinds(m.Registrations(), "sysctl")
	require.Len(t, regs, 1)
	assert.Equal(t, "/proc/sys/fs/kemu/max_links", regs[0].Name)
	call(t, m, hUnregisterSysctl, h)
	assert.Empty(t, kinds(m.Registrations(), "sysctl"))
}

func TestTtyDriver(t *testing.T) {
	m, a := bootArena(t)
	live := m.slab.Totals().Live
	assert.Equal(t, negErrno(syscall.EINVAL), call(t, m, hTtyAllocDriver, 0, 0, 0), "no lines")
	assert.Equal(t, negErrno(syscall.EINVAL), call(t, m, hTtyAllocDriver, 2, 0, ttyDriverUnnumberedNode))
	drv := call(t, m, hTtyAllocDriver, 4, 0, 0)
	require.False(t, isErrPtr(drv))
	num, err := m.readField("tty_driver", "num", drv, 4)
	require.NoError(t, err)
	assert.Equal(t, uint64(4), num)
	a.set("tty_driver", "name", drv, 0, 8, a.str("ttyACM"))
	require.Equal(t, uint64(0), call(t, m, hTtyRegisterDriver, drv))
	major, err := m.readField("tty_driver", "major", drv, 4)
	require.NoError(t, err)
	assert.NotZero(t, major, "a dynamic major is written back")
	require.Len(t, kinds(m.Registrations(), "tty"), 1)
	call(t, m, hTtyUnregisterDriver, drv)
	call(t, m, hTtyDriverPut, drv)
	assert.Empty(t, kinds(m.Registrations(), "tty"))
	assert.Equal(t, live+1, m.slab.Totals().Live, "the driver and its arrays are freed (the name string stays)")
}

func TestMempool(t *testing.T) {
	m, _ := bootArena(t)
	kmallocFn, ok := m.prof.Lookup("mempool_kmalloc")
	require.True(t, ok)
	kfreeFn, ok := m.prof.Lookup("mempool_kfree")
	require.True(t, ok)
	live := m.slab.Totals().Live

	pool := call(t, m, hMempoolCreate, 2, kmallocFn.Addr, kfreeFn.Addr, 64)
	require.NotZero(t, pool)
	assert.Equal(t, live+3, m.slab.Totals().Live, "the pool and its two reserved elements")
	curr, err := m.readField("mempool_s", "curr_nr", pool, 4)
	require.NoError(t, err)
	assert.Equal(t, uint64(2), curr)

	e := call(t, m, hMempoolAlloc, pool, 0)
	require.NotZero(t, e)
	call(t, m, hMempoolFree, e, pool)
	assert.Equal(t, live+3, m.slab.Totals().Live, "a full reserve sends the element back to kfree")
	call(t, m, hMempoolDestroy, pool)
	assert.Equal(t, live, m.slab.Totals().Live, "the reserve and the pool are freed")
}

func TestX86MatchCPU(t *testing.T) {
	m, a := bootArena(t)
	size, _ := m.structSize("x86_cpu_id")
	c := m.CPUInfo()
	require.True(t, c.Features.Has(featXMM4_2), "the machine's CPU has SSE4.2")
	require.False(t, c.Features.Has(featAVX), "and no AVX")
	for _, tc := range []struct {
		name                  string
		vendor, family, model uint64
		steppings, feature    uint64
		match                 bool
	}{
		{"any vendor with SSE4.2", 0xffff, 0, 0, 0, uint64(featXMM4_2), true},
		{"any vendor with AVX", 0xffff, 0, 0, 0, uint64(featAVX), false},
		{"Intel family 6 model 94", vendorIntel, 6, 94, 0, 0, true},
		{"Intel family 6 model 85", vendorIntel, 6, 85, 0, 0, false},
		{"AMD", vendorAMD, 0, 0, 0, 0, false},
		{"stepping 3 in the mask", 0xffff, 6, 0, 1 << 3, 0, true},
		{"stepping 3 not in the mask", 0xffff, 6, 0, 1 << 4, 0, false},
		{"a bug bit", 0xffff, 0, 0, 0, uint64(bugSpectreV2), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			table := a.object("x86_cpu_id", 3) // the entry, a wildcard fallback, the terminator
			for f, v := range map[string]uint64{"vendor": tc.vendor, "family": tc.family, "model": tc.model,
				"steppings": tc.steppings, "feature": tc.feature} {
				a.set("x86_cpu_id", f, table, 0, 2, v)
			}
			a.set("x86_cpu_id", "vendor", table, 1, 2, 0xffff)
			want := table + size
			if tc.match {
				want = table
			}
			assert.Equal(t, want, call(t, m, hX86MatchCPU, table))
		})
	}
}
