package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"kemu/depmod"
	"kemu/internal/getopt"
	"kemu/modinfo"
)

// kmod's modinfo takes module names and aliases as well as files: it looks them up in the module
// directory (/lib/modules/`uname -r`, or -b ROOT and -k VERSION) with modprobe.d's aliases, as
// modprobe does, and prints every module found (-m: module names only, no aliases). The modinfo
// package prints module files; this file turns names into the files they mean before it runs.

// modinfoOptions is modinfo's option table, for finding the operands and -m, -k and -b; the modinfo
// package parses the rewritten command line again and reports any usage error itself.
var modinfoOptions = []getopt.Option{
	{Long: "author", Short: 'a'}, {Long: "description", Short: 'd'}, {Long: "license", Short: 'l'},
	{Long: "parameters", Short: 'p'}, {Long: "filename", Short: 'n'}, {Long: "null", Short: '0'},
	{Long: "modname", Short: 'm'}, {Long: "field", Short: 'F', HasArg: true},
	{Long: "set-version", Short: 'k', HasArg: true}, {Long: "basedir", Short: 'b', HasArg: true},
	{Long: "version", Short: 'V'}, {Long: "help", Short: 'h'}, {Long: "json"},
}

// modinfoModuleExts are the endings that make an existing file a module file for kmod's modinfo.
var modinfoModuleExts = []string{".ko", ".ko.xz", ".ko.zst"}

// modinfoStep is one part of a modinfo run: a command line for the modinfo package (module files,
// or operands it reports as not found), or a built-in module, printed here from
// modules.builtin.modinfo as kmod prints one.
type modinfoStep struct {
	args    []string
	builtin string
}

// modinfoPlan is a modinfo command line with names and aliases resolved.
type modinfoPlan struct {
	steps []modinfoStep
	opt   modinfo.Options // what the options select, for built-in modules
	db    *depmod.DB      // the module directory names were looked up in
}

// planModinfo rewrites modinfo's command line so that every operand naming a module (not a module
// file) becomes the files of the modules it means, in lookup order, and built-in modules steps of
// their own. An operand that means nothing, or a command line modinfo will reject, is left as it is
// for the modinfo package to report in kmod's words. The options come back in long form, without
// -m, -k and -b. With --json, built-in modules are not resolved (the JSON report is the package's).
func planModinfo(args []string) modinfoPlan {
	var kept []string
	var root, version string
	rootSet, versionSet, nameOnly, done, json := false, false, false, false, false
	plan := modinfoPlan{opt: modinfo.Options{Separator: '\n'}}
	operands, stopped, ok := getopt.Parse("modinfo", modinfoOptions, args, io.Discard, func(o *getopt.Option, value string, _ bool) bool {
		switch o.Long {
		case "help", "version":
			done = true
			return true
		case "modname":
			nameOnly = true
			return false
		case "set-version":
			version, versionSet = value, true
			return false
		case "basedir":
			root, rootSet = value, true
			return false
		case "json":
			json = true
		case "null":
			plan.opt.Separator = 0
		case "field":
			plan.opt.Filtered, plan.opt.Field = true, value
		default:
			plan.opt.Filtered, plan.opt.Field = true, modinfoFields[o.Long]
		}
		if o.HasArg {
			kept = append(kept, "--"+o.Long+"="+value)
		} else {
			kept = append(kept, "--"+o.Long)
		}
		return false
	})
	if !ok || stopped || done {
		return modinfoPlan{steps: []modinfoStep{{args: args}}}
	}
	var pending []string // operands for the next modinfo package run
	flush := func() {
		if len(pending) > 0 {
			plan.steps = append(plan.steps, modinfoStep{args: append(append(slices.Clone(kept), "--"), pending...)})
			pending = nil
		}
	}
	for _, op := range operands {
		if (!nameOnly && isModinfoFile(op)) || op == "" {
			pending = append(pending, op)
			continue
		}
		if plan.db == nil {
			plan.db = modinfoDB(root, version, rootSet, versionSet)
		}
		var matches []depmod.Match
		if plan.db != nil {
			matches = plan.db.LookupMatches(op)
			if nameOnly {
				matches = plan.db.LookupName(op)
			}
		}
		if len(matches) == 0 {
			if nameOnly { // the modinfo package reports it as modinfo -m does
				flush()
				plan.steps = append(plan.steps, modinfoStep{args: append(slices.Clone(kept), "--modname", "--", op)})
				continue
			}
			pending = append(pending, op)
			continue
		}
		for _, m := range matches {
			switch l := plan.db.Load(m.Module); {
			case l.Path != "":
				pending = append(pending, l.Path)
			case json:
				pending = append(pending, op) // reported as not found
			default:
				flush()
				plan.steps = append(plan.steps, modinfoStep{builtin: m.Module})
			}
		}
	}
	flush()
	return plan
}

