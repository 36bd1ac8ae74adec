package machine

// Time that moves while tasks run. Virtual time (kernel.go's clock) passes in three ways:
//
//   - Sleeping (msleep, usleep_range, schedule_timeout, waits with timeouts): the task sleeps and the
//     scheduler moves time to the next event when nothing is runnable (sched.go).
//   - Busy time the kernel can account for: delays (udelay, ndelay) and clock reads. Each read of a
//     clock (ktime_get and friends) costs clockReadNs, the time one iteration of a polling loop takes
//     on real hardware (its device-register read dominates, ~1 µs over PCIe), so a loop polling
//     ktime_get() for a deadline ends after deadline/clockReadNs reads.
//   - The timer tick. Guest code that spins without calling the kernel (while (time_before(jiffies,
//     t)) cpu_relax();) is seen by the run loop's monitor (run.go): once a run has not trapped for
//     spinDetect of host time, it gets a tick every spinTickEvery, one jiffy of virtual time written
//     into jiffies while the CPU runs (see tickState); the kernel's clock and its due timers catch
//     up when the run next calls the kernel. Counting instructions would make the ticks
//     deterministic but costs ~15x in Unicorn (Options.Budget), so the ticks are paced by host time
//     instead: what the guest observes of time (jiffies, ktime, dmesg stamps, the jiffy at which its
//     loop ends) is still deterministic, because time advances only in whole jiffies at ticks and a
//     busy-wait ends at the first jiffy boundary past its deadline (no tick is delivered once the
//     run's closing trap has begun, see tickState.hold; only a tick landing in the few instructions
//     between a poll's last read and that trap could still show); how many iterations a spin makes
//     before a tick is not. Timers do not fire in the middle of a spin, only when it calls the
//     kernel: code spinning until its own timer callback runs, with no kernel call, is a lockup.
//
// A spin that lasts softLockupSpin of virtual time (20 s, twice the kernel's watchdog_thresh) is a
// soft lockup, reported in virtual time (after ~5000 ticks: a few seconds of host time). Ticks count
// as progress for the host-time watchdog (Options.Watchdog), which stays as the backstop for runs
// that are not ticked: with Options.Budget (whose exhausted runs end as lockups, deterministically),
// or a handler that never returns.

import (
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"kemu/mmu"
)

func init() {
	register("msleep", hMsleep)
	register("msleep_interruptible", hMsleep)
	register("usleep_range_state", hUsleepRange)
	register("ktime_get", hKtimeGet)
	register("ktime_get_raw", hKtimeGet)
	register("ktime_get_mono_fast_ns", hKtimeGet)
	register("ktime_get_raw_fast_ns", hKtimeGet)
	register("ktime_get_boot_fast_ns", hKtimeGet)
	register("ktime_get_with_offset", hKtimeGet)
	register("sched_clock", hKtimeGet)
	register("local_clock", hKtimeGet)
	register("ktime_get_seconds", hKtimeGetSeconds)
	register("ktime_get_real_seconds", hKtimeGetSeconds)
	register("ktime_get_ts64", hKtimeGetTS64)
	register("ktime_get_real_ts64", hKtimeGetTS64)
	register("ktime_get_raw_ts64", hKtimeGetTS64)
	register("__SCT__cond_resched", hYield)
}

const (
	// clockReadNs is what one clock read costs in virtual time.
	clockReadNs = 1000
	// spinDetect is how long (host time) a run may go without a kernel call before ticks start. Ticks
	// make what the guest sees of time depend on host speed, so they are kept for code that spins:
	// long enough that ordinary computation (a module filling its tables, even on a loaded host)
	// never sees one, short enough that a busy-wait ends promptly.
	spinDetect = 250 * time.Millisecond
	// spinTickEvery paces the ticks of a spinning run (host time per jiffy of virtual time).
	spinTickEvery = 200 * time.Microsecond
	// softLockupSpin is how long a run may spin in virtual time before it is a soft lockup.
	softLockupSpin = 20e9
)

