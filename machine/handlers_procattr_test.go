package machine

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestProcEntryAttributes(t *testing.T) {
	m, a := bootArena(t)
	de := a.object("proc_dir_entry", 1)
	call(t, m, hProcSetSize, de, 4096)
	call(t, m, hProcSetUser, de, 1<<32|1000, 1001)
	for _, f := range []struct {
		name string
		size int
		want uint64
	}{{"size", 8, 4096}, {"uid", 4, 1000}, {"gid", 4, 1001}} {
		got, err := m.readField("proc_dir_entry", f.name, de, f.size)
		require.NoError(t, err)
		assert.Equal(t, f.want, got, f.name)
	}
}
