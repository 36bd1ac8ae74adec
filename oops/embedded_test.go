package oops

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"testing/fstest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// embeddedFixtures is a module file system like kemu.Modules holding fault_null.ko.
func embeddedFixtures(t *testing.T) fstest.MapFS {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(fixtureDir, "fault_null.ko"))
	if err != nil {
		t.Skipf("fixture: %v", err)
	}
	return fstest.MapFS{
		"mods/fault_null.ko": {Data: data},
		"mods/README.md":     {Data: []byte("not a module")},
	}
}

// TestAddModuleFS: a frame of an embedded fixture resolves when its name+off/size matches the file,
// and only then; a module that already has a file keeps it; ModuleSources names the file used.
func TestAddModuleFS(t *testing.T) {
	_, _, size, _ := fixtureSymbol(t, "fault_null", "fault_null_init")
	fsys := embeddedFixtures(t)
	tests := []struct {
		name     string
		rip      string
		hostPath string // given by AddModules before the embedded fixtures
		resolved bool
		source   string
	}{
		{"matching size", fmt.Sprintf("fault_null_init+0x22/%#x [fault_null]", size), "", true, "embedded:fault_null.ko"},
		{"other size", fmt.Sprintf("fault_null_init+0x22/%#x [fault_null]", size+0x2000), "", false, "embedded:fault_null.ko"},
		{"unknown function", "no_such_function+0x22/0x40 [fault_null]", "", false, "embedded:fault_null.ko"},
		{"host file first", fmt.Sprintf("fault_null_init+0x22/%#x [fault_null]", size), filepath.Join(fixtureDir, "fault_null.ko"),
			true, filepath.Join(fixtureDir, "fault_null.ko")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := NewSymbolizer()
			defer s.Close()
			if tt.hostPath != "" {
				require.NoError(t, s.AddModules(tt.hostPath))
			}
			require.NoError(t, s.AddModuleFS(fsys, "mods"))
			reports := ParseString("BUG: kernel NULL pointer dereference, address: 0000000000000008\n" +
				"Oops: 0002 [#1] PREEMPT SMP NOPTI\nRIP: 0010:" + tt.rip + "\n")
			require.Len(t, reports, 1)
			s.Symbolize(reports[0])
			if tt.resolved {
				require.NotEmpty(t, reports[0].RIP.Source)
				assert.Equal(t, "fault_null_init", reports[0].RIP.Source[len(reports[0].RIP.Source)-1].Function)
			} else {
				assert.Empty(t, reports[0].RIP.Source)
			}
			assert.Equal(t, []ModuleSource{{Module: "fault_null", Path: tt.source}}, s.ModuleSources())
			assert.Empty(t, s.Warnings)
		})
	}
}

// TestContextEmbeddedAddress: a bare address resolves through a Context's section addresses to the
// embedded file named there, init code included.
func TestContextEmbeddedAddress(t *testing.T) {
	fsys := embeddedFixtures(t)
	_, value, size, _ := fixtureSymbol(t, "fault_null", "fault_null_init")
	const initText = 0xffffffffc0120000
	dir := t.TempDir()
	path := filepath.Join(dir, "log"+ContextSuffix)
	require.NoError(t, WriteContext(path, &Context{Kernel: "6.1.0-56-amd64", Modules: []ContextModule{{
		Name: "fault_null", Path: "embedded:fault_null.ko", Base: 0xffffffffc0100000, Size: 0x4000,
		Sections: map[string]uint64{".init.text": initText},
	}}}))
	c, err := ReadContext(path)
	require.NoError(t, err)
	assert.Equal(t, "embedded:fault_null.ko", c.Modules[0].Path, "an embedded path is not taken relative to the sidecar")

	s := NewSymbolizer()
	defer s.Close()
	require.NoError(t, s.UseContext(c))
	require.NoError(t, s.AddModuleFS(fsys, "mods"))
	reports := ParseString(fmt.Sprintf("BUG: kernel NULL pointer dereference, address: 0000000000000008\n"+
		"Oops: 0002 [#1] PREEMPT SMP NOPTI\nRIP: 0010:0x%x\n", initText+value+0x22))
	require.Len(t, reports, 1)
	s.Symbolize(reports[0])
	rip := reports[0].RIP
	assert.Equal(t, "fault_null_init", rip.Symbol)
	assert.Equal(t, uint64(0x22), rip.Offset)
	assert.Equal(t, size, rip.Size)
	assert.NotEmpty(t, rip.Source)
}

// TestEmbeddedPathWithoutFS: a Context naming an embedded file is a warning, not a crash, when no
// module file system was given.
func TestEmbeddedPathWithoutFS(t *testing.T) {
	s := NewSymbolizer()
	defer s.Close()
	require.NoError(t, s.UseContext(&Context{Modules: []ContextModule{{Name: "fault_null", Path: "embedded:fault_null.ko"}}}))
	reports := ParseString("BUG: kernel NULL pointer dereference, address: 0000000000000008\n" +
		"Oops: 0002 [#1] PREEMPT SMP NOPTI\nRIP: 0010:fault_null_init+0x22/0x36 [fault_null]\n")
	require.Len(t, reports, 1)
	s.Symbolize(reports[0])
	assert.Empty(t, reports[0].RIP.Source)
	require.Len(t, s.Warnings, 1)
	assert.Contains(t, s.Warnings[0], "no embedded module files")
}

// TestContextEmptySectionAtSameAddress: the loader places an empty .text where .exit.text begins; an
// address there is in .exit.text, whichever order the sections are visited in.
func TestContextEmptySectionAtSameAddress(t *testing.T) {
	fsys := embeddedFixtures(t)
	const core = 0xffffffffc0100000
	for range 20 { // map order varies from run to run
		s := NewSymbolizer()
		require.NoError(t, s.UseContext(&Context{Modules: []ContextModule{{
			Name: "fault_null", Path: "embedded:fault_null.ko", Base: core, Size: 0x4000,
			Sections: map[string]uint64{".text": core, ".exit.text": core, ".init.text": core + 0x8000},
		}}}))
		require.NoError(t, s.AddModuleFS(fsys, "mods"))
		reports := ParseString(fmt.Sprintf("BUG: kernel NULL pointer dereference, address: 0000000000000008\n"+
			"Oops: 0002 [#1] PREEMPT SMP NOPTI\nRIP: 0010:0x%x\n", uint64(core)))
		require.Len(t, reports, 1)
		s.Symbolize(reports[0])
		assert.Equal(t, "fault_null_exit", reports[0].RIP.Symbol)
		assert.Equal(t, uint64(0), reports[0].RIP.Offset)
		s.Close()
	}
}
