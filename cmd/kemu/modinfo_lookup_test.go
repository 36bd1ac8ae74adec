package main

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"kemu/corpus"
	"kemu/depmod"
	"kemu/internal/kmodtest"
)

// compareModinfo runs kmod's modinfo and kemu's with -b base -k release and each argument list,
// and requires the same output, errors and exit status. A case whose arguments hold "nosuch" or
// start with -m and an alias is one kmod fails; kmod must find every module of the others.
func compareModinfo(t *testing.T, base, release string, cases [][]string) {
	t.Helper()
	bin := kmodtest.Tool(t, "modinfo")
	for _, args := range cases {
		fails := slices.Contains(args, "nosuch") || (args[0] == "-m" && strings.Contains(args[1], ":"))
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			full := append([]string{"-b", base, "-k", release}, args...)
			want := kmodtest.Run(t, bin, "modinfo", "", full...)
			if !fails {
				require.Equal(t, 0, want.Code, "kmod finds every module of the case: %s", want.Stderr)
				require.NotEmpty(t, want.Stdout)
			}
			var out, errb bytes.Buffer
			code := planModinfo(full).run(&out, &errb)
			assert.Equal(t, want.Stdout, out.String())
			assert.Equal(t, want.Stderr, errb.String())
			assert.Equal(t, want.Code, code)
		})
	}
}

// indexTree lays files out as base/lib/modules/release (a directory value is linked in) and writes
// depmod's indexes for it, as modinfo's lookups read them.
func indexTree(t *testing.T, release string, files map[string]string) (base string) {
	base = t.TempDir()
	dir := filepath.Join(base, "lib", "modules", release)
	require.NoError(t, os.MkdirAll(dir, 0o755))
	for name, src := range files {
		src, err := filepath.Abs(src)
		require.NoError(t, err)
		st, err := os.Stat(src)
		require.NoError(t, err)
		if st.IsDir() {
			require.NoError(t, os.Symlink(src, filepath.Join(dir, name)))
			continue
		}
		data, err := os.ReadFile(src)
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), data, 0o644))
	}
	x, err := depmod.Build(depmod.Options{BaseDir: base, Version: release, ConfigPaths: []string{}})
	require.NoError(t, err)
	require.NoError(t, x.Write())
	return base
}

// modinfo NAME on the fixture modules: names spelled either way, the module's alias, -m, and what is
// not found, mixed with a file operand.
func TestModinfoByNameFixtures(t *testing.T) {
	base := indexTree(t, "6.1.0-test", map[string]string{"extra": "../../testdata/modules"})
	compareModinfo(t, base, "6.1.0-test", [][]string{
		{"hello"},
		{"fault-bug"},
		{"-F", "parm", "hello", "timers"},
		{"-0", "-n", "producer"},
		{"-m", "hot0"},
		{"-m", "nosuch", "hello"},
		{"nosuch", "hello", "../../testdata/modules/consumer.ko"},
		{"symbol:producer_add"},
	})
}

// modinfo by name and by alias on Debian's modules, against kmod's on the same tree: a PCI alias
// matching one module, a platform alias, an alias two modules' tables both give (printed twice),
// built-in modules by name and alias (from modules.builtin.modinfo), -m, and the single-field options.
func TestModinfoByNameCorpus(t *testing.T) {
	tree := corpus.ForTest(t, "amd64")
	files := map[string]string{"kernel": filepath.Join(tree.ModulesDir, "kernel")}
	for _, name := range []string{"modules.order", "modules.builtin", "modules.builtin.modinfo"} {
		files[name] = filepath.Join(tree.ModulesDir, name)
	}
	base := indexTree(t, tree.Release, files)
	compareModinfo(t, base, tree.Release, [][]string{
		{"e1000e"},
		{"snd-hda-intel"},
		{"pci:v00008086d000010FEsv00000000sd00000000bc02sc00i00"},
		{"-F", "filename", "pci:v00008086d00001502sv00001028sd000005D2bc02sc00i00"},
		{"spi:tpm_tis_spi"},
		{"-m", "e1000", "xfs"},
		{"-m", "pci:v00008086d000010FEsv00000000sd00000000bc02sc00i00"},
		{"amd-uncore"},
		{"-p", "atkbd"},
		{"acpiphp"},
		{"-0", "-F", "alias", "zpool-zbud"},
		{"-a", "-d", "-l", "ext4"},
		{"nosuch", "vfat"},
	})
}
