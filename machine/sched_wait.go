package machine

import (
	"errors"
	"fmt"

	uc "github.com/unicorn-engine/unicorn/bindings/go/unicorn"
)

// Sleeping and waking (kernel/sched/core.c, wait.c, completion.c). The truth about whether a task
// may sleep is its task_struct.__state, which module code writes inline (set_current_state): schedule()
// sleeps only if the state is not TASK_RUNNING, and a waker sets it back to TASK_RUNNING, so a wake-up
// that comes between set_current_state() and schedule() is not lost. Wait queues are the guest's own
// lists (wait_queue_head.head, wait_queue_entry.entry), so waitqueue_active() and custom wake functions
// work; completions count in completion.done and their waiters are the scheduler's.
//
// The host's task (insmod, the user process) cannot sleep forever: an uninterruptible sleep that lasts
// the hung-task timeout (120 s of virtual time) is reported as the hung-task detector does and the task
// is killed; an interruptible one gets a signal then, as if the user interrupted the command, and the
// wait returns -ERESTARTSYS (the system call fails with EINTR).

func init() {
	register("schedule", hSchedule)
	register("schedule_timeout", hScheduleTimeout)
	register("schedule_timeout_interruptible", hScheduleTimeout)
	register("schedule_timeout_killable", hScheduleTimeout)
	register("schedule_timeout_uninterruptible", hScheduleTimeout)
	register("schedule_timeout_idle", hScheduleTimeout)
	register("io_schedule", hSchedule)
	register("io_schedule_timeout", hScheduleTimeout)
	register("yield", hYield)
	register("__cond_resched", hYield)
	register("__init_waitqueue_head", hInitWaitqueueHead)
	register("init_wait_entry", hInitWaitEntry)
	register("prepare_to_wait_event", hPrepareToWaitEvent)
	register("prepare_to_wait", hPrepareToWait)
	register("prepare_to_wait_exclusive", hPrepareToWait)
	register("finish_wait", hFinishWait)
	register("add_wait_queue", hAddWaitQueue)
	register("add_wait_queue_exclusive", hAddWaitQueue)
	register("remove_wait_queue", hRemoveWaitQueue)
	register("__wake_up", hWakeUp)
	register("__wake_up_sync", hWakeUp)
	register("__wake_up_sync_key", hWakeUp)
	register("__wake_up_locked", hWakeUp)
	register("__wake_up_locked_key", hWakeUp)
	register("autoremove_wake_function", hAutoremoveWakeFunction)
	register("default_wake_function", hDefaultWakeFunction)
	register("woken_wake_function", hWokenWakeFunction)
	register("wait_woken", hWaitWoken)
	register("rcuwait_wake_up", hRcuwaitWakeUp)
	register("complete", hComplete)
	register("complete_all", hComplete)
	register("wait_for_completion", hWaitForCompletion)
	register("wait_for_completion_io", hWaitForCompletion)
	register("wait_for_completion_killable", hWaitForCompletion)
	register("wait_for_completion_interruptible", hWaitForCompletion)
	register("wait_for_completion_timeout", hWaitForCompletion)
	register("wait_for_completion_io_timeout", hWaitForCompletion)
	register("wait_for_completion_interruptible_timeout", hWaitForCompletion)
	register("wait_for_completion_killable_timeout", hWaitForCompletion)
	register("try_wait_for_completion", hTryWaitForCompletion)
	register("completion_done", hCompletionDone)
}

const (
	maxScheduleTimeout = 1<<63 - 1        // MAX_SCHEDULE_TIMEOUT (LONG_MAX): no timeout
	restartSys         = ^uint64(512 - 1) // -ERESTARTSYS: a signal interrupted the wait
	wqFlagExclusive    = 0x01             // WQ_FLAG_EXCLUSIVE
	wqFlagWoken        = 0x02             // WQ_FLAG_WOKEN
	tifSigpending      = 2                // TIF_SIGPENDING in thread_info.flags
)

// errInterrupted ends a wait of the host's task that a signal interrupted.
var errInterrupted = errors.New("interrupted by a signal")

