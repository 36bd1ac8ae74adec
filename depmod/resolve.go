package depmod

import (
	"bufio"
	"fmt"
	"os"
	"strings"
	"syscall"
)

// What modprobe does with depmod's files: find the modules a name or alias means, and the order to
// load them in (dependencies first, soft dependencies around them) or to remove them in.

// DB is a modules directory's indexes as modprobe reads them.
type DB struct {
	Dir      string
	modules  map[string]*dbModule // by module name
	aliases  []dbAlias            // modules.alias in file order
	symbols  map[string]string    // "symbol:NAME" → module
	softdeps []softdepRule        // modules.softdep in file order
	builtin  map[string]bool      // modules.builtin by module name
	// builtinAliases are the aliases of built-in modules (modules.builtin.modinfo).
	builtinAliases []dbAlias
	// cfg is modprobe.d's configuration, nil when lookups use the indexes alone (SetConfig).
	cfg *ModprobeConfig
}

// softdepRule is one softdep line: the module pattern and the names (or aliases) to load around it.
type softdepRule struct {
	pattern string
	Softdep
}

type dbModule struct {
	name, path string   // path as in modules.dep (relative to Dir, or absolute)
	deps       []string // module names, in modules.dep order (users before what they use)
}

type dbAlias struct{ pattern, module string }

// Softdep is a module's soft dependencies: names or aliases of modules to load before and after it,
// when they exist.
type Softdep struct{ Pre, Post []string }

// NotFoundError is a name that means no module; it is ENOENT, as for modprobe.
type NotFoundError struct{ Name, Dir string }

func (e *NotFoundError) Error() string {
	return fmt.Sprintf("Module %s not found in directory %s", e.Name, e.Dir)
}

func (e *NotFoundError) Unwrap() error { return syscall.ENOENT }

// Load is one step of a load list.
type Load struct {
	Name    string
	Path    string // absolute path of the file; "" for a built-in module
	Builtin bool   // built into the kernel: nothing to load
	// Options are the module's parameters (Probe: the configuration's, then the command line's).
	Options string
	// Install is the configured command that runs instead of inserting the module ("" for none), as
	// written (Command substitutes $CMDLINE_OPTS).
	Install string
}

// LoadDB reads dir's modules.dep (required), modules.alias, modules.symbols, modules.softdep,
// modules.builtin and modules.builtin.modinfo.
func LoadDB(dir string) (*DB, error) {
	db := newDB(dir)
	err := eachLine(dir+"/modules.dep", func(line string) {
		path, rest, ok := strings.Cut(line, ":")
		if !ok {
			return
		}
		m := &dbModule{name: ModuleName(path), path: path}
		for _, d := range strings.Fields(rest) {
			m.deps = append(m.deps, ModuleName(d))
		}
		if _, dup := db.modules[m.name]; !dup {
			db.modules[m.name] = m
		}
	})
	if err != nil {
		return nil, fmt.Errorf("depmod: reading modules.dep: %w", err)
	}
	_ = eachLine(dir+"/modules.alias", func(line string) {
		if f := strings.Fields(line); len(f) == 3 && f[0] == "alias" {
			db.addAlias(f[1], f[2])
		}
	})
	_ = eachLine(dir+"/modules.symbols", func(line string) {
		if f := strings.Fields(line); len(f) == 3 && f[0] == "alias" {
			db.symbols[f[1]] = f[2]
		}
	})
	_ = eachLine(dir+"/modules.softdep", func(line string) { db.addSoftdep(line) })
	_ = eachLine(dir+"/modules.builtin", func(line string) { db.builtin[ModuleName(line)] = true })
	if data, err := os.ReadFile(dir + "/modules.builtin.modinfo"); err == nil {
		db.addBuiltinAliases(data)
	}
	return db, nil
}

