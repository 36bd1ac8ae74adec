package machine

import (
	"fmt"
	"syscall"
)

// Waiting on a bit or a variable (kernel/sched/wait_bit.c). Waiters do not have a wait queue of their
// own: they share the kernel's hashed table of 256 wait queues (bit_wait_table, in the image's data),
// indexed by a hash of the word's address and the bit number, or of the variable's address, exactly as
// the kernel hashes them, so module code that mixes the inline helpers (wait_var_event, wait_on_bit)
// with these functions finds the same queue. An entry (struct wait_bit_queue_entry) carries its key (the
// word and bit, -1 for a variable) and a wake function that checks it, since waiters on unrelated
// words share a queue: wake_up_bit() wakes only the entries whose key matches and whose bit is clear.
//
// The waits themselves are the kernel's loops: queue the entry, test the bit, call the action (bit_wait
// and friends sleep in schedule(); a module may pass its own), until the bit is clear or the action
// fails. The entry lives in the caller's stack frame (DEFINE_WAIT_BIT), as in the kernel.
//
// The table's heads are initialised on first use rather than at boot: the table is private to these
// functions, and an all-zero list head is never a valid initialised one.

func init() {
	register("bit_waitqueue", hBitWaitqueue)
	register("__var_waitqueue", hVarWaitqueue)
	register("wake_bit_function", hWakeBitFunction)
	register("var_wake_function", hWakeBitFunction)
	register("__wait_on_bit", hWaitOnBit)
	register("__wait_on_bit_lock", hWaitOnBit)
	register("out_of_line_wait_on_bit", hOutOfLineWaitOnBit)
	register("out_of_line_wait_on_bit_timeout", hOutOfLineWaitOnBit)
	register("out_of_line_wait_on_bit_lock", hOutOfLineWaitOnBit)
	register("__wake_up_bit", hWakeUpBit)
	register("wake_up_bit", hWakeUpBit)
	register("wake_up_var", hWakeUpBit)
	register("init_wait_var_entry", hInitWaitVarEntry)
	register("bit_wait", hBitWait)
	register("bit_wait_io", hBitWait)
	register("bit_wait_timeout", hBitWait)
	register("bit_wait_io_timeout", hBitWait)
}

const (
	waitTableBits = 8                  // WAIT_TABLE_BITS
	goldenRatio64 = 0x61C8864680B583EB // GOLDEN_RATIO_64 of <linux/hash.h>
	taskWakeKill  = 0x100              // TASK_WAKEKILL: a fatal signal ends the sleep (TASK_KILLABLE)
)

// hashLong is hash_long(val, bits) on a 64-bit kernel (hash_64_generic: x86 has no hash of its own).
func hashLong(val uint64, bits uint) uint64 { return val * goldenRatio64 >> (64 - bits) }

// bitWaitHead is the wait queue bit_wait_table[i], initialised if this is its first use.
func (m *Machine) bitWaitHead(i uint64) (uint64, error) {
	table, ok := m.prof.Lookup("bit_wait_table")
	if !ok {
		return 0, fmt.Errorf("bit_wait_table is not in the profile")
	}
	size, ok := m.structSize("wait_queue_head")
	if !ok {
		return 0, fmt.Errorf("struct wait_queue_head has no known size (no BTF)")
	}
	wq := table.Addr + i*size
	head, ok := m.waitQueueList(wq)
	if !ok {
		return 0, fmt.Errorf("struct wait_queue_head has no known field head (no BTF)")
	}
	if next, err := m.ReadU64(head); err != nil || next != 0 {
		return wq, err
	}
	return wq, m.listInit(head)
}

// bitWaitqueue is bit_waitqueue(word, bit); varWaitqueue is __var_waitqueue(p).
func (m *Machine) bitWaitqueue(word uint64, bit int32) (uint64, error) {
	return m.bitWaitHead(hashLong(word<<6|uint64(int64(bit)), waitTableBits))
}

func (m *Machine) varWaitqueue(p uint64) (uint64, error) {
	return m.bitWaitHead(hashLong(p, waitTableBits))
}

