package main

import (
	"encoding/json"
	"fmt"
	"os"
	"runtime"

	"github.com/spf13/cobra"

	"kemu/loader"
	"kemu/printk"
)

// kemu check links modules the way Linux 6.1 would load them, without running any code: every
// validity, version, license and symbol rule, layout and relocation. A directory is checked as a tree
// with its modules in dependency order (its modules.dep, or the modules' own depends=).
func init() {
	addCommand(&cobra.Command{
		Use:   "check [--kernel P] [--json] FILE...|DIR",
		Short: "Validate and link modules without running them",
		Long: `check loads each module into an emulated kernel's module registry as Linux 6.1 would, stopping short
of running it: ELF validity, vermagic, modversions, license and taint rules, symbol resolution against the
kernel profile and the modules checked before it, layout and relocation. It prints one line per module,
OK or the kernel's message, followed by the other lines the kernel logged while loading it (indented),
then a summary. Modules of a directory are checked in dependency order. --force-vermagic and
--force-modversion load every module as insmod with them would (the checks skipped, taint F).`,
		Args: cobra.MinimumNArgs(1),
		RunE: runCheck,
	})
}

// checkRecord is one module in --json output.
type checkRecord struct {
	Path     string `json:"path"`
	Name     string `json:"name,omitempty"`
	OK       bool   `json:"ok"`
	Errno    string `json:"errno,omitempty"`
	Error    string `json:"error,omitempty"`
	Taints   string `json:"taints,omitempty"`
	CoreSize uint64 `json:"core_size,omitempty"`
	InitSize uint64 `json:"init_size,omitempty"`
	Exports  int    `json:"exports,omitempty"`
	// Log is what the kernel logged while loading the module, its failure message included.
	Log []string `json:"log,omitempty"`
}

func runCheck(cmd *cobra.Command, args []string) error {
	prof, mopts, err := bootConfig()
	if err != nil {
		return err
	}
	// The kernel logs from the linking goroutine only, between two results: what it logged since the
	// last result is about the module of the next one.
	var logged []string
	logLine := func(_ int, line string) { logged = append(logged, line) }
	k, err := loader.NewKernel(loader.Config{Profile: prof, SigEnforce: mopts.SigEnforce, Certs: mopts.Certs, Printk: logLine})
	if err != nil {
		return err
	}
	var files []string
	deps := map[string][]string{}
	for _, a := range args {
		st, err := os.Stat(a)
		if err != nil {
			return err
		}
		if !st.IsDir() {
			files = append(files, a)
			continue
		}
		found, err := loader.FindModules(a)
		if err != nil {
			return err
		}
		files = append(files, found...)
		var d map[string][]string
		if dep := loader.FindModulesDep(a); dep != "" {
			d, err = loader.ReadModulesDep(dep)
		} else {
			d, err = loader.DependsFromModinfo(found)
		}
		if err != nil {
			return err
		}
		for n, v := range d {
			deps[n] = v
		}
	}
	if len(deps) == 0 && len(files) > 1 {
		// Files named one by one: order them by their own depends=.
		if deps, err = loader.DependsFromModinfo(files); err != nil {
			return err
		}
	}
	files = loader.LoadOrder(files, deps)

	out := cmd.OutOrStdout()
	var records []checkRecord
	ok, failed := 0, 0
	opts := loader.CheckOptions{Workers: runtime.NumCPU(), Flags: mopts.LoadFlags}
	k.CheckFilesWith(files, opts, func(r loader.CheckResult) {
		rec := checkRecord{Path: r.Path, OK: r.Err == nil, Log: logged}
		logged = nil
		if r.Err != nil {
			failed++
			rec.Error = r.Err.Error()
			if e := loader.Errno(r.Err); e != 0 {
				rec.Errno = printk.ErrnoName(int64(e))
			}
		} else {
			ok++
			m := r.Module
			rec.Name, rec.Taints, rec.CoreSize, rec.InitSize, rec.Exports = m.Name, m.Taints.String(), m.Core.Size, m.Init.Size, len(m.Exports)
		}
		if global.json {
			records = append(records, rec)
			return
		}
		if rec.OK {
			fmt.Fprintf(out, "%s: OK\n", r.Path)
		} else {
			fmt.Fprintf(out, "%s: %s\n", r.Path, rec.Error)
		}
		for _, line := range rec.Log {
			if line != rec.Error { // the failure's own message is already on the module's line
				fmt.Fprintf(out, "  %s\n", line)
			}
		}
	})
	if global.json {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		if err := enc.Encode(struct {
			Modules []checkRecord `json:"modules"`
			Checked int           `json:"checked"`
			OK      int           `json:"ok"`
			Failed  int           `json:"failed"`
		}{records, ok + failed, ok, failed}); err != nil {
			return err
		}
	} else {
		fmt.Fprintf(out, "checked %d modules: %d ok, %d failed\n", ok+failed, ok, failed)
	}
	if failed > 0 {
		return &exitError{code: 1}
	}
	return nil
}
