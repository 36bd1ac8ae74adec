package modinfo

import (
	"fmt"
	"io"
	"strings"
)

// An option of kmod's modinfo (and kemu's --json), for a getopt_long-style parser: modinfo's
// command line, its mistakes and the messages about them have to match kmod's.
type option struct {
	long  string
	short byte // 0: long form only
	arg   bool // takes an argument
	apply func(c *command, arg string)
}

func field(name string) func(*command, string) {
	return func(c *command, _ string) { c.opt.Filtered, c.opt.Field = true, name }
}

var options = []option{
	{"author", 'a', false, field("author")},
	{"description", 'd', false, field("description")},
	{"license", 'l', false, field("license")},
	{"parameters", 'p', false, field("parm")},
	{"filename", 'n', false, field("filename")},
	{"null", '0', false, func(c *command, _ string) { c.opt.Separator = 0 }},
	{"modname", 'm', false, func(c *command, _ string) { c.modname = true }},
	{"field", 'F', true, func(c *command, a string) { c.opt.Filtered, c.opt.Field = true, a }},
	{"set-version", 'k', true, func(*command, string) {}},
	{"basedir", 'b', true, func(*command, string) {}},
	{"version", 'V', false, nil},
	{"help", 'h', false, nil},
	{"json", 0, false, func(c *command, _ string) { c.json = true }},
}

// parseArgs parses the command line as glibc's getopt_long does for modinfo: options and
// operands may be mixed, "--" ends the options, short options cluster ("-0F name", "-Fname"),
// long options may be abbreviated to a unique prefix and take "=value" or the next argument.
// done is true when the command has finished (help, version, or a usage error, whose message
// glibc's wording is reproduced in) and status is its exit status.
func parseArgs(args []string, stdout, stderr io.Writer) (c command, status int, done bool) {
	c.opt.Separator = '\n'
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--":
			c.args = append(c.args, args[i+1:]...)
			return c, 0, false
		case strings.HasPrefix(a, "--"):
			name, value, hasValue := strings.Cut(a[2:], "=")
			o, msg := lookupLong(name, a[2:])
			if o == nil {
				fmt.Fprintf(stderr, "%s: %s\n", prog, msg)
				return c, 1, true
			}
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
			if status, done := c.take(o, value, stdout); done {
				return c, status, true
			}
		case len(a) > 1 && a[0] == '-':
			for j := 1; j < len(a); j++ {
				o := lookupShort(a[j])
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
				if status, done := c.take(o, value, stdout); done {
					return c, status, true
				}
			}
		default:
			c.args = append(c.args, a)
		}
	}
	return c, 0, false
}

// take applies one option; help and version end the command.
func (c *command) take(o *option, value string, stdout io.Writer) (status int, done bool) {
	switch o.long {
	case "help":
		fmt.Fprintf(stdout, "Usage:\n\t%s [options] <modulename|filename> [args]\n%s", prog, helpText)
		return 0, true
	case "version":
		fmt.Fprintln(stdout, "kemu modinfo, output compatible with kmod version 30")
		fmt.Fprintln(stdout, "+ZSTD +XZ -ZLIB +LIBCRYPTO -EXPERIMENTAL")
		return 0, true
	}
	o.apply(c, value)
	return 0, false
}

const helpText = `Options:
	-a, --author                the author field only
	-d, --description           the description field only
	-l, --license               the license field only
	-p, --parameters            the parameters only
	-n, --filename              the file name only
	-0, --null                  end items with NUL rather than newline
	-m, --modname               arguments are module names (kemu: not looked up)
	-F, --field=FIELD           the values of FIELD only
	-k, --set-version=VERSION   accepted for compatibility (no module directory lookup)
	-b, --basedir=DIR           accepted for compatibility (no module directory lookup)
	    --json                  print JSON instead of kmod's text
	-V, --version               show the version
	-h, --help                  show this help
`

func lookupShort(b byte) *option {
	for i := range options {
		if options[i].short == b && b != 0 {
			return &options[i]
		}
	}
	return nil
}

// lookupLong finds a long option by exact name or unique prefix; otherwise it returns glibc's
// complaint, which quotes the whole argument (given, "=value" included).
func lookupLong(name, given string) (*option, string) {
	var matches []*option
	for i := range options {
		switch {
		case options[i].long == name:
			return &options[i], ""
		case strings.HasPrefix(options[i].long, name):
			matches = append(matches, &options[i])
		}
	}
	switch len(matches) {
	case 0:
		return nil, fmt.Sprintf("unrecognized option '--%s'", given)
	case 1:
		return matches[0], ""
	}
	msg := fmt.Sprintf("option '--%s' is ambiguous; possibilities:", given)
	for _, m := range matches {
		msg += fmt.Sprintf(" '--%s'", m.long)
	}
	return nil, msg
}
