package machine

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// slow_down_io() calls through pv_ops.cpu.io_delay; boot leaves it at native_io_delay, which
// kemu traps as a kernel function.
func TestParavirtIODelay(t *testing.T) {
	m, _ := bootArena(t)
	ops, ok := m.prof.Lookup("pv_ops")
	require.True(t, ok)
	delay, ok := m.prof.Lookup("native_io_delay")
	require.True(t, ok)
	off, ok := m.fieldOffset("paravirt_patch_template", "cpu.io_delay")
	require.True(t, ok)
	got, err := m.ReadU64(ops.Addr + off)
	require.NoError(t, err)
	assert.Equal(t, delay.Addr, got)
	_, err = m.Call(got)
	assert.NoError(t, err, "the delay runs as a kernel call")
}
