package machine

import (
	"errors"
	"fmt"
	"runtime"
	"time"

	uc "github.com/unicorn-engine/unicorn/bindings/go/unicorn"
)

// Running guest code. Call starts the CPU at a function with a return address the guest can never
// execute (an address in the kernel image, normally inside do_one_initcall as in a real trace), and
// every stop of the CPU is classified: the callee returned, module code called the kernel (a trap,
// dispatched and resumed), or module code faulted (an oops). Calls nest: a handler may call back
// into module code (a timer, a notifier) on the same stack.

// regsPtRegs leaves room for struct pt_regs at the top of the stack, where the syscall entry puts it.
const ptRegsSize = 168

// fallbackReturn is an unmapped address in the kernel text mapping, below _text, used as the return
// address of a call when the profile has no do_one_initcall.
const fallbackReturn = 0xffffffff80001000

// maxTraps bounds the kernel calls one guest call may make, so a loop around a kernel call (which
// never exhausts a per-run instruction budget) also ends as a soft lockup.
const maxTraps = 5_000_000

// Call runs the guest function at fn with integer arguments and returns its rax. The error is
// errTaskDied (wrapped) when the code oopsed; the report is already in the kernel log.
func (m *Machine) Call(fn uint64, args ...uint64) (uint64, error) {
	if len(args) > len(argRegs) {
		return 0, fmt.Errorf("call %#x: %d arguments, at most %d supported", fn, len(args), len(argRegs))
	}
	if m.dead {
		return 0, errMachineHalted
	}
	var saved uc.Context
	rsp := m.stackTop - ptRegsSize
	if m.depth > 0 {
		ctx, err := m.cpu.ContextSave(nil)
		if err != nil {
			return 0, fmt.Errorf("call %#x: save CPU state: %w", fn, err)
		}
		saved = ctx
		rsp = m.reg(uc.X86_REG_RSP) - 256 // below the caller's frame
	}
	m.depth++
	defer func() {
		m.depth--
		if saved != nil {
			_ = m.cpu.ContextRestore(saved)
		}
	}()
	ret := m.returnSite()
	rsp = rsp&^15 - 8 // entry alignment: rsp+8 is 16-byte aligned
	if err := m.WriteU64(rsp, ret); err != nil {
		return 0, fmt.Errorf("call %#x: push return address: %w", fn, err)
	}
	m.setReg(uc.X86_REG_RSP, rsp)
	m.setReg(uc.X86_REG_RBP, 0)
	for i, a := range args {
		m.setReg(argRegs[i], a)
	}
	if m.depth > 1 {
		return m.run(fn, ret)
	}
	stop := m.startWatchdog()
	defer stop()
	s := m.sched()
	s.events = maxIdleEvents
	v, err := m.run(fn, ret)
	if s.cur == s.host {
		// Back to user space: the kernel threads this call woke run until they sleep.
		m.clearSignal(s.host)
		if serr := m.settle(); serr != nil && err == nil && !isTaskDeath(serr) {
			err = serr
		}
	}
	return v, err
}

// watchdogRetry is how often the watchdog repeats its stop request once it has fired: a request
// made while the CPU is between runs (in a handler) would otherwise be lost.
const watchdogRetry = 20 * time.Millisecond

