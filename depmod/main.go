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
		if upToDate(dirOf(opts)) {
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

func dirOf(opts Options) string {
	return strings.TrimSuffix(opts.BaseDir, "/") + "/lib/modules/" + opts.Version
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

type option struct {
	long  string
	short byte
	arg   bool
}

// options is kmod's cmdopts, in its order (getopt_long's ambiguity messages list them so).
var options = []option{
	{"all", 'a', false}, {"quick", 'A', false}, {"basedir", 'b', true}, {"config", 'C', true},
	{"symvers", 'E', true}, {"filesyms", 'F', true}, {"errsyms", 'e', false},
	{"unresolved-error", 'u', false}, {"quiet", 'q', false}, {"root", 'r', false},
	{"verbose", 'v', false}, {"show", 'n', false}, {"dry-run", 'n', false},
	{"symbol-prefix", 'P', true}, {"warn", 'w', false}, {"map", 'm', false},
	{"version", 'V', false}, {"help", 'h', false},
}

const prog = "depmod"

// parseCommandLine parses as glibc's getopt_long: options and operands mix, "--" ends options,
// short options cluster, long ones may be abbreviated. done means the command has finished
// (help, version, usage error) with status.
func parseCommandLine(args []string, stdout, stderr io.Writer) (c command, status int, done bool) {
	log := &logger{stderr: stderr, verbose: logWarning}
	apply := func(o *option, arg string, long bool) (int, bool) {
		switch o.short {
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
				log.warnf("Ignored deprecated option --%s\n", o.long)
			} else {
				log.warnf("Ignored deprecated option -%c\n", o.short)
			}
		case 'h':
			fmt.Fprint(stdout, helpText)
			return 0, true
		case 'V':
			fmt.Fprint(stdout, "kmod version 30\n+ZSTD +XZ -ZLIB +LIBCRYPTO -EXPERIMENTAL\n")
			return 0, true
		}
		return 0, false
	}
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--":
			c.operands = append(c.operands, args[i+1:]...)
			return c, 0, false
		case strings.HasPrefix(a, "--"):
			name, value, hasValue := strings.Cut(a[2:], "=")
			var matches []*option
			for k := range options {
				if options[k].long == name {
					matches = []*option{&options[k]}
					break
				}
				if strings.HasPrefix(options[k].long, name) {
					matches = append(matches, &options[k])
				}
			}
			if len(matches) > 1 && !sameOption(matches) {
				var b strings.Builder
				for _, m := range matches {
					fmt.Fprintf(&b, " '--%s'", m.long)
				}
				fmt.Fprintf(stderr, "%s: option '--%s' is ambiguous; possibilities:%s\n", prog, name, b.String())
				return c, 1, true
			}
			if len(matches) == 0 {
				fmt.Fprintf(stderr, "%s: unrecognized option '--%s'\n", prog, name)
				return c, 1, true
			}
			o := matches[0]
			switch {
			case o.arg && !hasValue:
				if i+1 == len(args) {
					fmt.Fprintf(stderr, "%s: option '--%s' requires an argument\n", prog, o.long)
					return c, 1, true
				}
				i++
				value = args[i]
			case !o.arg && hasValue:
				fmt.Fprintf(stderr, "%s: option '--%s' doesn't allow an argument\n", prog, o.long)
				return c, 1, true
			}
			if st, stop := apply(o, value, true); stop {
				return c, st, true
			}
		case len(a) > 1 && a[0] == '-':
			for j := 1; j < len(a); j++ {
				o := shortOption(a[j])
				if o == nil {
					fmt.Fprintf(stderr, "%s: invalid option -- '%c'\n", prog, a[j])
					return c, 1, true
				}
				value := ""
				if o.arg {
					switch {
					case j+1 < len(a):
						value = a[j+1:]
					case i+1 < len(args):
						i++
						value = args[i]
					default:
						fmt.Fprintf(stderr, "%s: option requires an argument -- '%c'\n", prog, a[j])
						return c, 1, true
					}
					j = len(a)
				}
				if st, stop := apply(o, value, false); stop {
					return c, st, true
				}
			}
		default:
			c.operands = append(c.operands, a)
		}
	}
	return c, 0, false
}

// sameOption reports whether abbreviation matches all name one option (--show and --dry-run do not;
// glibc accepts a prefix shared by entries with the same flag and value).
func sameOption(ms []*option) bool {
	for _, m := range ms[1:] {
		if m.short != ms[0].short || m.arg != ms[0].arg {
			return false
		}
	}
	return true
}

func shortOption(c byte) *option {
	for k := range options {
		if options[k].short == c {
			return &options[k]
		}
	}
	return nil
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
