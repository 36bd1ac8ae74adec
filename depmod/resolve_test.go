package depmod

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"kemu/internal/kmodtest"
)

func loadNames(loads []Load) []string {
	var names []string
	for _, l := range loads {
		names = append(names, l.Name)
	}
	return names
}

// TestResolveFixtures builds the index of the fixture chain and checks modprobe's load lists, both
// from the index in memory and from the files it writes.
func TestResolveFixtures(t *testing.T) {
	files := map[string][]byte{}
	for _, n := range []string{"hot0", "hot1", "hot2", "hot3", "hot4", "hot5", "hot6", "hot7", "hot8", "hot9", "producer", "consumer", "hello"} {
		files["extra/"+n+".ko"] = fixture(t, n)
	}
	base, modDir := makeTree(t, files)
	x, err := Build(Options{BaseDir: base, Version: release, ConfigPaths: []string{}})
	require.NoError(t, err)
	require.NoError(t, x.Write())
	fromFiles, err := LoadDB(modDir)
	require.NoError(t, err)

	tests := []struct {
		name string
		want []string
	}{
		{"hot0", []string{"hot9", "hot8", "hot7", "hot6", "hot5", "hot4", "hot3", "hot2", "hot1", "hot0"}},
		{"hot7", []string{"hot9", "hot8", "hot7"}},
		{"hot9", []string{"hot9"}},
		{"consumer", []string{"producer", "consumer"}},
		{"symbol:producer_add", []string{"producer"}},
		{"symbol:hot4_step", []string{"hot9", "hot8", "hot7", "hot6", "hot5", "hot4"}},
	}
	for _, db := range []struct {
		name string
		db   *DB
	}{{"memory", x.DB()}, {"files", fromFiles}} {
		for _, tt := range tests {
			t.Run(db.name+"/"+tt.name, func(t *testing.T) {
				loads, err := db.db.Resolve(tt.name)
				require.NoError(t, err)
				assert.Equal(t, tt.want, loadNames(loads))
				for _, l := range loads {
					assert.Equal(t, filepath.Join(modDir, "extra", l.Name+".ko"), l.Path)
				}
			})
		}
		t.Run(db.name+"/unknown", func(t *testing.T) {
			_, err := db.db.Resolve("no_such_module")
			assert.ErrorIs(t, err, syscall.ENOENT)
			assert.EqualError(t, err, "Module no_such_module not found in directory "+modDir)
		})
	}
	opened, err := OpenDB(Options{BaseDir: base, Version: release})
	require.NoError(t, err)
	assert.Equal(t, fromFiles, opened, "with modules.dep, OpenDB reads the files")
	require.NoError(t, os.Remove(filepath.Join(modDir, "modules.dep")))
	opened, err = OpenDB(Options{BaseDir: base, Version: release, ConfigPaths: []string{}})
	require.NoError(t, err)
	loads, err := opened.Resolve("hot8")
	require.NoError(t, err)
	assert.Equal(t, []string{"hot9", "hot8"}, loadNames(loads), "without modules.dep, OpenDB computes the index")

	order, err := fromFiles.RemoveOrder("hot2")
	require.NoError(t, err)
	assert.Equal(t, []string{"hot2", "hot9", "hot8", "hot7", "hot6", "hot5", "hot4", "hot3"}, order)
	assert.Equal(t, x.Module("hot0").AllDependencies()[0].Name, "hot1")
	assert.Nil(t, x.Module("nothing"))
}