// OpenDB is what modprobe needs for opts' tree: the written indexes when modules.dep exists, as
// modprobe reads them, otherwise the index computed in memory (kmod's modprobe would fail there;
// kemu runs depmod for it).
func OpenDB(opts Options) (*DB, error) {
	dir := modulesDir(opts)
	if _, err := os.Stat(dir + "/modules.dep"); err == nil {
		return LoadDB(dir)
	}
	x, err := Build(opts)
	if err != nil {
		return nil, err
	}
	return x.DB(), nil
}

// DB is the index as modprobe would read it once written, without going through the files.
func (x *Index) DB() *DB {
	db := newDB(x.Dir)
	for _, m := range x.Modules {
		dm := &dbModule{name: m.Name, path: m.IndexPath()}
		for _, d := range m.AllDependencies() {
			dm.deps = append(dm.deps, d.Name)
		}
		db.modules[m.Name] = dm
		for _, a := range infoValues(m, "alias") {
			db.addAlias(a, m.Name)
		}
		for _, s := range infoValues(m, "softdep") {
			db.addSoftdep("softdep " + m.Name + " " + s)
		}
	}
	for _, s := range x.moduleSymbols() {
		db.symbols["symbol:"+s.name] = s.owner.Name
	}
	if f := x.openInDir("modules.builtin"); f != nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			db.builtin[ModuleName(sc.Text())] = true
		}
		f.Close()
	}
	if data, err := os.ReadFile(x.Dir + "/modules.builtin.modinfo"); err == nil {
		db.addBuiltinAliases(data)
	}
	return db
}

func (db *DB) addBuiltinAliases(data []byte) {
	for _, a := range builtinAliases(data) {
		if p, ok := normalizeAlias(a.pattern); ok {
			db.builtinAliases = append(db.builtinAliases, dbAlias{p, a.module})
		}
	}
}

func newDB(dir string) *DB {
	return &DB{Dir: dir, modules: map[string]*dbModule{}, symbols: map[string]string{}, builtin: map[string]bool{}}
}

func (db *DB) addAlias(pattern, module string) {
	if p, ok := normalizeAlias(pattern); ok {
		db.aliases = append(db.aliases, dbAlias{p, module})
	}
}

// addSoftdep reads "softdep MODULE [pre: A B...] [post: C D...]" as libkmod's config parser: words
// before the first "pre:" or "post:" are ignored, and a later line for the same module is never
// consulted (the first matching line wins).
func (db *DB) addSoftdep(line string) {
	f := strings.Fields(line)
	if len(f) < 3 || f[0] != "softdep" {
		return
	}
	pattern, ok := normalizeAlias(f[1])
	if !ok {
		return
	}
	rule := softdepRule{pattern: pattern}
	var list *[]string
	for _, w := range f[2:] {
		switch w {
		case "pre:":
			list = &rule.Pre
		case "post:":
			list = &rule.Post
		default:
			if list != nil {
				*list = append(*list, w)
			}
		}
	}
	db.softdeps = append(db.softdeps, rule)
}

func eachLine(path string, fn func(string)) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	for sc.Scan() {
		if line := sc.Text(); line != "" && line[0] != '#' {
			fn(line)
		}
	}
	return sc.Err()
}

// Match is one module a name means, and the alias it was found through: a configuration alias's
// pattern, or the name itself when an index alias (or symbol) matched it; "" when the name is the
// module's own. libkmod applies the blacklist and alias options through it.
type Match struct{ Module, Alias string }

// Lookup returns the modules a name means (LookupMatches without the aliases).
func (db *DB) Lookup(name string) []string {
	var out []string
	for _, m := range db.LookupMatches(name) {
		out = append(out, m.Module)
	}
	return out
}

