package modinfo

import (
	"fmt"
	"io"

	"kemu/internal/getopt"
)

// An option of kmod's modinfo (and kemu's --json): modinfo's command line, its mistakes and the
// messages about them have to match kmod's, so it is parsed by internal/getopt (glibc's getopt_long).
type option struct {
	getopt.Option
	apply func(c *command, arg string)
}

func field(name string) func(*command, string) {
	return func(c *command, _ string) { c.opt.Filtered, c.opt.Field = true, name }
}

var options = []option{
	{getopt.Option{Long: "author", Short: 'a'}, field("author")},
	{getopt.Option{Long: "description", Short: 'd'}, field("description")},
	{getopt.Option{Long: "license", Short: 'l'}, field("license")},
	{getopt.Option{Long: "parameters", Short: 'p'}, field("parm")},
	{getopt.Option{Long: "filename", Short: 'n'}, field("filename")},
	{getopt.Option{Long: "null", Short: '0'}, func(c *command, _ string) { c.opt.Separator = 0 }},
	{getopt.Option{Long: "modname", Short: 'm'}, func(c *command, _ string) { c.modname = true }},
	{getopt.Option{Long: "field", Short: 'F', HasArg: true}, func(c *command, a string) { c.opt.Filtered, c.opt.Field = true, a }},
	{getopt.Option{Long: "set-version", Short: 'k', HasArg: true}, func(*command, string) {}},
	{getopt.Option{Long: "basedir", Short: 'b', HasArg: true}, func(*command, string) {}},
	{getopt.Option{Long: "version", Short: 'V'}, nil},
	{getopt.Option{Long: "help", Short: 'h'}, nil},
	{getopt.Option{Long: "json"}, func(c *command, _ string) { c.json = true }},
}

// parseArgs parses modinfo's command line (options and operands mixed, "--", clustered short
// options, abbreviated long options). done is true when the command has finished (help, version, or
// a usage error, reported in glibc's words) and status is its exit status.
func parseArgs(args []string, stdout, stderr io.Writer) (c command, status int, done bool) {
	c.opt.Separator = '\n'
	opts := make([]getopt.Option, len(options))
	for i, o := range options {
		opts[i] = o.Option
	}
	operands, stopped, ok := getopt.Parse(prog, opts, args, stderr, func(o *getopt.Option, value string, _ bool) bool {
		for i := range opts {
			if &opts[i] == o {
				status, done = c.take(&options[i], value, stdout)
			}
		}
		return done
	})
	if !ok {
		return c, 1, true
	}
	if stopped {
		return c, status, true
	}
	c.args = operands
	return c, 0, false
}

// take applies one option; help and version end the command.
func (c *command) take(o *option, value string, stdout io.Writer) (status int, done bool) {
	switch o.Long {
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