// modinfoFields are the fields modinfo's single-field options select.
var modinfoFields = map[string]string{
	"author": "author", "description": "description", "license": "license", "parameters": "parm", "filename": "filename",
}

// run runs the plan and returns modinfo's exit status.
func (p modinfoPlan) run(stdout, stderr io.Writer) int {
	status := 0
	for _, st := range p.steps {
		if st.builtin == "" {
			status = max(status, modinfo.Main(st.args, stdout, stderr))
			continue
		}
		status = max(status, p.printBuiltin(st.builtin, stdout, stderr))
	}
	return status
}

// printBuiltin is modinfo_do for a built-in module: its name, "(builtin)" as the file name, then
// what modules.builtin.modinfo records for it.
func (p modinfoPlan) printBuiltin(name string, stdout, stderr io.Writer) int {
	sep := string(rune(p.opt.Separator))
	switch {
	case !p.opt.Filtered:
		fmt.Fprintf(stdout, "%-16s%s%s", "name:", name, sep)
	case p.opt.Field == "name":
		fmt.Fprintf(stdout, "%s%s", name, sep)
	}
	warn := func(msg string) { fmt.Fprintf(stderr, "modinfo: ERROR: %s\n", msg) }
	entries, err := p.db.BuiltinInfo(name)
	if err != nil {
		modinfo.Format(stdout, "(builtin)", nil, p.opt, warn) // what kmod prints before it reads the information
		if errors.Is(err, syscall.ENOENT) {
			return 0 // an older kernel, without modules.builtin.modinfo
		}
		warn(fmt.Sprintf("could not get modinfo from '%s': %s", name, modinfo.Strerror(err)))
		return 1
	}
	modinfo.Format(stdout, "(builtin)", entries, p.opt, warn)
	return 0
}

// modinfoDB is the module directory modinfo searches: ROOT/lib/modules/VERSION, VERSION being the
// running kernel's release unless -k gives one, with modprobe.d's default configuration. nil when it
// has no modules.dep.
func modinfoDB(root, version string, rootSet, versionSet bool) *depmod.DB {
	if !versionSet {
		var u unix.Utsname
		if err := unix.Uname(&u); err != nil {
			return nil
		}
		version = unix.ByteSliceToString(u.Release[:])
	}
	if !rootSet {
		root = ""
	}
	dir := root + "/lib/modules/" + version
	db, err := depmod.LoadDB(dir)
	if err != nil {
		return nil
	}
	db.SetConfig(depmod.LoadModprobeConfig(depmod.DefaultModprobeDirs, dir, nil))
	return db
}

// isModinfoFile is kmod's test for a file operand: an existing regular file with a module ending.
func isModinfoFile(arg string) bool {
	st, err := os.Stat(arg)
	if err != nil || !st.Mode().IsRegular() {
		return false
	}
	for _, ext := range modinfoModuleExts {
		if len(arg) > len(ext) && strings.HasSuffix(arg, ext) {
			return true
		}
	}
	return false
}
