package machine

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestRequestRegion(t *testing.T) {
	m, a := bootArena(t)
	ioport, ok := m.prof.Lookup("ioport_resource")
	require.True(t, ok)
	root := ioport.Addr
	name := a.str("sch56xx")

	res := call(t, m, hRequestRegion, root, 0x2e, 2, name, 0)
	require.NotZero(t, res)
	for field, want := range map[string]uint64{"start": 0x2e, "end": 0x2f, "flags": 0x100 | ioresourceBusy, "parent": root} {
		got, err := m.readField("resource", field, res, 8)
		require.NoError(t, err)
		assert.Equal(t, want, got, field)
	}

	steps := []struct {
		name        string
		start, n    uint64
		flags       uint64
		wantGranted bool
	}{
		{"overlaps the claim", 0x2f, 4, 0, false},
		{"next to it", 0x30, 4, 0, true},
		{"beyond the root", 0xfffe, 4, 0, false},
		{"empty", 0x100, 0, 0, false},
	}
	for _, s := range steps {
		got := call(t, m, hRequestRegion, root, s.start, s.n, name, s.flags)
		assert.Equal(t, s.wantGranted, got != 0, s.name)
	}

	call(t, m, hReleaseRegion, root, 0x2e, 2)
	assert.NotContains(t, m.Dmesg(), "nonexistent")
	assert.NotZero(t, call(t, m, hRequestRegion, root, 0x2e, 2, name, 0), "free again")
	call(t, m, hReleaseRegion, root, 0x40, 2)
	assert.Contains(t, m.Dmesg(), "Trying to free nonexistent resource <0000000000000040-0000000000000041>")

	iomem, ok := m.prof.Lookup("iomem_resource")
	require.True(t, ok)
	end, err := m.readField("resource", "end", iomem.Addr, 8)
	require.NoError(t, err)
	assert.Equal(t, uint64(1)<<m.CPUInfo().PhysBits-1, end, "iomem_resource spans the physical address width")
	assert.NotZero(t, call(t, m, hRequestRegion, iomem.Addr, 0xfed00000, 0x400, name, 0), "HPET's MMIO")

	muxed := call(t, m, hRequestRegion, root, 0x4e, 2, name, ioresourceMuxed)
	require.NotZero(t, muxed)
	assert.Zero(t, call(t, m, hRequestRegion, root, 0x4e, 2, name, ioresourceMuxed))
	assert.Contains(t, m.Dmesg(), "would wait for it forever")
}
