package depmod

import (
	"bufio"
	"fmt"
	"io"
	"strings"
)

// What "modprobe NAME [OPTIONS]" does with modprobe.d's configuration, as libkmod's
// kmod_module_probe_insert_module plans it: the blacklist, the options each module gets and the
// install commands that replace inserting a module.

// SetConfig makes db look names up and plan insertions as modprobe does with cfg (nil: the indexes
// alone). cfg's soft dependencies replace modules.softdep's when cfg was loaded with db's directory.
func (db *DB) SetConfig(cfg *ModprobeConfig) { db.cfg = cfg }

// ProbeOptions are the modprobe switches that change what an insertion does.
type ProbeOptions struct {
	// IgnoreCommands is -i: the module asked for is inserted even if an install command names it,
	// and (as libkmod does) its own soft dependencies are not loaded. Its dependencies' install
	// commands still apply.
	IgnoreCommands bool
	// UseBlacklist is -b: the blacklist applies to a module found by its own name too, not only to
	// one found through an alias.
	UseBlacklist bool
}

// Probe is one module a name means and what inserting it takes.
type Probe struct {
	Match
	// Blacklisted: modprobe inserts nothing for this module and still succeeds.
	Blacklisted bool
	// Loads are the steps in order: dependencies from the most basic up, soft dependencies around
	// each module, the module itself among them. Each carries its options and install command.
	Loads []Load
}

// Probe plans "modprobe NAME EXTRA" for every module NAME means; extra (the command line's options)
// goes to the module asked for, after the configuration's options for it. A NotFoundError (ENOENT)
// when NAME means nothing.
func (db *DB) Probe(name, extra string, opts ProbeOptions) ([]Probe, error) {
	matches := db.LookupMatches(name)
	if len(matches) == 0 {
		return nil, &NotFoundError{Name: name, Dir: db.Dir}
	}
	out := make([]Probe, 0, len(matches))
	for _, m := range matches {
		p := Probe{Match: m}
		if (m.Alias != "" || opts.UseBlacklist) && db.blacklisted(m.Module) {
			p.Blacklisted = true
			out = append(out, p)
			continue
		}
		pl := prober{db: db, visited: map[string]bool{}}
		if opts.IgnoreCommands {
			// __kmod_module_get_probe_list with ignorecmd: dependencies with their soft
			// dependencies, then the module alone.
			pl.visited[m.Module] = true
			if dm := db.modules[m.Module]; dm != nil {
				for i := len(dm.deps) - 1; i >= 0; i-- {
					pl.withSoftdeps(Match{Module: dm.deps[i]})
				}
			}
			pl.add(m, true)
		} else {
			pl.list(m)
		}
		for i := range pl.out {
			l := &pl.out[i]
			x := ""
			if l.Name == m.Module {
				x = extra
			}
			l.Options = concatOptions(db.configOptions(pl.alias[i]), x)
		}
		p.Loads = pl.out
		out = append(out, p)
	}
	return out, nil
}

// prober builds one probe list (libkmod's __kmod_module_get_probe_list and fill_softdep).
type prober struct {
	db      *DB
	visited map[string]bool
	out     []Load
	alias   []Match // the match each load came from, for its options
}

func (p *prober) list(m Match) {
	if p.visited[m.Module] {
		return
	}
	p.visited[m.Module] = true
	if dm := p.db.modules[m.Module]; dm != nil {
		for i := len(dm.deps) - 1; i >= 0; i-- {
			p.withSoftdeps(Match{Module: dm.deps[i]})
		}
	}
	p.withSoftdeps(m)
}

// withSoftdeps is the module with its pre- and post-soft dependencies around it. A module that has
// soft dependencies never runs its install command: libkmod marks it to ignore commands.
func (p *prober) withSoftdeps(m Match) {
	sd := p.db.Softdeps(m.Module)
	var pre, post []Match
	for _, s := range sd.Pre {
		pre = append(pre, p.db.LookupMatches(s)...)
	}
	for _, s := range sd.Post {
		post = append(post, p.db.LookupMatches(s)...)
	}
	for _, s := range pre {
		p.list(s)
	}
	p.add(m, len(pre) > 0 || len(post) > 0)
	for _, s := range post {
		p.list(s)
	}
}

// add appends the module. A module reached twice (as a dependency, then through a soft dependency)
// is listed twice, as libkmod lists it; inserting it the second time finds it loaded.
func (p *prober) add(m Match, ignoreCommand bool) {
	l := p.db.load(m.Module)
	if !ignoreCommand {
		l.Install = p.db.installCommand(m.Module)
	}
	p.out = append(p.out, l)
	p.alias = append(p.alias, m)
}

// blacklisted is module_is_blacklisted: the module's name is on a blacklist line.
func (db *DB) blacklisted(module string) bool {
	if db.cfg == nil {
		return false
	}
	for _, b := range db.cfg.Blacklist {
		if b == module {
			return true
		}
	}
	return false
}

// configOptions are the options lines for the module or the alias it was found through, joined with
// blanks, in the order read (kmod_module_get_options).
func (db *DB) configOptions(m Match) string {
	if db.cfg == nil {
		return ""
	}
	var opts []string
	for _, o := range db.cfg.Options {
		if o.Value != "" && (o.Module == m.Module || (m.Alias != "" && o.Module == m.Alias)) {
			opts = append(opts, o.Value)
		}
	}
	return strings.Join(opts, " ")
}

// installCommand is the first install line whose pattern matches the module, "" when none does.
func (db *DB) installCommand(module string) string {
	if db.cfg == nil {
		return ""
	}
	return firstCommand(db.cfg.Install, module)
}

// RemoveCommand is the first remove line whose pattern matches the module, "" when none does; it
// runs instead of unloading the module (modprobe -r without -i).
func (db *DB) RemoveCommand(module string) string {
	if db.cfg == nil {
		return ""
	}
	return firstCommand(db.cfg.Remove, module)
}

// firstCommand is the command of the first line whose pattern matches the module: libkmod, like
// module-init-tools, uses only that one.
func firstCommand(lines []ConfigEntry, module string) string {
	for _, c := range lines {
		if fnmatch(c.Module, module) {
			return c.Value
		}
	}
	return ""
}

// Command is the install command as it runs: $CMDLINE_OPTS replaced by the options.
func (l Load) Command() string { return strings.ReplaceAll(l.Install, "$CMDLINE_OPTS", l.Options) }

// WriteShowDepends prints the probes as "modprobe --show-depends" does: "insmod PATH OPTIONS" per
// module file, "install COMMAND OPTIONS" where an install command replaces it, "builtin NAME" for a
// built-in module; blacklisted probes print nothing.
func WriteShowDepends(w io.Writer, probes []Probe) error {
	bw := bufio.NewWriter(w)
	for _, p := range probes {
		for _, l := range p.Loads {
			switch {
			case l.Install != "":
				fmt.Fprintf(bw, "install %s %s\n", l.Install, l.Options)
			case l.Path != "":
				fmt.Fprintf(bw, "insmod %s %s\n", l.Path, l.Options)
			case l.Builtin:
				fmt.Fprintf(bw, "builtin %s\n", l.Name)
			}
		}
	}
	return bw.Flush()
}

// concatOptions is module_options_concat: the configuration's options, a blank, then the command
// line's (the blank is there even when the command line gave none).
func concatOptions(config, extra string) string {
	if config == "" {
		return extra
	}
	return config + " " + extra
}