func hBitWaitqueue(m *Machine, t *Trap) (uint64, error) {
	return m.bitWaitqueue(t.Arg(0), int32(t.Arg(1)))
}
func hVarWaitqueue(m *Machine, t *Trap) (uint64, error) { return m.varWaitqueue(t.Arg(0)) }

// waitBitLayout holds the BTF offsets of struct wait_bit_queue_entry and struct wait_bit_key.
type waitBitLayout struct {
	size, key, entry    uint64 // the entry: its size, key and wq_entry
	flags, bit, timeout uint64 // in the key
	keySize             uint64
}

func (m *Machine) waitBitLayout() (*waitBitLayout, error) {
	l := &waitBitLayout{}
	for _, f := range []struct {
		name, field string
		off         *uint64
	}{
		{"wait_bit_queue_entry", "key", &l.key}, {"wait_bit_queue_entry", "wq_entry", &l.entry},
		{"wait_bit_key", "flags", &l.flags}, {"wait_bit_key", "bit_nr", &l.bit},
		{"wait_bit_key", "timeout", &l.timeout},
	} {
		off, ok := m.fieldOffset(f.name, f.field)
		if !ok {
			return nil, fmt.Errorf("struct %s has no known field %s (no BTF)", f.name, f.field)
		}
		*f.off = off
	}
	var ok1, ok2 bool
	l.size, ok1 = m.structSize("wait_bit_queue_entry")
	l.keySize, ok2 = m.structSize("wait_bit_key")
	if !ok1 || !ok2 {
		return nil, fmt.Errorf("struct wait_bit_queue_entry has no known size (no BTF)")
	}
	return l, nil
}

// bitKey is a struct wait_bit_key: the word (or variable) and the bit (-1 for a variable).
type bitKey struct {
	word uint64
	bit  int32
}

func (m *Machine) readBitKey(l *waitBitLayout, key uint64) (bitKey, error) {
	word, err := m.ReadU64(key + l.flags)
	if err != nil {
		return bitKey{}, err
	}
	bit, err := m.ReadU32(key + l.bit)
	return bitKey{word: word, bit: int32(bit)}, err
}

func (m *Machine) writeBitKey(l *waitBitLayout, key uint64, k bitKey) error {
	if err := m.WriteU64(key+l.flags, k.word); err != nil {
		return err
	}
	return m.WriteU32(key+l.bit, uint32(k.bit))
}

// testBit is test_bit(bit, word): bit of the array of longs at word.
func (m *Machine) testBit(k bitKey) (bool, error) {
	w, err := m.ReadU64(k.word + uint64(k.bit/64)*8)
	return w&(1<<(uint(k.bit)%64)) != 0, err
}

// testAndSetBit is test_and_set_bit(bit, word).
func (m *Machine) testAndSetBit(k bitKey) (bool, error) {
	addr := k.word + uint64(k.bit/64)*8
	w, err := m.ReadU64(addr)
	if err != nil {
		return false, err
	}
	mask := uint64(1) << (uint(k.bit) % 64)
	return w&mask != 0, m.WriteU64(addr, w|mask)
}

// initWaitBitEntry fills a zeroed entry as DEFINE_WAIT_BIT and init_wait_var_entry do: the key, the
// current task, the wake function that checks the key, an unlinked list node.
func (m *Machine) initWaitBitEntry(l *waitBitLayout, wbq uint64, k bitKey, flags uint32, wake string) error {
	fn, err := m.requireKernelFunc(wake)
	if err != nil {
		return err
	}
	if err := m.WriteAt(make([]byte, l.size), wbq); err != nil {
		return err
	}
	if err := m.writeBitKey(l, wbq+l.key, k); err != nil {
		return err
	}
	e := wbq + l.entry
	m.setField("wait_queue_entry", "flags", e, 4, uint64(flags))
	m.setField("wait_queue_entry", "private", e, 8, m.task)
	m.setField("wait_queue_entry", "func", e, 8, fn)
	link, ok := m.waitEntryList(e)
	if !ok {
		return fmt.Errorf("struct wait_queue_entry has no known field entry (no BTF)")
	}
	return m.listInit(link)
}

