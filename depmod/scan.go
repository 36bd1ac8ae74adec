package depmod

import (
	"os"
	"strings"
)

// Finding the modules: depmod_modules_search walks the modules directory and the external
// directories in readdir order, and when two files give the same module name keeps the one
// depmod.d ranks higher (on a tie, the one found first).

// kmodExtensions are the file name endings Debian's kmod 30 (zstd and xz, no zlib) treats as modules.
var kmodExtensions = []string{".ko", ".ko.xz", ".ko.zst"}

func hasModuleExtension(name string) bool {
	for _, ext := range kmodExtensions {
		if len(name) > len(ext) && strings.HasSuffix(name, ext) {
			return true
		}
	}
	return false
}

// ModuleName is the module name kmod derives from a path: the base name up to its first '.', with
// '-' read as '_'.
func ModuleName(path string) string {
	base := path[strings.LastIndexByte(path, '/')+1:]
	if i := strings.IndexByte(base, '.'); i >= 0 {
		base = base[:i]
	}
	return strings.ReplaceAll(base, "-", "_")
}

// scanner holds the modules found so far by name.
type scanner struct {
	dir    string // the modules directory, cfg->dirname
	cfg    *config
	log    *logger
	byName map[string]*Module
}

func (s *scanner) excluded(name string) bool {
	if name == "." || name == ".." || name == "build" || name == "source" {
		return true
	}
	for _, e := range s.cfg.excludes {
		if name == e {
			return true
		}
	}
	return false
}

// searchPath is depmod_modules_search_path.
func (s *scanner) searchPath(path string) error {
	d, err := os.Open(path)
	if err != nil {
		s.log.errorf("could not open directory %s: %s\n", path, strerror(err))
		return err
	}
	defer d.Close()
	s.searchDir(d, path+"/")
	return nil
}

// searchDir is depmod_modules_search_dir: base is the directory's path ending in '/'.
func (s *scanner) searchDir(d *os.File, base string) {
	entries, _ := d.ReadDir(-1) // readdir order, as kmod sees it
	for _, e := range entries {
		name := e.Name()
		if s.excluded(name) {
			continue
		}
		path := base + name
		var isDir bool
		switch t := e.Type(); {
		case t.IsRegular():
		case t.IsDir():
			isDir = true
		default: // symlinks and unknown types are followed
			st, err := os.Stat(path)
			if err != nil {
				s.log.errorf("fstatat(%s): %s\n", path, strerror(err))
				continue
			}
			switch {
			case st.Mode().IsRegular():
			case st.IsDir():
				isDir = true
			default:
				s.log.errorf("unsupported file type %s: %o\n", path, uint32(st.Mode().Type()))
				continue
			}
		}
		if isDir {
			sub, err := os.Open(path)
			if err != nil {
				s.log.errorf("openat(%s, O_RDONLY): %s\n", path, strerror(err))
				continue
			}
			s.searchDir(sub, path+"/")
			sub.Close()
			continue
		}
		s.searchFile(base, name)
	}
}

// searchFile is depmod_modules_search_file.
func (s *scanner) searchFile(base, name string) {
	if !hasModuleExtension(name) {
		return
	}
	path := base + name
	modname := ModuleName(name)
	if old := s.byName[modname]; old != nil {
		if s.existingWins(old, path, len(base), len(modname)) {
			return
		}
		delete(s.byName, modname)
	}
	s.add(path, modname)
}

// add is depmod_module_add for a file that exists.
func (s *scanner) add(path, modname string) {
	if _, err := os.Stat(path); err != nil {
		s.log.errorf("could not create module %s: %s\n", path, strerror(err))
		return
	}
	m := &Module{Name: modname, Path: path, dirLen: strings.LastIndexByte(path, '/'), sortIdx: 1}
	if strings.HasPrefix(path, s.dir) && len(path) > len(s.dir) && path[len(s.dir)] == '/' {
		m.RelPath = path[len(s.dir)+1:]
		// The uncompressed relative path is kmod's: the relative path cut to the length of
		// directory + '/' + name + ".ko", so it keeps the file's own spelling of the name.
		if n := m.dirLen - len(s.dir) + len(modname) + len(".ko"); n <= len(m.RelPath) {
			m.uncRelPath = m.RelPath[:n]
		}
	}
	s.byName[modname] = m
}

// existingWins is depmod_module_is_higher_priority: whether the module already found outranks the
// file at newPath. Paths are compared without their extension: directory plus the name's length
// of the base name.
func (s *scanner) existingWins(old *Module, newPath string, baseLen, nameLen int) bool {
	newP := newPath[:baseLen+nameLen]
	oldP := old.Path[:min(len(old.Path), old.dirLen+1+len(old.Name))]
	rel := func(p string) (string, bool) {
		if strings.HasPrefix(p, s.dir) && len(p) > len(s.dir) {
			return p[len(s.dir)+1:], true
		}
		return "", false
	}
	relNew, newOK := rel(newP)
	relOld, oldOK := rel(oldP)
	for _, ov := range s.cfg.overrides {
		if newOK && relNew == ov {
			return false
		}
		if oldOK && relOld == ov {
			return true
		}
	}
	under := func(p, dir string) bool {
		return len(p) > len(dir) && p[len(dir)] == '/' && strings.HasPrefix(p, dir)
	}
	builtinPrio, oldPrio, newPrio := -1, -1, -1
	i := 0
	for _, se := range s.cfg.searches {
		switch {
		case se.kind == searchBuiltin:
			builtinPrio = i
		case se.kind == searchExternal:
			for _, ext := range s.cfg.externals {
				if under(newP, ext) {
					newPrio = i
				}
				if under(oldP, ext) {
					oldPrio = i
				}
				i++
			}
		case newOK && under(relNew, se.path):
			newPrio = i
		case oldOK && under(relOld, se.path):
			oldPrio = i
		}
		i++
	}
	if newPrio < 0 {
		newPrio = builtinPrio
	}
	if oldPrio < 0 {
		oldPrio = builtinPrio
	}
	return newPrio <= oldPrio
}
