package session

import (
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"kemu/depmod"
	"kemu/loader"
	"kemu/oops"
	"kemu/printk"
)

// What `kemu decode REPORT.json` needs to symbolize the session's oopses with no flags: every oops's
// text (Problem.Text) and an oops.Context naming each module the session had loaded when something
// went wrong or when the report was made — its file, core region and section addresses. A module
// loaded from the fixtures built into kemu is named oops.EmbeddedPrefix + file name, so decode reads
// the same bytes from kemu itself; any other module file by its absolute host path.

// oopsContext is the Context of the whole session: the modules loaded at each problem (those unloaded
// since included) and the modules loaded now. A module loaded twice at different addresses appears
// twice; the decoder tells them apart by address, and a "name+off/size" frame needs no address.
func (s *Session) oopsContext() *oops.Context {
	c := &oops.Context{Kernel: s.prof.Release, Modules: []oops.ContextModule{}}
	add := func(m oops.ContextModule) {
		for _, have := range c.Modules {
			if have.Name == m.Name && have.Path == m.Path && have.Base == m.Base && maps.Equal(have.Sections, m.Sections) {
				return
			}
		}
		c.Modules = append(c.Modules, m)
	}
	for _, p := range s.problems {
		for _, m := range p.modules {
			add(m)
		}
	}
	for _, m := range s.contextModules() {
		add(m)
	}
	return c
}

// contextModules describes the modules loaded now, oldest first, with the section addresses the
// loader gave them (init sections included: an oops in init code needs them even once freed).
func (s *Session) contextModules() []oops.ContextModule {
	mods := s.m.Registry().Modules()
	out := make([]oops.ContextModule, 0, len(mods))
	for _, mod := range slices.Backward(mods) {
		cm := oops.ContextModule{Name: mod.Name, Path: s.moduleSource(mod), Base: mod.Core.Addr, Size: mod.Core.Size,
			Sections: map[string]uint64{}}
		for _, sec := range mod.Sections {
			cm.Sections[sec.Name] = sec.Addr
		}
		out = append(out, cm)
	}
	return out
}

// moduleSource is where the decoder finds mod's file: oops.EmbeddedPrefix + file name for a fixture
// kemu embeds (insmod of a bare name the host lacks, or modprobe from the embedded tree), else the
// host file's absolute path. The path insmod was given is relative to this process's directory.
func (s *Session) moduleSource(mod *loader.Module) string {
	p := mod.Path
	if p == "" {
		return ""
	}
	if s.tree.real != "" && strings.HasPrefix(p, s.tree.dir+"/") {
		return oops.EmbeddedPrefix + filepath.Base(p)
	}
	if _, err := os.Stat(p); err == nil {
		if abs, err := filepath.Abs(p); err == nil {
			return abs
		}
		return p
	}
	if strings.Contains(p, "/") {
		return p
	}
	// A bare name the host does not have came from the module tree (readModuleFile).
	if s.tree.real != "" {
		return oops.EmbeddedPrefix + p
	}
	if loads, err := s.tree.Resolve(depmod.ModuleName(p)); err == nil {
		for _, l := range loads {
			if filepath.Base(l.Path) == p {
				return l.Path
			}
		}
	}
	return p
}

// problemText is the log text of the problem report whose first line is recs[0]: up to its end
// marker, or else up to the next report's first line (a soft lockup prints no end marker), or the
// end of recs.
func problemText(recs []printk.Record) string {
	var b strings.Builder
	for i, r := range recs {
		if i > 0 && startsProblem(r.Text) {
			break
		}
		b.WriteString(r.Text)
		b.WriteByte('\n')
		if strings.HasPrefix(r.Text, "---[ end trace") {
			break
		}
	}
	return b.String()
}

// startsProblem reports whether a log line begins a report noteOopses records.
func startsProblem(text string) bool {
	return oopsTitle.MatchString(text) || strings.HasPrefix(text, "watchdog: BUG: soft lockup") ||
		strings.HasPrefix(text, "WARNING: CPU: ") || strings.HasPrefix(text, "------------[ cut here ]")
}
