package machine

import (
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Waiting on bits and variables, with module code on both sides: the host's task waits through stubs,
// and kernel threads running module functions clear the bit (or set the variable) after a 40 ms nap
// (44 ms at HZ=250: msleep adds a jiffy) and wake the waiters.

type bitRig struct {
	*stubRig
	clearer   uint64 // thread fn(word): msleep(40); clear bit 0; wake_up_bit(word, 0)
	setter    uint64 // thread fn(var): msleep(40); *var = 1; wake_up_var(var)
	failing   uint64 // a module's wait action: returns -EIO
	word, key uint64 // in the data page
}

var bitStubs = []string{
	"bit_waitqueue", "__var_waitqueue", "out_of_line_wait_on_bit", "out_of_line_wait_on_bit_timeout",
	"out_of_line_wait_on_bit_lock", "wake_up_bit", "wake_up_var", "init_wait_var_entry",
	"prepare_to_wait_event", "schedule", "finish_wait", "wake_bit_function", "var_wake_function",
}

func newBitRig(t *testing.T) *bitRig {
	r := &bitRig{}
	r.stubRig = newStubRig(t, bitStubs, func(a *asm, sym func(string) uint64) {
		napThenWake := func(change []byte, wake string) uint64 {
			fn := a.pc()
			a.raw(0x57) // push rdi
			a.movRDI(40)
			a.call(sym("msleep"))
			a.raw(0x5f) // pop rdi
			a.raw(change...)
			a.raw(0x31, 0xf6)             // xor esi, esi: bit 0
			a.raw(0x48, 0x83, 0xec, 0x08) // sub rsp, 8
			a.call(sym(wake))
			a.raw(0x48, 0x83, 0xc4, 0x08) // add rsp, 8
			a.raw(0x31, 0xc0, 0xc3)       // xor eax, eax; ret
			return fn
		}
		r.clearer = napThenWake([]byte{0x48, 0x83, 0x27, 0xfe}, "wake_up_bit")                  // and qword [rdi], -2
		r.setter = napThenWake([]byte{0x48, 0xc7, 0x07, 0x01, 0x00, 0x00, 0x00}, "wake_up_var") // mov qword [rdi], 1
		r.failing = a.pc()
		a.raw(0xb8, 0xfb, 0xff, 0xff, 0xff, 0xc3) // mov eax, -EIO; ret
	}, nil)
	r.word, r.key = r.tm.data, r.tm.data+0x100
	return r
}

// thread starts a kernel thread running the module function fn(data).
func (r *bitRig) thread(t *testing.T, fn, data uint64) *task {
	th, err := r.m.newThread(fn, data, "kemu_bits")
	require.NoError(t, err)
	require.True(t, r.m.wakeUpState(th, taskStateNormal))
	return th
}

func (r *bitRig) setWord(t *testing.T, v uint64) { require.NoError(t, r.m.WriteU64(r.word, v)) }
func (r *bitRig) readWord(t *testing.T) uint64 {
	v, err := r.m.ReadU64(r.word)
	require.NoError(t, err)
	return v
}

func TestBitWaitqueueHashes(t *testing.T) {
	r := newBitRig(t)
	table := r.sym(t, "bit_wait_table")
	// hash_long(val, 8) on x86-64: the top 8 bits of val * GOLDEN_RATIO_64, val = word<<6 | bit.
	word := uint64(0xffff888000123000)
	for _, c := range []struct {
		name string
		fn   string
		args []uint64
		val  uint64
	}{
		{name: "bit 0 of a word", fn: "bit_waitqueue", args: []uint64{word, 0}, val: word << 6},
		{name: "bit 5 of the same word", fn: "bit_waitqueue", args: []uint64{word, 5}, val: word<<6 | 5},
		{name: "a variable", fn: "__var_waitqueue", args: []uint64{word + 8}, val: word + 8},
	} {
		t.Run(c.name, func(t *testing.T) {
			wq := r.call(t, c.fn, c.args...)
			assert.Equal(t, table+(c.val*0x61C8864680B583EB>>56)*24, wq)
			head, ok := r.m.waitQueueList(wq)
			require.True(t, ok)
			empty, err := r.m.listEmpty(head)
			require.NoError(t, err)
			assert.True(t, empty, "initialised on first use: an empty list")
		})
	}
}

func TestWaitOnBit(t *testing.T) {
	const uninterruptible, interruptible = taskStateUninterruptible, taskStateInterruptible
	cases := []struct {
		name    string
		fn      string
		action  string // a kernel action, or "module" for the rig's failing one
		mode    uint64
		timeout uint64 // jiffies, for the _timeout form
		word    uint64 // bit 0 set: someone holds it
		clearer bool   // a thread clears it after 44 ms
		ret     int64
		at      uint64 // virtual time when the wait returned
		after   uint64 // the word then
		died    bool   // the host's task hung: the hung-task detector killed it
	}{
		{name: "clear: no wait", fn: "out_of_line_wait_on_bit", action: "bit_wait", mode: uninterruptible},
		{name: "a thread clears it", fn: "out_of_line_wait_on_bit", action: "bit_wait", mode: uninterruptible,
			word: 1, clearer: true, at: 44e6},
		{name: "io wait, cleared", fn: "out_of_line_wait_on_bit", action: "bit_wait_io", mode: uninterruptible,
			word: 1, clearer: true, at: 44e6},
		{name: "timeout passes", fn: "out_of_line_wait_on_bit_timeout", action: "bit_wait_timeout",
			mode: uninterruptible, timeout: 25, word: 1, ret: -int64(syscall.EAGAIN), at: 100e6, after: 1},
		{name: "cleared before the timeout", fn: "out_of_line_wait_on_bit_timeout", action: "bit_wait_io_timeout",
			mode: uninterruptible, timeout: 25, word: 1, clearer: true, at: 44e6},
		{name: "lock of a clear bit takes it", fn: "out_of_line_wait_on_bit_lock", action: "bit_wait",
			mode: uninterruptible, after: 1},
		{name: "lock waits for the holder, then takes it", fn: "out_of_line_wait_on_bit_lock", action: "bit_wait",
			mode: uninterruptible, word: 1, clearer: true, at: 44e6, after: 1},
		{name: "a module's action fails the wait", fn: "out_of_line_wait_on_bit", action: "module",
			mode: uninterruptible, word: 1, ret: -int64(syscall.EIO), after: 1},
		{name: "interruptible: a signal ends it", fn: "out_of_line_wait_on_bit", action: "bit_wait",
			mode: interruptible, word: 1, ret: -int64(syscall.EINTR), at: hungTaskTimeout, after: 1},
		{name: "uninterruptible forever: a hung task", fn: "out_of_line_wait_on_bit", action: "bit_wait",
			mode: uninterruptible, word: 1, died: true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := newBitRig(t)
			r.setWord(t, c.word)
			if c.clearer {
				r.thread(t, r.clearer, r.word)
			}
			action := r.failing
			if c.action != "module" {
				action = r.sym(t, c.action)
			}
			ret, err := r.m.Call(r.stubs[c.fn], r.word, 0, action, c.mode, c.timeout)
			if c.died {
				require.ErrorIs(t, err, errTaskDied)
				assert.Contains(t, r.m.Dmesg(), "INFO: task insmod:1000 blocked for more than 120 seconds.")
				return
			}
			require.NoError(t, err, r.m.Dmesg())
			assert.Equal(t, c.ret, int64(int32(ret)))
			assert.Equal(t, c.at, r.m.kernel.clock.ns)
			assert.Equal(t, c.after, r.readWord(t))
			assert.Equal(t, uint32(taskStateRunning), r.m.readTaskState(r.m.current()))
			wq := r.call(t, "bit_waitqueue", r.word, 0)
			head, _ := r.m.waitQueueList(wq)
			empty, err := r.m.listEmpty(head)
			require.NoError(t, err)
			assert.True(t, empty, "the entry left the queue")
		})
	}
}

