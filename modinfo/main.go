package modinfo

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// prog is the name kmod's messages start with (its argv[0] when run as modinfo).
const prog = "modinfo"

// moduleExts are the file name endings that make an argument a module file rather than a module
// name or alias: kmod's list for a build with zstd and xz.
var moduleExts = []string{".ko", ".ko.xz", ".ko.zst"}

// command is one parsed modinfo command line.
type command struct {
	opt     Options
	json    bool     // --json: kemu's machine-readable output instead of kmod's text
	modname bool     // -m: arguments are module names
	args    []string // module files, names or aliases
}

// Main runs modinfo with kmod's command line (options may follow operands, as with getopt_long;
// -k and -b are accepted and only matter for name lookup) and returns the exit status: 0, or 1
// when an option is wrong or any module failed. Arguments that are not module files are looked
// up as names or aliases in kmod; kemu has no module directory to search, so they fail with
// kmod's "not found" message.
//
// With --json, kemu prints one JSON array of {filename, entries, params, error} objects instead.
func Main(args []string, stdout, stderr io.Writer) int {
	out := bufio.NewWriter(stdout) // kmod's stdout is buffered too; errors go straight out
	defer out.Flush()
	cmd, status, done := parseArgs(args, out, stderr)
	if done {
		return status
	}
	if len(cmd.args) == 0 {
		fmt.Fprintf(stderr, "%s: ERROR: missing module or filename.\n", prog)
		return 1
	}
	errorf := func(format string, a ...any) {
		fmt.Fprintf(stderr, "%s: ERROR: "+format+"\n", append([]any{prog}, a...)...)
	}
	warn := func(msg string) { errorf("%s", msg) }

	failed := false
	var reports []report
	for _, arg := range cmd.args {
		switch {
		case cmd.modname:
			errorf("Module name %s not found.", arg)
			failed = true
			continue
		case !isModuleFile(arg):
			errorf("Module %s not found.", arg)
			failed = true
			continue
		}
		path, err := absolute(arg)
		if err != nil {
			errorf("Module file %s not found.", arg)
			failed = true
			continue
		}
		if cmd.json {
			r := collect(path, cmd.opt, warn)
			failed = failed || r.Error != ""
			reports = append(reports, r)
			continue
		}
		if !formatHeader(out, path, cmd.opt) {
			continue
		}
		entries, err := readEntries(path)
		if err != nil {
			errorf("could not get modinfo from '%s': %s", moduleName(arg), strerror(err))
			failed = true
			continue
		}
		formatBody(out, entries, cmd.opt, warn)
	}
	if cmd.json {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		if reports == nil {
			reports = []report{}
		}
		if err := enc.Encode(reports); err != nil {
			errorf("%v", err)
			return 1
		}
	}
	if failed {
		return 1
	}
	return 0
}

// report is one module in --json output.
type report struct {
	Filename string  `json:"filename"`
	Entries  []Entry `json:"entries"`
	Params   []Param `json:"params"`
	Error    string  `json:"error,omitempty"`
}

// collect reads one module for --json; a field (-F and friends) keeps only its entries, and the
// merged parameters only for "parm".
func collect(path string, opt Options, warn func(string)) report {
	r := report{Filename: path, Entries: []Entry{}, Params: []Param{}}
	all, field := !opt.Filtered, opt.Field
	if !all && field == "filename" {
		return r
	}
	entries, err := readEntries(path)
	if err != nil {
		r.Error = strerror(err)
		return r
	}
	for _, e := range entries {
		if all || e.Key == field {
			r.Entries = append(r.Entries, e)
		}
	}
	if all || field == "parm" {
		r.Params = append(r.Params, Params(entries, warn)...)
	}
	return r
}

// readEntries is kmod_module_get_info for a module file.
func readEntries(path string) ([]Entry, error) {
	data, err := ReadModule(path)
	if err != nil {
		return nil, err
	}
	return Entries(data)
}

// isModuleFile is kmod's test for treating an argument as a file: it names a regular file
// (symbolic links followed) and ends in a module extension with something before it.
func isModuleFile(arg string) bool {
	st, err := os.Stat(arg)
	if err != nil || !st.Mode().IsRegular() {
		return false
	}
	for _, ext := range moduleExts {
		if len(arg) > len(ext) && strings.HasSuffix(arg, ext) {
			return true
		}
	}
	return false
}

// absolute makes a path absolute the way libkmod does: the working directory (as $PWD spells it
// when that is still accurate), a slash and the argument, with nothing cleaned.
func absolute(arg string) (string, error) {
	if filepath.IsAbs(arg) {
		return arg, nil
	}
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	return wd + "/" + arg, nil
}

// moduleName is the module name libkmod derives from a path: the base name up to its first
// '.', with '-' read as '_'.
func moduleName(path string) string {
	base := path[strings.LastIndexByte(path, '/')+1:]
	if i := strings.IndexByte(base, '.'); i >= 0 {
		base = base[:i]
	}
	return strings.ReplaceAll(base, "-", "_")
}

// glibcMessages are strerror texts for the errnos reading a module can produce; Go's own
// texts are lower-case variants.
var glibcMessages = map[syscall.Errno]string{
	syscall.ENOENT:  "No such file or directory",
	syscall.EINVAL:  "Invalid argument",
	syscall.ENOEXEC: "Exec format error",
	syscall.EACCES:  "Permission denied",
	syscall.EISDIR:  "Is a directory",
	syscall.ENOMEM:  "Cannot allocate memory",
	syscall.EIO:     "Input/output error",
	syscall.EPERM:   "Operation not permitted",
	syscall.ELOOP:   "Too many levels of symbolic links",
}

// strerror renders an error as glibc's strerror would its errno.
func strerror(err error) string {
	var errno syscall.Errno
	if errors.As(err, &errno) {
		if msg, ok := glibcMessages[errno]; ok {
			return msg
		}
		if msg := errno.Error(); msg != "" {
			return strings.ToUpper(msg[:1]) + msg[1:]
		}
	}
	return err.Error()
}
