package machine

import (
	"fmt"
	"syscall"
)

// kthread workers (kernel/kthread.c): a kernel thread that runs the kthread_work items queued to it,
// one at a time, in queue order. Their state is where the kernel keeps it, in guest memory: struct
// kthread_worker (work_list, delayed_work_list, task, current_work) and struct kthread_work (node,
// worker, canceling), which module code initialises inline (kthread_init_work, KTHREAD_WORK_INIT).
//
// The worker's thread function is the kernel's kthread_worker_fn: the thread traps into it and the
// loop runs in Go on the worker's own kernel thread (which Threads() lists as the module's), calling
// each item's function on the CPU. A module may as well run kthread_worker_fn as the function of its
// own thread over a worker it set up with kthread_init_worker. Delayed work arms the item's timer,
// whose function kthread_init_delayed_work set to kthread_delayed_work_timer_fn: when it fires, in
// softirq context, the item joins the worker's queue. A flush queues a kthread_flush_work item in the
// caller's stack frame, whose function completes the completion the caller waits on, as the kernel
// does: flushing waits for everything queued before it.

func init() {
	register("__kthread_init_worker", hKthreadInitWorker)
	register("kthread_worker_fn", hKthreadWorkerFn)
	register("kthread_create_worker", hKthreadCreateWorker)
	register("kthread_create_worker_on_cpu", hKthreadCreateWorker)
	register("kthread_queue_work", hKthreadQueueWork)
	register("kthread_queue_delayed_work", hKthreadQueueDelayedWork)
	register("kthread_mod_delayed_work", hKthreadModDelayedWork)
	register("kthread_delayed_work_timer_fn", hKthreadDelayedWorkTimerFn)
	register("kthread_flush_work", hKthreadFlushWork)
	register("kthread_flush_work_fn", hKthreadFlushWorkFn)
	register("kthread_flush_worker", hKthreadFlushWorker)
	register("kthread_cancel_work_sync", hKthreadCancelWorkSync)
	register("kthread_cancel_delayed_work_sync", hKthreadCancelWorkSync)
	register("kthread_destroy_worker", hKthreadDestroyWorker)
}

// kworkerLayout holds the BTF offsets of the worker structures.
type kworkerLayout struct {
	workerSize                                      uint64 // sizeof(struct kthread_worker)
	flags, workList, delayedList, task, currentWork uint64 // in struct kthread_worker
	node, fn, worker, canceling                     uint64 // in struct kthread_work
	dworkWork, timer                                uint64 // in struct kthread_delayed_work
	flushSize, flushDone                            uint64 // struct kthread_flush_work (kthread.c's own)
}

func (m *Machine) kworkerLayout() (*kworkerLayout, error) {
	l := &kworkerLayout{}
	for _, f := range []struct {
		name, field string
		off         *uint64
	}{
		{"kthread_worker", "flags", &l.flags}, {"kthread_worker", "work_list", &l.workList},
		{"kthread_worker", "delayed_work_list", &l.delayedList}, {"kthread_worker", "task", &l.task},
		{"kthread_worker", "current_work", &l.currentWork},
		{"kthread_work", "node", &l.node}, {"kthread_work", "func", &l.fn},
		{"kthread_work", "worker", &l.worker}, {"kthread_work", "canceling", &l.canceling},
		{"kthread_delayed_work", "work", &l.dworkWork}, {"kthread_delayed_work", "timer", &l.timer},
	} {
		off, ok := m.fieldOffset(f.name, f.field)
		if !ok {
			return nil, fmt.Errorf("struct %s has no known field %s (no BTF)", f.name, f.field)
		}
		*f.off = off
	}
	var ok bool
	if l.workerSize, ok = m.structSize("kthread_worker"); !ok {
		return nil, fmt.Errorf("struct kthread_worker has no known size (no BTF)")
	}
	// struct kthread_flush_work is private to kthread.c: a kthread_work, then a completion.
	workSize, ok1 := m.structSize("kthread_work")
	doneSize, ok2 := m.structSize("completion")
	if !ok1 || !ok2 {
		return nil, fmt.Errorf("struct kthread_work or completion has no known size (no BTF)")
	}
	l.flushDone = (workSize + 7) &^ 7
	l.flushSize = l.flushDone + doneSize
	return l, nil
}