// TestDBLookup checks lookups, soft dependencies and removal order on hand-written index files.
func TestDBLookup(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) {
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644))
	}
	write("modules.dep", "kernel/a.ko: kernel/b.ko kernel/c.ko\nkernel/b.ko: kernel/c.ko\nkernel/c.ko:\nkernel/snd-x.ko.xz:\n/abs/ext.ko:\nkernel/pre.ko:\nkernel/post.ko:\n")
	write("modules.alias", "# comment\nalias pci:v00008086d*sv*sd*bc02sc00i* a\nalias pci:v00008086d0000100Esv*sd*bc*sc*i* snd_x\nalias fs-ext9 c\nalias char-major-10-[0-9]* b\n")
	write("modules.symbols", "alias symbol:c_func c\n")
	write("modules.softdep", "softdep a pre: pre post: post\nsoftdep snd_x pre: c\n")
	write("modules.builtin", "kernel/fs/ext4/ext4.ko\n")
	write("modules.builtin.modinfo", "ext4.alias=fs-ext4\x00md5.license=GPL\x00md5.alias=crypto-md5\x00")
	db, err := LoadDB(dir)
	require.NoError(t, err)

	lookups := []struct {
		name string
		want []string
	}{
		{"a", []string{"a"}},
		{"snd-x", []string{"snd_x"}},
		{"snd_x", []string{"snd_x"}},
		{"pci:v00008086d0000100Esv00001028sd00000002bc02sc00i00", []string{"a", "snd_x"}},
		{"pci:v00001234d0000100Esv00001028sd00000002bc02sc00i00", nil},
		{"fs-ext9", []string{"c"}},
		{"char-major-10-42", []string{"b"}},
		{"char-major-11-42", nil},
		{"symbol:c_func", []string{"c"}},
		{"symbol:missing", nil},
		{"ext4", []string{"ext4"}},
		{"unbalanced]", nil},
		{"crypto-md5", []string{"md5"}},
		{"fs-ext4", []string{"ext4"}},
	}
	for _, tt := range lookups {
		assert.Equal(t, tt.want, db.Lookup(tt.name), tt.name)
	}

	loads, err := db.Resolve("a")
	require.NoError(t, err)
	assert.Equal(t, []string{"c", "b", "pre", "a", "post"}, loadNames(loads))
	assert.Equal(t, Softdep{Pre: []string{"pre"}, Post: []string{"post"}}, db.Softdeps("a"))

	loads, err = db.Resolve("pci:v00008086d0000100Esv00001028sd00000002bc02sc00i00")
	require.NoError(t, err)
	assert.Equal(t, []string{"c", "b", "pre", "a", "post", "c", "snd_x"}, loadNames(loads), "every match probed on its own")
	assert.Equal(t, dir+"/kernel/snd-x.ko.xz", loads[6].Path)

	loads, err = db.Resolve("ext")
	require.NoError(t, err)
	assert.Equal(t, []Load{{Name: "ext", Path: "/abs/ext.ko"}}, loads)

	loads, err = db.Resolve("ext4")
	require.NoError(t, err)
	assert.Equal(t, []Load{{Name: "ext4", Builtin: true}}, loads)

	order, err := db.RemoveOrder("a")
	require.NoError(t, err)
	assert.Equal(t, []string{"post", "a", "c", "b", "pre"}, order)

	_, err = LoadDB(t.TempDir())
	assert.Error(t, err, "modules.dep is required")
}

func TestFnmatch(t *testing.T) {
	tests := []struct {
		pattern, s string
		want       bool
	}{
		{"abc", "abc", true},
		{"abc", "abd", false},
		{"abc", "ab", false},
		{"a*", "a", true},
		{"a*c", "abbbc", true},
		{"a*c", "abbbd", false},
		{"*", "", true},
		{"a?c", "abc", true},
		{"a?c", "ac", false},
		{"[0-9]x", "5x", true},
		{"[0-9]x", "ax", false},
		{"[!0-9]x", "ax", true},
		{"[^0-9]x", "5x", false},
		{"[]a]", "]", true},
		{"[abc", "[abc", true},
		{`a\*`, "a*", true},
		{`a\*`, "ab", false},
		{"usb:v*p*d*dc[0-9]*", "usb:v1234p5678d0100dc09dsc00", true},
		{"dev*/tun", "devname:net/tun", true},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, fnmatch(tt.pattern, tt.s), "%q ~ %q", tt.pattern, tt.s)
	}
}

func TestNormalizeAlias(t *testing.T) {
	tests := []struct {
		in, want string
		ok       bool
	}{
		{"fs-ext4", "fs_ext4", true},
		{"pci:v*d[0-9-]*", "pci:v*d[0-9-]*", true},
		{"a-[x-y]-b", "a_[x-y]_b", true},
		{"bad]", "", false},
		{"open[", "", false},
	}
	for _, tt := range tests {
		got, ok := normalizeAlias(tt.in)
		assert.Equal(t, tt.ok, ok, tt.in)
		assert.Equal(t, tt.want, got, tt.in)
	}
}

