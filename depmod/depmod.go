package depmod

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"kemu/modinfo"
)

// Options are depmod's inputs, one field per kmod flag.
type Options struct {
	BaseDir     string   // -b: the tree holding lib/modules/<Version>
	Version     string   // the kernel release
	ConfigPaths []string // -C; nil means DefaultConfigDirs
	Symvers     string   // -E: Module.symvers, the kernel's exports with CRCs (enables CRC checks)
	SystemMap   string   // -F: System.map, the kernel's exports
	ErrSyms     bool     // -e: report needed symbols nobody supplies (needs Symvers or SystemMap)
	SymPrefix   byte     // -P: architecture symbol prefix
	WarnDups    bool     // -w: warn about duplicate index entries
	Verbose     int      // number of -v
	// Files, when set, are the only modules (absolute paths), as "depmod VERSION FILE..."; otherwise
	// the whole modules directory and depmod.d's external directories are searched.
	Files []string
	// Stderr receives kmod's "depmod: LEVEL: ..." messages, Stdout the -v lines; nil discards.
	Stderr, Stdout io.Writer
}

// Module is one module of the index.
type Module struct {
	Name    string // module name: '-' read as '_'
	Path    string // absolute path of the file
	RelPath string // path relative to the modules directory; "" when the file lies outside it
	// Info is the module's .modinfo in file order.
	Info []modinfo.Entry
	// Deps are the modules it needs symbols from, directly, in dependency order (see Index).
	Deps []*Module

	uncRelPath string // RelPath ending in .ko instead of a compressed extension
	dirLen     int    // length of the directory part of Path
	exports    []modinfo.Symbol
	imports    []modinfo.Symbol
	loadErr    error // why its exports could not be read (not ENOENT)
	users      int   // how many modules depend on it
	sortIdx    int   // position from modules.order (negative), or 1
	depSortIdx int   // topological position: users before the modules they use
	idx        int   // position in Index.Modules
	visited    bool  // cycle reporting
}

// IndexPath is how the module appears in the index files: relative when inside the directory.
func (m *Module) IndexPath() string {
	if m.RelPath != "" {
		return m.RelPath
	}
	return m.Path
}

// symbol is an exported symbol and its owner (nil for the kernel's own).
type symbol struct {
	name  string
	owner *Module
	crc   uint64
}

// Index is what depmod computes: every module with its dependencies. Modules are in kmod's output
// order (modules.order first, in its order; the rest in kmod's hash order), and each module's
// dependencies are sorted so that a module comes before the modules it uses: modprobe loads a
// dependency list from its end. An Index is not safe for concurrent use.
type Index struct {
	Dir     string // the modules directory: BaseDir/lib/modules/Version
	Modules []*Module

	opts    Options
	log     *logger
	byName  map[string]*Module
	symbols map[string]*symbol

	exported []*symbol          // moduleSymbols, once computed
	depLines map[*Module]string // depLine, once computed
}

// ErrCycle reports dependency cycles; the cycles themselves are logged as kmod logs them.
var ErrCycle = errors.New("dependency cycles")

// Build computes the index as kmod's depmod does, reading every module once.
func Build(opts Options) (*Index, error) {
	x := &Index{
		opts:    opts,
		log:     &logger{stderr: opts.Stderr, stdout: opts.Stdout, verbose: logWarning + opts.Verbose},
		byName:  map[string]*Module{},
		symbols: map[string]*symbol{},
	}
	x.Dir = modulesDir(opts)
	switch {
	case opts.Symvers != "":
		if err := x.loadSymvers(opts.Symvers); err != nil {
			return nil, err
		}
	case opts.SystemMap != "":
		if err := x.loadSystemMap(opts.SystemMap); err != nil {
			return nil, err
		}
	case opts.ErrSyms:
		x.log.warnf("-e needs -E or -F\n")
		x.opts.ErrSyms = false
	}
	if err := x.findModules(); err != nil {
		return nil, err
	}
	x.order()
	x.readModules()
	x.loadSymbols()
	x.resolveDependencies()
	if err := x.sortDependencies(); err != nil {
		return nil, err
	}
	return x, nil
}

// modulesDir is BaseDir/lib/modules/Version, spelled as kmod spells it in paths and messages.
func modulesDir(opts Options) string {
	return opts.BaseDir + "/lib/modules/" + opts.Version // "-b DIR/" gives "DIR//lib", as in kmod
}