// sleepCurrent sleeps the current task in the state module code (or the wait) set, until woken or
// for timeout jiffies (maxScheduleTimeout: no timeout). It returns the jiffies left (0 when the
// timeout passed). The host's task never sleeps forever (see the package comment above).
func (m *Machine) sleepCurrent(t *Trap, timeout uint64) (uint64, error) {
	if err := m.sleepCheck(t); err != nil {
		return 0, err
	}
	k, cur := m.kernel, m.current()
	state := m.readTaskState(cur)
	if state&taskStateInterruptible != 0 && m.signalPending(cur) {
		m.writeTaskState(cur, taskStateRunning)
		return timeout, nil
	}
	timed := timeout != maxScheduleTimeout && int64(timeout) >= 0
	deadline := k.clock.nsAtJiffies(k.clock.jiffies() + timeout)
	hungAt := k.clock.ns + hungTaskTimeout
	host := cur == m.sched().host
	if host && (!timed || deadline > hungAt) {
		deadline, timed = hungAt, true
	}
	woken, err := m.sleep(deadline, timed)
	m.writeTaskState(cur, taskStateRunning)
	if err != nil {
		return 0, err
	}
	if !woken && host && deadline == hungAt {
		if state&taskStateInterruptible != 0 {
			m.raiseSignal(cur)
			return 0, nil
		}
		return 0, m.hungTask()
	}
	if !timed || !woken {
		return 0, nil
	}
	left := int64(deadline-k.clock.ns) * int64(k.clock.hz) / 1e9
	return uint64(max(left, 1)), nil
}

// hungTask is the hung-task detector's report; the task is then stopped as a soft lockup would be.
func (m *Machine) hungTask() error {
	m.logf(levelErr, "INFO: task %s:%d blocked for more than 120 seconds.", m.comm, m.pid)
	m.logf(levelErr, "      %s %s %s", m.kernelTaint().KernelString(), m.prof.Release, firstWord(m.prof.Version))
	return m.softLockup(0)
}

// hungWait blocks the current task on key (waitOn) in state, with the host task's hung-task timeout.
// errInterrupted: an interruptible wait of the host's task got a signal.
func (m *Machine) hungWait(t *Trap, key uint64, state uint32) error {
	if err := m.sleepCheck(t); err != nil {
		return err
	}
	cur := m.current()
	if cur != m.sched().host {
		_, err := m.waitOn(key, 0, false)
		return err
	}
	if state&taskStateInterruptible != 0 && m.signalPending(cur) {
		return errInterrupted
	}
	woken, err := m.waitOn(key, m.kernel.clock.ns+hungTaskTimeout, true)
	if err != nil || woken {
		return err
	}
	if state&taskStateInterruptible != 0 {
		m.raiseSignal(cur)
		return errInterrupted
	}
	return m.hungTask()
}

// raiseSignal marks a signal pending for t (TIF_SIGPENDING, which signal_pending() reads inline).
func (m *Machine) raiseSignal(t *task) {
	t.signal = true
	m.setThreadFlag(t, tifSigpending, true)
}

// clearSignal drops the host task's pending signal once it is back in user space.
func (m *Machine) clearSignal(t *task) {
	if t.signal {
		t.signal = false
		m.setThreadFlag(t, tifSigpending, false)
	}
}

func (m *Machine) signalPending(t *task) bool { return t.signal }

func (m *Machine) setThreadFlag(t *task, bit uint, on bool) {
	off, ok := m.fieldOffset("task_struct", "thread_info.flags")
	if !ok {
		return
	}
	v, err := m.ReadU64(t.addr + off)
	if err != nil {
		return
	}
	if on {
		v |= 1 << bit
	} else {
		v &^= 1 << bit
	}
	_ = m.WriteU64(t.addr+off, v)
}

