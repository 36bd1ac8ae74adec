package machine

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
)

// Timers and workqueues over virtual time. Module code arms timers and queues work; queued work runs
// when the CPU idles (every task asleep: sched.go's idle step, or Idle), in a kworker's context, and
// timers fire when virtual time reaches their expiry (the idle task moving time to it, or a tick of a
// busy task: sched_time.go), in softirq context on the idle task.

func init() {
	register("init_timer_key", hInitTimerKey)
	register("mod_timer", hModTimer)
	register("add_timer", hAddTimer)
	register("del_timer", hDelTimer)
	register("del_timer_sync", hDelTimer)
	register("timer_delete", hDelTimer)
	register("timer_delete_sync", hDelTimer)
	register("queue_work_on", hQueueWorkOn)
	register("cancel_work_sync", hCancelWork)
	register("cancel_work", hCancelWork)
	register("flush_work", hFlushWork)
	register("__flush_workqueue", hFlushWorkqueue)
	register("flush_workqueue", hFlushWorkqueue)
	register("queue_delayed_work_on", hQueueDelayedWorkOn)
	register("mod_delayed_work_on", hQueueDelayedWorkOn)
	register("cancel_delayed_work", hCancelDelayedWork)
	register("cancel_delayed_work_sync", hCancelDelayedWork)
	register("flush_delayed_work", hFlushDelayedWork)
	register("drain_workqueue", hFlushWorkqueue) // one queue: flushing runs what work queues meanwhile too
	register("delayed_work_timer_fn", hDelayedWorkTimerFn)
	register("round_jiffies", hRoundJiffies)
	register("__round_jiffies", hRoundJiffies)
	register("round_jiffies_relative", hRoundJiffies)
	register("__round_jiffies_relative", hRoundJiffies)
	register("round_jiffies_up", hRoundJiffies)
	register("__round_jiffies_up", hRoundJiffies)
	register("round_jiffies_up_relative", hRoundJiffies)
	register("__round_jiffies_up_relative", hRoundJiffies)
	register("alloc_workqueue", hNewObject("workqueue_struct"))
	register("destroy_workqueue", hDestroyWorkqueue)
}

// The workqueues every kernel has, published as pointers in their data symbols.
var systemWorkqueues = []string{
	"system_wq", "system_highpri_wq", "system_long_wq", "system_unbound_wq", "system_freezable_wq",
	"system_power_efficient_wq", "system_freezable_power_efficient_wq",
}

// initWorkqueues creates the system workqueues.
func (k *kernelState) initWorkqueues() error {
	k.timers = map[uint64]uint64{}
	k.delayed = map[uint64]bool{}
	for _, name := range systemWorkqueues {
		size, ok := k.m.structSize("workqueue_struct")
		if !ok {
			size = 512
		}
		p, err := k.kzalloc(size)
		if err != nil {
			return err
		}
		if err := k.m.setKernelWord(name, p); err != nil {
			return err
		}
	}
	return nil
}

// structWord reads a 64-bit field of a kernel struct in guest memory.
func (m *Machine) structWord(name, field string, addr uint64) (uint64, error) {
	off, ok := m.fieldOffset(name, field)
	if !ok {
		return 0, fmt.Errorf("struct %s has no known field %s (no BTF)", name, field)
	}
	return m.ReadU64(addr + off)
}

// init_timer_key(timer, func, flags, name, key).
func hInitTimerKey(m *Machine, t *Trap) (uint64, error) {
	m.setField("timer_list", "function", t.Arg(0), 8, t.Arg(1))
	m.setField("timer_list", "flags", t.Arg(0), 4, t.Arg(2))
	m.setField("timer_list", "entry.pprev", t.Arg(0), 8, 0)
	delete(m.kernel.timers, t.Arg(0))
	return 0, nil
}

// mod_timer(timer, expires): returns whether the timer was pending.
func hModTimer(m *Machine, t *Trap) (uint64, error) {
	_, pending := m.kernel.timers[t.Arg(0)]
	m.kernel.timers[t.Arg(0)] = t.Arg(1)
	m.setField("timer_list", "expires", t.Arg(0), 8, t.Arg(1))
	if pending {
		return 1, nil
	}
	return 0, nil
}

// add_timer(timer): arm at timer->expires.
func hAddTimer(m *Machine, t *Trap) (uint64, error) {
	exp, err := m.structWord("timer_list", "expires", t.Arg(0))
	if err != nil {
		return 0, err
	}
	m.kernel.timers[t.Arg(0)] = exp
	return 0, nil
}

func hDelTimer(m *Machine, t *Trap) (uint64, error) {
	if _, pending := m.kernel.timers[t.Arg(0)]; pending {
		delete(m.kernel.timers, t.Arg(0))
		return 1, nil
	}
	return 0, nil
}

