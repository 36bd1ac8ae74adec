package machine

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The kworker fixture: a kthread worker running module work items, init waiting on a bit
// (wait_on_bit, inline test_bit then out_of_line_wait_on_bit with bit_wait) and on a variable
// (wait_var_event's inline loop over init_wait_var_entry, prepare_to_wait_event and schedule), and the
// worker flushed and destroyed. Stamps at HZ=250: msleep(20) lasts 6 jiffies (24 ms), the delay of
// 100 ms is 25 jiffies counted from 24 ms.
func TestKworkerFixture(t *testing.T) {
	if testing.Short() {
		t.Skip("boots the full Debian profile")
	}
	m := bootDefault(t, Options{Strict: true})
	_, err := m.Insmod(fixture(t, "kworker"), "", "kworker.ko")
	require.NoError(t, err, m.Dmesg())
	assert.Equal(t, []Thread{
		{PID: 1002, Comm: "kemu_kworker", State: "S", Module: "kworker", Func: "kthread_worker_fn+0x0"},
	}, m.Threads(), "the worker waits for work, interruptibly")
	require.NoError(t, m.Rmmod("kworker", false), m.Dmesg())
	assert.Empty(t, m.Threads(), "exit destroyed the worker")
	assert.Empty(t, m.Unimplemented(), m.Summary())
	want := append(stampedLoadLines("kworker", "0.000000"),
		"[    0.000000] kworker: nap 1 on kemu_kworker at 0 ms",
		"[    0.024000] kworker: bit clear at 24 ms (wait_on_bit returned 0)",
		"[    0.124000] kworker: delayed item at 124 ms",
		"[    0.124000] kworker: variable set at 124 ms",
		"[    0.124000] kworker: nap 2 on kemu_kworker at 124 ms",
		"[    0.148000] kworker: flushed at 148 ms after 2 naps, bit 0",
		"[    0.148000] kworker: worker destroyed (delayed item pending: 0)",
	)
	assert.Equal(t, want, stamped(m))
}
