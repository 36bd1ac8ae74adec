package depmod

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"kemu/internal/getopt"
)

// Main is kmod's depmod command: args are its arguments (without the program name), with kmod's
// options, messages and exit status (0 or 1).
func Main(args []string, stdout, stderr io.Writer) int {
	c, status, done := parseCommandLine(args, stdout, stderr)
	if done {
		return status
	}
	opts := c.opts
	opts.Stdout, opts.Stderr = stdout, stderr
	log := &logger{stderr: stderr, stdout: stdout, verbose: logWarning + opts.Verbose}
	if c.symPrefixErr {
		log.critf("-P only takes a single char\n")
		return 1
	}
	operands := c.operands
	if len(operands) > 0 {
		if !isVersionNumber(operands[0]) {
			log.errorf("Bad version passed %s\n", operands[0])
			return 1
		}
		opts.Version, operands = operands[0], operands[1:]
	} else {
		var un unix.Utsname
		if err := unix.Uname(&un); err != nil {
			log.critf("uname() failed: %s\n", strerror(err))
			return 1
		}
		opts.Version = unix.ByteSliceToString(un.Release[:])
	}
	if opts.BaseDir != "" && !filepath.IsAbs(opts.BaseDir) {
		if wd, err := os.Getwd(); err == nil {
			opts.BaseDir = wd + "/" + opts.BaseDir
		}
	}
	all := c.all || len(operands) == 0
	if c.quick {
		if c.show {
			return 0
		}
		if upToDate(modulesDir(opts)) {
			return 0
		}
		all = true
	}
	if !all {
		opts.Files = operands
	}
	x, err := Build(opts)
	if err != nil {
		return 1
	}
	if c.show {
		if _, err := x.WriteTo(stdout); err != nil {
			return 1
		}
		return 0
	}
	if err := x.Write(); err != nil {
		return 1
	}
	return 0
}

// isVersionNumber is sscanf(version, "%u.%u") == 2: two numbers around a dot, leading blanks and a
// sign allowed before each.
func isVersionNumber(v string) bool {
	number := func(s string) (string, bool) {
		s = strings.TrimLeft(s, " \t\n\v\f\r")
		if s != "" && (s[0] == '+' || s[0] == '-') {
			s = s[1:]
		}
		n := 0
		for n < len(s) && s[n] >= '0' && s[n] <= '9' {
			n++
		}
		return s[n:], n > 0
	}
	rest, ok := number(v)
	if !ok || !strings.HasPrefix(rest, ".") {
		return false
	}
	_, ok = number(rest[1:])
	return ok
}

// upToDate is depfile_up_to_date for -A: modules.dep exists and no module file is newer.
func upToDate(dir string) bool {
	st, err := os.Stat(dir + "/modules.dep")
	if err != nil {
		return false
	}
	newer := errors.New("newer")
	err = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if d.IsDir() && path != dir && (d.Name() == "build" || d.Name() == "source") {
			return filepath.SkipDir
		}
		if d.IsDir() || !hasModuleExtension(d.Name()) {
			return nil
		}
		if info, err := os.Stat(path); err == nil && info.ModTime().Unix() > st.ModTime().Unix() {
			return newer
		}
		return nil
	})
	return err == nil
}

// command is a parsed command line.
type command struct {
	opts                           Options
	all, quick, show, symPrefixErr bool
	operands                       []string
}

// options is kmod's option table, in its order (glibc's ambiguity messages list them so).
var options = []getopt.Option{
	{Long: "all", Short: 'a'}, {Long: "quick", Short: 'A'}, {Long: "basedir", Short: 'b', HasArg: true},
	{Long: "config", Short: 'C', HasArg: true}, {Long: "symvers", Short: 'E', HasArg: true},
	{Long: "filesyms", Short: 'F', HasArg: true}, {Long: "errsyms", Short: 'e'},
	{Long: "unresolved-error", Short: 'u'}, {Long: "quiet", Short: 'q'}, {Long: "root", Short: 'r'},
	{Long: "verbose", Short: 'v'}, {Long: "show", Short: 'n'}, {Long: "dry-run", Short: 'n'},
	{Long: "symbol-prefix", Short: 'P', HasArg: true}, {Long: "warn", Short: 'w'}, {Long: "map", Short: 'm'},
	{Long: "version", Short: 'V'}, {Long: "help", Short: 'h'},
}

const prog = "depmod"

// parseCommandLine parses depmod's arguments. done means the command has finished (help, version,
// usage error) with status.
func parseCommandLine(args []string, stdout, stderr io.Writer) (c command, status int, done bool) {
	log := &logger{stderr: stderr, verbose: logWarning}
	take := func(o *getopt.Option, arg string, long bool) bool {
		switch o.Short {
		case 'a':
			c.all = true
		case 'A':
			c.quick = true
		case 'b':
			c.opts.BaseDir = arg
		case 'C':
			c.opts.ConfigPaths = append(c.opts.ConfigPaths, arg)
		case 'E':
			c.opts.Symvers = arg
		case 'F':
			c.opts.SystemMap = arg
		case 'e':
			c.opts.ErrSyms = true
		case 'v':
			c.opts.Verbose++
		case 'n':
			c.show = true
		case 'P':
			if len(arg) != 1 {
				c.symPrefixErr = true
			} else {
				c.opts.SymPrefix = arg[0]
			}
		case 'w':
			c.opts.WarnDups = true
		case 'u', 'q', 'r', 'm':
			if long {
				log.warnf("Ignored deprecated option --%s\n", o.Long)
			} else {
				log.warnf("Ignored deprecated option -%c\n", o.Short)
			}
		case 'h':
			fmt.Fprint(stdout, helpText)
			return true
		case 'V':
			fmt.Fprint(stdout, "kmod version 30\n+ZSTD +XZ -ZLIB +LIBCRYPTO -EXPERIMENTAL\n")
			return true
		}
		return false
	}
	operands, stopped, ok := getopt.Parse(prog, options, args, stderr, take)
	switch {
	case !ok:
		return c, 1, true
	case stopped:
		return c, 0, true
	}
	c.operands = operands
	return c, 0, false
}

// helpText is kemu's own summary of depmod's options.
const helpText = `Usage: depmod [options] [VERSION [MODULE...]]

Computes the module dependency and alias indexes of lib/modules/VERSION (default: the running
kernel's release) for modprobe. Without MODULE arguments every module of the tree is read.

Options:
  -a, --all              read every module (the default)
  -A, --quick            do nothing when no module is newer than modules.dep
  -b, --basedir=DIR      the tree is DIR/lib/modules/VERSION
  -C, --config=PATH      read depmod.d configuration from PATH instead of the default places
  -e, --errsyms          report needed symbols nobody supplies (with -E or -F)
  -E, --symvers=FILE     the kernel's exports from Module.symvers, with symbol versions
  -F, --filesyms=FILE    the kernel's exports from System.map
  -n, --show, --dry-run  print the text indexes instead of writing any file
  -P, --symbol-prefix=C  the architecture's symbol prefix
  -v, --verbose          report every dependency found
  -w, --warn             warn about duplicate index entries
  -V, --version          print the kmod version this depmod matches
  -h, --help             print this help
`
