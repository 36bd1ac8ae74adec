package machine

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The kthreads and busywait fixtures: kernel threads woken by a timer through a wait queue and
// stopped at exit, and busy-waits that end only because virtual time moves while code runs.
// Expected stamps follow from the sources: HZ=250 (4 ms jiffies), a 1 µs clock read, msleep's
// extra jiffy.

// stamped is the kernel log as dmesg prints it, one line each.
func stamped(m *Machine) []string { return splitLines(m.Dmesg()) }

func TestKthreadFixture(t *testing.T) {
	if testing.Short() {
		t.Skip("boots the full Debian profile")
	}
	m := bootDefault(t, Options{Strict: true})
	_, err := m.Insmod(fixture(t, "kthreads"), "", "kthreads.ko")
	require.NoError(t, err, m.Dmesg())
	assert.Equal(t, []Thread{
		{PID: 1002, Comm: "kemu_worker", State: "S", Module: "kthreads", Func: "kthreads:kthreads_worker_fn+0x0"},
		{PID: 1003, Comm: "kemu_napper/0", State: "D", Module: "kthreads", Func: "kthreads:kthreads_napper_fn+0x0"},
	}, m.Threads(), "the worker waits on its queue (S), the napper in msleep (D)")

	_, err = m.Idle(350e6)
	require.NoError(t, err)
	require.NoError(t, m.Rmmod("kthreads", false), m.Dmesg())
	assert.Empty(t, m.Threads(), "exit stopped both threads")
	assert.Empty(t, m.Unimplemented(), m.Summary())
	want := append(stampedLoadLines("kthreads", "0.000000"),
		"[    0.000000] kthreads: worker kemu_worker (pid 1002) up",
		"[    0.000000] kthreads: threads started, timer every 100 ms",
		"[    0.100000] kthreads: worker: event 1 after 100 ms",
		"[    0.200000] kthreads: worker: event 2 after 200 ms",
		"[    0.300000] kthreads: worker: event 3 after 300 ms",
		"[    0.350000] kthreads: worker: stopping after 3 events",
		"[    0.350000] kthreads: worker exited with 3",
		// The napper went to sleep at 0 and at 0.254 for 254 ms each: stopping it waits for the
		// second nap to end (msleep is uninterruptible), after which it counts 2 naps.
		"[    0.508000] kthreads: napper exited with 2",
	)
	assert.Equal(t, want, stamped(m))
}

func stampedLoadLines(name, stamp string) []string {
	var out []string
	for _, l := range loadLines(name) {
		out = append(out, fmt.Sprintf("[%12s] %s", stamp, l))
	}
	return out
}

func TestBusyWaitFixture(t *testing.T) {
	if testing.Short() {
		t.Skip("boots the full Debian profile")
	}
	for _, c := range []struct {
		ms                   string
		spunAt, spun, polled string // stamps once each wait ended, and the ms the spin reports
	}{
		{ms: "0", spunAt: "0.000000", spun: "0", polled: "0.002001"},
		{ms: "1", spunAt: "0.004000", spun: "4", polled: "0.006001"}, // a jiffy is the least a jiffies wait lasts
		{ms: "100", spunAt: "0.100000", spun: "100", polled: "0.102001"},
		{ms: "1000", spunAt: "1.000000", spun: "1000", polled: "1.002001"},
	} {
		t.Run(c.ms+"ms", func(t *testing.T) {
			m := bootDefault(t, Options{Strict: true})
			_, err := m.Insmod(fixture(t, "busywait"), "busywait_ms="+c.ms, "busywait.ko")
			require.NoError(t, err, m.Dmesg())
			// The ktime poll: reading the deadline's base costs 1 µs, then each poll 1 µs, until
			// the clock is 2 ms past the base: 2000 reads, of which 1999 were before the deadline.
			want := append(stampedLoadLines("busywait", "0.000000"),
				fmt.Sprintf("[    0.000000] busywait: spinning on jiffies for %s ms", c.ms),
				fmt.Sprintf("[%12s] busywait: spun for %s ms", c.spunAt, c.spun),
				fmt.Sprintf("[%12s] busywait: polled ktime_get() 1999 times for 2 ms", c.polled))
			assert.Equal(t, want, stamped(m))
		})
	}
}

