package machine

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// rcuwait_wake_up, kthread_freezable_should_stop and __module_put_and_kthread_exit.

func TestRcuwaitWakeUp(t *testing.T) {
	cases := []struct {
		name   string
		waiter string // what w->task holds
		want   uint64
	}{
		{name: "nobody waits", waiter: "none", want: 0},
		{name: "a thread asleep in rcuwait_wait_event", waiter: "sleeping thread", want: 1},
		{name: "the waiter is running", waiter: "host", want: 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := newStubRig(t, nil, func(*asm, func(string) uint64) {}, nil)
			w := r.tm.data
			var th *task
			switch c.waiter {
			case "sleeping thread":
				var err error
				th, err = r.m.newThread(r.sym(t, "msleep"), 10, "kemu_rcuwait") // created asleep
				require.NoError(t, err)
				r.m.setField("rcuwait", "task", w, 8, th.addr)
			case "host":
				r.m.setField("rcuwait", "task", w, 8, r.m.task)
			}
			assert.Equal(t, c.want, callKernel(t, r.m, "rcuwait_wake_up", w))
			if th != nil {
				assert.True(t, th.started, "woken, it ran")
			}
		})
	}
}

func TestKthreadFreezableShouldStop(t *testing.T) {
	r := newStubRig(t, nil, func(*asm, func(string) uint64) {}, nil)
	wasFrozen := r.tm.data
	require.NoError(t, r.m.WriteAt([]byte{0xff}, wasFrozen))
	assert.Zero(t, callKernel(t, r.m, "kthread_freezable_should_stop", wasFrozen), "the host's task is no kthread")
	b := make([]byte, 1)
	require.NoError(t, r.m.ReadAt(b, wasFrozen))
	assert.Zero(t, b[0], "never frozen")
	assert.Zero(t, callKernel(t, r.m, "kthread_freezable_should_stop", 0), "was_frozen is optional")
}

// A thread holding a reference on its module drops it as it exits.
func TestModulePutAndKthreadExit(t *testing.T) {
	var fn uint64
	r := newStubRig(t, nil, func(a *asm, sym func(string) uint64) {
		fn = a.pc() // thread fn(mod): __module_put_and_kthread_exit(mod, 7)
		a.movRSI(7)
		a.jmp(sym("__module_put_and_kthread_exit"))
	}, nil)
	m := r.m
	_, err := m.Insmod(fixture(t, "hello"), "", "hello.ko")
	require.NoError(t, err)
	mod := m.registry.Modules()[0]
	require.Equal(t, "hello", mod.Name)
	require.True(t, m.moduleGet(mod.ThisModule))
	require.Equal(t, 1, mod.Refcount())
	th, err := m.newThread(fn, mod.ThisModule, "kemu_putter")
	require.NoError(t, err)
	assert.Equal(t, uint64(1), callKernel(t, m, "wake_up_process", th.addr))
	assert.Empty(t, m.Threads(), "it ran and exited on the way back to user space")
	assert.Equal(t, int64(7), th.thread.exitCode)
	assert.Zero(t, mod.Refcount(), "its reference dropped")
	_, err = m.Call(r.sym(t, "__module_put_and_kthread_exit"), mod.ThisModule, 0)
	assert.ErrorContains(t, err, "only kernel threads can exit")
}
