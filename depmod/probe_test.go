package depmod

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"kemu/internal/kmodtest"
)

// TestProbeMatchesKmod compares the plan of "modprobe NAME [OPTIONS]" with kmod's own, printed by
// modprobe --show-depends, on the fixture modules and the fixture modprobe.d: aliases of the
// configuration and of the modules, the blacklist (aliases only, or names too with -b), options
// from the configuration (by name and by alias) ahead of the command line's, soft dependencies (the
// configuration's and modules.softdep), and install commands (-i ignores the module's own).
func TestProbeMatchesKmod(t *testing.T) {
	modprobe := kmodtest.Tool(t, "modprobe")
	base, modDir := fixtureIndexTree(t)
	paths := []string{modprobeFixture, modprobeFixture + "/extra"}
	db, err := LoadDB(modDir)
	require.NoError(t, err)
	db.SetConfig(LoadModprobeConfig(paths, modDir, nil))

	cases := []struct {
		args []string // modprobe's: switches, NAME, options
	}{
		{[]string{"hello"}},
		{[]string{"hello", "who=cmdline", "x=\"a b\""}},
		{[]string{"my-hello"}},
		{[]string{"from-dot-alias"}},
		{[]string{"subdir"}},
		{[]string{"shadowed"}},
		{[]string{"pci:v00008086d00001234sv00000001sd00000002bc03sc00i00"}},
		{[]string{"pci:v00008086d00003234sv00000001sd00000002bc03sc00i00"}},
		{[]string{"net-pf-99"}},
		{[]string{"-b", "net-pf-99"}},
		{[]string{"producer"}},
		{[]string{"-b", "producer"}},
		{[]string{"-b", "hot2"}},
		{[]string{"hot0"}},
		{[]string{"hot3"}},
		{[]string{"consumer", "a=5"}},
		{[]string{"tabbed"}},
		{[]string{"procfs"}},
		{[]string{"timers"}},
		{[]string{"fault_null", "x=1"}},
		{[]string{"-i", "fault_null", "x=1"}},
		{[]string{"fault-loop"}},
		{[]string{"symbol:hot_anything"}},
		{[]string{"-i", "consumer"}},
		{[]string{"leaky"}},
		{[]string{"nothing-by-that-name"}},
	}
	for _, c := range cases {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			args := append([]string{"--show-depends", "-d", base, "-S", release, "-C", paths[0], "-C", paths[1]}, c.args...)
			want := kmodtest.Run(t, modprobe, "modprobe", "", args...)

			var opts ProbeOptions
			rest := c.args
			for ; strings.HasPrefix(rest[0], "-"); rest = rest[1:] {
				opts.IgnoreCommands = opts.IgnoreCommands || rest[0] == "-i"
				opts.UseBlacklist = opts.UseBlacklist || rest[0] == "-b"
			}
			probes, err := db.Probe(rest[0], strings.Join(rest[1:], " "), opts)
			if want.Code != 0 {
				assert.ErrorContains(t, err, "Module "+rest[0]+" not found in directory "+modDir)
				assert.Contains(t, want.Stderr, err.Error())
				return
			}
			require.NoError(t, err)
			var got strings.Builder
			require.NoError(t, WriteShowDepends(&got, probes))
			assert.Equal(t, want.Stdout, got.String())
		})
	}
}
