package machine

import (
	"errors"
	"fmt"
	"syscall"

	uc "github.com/unicorn-engine/unicorn/bindings/go/unicorn"
)

// Kernel threads (kernel/kthread.c). kthread_create_on_node gives a thread its task_struct and a
// vmalloc'd stack and leaves it asleep, as the kernel does; the first wake-up starts its function on
// its own stack, and the scheduler (sched.go) runs it whenever the other tasks sleep. kthread_stop
// sets the should-stop flag, wakes the thread and waits for it to exit, returning its exit code. A
// thread still running when its module is gone runs freed code the next time it is scheduled, and
// oopses there as in Linux: modules must stop their threads in their exit functions.

func init() {
	register("kthread_create_on_node", hKthreadCreateOnNode)
	register("wake_up_process", hWakeUpProcess)
	register("wake_up_state", hWakeUpState)
	register("kthread_stop", hKthreadStop)
	register("kthread_should_stop", hKthreadShouldStop)
	register("kthread_should_park", hKthreadShouldPark)
	register("kthread_park", hKthreadPark)
	register("kthread_unpark", hKthreadUnpark)
	register("kthread_parkme", hKthreadParkme)
	register("kthread_data", hKthreadData)
	register("kthread_func", hKthreadFunc)
	register("kthread_exit", hKthreadExit)
	register("do_exit", hKthreadExit)
	register("kthread_complete_and_exit", hKthreadCompleteAndExit)
	register("__module_put_and_kthread_exit", hModulePutAndKthreadExit)
	register("kthread_freezable_should_stop", hKthreadFreezableShouldStop)
	// One CPU and cooperative scheduling: affinity, nice levels and scheduling classes change nothing.
	register("kthread_bind", hNop)
	register("kthread_bind_mask", hNop)
	register("set_user_nice", hNop)
	register("sched_set_fifo", hNop)
	register("sched_set_fifo_low", hNop)
	register("sched_set_normal", hNop)
	register("set_cpus_allowed_ptr", hZero)
	register("__put_task_struct", hNop)
	// The freezer only acts on suspend, which never happens here.
	register("set_freezable", hNop)
	register("freezing_slow_path", hZero)
	register("__refrigerator", hZero)
}

// kthread is what kernel/kthread.c keeps for a thread (struct kthread).
type kthread struct {
	fn, data   uint64
	module     string // the module whose code fn is
	shouldStop bool
	shouldPark bool
	parked     bool
	exited     bool
	exitCode   int64
}

const (
	pfKthread     = 0x00200000 // PF_KTHREAD in task_struct.flags
	taskStateDead = 0x80       // TASK_DEAD in __state once the thread has exited
	sigSEGV       = 11         // the exit code of a task an oops killed (make_task_dead(SIGSEGV))
	// kthreadReturnOffset is where a thread function returns to: the instruction after kthread()'s
	// call of threadfn in Debian's 6.1 build, as its oopses show (kthread+0xe9/0x110).
	kthreadReturnOffset = 0xe9
	taskCommLen         = 16 // TASK_COMM_LEN
)

// errThreadExit unwinds a kernel thread that called kthread_exit()/do_exit().
type errThreadExit struct{ code int64 }

func (e *errThreadExit) Error() string { return fmt.Sprintf("kernel thread exited with %d", e.code) }

// kthread_create_on_node(threadfn, data, node, namefmt, ...): a new thread, asleep
// (TASK_UNINTERRUPTIBLE) until wake_up_process; ERR_PTR(-ENOMEM) when memory runs out.
func hKthreadCreateOnNode(m *Machine, t *Trap) (uint64, error) {
	name, err := m.format(t.Arg(3), t.VarArgs(4))
	if err != nil {
		return 0, err
	}
	th, err := m.newThread(t.Arg(0), t.Arg(1), string(name))
	if err != nil {
		return errPtr(syscall.ENOMEM), nil
	}
	if th.thread.module == "" {
		// A kernel function (kthread_worker_fn) as the thread function: the thread is the caller's.
		th.thread.module = m.moduleOf(t.Return)
	}
	return th.addr, nil
}

// errPtr is ERR_PTR(-errno).
func errPtr(e syscall.Errno) uint64 { return uint64(-int64(e)) }

// newThread creates the task of a kernel thread running fn(data), named comm.
func (m *Machine) newThread(fn, data uint64, comm string) (*task, error) {
	s := m.sched()
	stack, err := m.kernel.vmallocStack()
	if err != nil {
		return nil, fmt.Errorf("kthread %s: kernel stack: %w", comm, err)
	}
	size := uint64(fallbackTask)
	if sz, ok := m.structSize("task_struct"); ok {
		size = sz
	}
	addr, err := m.kernel.kzalloc(size)
	if err != nil {
		return nil, fmt.Errorf("kthread %s: task_struct: %w", comm, err)
	}
	if len(comm) >= taskCommLen {
		comm = comm[:taskCommLen-1]
	}
	th := &task{pid: s.nextPid, comm: comm, addr: addr, stackTop: stack + threadSize, state: taskBlocked,
		depth: 0, resume: make(chan struct{}), thread: &kthread{fn: fn, data: data, module: m.moduleOf(fn)}}
	s.nextPid++
	m.setField("task_struct", "pid", addr, 4, uint64(th.pid))
	m.setField("task_struct", "tgid", addr, 4, uint64(th.pid))
	m.setField("task_struct", "stack", addr, 8, stack)
	m.setField("task_struct", "flags", addr, 4, pfKthread)
	m.writeTaskState(th, taskStateUninterruptible)
	if off, ok := m.fieldOffset("task_struct", "comm"); ok {
		b := make([]byte, taskCommLen)
		copy(b, comm)
		if err := m.WriteAt(b, addr+off); err != nil {
			return nil, err
		}
	}
	s.tasks = append(s.tasks, th)
	return th, nil
}