// schedule(): sleeps if the current task's state says so, else lets the others run (and, with
// nothing else runnable, a jiffy pass: a task polling with schedule() sees time move).
func hSchedule(m *Machine, t *Trap) (uint64, error) {
	if m.readTaskState(m.current()) == taskStateRunning {
		return hYield(m, t)
	}
	_, err := m.sleepCurrent(t, maxScheduleTimeout)
	return 0, err
}

// yield() and cond_resched(): the other runnable tasks run first; the current one stays runnable.
func hYield(m *Machine, t *Trap) (uint64, error) {
	if err := m.sleepCheck(t); err != nil {
		return 0, err
	}
	s := m.sched()
	before := s.switches.Load()
	if err := m.reschedule(); err != nil {
		return 0, err
	}
	if t.Name == "schedule" && s.switches.Load() == before {
		return 0, m.sleepFor(1e9 / m.kernel.clock.hz)
	}
	return 0, nil
}

// schedule_timeout(timeout) and its state-setting variants: the jiffies left when woken early, 0 when
// the timeout passed. Plain schedule_timeout() in TASK_RUNNING returns at once, as in Linux.
func hScheduleTimeout(m *Machine, t *Trap) (uint64, error) {
	cur := m.current()
	switch t.Name {
	case "schedule_timeout_interruptible":
		m.writeTaskState(cur, taskStateInterruptible)
	case "schedule_timeout_killable", "schedule_timeout_uninterruptible", "io_schedule_timeout":
		m.writeTaskState(cur, taskStateUninterruptible)
	case "schedule_timeout_idle":
		m.writeTaskState(cur, taskStateUninterruptible|taskStateNoLoad)
	}
	timeout := t.Arg(0)
	if m.readTaskState(cur) == taskStateRunning {
		return timeout, nil
	}
	return m.sleepCurrent(t, timeout)
}

// Wait queues in guest memory.

type waitEntry struct{ addr, flags, private, fn, next uint64 }

func (m *Machine) waitQueueList(wq uint64) (uint64, bool) {
	off, ok := m.fieldOffset("wait_queue_head", "head")
	return wq + off, ok
}

func (m *Machine) waitEntryList(entry uint64) (uint64, bool) {
	off, ok := m.fieldOffset("wait_queue_entry", "entry")
	return entry + off, ok
}

func (m *Machine) listInit(head uint64) error {
	if err := m.WriteU64(head, head); err != nil {
		return err
	}
	return m.WriteU64(head+8, head)
}

func (m *Machine) listEmpty(head uint64) (bool, error) {
	next, err := m.ReadU64(head)
	return next == head, err
}

// listAdd links n between prev and next (the kernel's __list_add).
func (m *Machine) listAdd(n, prev, next uint64) error {
	for _, w := range [][2]uint64{{next + 8, n}, {n, next}, {n + 8, prev}, {prev, n}} {
		if err := m.WriteU64(w[0], w[1]); err != nil {
			return err
		}
	}
	return nil
}

// listDelInit unlinks n and points it at itself.
func (m *Machine) listDelInit(n uint64) error {
	next, err := m.ReadU64(n)
	if err != nil {
		return err
	}
	prev, err := m.ReadU64(n + 8)
	if err != nil {
		return err
	}
	if err := m.WriteU64(next+8, prev); err != nil {
		return err
	}
	if err := m.WriteU64(prev, next); err != nil {
		return err
	}
	return m.listInit(n)
}

// __init_waitqueue_head(wq, name, key): an empty list.
func hInitWaitqueueHead(m *Machine, t *Trap) (uint64, error) {
	head, ok := m.waitQueueList(t.Arg(0))
	if !ok {
		return 0, nil
	}
	return 0, m.listInit(head)
}

// init_wait_entry(entry, flags): the current task waits, removed from the queue when woken.
func hInitWaitEntry(m *Machine, t *Trap) (uint64, error) {
	e := t.Arg(0)
	m.setField("wait_queue_entry", "flags", e, 4, t.Arg(1))
	m.setField("wait_queue_entry", "private", e, 8, m.task)
	if s, ok := m.prof.Lookup("autoremove_wake_function"); ok {
		m.setField("wait_queue_entry", "func", e, 8, s.Addr)
	}
	link, ok := m.waitEntryList(e)
	if !ok {
		return 0, nil
	}
	return 0, m.listInit(link)
}