// requireKernelFunc is the address of a kernel function the emulated kernel hands to guest
// structures, or an error when the profile lacks it.
func (m *Machine) requireKernelFunc(name string) (uint64, error) {
	if fn := m.kernelFunc(name); fn != 0 {
		return fn, nil
	}
	return 0, fmt.Errorf("kernel function %s is not in the profile", name)
}

// warnOn is a WARN_ON() of the kernel function t called that fired, at file:line of its source.
func (m *Machine) warnOn(t *Trap, file string, line int) {
	regs := m.snapshot()
	regs.rip = t.Addr
	m.warn(bugEntry{file: file, line: line, warning: true}, &regs)
}

// __kthread_init_worker(worker, name, key): a zeroed worker with empty lists.
func hKthreadInitWorker(m *Machine, t *Trap) (uint64, error) {
	l, err := m.kworkerLayout()
	if err != nil {
		return 0, err
	}
	return 0, m.initKthreadWorker(l, t.Arg(0))
}

func (m *Machine) initKthreadWorker(l *kworkerLayout, worker uint64) error {
	if err := m.WriteAt(make([]byte, l.workerSize), worker); err != nil {
		return err
	}
	if err := m.listInit(worker + l.workList); err != nil {
		return err
	}
	return m.listInit(worker + l.delayedList)
}

// kthread_create_worker(flags, namefmt, ...) and kthread_create_worker_on_cpu(cpu, flags, namefmt,
// ...): a worker and its thread, started; ERR_PTR(-ENOMEM) when memory runs out. One CPU: the binding
// changes nothing.
func hKthreadCreateWorker(m *Machine, t *Trap) (uint64, error) {
	first := 0
	if t.Name == "kthread_create_worker_on_cpu" {
		first = 1
	}
	l, err := m.kworkerLayout()
	if err != nil {
		return 0, err
	}
	fn, err := m.requireKernelFunc("kthread_worker_fn")
	if err != nil {
		return 0, err
	}
	name, err := m.format(t.Arg(first+1), t.VarArgs(first+2))
	if err != nil {
		return 0, err
	}
	worker := m.kmalloc(l.workerSize, t.caller(), gfpZero)
	if worker == 0 {
		return errPtr(syscall.ENOMEM), nil
	}
	if err := m.initKthreadWorker(l, worker); err != nil {
		return 0, err
	}
	th, err := m.newThread(fn, worker, string(name))
	if err != nil {
		return errPtr(syscall.ENOMEM), m.kfree(worker, t.caller())
	}
	th.thread.module = m.moduleOf(t.Return)
	if err := m.WriteU32(worker+l.flags, uint32(t.Arg(first))); err != nil {
		return 0, err
	}
	if err := m.WriteU64(worker+l.task, th.addr); err != nil {
		return 0, err
	}
	m.wakeUpState(th, taskStateNormal)
	return worker, nil
}

// kthread_worker_fn(worker): the worker's loop, until kthread_stop(): take the first queued item and
// run it, or sleep (interruptibly, the worker shows as S) until an item is queued.
func hKthreadWorkerFn(m *Machine, t *Trap) (uint64, error) {
	cur := m.current()
	if cur.thread == nil {
		return 0, fmt.Errorf("kthread_worker_fn on %s/%d: only a kernel thread can run a worker", m.comm, m.pid)
	}
	l, err := m.kworkerLayout()
	if err != nil {
		return 0, err
	}
	worker := t.Arg(0)
	if task, err := m.ReadU64(worker + l.task); err != nil {
		return 0, err
	} else if task != 0 && task != cur.addr {
		m.warnOn(t, "kernel/kthread.c", 792)
	}
	if err := m.WriteU64(worker+l.task, cur.addr); err != nil {
		return 0, err
	}
	for {
		m.writeTaskState(cur, taskStateInterruptible)
		if cur.thread.shouldStop {
			m.writeTaskState(cur, taskStateRunning)
			return 0, m.WriteU64(worker+l.task, 0)
		}
		work, err := m.takeKthreadWork(l, worker)
		if err != nil {
			return 0, err
		}
		if work != 0 {
			m.writeTaskState(cur, taskStateRunning)
			fn, err := m.ReadU64(work + l.fn)
			if err != nil {
				return 0, err
			}
			if _, err := m.Call(fn, work); err != nil {
				return 0, err
			}
		} else if _, err := hSchedule(m, t); err != nil {
			return 0, err
		}
		if _, err := hYield(m, t); err != nil { // cond_resched()
			return 0, err
		}
	}
}