// queue_delayed_work_on(cpu, wq, dwork, delay): the work (at the start of struct delayed_work) is
// queued once delay jiffies have passed; with no delay at once. mod_delayed_work_on re-arms.
func hQueueDelayedWorkOn(m *Machine, t *Trap) (uint64, error) {
	k, dwork, delay := m.kernel, t.Arg(2), t.Arg(3)
	_, armed := k.timers[dwork]
	if armed && t.Name == "queue_delayed_work_on" {
		return 0, nil
	}
	if delay == 0 {
		delete(k.timers, dwork)
		delete(k.delayed, dwork)
		return hQueueWorkOn(m, t)
	}
	k.timers[dwork] = k.clock.jiffies() + delay
	k.delayed[dwork] = true
	if t.Name == "mod_delayed_work_on" && !armed {
		return 0, nil // mod_delayed_work_on: false when the work was idle
	}
	return 1, nil
}

// flush_delayed_work(dwork): a work still waiting for its delay is queued now, then flush_work: true
// if it ran.
func hFlushDelayedWork(m *Machine, t *Trap) (uint64, error) {
	k, dwork := m.kernel, t.Arg(0)
	if _, armed := k.timers[dwork]; armed && k.delayed[dwork] {
		delete(k.timers, dwork)
		delete(k.delayed, dwork)
		if !slices.Contains(k.work, dwork) {
			k.work = append(k.work, dwork)
		}
	}
	return hFlushWork(m, t)
}

// delayed_work_timer_fn(timer): the timer of a delayed_work fired (module code armed it itself): its
// work joins the queue.
func hDelayedWorkTimerFn(m *Machine, t *Trap) (uint64, error) {
	off, ok := m.fieldOffset("delayed_work", "timer")
	if !ok {
		return 0, fmt.Errorf("struct delayed_work has no known field timer (no BTF)")
	}
	if work := t.Arg(0) - off; !slices.Contains(m.kernel.work, work) {
		m.kernel.work = append(m.kernel.work, work)
	}
	return 0, nil
}

// round_jiffies(j) and its variants: j rounded to a whole second (HZ jiffies), down when it is less than
// a quarter second past one (never for the _up forms), unless that is not in the future; the _relative
// forms round jiffies+j and return the delta. The __ forms name the CPU, whose timers the kernel skews
// by 3 jiffies per CPU number; the others run on CPU 0, which has no skew.
func hRoundJiffies(m *Machine, t *Trap) (uint64, error) {
	now, hz := m.kernel.clock.jiffies(), m.kernel.clock.hz
	relative := strings.HasSuffix(t.Name, "_relative")
	up := strings.Contains(t.Name, "_up")
	skew := uint64(0)
	if strings.HasPrefix(t.Name, "__") {
		skew = uint64(int64(int32(t.Arg(1)))) * 3
	}
	original := t.Arg(0)
	if relative {
		original += now
	}
	j := original + skew
	if rem := j % hz; rem < hz/4 && !up {
		j -= rem
	} else {
		j += hz - rem
	}
	j -= skew
	if int64(j-now) <= 0 { // not after jiffies: the original stays
		j = original
	}
	if relative {
		j -= now
	}
	return j, nil
}

func hCancelDelayedWork(m *Machine, t *Trap) (uint64, error) {
	k, dwork := m.kernel, t.Arg(0)
	_, armed := k.timers[dwork]
	delete(k.timers, dwork)
	delete(k.delayed, dwork)
	if k.dequeueWork(dwork) || armed {
		return 1, nil
	}
	return 0, nil
}

// queue_work_on(cpu, wq, work): false when the work is already pending.
func hQueueWorkOn(m *Machine, t *Trap) (uint64, error) {
	work := t.Arg(2)
	for _, w := range m.kernel.work {
		if w == work {
			return 0, nil
		}
	}
	m.kernel.work = append(m.kernel.work, work)
	return 1, nil
}

func (k *kernelState) dequeueWork(work uint64) bool {
	for i, w := range k.work {
		if w == work {
			k.work = append(k.work[:i:i], k.work[i+1:]...)
			return true
		}
	}
	return false
}

func hCancelWork(m *Machine, t *Trap) (uint64, error) {
	if m.kernel.dequeueWork(t.Arg(0)) {
		return 1, nil
	}
	return 0, nil
}

// flush_work(work): run it now if pending.
func hFlushWork(m *Machine, t *Trap) (uint64, error) {
	if !m.kernel.dequeueWork(t.Arg(0)) {
		return 0, nil
	}
	return 1, m.runWork(t.Arg(0))
}

func hFlushWorkqueue(m *Machine, t *Trap) (uint64, error) {
	for len(m.kernel.work) > 0 {
		w := m.kernel.work[0]
		m.kernel.work = m.kernel.work[1:]
		if err := m.runWork(w); err != nil {
			return 0, err
		}
	}
	return 0, nil
}

