package machine

import (
	"errors"
	"fmt"
	"sort"
	"sync/atomic"

	uc "github.com/unicorn-engine/unicorn/bindings/go/unicorn"
)

// The scheduler. The machine has one CPU and runs one task on it at a time, cooperatively, as a
// non-preemptible kernel does: a task keeps the CPU until it sleeps, blocks or exits. The tasks are
// the host's (insmod, or the user process the session runs as: it enters the kernel through Call)
// and the modules' kernel threads (kthread.go).
//
// Each task has a Go goroutine that stands for its kernel stack of Go frames (handlers that block sit
// in the middle of a run loop); exactly one goroutine holds the CPU, and switching hands it over
// through a channel after saving the Unicorn context and the machine's per-task state (current task,
// stack, pid, comm, call depth). Switches happen only inside kernel functions, never in guest code,
// so guest memory and the CPU see one sequential execution, as on a uniprocessor.
//
// When the task giving up the CPU finds nothing runnable, it does the idle task's job on its own
// goroutine: it runs queued work, or moves virtual time to the next event (a timer expiry or the
// end of a timed sleep), fires due timers in softirq context and wakes the sleepers. Time therefore
// only passes when every task sleeps, as on an idle machine. The host's task has no goroutine of its
// own: it is whoever calls the Machine, and when it returns to the host (the end of an outermost
// Call) the runnable kernel threads run until they all sleep again (settle), as they would on return
// to user space.

// taskState is the scheduler's view of a task.
type taskState int

const (
	taskRunnable taskState = iota // on the CPU or waiting for it
	taskBlocked                   // asleep in schedule(): until woken, or its deadline when timed
	taskDead                      // exited (a kthread's function returned, or it oopsed)
)

// The task states of task_struct.__state that kemu reads and writes.
const (
	taskStateRunning         = 0x0
	taskStateInterruptible   = 0x1
	taskStateUninterruptible = 0x2
	taskStateNormal          = taskStateInterruptible | taskStateUninterruptible // TASK_NORMAL: what wake_up() wakes
	taskStateParked          = 0x40
	taskStateNoLoad          = 0x400 // TASK_NOLOAD: TASK_IDLE is TASK_UNINTERRUPTIBLE|TASK_NOLOAD
)

// hungTaskTimeout is the hung-task detector's default (kernel.hung_task_timeout_secs = 120): a
// task that sleeps that long uninterruptibly with nothing left that can wake it is reported.
const hungTaskTimeout = 120e9

// task is one schedulable task.
type task struct {
	pid  int
	comm string

	addr     uint64 // its task_struct
	stackTop uint64 // top of its kernel stack

	state    taskState
	deadline uint64 // taskBlocked with timed: the virtual time at which the sleep ends
	timed    bool
	timedOut bool // the last sleep ended at its deadline, not by a wake-up
	hung     bool // the last sleep ended because nothing could ever wake it
	signal   bool // a signal is pending (the host's task, interrupted after waiting too long)

	// What the machine holds for the task while it is off the CPU.
	ctx       uc.Context
	depth     int
	softirq   bool
	spinDepth int

	resume  chan struct{} // the CPU is handed over on it
	started bool          // its goroutine exists (kthreads start on their first switch-in)
	thread  *kthread      // nil for the host's task
}

// scheduler is the run queue and the tasks it knows.
type scheduler struct {
	host  *task   // the host's task (insmod, the user process)
	cur   *task   // the task on the CPU
	tasks []*task // every task, the host's first, in creation order (round-robin order)

	nextPid  int
	switches atomic.Uint64 // context switches and sleeps so far: the watchdog's sign of progress
	// The run loop's account for its monitor goroutine (run.go): guest runs started, and whether one
	// is under way.
	runs      atomic.Uint64
	inGuest   atomic.Bool
	ticks     tickState
	monitored bool // a monitor is watching the CPU (one at a time)
	events    int  // idle events (work items, timer expiries) left before idling gives up
	waiters   map[uint64][]*task
}

