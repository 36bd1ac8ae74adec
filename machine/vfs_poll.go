package machine

import (
	"errors"
	"fmt"
	"syscall"
	"time"
)

// poll(2) on a file (fs/select.c). ->poll(file, pt) reports the ready events and calls poll_wait
// for each wait queue a later event will be announced on; poll_wait calls the table's queue
// procedure, __pollwait, which records the queue (Waits) and, for a poll that may sleep, links a
// wait entry whose wake function is pollwake into it. While ->poll reports none of the events
// asked for, the user process sleeps (TASK_INTERRUPTIBLE, in virtual time: timers, work and kernel
// threads run meanwhile) until a wake-up on one of those queues or the timeout, then asks ->poll
// again, without the queue procedure (do_poll clears _qproc after the first pass). The entries
// leave their queues when the poll returns (poll_freewait).
//
// The user process cannot sleep forever: a poll without a timeout that nothing wakes within the
// hung-task timeout ends as if interrupted by a signal (EINTR), as the scheduler's waits do.

func init() {
	register("__pollwait", hPollWait)
	register("pollwake", hPollwake)
}

// Poll event bits (uapi/asm-generic/poll.h).
const (
	pollIn     = 0x0001
	pollOut    = 0x0004
	pollErr    = 0x0008
	pollHup    = 0x0010
	pollRdNorm = 0x0040
	pollWrNorm = 0x0100
)

// defaultPollMask is DEFAULT_POLLMASK: a file without ->poll is always readable and writable.
const defaultPollMask = pollIn | pollOut | pollRdNorm | pollWrNorm

// pollWaiter is one poll(2) that may sleep: the wait entries __pollwait linked, and whether one
// was woken since the process last looked (poll_wqueues.triggered).
type pollWaiter struct {
	key       uint64   // the events asked for: wake-ups announcing none of them are ignored
	entries   []uint64 // struct wait_queue_entry, each linked into a queue ->poll named
	triggered bool
}

// Poll is poll(2) with a zero timeout: ->poll's event mask, at once. The wait queue heads the
// driver registers are recorded (Waits).
func (f *File) Poll() (uint32, error) {
	if err := f.usable(); err != nil {
		return 0, err
	}
	fn := f.pollMethod()
	if fn == 0 {
		return defaultPollMask, nil
	}
	return f.pollOnce(fn, 0xffffffff, true, nil)
}

// PollWait is poll(2) for events with a timeout (negative: none): the ready events among events
// (and POLLERR, POLLHUP, which are always reported), 0 when the timeout passed first. The process
// sleeps in virtual time while it waits.
func (f *File) PollWait(events uint32, timeout time.Duration) (uint32, error) {
	if err := f.usable(); err != nil {
		return 0, err
	}
	filter := events | pollErr | pollHup
	fn := f.pollMethod()
	if fn == 0 {
		return defaultPollMask & filter, nil
	}
	m := f.m
	w := &pollWaiter{key: uint64(filter)}
	v := m.files()
	v.waiter = w
	defer func() {
		v.waiter = nil
		m.freePollEntries(w)
	}()
	clock := &m.kernel.clock
	deadline := clock.ns + uint64(max(timeout, 0))
	if timeout < 0 {
		deadline = clock.ns + hungTaskTimeout
	}
	for first := true; ; first = false {
		// The queues are registered at the first call only, and not at all without a timeout.
		mask, err := f.pollOnce(fn, filter, first && timeout != 0, w)
		if err != nil || mask&filter != 0 || timeout == 0 {
			return mask & filter, err
		}
		if clock.ns >= deadline {
			if timeout < 0 {
				return 0, fmt.Errorf("%s: poll: nothing woke it in %v: %w", f.path, time.Duration(hungTaskTimeout), syscall.EINTR)
			}
			return 0, nil
		}
		if err := m.asUser(func() error { return m.pollSleep(w, deadline) }); err != nil {
			return 0, err
		}
	}
}

