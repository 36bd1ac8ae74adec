package loader

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// TestScratchReuse: a module loaded after others, through scratch buffers they used and left larger
// or smaller, links exactly as it does first; a failed load hands its scratch back for the next.
func TestScratchReuse(t *testing.T) {
	load := func(name string) *Module {
		k, _ := testKernel(t, nil)
		m, err := k.Load(fixture(t, name), LoadOptions{})
		require.NoError(t, err, name)
		return m
	}
	type view struct {
		Core, Init            []byte
		Symbols               []Symbol
		Exports               []string
		Sections              []Section
		ORC                   []ORCEntry
		Kallsyms              []kallsym
		InitFunc, ExitFunc    uint64
		ThisModule, StateAddr uint64
	}
	viewOf := func(m *Module) view {
		v := view{Core: m.Core.Bytes, Init: m.Init.Bytes, Symbols: m.Symbols, Sections: m.Sections, ORC: m.ORC,
			Kallsyms: m.kallsyms, InitFunc: m.InitFunc, ExitFunc: m.ExitFunc, ThisModule: m.ThisModule, StateAddr: m.StateAddr}
		for _, e := range m.Exports {
			v.Exports = append(v.Exports, e.Name)
		}
		return v
	}
	first := map[string]view{}
	for _, name := range []string{"chardev", "hello", "producer"} {
		first[name] = viewOf(load(name))
	}
	k, _ := testKernel(t, nil)
	_, err := k.Load(fixture(t, "chardev")[:4096], LoadOptions{}) // fails after taking a scratch, or before
	require.Error(t, err)
	for _, name := range []string{"hello", "producer", "chardev", "hello"} {
		require.Equal(t, first[name], viewOf(load(name)), "%s after other loads", name)
	}
}