// The wake functions act only on entries whose key matches; wake_bit_function also waits for the bit
// to be clear.
func TestWakeBitFunctions(t *testing.T) {
	cases := []struct {
		name     string
		fn       string
		entryBit int32 // the entry waits on bit entryBit of the word (-1: the word as a variable)
		keyWord  uint64
		keyBit   int32
		word     uint64
		want     uint64
	}{
		{name: "bit: match, clear", fn: "wake_bit_function", want: 1},
		{name: "bit: match, still set", fn: "wake_bit_function", word: 1, want: 0},
		{name: "bit: another bit", fn: "wake_bit_function", keyBit: 1, want: 0},
		{name: "bit: another word", fn: "wake_bit_function", keyWord: 8, want: 0},
		{name: "var: match", fn: "var_wake_function", entryBit: -1, keyBit: -1, word: 1, want: 1},
		{name: "var: another variable", fn: "var_wake_function", entryBit: -1, keyBit: -1, keyWord: 8, want: 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := newBitRig(t)
			l, err := r.m.waitBitLayout()
			require.NoError(t, err)
			r.setWord(t, c.word)
			sleeper, err := r.m.newThread(r.clearer, r.word, "kemu_sleeper") // created asleep
			require.NoError(t, err)
			entry := r.tm.data + 0x200
			require.NoError(t, r.m.initWaitBitEntry(l, entry, bitKey{word: r.word, bit: c.entryBit}, 0, c.fn))
			r.m.setField("wait_queue_entry", "private", entry+l.entry, 8, sleeper.addr)
			wq := r.tm.data + 0x300
			_, err = hInitWaitqueueHead(r.m, &Trap{m: r.m, regs: [6]uint64{wq}})
			require.NoError(t, err)
			_, err = r.m.queueEntry(wq, entry+l.entry, false)
			require.NoError(t, err)
			require.NoError(t, r.m.writeBitKey(l, r.key, bitKey{word: r.word + c.keyWord, bit: c.keyBit}))

			got, err := r.m.Call(r.sym(t, c.fn), entry+l.entry, taskStateNormal, 0, r.key)
			require.NoError(t, err)
			assert.Equal(t, c.want, got)
			head, _ := r.m.waitQueueList(wq)
			empty, err := r.m.listEmpty(head)
			require.NoError(t, err)
			assert.Equal(t, c.want == 1, empty, "a woken entry leaves the queue")
			assert.Equal(t, c.want == 1, sleeper.started, "the woken thread ran")
		})
	}
}

