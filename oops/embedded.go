package oops

import (
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strings"
)

// EmbeddedPrefix begins a module path that names a file of the module file system given to
// AddModuleFS rather than a host file: "embedded:fault_null.ko" is kemu's own fixture module, which a
// Context records for modules the machine loaded from the copies built into kemu.
const EmbeddedPrefix = "embedded:"

// AddModuleFS registers the module files directly in dir of fsys (kemu's embedded fixtures) under the
// paths EmbeddedPrefix + file name. They are a fallback: a module that already has a file (from
// AddModules or a Context) keeps it. A frame still resolves only when its "name+off/size" matches the
// file's symbol table, so a fixture's name on some other module's oops leaves that frame unresolved
// rather than wrong.
func (s *Symbolizer) AddModuleFS(fsys fs.FS, dir string) error {
	entries, err := fs.ReadDir(fsys, dir)
	if err != nil {
		return fmt.Errorf("embedded modules: %w", err)
	}
	s.moduleFS, s.moduleFSDir = fsys, dir
	for _, e := range entries {
		if e.IsDir() || !isModuleFile(e.Name()) {
			continue
		}
		if name := moduleFileName(e.Name()); s.koPaths[name] == "" {
			s.koPaths[name] = EmbeddedPrefix + e.Name()
		}
	}
	return nil
}

// openModule opens a module file: a host path, or an embedded one (EmbeddedPrefix).
func (s *Symbolizer) openModule(p string) (*objectFile, error) {
	base, embedded := strings.CutPrefix(p, EmbeddedPrefix)
	if !embedded {
		return openObject(p)
	}
	if s.moduleFS == nil || base != path.Base(base) {
		return nil, fmt.Errorf("%s: no embedded module files to read it from", p)
	}
	data, err := fs.ReadFile(s.moduleFS, path.Join(s.moduleFSDir, base))
	if err != nil {
		return nil, err
	}
	if data, err = decompress(data); err != nil {
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	o, err := newObject(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	o.path, o.data = p, data
	return o, nil
}

// ModuleSource is the file one module's symbols and source lines came from.
type ModuleSource struct {
	Module string `json:"module"`
	// Path is the host file, or EmbeddedPrefix + file name for a module built into kemu.
	Path string `json:"path"`
}

// Embedded reports whether the file is one of kemu's embedded fixtures.
func (m ModuleSource) Embedded() bool { return strings.HasPrefix(m.Path, EmbeddedPrefix) }

// ModuleSources lists, by module name, the files the Symbolizer read module symbols from so far.
func (s *Symbolizer) ModuleSources() []ModuleSource {
	var out []ModuleSource
	for name, o := range s.objects {
		out = append(out, ModuleSource{Module: name, Path: o.path})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Module < out[j].Module })
	return out
}
