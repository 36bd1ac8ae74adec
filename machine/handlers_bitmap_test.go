package machine

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestBitmapWeight(t *testing.T) {
	m, a := bootArena(t)
	bitmap := a.alloc(24)
	for i, w := range []uint64{0xff00ff00ff00ff00, 0xffffffffffffffff, 0x8000000000000001} {
		require.NoError(t, m.WriteU64(bitmap+8*uint64(i), w))
	}
	tests := []struct{ nbits, want uint64 }{
		{0, 0}, {8, 0}, {16, 8}, {64, 32}, {65, 33}, {128, 96}, {129, 97}, {191, 97}, {192, 98},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, call(t, m, hBitmapWeight, bitmap, tt.nbits), "nbits %d", tt.nbits)
	}
}

// register_net_sysctl(&init_net, "net/dccp/default", table) is recorded as the global sysctl
// directory, and unregister_net_sysctl_table takes it away.
func TestRegisterNetSysctl(t *testing.T) {
	m, a := bootArena(t)
	table := a.object("ctl_table", 2)
	a.set("ctl_table", "procname", table, 0, 8, a.str("seq_window"))
	h := call(t, m, hRegisterNetSysctl, 0, a.str("net/dccp/default"), table)
	require.NotZero(t, h)
	regs := kinds(m.Registrations(), "sysctl")
	require.Len(t, regs, 1)
	assert.Equal(t, "/proc/sys/net/dccp/default/seq_window", regs[0].Name)
	call(t, m, handlers["unregister_net_sysctl_table"], h)
	assert.Empty(t, kinds(m.Registrations(), "sysctl"))
}