// takeKthreadWork unlinks the first queued item, which becomes the worker's current work (0: none).
func (m *Machine) takeKthreadWork(l *kworkerLayout, worker uint64) (uint64, error) {
	head := worker + l.workList
	first, err := m.ReadU64(head)
	if err != nil {
		return 0, err
	}
	work := uint64(0)
	if first != head {
		work = first - l.node
		if err := m.listDelInit(first); err != nil {
			return 0, err
		}
	}
	return work, m.WriteU64(worker+l.currentWork, work)
}

// insertKthreadWork links work before pos in the worker's lists (kthread_insert_work) and wakes the
// worker if it is idle.
func (m *Machine) insertKthreadWork(l *kworkerLayout, worker, work, pos uint64) error {
	prev, err := m.ReadU64(pos + 8)
	if err != nil {
		return err
	}
	if err := m.listAdd(work+l.node, prev, pos); err != nil {
		return err
	}
	if err := m.WriteU64(work+l.worker, worker); err != nil {
		return err
	}
	current, err := m.ReadU64(worker + l.currentWork)
	if err != nil {
		return err
	}
	task, err := m.ReadU64(worker + l.task)
	if err != nil {
		return err
	}
	if current == 0 && task != 0 {
		m.wakeUpAddr(task, taskStateNormal)
	}
	return nil
}

// queuingBlocked: the work is already on a list, or being cancelled.
func (m *Machine) queuingBlocked(l *kworkerLayout, work uint64) (bool, error) {
	idle, err := m.listEmpty(work + l.node)
	if err != nil || !idle {
		return true, err
	}
	canceling, err := m.ReadU32(work + l.canceling)
	return canceling != 0, err
}

func boolResult(b bool, err error) (uint64, error) {
	if b {
		return 1, err
	}
	return 0, err
}

// kthread_queue_work(worker, work): queued at the tail; false if it was pending already.
func hKthreadQueueWork(m *Machine, t *Trap) (uint64, error) {
	l, err := m.kworkerLayout()
	if err != nil {
		return 0, err
	}
	return boolResult(m.queueKthreadWork(l, t.Arg(0), t.Arg(1)))
}

func (m *Machine) queueKthreadWork(l *kworkerLayout, worker, work uint64) (bool, error) {
	blocked, err := m.queuingBlocked(l, work)
	if err != nil || blocked {
		return false, err
	}
	return true, m.insertKthreadWork(l, worker, work, worker+l.workList)
}

// kthread_queue_delayed_work(worker, dwork, delay): the item joins the queue after delay jiffies (at
// once for 0); false if it was pending already.
func hKthreadQueueDelayedWork(m *Machine, t *Trap) (uint64, error) {
	l, err := m.kworkerLayout()
	if err != nil {
		return 0, err
	}
	worker, dwork, delay := t.Arg(0), t.Arg(1), t.Arg(2)
	blocked, err := m.queuingBlocked(l, dwork+l.dworkWork)
	if err != nil || blocked {
		return 0, err
	}
	return 1, m.queueDelayedKthreadWork(l, worker, dwork, delay)
}

// queueDelayedKthreadWork parks the item on the worker's delayed list and arms its timer.
func (m *Machine) queueDelayedKthreadWork(l *kworkerLayout, worker, dwork, delay uint64) error {
	work := dwork + l.dworkWork
	if delay == 0 {
		return m.insertKthreadWork(l, worker, work, worker+l.workList)
	}
	head := worker + l.delayedList
	next, err := m.ReadU64(head)
	if err != nil {
		return err
	}
	if err := m.listAdd(work+l.node, head, next); err != nil {
		return err
	}
	if err := m.WriteU64(work+l.worker, worker); err != nil {
		return err
	}
	timer := dwork + l.timer
	expires := m.kernel.clock.jiffies() + delay
	m.setField("timer_list", "expires", timer, 8, expires)
	m.kernel.timers[timer] = expires // add_timer()
	return nil
}