// startWatchdog starts the CPU's monitor for an outermost call (or an Idle), and returns the function
// that stops it. The monitor is the soft-lockup watchdog: once the tasks have made no progress (no
// context switch, no sleep) for Options.Watchdog of host time, it stops the CPU and run reports a
// soft lockup of the task on it. It is also the timer interrupt of spinning code (sched_time.go): a
// guest run that has not called the kernel for spinDetect gets a tick every spinTickEvery, without
// being stopped. Only one monitor runs at a time; nested starts get a no-op.
func (m *Machine) startWatchdog() (stop func()) {
	s := m.sched()
	if s.monitored {
		return func() {}
	}
	s.monitored = true
	m.lockedUp.Store(false)
	done, exited := make(chan struct{}), make(chan struct{})
	cpu, limit, ticks := m.cpu, m.opts.Watchdog, m.opts.Budget == 0
	go func() {
		defer close(exited)
		period := spinTickEvery
		if !ticks {
			period = watchdogRetry
		}
		ticker := time.NewTicker(period)
		defer ticker.Stop()
		now := time.Now()
		lastRun, runSince, lastTick := s.runs.Load(), now, now
		lastSwitch, progressSince, lastStop := s.switches.Load(), now, now
		for {
			select {
			case <-done:
				return
			case <-ticker.C:
			}
			now := time.Now()
			if sw := s.switches.Load(); sw != lastSwitch {
				lastSwitch, progressSince = sw, now
			}
			if m.lockedUp.Load() {
				// Fired: repeat the stop until the run loop has reported the lockup.
				if now.Sub(lastStop) >= watchdogRetry {
					_ = cpu.Stop()
					lastStop = now
				}
				progressSince = now
				continue
			}
			if now.Sub(progressSince) >= limit {
				m.lockedUp.Store(true)
				_ = cpu.Stop()
				lastStop = now
				continue
			}
			if r := s.runs.Load(); r != lastRun {
				lastRun, runSince = r, now
				continue
			}
			if ticks && s.inGuest.Load() && now.Sub(runSince) >= spinDetect && now.Sub(lastTick) >= spinTickEvery {
				lastTick, progressSince = now, now
				if !s.ticks.deliver() {
					// Spun for softLockupSpin of virtual time: stop the run for good (a stopped
					// run is never resumed, see tickState) and report the lockup.
					m.lockedUp.Store(true)
					_ = cpu.Stop()
					lastStop = now
				}
			}
		}
	}()
	// Stopping waits for the goroutine, so it never touches the engine after the call (or Close).
	return func() { close(done); <-exited; s.monitored = false }
}

// returnSite is where calls from the kernel into module code return: do_one_initcall+0x41, the
// instruction after the indirect call in Debian's 6.1 build, so call traces end as the kernel's do.
func (m *Machine) returnSite() uint64 {
	if s, ok := m.prof.Lookup("do_one_initcall"); ok && m.inImage(s.Addr) {
		return s.Addr + 0x41
	}
	return fallbackReturn
}

var errMachineHalted = errors.New("machine halted by a kernel panic")

