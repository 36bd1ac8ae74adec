package machine

import "kemu/loader"

// Locks. One CPU and one task run module code, so no lock ever contends; what matters is misuse the
// kernel would notice or that would hang it: unlocking a lock that is not held, taking a held
// mutex again (a self-deadlock), sleeping with a spinlock held.

type lockKind int

const (
	kindMutex lockKind = iota
	kindSpin
	kindRead
	kindWrite
)

func (k lockKind) String() string {
	return [...]string{"mutex", "spinlock", "rwlock (read)", "rwlock (write)"}[k]
}

type lockState struct {
	kind    lockKind
	holders int // readers for rwlock read side, else 0 or 1
}

func init() {
	register("__mutex_init", hLockInit(kindMutex))
	register("__raw_spin_lock_init", hLockInit(kindSpin))
	register("__rwlock_init", hLockInit(kindWrite))
	register("mutex_lock", hMutexLock)
	register("mutex_lock_interruptible", hMutexLock)
	register("mutex_lock_killable", hMutexLock)
	register("mutex_trylock", hMutexTrylock)
	register("mutex_unlock", hUnlock(kindMutex, false))
	register("mutex_is_locked", hMutexIsLocked)
	for _, v := range []string{"", "_bh", "_irq"} {
		register("_raw_spin_lock"+v, hLock(kindSpin, true))
		register("_raw_spin_unlock"+v, hUnlock(kindSpin, true))
		register("_raw_read_lock"+v, hLock(kindRead, true))
		register("_raw_read_unlock"+v, hUnlock(kindRead, true))
		register("_raw_write_lock"+v, hLock(kindWrite, true))
		register("_raw_write_unlock"+v, hUnlock(kindWrite, true))
	}
	register("_raw_spin_lock_irqsave", hLock(kindSpin, true))
	register("_raw_spin_unlock_irqrestore", hUnlock(kindSpin, true))
	register("_raw_read_lock_irqsave", hLock(kindRead, true))
	register("_raw_read_unlock_irqrestore", hUnlock(kindRead, true))
	register("_raw_write_lock_irqsave", hLock(kindWrite, true))
	register("_raw_write_unlock_irqrestore", hUnlock(kindWrite, true))
	register("_raw_spin_trylock", hSpinTrylock)
}

// Unlocked values of the lock words as the kernel's own inline code reads them.
const mutexOwnerOffset = 0 // struct mutex starts with atomic_long_t owner

func (m *Machine) lock(addr uint64, kind lockKind) *lockState {
	l := m.kernel.locks[addr]
	if l == nil {
		l = &lockState{kind: kind}
		m.kernel.locks[addr] = l
	}
	return l
}

func hLockInit(kind lockKind) Handler {
	return func(m *Machine, t *Trap) (uint64, error) {
		m.kernel.locks[t.Arg(0)] = &lockState{kind: kind}
		return 0, nil
	}
}

// mutex_lock: a mutex held by the only task that could release it is a deadlock; the real kernel
// would hang (and the hung-task detector report it after 120 s). kemu reports it at once.
func hMutexLock(m *Machine, t *Trap) (uint64, error) {
	if err := m.sleepCheck(t); err != nil {
		return 0, err
	}
	l := m.lock(t.Arg(0), kindMutex)
	if l.holders > 0 {
		m.logf(levelErr, "kemu: %s: deadlock: mutex %016x is already held by %s/%d", m.describe(t.Return), t.Arg(0), m.comm, m.pid)
		return 0, &kernelBug{file: "kernel/locking/mutex.c", line: 283, msg: ""}
	}
	l.holders = 1
	// The owner word is what mutex_is_locked() and inline checks read.
	return 0, m.WriteU64(t.Arg(0)+mutexOwnerOffset, m.task)
}

func hMutexTrylock(m *Machine, t *Trap) (uint64, error) {
	l := m.lock(t.Arg(0), kindMutex)
	if l.holders > 0 {
		return 0, nil
	}
	l.holders = 1
	return 1, m.WriteU64(t.Arg(0)+mutexOwnerOffset, m.task)
}

func hMutexIsLocked(m *Machine, t *Trap) (uint64, error) {
	if m.lock(t.Arg(0), kindMutex).holders > 0 {
		return 1, nil
	}
	return 0, nil
}

// hLock takes a spinlock or rwlock side: preemption is off until the matching unlock.
func hLock(kind lockKind, atomic bool) Handler {
	return func(m *Machine, t *Trap) (uint64, error) {
		l := m.lock(t.Arg(0), kind)
		if kind != kindRead && l.holders > 0 {
			// A spinlock taken twice on one CPU spins forever.
			m.logf(levelErr, "kemu: %s: recursive %s %016x: the CPU would spin forever", m.describe(t.Return), kind, t.Arg(0))
			return 0, m.softLockup(0)
		}
		l.holders++
		if atomic {
			m.kernel.spinDepth++
		}
		return 0, nil
	}
}

func hSpinTrylock(m *Machine, t *Trap) (uint64, error) {
	l := m.lock(t.Arg(0), kindSpin)
	if l.holders > 0 {
		return 0, nil
	}
	l.holders++
	m.kernel.spinDepth++
	return 1, nil
}

// hUnlock releases a lock; releasing one that is not held is reported as the kernel's lock
// debugging would (a WARN), and ignored.
func hUnlock(kind lockKind, atomic bool) Handler {
	return func(m *Machine, t *Trap) (uint64, error) {
		l := m.lock(t.Arg(0), kind)
		if l.holders == 0 {
			m.logf(levelWarning, "%s", cutHere)
			m.logf(levelWarning, "WARNING: CPU: 0 PID: %d at %s", m.pid, m.formatS(t.Addr))
			m.logf(levelWarning, "kemu: %s: unlock of %s %016x that is not held", m.describe(t.Return), kind, t.Arg(0))
			regs := m.snapshot()
			m.printModules()
			m.printTaskInfo()
			m.printCallTrace(&regs)
			m.logf(levelWarning, "---[ end trace 0000000000000000 ]---")
			m.taint |= loader.TaintWarn
			return 0, nil
		}
		l.holders--
		if atomic && m.kernel.spinDepth > 0 {
			m.kernel.spinDepth--
		}
		if kind == kindMutex {
			return 0, m.WriteU64(t.Arg(0)+mutexOwnerOffset, 0)
		}
		return 0, nil
	}
}
