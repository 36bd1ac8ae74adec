package machine

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// kthread workers driven as module code drives them: the host calls the kernel functions through
// stubs in a test module (so the calls trap with a module caller and a guest stack, as real calls do),
// and the work items' functions are module code that counts its runs, one of them after a 40 ms nap.

// stubRig is a machine with a test module ("kwtest") holding, for each kernel function named, a stub
// that calls it from module code, and whatever other code a test needs.
type stubRig struct {
	m     *Machine
	tm    testModule
	stubs map[string]uint64 // kernel function -> module stub that calls it
}

// newStubRig assembles the stubs, then more code (emit); its data page starts with data.
func newStubRig(t *testing.T, names []string, emit func(a *asm, sym func(string) uint64), data []byte) *stubRig {
	m := bootDefault(t, Options{Strict: true})
	r := &stubRig{m: m, tm: newModule(t, m), stubs: map[string]uint64{}}
	sym := func(name string) uint64 { return r.sym(t, name) }
	a := r.tm.asm()
	for _, name := range names {
		r.stubs[name] = a.pc()
		a.raw(0x48, 0x83, 0xec, 0x08) // sub rsp, 8: the callee sees an aligned stack
		a.call(sym(name))
		a.raw(0x48, 0x83, 0xc4, 0x08, 0xc3) // add rsp, 8; ret
	}
	emit(a, sym)
	r.tm.load(t, m, "kwtest", a.code, data)
	return r
}

func (r *stubRig) sym(t *testing.T, name string) uint64 {
	s, ok := r.m.prof.Lookup(name)
	require.True(t, ok, name)
	return s.Addr
}

// call runs a kernel function from module code, as the host's task.
func (r *stubRig) call(t *testing.T, name string, args ...uint64) uint64 {
	t.Helper()
	stub, ok := r.stubs[name]
	require.True(t, ok, name)
	ret, err := r.m.Call(stub, args...)
	require.NoError(t, err, "%s\n%s", name, r.m.Dmesg())
	return ret
}

func (r *stubRig) idle(t *testing.T, ns uint64) {
	_, err := r.m.Idle(ns)
	require.NoError(t, err)
}

// workerRig adds work functions: count counts its runs in the u32 after its kthread_delayed_work, nap
// does msleep(40) first.
type workerRig struct {
	*stubRig
	count, nap uint64
	name       uint64 // "kw/%d"
}

// The work items live in the module's data page: a kthread_delayed_work (80 bytes) and a counter.
const (
	workItemSize  = 0x60
	workCountOff  = 0x50 // sizeof(struct kthread_delayed_work): where a work fn counts its runs
	workItemsBase = 0x100
)

var workerStubs = []string{
	"kthread_create_worker", "kthread_create_worker_on_cpu", "kthread_queue_work",
	"kthread_queue_delayed_work", "kthread_mod_delayed_work", "kthread_flush_work", "kthread_flush_worker",
	"kthread_cancel_work_sync", "kthread_cancel_delayed_work_sync", "kthread_destroy_worker",
	"__kthread_init_worker", "kthread_create_on_node",
}

func newWorkerRig(t *testing.T) *workerRig {
	r := &workerRig{}
	r.stubRig = newStubRig(t, workerStubs, func(a *asm, sym func(string) uint64) {
		incCount := []byte{0xff, 0x87, workCountOff, 0, 0, 0} // inc dword [rdi+0x50]
		r.count = a.pc()
		a.raw(incCount...)
		a.raw(0xc3)
		r.nap = a.pc()
		a.raw(0x57) // push rdi
		a.movRDI(40)
		a.call(sym("msleep"))
		a.raw(0x5f) // pop rdi
		a.raw(incCount...)
		a.raw(0xc3)
	}, []byte("kw/%d\x00"))
	r.name = r.tm.data
	l, err := r.m.kworkerLayout()
	require.NoError(t, err)
	require.Equal(t, uint64(workCountOff), l.timer+40, "kthread_delayed_work is a work and a timer_list")
	return r
}

// item is the i-th work item, initialised as kthread_init_delayed_work(dwork, fn) does inline.
func (r *workerRig) item(t *testing.T, i int, fn uint64) uint64 {
	m := r.m
	l, err := m.kworkerLayout()
	require.NoError(t, err)
	dwork := r.tm.data + workItemsBase + uint64(i)*workItemSize
	require.NoError(t, m.WriteAt(make([]byte, workItemSize), dwork))
	require.NoError(t, m.listInit(dwork+l.node))
	require.NoError(t, m.WriteU64(dwork+l.fn, fn))
	_, err = hInitTimerKey(m, &Trap{m: m, regs: [6]uint64{dwork + l.timer, r.sym(t, "kthread_delayed_work_timer_fn")}})
	require.NoError(t, err)
	return dwork
}

