package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"kemu"
	"kemu/oops"
	"kemu/session"
)

// decodeFlags are the symbol sources `kemu decode` can use.
type decodeFlags struct {
	kallsyms  string
	systemMap string
	modules   string
	ko        []string
	vmlinux   string
	context   string
}

func init() {
	var f decodeFlags
	c := &cobra.Command{
		Use:   "decode [FILE|-]",
		Short: "Decode kernel oopses in a console or dmesg log (a ksymoops for today's kernels)",
		Long: `decode finds every crash report in a log (Oops, BUG, WARNING, general protection fault, soft lockup,
KASAN, panic; Linux 4.x to 6.x layouts) and prints it annotated: each frame as sym+off/size [module] with
file:line and inlined functions from DWARF, registers with the symbols they point at, and the Code: bytes
disassembled with the trapping instruction marked.

Frames printed as name+off/size [mod] resolve by name against the module file given with --ko (no load
address needed); without --ko, /usr/lib/debug/lib/modules/<release> and /lib/modules/<release> of the
release the report names are searched when they exist, and last the fixture modules built into kemu (a
frame resolves against one only when its name+off/size matches the fixture's symbols). Bare addresses need
--kallsyms, --system-map, --modules or --vmlinux. A log written by kemu has a sidecar FILE` + oops.ContextSuffix + `
that supplies all of this, and is read automatically; FILE may also be a session report (kemu run --report),
whose oopses decode with the module files and addresses it records. The output ends with the file each
module's symbols came from.

Exit status: 0 when a report was decoded, 2 when the log holds none, 1 on error.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runDecode(cmd.OutOrStdout(), cmd.ErrOrStderr(), cmd.InOrStdin(), args, f)
		},
	}
	c.Flags().StringVar(&f.kallsyms, "kallsyms", "", "a /proc/kallsyms dump (module symbols included)")
	c.Flags().StringVar(&f.systemMap, "system-map", "", "the kernel's System.map")
	c.Flags().StringVar(&f.modules, "modules", "", "a /proc/modules dump, for module load addresses")
	c.Flags().StringArrayVar(&f.ko, "ko", nil, "module file or directory searched recursively (.ko, .ko.xz, .ko.zst, .ko.gz); repeatable")
	c.Flags().StringVar(&f.vmlinux, "vmlinux", "", "the kernel image with symbols (and DWARF for kernel source lines)")
	c.Flags().StringVar(&f.context, "context", "", "a kemu session context (default: FILE"+oops.ContextSuffix+" when it exists)")
	addCommand(c)
}

func runDecode(stdout, stderr io.Writer, stdin io.Reader, args []string, f decodeFlags) error {
	in, name := stdin, "standard input"
	if len(args) == 1 && args[0] != "-" {
		file, err := os.Open(args[0])
		if err != nil {
			return err
		}
		defer file.Close()
		in, name = file, args[0]
		if f.context == "" {
			if _, err := os.Stat(args[0] + oops.ContextSuffix); err == nil {
				f.context = args[0] + oops.ContextSuffix
			}
		}
	}
	input, err := io.ReadAll(in)
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	text, ctx := string(input), (*oops.Context)(nil)
	if rep, ok := readSessionReport(input); ok {
		text, ctx = rep.text(), rep.Context
	}
	reports := oops.ParseString(text)
	if len(reports) == 0 {
		return &exitError{code: 2, msg: fmt.Sprintf("kemu decode: no kernel crash report (Oops, BUG, WARNING, general protection fault, soft lockup, KASAN, panic) found in %s", name)}
	}
	if len(f.ko) == 0 && f.context == "" && ctx == nil {
		f.ko = installedModuleDirs(reports)
	}
	sym, err := newSymbolizer(f)
	if err != nil {
		return err
	}
	defer sym.Close()
	if ctx != nil {
		if err := sym.UseContext(ctx); err != nil {
			return fmt.Errorf("%s: context: %w", name, err)
		}
	}
	// kemu's own fixtures last: a module no other source names resolves against the copy built into
	// kemu, when its printed name+off/size matches that file's symbols.
	if err := sym.AddModuleFS(kemu.Modules, "testdata/modules"); err != nil {
		return err
	}
	for _, r := range reports {
		sym.Symbolize(r)
	}
	sources := usedSources(sym.ModuleSources(), reports)
	if global.json {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(struct {
			Reports  []*oops.Report      `json:"reports"`
			Sources  []oops.ModuleSource `json:"module_sources,omitempty"`
			Warnings []string            `json:"warnings,omitempty"`
		}{reports, sources, sym.Warnings})
	}
	if err := oops.Format(stdout, reports); err != nil {
		return err
	}
	writeModuleSources(stdout, sources)
	for _, w := range sym.Warnings {
		fmt.Fprintf(stderr, "kemu decode: warning: %s\n", w)
	}
	return nil
}

// sessionReport is the part of a session behaviour report (`kemu run --report FILE`) decode reads:
// the problems' log text and the Context the session recorded for them.
type sessionReport struct {
	Problems []struct {
		Text string `json:"text"`
	} `json:"problems"`
	Context *oops.Context `json:"context"`
}

// readSessionReport recognizes a session report by its content: a JSON object carrying the report's
// problems and its commands or context (a report made before reports had a context still names its
// problems, and the embedded fixtures may still resolve them).
func readSessionReport(data []byte) (*sessionReport, bool) {
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return nil, false
	}
	var fields map[string]json.RawMessage
	if json.Unmarshal(trimmed, &fields) != nil || fields["problems"] == nil ||
		fields["context"] == nil && fields["commands"] == nil {
		return nil, false
	}
	var r sessionReport
	if json.Unmarshal(trimmed, &r) != nil {
		return nil, false
	}
	return &r, true
}

// text is every problem's log text, one after the other, as a console would have shown them.
func (r *sessionReport) text() string {
	var b strings.Builder
	for _, p := range r.Problems {
		b.WriteString(p.Text)
		if !strings.HasSuffix(p.Text, "\n") {
			b.WriteByte('\n')
		}
	}
	return b.String()
}

// usedSources keeps the sources of modules that frames resolved against (source lines found): a
// module file is also opened to test whether a register points into it, or whether a frame's
// name+off/size matches it, which is not worth listing when nothing resolved there.
func usedSources(sources []oops.ModuleSource, reports []*oops.Report) []oops.ModuleSource {
	named := map[string]bool{}
	note := func(f oops.Frame) {
		if len(f.Source) > 0 {
			named[strings.ReplaceAll(f.Module, "-", "_")] = true
		}
	}
	for _, r := range reports {
		if r.RIP != nil {
			note(*r.RIP)
		}
		for _, f := range r.Trace {
			note(f)
		}
		for _, st := range r.Stacks {
			for _, f := range st.Frames {
				note(f)
			}
		}
		for _, f := range r.RegisterSyms {
			named[strings.ReplaceAll(f.Module, "-", "_")] = true // a register points into it
		}
	}
	var out []oops.ModuleSource
	for _, src := range sources {
		if named[src.Module] {
			out = append(out, src)
		}
	}
	return out
}

// writeModuleSources says where each module's symbols came from, so a reader knows whether the file
// decode used is the one that was loaded.
func writeModuleSources(w io.Writer, sources []oops.ModuleSource) {
	if len(sources) == 0 {
		return
	}
	fmt.Fprintln(w, "\nModule symbols:")
	for _, src := range sources {
		note := ""
		if src.Embedded() {
			note = " (kemu's embedded fixture)"
		}
		fmt.Fprintf(w, "  %s: %s%s\n", src.Module, src.Path, note)
	}
}

// newSymbolizer loads every symbol source the flags name; a source that cannot be read is an error,
// since the user asked for it.
func newSymbolizer(f decodeFlags) (*oops.Symbolizer, error) {
	s := oops.NewSymbolizer()
	var errs []error
	if f.context != "" {
		c, err := oops.ReadContext(f.context)
		if err == nil {
			err = s.UseContext(c)
		}
		errs = append(errs, wrapFlag("--context", err))
	}
	if f.kallsyms != "" {
		errs = append(errs, wrapFlag("--kallsyms", s.LoadKallsyms(f.kallsyms)))
	}
	if f.systemMap != "" {
		errs = append(errs, wrapFlag("--system-map", s.LoadSystemMap(f.systemMap)))
	}
	if f.modules != "" {
		errs = append(errs, wrapFlag("--modules", s.LoadModules(f.modules)))
	}
	for _, ko := range f.ko {
		errs = append(errs, wrapFlag("--ko", s.AddModules(ko)))
	}
	if f.vmlinux != "" {
		errs = append(errs, wrapFlag("--vmlinux", s.LoadVmlinux(f.vmlinux)))
	}
	return s, errors.Join(errs...)
}

// installedModuleDirs are the module trees of the kernel releases the reports name, when this machine
// has them: /lib/modules/<release> and its detached debug info under /usr/lib/debug. They are the
// default when neither --ko nor a context says where modules are, so a host's own oops decodes as is.
func installedModuleDirs(reports []*oops.Report) []string {
	var dirs []string
	seen := map[string]bool{}
	for _, r := range reports {
		if r.Version == "" || seen[r.Version] || strings.ContainsAny(r.Version, "/\\") {
			continue
		}
		seen[r.Version] = true
		// The debug tree first: its files carry DWARF; the first file found for a module name wins.
		for _, d := range []string{"/usr/lib/debug/lib/modules/" + r.Version, "/lib/modules/" + r.Version} {
			if info, err := os.Stat(d); err == nil && info.IsDir() {
				dirs = append(dirs, d)
			}
		}
	}
	return dirs
}

func wrapFlag(flag string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%s: %w", flag, err)
}

// writeDemoDecode is the demo's last section: what `kemu decode` makes of the session's own oopses
// from its report alone, each module frame with the source line (and inlined callers) it came from.
func writeDemoDecode(w io.Writer, rep *session.Report) {
	var text strings.Builder
	for _, p := range rep.Problems {
		text.WriteString(p.Text)
	}
	reports := oops.ParseString(text.String())
	if len(reports) == 0 {
		return
	}
	sym := oops.NewSymbolizer()
	defer sym.Close()
	if err := errors.Join(sym.UseContext(rep.Context), sym.AddModuleFS(kemu.Modules, "testdata/modules")); err != nil {
		fmt.Fprintf(w, "\n== kemu decode: %v\n", err)
		return
	}
	fmt.Fprintln(w, "\n== kemu decode of the session's oopses (kemu run --report R.json SCRIPT; kemu decode R.json)")
	for _, r := range reports {
		sym.Symbolize(r)
		fmt.Fprintln(w, r.Title)
		frames := r.Trace
		if r.RIP != nil {
			frames = append([]oops.Frame{*r.RIP}, frames...)
		}
		for _, f := range frames {
			if f.Module == "" {
				continue
			}
			label := "  "
			if f.IsIP {
				label = "  RIP "
			}
			fmt.Fprintf(w, "%s%s+%#x/%#x [%s]\n", label, f.Symbol, f.Offset, f.Size, f.Module)
			for _, l := range f.Source {
				fmt.Fprintf(w, "      %s at %s:%d\n", l.Function, l.File, l.Line)
			}
		}
	}
	writeModuleSources(w, usedSources(sym.ModuleSources(), reports))
}