// Waits is the wait queue heads the driver's ->poll registered on this file so far.
func (f *File) Waits() []uint64 { return append([]uint64(nil), f.waits...) }

// pollMethod is ->poll, 0 when the file has none (or kemu serves it).
func (f *File) pollMethod() uint64 {
	if f.served != nil {
		return 0
	}
	return f.method(mPoll)
}

// pollOnce runs ->poll(file, pt) once with a poll table whose key is the events asked for. With
// register, the table's queue procedure is __pollwait, which links entries for the waiter if there
// is one; without, it is NULL and poll_wait does nothing.
func (f *File) pollOnce(fn uint64, key uint32, register bool, w *pollWaiter) (uint32, error) {
	m := f.m
	size, _ := m.structSize("poll_table_struct")
	pt, err := m.kernel.kzalloc(max(size, 16))
	if err != nil {
		return 0, syscall.ENOMEM
	}
	defer func() { _ = m.kfree(pt, kemuCaller) }()
	if register {
		m.setField("poll_table_struct", "_qproc", pt, 8, m.kernelFunc("__pollwait"))
	}
	m.setField("poll_table_struct", "_key", pt, 4, uint64(key))
	v := m.files()
	v.polling, v.linking = f, w
	defer func() { v.polling, v.linking = nil, nil }()
	ret, err := f.call(fn, f.file, pt)
	return uint32(ret), err
}

// pollSleep is poll_schedule_timeout: unless a wake-up came already, sleep interruptibly until
// one comes or the deadline passes.
func (m *Machine) pollSleep(w *pollWaiter, deadline uint64) error {
	cur := m.current()
	m.writeTaskState(cur, taskStateInterruptible)
	var err error
	if !w.triggered {
		_, err = m.sleep(deadline, true)
	}
	m.writeTaskState(cur, taskStateRunning)
	w.triggered = false
	if errors.Is(err, errNothingToRun) {
		return nil // the deadline is an event: this only happens once it has passed
	}
	return err
}

// freePollEntries is poll_freewait: every entry leaves its queue and is freed.
func (m *Machine) freePollEntries(w *pollWaiter) {
	for _, e := range w.entries {
		_ = m.dequeueEntry(e)
		_ = m.kfree(e, kemuCaller)
	}
	w.entries = nil
}

// __pollwait(file, wait_address, p): the queue is recorded on the file being polled and, for a
// poll that may sleep, a wait entry of the current task with pollwake as its wake function is
// linked into it.
func hPollWait(m *Machine, t *Trap) (uint64, error) {
	v := m.files()
	wq := t.Arg(1)
	if v.polling == nil || wq == 0 {
		return 0, nil
	}
	v.polling.waits = append(v.polling.waits, wq)
	w := v.linking
	if w == nil {
		return 0, nil
	}
	size, ok := m.structSize("wait_queue_entry")
	if !ok {
		return 0, nil
	}
	entry, err := m.kernel.kzalloc(size)
	if err != nil {
		return 0, nil // poll_get_entry failed: the kernel records -ENOMEM and polls without this queue
	}
	w.entries = append(w.entries, entry) // freed with the others, linked or not
	m.setField("wait_queue_entry", "private", entry, 8, m.current().addr)
	m.setField("wait_queue_entry", "func", entry, 8, m.kernelFunc("pollwake"))
	if link, ok := m.waitEntryList(entry); ok {
		if err := m.listInit(link); err != nil {
			return 0, err
		}
	}
	_, err = m.queueEntry(wq, entry, false)
	return 0, err
}

// pollwake(entry, mode, sync, key): a wake-up whose key names none of the polled events is
// ignored; otherwise the poll is triggered and its task woken.
func hPollwake(m *Machine, t *Trap) (uint64, error) {
	w := m.files().waiter
	if w == nil {
		return 0, nil
	}
	if key := t.Arg(3); key != 0 && key&w.key == 0 {
		return 0, nil
	}
	w.triggered = true
	return hDefaultWakeFunction(m, t)
}
