package depmod

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"kemu/internal/kmodtest"
)

const modprobeFixture = "../testdata/modprobe.d"

func parseConfig(t *testing.T, text string) (*ModprobeConfig, []string) {
	t.Helper()
	var warnings []string
	c := &ModprobeConfig{}
	c.Parse(strings.NewReader(text), "t.conf", func(s string) { warnings = append(warnings, s) })
	return c, warnings
}

func TestModprobeConfigParse(t *testing.T) {
	cases := []struct {
		name     string
		text     string
		want     ModprobeConfig
		warnings []string
	}{
		{"alias: dashes become underscores, not in brackets", "alias a-b[x-y]* mod-name\n",
			ModprobeConfig{Aliases: []ConfigAlias{{"a_b[x-y]*", "mod_name"}}}, nil},
		{"alias without a module", "alias lonely\n", ModprobeConfig{},
			[]string{"t.conf line 1: ignoring bad line starting with 'alias'\n"}},
		{"unbalanced bracket", "\n\nalias x] y\n", ModprobeConfig{},
			[]string{"t.conf line 3: ignoring bad line starting with 'alias'\n"}},
		{"options keep the blanks after the first one, tabs as spaces", "options m  a=1\tb=2 \n",
			ModprobeConfig{Options: []ConfigEntry{{"m", " a=1 b=2 "}}}, nil},
		{"options without options", "options m\noptions m \n", ModprobeConfig{},
			[]string{"t.conf line 1: ignoring bad line starting with 'options'\n", "t.conf line 2: ignoring bad line starting with 'options'\n"}},
		{"continued line counts both lines", "options m a=1 \\\nb=2\nbogus\n",
			ModprobeConfig{Options: []ConfigEntry{{"m", "a=1 b=2"}}},
			[]string{"t.conf line 3: ignoring bad line starting with 'bogus'\n"}},
		{"install and remove keep the command", "install m-x /bin/true $CMDLINE_OPTS\nremove m echo\tbye\n",
			ModprobeConfig{Install: []ConfigEntry{{"m_x", "/bin/true $CMDLINE_OPTS"}}, Remove: []ConfigEntry{{"m", "echo\tbye"}}}, nil},
		{"blacklist", "blacklist a-b\nblacklist\n", ModprobeConfig{Blacklist: []string{"a_b"}},
			[]string{"t.conf line 2: ignoring bad line starting with 'blacklist'\n"}},
		{"softdep lists", "softdep m pre: a b post: c\nsoftdep n junk post: d pre: e\n",
			ModprobeConfig{Softdeps: []ConfigSoftdep{{"m", Softdep{Pre: []string{"a", "b"}, Post: []string{"c"}}}, {"n", Softdep{Pre: []string{"e"}, Post: []string{"d"}}}}}, nil},
		{"softdep list after one extra blank loses its first word", "softdep m  pre: a\nsoftdep n   pre: b\n",
			ModprobeConfig{Softdeps: []ConfigSoftdep{{"m", Softdep{}}, {"n", Softdep{Pre: []string{"b"}}}}}, nil},
		{"deprecated commands", "include x\nconfig y\n", ModprobeConfig{},
			[]string{"t.conf: command include is deprecated and not parsed anymore\n", "t.conf: command config is deprecated and not parsed anymore\n"}},
		{"comments and blank lines", "# alias x y\n\n   \n", ModprobeConfig{}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, warnings := parseConfig(t, c.text)
			assert.Equal(t, &c.want, got)
			assert.Equal(t, c.warnings, warnings)
		})
	}
}

func TestSoftdepString(t *testing.T) {
	cases := []struct {
		sd   Softdep
		want string
	}{
		{Softdep{}, ""},
		{Softdep{Pre: []string{"a", "b"}}, "pre: a b"},
		{Softdep{Post: []string{"c"}}, "post: c"},
		{Softdep{Pre: []string{"a"}, Post: []string{"c", "d"}}, "pre: apost: c d"},
	}
	for _, c := range cases {
		assert.Equal(t, c.want, c.sd.String())
	}
}