// msleep(ms): the task sleeps, uninterruptibly, for the requested time plus one jiffy (as
// msecs_to_jiffies()+1 does); msleep_interruptible returns the milliseconds left when a signal ends
// the sleep early, else 0.
func hMsleep(m *Machine, t *Trap) (uint64, error) {
	if err := m.sleepCheck(t); err != nil {
		return 0, err
	}
	cur := m.current()
	deadline := m.kernel.clock.ns + uint64(uint32(t.Arg(0)))*1e6 + 1e9/m.kernel.clock.hz
	state := uint32(taskStateUninterruptible)
	if t.Name == "msleep_interruptible" {
		state = taskStateInterruptible
	}
	for m.kernel.clock.ns < deadline {
		if state == taskStateInterruptible && m.signalPending(cur) {
			return (deadline - m.kernel.clock.ns + 999999) / 1e6, nil
		}
		m.writeTaskState(cur, state)
		_, err := m.sleep(deadline, true)
		m.writeTaskState(cur, taskStateRunning)
		if err != nil {
			return 0, err
		}
	}
	return 0, nil
}

// usleep_range_state(min, max, state) sleeps for min microseconds.
func hUsleepRange(m *Machine, t *Trap) (uint64, error) {
	if err := m.sleepCheck(t); err != nil {
		return 0, err
	}
	deadline := m.kernel.clock.ns + t.Arg(0)*1e3
	cur := m.current()
	for m.kernel.clock.ns < deadline {
		m.writeTaskState(cur, uint32(t.Arg(2)))
		_, err := m.sleep(deadline, true)
		m.writeTaskState(cur, taskStateRunning)
		if err != nil {
			return 0, err
		}
	}
	return 0, nil
}

// readClock is one clock read: clockReadNs pass, then the time.
func (m *Machine) readClock() (uint64, error) {
	if err := m.busyFor(clockReadNs); err != nil {
		return 0, err
	}
	return m.kernel.clock.ns, nil
}

// ktime_get() and the clocks that count the same nanoseconds in kemu (boot, raw, sched_clock).
func hKtimeGet(m *Machine, t *Trap) (uint64, error) { return m.readClock() }

func hKtimeGetSeconds(m *Machine, t *Trap) (uint64, error) {
	ns, err := m.readClock()
	return ns / 1e9, err
}

// ktime_get_ts64(ts) and the real/raw variants: kemu's wall clock starts at 0 at boot.
func hKtimeGetTS64(m *Machine, t *Trap) (uint64, error) {
	ns, err := m.readClock()
	if err != nil {
		return 0, err
	}
	if err := m.WriteU64(t.Arg(0), ns/1e9); err != nil {
		return 0, err
	}
	return 0, m.WriteU64(t.Arg(0)+8, ns%1e9)
}

// busyFor lets ns pass while the current task keeps the CPU: when a jiffy boundary passes, the tick
// runs the due timers (in softirq context, unless the CPU is in softirq context already).
func (m *Machine) busyFor(ns uint64) error {
	k := m.kernel
	before := k.clock.jiffies()
	if err := k.advance(ns); err != nil {
		return err
	}
	if k.clock.jiffies() == before || k.softirq {
		return nil
	}
	_, err := m.runDueTimers()
	return err
}

// tickState is the timer interrupt of spinning code, shared by the run loop and its monitor
// goroutine (run.go). While a guest run spins without calling the kernel, the monitor delivers ticks
// without stopping the CPU: each tick stores the next jiffies value straight into guest memory (as
// another CPU's tick would), so a loop polling jiffies sees it move. When the run ends (a kernel
// call, a fault), the run loop catches the kernel up: its clock moves to the jiffies the guest saw
// and the due timers run.
//
// Why not stop the CPU for each tick, run the timers, and resume: Unicorn 2.0.1 does not resume
// correctly from an asynchronous uc_emu_stop (the registers and RIP it reports can disagree by a
// partly executed translation block, so resuming at RIP repeats or skips instructions; a loop
// summing a table gives a different sum on every run). An asynchronous stop is therefore only used
// to end a run for good (a lockup), never to resume it.
//
// A tick is delivered only once the CPU's thread has run spinTickEvery of CPU time since the last
// one: on a loaded host the thread may not run for a while, and ticks paced by wall time alone
// would then make jiffies jump past a busy-wait's deadline unseen.
type tickState struct {
	mu       sync.Mutex
	running  bool   // a guest run is under way: ticks may be delivered
	base     uint64 // jiffies when the run started
	n        uint64 // ticks delivered during the run
	limit    uint64 // ticks after which the spin is a soft lockup
	clock    int32  // the CPU time clock of the thread running the guest (0: none)
	ran      int64  // that thread's CPU time at the last tick or tick attempt, ns (ranUnknown: not read yet)
	jiffies  []*uint64
	disabled bool // no jiffies in guest memory to move
}

