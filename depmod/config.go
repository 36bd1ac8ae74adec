package depmod

import (
	"bufio"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
)

// DefaultConfigDirs are where kmod's depmod reads *.conf files from when no -C is given. Like kmod 30,
// they are not moved under -b BASEDIR.
var DefaultConfigDirs = []string{"/etc/depmod.d", "/run/depmod.d", "/usr/local/lib/depmod.d", "/lib/depmod.d"}

// searchKind tells a "search" entry's meaning: a subdirectory, the rest of the tree, or the
// external directories.
type searchKind int

const (
	searchPath searchKind = iota
	searchBuiltin
	searchExternal
)

type search struct {
	kind searchKind
	path string // for searchPath: relative to the modules directory
}

// config is depmod.d's configuration: which copy of a module wins when several have its name
// (search, override), which extra directories hold modules (external) and which directory names are
// skipped (exclude). Every list is in kmod's order: the last line read comes first.
type config struct {
	searches  []search
	overrides []string // "subdir/modname", no extension
	externals []string
	excludes  []string
}

// loadConfig is cfg_load: the *.conf files of every path (a path may also be a file), each name
// read once (the first directory holding it wins), in name order; then "updates" as the only
// search entry when no file gave one.
func loadConfig(paths []string, kversion string, log *logger) *config {
	files := listConfFiles(nil, paths, func(dir, name string) bool {
		if len(name) < 6 || !strings.HasSuffix(name, ".conf") {
			log.infof("All cfg files need .conf: %s/%s\n", dir, name)
			return false
		}
		return true
	}, func(dir string, err error) {
		log.errorf("files list %s: %s\n", dir, strerror(err))
	}, func(dir, name string) {
		log.errorf("Directories inside directories are not supported: %s/%s\n", dir, name)
	})
	cfg := &config{}
	for _, f := range files {
		cfg.parseFile(f.path, kversion, log)
	}
	if len(cfg.searches) == 0 {
		cfg.addSearch("updates")
	}
	return cfg
}

func (c *config) addSearch(p string) {
	s := search{kind: searchPath, path: p}
	switch p {
	case "built-in":
		s = search{kind: searchBuiltin}
	case "external":
		s = search{kind: searchExternal}
	}
	c.searches = slices.Insert(c.searches, 0, s)
}

// confFile is one configuration file to read: its name, which hides files of that name in the
// directories listed after the one holding it, and its path.
type confFile struct{ name, path string }

// listConfFiles is kmod's conf_files_list for every path, adding to files (kept sorted by name, each
// name once: the first one added wins). A path that is a file is added as is; in a directory, hidden
// entries are skipped, accept decides on the others (and reports what it rejects), and a directory
// among them is reported with nested. opendirFailed reports a directory that cannot be read.
func listConfFiles(files []confFile, paths []string, accept func(dir, name string) bool,
	opendirFailed func(dir string, err error), nested func(dir, name string)) []confFile {
	add := func(name, path string) {
		i, found := slices.BinarySearchFunc(files, name, func(f confFile, n string) int { return strings.Compare(f.name, n) })
		if !found {
			files = slices.Insert(files, i, confFile{name, path})
		}
	}
	for _, p := range paths {
		st, err := os.Stat(p)
		if err != nil {
			continue
		}
		if !st.IsDir() {
			add(filepath.Base(p), p)
			continue
		}
		entries, err := os.ReadDir(p)
		if err != nil {
			opendirFailed(p, err)
			continue
		}
		for _, e := range entries {
			name := e.Name()
			if name[0] == '.' || !accept(p, name) {
				continue
			}
			if st, err := os.Stat(filepath.Join(p, name)); err == nil && st.IsDir() {
				nested(p, name)
				continue
			}
			add(name, p+"/"+name)
		}
	}
	return files
}

// kernelMatches is cfg_kernel_matches: "*" or an extended regular expression found in the version.
func kernelMatches(pattern, kversion string) bool {
	if pattern == "*" {
		return true
	}
	re, err := regexp.CompilePOSIX(pattern)
	return err == nil && re.MatchString(kversion)
}

// parseFile is cfg_file_parse; an unreadable file is reported and skipped.
func (c *config) parseFile(path, kversion string, log *logger) {
	f, err := os.Open(path)
	if err != nil {
		log.errorf("file parse %s: %s\n", path, strerror(err))
		return
	}
	defer f.Close()
	r := bufio.NewReader(f)
	linenum := 0
	for {
		line, n, ok := readWrappedLine(r)
		if !ok {
			return
		}
		linenum += n
		if line == "" || line[0] == '#' {
			continue
		}
		fields := strings.FieldsFunc(line, func(r rune) bool { return r == ' ' || r == '\t' })
		if len(fields) == 0 {
			continue
		}
		cmd, args := fields[0], fields[1:]
		switch cmd {
		case "search":
			for _, a := range args {
				c.addSearch(a)
			}
		case "override":
			if len(args) < 3 {
				log.errorf("%s:%d: ignoring bad line starting with '%s'\n", path, linenum, cmd)
				continue
			}
			if !kernelMatches(args[1], kversion) {
				log.infof("%s:%d: override kernel did not match %s\n", path, linenum, args[1])
				continue
			}
			c.overrides = slices.Insert(c.overrides, 0, args[2]+"/"+args[0])
		case "external":
			if len(args) < 2 {
				log.errorf("%s:%d: ignoring bad line starting with '%s'\n", path, linenum, cmd)
				continue
			}
			if !kernelMatches(args[0], kversion) {
				log.infof("%s:%d: external directory did not match %s\n", path, linenum, args[0])
				continue
			}
			c.externals = slices.Insert(c.externals, 0, args[1])
		case "exclude":
			for _, a := range args {
				c.excludes = slices.Insert(c.excludes, 0, a)
			}
		case "include", "make_map_files":
			log.infof("%s:%d: command %s not implemented yet\n", path, linenum, cmd)
		default:
			log.errorf("%s:%d: ignoring bad line starting with '%s'\n", path, linenum, cmd)
		}
	}
}

// readWrappedLine is kmod's freadline_wrapped: a backslash-newline joins lines, a backslash before
// any other character is dropped. n is how many physical lines were consumed; ok is false at the
// end of the input.
func readWrappedLine(r *bufio.Reader) (line string, n int, ok bool) {
	var b strings.Builder
	for {
		c, err := r.ReadByte()
		if err == io.EOF || err != nil {
			if b.Len() == 0 {
				return "", n, false
			}
			return b.String(), n + 1, true
		}
		switch c {
		case '\n':
			return b.String(), n + 1, true
		case '\\':
			next, err := r.ReadByte()
			if err != nil {
				b.WriteByte(0xff) // kmod stores the EOF it read as a byte
				continue
			}
			if next == '\n' {
				n++
				continue
			}
			b.WriteByte(next)
		default:
			b.WriteByte(c)
		}
	}
}