func TestKernelCmdlineOptions(t *testing.T) {
	cases := []struct {
		cmdline   string
		options   []ConfigEntry
		blacklist []string
	}{
		{"quiet root=/dev/sda1 console=ttyS0", nil, nil},
		// libkmod keeps the odd shapes too: an empty module name, a parameter starting with '='.
		{"random.trust_cpu=1 a-b.flag x.y.z=1 .p=1 m.=1", []ConfigEntry{{"random", "trust_cpu=1"}, {"a_b", "flag"}, {"", "p=1"}, {"m", "=1"}}, nil},
		{"modprobe.blacklist=a,b-c other=1", nil, []string{"a", "b-c"}},
		{`m.p="a b" n.q=1`, []ConfigEntry{{"m", `p="a b"`}, {"n", "q=1"}}, nil},
		{`"m.p=a b" n.q=2`, []ConfigEntry{{"m", `p="a b"`}, {"n", "q=2"}}, nil},
		{`n.q=0 x"y.p=1 m.p=2`, []ConfigEntry{{"n", "q=0"}}, nil}, // a quote inside a name opens a quote that never closes
		{`0.0.0.0:2024 --addr m.p=3`, []ConfigEntry{{"m", "p=3"}}, nil},
	}
	for _, c := range cases {
		t.Run(c.cmdline, func(t *testing.T) {
			cfg := &ModprobeConfig{}
			cfg.AddKernelCmdline(c.cmdline, nil)
			assert.Equal(t, c.options, cfg.Options)
			assert.Equal(t, c.blacklist, cfg.Blacklist)
		})
	}
}

// fixtureIndexTree is the fixture modules indexed by depmod into base/lib/modules/release, plus a
// modules.softdep, as modprobe -d base -S release reads them.
func fixtureIndexTree(t *testing.T) (base, modDir string) {
	base, modDir = makeTree(t, allFixtures(t))
	x, err := Build(Options{BaseDir: base, Version: release, ConfigPaths: []string{}})
	require.NoError(t, err)
	require.NoError(t, x.Write())
	require.NoError(t, os.WriteFile(filepath.Join(modDir, "modules.softdep"),
		[]byte("# Soft dependencies extracted from modules themselves.\nsoftdep hot3 pre: hot4\n"), 0o644))
	return base, modDir
}

// TestShowConfigMatchesKmod compares "modprobe -c" with kmod's on the fixture configuration
// directory (every command, bad lines, file selection and the override of a file name by an earlier
// directory) and the fixture modules' indexes. kmod also reads the kernel command line of the host,
// which is handed to AddKernelCmdline here.
func TestShowConfigMatchesKmod(t *testing.T) {
	modprobe := kmodtest.Tool(t, "modprobe")
	base, modDir := fixtureIndexTree(t)
	cmdline, err := os.ReadFile("/proc/cmdline")
	require.NoError(t, err)
	for _, paths := range [][]string{
		{modprobeFixture, modprobeFixture + "/extra"},
		{modprobeFixture + "/extra", modprobeFixture},
		{modprobeFixture + "/20-options.conf"},
	} {
		t.Run(strings.Join(paths, " "), func(t *testing.T) {
			args := []string{"-c", "-d", base, "-S", release}
			for _, p := range paths {
				args = append(args, "-C", p)
			}
			want := kmodtest.Run(t, modprobe, "modprobe", "", args...)
			require.Equal(t, 0, want.Code, want.Stderr)

			var warnings strings.Builder
			cfg := LoadModprobeConfig(paths, modDir, func(s string) { warnings.WriteString(s) })
			cfg.AddKernelCmdline(string(cmdline), nil)
			var got strings.Builder
			require.NoError(t, ShowConfig(&got, cfg, modDir))
			assert.Equal(t, want.Stdout, got.String())
			assert.Contains(t, got.String(), "Dumping indexes now:\n\nalias ", "the fixture indexes are dumped")
			assert.Equal(t, withoutLibkmodLocation(want.Stderr), warnings.String())
		})
	}
}

// withoutLibkmodLocation drops the "libkmod: ERROR ../libkmod/FILE.c:LINE FUNCTION: " start of the
// lines libkmod logs before modprobe installs its own logger: it names kmod's build, not a fact
// about the configuration.
func withoutLibkmodLocation(stderr string) string {
	var b strings.Builder
	for _, line := range strings.SplitAfter(stderr, "\n") {
		if rest, ok := strings.CutPrefix(line, "libkmod: ERROR "); ok {
			if _, msg, ok := strings.Cut(rest, ": "); ok {
				line = msg
			}
		}
		b.WriteString(line)
	}
	return b.String()
}
