package machine

import (
	"runtime"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// The scheduler's handlers called directly as the host's task would call them. Kernel threads run a
// kernel function as their thread function (complete, msleep): it traps into its handler, and the
// thread exits with its result, which exercises starting, switching and stopping without module code.

// schedRig is a machine with a completion object and a trap maker.
type schedRig struct {
	m          *Machine
	completion uint64
}

func newSchedRig(t *testing.T) *schedRig {
	m := bootDefault(t, Options{Strict: true})
	size, ok := m.structSize("completion")
	require.True(t, ok)
	c, err := m.kernel.kzalloc(size)
	require.NoError(t, err)
	return &schedRig{m: m, completion: c}
}

func (r *schedRig) call(t *testing.T, name string, h Handler, args ...uint64) (uint64, error) {
	tr := &Trap{Name: name, m: r.m, rsp: r.m.stackTop - 64}
	copy(tr.regs[:], args)
	return h(r.m, tr)
}

func (r *schedRig) sym(t *testing.T, name string) uint64 {
	s, ok := r.m.prof.Lookup(name)
	require.True(t, ok, name)
	return s.Addr
}

// thread creates a kernel thread running the kernel function fn(data).
func (r *schedRig) thread(t *testing.T, fn string, data uint64) uint64 {
	th, err := r.m.newThread(r.sym(t, fn), data, "kemu_test")
	require.NoError(t, err)
	return th.addr
}

func (r *schedRig) now() uint64 { return r.m.kernel.clock.ns }

func TestKthreadLifecycle(t *testing.T) {
	cases := []struct {
		name     string
		fn       string // the thread's function
		data     uint64
		wake     bool // wake_up_process before kthread_stop
		yield    bool // and yield, so that it runs before being stopped
		wantWake uint64
		exit     int64  // what kthread_stop returns
		at       uint64 // virtual time after kthread_stop
	}{
		{name: "stopped before it ever ran", fn: "msleep", data: 30, exit: -4 /* -EINTR */, at: 0},
		// kthread() checks should-stop before calling threadfn: a thread stopped right after its
		// wake-up, before it got the CPU, never runs its function either.
		{name: "woken but stopped before it ran", fn: "msleep", data: 30, wake: true, wantWake: 1, exit: -4, at: 0},
		{name: "ran, naps 30 ms, stop waits for it", fn: "msleep", data: 30, wake: true, yield: true, wantWake: 1,
			exit: 0, at: 34e6},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := newSchedRig(t)
			p := r.thread(t, c.fn, c.data)
			require.Len(t, r.m.Threads(), 1)
			if c.wake {
				got, err := r.call(t, "wake_up_process", hWakeUpProcess, p)
				require.NoError(t, err)
				assert.Equal(t, c.wantWake, got)
			}
			if c.yield {
				_, err := r.call(t, "yield", hYield)
				require.NoError(t, err)
				assert.Equal(t, "D", r.m.Threads()[0].State, "asleep in msleep")
			}
			ret, err := r.call(t, "kthread_stop", hKthreadStop, p)
			require.NoError(t, err)
			assert.Equal(t, c.exit, int64(ret))
			assert.Equal(t, c.at, r.now())
			assert.Empty(t, r.m.Threads())
		})
	}
}

func TestCompletionsAcrossTasks(t *testing.T) {
	r := newSchedRig(t)
	// A thread whose function is complete(c): the host's wait lets it run, and it completes c.
	p := r.thread(t, "complete", r.completion)
	_, err := r.call(t, "wake_up_process", hWakeUpProcess, p)
	require.NoError(t, err)
	ret, err := r.call(t, "wait_for_completion_timeout", hWaitForCompletion, r.completion, 100)
	require.NoError(t, err)
	assert.Equal(t, uint64(100), ret, "completed at once: the whole timeout left")
	assert.Zero(t, r.now(), "no time passed: the thread ran while the host waited")

	// Nobody completes it again: the timeout passes.
	ret, err = r.call(t, "wait_for_completion_timeout", hWaitForCompletion, r.completion, 10)
	require.NoError(t, err)
	assert.Zero(t, ret)
	assert.Equal(t, uint64(40e6), r.now())
}