// destroy_workqueue(wq): drain it, then free it.
func hDestroyWorkqueue(m *Machine, t *Trap) (uint64, error) {
	if _, err := hFlushWorkqueue(m, t); err != nil {
		return 0, err
	}
	return 0, m.releaseObject(t.Arg(0), t.caller())
}

func (m *Machine) runWork(work uint64) error {
	fn, err := m.structWord("work_struct", "func", work)
	if err != nil {
		return err
	}
	_, err = m.Call(fn, work)
	return err
}

// Contexts asynchronous module code runs in.
type taskContext struct {
	pid  int
	comm string
}

var (
	kworker  = taskContext{pid: 8, comm: "kworker/0:1"}
	idleTask = taskContext{pid: 0, comm: "swapper/0"}
)

// in runs fn as task ctx (what oopses report as Comm and PID).
func (m *Machine) in(ctx taskContext, fn func() error) error {
	pid, comm := m.pid, m.comm
	m.pid, m.comm = ctx.pid, ctx.comm
	defer func() { m.pid, m.comm = pid, comm }()
	return fn()
}

// inSoftirq runs fn as timer callbacks run: in softirq context, where sleeping is a bug and call
// traces show the IRQ stack.
func (m *Machine) inSoftirq(fn func() error) error {
	m.kernel.softirq = true
	defer func() { m.kernel.softirq = false }()
	return fn()
}

// maxIdleEvents bounds the work items and timer expiries the idle task runs for one outermost call
// or one Idle (a timer that re-arms itself forever would otherwise keep it busy one jiffy at a time).
const maxIdleEvents = 100000

// Idle lets virtual time pass for ns nanoseconds while the host's task sleeps: kernel threads run,
// queued work runs, timers fire in expiry order and sleepers wake as their times come (sched.go).
// An oops in a work item, timer or thread is reported and the machine goes on; Idle returns the
// number of work items and timer expiries run.
func (m *Machine) Idle(ns uint64) (int, error) {
	s := m.sched()
	if m.dead {
		return 0, errMachineHalted
	}
	stop := m.startWatchdog()
	defer stop()
	s.events = maxIdleEvents
	if _, err := m.sleep(m.kernel.clock.ns+ns, true); err != nil && !errors.Is(err, errMachineHalted) {
		return maxIdleEvents - s.events, err
	}
	// What became due at the deadline runs too: threads woken then, and the work they queued.
	for !m.dead {
		if err := m.settle(); err != nil {
			return maxIdleEvents - s.events, err
		}
		if len(m.kernel.work) == 0 || s.events <= 0 {
			break
		}
		if _, err := m.idleStep(); err != nil {
			return maxIdleEvents - s.events, err
		}
	}
	return maxIdleEvents - s.events, nil
}

// runDueTimers is the timer softirq: every timer whose expiry has come runs, in expiry order, in
// softirq context on the idle task (delayed work joins its queue instead). It returns how many ran.
func (m *Machine) runDueTimers() (int, error) {
	k, s := m.kernel, m.sched()
	n := 0
	for s.events > 0 && !m.dead {
		timer, expires, ok := k.nextTimer()
		if !ok || int64(expires-k.clock.jiffies()) > 0 {
			break
		}
		delete(k.timers, timer)
		s.events--
		n++
		if k.delayed[timer] {
			// delayed_work_timer_fn: the delay is over, the work joins its queue.
			delete(k.delayed, timer)
			k.work = append(k.work, timer)
			continue
		}
		fn, err := m.structWord("timer_list", "function", timer)
		if err != nil {
			return n, err
		}
		if err := m.in(idleTask, func() error { return m.inSoftirq(func() error { _, err := m.Call(fn, timer); return err }) }); err != nil && !isTaskDeath(err) {
			return n, err
		}
	}
	return n, nil
}

func isTaskDeath(err error) bool { return errors.Is(err, errTaskDied) }

// nextTimer is the pending timer that expires first (ties by address, for determinism).
func (k *kernelState) nextTimer() (timer, expires uint64, ok bool) {
	addrs := make([]uint64, 0, len(k.timers))
	for a := range k.timers {
		addrs = append(addrs, a)
	}
	sort.Slice(addrs, func(i, j int) bool { return addrs[i] < addrs[j] })
	for _, a := range addrs {
		e := k.timers[a]
		if !ok || int64(e-expires) < 0 {
			timer, expires, ok = a, e, true
		}
	}
	return
}

// nsAtJiffies is the first virtual time at which jiffies reaches j (jiffies compare with wrap).
func (c clock) nsAtJiffies(j uint64) uint64 {
	now := c.jiffies()
	if int64(j-now) <= 0 {
		return c.ns
	}
	return (c.ns*c.hz/1e9 + (j - now)) * 1e9 / c.hz
}