// LookupMatches returns the modules a name means, trying in libkmod's order and stopping at the first
// source that knows the name: the configuration's aliases (shell patterns, every match, in the order
// read), a module of that name (spelled with '-' or '_'; a name with ':' never is one), a
// "symbol:NAME" alias from modules.symbols, the configuration's install then remove commands (the
// first for exactly that name), the aliases of modules.alias (shell patterns; every match, in file
// order), a built-in module of that name, then the aliases of built-in modules.
func (db *DB) LookupMatches(name string) []Match {
	alias, ok := normalizeAlias(name)
	if !ok {
		return nil
	}
	var out []Match
	if db.cfg != nil {
		for _, a := range db.cfg.Aliases {
			if fnmatch(a.Pattern, alias) {
				out = append(out, Match{a.Module, a.Pattern})
			}
		}
		if len(out) > 0 {
			return out
		}
	}
	if m := db.modules[alias]; m != nil && !strings.Contains(alias, ":") {
		return []Match{{Module: m.name}}
	}
	if strings.HasPrefix(alias, "symbol:") {
		if m, ok := db.symbols[alias]; ok {
			return []Match{{m, alias}}
		}
	}
	if db.cfg != nil {
		for _, cmds := range [][]ConfigEntry{db.cfg.Install, db.cfg.Remove} {
			for _, c := range cmds {
				if c.Module == alias {
					return []Match{{Module: alias}}
				}
			}
		}
	}
	if out := matchAliases(db.aliases, alias); len(out) > 0 {
		return out
	}
	if db.builtin[alias] {
		return []Match{{Module: alias}}
	}
	return matchAliases(db.builtinAliases, alias)
}

// LookupName is the lookup of "modinfo -m NAME" (libkmod's kmod_module_new_from_name_lookup): the
// module of that name (up to its first '.', '-' read as '_'), else the built-in module of that name,
// else the first built-in module with that alias; never an alias of the configuration or of
// modules.alias. At most one match.
func (db *DB) LookupName(name string) []Match {
	if i := strings.IndexByte(name, '.'); i >= 0 {
		name = name[:i]
	}
	name = strings.ReplaceAll(name, "-", "_")
	switch {
	case db.modules[name] != nil:
		return []Match{{Module: name}}
	case db.builtin[name]:
		return []Match{{Module: name}}
	}
	if m := matchAliases(db.builtinAliases, name); len(m) > 0 {
		return m[:1]
	}
	return nil
}

// Load is what inserting module means: its file, or that it is built in.
func (db *DB) Load(module string) Load { return db.load(module) }

// matchAliases lists the module of every alias whose pattern matches name, in list order: a module
// with two matching aliases (or one alias listed twice) comes twice, as libkmod's index search
// returns it, and modprobe then probes it twice.
func matchAliases(aliases []dbAlias, name string) []Match {
	var out []Match
	for _, a := range aliases {
		if fnmatch(a.pattern, name) {
			out = append(out, Match{a.module, name})
		}
	}
	return out
}

// Softdeps returns a module's soft dependencies: the first softdep line whose pattern matches it, from
// the configuration (which holds modules.softdep) when there is one.
func (db *DB) Softdeps(module string) Softdep {
	module = strings.ReplaceAll(module, "-", "_")
	if db.cfg != nil {
		for _, r := range db.cfg.Softdeps {
			if fnmatch(r.Pattern, module) {
				return r.Softdep
			}
		}
		if db.cfg.readSoftdepFile {
			return Softdep{}
		}
	}
	for _, r := range db.softdeps {
		if fnmatch(r.pattern, module) {
			return r.Softdep
		}
	}
	return Softdep{}
}

// Resolve is the load list of "modprobe NAME": for every module NAME means, its dependencies from
// the most basic up, each preceded by its pre- and followed by its post-soft dependencies, then the
// module itself likewise (a module a soft dependency brings in again is listed again, as kmod
// lists it). A NotFoundError (ENOENT) when NAME means nothing. Probe
// adds what the configuration says about blacklists, options and install commands.
func (db *DB) Resolve(name string) ([]Load, error) {
	matches := db.LookupMatches(name)
	if len(matches) == 0 {
		return nil, &NotFoundError{Name: name, Dir: db.Dir}
	}
	var out []Load
	for _, m := range matches {
		pl := prober{db: db, visited: map[string]bool{}} // one probe per match, as modprobe inserts each
		pl.list(m)
		out = append(out, pl.out...)
	}
	return out, nil
}