// nextThreadPid is the pid of the first kernel thread: after insmod (1000) and the user process (1001).
const nextThreadPid = 1002

// sched is the machine's scheduler, with the host's task set up on first use.
func (m *Machine) sched() *scheduler {
	s := &m.kernel.sched
	if s.host == nil {
		s.host = &task{pid: m.pid, comm: m.comm, addr: m.task, stackTop: m.stackTop, started: true,
			resume: make(chan struct{})}
		s.cur = s.host
		s.tasks = []*task{s.host}
		s.nextPid = nextThreadPid
		s.waiters = map[uint64][]*task{}
		s.events = maxIdleEvents
	}
	return s
}

// current is the task on the CPU.
func (m *Machine) current() *task { return m.sched().cur }

// errNothingToRun is what a sleep ends with when no event can ever wake the sleeper.
var errNothingToRun = errors.New("no task runnable and no event pending")

// switchOut saves what the machine holds for the task on the CPU.
func (m *Machine) switchOut(t *task) error {
	ctx, err := m.cpu.ContextSave(nil) // the binding cannot reuse a context: it sets its finalizer again
	if err != nil {
		return fmt.Errorf("switch from %s/%d: save CPU state: %w", t.comm, t.pid, err)
	}
	t.ctx = ctx
	t.addr, t.stackTop, t.pid, t.comm, t.depth = m.task, m.stackTop, m.pid, m.comm, m.depth
	t.softirq, t.spinDepth = m.kernel.softirq, m.kernel.spinDepth
	return nil
}

// switchIn gives the CPU state of t to the machine.
func (m *Machine) switchIn(t *task) error {
	m.task, m.stackTop, m.pid, m.comm, m.depth = t.addr, t.stackTop, t.pid, t.comm, t.depth
	m.kernel.softirq, m.kernel.spinDepth = t.softirq, t.spinDepth
	if err := m.setPerCPU("current_task", 8, t.addr); err != nil {
		return err
	}
	if err := m.setPerCPU("cpu_current_top_of_stack", 8, t.stackTop); err != nil {
		return err
	}
	if t.ctx != nil {
		if err := m.cpu.ContextRestore(t.ctx); err != nil {
			return fmt.Errorf("switch to %s/%d: restore CPU state: %w", t.comm, t.pid, err)
		}
	}
	return nil
}

// switchTo hands the CPU from the current task to next and returns when the current task has it
// again (at once if the current task is dead: its goroutine then ends).
func (m *Machine) switchTo(next *task) error {
	s := m.sched()
	cur := s.cur
	if err := m.switchOut(cur); err != nil {
		return err
	}
	if err := m.switchIn(next); err != nil {
		return err
	}
	s.cur = next
	s.switches.Add(1)
	if !next.started {
		next.started = true
		go m.threadMain(next)
	} else {
		next.resume <- struct{}{}
	}
	if cur.state == taskDead {
		return nil
	}
	<-cur.resume
	return nil
}

// pickNext is the runnable task that runs after cur: round robin from the task after cur, cur
// itself last. nil when nothing is runnable.
func (s *scheduler) pickNext(cur *task) *task {
	at := 0
	for i, t := range s.tasks {
		if t == cur {
			at = i
		}
	}
	for i := 1; i <= len(s.tasks); i++ {
		if t := s.tasks[(at+i)%len(s.tasks)]; t.state == taskRunnable {
			return t
		}
	}
	return nil
}