// queueEntry links entry into wq unless it is queued already: exclusive waiters at the tail,
// others at the head, as add_wait_queue(_exclusive) do. It reports whether it linked it.
func (m *Machine) queueEntry(wq, entry uint64, exclusive bool) (bool, error) {
	head, ok1 := m.waitQueueList(wq)
	link, ok2 := m.waitEntryList(entry)
	if !ok1 || !ok2 {
		return false, nil
	}
	if empty, err := m.listEmpty(link); err != nil || !empty {
		return false, err
	}
	if exclusive {
		flags, _ := m.fieldValue32("wait_queue_entry", "flags", entry)
		m.setField("wait_queue_entry", "flags", entry, 4, uint64(flags|wqFlagExclusive))
		prev, err := m.ReadU64(head + 8)
		if err != nil {
			return false, err
		}
		return true, m.listAdd(link, prev, head)
	}
	next, err := m.ReadU64(head)
	if err != nil {
		return false, err
	}
	return true, m.listAdd(link, head, next)
}

func (m *Machine) fieldValue32(name, field string, addr uint64) (uint32, bool) {
	off, ok := m.fieldOffset(name, field)
	if !ok {
		return 0, false
	}
	v, err := m.ReadU32(addr + off)
	return v, err == nil
}

// prepare_to_wait_event(wq, entry, state): queued and in state, or -ERESTARTSYS (dequeued) when a
// signal is pending for an interruptible wait.
func hPrepareToWaitEvent(m *Machine, t *Trap) (uint64, error) {
	wq, entry, state := t.Arg(0), t.Arg(1), uint32(t.Arg(2))
	cur := m.current()
	if state&taskStateInterruptible != 0 && m.signalPending(cur) {
		if link, ok := m.waitEntryList(entry); ok {
			if err := m.listDelInit(link); err != nil {
				return 0, err
			}
		}
		return restartSys, nil
	}
	flags, _ := m.fieldValue32("wait_queue_entry", "flags", entry)
	if _, err := m.queueEntry(wq, entry, flags&wqFlagExclusive != 0); err != nil {
		return 0, err
	}
	m.writeTaskState(cur, state)
	return 0, nil
}

// prepare_to_wait(wq, entry, state) and prepare_to_wait_exclusive (which reports whether the queue
// was empty).
func hPrepareToWait(m *Machine, t *Trap) (uint64, error) {
	exclusive := t.Name == "prepare_to_wait_exclusive"
	wasEmpty, err := m.prepareToWait(t.Arg(0), t.Arg(1), uint32(t.Arg(2)), exclusive)
	if exclusive && wasEmpty {
		return 1, err
	}
	return 0, err
}

// prepareToWait queues entry on wq (unless it is queued already) and puts the current task in state;
// it reports whether the queue was empty before.
func (m *Machine) prepareToWait(wq, entry uint64, state uint32, exclusive bool) (bool, error) {
	head, ok := m.waitQueueList(wq)
	wasEmpty := false
	if ok {
		var err error
		if wasEmpty, err = m.listEmpty(head); err != nil {
			return false, err
		}
	}
	if !exclusive {
		flags, _ := m.fieldValue32("wait_queue_entry", "flags", entry)
		m.setField("wait_queue_entry", "flags", entry, 4, uint64(flags&^wqFlagExclusive))
	}
	if _, err := m.queueEntry(wq, entry, exclusive); err != nil {
		return false, err
	}
	m.writeTaskState(m.current(), state)
	return wasEmpty, nil
}

// finish_wait(wq, entry): TASK_RUNNING and off the queue.
func hFinishWait(m *Machine, t *Trap) (uint64, error) { return 0, m.finishWait(t.Arg(1)) }

func (m *Machine) finishWait(entry uint64) error {
	m.writeTaskState(m.current(), taskStateRunning)
	return m.dequeueEntry(entry)
}