func (db *DB) load(name string) Load {
	m := db.modules[name]
	switch {
	case m == nil:
		return Load{Name: name, Builtin: db.builtin[name]}
	case strings.HasPrefix(m.path, "/"):
		return Load{Name: name, Path: m.path}
	}
	return Load{Name: name, Path: db.Dir + "/" + m.path}
}

// RemoveOrder is the order "modprobe -r NAME" tries to unload in, as kmod 30's rmmod_do_module: the
// module's post-softdeps (last first), the module, its dependencies in load order (base modules
// first), then its pre-softdeps (last first). modprobe skips a dependency whose reference count is
// not zero at the moment it reaches it, so with a chain a -> b -> c, "modprobe -r a" unloads a and b
// only (c is still used by b when it is tried); the caller applies that rule.
func (db *DB) RemoveOrder(name string) ([]string, error) {
	mods := db.Lookup(name)
	if len(mods) == 0 {
		return nil, &NotFoundError{Name: name, Dir: db.Dir}
	}
	var out []string
	seen := map[string]bool{}
	add := func(n string) {
		if !seen[n] {
			seen[n] = true
			out = append(out, n)
		}
	}
	addAll := func(name string) {
		for _, m := range db.Lookup(name) {
			add(m)
		}
	}
	for _, mod := range mods {
		sd := db.Softdeps(mod)
		for i := len(sd.Post) - 1; i >= 0; i-- {
			addAll(sd.Post[i])
		}
		add(mod)
		if m := db.modules[mod]; m != nil {
			for i := len(m.deps) - 1; i >= 0; i-- {
				add(m.deps[i])
			}
		}
		for i := len(sd.Pre) - 1; i >= 0; i-- {
			addAll(sd.Pre[i])
		}
	}
	return out, nil
}

// fnmatch is fnmatch(3) without flags, as libkmod matches alias patterns: '*' and '?' match any
// characters ('/' included), "[...]" a set ('!' or '^' negates, ranges allowed), '\' quotes.
func fnmatch(pattern, s string) bool {
	for len(pattern) > 0 {
		switch c := pattern[0]; c {
		case '*':
			for len(pattern) > 0 && pattern[0] == '*' {
				pattern = pattern[1:]
			}
			if pattern == "" {
				return true
			}
			for i := 0; i <= len(s); i++ {
				if fnmatch(pattern, s[i:]) {
					return true
				}
			}
			return false
		case '?':
			if s == "" {
				return false
			}
		case '[':
			if s == "" {
				return false
			}
			matched, rest, ok := matchSet(pattern[1:], s[0])
			if !ok { // no closing bracket: '[' is an ordinary character
				if s[0] != '[' {
					return false
				}
				break
			}
			if !matched {
				return false
			}
			pattern, s = rest, s[1:]
			continue
		case '\\':
			if len(pattern) > 1 {
				pattern = pattern[1:]
			}
			fallthrough
		default:
			if s == "" || s[0] != pattern[0] {
				return false
			}
		}
		pattern, s = pattern[1:], s[1:]
	}
	return s == ""
}

// matchSet matches c against the bracket expression starting after '['; rest follows its ']'.
func matchSet(p string, c byte) (matched bool, rest string, ok bool) {
	negate := false
	if p != "" && (p[0] == '!' || p[0] == '^') {
		negate, p = true, p[1:]
	}
	for i := 0; i < len(p); i++ {
		if p[i] == ']' && i > 0 {
			return matched != negate, p[i+1:], true
		}
		lo := p[i]
		if lo == '\\' && i+1 < len(p) {
			i++
			lo = p[i]
		}
		hi := lo
		if i+2 < len(p) && p[i+1] == '-' && p[i+2] != ']' {
			hi = p[i+2]
			i += 2
		}
		if lo <= c && c <= hi {
			matched = true
		}
	}
	return false, "", false
}
