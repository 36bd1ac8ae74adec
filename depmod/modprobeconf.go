package depmod

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strings"
)

// modprobe.d: the configuration libkmod reads before modprobe looks anything up (aliases, options,
// blacklist, install and remove commands, soft dependencies), and the text "modprobe -c" prints of
// it. The kernel command line's MODULE.PARAM=VALUE options are read only when the caller passes a
// command line (AddKernelCmdline); kemu's machine has none of its own.

// DefaultModprobeDirs are where modprobe reads *.conf files when no -C is given, in libkmod's order
// (a file name found in an earlier directory hides the same name in later ones).
var DefaultModprobeDirs = []string{"/etc/modprobe.d", "/run/modprobe.d", "/usr/local/lib/modprobe.d", "/lib/modprobe.d"}

// ModprobeConfig is modprobe.d's configuration as libkmod holds it: every list in the order its lines
// were read (files sorted by name, the module directory's modules.softdep among them).
type ModprobeConfig struct {
	Aliases   []ConfigAlias // "alias PATTERN MODULE"
	Blacklist []string      // "blacklist MODULE"
	Options   []ConfigEntry // "options MODULE OPTIONS..."
	Install   []ConfigEntry // "install MODULE COMMAND..."
	Remove    []ConfigEntry // "remove MODULE COMMAND..."
	Softdeps  []ConfigSoftdep
	// readSoftdepFile is whether the module directory's modules.softdep was read as part of it.
	readSoftdepFile bool
}

// ConfigAlias is an alias line: names matching Pattern (a shell pattern) mean Module.
type ConfigAlias struct{ Pattern, Module string }

// ConfigEntry is an options, install or remove line: the module (a shell pattern for install and
// remove) and the rest of the line.
type ConfigEntry struct{ Module, Value string }

// ConfigSoftdep is a softdep line: modules matching Pattern load Pre before and Post after them.
type ConfigSoftdep struct {
	Pattern string
	Softdep
}

// LoadModprobeConfig reads the configuration modprobe reads: the *.conf (and *.alias) files of every
// path (a path may be a single file), each file name once (the first path holding it wins), all in
// name order together with modulesDir's modules.softdep when modulesDir is not "". warn receives
// libkmod's messages about what it ignored, as modprobe prints them after "modprobe: ERROR: ".
func LoadModprobeConfig(paths []string, modulesDir string, warn func(string)) *ModprobeConfig {
	if warn == nil {
		warn = func(string) {}
	}
	cfg := &ModprobeConfig{}
	var files []confFile
	if modulesDir != "" {
		files = append(files, confFile{"modules.softdep", modulesDir + "/modules.softdep"})
	}
	files = listConfFiles(files, paths, func(_, name string) bool {
		return len(name) >= 6 && (strings.HasSuffix(name, ".conf") || strings.HasSuffix(name, ".alias"))
	}, func(dir string, err error) {
		warn(fmt.Sprintf("opendir(%s): %s\n", dir, strerror(err)))
	}, func(dir, name string) {
		warn(fmt.Sprintf("Directories inside directories are not supported: %s/%s\n", dir, name))
	})
	for _, f := range files {
		fh, err := os.Open(f.path)
		if err != nil {
			continue // libkmod skips a file it cannot open silently
		}
		cfg.Parse(fh, f.path, warn)
		fh.Close()
		if f.name == "modules.softdep" && f.path == modulesDir+"/modules.softdep" {
			cfg.readSoftdepFile = true
		}
	}
	return cfg
}

// Parse adds the lines of one configuration file (named name in messages) to c, as
// kmod_config_parse reads them: backslash-newline continues a line, '#' starts a comment line, and
// a line libkmod cannot use is reported and skipped.
func (c *ModprobeConfig) Parse(r io.Reader, name string, warn func(string)) {
	br := bufio.NewReader(r)
	linenum := 0
	for {
		line, n, ok := readWrappedLine(br)
		if !ok {
			return
		}
		linenum += n
		if line == "" || line[0] == '#' {
			continue
		}
		cmd, rest := nextWord(line)
		if cmd == "" {
			continue
		}
		if !c.parseLine(cmd, rest) {
			if cmd == "include" || cmd == "config" {
				warn(fmt.Sprintf("%s: command %s is deprecated and not parsed anymore\n", name, cmd))
				continue
			}
			warn(fmt.Sprintf("%s line %d: ignoring bad line starting with '%s'\n", name, linenum, cmd))
		}
	}
}