// add_wait_queue(wq, entry) and add_wait_queue_exclusive.
func hAddWaitQueue(m *Machine, t *Trap) (uint64, error) {
	_, err := m.queueEntry(t.Arg(0), t.Arg(1), t.Name == "add_wait_queue_exclusive")
	return 0, err
}

func hRemoveWaitQueue(m *Machine, t *Trap) (uint64, error) { return 0, m.dequeueEntry(t.Arg(1)) }

// dequeueEntry unlinks a wait entry from its queue, if it is on one.
func (m *Machine) dequeueEntry(entry uint64) error {
	link, ok := m.waitEntryList(entry)
	if !ok {
		return nil
	}
	if empty, err := m.listEmpty(link); err != nil || empty {
		return err
	}
	return m.listDelInit(link)
}

// maxWaiters bounds one walk of a wait queue (a corrupted list could be circular without its head).
const maxWaiters = 1 << 16

// __wake_up(wq, mode, nr_exclusive, key) and its variants: each waiter's wake function runs, and the
// walk stops after nr_exclusive exclusive waiters were woken.
func hWakeUp(m *Machine, t *Trap) (uint64, error) {
	key := t.Arg(3)
	if t.Name == "__wake_up_locked" {
		key = 0
	}
	return 0, m.wakeUpQueue(t.Arg(0), uint32(t.Arg(1)), int64(t.Arg(2)), key)
}

// wakeUpQueue is __wake_up(wq, mode, nr_exclusive, key): each waiter's wake function runs, and the
// walk stops after nr_exclusive exclusive waiters were woken (0: no limit).
func (m *Machine) wakeUpQueue(wq uint64, mode uint32, nr int64, key uint64) error {
	head, ok1 := m.waitQueueList(wq)
	linkOff, ok2 := m.fieldOffset("wait_queue_entry", "entry")
	if !ok1 || !ok2 {
		return nil
	}
	link, err := m.ReadU64(head)
	if err != nil {
		return err
	}
	for i := 0; link != head && i < maxWaiters; i++ {
		next, err := m.ReadU64(link)
		if err != nil {
			return err
		}
		entry := link - linkOff
		flags, _ := m.fieldValue32("wait_queue_entry", "flags", entry)
		fn, err := m.structWord("wait_queue_entry", "func", entry)
		if err != nil {
			return err
		}
		ret, err := m.callWakeFunction(fn, entry, uint64(mode), key)
		if err != nil {
			return err
		}
		if int64(int32(ret)) < 0 {
			break
		}
		if ret != 0 && flags&wqFlagExclusive != 0 {
			if nr--; nr == 0 {
				break
			}
		}
		link = next
	}
	return nil
}

// callWakeFunction runs a wait entry's wake function: the kernel's own in Go, a module's on the CPU.
func (m *Machine) callWakeFunction(fn, entry, mode, key uint64) (uint64, error) {
	if h, ok := m.dispatch.byAddr[fn]; ok {
		return h(m, &Trap{Name: "wake function", Addr: fn, regs: [6]uint64{entry, mode, 0, key}, m: m})
	}
	return m.Call(fn, entry, mode, 0, key)
}

// default_wake_function(entry, mode, flags, key): wakes entry->private if its state matches mode.
func hDefaultWakeFunction(m *Machine, t *Trap) (uint64, error) {
	p, err := m.structWord("wait_queue_entry", "private", t.Arg(0))
	if err != nil {
		return 0, err
	}
	return m.wakeUpAddr(p, uint32(t.Arg(1))), nil
}

// autoremove_wake_function: default_wake_function, and a woken entry leaves its queue.
func hAutoremoveWakeFunction(m *Machine, t *Trap) (uint64, error) {
	ret, err := hDefaultWakeFunction(m, t)
	if err != nil || ret == 0 {
		return ret, err
	}
	if link, ok := m.waitEntryList(t.Arg(0)); ok {
		return ret, m.listDelInit(link)
	}
	return ret, nil
}