// start opens a guest run at jiffies base, on the calling OS thread (locked to it by the caller).
// The thread's CPU time is first read by the monitor's first tick attempt, not here: start runs
// before every guest run (every kernel call), and the read is a system call.
func (t *tickState) start(base uint64) {
	clock := threadCPUClock(unix.Gettid())
	t.mu.Lock()
	t.running, t.base, t.n, t.clock, t.ran = true, base, 0, clock, ranUnknown
	t.mu.Unlock()
}

// ranUnknown marks a run whose thread CPU time has not been read yet.
const ranUnknown = -2

// threadCPUClock is the clock id of a thread's CPU time (the kernel's MAKE_THREAD_CPUCLOCK(tid,
// CPUCLOCK_SCHED), what pthread_getcpuclockid returns), readable from any thread of the process.
func threadCPUClock(tid int) int32 { return int32(^uint32(tid)<<3 | 6) }

// cpuTime reads a CPU time clock in nanoseconds, or -1.
func cpuTime(clock int32) int64 {
	var ts unix.Timespec
	if unix.ClockGettime(clock, &ts) != nil {
		return -1
	}
	return ts.Nano()
}

// hold delivers no more ticks to the current run: it is ending (called on the CPU's thread as
// Unicorn reports the access that ends it).
func (t *tickState) hold() {
	t.mu.Lock()
	t.running = false
	t.mu.Unlock()
}

// stop closes the run and returns the ticks it was given, and whether they amount to a soft lockup.
func (t *tickState) stop() (ticks uint64, lockup bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.running = false
	return t.n, t.limit > 0 && t.n >= t.limit
}

// deliver gives the running guest one tick, if a run is under way; it reports false once the run
// has spun for the soft-lockup limit (no more ticks are delivered then).
func (t *tickState) deliver() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.running || t.disabled {
		return true
	}
	if t.limit > 0 && t.n >= t.limit {
		return false
	}
	if now := cpuTime(t.clock); now >= 0 {
		if t.ran == ranUnknown {
			t.ran = now // the run's first attempt starts the count
			return true
		}
		if now-t.ran < int64(spinTickEvery) {
			return true // the guest has not had its share of the CPU since the last tick
		}
		t.ran = now
	}
	t.n++
	for _, p := range t.jiffies {
		atomic.StoreUint64(p, t.base+t.n)
	}
	return true
}

// initTicks finds where jiffies and jiffies_64 live in guest memory, for ticks delivered while the
// CPU runs, and sets the soft-lockup limit in ticks.
func (m *Machine) initTicks() {
	t := &m.kernel.sched.ticks
	t.limit = softLockupSpin * m.kernel.clock.hz / 1e9
	for _, name := range []string{"jiffies", "jiffies_64"} {
		s, ok := m.prof.Lookup(name)
		if !ok || !m.inImage(s.Addr) || s.Addr%8 != 0 {
			continue
		}
		w := m.mem.Tables.Walk(s.Addr, mmu.Access{Kind: mmu.AccessWrite})
		if !w.Translated() {
			continue
		}
		if p := m.mem.Mem.HostPtr(w.PA); p != nil {
			t.jiffies = append(t.jiffies, (*uint64)(p))
		}
	}
	t.disabled = len(t.jiffies) == 0
}

// catchUpTicks moves the kernel's clock over the ticks a run was given, one jiffy each, running
// the due timers in softirq context as each tick would have; lockup says the run spun for
// softLockupSpin and is reported as a soft lockup.
func (m *Machine) catchUpTicks(ticks uint64, lockup bool) error {
	k := m.kernel
	m.sched().switches.Add(1) // virtual time moved: the host-time watchdog leaves this spin to the ticks
	before := k.clock.ns
	for range ticks {
		if err := m.busyFor(k.clock.nsAtJiffies(k.clock.jiffies()+1) - k.clock.ns); err != nil {
			return err
		}
	}
	if lockup {
		m.lockedUp.Store(false)
		return m.softLockup(k.clock.ns - before)
	}
	return nil
}