// TestCycles checks kmod's cycle report on an index whose dependencies loop.
func TestCycles(t *testing.T) {
	a, b, c, d := &Module{Name: "a"}, &Module{Name: "b"}, &Module{Name: "c"}, &Module{Name: "d"}
	a.Deps, b.Deps, c.Deps = []*Module{b}, []*Module{c}, []*Module{b, d}
	var stderr bytes.Buffer
	x := &Index{Modules: []*Module{a, b, c, d}, log: &logger{stderr: &stderr, verbose: logWarning}}
	for i, m := range x.Modules {
		m.idx = i
		for _, dep := range m.Deps {
			dep.users++
		}
	}
	assert.ErrorIs(t, x.sortDependencies(), ErrCycle)
	assert.Equal(t, "depmod: ERROR: Cycle detected: b -> c -> b\ndepmod: ERROR: Found 2 modules in dependency cycles!\n", stderr.String())
}

func kmodModprobe(t testing.TB) string { return kmodtest.Tool(t, "modprobe") }

// matchModprobe checks Resolve against `modprobe --show-depends` (which reads the .bin indexes) for
// each name and returns how many it compared. kmod prints a module again when a soft dependency
// brings it in twice (its insert loop would then skip it as loaded), and so does Resolve. Names
// whose modules the host has loaded are skipped: modprobe leaves those out.
func matchModprobe(t *testing.T, modprobe string, db *DB, base, release string, names []string) int {
	t.Helper()
	noConfig := t.TempDir()
	checked := 0
	for _, name := range names {
		loads, err := db.Resolve(name)
		require.NoError(t, err, name)
		if loadedOnHost(loads) {
			continue
		}
		var got strings.Builder
		for _, l := range loads {
			if l.Builtin {
				got.WriteString("builtin " + l.Name + "\n")
			} else {
				got.WriteString("insmod " + l.Path + " \n")
			}
		}
		out, err := exec.Command(modprobe, "-C", noConfig, "-d", base, "-S", release, "--show-depends", name).Output()
		require.NoError(t, err, name)
		assert.Equal(t, string(out), got.String(), name)
		checked++
	}
	return checked
}

// loadedOnHost reports whether the host kernel has one of the modules (modprobe skips those).
func loadedOnHost(loads []Load) bool {
	for _, l := range loads {
		if _, err := os.Stat("/sys/module/" + l.Name); err == nil {
			return true
		}
	}
	return false
}

// TestResolveMatchesModprobeFixtures indexes fixtures given aliases and soft dependencies and
// compares every load list with modprobe's.
func TestResolveMatchesModprobeFixtures(t *testing.T) {
	modprobe := kmodModprobe(t)
	files := map[string][]byte{}
	for _, n := range []string{"hot0", "hot1", "hot2", "hot3", "hot4", "hot5", "hot6", "hot7", "hot8", "hot9", "producer", "consumer", "hello"} {
		files["extra/"+n+".ko"] = fixture(t, n)
	}
	files["extra/hello.ko"] = patchModinfo(t, files["extra/hello.ko"], "description", "alias=fixture:*", "softdep=pre: hot7 post: consumer")
	files["extra/hot2.ko"] = patchModinfo(t, files["extra/hot2.ko"], "description", "alias=fixture:h*", "softdep=x pre: fixture:p")
	files["extra/producer.ko"] = patchModinfo(t, files["extra/producer.ko"], "description", "alias=fixture:p")
	files["modules.builtin"] = []byte("kernel/crypto/md5.ko\n")
	files["modules.builtin.modinfo"] = []byte("md5.alias=crypto-md5\x00")
	base, modDir := makeTree(t, files)
	x, err := Build(Options{BaseDir: base, Version: release, ConfigPaths: []string{}})
	require.NoError(t, err)
	require.NoError(t, x.Write())
	db, err := LoadDB(modDir)
	require.NoError(t, err)
	names := []string{"fixture:hot", "fixture:p", "fixture:x", "symbol:hot3_step", "crypto-md5", "md5"}
	for _, m := range x.Modules {
		names = append(names, m.Name)
	}
	assert.Equal(t, len(names), matchModprobe(t, modprobe, db, base, release, names))
}