// woken_wake_function: marks the entry WQ_FLAG_WOKEN, then default_wake_function.
func hWokenWakeFunction(m *Machine, t *Trap) (uint64, error) {
	flags, _ := m.fieldValue32("wait_queue_entry", "flags", t.Arg(0))
	m.setField("wait_queue_entry", "flags", t.Arg(0), 4, uint64(flags|wqFlagWoken))
	return hDefaultWakeFunction(m, t)
}

// wait_woken(wq_entry, mode, timeout): sleeps in mode for timeout jiffies unless the entry was woken
// since the last call (WQ_FLAG_WOKEN, set by woken_wake_function) or the thread is being stopped;
// the flag is consumed. Returns the jiffies left, as schedule_timeout().
func hWaitWoken(m *Machine, t *Trap) (uint64, error) {
	entry, timeout := t.Arg(0), t.Arg(2)
	cur := m.current()
	m.writeTaskState(cur, uint32(t.Arg(1)))
	flags, _ := m.fieldValue32("wait_queue_entry", "flags", entry)
	stopping := cur.thread != nil && cur.thread.shouldStop
	if flags&wqFlagWoken == 0 && !stopping {
		var err error
		if timeout, err = m.sleepCurrent(t, timeout); err != nil {
			return 0, err
		}
	}
	m.writeTaskState(cur, taskStateRunning)
	flags, _ = m.fieldValue32("wait_queue_entry", "flags", entry)
	m.setField("wait_queue_entry", "flags", entry, 4, uint64(flags&^wqFlagWoken))
	return timeout, nil
}

// rcuwait_wake_up(w): wakes the task waiting in rcuwait_wait_event() (w->task, which the inline
// prepare_to_rcuwait set), if any: 1 if it was asleep.
func hRcuwaitWakeUp(m *Machine, t *Trap) (uint64, error) {
	task, err := m.structWord("rcuwait", "task", t.Arg(0))
	if err != nil || task == 0 {
		return 0, err
	}
	return m.wakeUpAddr(task, taskStateNormal), nil
}

// Completions.

// completionDone is the address of completion.done.
func (m *Machine) completionDone(c uint64) (uint64, bool) {
	off, ok := m.fieldOffset("completion", "done")
	return c + off, ok
}

// complete(x): done++ and one waiter woken; complete_all: done saturated, every waiter woken.
func hComplete(m *Machine, t *Trap) (uint64, error) {
	return 0, m.complete(t.Arg(0), t.Name == "complete_all")
}

func (m *Machine) complete(c uint64, all bool) error {
	addr, ok := m.completionDone(c)
	if !ok {
		return nil
	}
	done, err := m.ReadU32(addr)
	if err != nil {
		return err
	}
	switch {
	case all:
		done = ^uint32(0)
	case done != ^uint32(0):
		done++
	}
	if err := m.WriteU32(addr, done); err != nil {
		return err
	}
	if waiters := m.sched().waiters[c]; len(waiters) > 0 {
		if all {
			m.wakeWaiters(c)
		} else {
			m.wake(waiters[0])
		}
	}
	return nil
}

// takeCompletion consumes one completion if there is one.
func (m *Machine) takeCompletion(c uint64) (bool, error) {
	addr, ok := m.completionDone(c)
	if !ok {
		return true, nil
	}
	done, err := m.ReadU32(addr)
	if err != nil || done == 0 {
		return false, err
	}
	if done != ^uint32(0) {
		done--
	}
	return true, m.WriteU32(addr, done)
}

