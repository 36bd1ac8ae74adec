package machine

import (
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Handlers called directly with guest memory set up by the test: each case writes its strings into
// a scratch page, calls the handler with arguments (strings replaced by their addresses) and checks
// the result and, where the handler writes, the bytes at the destination.

type strArg string // an argument that is a pointer to this NUL-terminated string

func TestStringHandlers(t *testing.T) {
	m := newTestMachine(t, Options{})
	scratch, err := m.slab.Kmalloc(pageSize, callerForTest, true)
	require.NoError(t, err)
	dst := scratch + 0x800
	cases := []struct {
		name    string
		h       Handler
		args    []any
		want    uint64
		wantDst string // expected bytes at dst, if the handler writes there
	}{
		{"strlen", hStrlen, []any{strArg("hello")}, 5, ""},
		{"strnlen bounded", hStrnlen, []any{strArg("hello"), uint64(3)}, 3, ""},
		{"strcmp equal", hStrcmp, []any{strArg("abc"), strArg("abc")}, 0, ""},
		{"strcmp less", hStrcmp, []any{strArg("abc"), strArg("abd")}, negErrno(1), ""},
		{"strscpy fits", hStrscpy, []any{dst, strArg("kemu"), uint64(16)}, 4, "kemu\x00"},
		{"strscpy truncates", hStrscpy, []any{dst, strArg("kernel"), uint64(4)}, negErrno(syscall.E2BIG), "ker\x00"},
		{"strlcpy", hStrlcpy, []any{dst, strArg("module"), uint64(4)}, 6, "mod\x00"},
		{"kstrtoint", hKstrto(32, true), []any{strArg("-42\n"), uint64(10), dst}, 0, "\xd6\xff\xff\xff"},
		{"kstrtouint hex auto", hKstrto(32, false), []any{strArg("0x10"), uint64(0), dst}, 0, "\x10\x00\x00\x00"},
		{"kstrtou8 range", hKstrto(8, false), []any{strArg("300"), uint64(10), dst}, negErrno(syscall.ERANGE), ""},
		{"kstrtoint junk", hKstrto(32, true), []any{strArg("12a"), uint64(10), dst}, negErrno(syscall.EINVAL), ""},
		{"kstrtobool on", hKstrtobool, []any{strArg("on"), dst}, 0, "\x01"},
		{"memcmp", hMemcmp, []any{strArg("abc"), strArg("abd"), uint64(3)}, negErrno(1), ""},
		{"snprintf truncates", hSnprintf, []any{dst, uint64(5), strArg("n=%d"), uint64(12345)}, 7, "n=12\x00"},
		{"msecs_to_jiffies rounds up", hMsecsToJiffies, []any{uint64(50)}, 13, ""},
		{"jiffies_to_msecs", hJiffiesToMsecs, []any{uint64(250)}, 1000, ""},
		{"sscanf ints", hSscanf, []any{strArg("12 -3 ff"), strArg("%d %d %x"), dst, dst + 4, dst + 8}, 3,
			"\x0c\x00\x00\x00\xfd\xff\xff\xff\xff\x00\x00\x00"},
		{"sscanf stops at mismatch", hSscanf, []any{strArg("a=7,b"), strArg("a=%u,b=%u"), dst, dst + 4}, 1, "\x07\x00\x00\x00"},
		{"sscanf string width", hSscanf, []any{strArg("kernelmodule"), strArg("%6s"), dst}, 1, "kernel\x00"},
		{"simple_strtoul auto hex", hSimpleStrto(false), []any{strArg("0x1fz"), uint64(0), uint64(0)}, 0x1f, ""},
		{"simple_strtol negative", hSimpleStrto(true), []any{strArg("-017"), uint64(0), uint64(0)}, negErrno(15), ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			next := scratch
			tr := &Trap{Name: c.name, m: m, rsp: m.stackTop - 64}
			for i, a := range c.args {
				switch v := a.(type) {
				case strArg:
					require.NoError(t, m.WriteAt(append([]byte(v), 0), next))
					tr.regs[i] = next
					next += uint64(len(v)) + 1
				case uint64:
					tr.regs[i] = v
				}
			}
			require.NoError(t, m.WriteAt(make([]byte, 32), dst))
			got, err := c.h(m, tr)
			require.NoError(t, err)
			assert.Equal(t, c.want, got)
			if c.wantDst != "" {
				b, err := m.Read(dst, uint64(len(c.wantDst)))
				require.NoError(t, err)
				assert.Equal(t, c.wantDst, string(b))
			}
		})
	}
}

func TestFindNextBit(t *testing.T) {
	m := newTestMachine(t, Options{})
	bm, err := m.slab.Kmalloc(32, callerForTest, true)
	require.NoError(t, err)
	require.NoError(t, m.WriteU64(bm, 1<<3|1<<60))
	require.NoError(t, m.WriteU64(bm+8, 1<<5))
	for _, c := range []struct{ size, offset, want uint64 }{
		{128, 0, 3}, {128, 4, 60}, {128, 61, 69}, {128, 70, 128}, {64, 61, 64},
	} {
		got, err := hFindNextBit(m, &Trap{m: m, regs: [6]uint64{bm, c.size, c.offset}})
		require.NoError(t, err)
		assert.Equal(t, c.want, got, "size %d offset %d", c.size, c.offset)
	}
}

