package session

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"syscall"

	"kemu"
	"kemu/loader"
)

// Tree is the module directory modprobe searches: module files by name, each module's dependencies
// and its aliases. A tree comes from a directory (with its modules.dep and modules.alias when depmod
// wrote them, otherwise from each module's .modinfo) or from the fixtures embedded in kemu.
type Tree struct {
	dir     string                 // what modprobe's messages name, e.g. /lib/modules/6.1.0-56-amd64
	fsys    fs.FS                  // module files, by the paths recorded in modules
	modules map[string]*treeModule // by module name
}

// treeModule is one module file of a tree.
type treeModule struct {
	path    string   // inside the tree's fs
	deps    []string // every module it needs, in modules.dep order: the last one is loaded first
	aliases []string // modules.alias patterns
}

// EmbeddedTree is the fixture modules kemu embeds (testdata/modules/*.ko) as the module directory of
// the kernel release: modprobe's messages name /lib/modules/<release>. Dependencies and aliases come
// from each module's .modinfo, as depmod would compute them for this tree.
func EmbeddedTree(release string) (*Tree, error) {
	sub, err := fs.Sub(kemu.Modules, "testdata/modules")
	if err != nil {
		return nil, err
	}
	paths, err := fs.Glob(sub, "*.ko")
	if err != nil {
		return nil, err
	}
	t := &Tree{dir: "/lib/modules/" + release, fsys: sub}
	if err := t.fromModinfo(paths); err != nil {
		return nil, err
	}
	return t, nil
}

// DirTree is the module directory dir: either a directory holding modules.dep or a root whose
// lib/modules/<release> holds it (loader.FindModulesDep), or a plain directory of module files whose
// dependencies are read from their .modinfo.
func DirTree(dir string) (*Tree, error) {
	base := dir
	depFile := loader.FindModulesDep(dir)
	if depFile != "" {
		base = filepath.Dir(depFile)
	}
	files, err := loader.FindModules(base)
	if err != nil {
		return nil, fmt.Errorf("module tree %s: %w", dir, err)
	}
	t := &Tree{dir: base, fsys: os.DirFS(base), modules: map[string]*treeModule{}}
	rel := make([]string, len(files))
	for i, f := range files {
		if rel[i], err = filepath.Rel(base, f); err != nil {
			return nil, err
		}
		rel[i] = filepath.ToSlash(rel[i])
	}
	if depFile == "" {
		if err := t.fromModinfo(rel); err != nil {
			return nil, fmt.Errorf("module tree %s: %w", dir, err)
		}
		return t, nil
	}
	deps, err := loader.ReadModulesDep(depFile)
	if err != nil {
		return nil, fmt.Errorf("module tree %s: %w", dir, err)
	}
	for _, p := range rel {
		name := loader.ModuleName(p)
		t.modules[name] = &treeModule{path: p, deps: deps[name]}
	}
	if err := t.readAliases(filepath.Join(base, "modules.alias")); err != nil {
		return nil, fmt.Errorf("module tree %s: %w", dir, err)
	}
	return t, nil
}

// fromModinfo fills the tree from the modules' own depends= and alias= entries, flattening the
// dependencies into modules.dep order.
func (t *Tree) fromModinfo(paths []string) error {
	t.modules = map[string]*treeModule{}
	direct := map[string][]string{}
	for _, p := range paths {
		image, err := t.readPath(p)
		if err != nil {
			return err
		}
		// depmod names a module after its file (hello_signed.ko is "hello_signed" to modprobe even
		// though the kernel will call it "hello").
		name := loader.ModuleName(p)
		tm := &treeModule{path: p}
		t.modules[name] = tm
		_, mi, _, err := loader.Inspect(image)
		if err != nil {
			continue // not loadable: insmod reports why when modprobe gets to it
		}
		tm.aliases = mi.All("alias")
		for _, v := range mi.All("depends") {
			for _, d := range strings.Split(v, ",") {
				if d != "" {
					direct[name] = append(direct[name], loader.ModuleName(d))
				}
			}
		}
	}
	for name, tm := range t.modules {
		tm.deps = flattenDeps(name, direct)
	}
	return nil
}

// flattenDeps is depmod's view of a module's dependencies: every module it needs, directly or not,
// ordered so that loading them from the last to the first loads each before its users.
func flattenDeps(name string, direct map[string][]string) []string {
	var order []string
	seen := map[string]bool{name: true}
	var visit func(string)
	visit = func(n string) {
		for _, d := range direct[n] {
			if !seen[d] {
				seen[d] = true
				visit(d)
				order = append(order, d)
			}
		}
	}
	visit(name)
	// order is a post-order (dependencies first); modules.dep lists them the other way round.
	for i, j := 0, len(order)-1; i < j; i, j = i+1, j-1 {
		order[i], order[j] = order[j], order[i]
	}
	return order
}

// readAliases reads depmod's modules.alias ("alias PATTERN MODULE" lines); a missing file means no
// aliases.
func (t *Tree) readAliases(file string) error {
	data, err := os.ReadFile(file)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) != 3 || f[0] != "alias" {
			continue
		}
		if tm, ok := t.modules[f[2]]; ok {
			tm.aliases = append(tm.aliases, f[1])
		}
	}
	return nil
}

// Dir is the module directory as modprobe names it in "not found in directory" messages.
func (t *Tree) Dir() string { return t.dir }

// Lookup resolves a module name or alias as kmod_module_new_from_lookup does: the module of that
// name (dashes and underscores are the same), otherwise every module with a matching alias, sorted.
func (t *Tree) Lookup(name string) []string {
	norm := loader.ModuleName(name)
	if _, ok := t.modules[norm]; ok {
		return []string{norm}
	}
	var out []string
	for mod, tm := range t.modules {
		for _, pattern := range tm.aliases {
			if ok, err := path.Match(pattern, name); err == nil && ok {
				out = append(out, mod)
				break
			}
		}
	}
	sort.Strings(out)
	return out
}

// Deps is every module name needs, in modules.dep order (modprobe loads them last to first).
func (t *Tree) Deps(name string) []string {
	if tm, ok := t.modules[name]; ok {
		return tm.deps
	}
	return nil
}

// Path is the file of module name as modprobe -v shows it: the tree's directory joined with the
// module's path in the tree.
func (t *Tree) Path(name string) string {
	tm, ok := t.modules[name]
	if !ok {
		return ""
	}
	return path.Join(filepath.ToSlash(t.dir), tm.path)
}

// Read returns the image of module name, decompressed.
func (t *Tree) Read(name string) ([]byte, error) {
	tm, ok := t.modules[name]
	if !ok {
		return nil, fmt.Errorf("module %s: %w", name, syscall.ENOENT)
	}
	return t.readPath(tm.path)
}

// File returns the image of the tree's file called base (e.g. "hello.ko"), for insmod with a bare
// file name that the host file system does not have.
func (t *Tree) File(base string) ([]byte, bool) {
	for _, tm := range t.modules {
		if path.Base(tm.path) == base {
			image, err := t.readPath(tm.path)
			return image, err == nil
		}
	}
	return nil, false
}

func (t *Tree) readPath(p string) ([]byte, error) {
	data, err := fs.ReadFile(t.fsys, p)
	if err != nil {
		return nil, err
	}
	return loader.Decompress(data)
}
