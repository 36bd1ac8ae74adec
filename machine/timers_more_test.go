package machine

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// round_jiffies and friends, wait_woken, and the delayed-work functions that complete the workqueue
// model: called from the host as module code calls them (through the kernel symbol).

// callKernel calls the kernel function name as module code would, from the host's task.
func callKernel(t *testing.T, m *Machine, name string, args ...uint64) uint64 {
	t.Helper()
	s, ok := m.prof.Lookup(name)
	require.True(t, ok, name)
	ret, err := m.Call(s.Addr, args...)
	require.NoError(t, err, "%s\n%s", name, m.Dmesg())
	return ret
}

func TestRoundJiffies(t *testing.T) {
	m := bootDefault(t, Options{})
	const hz = 250
	require.Equal(t, uint64(hz), m.kernel.clock.hz)
	now := m.kernel.clock.jiffies()
	second := now - now%hz // the current second began here
	require.Less(t, now-second, uint64(hz/4), "boot is early in a second (INITIAL_JIFFIES)")
	cases := []struct {
		fn   string
		args []uint64
		want uint64
	}{
		{fn: "round_jiffies", args: []uint64{second + hz + 10}, want: second + hz},            // just past: down
		{fn: "round_jiffies", args: []uint64{second + hz + 100}, want: second + 2*hz},         // up
		{fn: "round_jiffies", args: []uint64{second + 10}, want: second + 10},                 // down is the past
		{fn: "round_jiffies_up", args: []uint64{second + hz}, want: second + 2*hz},            // always up
		{fn: "round_jiffies_up", args: []uint64{second + hz + 10}, want: second + 2*hz},       // even just past
		{fn: "round_jiffies_relative", args: []uint64{3 * hz / 2}, want: second + 2*hz - now}, // a delta
		{fn: "round_jiffies_up_relative", args: []uint64{second + hz - now}, want: second + 2*hz - now},
		{fn: "__round_jiffies", args: []uint64{second + hz + 10, 1}, want: second + hz - 3}, // CPU 1's skew
	}
	for _, c := range cases {
		assert.Equal(t, c.want, callKernel(t, m, c.fn, c.args...), "%s(%d)", c.fn, c.args)
	}
}

// wait_woken with woken_wake_function: a wake-up that came before the sleep is not lost.
func TestWaitWoken(t *testing.T) {
	cases := []struct {
		name      string
		wokenFlag bool   // WQ_FLAG_WOKEN already set: a wake-up came in between
		waker     bool   // a thread wakes the queue after 44 ms
		want      uint64 // jiffies left of the 25
		at        uint64
	}{
		{name: "woken before: no sleep", wokenFlag: true, want: 25},
		{name: "nobody wakes it: the timeout", want: 0, at: 100e6},
		{name: "a thread wakes it", waker: true, want: 14, at: 44e6},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var waker uint64
			r := newStubRig(t, nil, func(a *asm, sym func(string) uint64) {
				waker = a.pc() // fn(wq): msleep(40); __wake_up(wq, TASK_NORMAL, 1, NULL)
				a.raw(0x57)    // push rdi
				a.movRDI(40)
				a.call(sym("msleep"))
				a.raw(0x5f) // pop rdi
				a.movRSI(taskStateNormal)
				a.movRDX(1)
				a.raw(0x31, 0xc9)             // xor ecx, ecx
				a.raw(0x48, 0x83, 0xec, 0x08) // sub rsp, 8
				a.call(sym("__wake_up"))
				a.raw(0x48, 0x83, 0xc4, 0x08, 0x31, 0xc0, 0xc3) // add rsp, 8; xor eax, eax; ret
			}, nil)
			m := r.m
			wq, entry := r.tm.data, r.tm.data+0x100
			_, err := hInitWaitqueueHead(m, &Trap{m: m, regs: [6]uint64{wq}})
			require.NoError(t, err)
			m.setField("wait_queue_entry", "private", entry, 8, m.task)
			m.setField("wait_queue_entry", "func", entry, 8, r.sym(t, "woken_wake_function"))
			link, ok := m.waitEntryList(entry)
			require.True(t, ok)
			require.NoError(t, m.listInit(link))
			callKernel(t, m, "add_wait_queue", wq, entry)
			if c.wokenFlag {
				m.setField("wait_queue_entry", "flags", entry, 4, wqFlagWoken)
			}
			if c.waker {
				th, err := m.newThread(waker, wq, "kemu_waker")
				require.NoError(t, err)
				m.wake(th)
			}
			got := callKernel(t, m, "wait_woken", entry, taskStateInterruptible, 25)
			assert.Equal(t, c.want, got)
			assert.Equal(t, c.at, m.kernel.clock.ns)
			flags, _ := m.fieldValue32("wait_queue_entry", "flags", entry)
			assert.Zero(t, flags&wqFlagWoken, "the flag is consumed")
			assert.Equal(t, uint32(taskStateRunning), m.readTaskState(m.current()))
		})
	}
}

// delayed work whose wait is cut short (flush_delayed_work), or whose timer module code armed itself
// (delayed_work_timer_fn), and drain_workqueue.
func TestDelayedWorkFlushAndTimerFn(t *testing.T) {
	const countOff = 0x60 // past struct delayed_work (88 bytes)
	var count uint64
	r := newStubRig(t, nil, func(a *asm, sym func(string) uint64) {
		count = a.pc()
		a.raw(0xff, 0x87, countOff, 0, 0, 0, 0xc3) // inc dword [rdi+0x60]; ret
	}, nil)
	m := r.m
	item := func(i uint64) uint64 {
		dwork := r.tm.data + i*0x80
		m.setField("work_struct", "func", dwork, 8, count)
		return dwork
	}
	runs := func(dwork uint64) uint32 {
		v, err := m.ReadU32(dwork + countOff)
		require.NoError(t, err)
		return v
	}
	a, b := item(0), item(1)

	require.Equal(t, uint64(1), callKernel(t, m, "queue_delayed_work_on", 8, 0, a, 25))
	assert.Equal(t, uint64(1), callKernel(t, m, "flush_delayed_work", a), "ran now")
	assert.Equal(t, uint32(1), runs(a))
	assert.Zero(t, m.kernel.clock.ns)
	_, err := m.Idle(200e6)
	require.NoError(t, err)
	assert.Equal(t, uint32(1), runs(a), "its timer is gone")
	assert.Zero(t, callKernel(t, m, "flush_delayed_work", a), "idle: nothing to flush")

	timerOff, ok := m.fieldOffset("delayed_work", "timer")
	require.True(t, ok)
	callKernel(t, m, "init_timer_key", b+timerOff, r.sym(t, "delayed_work_timer_fn"), 0, 0, 0)
	callKernel(t, m, "mod_timer", b+timerOff, m.kernel.clock.jiffies()+25)
	_, err = m.Idle(90e6)
	require.NoError(t, err)
	assert.Zero(t, runs(b))
	_, err = m.Idle(20e6)
	require.NoError(t, err)
	assert.Equal(t, uint32(1), runs(b), "the timer queued the work, which ran")

	callKernel(t, m, "queue_work_on", 8, 0, a)
	callKernel(t, m, "queue_work_on", 8, 0, b)
	callKernel(t, m, "drain_workqueue", 0)
	assert.Equal(t, []uint32{2, 2}, []uint32{runs(a), runs(b)})
}