// init_wait_var_entry(wbq_entry, var, flags).
func hInitWaitVarEntry(m *Machine, t *Trap) (uint64, error) {
	l, err := m.waitBitLayout()
	if err != nil {
		return 0, err
	}
	return 0, m.initWaitBitEntry(l, t.Arg(0), bitKey{word: t.Arg(1), bit: -1}, uint32(t.Arg(2)), "var_wake_function")
}

// wake_bit_function(wq_entry, mode, sync, key) and var_wake_function: 0 for an entry waiting on
// something else (or, for a bit, while the bit is still set), else autoremove_wake_function.
func hWakeBitFunction(m *Machine, t *Trap) (uint64, error) {
	l, err := m.waitBitLayout()
	if err != nil {
		return 0, err
	}
	want, err := m.readBitKey(l, t.Arg(3))
	if err != nil {
		return 0, err
	}
	have, err := m.readBitKey(l, t.Arg(0)-l.entry+l.key)
	if err != nil || have != want {
		return 0, err
	}
	if t.Addr == m.kernelFunc("wake_bit_function") {
		if set, err := m.testBit(want); err != nil || set {
			return 0, err
		}
	}
	return hAutoremoveWakeFunction(m, t)
}

// wake_up_bit(word, bit), wake_up_var(var) and __wake_up_bit(wq, word, bit): if anyone waits on the
// queue, one wake-up with the key (only matching entries act on it).
func hWakeUpBit(m *Machine, t *Trap) (uint64, error) {
	l, err := m.waitBitLayout()
	if err != nil {
		return 0, err
	}
	var wq uint64
	k := bitKey{word: t.Arg(0), bit: int32(t.Arg(1))}
	switch t.Name {
	case "__wake_up_bit":
		wq, k = t.Arg(0), bitKey{word: t.Arg(1), bit: int32(t.Arg(2))}
	case "wake_up_var":
		k.bit = -1
		wq, err = m.varWaitqueue(k.word)
	default:
		wq, err = m.bitWaitqueue(k.word, k.bit)
	}
	if err != nil {
		return 0, err
	}
	head, ok := m.waitQueueList(wq)
	if !ok {
		return 0, nil
	}
	if empty, err := m.listEmpty(head); err != nil || empty { // waitqueue_active()
		return 0, err
	}
	key, err := m.trapFrame(t, l.keySize)
	if err != nil {
		return 0, err
	}
	if err := m.writeBitKey(l, key, k); err != nil {
		return 0, err
	}
	return 0, m.wakeUpQueue(wq, taskStateNormal, 1, key)
}

// out_of_line_wait_on_bit(word, bit, action, mode), its _timeout (timeout jiffies from now: the key's
// deadline, which bit_wait_timeout reads) and _lock variants: an entry in the caller's frame, then
// __wait_on_bit or __wait_on_bit_lock on the bit's queue.
func hOutOfLineWaitOnBit(m *Machine, t *Trap) (uint64, error) {
	l, err := m.waitBitLayout()
	if err != nil {
		return 0, err
	}
	k := bitKey{word: t.Arg(0), bit: int32(t.Arg(1))}
	wq, err := m.bitWaitqueue(k.word, k.bit)
	if err != nil {
		return 0, err
	}
	wbq, err := m.trapFrame(t, l.size)
	if err != nil {
		return 0, err
	}
	if err := m.initWaitBitEntry(l, wbq, k, 0, "wake_bit_function"); err != nil {
		return 0, err
	}
	if t.Name == "out_of_line_wait_on_bit_timeout" {
		if err := m.WriteU64(wbq+l.key+l.timeout, m.kernel.clock.jiffies()+t.Arg(4)); err != nil {
			return 0, err
		}
	}
	return m.waitOnBit(t, l, wq, wbq, t.Arg(2), uint32(t.Arg(3)), t.Name == "out_of_line_wait_on_bit_lock")
}

