package loader

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// packMemory is a PieceMemory that puts every text range in a separate "pack" area, as the hugepack
// placement does, and the rest of the region where FlatMemory would.
type packMemory struct {
	*FlatMemory
	nextPack uint64
	calls    int
}

func (p *packMemory) ModuleAllocPieces(module string, kind RegionKind, size uint64, ranges []Range) ([]Piece, error) {
	p.calls++
	base, err := p.FlatMemory.ModuleAlloc(module, kind, size)
	if err != nil {
		return nil, err
	}
	var out []Piece
	for _, r := range ranges {
		addr := base + r.Offset
		if r.Class == "text" {
			addr = p.nextPack
			p.nextPack += r.Size
		}
		out = append(out, Piece{Offset: r.Offset, Size: r.Size, Addr: addr})
	}
	return out, nil
}

// checkFentryCall decodes the relocated `call __fentry__` at the start of init_module: the
// displacement must reach the kernel's __fentry__ from wherever the text was placed.
func checkFentryCall(t *testing.T, k *Kernel, m *Module) {
	t.Helper()
	code, ok := m.readAt(m.InitFunc, 5)
	require.True(t, ok)
	require.Equal(t, byte(0xe8), code[0], "init_module starts with call __fentry__")
	target := m.InitFunc + 5 + uint64(int64(int32(le.Uint32(code[1:]))))
	fentry, ok := k.prof.Lookup("__fentry__")
	require.True(t, ok)
	assert.Equal(t, fentry.Addr, target)
}

func TestPieceMemory(t *testing.T) {
	p, err := defaultProfile()
	require.NoError(t, err)
	mem := &packMemory{FlatMemory: NewFlatMemory(), nextPack: 0xffffffffc8000000}
	k, err := NewKernel(Config{Profile: p, Memory: mem})
	require.NoError(t, err)
	prod, err := k.Load(fixture(t, "producer"), LoadOptions{})
	require.NoError(t, err)
	require.NoError(t, k.MarkLive(prod, 0))
	cons, err := k.Load(fixture(t, "consumer"), LoadOptions{})
	require.NoError(t, err)
	assert.Equal(t, 4, mem.calls, "core and init of each module")

	for _, m := range []*Module{prod, cons} {
		checkLayout(t, m)
		checkFentryCall(t, k, m)
		assert.GreaterOrEqual(t, m.InitFunc, uint64(0xffffffffc8000000), "init text is in the pack")
		for _, r := range m.Core.Ranges {
			if r.Class == "text" {
				assert.GreaterOrEqual(t, r.Addr, uint64(0xffffffffc8000000))
			} else {
				assert.Less(t, r.Addr, uint64(0xffffffffc8000000))
			}
			off, ok := m.Core.Offset(r.Addr)
			require.True(t, ok)
			assert.Equal(t, r.Offset, off)
		}
		// The address of struct module in data and the functions in the pack both resolve.
		assert.True(t, m.Core.Contains(m.ThisModule))
	}
	// The consumer's data-to-text and text-to-text references reach the producer's pack.
	add, _ := prod.Lookup("producer_add")
	assert.GreaterOrEqual(t, add.Addr, uint64(0xffffffffc8000000))
	e, ok := k.FindExport("producer_add")
	require.True(t, ok)
	assert.Equal(t, add.Addr, e.Addr)
}

func TestFentryCallContiguous(t *testing.T) {
	k, _ := testKernel(t, nil)
	m, err := k.Load(fixture(t, "hello"), LoadOptions{})
	require.NoError(t, err)
	checkFentryCall(t, k, m)
}