// reschedule gives up the CPU: other runnable tasks run, and when none is, this goroutine idles for
// the machine (work, timers, time). It returns once the current task is running again; the task's
// state says why (woken, timed out). errNothingToRun means the current task can never be woken.
func (m *Machine) reschedule() error {
	s := m.sched()
	cur := s.cur
	for {
		if m.dead {
			if cur != s.host {
				// The machine halted under a kernel thread: the host's task gets the CPU back.
				s.host.state, s.host.hung = taskRunnable, true
				_ = m.switchTo(s.host)
			}
			return errMachineHalted
		}
		next := s.pickNext(cur)
		if next == cur {
			return nil
		}
		if next != nil {
			return m.switchTo(next)
		}
		progressed, err := m.idleStep()
		if err != nil {
			return err
		}
		if !progressed {
			if cur == s.host || s.host.state != taskBlocked {
				return errNothingToRun
			}
			// Nothing can ever wake anyone: the host's task learns it from its own sleep.
			s.host.state, s.host.hung = taskRunnable, true
		}
	}
}

// sleep blocks the current task until it is woken (wake) or, when timed, until virtual time
// reaches deadline. It reports whether the sleep ended by a wake-up.
func (m *Machine) sleep(deadline uint64, timed bool) (woken bool, err error) {
	s := m.sched()
	cur := s.cur
	s.switches.Add(1)
	cur.state, cur.deadline, cur.timed, cur.timedOut, cur.hung = taskBlocked, deadline, timed, false, false
	err = m.reschedule()
	if cur.state == taskBlocked { // errNothingToRun or a halted machine: it never got its wake-up
		cur.state = taskRunnable
	}
	if err != nil {
		return false, err
	}
	if m.dead {
		return false, errMachineHalted
	}
	if cur.hung {
		return false, errNothingToRun
	}
	return !cur.timedOut, nil
}

// sleepFor lets ns of virtual time pass for the current task, which sleeps meanwhile (others run).
func (m *Machine) sleepFor(ns uint64) error {
	_, err := m.sleep(m.kernel.clock.ns+ns, true)
	return err
}

// wake makes a sleeping task runnable (try_to_wake_up): it reports whether the task was asleep.
func (m *Machine) wake(t *task) bool {
	if t.state != taskBlocked {
		return false
	}
	t.state = taskRunnable
	return true
}

// settle lets every runnable kernel thread run until all of them sleep again, the host's task
// staying runnable: what happens when it returns to user space. Time does not pass.
func (m *Machine) settle() error {
	s := m.sched()
	if len(s.tasks) == 1 || s.cur != s.host || s.host.state != taskRunnable {
		return nil // no threads, or the host's task is asleep (its idling runs them)
	}
	for range maxSettleRounds {
		others := false
		for _, t := range s.tasks {
			others = others || (t != s.host && t.state == taskRunnable)
		}
		if !others || m.dead {
			return nil
		}
		if err := m.reschedule(); err != nil {
			return err
		}
	}
	return nil
}

// maxSettleRounds bounds the yields of one settle: threads that keep waking one another (without
// ever sleeping in time) would otherwise never let the host's task go on.
const maxSettleRounds = 100000

// idleStep is one step of the idle task: run a queued work item, or move virtual time to the next
// event and fire the timers and end the sleeps that are due then. It reports whether anything
// happened; false means no event will ever come.
func (m *Machine) idleStep() (bool, error) {
	k, s := m.kernel, m.sched()
	if len(k.work) > 0 && s.events > 0 {
		w := k.work[0]
		k.work = k.work[1:]
		s.events--
		if err := m.in(kworker, func() error { return m.runWork(w) }); err != nil && !isTaskDeath(err) {
			return true, err
		}
		return true, nil
	}
	at, ok := m.nextEvent()
	if !ok {
		return false, nil
	}
	if at > k.clock.ns {
		if err := k.advance(at - k.clock.ns); err != nil {
			return true, err
		}
	}
	if _, err := m.runDueTimers(); err != nil {
		return true, err
	}
	for _, t := range s.tasks {
		if t.state == taskBlocked && t.timed && t.deadline <= k.clock.ns {
			t.state, t.timedOut = taskRunnable, true
		}
	}
	return true, nil
}