// kthread_delayed_work_timer_fn(timer): the delay is over; the item moves from the delayed list to
// the queue, unless it is being cancelled.
func hKthreadDelayedWorkTimerFn(m *Machine, t *Trap) (uint64, error) {
	l, err := m.kworkerLayout()
	if err != nil {
		return 0, err
	}
	work := t.Arg(0) - l.timer + l.dworkWork
	worker, err := m.ReadU64(work + l.worker)
	if err != nil || worker == 0 {
		return 0, err // a pending item reinitialised: the kernel warns once and drops it
	}
	if err := m.listDelInit(work + l.node); err != nil {
		return 0, err
	}
	if canceling, err := m.ReadU32(work + l.canceling); err != nil || canceling != 0 {
		return 0, err
	}
	return 0, m.insertKthreadWork(l, worker, work, worker+l.workList)
}

// kthread_mod_delayed_work(worker, dwork, delay): re-armed to run after delay; false if the item
// was idle (then queued), true if it was pending.
func hKthreadModDelayedWork(m *Machine, t *Trap) (uint64, error) {
	l, err := m.kworkerLayout()
	if err != nil {
		return 0, err
	}
	worker, dwork, delay := t.Arg(0), t.Arg(1), t.Arg(2)
	work := dwork + l.dworkWork
	owner, err := m.ReadU64(work + l.worker)
	if err != nil {
		return 0, err
	}
	pending := false
	if owner != 0 {
		delete(m.kernel.timers, dwork+l.timer) // del_timer_sync()
		canceling, err := m.ReadU32(work + l.canceling)
		if err != nil {
			return 0, err
		}
		if canceling != 0 {
			return 1, nil // another task is cancelling it: it wins
		}
		if pending, err = m.dequeueKthreadWork(l, work); err != nil {
			return 0, err
		}
	}
	return boolResult(pending, m.queueDelayedKthreadWork(l, worker, dwork, delay))
}

// dequeueKthreadWork takes the item off the queue or the delayed list; it reports whether it was on one.
func (m *Machine) dequeueKthreadWork(l *kworkerLayout, work uint64) (bool, error) {
	idle, err := m.listEmpty(work + l.node)
	if err != nil || idle {
		return false, err
	}
	return true, m.listDelInit(work + l.node)
}

// kthread_flush_work(work): if the item is queued or running, waits until it has run.
func hKthreadFlushWork(m *Machine, t *Trap) (uint64, error) {
	l, err := m.kworkerLayout()
	if err != nil {
		return 0, err
	}
	return 0, m.flushKthreadWork(t, l, t.Arg(0))
}

func (m *Machine) flushKthreadWork(t *Trap, l *kworkerLayout, work uint64) error {
	worker, err := m.ReadU64(work + l.worker)
	if err != nil || worker == 0 {
		return err
	}
	var pos uint64
	if idle, err := m.listEmpty(work + l.node); err != nil {
		return err
	} else if !idle {
		pos, err = m.ReadU64(work + l.node) // right after the item
		if err != nil {
			return err
		}
	} else if current, err := m.ReadU64(worker + l.currentWork); err != nil || current != work {
		return err // neither queued nor running
	} else if pos, err = m.ReadU64(worker + l.workList); err != nil { // first in the queue
		return err
	}
	flush, err := m.kthreadFlushItem(t, l)
	if err != nil {
		return err
	}
	if err := m.insertKthreadWork(l, worker, flush, pos); err != nil {
		return err
	}
	return m.waitForCompletion(t, flush+l.flushDone)
}

