package machine

// The routing netlink mutex (net/core/rtnetlink.c): network code takes it around device and
// link changes, and ASSERT_RTNL() (rtnl_is_locked) warns when it is not held. cfg80211's exit,
// for one, asserts it inside rtnl_lock()/rtnl_unlock(), so the lock has to be real for the
// assertion to hold. The mutex itself is static to the kernel (no symbol to find it by), so the
// machine's lock table keys it by the address of rtnl_lock: one mutex, with the same deadlock
// report as any other when the one task takes it twice.

func init() {
	register("rtnl_lock", hRtnlLock)
	register("rtnl_lock_killable", hRtnlLock) // no signal is ever pending: 0, locked
	register("rtnl_trylock", hRtnlTrylock)
	register("rtnl_unlock", hRtnlUnlock)
	register("rtnl_is_locked", hRtnlIsLocked)
}

// rtnlMutex is the rtnl mutex's state in the machine's lock table.
func (m *Machine) rtnlMutex() *lockState {
	key := uint64(0)
	if s, ok := m.prof.Lookup("rtnl_lock"); ok {
		key = s.Addr
	}
	return m.lock(key, kindMutex)
}

func hRtnlLock(m *Machine, t *Trap) (uint64, error) {
	if err := m.sleepCheck(t); err != nil {
		return 0, err
	}
	l := m.rtnlMutex()
	if l.holders > 0 {
		m.logf(levelErr, "kemu: %s: deadlock: rtnl_mutex is already held by %s/%d", m.describe(t.Return), m.comm, m.pid)
		return 0, &kernelBug{file: "kernel/locking/mutex.c", line: 283}
	}
	l.holders = 1
	return 0, nil
}

func hRtnlTrylock(m *Machine, t *Trap) (uint64, error) {
	l := m.rtnlMutex()
	if l.holders > 0 {
		return 0, nil
	}
	l.holders = 1
	return 1, nil
}

// rtnl_unlock of a mutex not held is the mutex debugging WARN; kemu logs it and goes on, as
// mutex_unlock's handler does.
func hRtnlUnlock(m *Machine, t *Trap) (uint64, error) {
	l := m.rtnlMutex()
	if l.holders == 0 {
		m.logf(levelWarning, "kemu: %s: rtnl_unlock without rtnl_lock", m.describe(t.Return))
		return 0, nil
	}
	l.holders = 0
	return 0, nil
}

func hRtnlIsLocked(m *Machine, t *Trap) (uint64, error) {
	if m.rtnlMutex().holders > 0 {
		return 1, nil
	}
	return 0, nil
}