// parseLine adds one command; false when the line is not a valid one.
func (c *ModprobeConfig) parseLine(cmd, rest string) bool {
	module, tail := nextWord(rest)
	module, ok := normalizeAlias(module)
	if !ok || module == "" {
		return false
	}
	switch cmd {
	case "alias":
		target, _ := nextWord(tail)
		target, ok := normalizeAlias(target)
		if !ok || target == "" {
			return false
		}
		c.Aliases = append(c.Aliases, ConfigAlias{module, target})
	case "blacklist":
		c.Blacklist = append(c.Blacklist, module)
	case "options", "install", "remove", "softdep":
		// The rest of the line after the one blank that ended the module name, blanks kept.
		if tail == "" {
			return false
		}
		switch cmd {
		case "options":
			c.Options = append(c.Options, ConfigEntry{module, strings.ReplaceAll(tail, "\t", " ")})
		case "install":
			c.Install = append(c.Install, ConfigEntry{module, tail})
		case "remove":
			c.Remove = append(c.Remove, ConfigEntry{module, tail})
		case "softdep":
			c.Softdeps = append(c.Softdeps, ConfigSoftdep{Pattern: module, Softdep: parseSoftdepList(tail)})
		}
	default:
		return false
	}
	return true
}

// nextWord is strtok_r over blanks (space and tab): the first word of s, and what follows the one
// blank that ended it ("" at the end of s).
func nextWord(s string) (word, rest string) {
	s = strings.TrimLeft(s, " \t")
	i := strings.IndexAny(s, " \t")
	if i < 0 {
		return s, ""
	}
	return s[:i], s[i+1:]
}

// parseSoftdepList reads "pre: A B post: C" as libkmod does: words are split at any white space;
// words before the first "pre:" or "post:" are dropped. A list that starts with exactly one blank
// makes libkmod glue that blank to the first word, which then is never "pre:" or "post:".
func parseSoftdepList(s string) Softdep {
	words := strings.Fields(s)
	if len(s) >= 2 && isSpace(s[0]) && !isSpace(s[1]) && len(words) > 0 {
		words = words[1:] // " pre:" is an ordinary word, dropped as no list is open yet
	}
	var sd Softdep
	var list *[]string
	for _, w := range words {
		switch w {
		case "pre:":
			list = &sd.Pre
		case "post:":
			list = &sd.Post
		default:
			if list != nil {
				*list = append(*list, w)
			}
		}
	}
	return sd
}

func isSpace(c byte) bool { return strings.IndexByte(" \t\n\v\f\r", c) >= 0 }

// AddKernelCmdline adds the module options of a kernel command line, as libkmod reads /proc/cmdline:
// MODULE.PARAM[=VALUE] words (a quoted value may hold blanks) become options of MODULE, and
// modprobe.blacklist=A,B blacklists modules. Other words are ignored.
func (c *ModprobeConfig) AddKernelCmdline(cmdline string, warn func(string)) {
	if warn == nil {
		warn = func(string) {}
	}
	for _, w := range splitCmdline(cmdline) {
		module, param, ok := strings.Cut(w, ".")
		if !ok {
			continue
		}
		if module == "modprobe" && strings.HasPrefix(param, "blacklist=") {
			c.Blacklist = append(c.Blacklist, strings.Split(param[len("blacklist="):], ",")...)
			continue
		}
		name, ok := normalizeAlias(module)
		if !ok {
			warn(fmt.Sprintf("Ignoring bad option on kernel command line while parsing module name: '%s'\n", module))
			continue
		}
		c.Options = append(c.Options, ConfigEntry{name, param})
	}
}

