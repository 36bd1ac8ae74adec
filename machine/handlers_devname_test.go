package machine

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestDevSetName(t *testing.T) {
	m, a := bootArena(t)
	dev := a.object("device", 1)
	off, ok := m.fieldOffset("device", "kobj")
	require.True(t, ok)
	name := func() string {
		p, err := m.readField("kobject", "name", dev+off, 8)
		require.NoError(t, err)
		s, err := m.ReadCString(p, 64)
		require.NoError(t, err)
		return s
	}
	require.Zero(t, call(t, m, hDevSetName, dev, a.str("mtd%d"), 3))
	assert.Equal(t, "mtd3", name())
	require.Zero(t, call(t, m, hDevSetName, dev, a.str("%s"), a.str("host0")))
	assert.Equal(t, "host0", name(), "renamed")
}