func (r *workerRig) runs(t *testing.T, item uint64) uint32 {
	v, err := r.m.ReadU32(item + workCountOff)
	require.NoError(t, err)
	return v
}

func (r *workerRig) newWorker(t *testing.T) uint64 {
	w := r.call(t, "kthread_create_worker_on_cpu", 0, 0, r.name, 7)
	require.False(t, isErrPtr(w))
	return w
}

func TestKthreadWorkerThread(t *testing.T) {
	r := newWorkerRig(t)
	w := r.newWorker(t)
	threads := r.m.Threads()
	require.Len(t, threads, 1)
	assert.Equal(t, Thread{PID: 1002, Comm: "kw/7", State: "S", Module: "kwtest", Func: "kthread_worker_fn+0x0"},
		threads[0], "the worker sleeps (interruptibly) on its empty queue; it is the module's")
	task, err := r.m.structWord("kthread_worker", "task", w)
	require.NoError(t, err)
	assert.Equal(t, r.m.sched().tasks[1].addr, task)

	r.call(t, "kthread_destroy_worker", w)
	assert.Empty(t, r.m.Threads(), "destroy stops the thread")
	assert.Zero(t, r.m.kernel.clock.ns)
	assert.NotContains(t, r.m.Dmesg(), "WARNING")
}

func TestKthreadQueueWork(t *testing.T) {
	r := newWorkerRig(t)
	w := r.newWorker(t)
	a, b := r.item(t, 0, r.count), r.item(t, 1, r.count)
	assert.Equal(t, uint64(1), r.call(t, "kthread_queue_work", w, a))
	assert.Equal(t, uint64(1), r.call(t, "kthread_queue_work", w, b))
	assert.Equal(t, []uint32{1, 1}, []uint32{r.runs(t, a), r.runs(t, b)}, "the worker ran both on return")
	assert.Equal(t, uint64(1), r.call(t, "kthread_queue_work", w, a), "idle again: queued again")
	assert.Equal(t, uint32(2), r.runs(t, a))
	owner, err := r.m.structWord("kthread_work", "worker", a)
	require.NoError(t, err)
	assert.Equal(t, w, owner)
	assert.Equal(t, "S", r.m.Threads()[0].State)
	r.call(t, "kthread_destroy_worker", w)
}

func TestKthreadDelayedWork(t *testing.T) {
	cases := []struct {
		name    string
		queue   string // how the item is first queued (25 jiffies: 100 ms)
		then    string // then: mod to 50 jiffies, or cancel
		wantRet uint64 // what then returns
		runs    []uint32
	}{
		{name: "runs after its delay", queue: "kthread_queue_delayed_work", runs: []uint32{0, 1, 1}},
		{name: "mod of a pending item re-arms it", queue: "kthread_queue_delayed_work",
			then: "kthread_mod_delayed_work", wantRet: 1, runs: []uint32{0, 0, 1}},
		{name: "mod of an idle item queues it", then: "kthread_mod_delayed_work", wantRet: 0, runs: []uint32{0, 0, 1}},
		{name: "cancel of a pending item", queue: "kthread_queue_delayed_work",
			then: "kthread_cancel_delayed_work_sync", wantRet: 1, runs: []uint32{0, 0, 0}},
		{name: "cancel of an idle item", then: "kthread_cancel_delayed_work_sync", wantRet: 0, runs: []uint32{0, 0, 0}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := newWorkerRig(t)
			w := r.newWorker(t)
			d := r.item(t, 0, r.count)
			if c.queue != "" {
				require.Equal(t, uint64(1), r.call(t, c.queue, w, d, 25))
				assert.Zero(t, r.call(t, c.queue, w, d, 25), "already pending")
			}
			switch c.then {
			case "kthread_mod_delayed_work":
				assert.Equal(t, c.wantRet, r.call(t, c.then, w, d, 50))
			case "kthread_cancel_delayed_work_sync":
				assert.Equal(t, c.wantRet, r.call(t, c.then, d))
			}
			var runs []uint32
			for _, ms := range []uint64{90, 100, 300} { // at 90 ms, 190 ms, 490 ms
				r.idle(t, ms*1e6)
				runs = append(runs, r.runs(t, d))
			}
			assert.Equal(t, c.runs, runs)
			r.call(t, "kthread_destroy_worker", w)
			assert.Empty(t, r.m.Threads())
		})
	}
}