// wait_var_event()'s inline loop: the entry on the variable's hashed queue, then schedule() until the
// thread sets the variable and calls wake_up_var().
func TestWaitVarEvent(t *testing.T) {
	r := newBitRig(t)
	l, err := r.m.waitBitLayout()
	require.NoError(t, err)
	r.thread(t, r.setter, r.word)
	entry := r.tm.data + 0x200
	r.call(t, "init_wait_var_entry", entry, r.word, 0)
	fn, err := r.m.structWord("wait_queue_entry", "func", entry+l.entry)
	require.NoError(t, err)
	assert.Equal(t, r.sym(t, "var_wake_function"), fn)
	wq := r.call(t, "__var_waitqueue", r.word)
	for r.readWord(t) == 0 {
		require.Zero(t, r.call(t, "prepare_to_wait_event", wq, entry+l.entry, taskStateUninterruptible))
		if r.readWord(t) != 0 {
			break
		}
		r.call(t, "schedule")
	}
	r.call(t, "finish_wait", wq, entry+l.entry)
	assert.Equal(t, uint64(44e6), r.m.kernel.clock.ns, "woken when the thread set it")
	head, _ := r.m.waitQueueList(wq)
	empty, err := r.m.listEmpty(head)
	require.NoError(t, err)
	assert.True(t, empty)
	assert.Empty(t, r.m.Threads(), "the setter returned")
}