// __wait_on_bit(wq, wbq_entry, action, mode) and __wait_on_bit_lock: the action's result (0 once the
// bit is clear; for the lock, once this caller has set it).
func hWaitOnBit(m *Machine, t *Trap) (uint64, error) {
	l, err := m.waitBitLayout()
	if err != nil {
		return 0, err
	}
	return m.waitOnBit(t, l, t.Arg(0), t.Arg(1), t.Arg(2), uint32(t.Arg(3)), t.Name == "__wait_on_bit_lock")
}

// waitOnBit is the kernel's wait loop: queued in mode, the action (which sleeps) runs while the bit is
// set, until it is clear or the action returns an error. The lock variant waits exclusively (one
// waiter woken per clear) and ends by taking the bit.
func (m *Machine) waitOnBit(t *Trap, l *waitBitLayout, wq, wbq, action uint64, mode uint32, lock bool) (uint64, error) {
	k, err := m.readBitKey(l, wbq+l.key)
	if err != nil {
		return 0, err
	}
	entry := wbq + l.entry
	for {
		if _, err := m.prepareToWait(wq, entry, mode, lock); err != nil {
			return 0, err
		}
		var ret uint64
		set, err := m.testBit(k)
		if err != nil {
			return 0, err
		}
		if set {
			if ret, err = m.callBitAction(t, action, wbq+l.key, mode, wbq); err != nil {
				return 0, err
			}
		}
		if lock {
			if ret != 0 {
				if err := m.finishWait(entry); err != nil {
					return 0, err
				}
			}
			// Whoever finds the bit clear takes it, even after the action failed.
			if wasSet, err := m.testAndSetBit(k); err != nil {
				return 0, err
			} else if !wasSet {
				if ret == 0 {
					err = m.finishWait(entry)
				}
				return 0, err
			}
			if ret != 0 {
				return ret, nil
			}
			continue
		}
		if set, err = m.testBit(k); err != nil {
			return 0, err
		}
		if !set || ret != 0 {
			return ret, m.finishWait(entry)
		}
	}
}

// callBitAction runs a wait's action(key, mode): the kernel's bit_wait family in Go, a module's own on
// the CPU. Its int result is sign-extended. frame is where the caller's own frame ends: the action's
// trap is placed there, so it cannot take stack already in use.
func (m *Machine) callBitAction(t *Trap, action, key uint64, mode uint32, frame uint64) (uint64, error) {
	var ret uint64
	var err error
	if h, ok := m.dispatch.byAddr[action]; ok {
		name := fmt.Sprintf("%#x", action)
		if s, off, _, ok := m.prof.SymbolAt(action); ok && off == 0 {
			name = s.Name
		}
		ret, err = h(m, &Trap{Name: name, Addr: action, Return: t.Return, rsp: frame, regs: [6]uint64{key, uint64(mode)}, m: m})
	} else {
		ret, err = m.Call(action, key, uint64(mode))
	}
	return uint64(int64(int32(ret))), err
}

// bit_wait(key, mode), bit_wait_io and their _timeout forms (the deadline is the key's timeout:
// -EAGAIN once it has passed): sleep in schedule(), then -EINTR if a signal the mode lets in is
// pending.
func hBitWait(m *Machine, t *Trap) (uint64, error) {
	cur := m.current()
	switch t.Name {
	case "bit_wait_timeout", "bit_wait_io_timeout":
		l, err := m.waitBitLayout()
		if err != nil {
			return 0, err
		}
		deadline, err := m.ReadU64(t.Arg(0) + l.timeout)
		if err != nil {
			return 0, err
		}
		now := m.kernel.clock.jiffies()
		if int64(now-deadline) >= 0 {
			return negErrno(syscall.EAGAIN), nil
		}
		if m.readTaskState(cur) != taskStateRunning {
			if _, err := m.sleepCurrent(t, deadline-now); err != nil {
				return 0, err
			}
		}
	default:
		if _, err := hSchedule(m, t); err != nil {
			return 0, err
		}
	}
	if uint32(t.Arg(1))&(taskStateInterruptible|taskWakeKill) != 0 && m.signalPending(cur) {
		return negErrno(syscall.EINTR), nil
	}
	return 0, nil
}