// Flushing and cancelling wait for an item that is running: the nap item sleeps 44 ms (msleep(40)
// is 11 jiffies at HZ=250), and the host's call returns only once it has finished.
func TestKthreadFlushAndCancelWaitForRunningWork(t *testing.T) {
	cases := []struct {
		name    string
		call    func(t *testing.T, r *workerRig, w, nap uint64) uint64
		wantRet uint64
		counted uint32 // the count item queued after the nap item: flushing the worker waits for it
	}{
		{name: "kthread_flush_work", call: func(t *testing.T, r *workerRig, w, nap uint64) uint64 {
			return r.call(t, "kthread_flush_work", nap)
		}},
		{name: "kthread_cancel_work_sync: was not pending", call: func(t *testing.T, r *workerRig, w, nap uint64) uint64 {
			return r.call(t, "kthread_cancel_work_sync", nap)
		}},
		{name: "kthread_flush_worker", call: func(t *testing.T, r *workerRig, w, nap uint64) uint64 {
			return r.call(t, "kthread_flush_worker", w)
		}, counted: 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := newWorkerRig(t)
			w := r.newWorker(t)
			nap, count := r.item(t, 0, r.nap), r.item(t, 1, r.count)
			require.Equal(t, uint64(1), r.call(t, "kthread_queue_work", w, nap))
			assert.Equal(t, "D", r.m.Threads()[0].State, "the worker naps in the item")
			require.Equal(t, uint64(1), r.call(t, "kthread_queue_work", w, count))
			assert.Zero(t, r.runs(t, count), "queued behind the napping item")
			assert.Equal(t, c.wantRet, c.call(t, r, w, nap))
			assert.Equal(t, uint64(44e6), r.m.kernel.clock.ns, "waited for the nap")
			assert.Equal(t, uint32(1), r.runs(t, nap))
			r.call(t, "kthread_destroy_worker", w)
			assert.Equal(t, uint32(1), r.runs(t, count), "destroy flushes what is queued")
		})
	}
}

func TestKthreadCancelPendingWork(t *testing.T) {
	r := newWorkerRig(t)
	w := r.newWorker(t)
	nap, count := r.item(t, 0, r.nap), r.item(t, 1, r.count)
	r.call(t, "kthread_queue_work", w, nap)
	r.call(t, "kthread_queue_work", w, count)
	assert.Equal(t, uint64(1), r.call(t, "kthread_cancel_work_sync", count), "pending: taken off the queue")
	assert.Zero(t, r.m.kernel.clock.ns, "not running: no wait")
	assert.Zero(t, r.call(t, "kthread_cancel_work_sync", count), "no longer pending")
	r.call(t, "kthread_destroy_worker", w)
	assert.Zero(t, r.runs(t, count), "cancelled: it never ran")
	assert.Equal(t, uint32(1), r.runs(t, nap))
}

// A module's own thread running kthread_worker_fn over a worker it initialised.
func TestKthreadWorkerFnAsThreadFunction(t *testing.T) {
	r := newWorkerRig(t)
	worker := r.tm.data + 0x800
	r.call(t, "__kthread_init_worker", worker, r.name, 0)
	p := r.call(t, "kthread_create_on_node", r.sym(t, "kthread_worker_fn"), worker, ^uint64(0), r.name, 3)
	require.False(t, isErrPtr(p))
	_, err := r.m.Call(r.sym(t, "wake_up_process"), p)
	require.NoError(t, err)
	assert.Equal(t, []Thread{{PID: 1002, Comm: "kw/3", State: "S", Module: "kwtest", Func: "kthread_worker_fn+0x0"}},
		r.m.Threads())
	item := r.item(t, 0, r.count)
	r.call(t, "kthread_queue_work", worker, item)
	assert.Equal(t, uint32(1), r.runs(t, item))
	code, err := r.m.Call(r.sym(t, "kthread_stop"), p)
	require.NoError(t, err)
	assert.Zero(t, code)
	task, err := r.m.structWord("kthread_worker", "task", worker)
	require.NoError(t, err)
	assert.Zero(t, task, "the worker function clears the task on its way out")
}

func TestKthreadDestroyWorkerWithoutTaskWarns(t *testing.T) {
	r := newWorkerRig(t)
	worker := r.tm.data + 0x800
	r.call(t, "__kthread_init_worker", worker, r.name, 0)
	r.call(t, "kthread_destroy_worker", worker)
	assert.Contains(t, r.m.Dmesg(), "WARNING: CPU: 0 PID: 1000 at kernel/kthread.c:1391 kthread_destroy_worker+0x0/")
}
