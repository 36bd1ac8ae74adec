package machine

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestStrlcat(t *testing.T) {
	m, a := bootArena(t)
	tests := []struct {
		name, dest, src string
		count           uint64
		want            string
		ret             uint64
	}{
		{"fits", "ip_tables", "_names", 32, "ip_tables_names", 15},
		{"truncated", "ip_", "tables", 6, "ip_ta", 9},
		{"exactly full", "ab", "cd", 5, "abcd", 4},
		{"empty src", "abc", "", 4, "abc", 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dest := a.alloc(64)
			require.NoError(t, m.WriteAt(append([]byte(tt.dest), 0), dest))
			assert.Equal(t, tt.ret, call(t, m, hStrlcat, dest, a.str(tt.src), tt.count))
			got, err := m.ReadCString(dest, 64)
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
	dest := a.str("full")
	_, err := hStrlcat(m, &Trap{Name: "strlcat", m: m, rsp: m.stackTop - 64, regs: [6]uint64{dest, a.str("x"), 4}})
	var bug *kernelBug
	assert.ErrorAs(t, err, &bug, "BUG_ON(dsize >= count)")
}

func TestUserNamespaceIDs(t *testing.T) {
	m, _ := bootArena(t)
	tests := []struct {
		h        Handler
		id, want uint64
	}{
		{hIdentityID, 0, 0},
		{hIdentityID, 1000, 1000},
		{hIdentityID, invalidID, invalidID},
		{hIdentityID, 1<<32 | 5, 5}, // uid_t is 32 bits
		{hIdentityIDMunged, 1000, 1000},
		{hIdentityIDMunged, invalidID, overflowID},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, call(t, m, tt.h, 0, tt.id), "id %#x", tt.id)
	}
}