// moduleOf names the loaded module whose memory holds addr, "" for none.
func (m *Machine) moduleOf(addr uint64) string {
	if g := m.moduleAt(addr); g != nil {
		return g.name
	}
	return ""
}

// threadMain is a kernel thread's goroutine: it starts with the CPU (switchTo handed it over), runs
// the thread function on the thread's stack and exits the thread with its result.
func (m *Machine) threadMain(t *task) {
	code := m.runThread(t)
	m.exitThread(t, code)
}

// runThread is kthread(): park while asked to, then threadfn(data) unless the thread was stopped
// before it ever ran (-EINTR). Its result is the thread's exit code.
func (m *Machine) runThread(t *task) int64 {
	th := t.thread
	for th.shouldPark && !th.shouldStop {
		if err := m.parkme(t); err != nil {
			return -int64(syscall.EINTR)
		}
	}
	if th.shouldStop {
		return -int64(syscall.EINTR)
	}
	ret := m.kthreadReturnSite()
	rsp := (t.stackTop-ptRegsSize)&^15 - 8
	if err := m.WriteU64(rsp, ret); err != nil {
		m.logf(levelErr, "kemu: kthread %s: push return address: %v", t.comm, err)
		return sigSEGV
	}
	m.setReg(uc.X86_REG_RSP, rsp)
	m.setReg(uc.X86_REG_RBP, 0)
	m.setReg(uc.X86_REG_RDI, th.data)
	m.depth = 1
	rax, err := m.run(th.fn, ret)
	m.depth = 0
	var exit *errThreadExit
	switch {
	case err == nil:
		return int64(int32(rax)) // threadfn returns int
	case errors.As(err, &exit):
		return exit.code
	case isTaskDeath(err), errors.Is(err, errMachineHalted):
		return sigSEGV
	}
	m.logf(levelErr, "kemu: kthread %s/%d: %v", t.comm, t.pid, err)
	return sigSEGV
}

// kthreadReturnSite is the address a thread function returns to (in kthread()).
func (m *Machine) kthreadReturnSite() uint64 {
	if s, ok := m.prof.Lookup("kthread"); ok && m.inImage(s.Addr) {
		return s.Addr + kthreadReturnOffset
	}
	return m.returnSite()
}

// exitThread is do_exit() for a kernel thread: it is dead, kthread_stop() callers wake up, and the
// CPU goes to the next task for good.
func (m *Machine) exitThread(t *task, code int64) {
	t.state = taskDead
	t.thread.exited, t.thread.exitCode = true, code
	m.writeTaskState(t, taskStateDead)
	m.wakeWaiters(t.addr)
	if err := m.reschedule(); err != nil && !errors.Is(err, errMachineHalted) {
		m.logf(levelErr, "kemu: kthread %s/%d exit: %v", t.comm, t.pid, err)
	}
}

// threadArg is the thread whose task_struct a call names, or an error for anything else.
func (m *Machine) threadArg(t *Trap, addr uint64) (*task, error) {
	if th := m.taskByAddr(addr); th != nil && th.thread != nil {
		return th, nil
	}
	return nil, fmt.Errorf("%s(%#x): not a kernel thread kemu created", t.Name, addr)
}

// wake_up_process(p): 1 if p was asleep (any TASK_NORMAL sleep) and is now runnable.
func hWakeUpProcess(m *Machine, t *Trap) (uint64, error) {
	return m.wakeUpAddr(t.Arg(0), taskStateNormal), nil
}

// wake_up_state(p, state).
func hWakeUpState(m *Machine, t *Trap) (uint64, error) {
	return m.wakeUpAddr(t.Arg(0), uint32(t.Arg(1))), nil
}

func (m *Machine) wakeUpAddr(addr uint64, state uint32) uint64 {
	p := m.taskByAddr(addr)
	if p == nil || !m.wakeUpState(p, state) {
		return 0
	}
	return 1
}

// kthread_stop(k): should-stop set, the thread woken (unparked) and waited for; its exit code.
func hKthreadStop(m *Machine, t *Trap) (uint64, error) {
	th, err := m.threadArg(t, t.Arg(0))
	if err != nil {
		return 0, err
	}
	code, err := m.kthreadStop(t, th)
	return uint64(code), err
}