func TestGuestFaultsAreErrorsNotPanics(t *testing.T) {
	m := newTestMachine(t, Options{})
	for _, addr := range []uint64{0, 0x10, 0xdead000000000000, ^uint64(0) - 3, m.layout.vmallocBase + 1<<40} {
		_, err := hStrlen(m, &Trap{m: m, regs: [6]uint64{addr}})
		var f *Fault
		require.ErrorAs(t, err, &f, "%#x", addr)
		_, err = hMemcpy(m, &Trap{m: m, regs: [6]uint64{addr, addr, 64}})
		require.ErrorAs(t, err, &f, "%#x", addr)
	}
}

func TestDelayedWorkRunsAfterItsDelay(t *testing.T) {
	m := bootDefault(t, Options{})
	tm := newModule(t, m)
	counter, dwork := tm.data, tm.data+0x100
	// work fn(work): counter++ through the work pointer (inc dword [rdi-0x100]); ret
	fn := tm.load(t, m, "delayed", []byte{0xff, 0x87, 0x00, 0xff, 0xff, 0xff, 0xc3}, nil)
	off, ok := m.fieldOffset("work_struct", "func")
	require.True(t, ok)
	require.NoError(t, m.WriteU64(dwork+off, fn))
	read := func() uint32 { v, err := m.ReadU32(counter); require.NoError(t, err); return v }

	queue := &Trap{Name: "queue_delayed_work_on", m: m, regs: [6]uint64{8, 0, dwork, 25}} // 25 jiffies: 100 ms
	got, err := hQueueDelayedWorkOn(m, queue)
	require.NoError(t, err)
	assert.Equal(t, uint64(1), got)
	got, err = hQueueDelayedWorkOn(m, queue)
	require.NoError(t, err)
	assert.Equal(t, uint64(0), got, "already pending")

	_, err = m.Idle(50e6)
	require.NoError(t, err)
	assert.Equal(t, uint32(0), read(), "50 ms in: still waiting")
	_, err = m.Idle(60e6)
	require.NoError(t, err)
	assert.Equal(t, uint32(1), read(), "ran once the 100 ms passed")

	_, err = hQueueDelayedWorkOn(m, queue)
	require.NoError(t, err)
	got, err = hCancelDelayedWork(m, &Trap{m: m, regs: [6]uint64{dwork}})
	require.NoError(t, err)
	assert.Equal(t, uint64(1), got)
	_, err = m.Idle(1e9)
	require.NoError(t, err)
	assert.Equal(t, uint32(1), read(), "cancelled work does not run")
}

func TestBulkMemoryIsBoundedAndOverlapSafe(t *testing.T) {
	m := newTestMachine(t, Options{})
	buf, err := m.slab.Kmalloc(4096, callerForTest, true)
	require.NoError(t, err)
	require.NoError(t, m.WriteAt([]byte("0123456789"), buf))

	// memmove up by 2 and down by 2 over overlapping ranges.
	_, err = hMemcpy(m, &Trap{m: m, regs: [6]uint64{buf + 2, buf, 8}})
	require.NoError(t, err)
	got, _ := m.Read(buf, 10)
	assert.Equal(t, "0101234567", string(got))
	_, err = hMemcpy(m, &Trap{m: m, regs: [6]uint64{buf, buf + 2, 8}})
	require.NoError(t, err)
	got, _ = m.Read(buf, 10)
	assert.Equal(t, "0123456767", string(got))

	// A terabyte memset or memcpy faults at the end of mapped memory instead of allocating on the host.
	var f *Fault
	_, err = hMemset(m, &Trap{m: m, regs: [6]uint64{buf, 0, 1 << 40}})
	require.ErrorAs(t, err, &f)
	_, err = hMemcpy(m, &Trap{m: m, regs: [6]uint64{buf, buf + 4096, 1 << 40}})
	require.ErrorAs(t, err, &f)
	p, err := hKmemdup(m, &Trap{m: m, regs: [6]uint64{buf, 1 << 40}})
	require.NoError(t, err)
	assert.Zero(t, p, "kmemdup of a terabyte fails its allocation: NULL")
}

func TestKfreeRCUForms(t *testing.T) {
	m := newTestMachine(t, Options{})
	a, err := m.slab.Kmalloc(64, callerForTest, true)
	require.NoError(t, err)
	b, err := m.slab.Kmalloc(64, callerForTest, true)
	require.NoError(t, err)
	_, err = hKvfreeCallRCU(m, &Trap{m: m, regs: [6]uint64{0, a}}) // kvfree_rcu(a)
	require.NoError(t, err)
	_, err = hKvfreeCallRCU(m, &Trap{m: m, regs: [6]uint64{b + 16, 16}}) // kfree_rcu(b, rcu) with rcu at 16
	require.NoError(t, err)
	for _, p := range []uint64{a, b} {
		_, err := m.slab.Ksize(p)
		assert.Error(t, err, "%#x was freed", p)
	}
}