// findModules fills byName from the tree or from opts.Files.
func (x *Index) findModules() error {
	paths := x.opts.ConfigPaths
	if paths == nil {
		paths = DefaultConfigDirs
	}
	s := &scanner{dir: x.Dir, log: x.log, byName: x.byName}
	if x.opts.Files == nil {
		s.cfg = loadConfig(paths, x.opts.Version, x.log)
		if err := s.searchPath(x.Dir); err != nil {
			x.log.critf("could not search modules: %s\n", strerror(err))
			return err
		}
		for _, ext := range s.cfg.externals {
			_ = s.searchPath(ext) // a missing external directory is only reported
		}
		return nil
	}
	s.cfg = &config{}
	for _, p := range x.opts.Files {
		if !strings.HasPrefix(p, "/") {
			x.log.critf("%s: not absolute path.\n", p)
			return &os.PathError{Op: "depmod", Path: p, Err: syscall.EINVAL}
		}
		name := ModuleName(p)
		if _, dup := x.byName[name]; dup {
			x.log.critf("could not add module %s: %s\n", p, strerror(syscall.EEXIST))
			return &os.PathError{Op: "depmod", Path: p, Err: syscall.EEXIST}
		}
		if _, err := os.Stat(p); err != nil {
			x.log.critf("could not create module %s: %s\n", p, strerror(err))
			return err
		}
		s.add(p, name)
	}
	return nil
}

// order builds Modules in kmod's hash order and then sorts by modules.order (depmod_modules_sort):
// listed modules first in the file's order, the others after them in hash order.
func (x *Index) order() {
	x.Modules = make([]*Module, 0, len(x.byName))
	for _, m := range x.byName {
		x.Modules = append(x.Modules, m)
	}
	sortHashOrder(x.Modules, func(m *Module) string { return m.Name }, moduleBuckets)
	defer func() {
		for i, m := range x.Modules {
			m.idx = i
		}
	}()
	const orderFile = "modules.order"
	data, err := os.ReadFile(x.Dir + "/" + orderFile)
	if err != nil {
		x.log.warnf("could not open %s at %s: %s\n", orderFile, x.Dir, strerror(err))
		return
	}
	byUnc := make(map[string]*Module, len(x.Modules))
	for _, m := range x.Modules {
		if m.uncRelPath != "" {
			byUnc[m.uncRelPath] = m
		}
	}
	lines := strings.SplitAfter(string(data), "\n")
	if lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	for i, l := range lines {
		if !strings.HasSuffix(l, "\n") {
			x.log.errorf("%s/%s:%d corrupted line misses '\\n'\n", x.Dir, orderFile, i+1)
			return
		}
	}
	total := len(lines) + 1
	for i, l := range lines {
		if m := byUnc[strings.TrimSuffix(l, "\n")]; m != nil {
			m.sortIdx = i + 1 - total
		}
	}
	slices.SortStableFunc(x.Modules, func(a, b *Module) int { return a.sortIdx - b.sortIdx })
}

// readModules reads every module's exports, .modinfo and needed symbols, in parallel: this is where
// depmod spends its time (hundreds of megabytes for a distribution kernel).
func (x *Index) readModules() {
	work := make(chan *Module)
	var wg sync.WaitGroup
	for range runtime.GOMAXPROCS(0) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for m := range work {
				m.read()
			}
		}()
	}
	for _, m := range x.Modules {
		work <- m
	}
	close(work)
	wg.Wait()
}

// read is what depmod_load_modules asks libkmod for. An unreadable module keeps its place in the
// index with nothing exported or needed.
func (m *Module) read() {
	data, release, err := mapModule(m.Path)
	defer release()
	if err != nil {
		m.loadErr = err
		return
	}
	obj, err := modinfo.OpenObject(data)
	if err != nil {
		m.loadErr = err
		return
	}
	if m.exports, err = obj.ExportedSymbols(); err != nil && !errors.Is(err, syscall.ENOENT) {
		m.loadErr = err
	}
	m.Info, _ = obj.Modinfo()
	m.imports, _ = obj.DependencySymbols()
}

// addSymbol is depmod_symbol_add: a later export of a name replaces the earlier one.
func (x *Index) addSymbol(name string, prefixSkipped bool, crc uint64, owner *Module) {
	if !prefixSkipped && name != "" && name[0] == x.opts.SymPrefix {
		name = name[1:]
	}
	x.symbols[name] = &symbol{name: name, owner: owner, crc: crc}
}

func (x *Index) findSymbol(name string) *symbol {
	name = strings.TrimPrefix(name, ".") // PPC64: .foo is foo
	if name != "" && name[0] == x.opts.SymPrefix {
		name = name[1:]
	}
	return x.symbols[name]
}

// loadSymbols registers every module's exports in index order.
func (x *Index) loadSymbols() {
	for _, m := range x.Modules {
		if m.loadErr != nil {
			x.log.errorf("failed to load symbols from %s: %s\n", m.Path, strerror(m.loadErr))
		}
		for _, s := range m.exports {
			x.addSymbol(s.Name, false, s.CRC, m)
		}
	}
}

// resolveDependencies is depmod_load_dependencies: each needed symbol found in another module makes
// that module a dependency (once).
func (x *Index) resolveDependencies() {
	for _, m := range x.Modules {
		for _, need := range m.imports {
			weak := need.Bind == modinfo.BindWeak
			sym := x.findSymbol(need.Name)
			if sym == nil {
				if x.opts.ErrSyms && !weak {
					x.log.warnf("%s needs unknown symbol %s\n", m.Path, need.Name)
				}
				continue
			}
			if x.opts.Symvers != "" && sym.crc != need.CRC && !weak && x.opts.ErrSyms {
				x.log.warnf("%s disagrees about version of symbol %s\n", m.Path, need.Name)
			}
			if sym.owner == nil || slices.Contains(m.Deps, sym.owner) {
				continue
			}
			m.Deps = append(m.Deps, sym.owner)
			sym.owner.users++
			x.log.showf("%s needs \"%s\": %s\n", m.Path, sym.name, sym.owner.Path)
		}
	}
}