// wait_for_completion*(x[, timeout]): waits until x is completed. The timeout variants return the
// jiffies left (at least 1) or 0 on timeout; the interruptible and killable ones -ERESTARTSYS when
// interrupted; the plain ones nothing (a host task that waits forever is a hung task).
func hWaitForCompletion(m *Machine, t *Trap) (uint64, error) {
	c := t.Arg(0)
	interruptible := t.Name != "wait_for_completion" && t.Name != "wait_for_completion_io" &&
		t.Name != "wait_for_completion_timeout" && t.Name != "wait_for_completion_io_timeout"
	withTimeout := len(t.Name) > len("_timeout") && t.Name[len(t.Name)-len("_timeout"):] == "_timeout"
	state := uint32(taskStateUninterruptible)
	if interruptible {
		state = taskStateInterruptible
	}
	k := m.kernel
	timeout := uint64(maxScheduleTimeout)
	if withTimeout {
		timeout = t.Arg(1)
	}
	deadline := k.clock.nsAtJiffies(k.clock.jiffies() + timeout)
	for {
		ok, err := m.takeCompletion(c)
		if err != nil {
			return 0, err
		}
		if ok {
			if !withTimeout {
				return 0, nil
			}
			left := int64(deadline-k.clock.ns) * int64(k.clock.hz) / 1e9
			return uint64(max(left, 1)), nil
		}
		if withTimeout && k.clock.ns >= deadline {
			return 0, nil
		}
		var werr error
		if withTimeout && timeout != maxScheduleTimeout {
			if err := m.sleepCheck(t); err != nil {
				return 0, err
			}
			if interruptible && m.signalPending(m.current()) {
				werr = errInterrupted
			} else {
				_, werr = m.waitOn(c, deadline, true)
			}
		} else {
			werr = m.hungWait(t, c, state)
		}
		if errors.Is(werr, errInterrupted) {
			return restartSys, nil
		}
		if werr != nil {
			return 0, werr
		}
	}
}

// waitForCompletion is wait_for_completion(x) as the kernel's own code uses it: uninterruptible, no
// timeout (a host task that waits forever is a hung task).
func (m *Machine) waitForCompletion(t *Trap, c uint64) error {
	for {
		ok, err := m.takeCompletion(c)
		if err != nil || ok {
			return err
		}
		if err := m.hungWait(t, c, taskStateUninterruptible); err != nil {
			return err
		}
	}
}

// initCompletion is init_completion(x): nothing done, no waiter.
func (m *Machine) initCompletion(c uint64) error {
	addr, ok := m.completionDone(c)
	if !ok {
		return nil
	}
	if err := m.WriteU32(addr, 0); err != nil {
		return err
	}
	if off, ok := m.fieldOffset("completion", "wait.task_list"); ok {
		return m.listInit(c + off)
	}
	return nil
}

// try_wait_for_completion(x): takes a completion without waiting.
func hTryWaitForCompletion(m *Machine, t *Trap) (uint64, error) {
	ok, err := m.takeCompletion(t.Arg(0))
	if ok {
		return 1, err
	}
	return 0, err
}

// completion_done(x): whether a completion is available.
func hCompletionDone(m *Machine, t *Trap) (uint64, error) {
	addr, ok := m.completionDone(t.Arg(0))
	if !ok {
		return 1, nil
	}
	done, err := m.ReadU32(addr)
	if done != 0 {
		return 1, err
	}
	return 0, err
}

// maxTrapFrame is how much of the trapped caller's stack a kernel function may use for its own
// objects: nested calls from a handler start 256 bytes below the stack pointer of the trap (run.go).
const maxTrapFrame = 192

// trapFrame reserves size bytes on the stack of the guest code that called the kernel function t,
// just below its return address, for what the kernel function keeps in its own frame and links into
// guest lists (DEFINE_WAIT_BIT's entry, a flush work item, a wake-up key). The frame is zeroed and
// lives until the handler returns. It needs a real trap: the handler must run on the caller's stack.
func (m *Machine) trapFrame(t *Trap, size uint64) (uint64, error) {
	if size > maxTrapFrame {
		return 0, fmt.Errorf("%s: %d bytes of stack frame, at most %d", t.Name, size, maxTrapFrame)
	}
	if m.depth == 0 || m.reg(uc.X86_REG_RSP) != t.rsp {
		return 0, fmt.Errorf("%s: no guest stack under the call (not called from guest code)", t.Name)
	}
	frame := (t.rsp - size) &^ 15
	return frame, m.WriteAt(make([]byte, size), frame)
}