// run drives the CPU from pc until the current call returns to ret.
func (m *Machine) run(pc, ret uint64) (uint64, error) {
	s := m.sched()
	for traps := 0; ; traps++ {
		if traps > maxTraps {
			return 0, m.softLockup(0)
		}
		if m.lockedUp.Load() {
			return 0, m.reportLockup()
		}
		m.faulted = false
		s.runs.Add(1)
		opts := &uc.UcOptions{Count: m.opts.Budget}
		runtime.LockOSThread() // the ticks follow this thread's CPU time
		s.ticks.start(m.kernel.clock.jiffies())
		s.inGuest.Store(true)
		err := m.cpu.StartWithOptions(pc, 0, opts)
		s.inGuest.Store(false)
		ticked, spinLockup := s.ticks.stop()
		runtime.UnlockOSThread()
		rip := m.reg(uc.X86_REG_RIP)
		if ticked > 0 {
			// The jiffies the guest saw advance while it ran now pass for the kernel too: the due
			// timers run, as the ticks' softirqs would have (before the call that ended the run).
			if err := m.catchUpTicks(ticked, spinLockup); err != nil {
				return 0, err
			}
		}
		if err == nil {
			// Unicorn stopped without an error, in module code: the monitor stopped it (a
			// lockup) or the instruction budget ran out.
			switch {
			case m.lockedUp.Load():
				return 0, m.reportLockup()
			case m.opts.Budget != 0:
				return 0, m.softLockup(0)
			}
			pc = rip // a stop meant for an earlier run: go on
			continue
		}
		var ucErr uc.UcError
		if !errors.As(err, &ucErr) {
			return 0, fmt.Errorf("cpu at %#x: %w", rip, err)
		}
		switch ucErr {
		case uc.ERR_FETCH_PROT, uc.ERR_FETCH_UNMAPPED:
			if rip == ret {
				return m.reg(uc.X86_REG_RAX), nil
			}
			if m.dispatch.isTrap(rip) {
				next, err := m.trap(rip)
				if err != nil {
					return 0, err
				}
				pc = next
				continue
			}
			return 0, m.pageFaultOops(m.fetchFault(rip))
		case uc.ERR_EXCEPTION:
			// int3 on a hot-thunk page: a call to a kernel function sharing the page.
			if m.onHotPage(rip-1) && m.dispatch.isTrap(rip-1) {
				next, err := m.trap(rip - 1)
				if err != nil {
					return 0, err
				}
				pc = next
				continue
			}
			return 0, m.exceptionOops(rip)
		case uc.ERR_INSN_INVALID:
			next, err := m.invalidOpcode(rip)
			if err != nil {
				return 0, err
			}
			pc = next
		case uc.ERR_READ_UNMAPPED, uc.ERR_WRITE_UNMAPPED, uc.ERR_READ_PROT, uc.ERR_WRITE_PROT:
			f := m.lastFault
			if !m.faulted {
				f = Fault{Addr: rip, Access: AccessRead}
			}
			rip = m.faultingInstruction(rip, f.Addr)
			m.setReg(uc.X86_REG_RIP, rip)
			if next, ok := m.exceptionFixup(rip); ok {
				pc = next
				continue
			}
			return 0, m.pageFaultOops(&f)
		default:
			return 0, m.exceptionOops(rip)
		}
	}
}

// reportLockup reports the soft lockup the watchdog detected for the task on the CPU; the monitor
// then watches the other tasks afresh.
func (m *Machine) reportLockup() error {
	err := m.softLockup(0)
	m.lockedUp.Store(false)
	return err
}

// fetchFault is the fault of an instruction fetch at rip that is not a kernel call.
func (m *Machine) fetchFault(rip uint64) *Fault {
	if m.faulted {
		f := m.lastFault
		return &f
	}
	return &Fault{Addr: rip, Access: AccessFetch}
}

// trap runs the handler for the kernel function at addr and returns where the guest resumes: the
// caller's return address, with the result in rax and the return address popped.
func (m *Machine) trap(addr uint64) (uint64, error) {
	vals, err := m.cpu.RegReadBatch(append(argRegs[:len(argRegs):len(argRegs)], uc.X86_REG_RSP))
	if err != nil {
		return 0, fmt.Errorf("trap at %#x: read registers: %w", addr, err)
	}
	var regs [6]uint64
	copy(regs[:], vals)
	rsp := vals[6]
	m.setReg(uc.X86_REG_RIP, addr)
	ret, retAddr, err := m.dispatch.call(addr, regs, rsp)
	if err != nil {
		return 0, m.handlerFailed(addr, err)
	}
	m.setReg(uc.X86_REG_RAX, ret)
	m.setReg(uc.X86_REG_RSP, rsp+8)
	return retAddr, nil
}

// handlerFailed turns a handler's error into what the kernel would have done.
func (m *Machine) handlerFailed(addr uint64, err error) error {
	var f *Fault
	var un *errUnimplemented
	var bug *kernelBug
	var kp *kernelPanic
	switch {
	case errors.Is(err, errTaskDied), errors.Is(err, errMachineHalted):
		return err // a nested call already reported it
	case errors.As(err, &f):
		return m.pageFaultOops(f)
	case errors.As(err, &un):
		return m.unimplementedReport(un)
	case errors.As(err, &bug):
		return m.bugOops(bug)
	case errors.As(err, &kp):
		return m.panicMachine(kp)
	}
	return fmt.Errorf("kernel function at %#x: %w", addr, err)
}