func TestHostWaitsThatNeverEnd(t *testing.T) {
	cases := []struct {
		name      string
		fn        string
		h         Handler
		wantRet   uint64
		wantDeath bool   // the hung-task detector reports and the task dies
		wantLine  string // in the log
	}{
		{name: "uninterruptible: a hung task", fn: "wait_for_completion", h: hWaitForCompletion, wantDeath: true,
			wantLine: "INFO: task insmod:1000 blocked for more than 120 seconds."},
		{name: "interruptible: a signal ends it", fn: "wait_for_completion_interruptible", h: hWaitForCompletion,
			wantRet: restartSys},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := newSchedRig(t)
			ret, err := r.call(t, c.fn, c.h, r.completion)
			if c.wantDeath {
				require.ErrorIs(t, err, errTaskDied)
				assert.Contains(t, r.m.Messages(), c.wantLine)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, c.wantRet, ret)
			assert.Equal(t, uint64(hungTaskTimeout), r.now())
			assert.NotContains(t, r.m.Dmesg(), "blocked for more than")
		})
	}
}

func TestScheduleTimeout(t *testing.T) {
	cases := []struct {
		name  string
		fn    string
		state uint32 // __state before the call
		arg   uint64
		want  uint64
		at    uint64
	}{
		{name: "TASK_RUNNING returns at once", fn: "schedule_timeout", state: taskStateRunning, arg: 25, want: 25, at: 0},
		{name: "interruptible sleeps the timeout", fn: "schedule_timeout_interruptible", arg: 25, want: 0, at: 100e6},
		{name: "set_current_state then schedule_timeout", fn: "schedule_timeout", state: taskStateUninterruptible,
			arg: 1, want: 0, at: 4e6},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := newSchedRig(t)
			r.m.writeTaskState(r.m.current(), c.state)
			got, err := r.call(t, c.fn, hScheduleTimeout, c.arg)
			require.NoError(t, err)
			assert.Equal(t, c.want, got)
			assert.Equal(t, c.at, r.now())
			assert.Equal(t, uint32(taskStateRunning), r.m.readTaskState(r.m.current()))
		})
	}
}

func TestClockReadsAndTicksMoveTime(t *testing.T) {
	r := newSchedRig(t)
	first, err := r.call(t, "ktime_get", hKtimeGet)
	require.NoError(t, err)
	second, err := r.call(t, "ktime_get", hKtimeGet)
	require.NoError(t, err)
	assert.Equal(t, uint64(clockReadNs), first)
	assert.Equal(t, uint64(2*clockReadNs), second)

}

// A tick delivered to a running guest moves jiffies in guest memory at once, and the kernel's clock
// (with its timers) when the run ends.
func TestTicksMoveGuestJiffies(t *testing.T) {
	if testing.Short() {
		t.Skip("boots the full Debian profile")
	}
	m := bootDefault(t, Options{})
	jiffies, ok := m.prof.Lookup("jiffies")
	require.True(t, ok)
	s := m.sched()
	start := m.kernel.clock.ns
	j := m.kernel.clock.jiffies()
	runtime.LockOSThread() // this thread stands for the CPU's: ticks follow its CPU time
	defer runtime.UnlockOSThread()
	s.ticks.start(j)
	require.True(t, s.ticks.deliver())
	guest, err := m.ReadU64(jiffies.Addr)
	require.NoError(t, err)
	assert.Equal(t, j, guest, "no tick before the guest has had spinTickEvery of CPU time")
	clock := threadCPUClock(unix.Gettid())
	for t0 := cpuTime(clock); cpuTime(clock)-t0 < int64(spinTickEvery); {
	}
	require.True(t, s.ticks.deliver())
	guest, err = m.ReadU64(jiffies.Addr)
	require.NoError(t, err)
	assert.Equal(t, j+1, guest, "the guest sees the tick while it runs")
	assert.Equal(t, j, m.kernel.clock.jiffies(), "the kernel's clock waits for the run to end")
	n, lockup := s.ticks.stop()
	require.Equal(t, uint64(1), n)
	require.False(t, lockup)
	require.NoError(t, m.catchUpTicks(n, lockup))
	assert.Equal(t, j+1, m.kernel.clock.jiffies(), "a tick is one jiffy")
	assert.Equal(t, m.kernel.clock.nsAtJiffies(j+1), m.kernel.clock.ns, "to the jiffy boundary")
	assert.Greater(t, m.kernel.clock.ns, start)
	assert.True(t, s.ticks.deliver(), "no run, no tick")
	guest, err = m.ReadU64(jiffies.Addr)
	require.NoError(t, err)
	assert.Equal(t, j+1, guest)
}