// splitCmdline is the word scanner of libkmod's kcmdline parser: the words that have the shape
// MODULE.PARAM or MODULE.PARAM=VALUE, where only the value (or a whole word starting with a quote)
// may be quoted and hold blanks. A word quoted as a whole ("mod.p=a b") comes back re-quoted around
// its value (mod.p="a b"), as libkmod unmangles what boot loaders pass.
func splitCmdline(s string) []string {
	const (
		stIgnore = iota
		stModname
		stParam
		stValue
	)
	var out []string
	state, start, quoted, quoteStart, value := stModname, 0, false, -1, -1
	emit := func(end int) {
		w := s[start:end]
		if quoteStart >= 0 && quoteStart < start && value > 0 {
			// "mod.p=v w": drop the opening quote before the module, quote the value instead.
			w = s[start:value] + `"` + s[value:end]
		}
		out = append(out, w)
	}
	reset := func(next int) {
		start, state, quoteStart, value = next, stModname, -1, -1
	}
	for i := 0; i <= len(s); i++ {
		c := byte(0)
		if i < len(s) {
			c = s[i]
		}
		switch {
		case c == '"':
			quoted = !quoted
			if quoted && state == stModname && i == start {
				quoteStart, start = i, i+1
			} else if state != stValue {
				state = stIgnore
			}
		case c == 0 || isSpace(c):
			switch {
			case quoted && state == stValue:
			case quoted:
				state = stIgnore
			case state == stValue || state == stParam:
				emit(i)
				reset(i + 1)
			default:
				reset(i + 1)
			}
		case c == '.':
			if state == stModname {
				state = stParam
			} else if state == stParam {
				state = stIgnore
			}
		case c == '=':
			if state == stParam {
				value, state = i+1, stValue
			} else if state == stModname {
				state = stIgnore
			}
		}
	}
	return out
}

// WriteConfig prints the configuration as "modprobe -c" does before it dumps the indexes: blacklist,
// install, remove, alias, options and softdep lines, each kind in the order read.
func (c *ModprobeConfig) WriteConfig(w io.Writer) error {
	bw := bufio.NewWriter(w)
	for _, m := range c.Blacklist {
		fmt.Fprintf(bw, "blacklist %s\n", m)
	}
	for _, e := range c.Install {
		fmt.Fprintf(bw, "install %s %s\n", e.Module, e.Value)
	}
	for _, e := range c.Remove {
		fmt.Fprintf(bw, "remove %s %s\n", e.Module, e.Value)
	}
	for _, a := range c.Aliases {
		fmt.Fprintf(bw, "alias %s %s\n", a.Pattern, a.Module)
	}
	for _, e := range c.Options {
		fmt.Fprintf(bw, "options %s %s\n", e.Module, e.Value)
	}
	for _, s := range c.Softdeps {
		fmt.Fprintf(bw, "softdep %s %s\n", s.Pattern, s.Softdep.String())
	}
	return bw.Flush()
}

// String is libkmod's rendering of a soft dependency: "pre: A B" and "post: C D", the second glued
// to the first with no blank in between (kmod 30 prints "pre: Apost: C").
func (s Softdep) String() string {
	var b strings.Builder
	if len(s.Pre) > 0 {
		b.WriteString("pre: " + strings.Join(s.Pre, " "))
	}
	if len(s.Post) > 0 {
		b.WriteString("post: " + strings.Join(s.Post, " "))
	}
	return b.String()
}

// ShowConfig is "modprobe -c": the configuration, then the aliases of db's modules.alias.bin and
// modules.symbols.bin as libkmod dumps them (nothing for an index the directory lacks).
func ShowConfig(w io.Writer, c *ModprobeConfig, modulesDir string) error {
	if err := c.WriteConfig(w); err != nil {
		return err
	}
	if _, err := io.WriteString(w, "\n# End of configuration files. Dumping indexes now:\n\n"); err != nil {
		return err
	}
	for _, name := range []string{"modules.alias.bin", "modules.symbols.bin"} {
		data, err := os.ReadFile(modulesDir + "/" + name)
		if err != nil {
			continue
		}
		if err := dumpIndex(w, data, "alias "); err != nil {
			return fmt.Errorf("modprobe -c: %s: %w", name, err)
		}
	}
	return nil
}