// sortDependencies is depmod_calculate_dependencies: a topological sort that numbers modules from
// the ones nobody uses down to the base modules, then orders each module's dependencies by it.
func (x *Index) sortDependencies() error {
	n := len(x.Modules)
	users := make([]int, n)
	roots := make([]int, 0, n)
	for i, m := range x.Modules {
		m.depSortIdx = int(^uint32(0) >> 1)
		users[i] = m.users
		if users[i] == 0 {
			roots = append(roots, i)
		}
	}
	sorted := 0
	for len(roots) > 0 {
		src := x.Modules[roots[len(roots)-1]]
		roots = roots[:len(roots)-1]
		src.depSortIdx = sorted
		sorted++
		for _, dst := range src.Deps {
			users[dst.idx]--
			if users[dst.idx] == 0 {
				roots = append(roots, dst.idx)
			}
		}
	}
	if sorted < n {
		return fmt.Errorf("depmod: %d modules in %w", x.reportCycles(users), ErrCycle)
	}
	for _, m := range x.Modules {
		slices.SortFunc(m.Deps, func(a, b *Module) int { return a.depSortIdx - b.depSortIdx })
	}
	return nil
}

// AllDependencies is the module's line of modules.dep: every module it needs, directly or not, in
// dependency order (users before what they use).
func (m *Module) AllDependencies() []*Module {
	var all []*Module
	seen := map[*Module]bool{}
	var visit func(*Module)
	visit = func(mod *Module) {
		for _, d := range mod.Deps {
			if !seen[d] {
				seen[d] = true
				all = append(all, d)
				visit(d)
			}
		}
	}
	visit(m)
	slices.SortFunc(all, func(a, b *Module) int { return a.depSortIdx - b.depSortIdx })
	return all
}

// loadSymvers is depmod_load_symvers: vmlinux's exports from Module.symvers, with CRCs.
func (x *Index) loadSymvers(path string) error {
	f, err := os.Open(path)
	if err != nil {
		x.log.critf("could not load %s: %s\n", path, strerror(err))
		return err
	}
	defer f.Close()
	r := bufio.NewReader(f)
	for linenum := 1; ; linenum++ {
		line, err := r.ReadString('\n')
		if line == "" && err != nil {
			break
		}
		// strtok on " \t" keeps the newline in the last field, as kmod reads it.
		fields := strings.FieldsFunc(line, func(r rune) bool { return r == ' ' || r == '\t' })
		if len(fields) < 3 || fields[2] != "vmlinux" {
			continue
		}
		crc, err := strconv.ParseUint(strings.TrimPrefix(strings.TrimPrefix(fields[0], "0x"), "0X"), 16, 64)
		if err != nil {
			// kmod prints errno here although strtoull set none: what is left is the ENOENT of
			// the configuration files libkmod looked for and did not find.
			x.log.errorf("%s:%d Invalid symbol version %s: %s\n", path, linenum, fields[0], strerror(syscall.ENOENT))
			continue
		}
		x.addSymbol(fields[1], false, crc, nil)
	}
	x.addFakeSymbols()
	return nil
}

// loadSystemMap is depmod_load_system_map: vmlinux's exports are its __ksymtab_ symbols.
func (x *Index) loadSystemMap(path string) error {
	f, err := os.Open(path)
	if err != nil {
		x.log.critf("could not load %s: %s\n", path, strerror(err))
		return err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for linenum := 1; sc.Scan(); linenum++ {
		line := sc.Text()
		_, rest, ok1 := strings.Cut(line, " ")
		_, name, ok2 := strings.Cut(rest, " ")
		if !ok1 || !ok2 {
			x.log.errorf("%s:%d: invalid line: %s\n", path, linenum, line+"\n")
			continue
		}
		if name != "" && name[0] == x.opts.SymPrefix {
			name = name[1:]
		}
		if sym, ok := strings.CutPrefix(name, "__ksymtab_"); ok {
			x.addSymbol(sym, true, 0, nil)
		}
	}
	x.addFakeSymbols()
	return nil
}

// addFakeSymbols is depmod_add_fake_syms: symbols the kernel's loader provides itself.
func (x *Index) addFakeSymbols() {
	x.addSymbol("__this_module", true, 0, nil)
	x.addSymbol("_GLOBAL_OFFSET_TABLE_", true, 0, nil)
	if x.findSymbol("TOC.") == nil {
		x.addSymbol("TOC.", true, 0, nil)
	}
}

// Module returns the module of that name ('-' and '_' alike), or nil.
func (x *Index) Module(name string) *Module {
	return x.byName[ModuleName(filepath.Base(name))]
}