// nextEvent is the virtual time of the next thing that can wake a task: a timer expiry or the end of
// a timed sleep.
func (m *Machine) nextEvent() (uint64, bool) {
	k, s := m.kernel, m.sched()
	var at uint64
	found := false
	if _, expires, ok := k.nextTimer(); ok && s.events > 0 {
		at, found = k.clock.nsAtJiffies(expires), true
	}
	for _, t := range s.tasks {
		if t.state == taskBlocked && t.timed && (!found || t.deadline < at) {
			at, found = max(t.deadline, k.clock.ns), true
		}
	}
	return at, found
}

// taskByAddr is the task whose task_struct is at addr.
func (m *Machine) taskByAddr(addr uint64) *task {
	s := m.sched()
	if addr == m.task {
		return s.cur
	}
	for _, t := range s.tasks {
		if t.addr == addr && t != s.cur {
			return t
		}
	}
	return nil
}

// taskState reads a task's __state word (set_current_state writes it inline).
func (m *Machine) readTaskState(t *task) uint32 {
	off, ok := m.fieldOffset("task_struct", "__state")
	if !ok {
		return taskStateRunning
	}
	v, _ := m.ReadU32(t.addr + off)
	return v
}

func (m *Machine) writeTaskState(t *task, state uint32) {
	m.setField("task_struct", "__state", t.addr, 4, uint64(state))
}

// wakeUpState is try_to_wake_up(p, state): a task whose __state matches state becomes
// TASK_RUNNING, and runnable if it was asleep. It reports whether the task's state matched.
func (m *Machine) wakeUpState(t *task, state uint32) bool {
	if t.state == taskDead || m.readTaskState(t)&state == 0 {
		return false
	}
	m.writeTaskState(t, taskStateRunning)
	m.wake(t)
	return true
}

// waitOn blocks the current task until wakeWaiters(key) or the deadline; the key is any address
// (a completion, an exiting thread).
func (m *Machine) waitOn(key uint64, deadline uint64, timed bool) (woken bool, err error) {
	s := m.sched()
	s.waiters[key] = append(s.waiters[key], s.cur)
	defer m.forgetWaiter(key, s.cur)
	return m.sleep(deadline, timed)
}

func (m *Machine) forgetWaiter(key uint64, t *task) {
	s := m.sched()
	list := s.waiters[key]
	for i, w := range list {
		if w == t {
			list = append(list[:i:i], list[i+1:]...)
			break
		}
	}
	if len(list) == 0 {
		delete(s.waiters, key)
	} else {
		s.waiters[key] = list
	}
}

// wakeWaiters wakes every task in waitOn(key).
func (m *Machine) wakeWaiters(key uint64) {
	for _, t := range m.sched().waiters[key] {
		m.wake(t)
	}
}

// Thread is one kernel thread a module created, as ps lists it.
type Thread struct {
	PID    int    `json:"pid"`
	Comm   string `json:"comm"`
	State  string `json:"state"`  // ps's letter: R running or runnable, S sleeping, D uninterruptible, I idle, X dead
	Module string `json:"module"` // the module whose function the thread runs
	Func   string `json:"func"`   // module:function of the thread function
}

// Threads lists the kernel threads modules created that have not exited, by pid.
func (m *Machine) Threads() []Thread {
	var out []Thread
	for _, t := range m.sched().tasks {
		if t.thread == nil || t.state == taskDead {
			continue
		}
		out = append(out, Thread{PID: t.pid, Comm: t.comm, State: m.psState(t), Module: t.thread.module,
			Func: m.describe(t.thread.fn)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].PID < out[j].PID })
	return out
}

// psState is the state letter ps shows for a task.
func (m *Machine) psState(t *task) string {
	if t.state == taskDead {
		return "X"
	}
	if t.state == taskRunnable {
		return "R"
	}
	st := m.readTaskState(t)
	switch {
	case st&taskStateParked != 0:
		return "P"
	case st&taskStateUninterruptible != 0 && st&taskStateNoLoad != 0:
		return "I"
	case st&taskStateUninterruptible != 0:
		return "D"
	}
	return "S"
}