// kthreadStop is kthread_stop(): should-stop set, the thread woken (unparked) and waited for.
func (m *Machine) kthreadStop(t *Trap, th *task) (int64, error) {
	k := th.thread
	k.shouldStop = true
	m.unpark(th)
	m.wakeUpState(th, taskStateNormal|taskStateParked)
	for !k.exited {
		if err := m.hungWait(t, th.addr, taskStateUninterruptible); err != nil {
			return 0, err
		}
	}
	return k.exitCode, nil
}

// kthread_should_stop(): whether kthread_stop() was called for the current thread.
func hKthreadShouldStop(m *Machine, t *Trap) (uint64, error) {
	if k := m.current().thread; k != nil && k.shouldStop {
		return 1, nil
	}
	return 0, nil
}

// kthread_freezable_should_stop(was_frozen): kthread_should_stop(); the freezer never acts, so
// *was_frozen (when given) is false.
func hKthreadFreezableShouldStop(m *Machine, t *Trap) (uint64, error) {
	if p := t.Arg(0); p != 0 {
		if err := m.WriteAt([]byte{0}, p); err != nil {
			return 0, err
		}
	}
	return hKthreadShouldStop(m, t)
}

func hKthreadShouldPark(m *Machine, t *Trap) (uint64, error) {
	if k := m.current().thread; k != nil && k.shouldPark {
		return 1, nil
	}
	return 0, nil
}

// kthread_park(k): asks the thread to park and waits until it has (kthread_parkme); 0, or -ENOSYS
// for a thread that has exited.
func hKthreadPark(m *Machine, t *Trap) (uint64, error) {
	th, err := m.threadArg(t, t.Arg(0))
	if err != nil {
		return 0, err
	}
	k := th.thread
	if k.exited {
		return errPtr(syscall.ENOSYS), nil
	}
	k.shouldPark = true
	if th == m.current() {
		return 0, nil
	}
	m.wakeUpState(th, taskStateNormal)
	for !k.parked && !k.exited {
		if err := m.hungWait(t, th.addr, taskStateUninterruptible); err != nil {
			return 0, err
		}
	}
	return 0, nil
}

// kthread_unpark(k): the thread leaves kthread_parkme().
func hKthreadUnpark(m *Machine, t *Trap) (uint64, error) {
	th, err := m.threadArg(t, t.Arg(0))
	if err != nil {
		return 0, err
	}
	th.thread.shouldPark = false
	m.unpark(th)
	return 0, nil
}

func (m *Machine) unpark(th *task) {
	if th.thread.parked {
		th.thread.parked = false
		m.wakeUpState(th, taskStateParked)
	}
}

// kthread_parkme(): the current thread parks (TASK_PARKED) until unparked, if asked to.
func hKthreadParkme(m *Machine, t *Trap) (uint64, error) {
	cur := m.current()
	if cur.thread == nil || !cur.thread.shouldPark {
		return 0, nil
	}
	return 0, m.parkme(cur)
}

func (m *Machine) parkme(cur *task) error {
	k := cur.thread
	for k.shouldPark && !k.shouldStop {
		m.writeTaskState(cur, taskStateParked)
		k.parked = true
		m.wakeWaiters(cur.addr)
		if _, err := m.sleep(0, false); err != nil {
			return err
		}
	}
	k.parked = false
	m.writeTaskState(cur, taskStateRunning)
	return nil
}

// kthread_data(task) and kthread_func(task): the thread's data and function.
func hKthreadData(m *Machine, t *Trap) (uint64, error) {
	th, err := m.threadArg(t, t.Arg(0))
	if err != nil {
		return 0, err
	}
	return th.thread.data, nil
}

func hKthreadFunc(m *Machine, t *Trap) (uint64, error) {
	if th := m.taskByAddr(t.Arg(0)); th != nil && th.thread != nil {
		return th.thread.fn, nil
	}
	return 0, nil
}

// kthread_exit(result) and do_exit(code): the current thread ends here.
func hKthreadExit(m *Machine, t *Trap) (uint64, error) {
	if m.current().thread == nil {
		return 0, fmt.Errorf("%s from %s/%d: only kernel threads can exit in kemu", t.Name, m.comm, m.pid)
	}
	return 0, &errThreadExit{code: int64(t.Arg(0))}
}

// kthread_complete_and_exit(comp, code): complete(comp), then kthread_exit(code).
func hKthreadCompleteAndExit(m *Machine, t *Trap) (uint64, error) {
	if t.Arg(0) != 0 {
		if err := m.complete(t.Arg(0), false); err != nil {
			return 0, err
		}
	}
	return 0, &errThreadExit{code: int64(t.Arg(1))}
}

// __module_put_and_kthread_exit(mod, code): module_put(mod), then kthread_exit(code): a thread that
// holds a reference on its module drops it on its way out.
func hModulePutAndKthreadExit(m *Machine, t *Trap) (uint64, error) {
	if m.current().thread == nil {
		return 0, fmt.Errorf("%s from %s/%d: only kernel threads can exit in kemu", t.Name, m.comm, m.pid)
	}
	m.modulePut(t.Arg(0))
	return 0, &errThreadExit{code: int64(t.Arg(1))}
}