// A module that leaves its thread running: once the module is gone, the thread wakes from its nap
// into freed text and oopses, in its own name, as on Linux.
func TestKthreadLeftRunningOopsesAfterUnload(t *testing.T) {
	if testing.Short() {
		t.Skip("boots the full Debian profile")
	}
	m := bootDefault(t, Options{Strict: true})
	_, err := m.Insmod(fixture(t, "kthread_leak"), "", "kthread_leak.ko")
	require.NoError(t, err, m.Dmesg())
	require.NoError(t, m.Rmmod("kthread_leak", false))
	require.Len(t, m.Threads(), 1, "the thread outlives its module")
	_, err = m.Idle(1e9)
	require.NoError(t, err)
	assert.Empty(t, m.Threads(), "the oops killed it")
	lines := stamped(m)
	for _, want := range []string{
		"[    0.000000] kthread_leak: started kemu_leaker, pid 1002",
		"[    0.000000] kthread_leak: exit without stopping the thread",
		"[    0.104000] #PF: supervisor instruction fetch in kernel mode",
		"[    0.104000] CPU: 0 PID: 1002 Comm: kemu_leaker Tainted: G           OE      6.1.0-56-amd64 #1",
		"[    0.104000] Modules linked in: [last unloaded: kthread_leak]",
	} {
		assert.Contains(t, lines, want, m.Dmesg())
	}
	// The machine goes on.
	_, err = m.Insmod(fixture(t, "hello"), "", "hello.ko")
	require.NoError(t, err)
}

// Debian's jfs starts four kernel threads at init and stops them at exit: it loads and unloads
// under Strict, every kernel function it calls emulated.
func TestJfsThreadsUnderStrict(t *testing.T) {
	if testing.Short() {
		t.Skip("needs the Debian corpus")
	}
	prof, db := debianCorpus(t)
	out := runDebianModule(t, prof, db, "jfs", "fs", true)
	assert.Equal(t, resultComplete, out.result, "%s\n%s", out.detail, out.log)
	assert.Empty(t, out.missing)
	assert.Contains(t, out.log, "JFS: nTxBlock = 4096, nTxLock = 32768")
}

// A loop that never ends is a soft lockup detected in virtual time: the ticks of the spin reach the
// watchdog's 20 s long before the host-time backstop.
func TestSpinningForeverIsASoftLockupInVirtualTime(t *testing.T) {
	if testing.Short() {
		t.Skip("boots the full Debian profile")
	}
	m := bootDefault(t, Options{Watchdog: time.Minute})
	_, err := m.Insmod(fixture(t, "fault_loop"), "", "fault_loop.ko")
	require.ErrorIs(t, err, ErrKilled)
	assert.Contains(t, stamped(m),
		"[   22.000000] watchdog: BUG: soft lockup - CPU#0 stuck for 22s! [insmod:1000]",
		"5000 ticks of 4 ms (20 s), then the report 22 s into the spin")
}

// BenchmarkBusyWait measures the host cost of a module spinning on jiffies for 100 ms of virtual
// time (25 ticks) and polling ktime_get() for 2 ms (2000 kernel calls).
func BenchmarkBusyWait(b *testing.B) {
	m := bootDefault(b, Options{})
	image := fixture(b, "busywait")
	for b.Loop() {
		if _, err := m.Insmod(image, "busywait_ms=100", "busywait.ko"); err != nil {
			b.Fatal(err, m.Dmesg())
		}
		if err := m.Rmmod("busywait", false); err != nil {
			b.Fatal(err)
		}
	}
}
