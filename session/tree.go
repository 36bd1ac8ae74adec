package session

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"kemu"
	"kemu/depmod"
	"kemu/loader"
)

// Tree is the module directory modprobe searches, as depmod's indexes describe it: which modules a
// name or alias means, the order they load in and the order modprobe -r unloads them. It comes from
// a directory depmod already indexed (modules.dep), from a directory of module files indexed on the
// spot, or from the fixtures embedded in kemu.
type Tree struct {
	db   *depmod.DB
	dir  string // the module directory as messages name it
	real string // where the files are on the host when that differs from dir (the embedded fixtures)
	tmp  string // a directory Close removes
}

// EmbeddedTree is the fixture modules kemu embeds (testdata/modules/*.ko) as the module directory
// /lib/modules/<release>, indexed as depmod would index it. The files are written to a temporary
// directory that Close removes.
func EmbeddedTree(release string) (*Tree, error) {
	tmp, err := os.MkdirTemp("", "kemu-modules-")
	if err != nil {
		return nil, err
	}
	t := &Tree{dir: "/lib/modules/" + release, tmp: tmp}
	t.real = filepath.Join(tmp, "lib", "modules", release)
	if err := extractFixtures(t.real); err != nil {
		t.Close()
		return nil, fmt.Errorf("embedded modules: %w", err)
	}
	x, err := depmod.Build(depmod.Options{BaseDir: tmp, Version: release, ConfigPaths: []string{}})
	if err != nil {
		t.Close()
		return nil, fmt.Errorf("embedded modules: %w", err)
	}
	t.db = x.DB()
	return t, nil
}

func extractFixtures(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	paths, err := fs.Glob(kemu.Modules, "testdata/modules/*.ko")
	if err != nil {
		return err
	}
	for _, p := range paths {
		data, err := fs.ReadFile(kemu.Modules, p)
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, filepath.Base(p)), data, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// DirTree is the module directory dir: one holding modules.dep, a root whose lib/modules/<release>
// holds it (loader.FindModulesDep), or a directory of module files, which is indexed as
// "depmod VERSION FILE..." would index them.
func DirTree(dir string) (*Tree, error) {
	if depFile := loader.FindModulesDep(dir); depFile != "" {
		db, err := depmod.LoadDB(filepath.Dir(depFile))
		if err != nil {
			return nil, fmt.Errorf("module tree %s: %w", dir, err)
		}
		return &Tree{db: db, dir: db.Dir}, nil
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	files, err := loader.FindModules(abs)
	if err != nil {
		return nil, fmt.Errorf("module tree %s: %w", dir, err)
	}
	x, err := depmod.Build(depmod.Options{Files: files, ConfigPaths: []string{}})
	if err != nil {
		return nil, fmt.Errorf("module tree %s: %w", dir, err)
	}
	return &Tree{db: x.DB(), dir: abs}, nil
}

// Close removes the files of an embedded tree.
func (t *Tree) Close() error {
	if t.tmp == "" {
		return nil
	}
	return os.RemoveAll(t.tmp)
}

// Dir is the module directory as modprobe names it in "not found in directory" messages.
func (t *Tree) Dir() string { return t.dir }

// Lookup is the modules name means (a module name, a symbol or an alias), as libkmod looks it up.
func (t *Tree) Lookup(name string) []string { return t.db.Lookup(name) }

// Resolve is the load list of module (a name Lookup returned): its dependencies from the most basic
// up, soft dependencies around each, then module itself.
func (t *Tree) Resolve(module string) ([]depmod.Load, error) { return t.db.Resolve(module) }

// RemoveOrder is the order modprobe -r tries to unload module and what it depends on.
func (t *Tree) RemoveOrder(module string) ([]string, error) { return t.db.RemoveOrder(module) }

// Configure makes the tree's lookups and load plans follow modprobe.d's configuration (nil: the
// indexes alone), as modprobe reads it anew for each command.
func (t *Tree) Configure(cfg *depmod.ModprobeConfig) { t.db.SetConfig(cfg) }

// IndexDir is where the tree's index files are on the host (modules.softdep, the .bin indexes
// modprobe -c dumps); an in-memory index has none there.
func (t *Tree) IndexDir() string { return t.db.Dir }

// Probe is modprobe's plan for inserting name with the command line's options: per module name
// means, whether the blacklist stops it, and the load list with each module's options and install
// command.
func (t *Tree) Probe(name, options string, opts depmod.ProbeOptions) ([]depmod.Probe, error) {
	return t.db.Probe(name, options, opts)
}

// RemoveCommand is the configured command that replaces unloading module, "" when none.
func (t *Tree) RemoveCommand(module string) string { return t.db.RemoveCommand(module) }

// Show is how modprobe -v names a module file: inside the module directory, not the host's copy.
func (t *Tree) Show(path string) string {
	if t.real != "" && strings.HasPrefix(path, t.real+"/") {
		return t.dir + path[len(t.real):]
	}
	return path
}

// File returns the image of the tree's module file called base (e.g. "hello.ko"), for insmod with a
// bare file name that the host does not have.
func (t *Tree) File(base string) ([]byte, bool) {
	loads, err := t.db.Resolve(depmod.ModuleName(base))
	if err != nil {
		return nil, false
	}
	for _, l := range loads {
		if l.Path != "" && filepath.Base(l.Path) == base {
			image, err := loader.ReadFile(l.Path)
			return image, err == nil
		}
	}
	return nil, false
}
