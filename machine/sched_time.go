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
//     t)) cpu_relax();) is seen by the run loop's monitor (run.go): a run that has not trapped for
//     spinDetect of host time is interrupted once every spinTickEvery, and each interruption is a
//     timer tick, one jiffy of virtual time, that runs the due timers in softirq context, as the real
//     tick would. Counting instructions would make the ticks deterministic but costs ~15x in Unicorn
//     (Options.Budget), so the ticks are paced by host time instead: what the guest observes of time
//     (jiffies, ktime, dmesg stamps, the jiffy at which its loop ends) is still deterministic, because
//     time advances only in whole jiffies at ticks and a busy-wait ends at the first jiffy boundary
//     past its deadline; how many iterations a spin makes before a tick is not.
//
// A spin that lasts softLockupSpin of virtual time (20 s, twice the kernel's watchdog_thresh) is a
// soft lockup, reported in virtual time (after ~5000 ticks: a few seconds of host time). Ticks count
// as progress for the host-time watchdog (Options.Watchdog), which stays as the backstop for runs
// that are not ticked: with Options.Budget (whose exhausted runs end as lockups, deterministically),
// or a handler that never returns.

import "time"

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
	// spinDetect is how long (host time) a run may go without a kernel call before ticks start.
	spinDetect = 2 * time.Millisecond
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

// spinTick is a timer tick that interrupted a spinning run: time moves to the next jiffy and the
// due timers run. It reports a soft lockup (as an error ending the task) once the run has spun for
// softLockupSpin.
func (m *Machine) spinTick(spun *uint64) error {
	k := m.kernel
	next := k.clock.nsAtJiffies(k.clock.jiffies() + 1)
	step := next - k.clock.ns
	*spun += step
	if *spun >= softLockupSpin {
		return m.softLockup()
	}
	m.sched().switches.Add(1) // virtual time moved: the host-time watchdog leaves this spin to the ticks
	return m.busyFor(step)
}
