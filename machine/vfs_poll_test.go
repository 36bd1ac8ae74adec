package machine

import (
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Reads and polls that sleep, over iterdev's /dev/kemu_wait: open arms a 200 ms timer that sets
// the ready flag and wakes the device's wait queue.

const waitDelay = 200 * time.Millisecond

func TestBlockingReadWakesAtTheTimer(t *testing.T) {
	m := bootWith(t, "iterdev")
	f, err := m.Open("/dev/kemu_wait", syscall.O_RDONLY)
	require.NoError(t, err)
	defer f.Close()
	start := m.kernel.clock.ns
	b, err := f.Read(64)
	require.NoError(t, err)
	assert.Equal(t, "ready\n", string(b))
	assert.Equal(t, uint64(waitDelay), m.kernel.clock.ns-start, "the read slept until the timer fired")
	assert.Contains(t, m.Dmesg(), "iterdev: read ready after 200 ms")

	n, err := m.Open("/dev/kemu_wait", syscall.O_RDONLY|syscall.O_NONBLOCK)
	require.NoError(t, err)
	defer n.Close()
	_, err = n.Read(64)
	assert.ErrorIs(t, err, syscall.EAGAIN, "open re-armed the timer: not ready, and O_NONBLOCK does not wait")
}

func TestPollWait(t *testing.T) {
	cases := []struct {
		name    string
		events  uint32
		timeout time.Duration
		want    uint32
		elapsed time.Duration
		err     error
	}{
		{"zero timeout", pollIn, 0, 0, 0, nil},
		{"times out first", pollIn, 50 * time.Millisecond, 0, 50 * time.Millisecond, nil},
		{"woken by the timer", pollIn, time.Second, pollIn, waitDelay, nil},
		{"no timeout", pollIn | pollRdNorm, -1, pollIn | pollRdNorm, waitDelay, nil},
		{"a wake-up without the events asked for sleeps on", pollOut, time.Second, 0, time.Second, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := bootWith(t, "iterdev")
			f, err := m.Open("/dev/kemu_wait", syscall.O_RDONLY)
			require.NoError(t, err)
			defer f.Close()
			start := m.kernel.clock.ns
			got, err := f.PollWait(c.events, c.timeout)
			require.NoError(t, err)
			assert.Equal(t, c.want, got)
			assert.Equal(t, uint64(c.elapsed), m.kernel.clock.ns-start, "virtual time slept")
			if c.timeout == 0 {
				assert.Empty(t, f.Waits(), "a zero timeout registers no queue")
				return
			}
			assert.Len(t, f.Waits(), 1, "the queue is registered at the first ->poll only")
			head, ok := m.waitQueueList(f.Waits()[0])
			require.True(t, ok)
			empty, err := m.listEmpty(head)
			require.NoError(t, err)
			assert.True(t, empty, "poll_freewait took the entries off the queue")
		})
	}
}

// waitWithoutTimer opens /dev/kemu_wait twice and closes the second: its release stops the timer
// both opens armed, so nothing will ever wake the first one's waits.
func waitWithoutTimer(t *testing.T) (*Machine, *File) {
	t.Helper()
	m := bootWith(t, "iterdev")
	f, err := m.Open("/dev/kemu_wait", syscall.O_RDONLY)
	require.NoError(t, err)
	t.Cleanup(func() { _ = f.Close() })
	other, err := m.Open("/dev/kemu_wait", syscall.O_RDONLY)
	require.NoError(t, err)
	require.NoError(t, other.Close())
	return m, f
}

func TestPollWithNothingToWakeItIsInterrupted(t *testing.T) {
	m, f := waitWithoutTimer(t)
	start := m.kernel.clock.ns
	_, err := f.PollWait(pollIn, -1)
	assert.ErrorIs(t, err, syscall.EINTR)
	assert.Equal(t, uint64(hungTaskTimeout), m.kernel.clock.ns-start)
}

func TestPollWithoutAPollMethod(t *testing.T) {
	m := bootWith(t, "iterdev")
	f, err := m.Open("/dev/kemu_iter", syscall.O_RDONLY)
	require.NoError(t, err)
	defer f.Close()
	got, err := f.PollWait(pollIn|pollOut, time.Second)
	require.NoError(t, err)
	assert.Equal(t, uint32(pollIn|pollOut), got, "DEFAULT_POLLMASK, filtered by the events asked for")
	assert.Zero(t, m.kernel.clock.ns)
}

func TestBlockingReadThatNothingWakesIsInterrupted(t *testing.T) {
	m, f := waitWithoutTimer(t)
	start := m.kernel.clock.ns
	_, err := f.Read(64)
	assert.ErrorIs(t, err, syscall.EINTR, "-ERESTARTSYS from the driver: the signal ends read(2) with EINTR")
	assert.Equal(t, uint64(hungTaskTimeout), m.kernel.clock.ns-start)
}