// kthreadFlushItem is a struct kthread_flush_work in the caller's frame: an item whose function
// completes its completion.
func (m *Machine) kthreadFlushItem(t *Trap, l *kworkerLayout) (uint64, error) {
	fn, err := m.requireKernelFunc("kthread_flush_work_fn")
	if err != nil {
		return 0, err
	}
	flush, err := m.trapFrame(t, l.flushSize)
	if err != nil {
		return 0, err
	}
	if err := m.listInit(flush + l.node); err != nil {
		return 0, err
	}
	if err := m.WriteU64(flush+l.fn, fn); err != nil {
		return 0, err
	}
	return flush, m.initCompletion(flush + l.flushDone)
}

// kthread_flush_work_fn(work): the flush item ran; its waiter may go on.
func hKthreadFlushWorkFn(m *Machine, t *Trap) (uint64, error) {
	l, err := m.kworkerLayout()
	if err != nil {
		return 0, err
	}
	return 0, m.complete(t.Arg(0)+l.flushDone, false)
}

// kthread_flush_worker(worker): waits until everything queued so far has run.
func hKthreadFlushWorker(m *Machine, t *Trap) (uint64, error) {
	l, err := m.kworkerLayout()
	if err != nil {
		return 0, err
	}
	return 0, m.flushKthreadWorker(t, l, t.Arg(0))
}

func (m *Machine) flushKthreadWorker(t *Trap, l *kworkerLayout, worker uint64) error {
	flush, err := m.kthreadFlushItem(t, l)
	if err != nil {
		return err
	}
	if _, err := m.queueKthreadWork(l, worker, flush); err != nil {
		return err
	}
	return m.waitForCompletion(t, flush+l.flushDone)
}

// kthread_cancel_work_sync(work) and kthread_cancel_delayed_work_sync(dwork): the item is taken off
// its list (its timer stopped) and, if it is running, waited for. True if it was pending.
func hKthreadCancelWorkSync(m *Machine, t *Trap) (uint64, error) {
	l, err := m.kworkerLayout()
	if err != nil {
		return 0, err
	}
	work := t.Arg(0)
	if t.Name == "kthread_cancel_delayed_work_sync" {
		work += l.dworkWork
	}
	worker, err := m.ReadU64(work + l.worker)
	if err != nil || worker == 0 {
		return 0, err
	}
	if t.Name == "kthread_cancel_delayed_work_sync" {
		delete(m.kernel.timers, t.Arg(0)+l.timer) // del_timer_sync()
	}
	pending, err := m.dequeueKthreadWork(l, work)
	if err != nil {
		return 0, err
	}
	if current, err := m.ReadU64(worker + l.currentWork); err != nil || current != work {
		return boolResult(pending, err)
	}
	// Running: queuing it again is blocked until it has finished.
	if err := m.addCanceling(l, work, 1); err != nil {
		return 0, err
	}
	if err := m.flushKthreadWork(t, l, work); err != nil {
		return 0, err
	}
	return boolResult(pending, m.addCanceling(l, work, -1))
}

func (m *Machine) addCanceling(l *kworkerLayout, work uint64, d int32) error {
	n, err := m.ReadU32(work + l.canceling)
	if err != nil {
		return err
	}
	return m.WriteU32(work+l.canceling, uint32(int32(n)+d))
}

// kthread_destroy_worker(worker): flushed, its thread stopped, then freed.
func hKthreadDestroyWorker(m *Machine, t *Trap) (uint64, error) {
	l, err := m.kworkerLayout()
	if err != nil {
		return 0, err
	}
	worker := t.Arg(0)
	task, err := m.ReadU64(worker + l.task)
	if err != nil {
		return 0, err
	}
	if task == 0 {
		m.warnOn(t, "kernel/kthread.c", 1391)
		return 0, nil
	}
	if err := m.flushKthreadWorker(t, l, worker); err != nil {
		return 0, err
	}
	th, err := m.threadArg(t, task)
	if err != nil {
		return 0, err
	}
	if _, err := m.kthreadStop(t, th); err != nil {
		return 0, err
	}
	if idle, err := m.listEmpty(worker + l.workList); err != nil {
		return 0, err
	} else if !idle {
		m.warnOn(t, "kernel/kthread.c", 1396)
	}
	return 0, m.kfree(worker, t.caller())
}
