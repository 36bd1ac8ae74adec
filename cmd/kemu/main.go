// Command kemu runs Linux kernel modules on an emulated x86-64 machine.
//
// Each subcommand lives in its own cmd_*.go file and registers itself with addCommand from an init
// function, so the command tree grows without one file every feature must edit.
package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"kemu/loader"
	"kemu/machine"
	"kemu/modsign"
	"kemu/profile"
)

// globalFlags are the options every subcommand understands.
type globalFlags struct {
	kernel   string // --kernel: profile file or kernel directory; "" means the embedded default
	strategy string // --strategy: module placement (vmalloc, kmalloc, hugepack)
	tlb      string // --tlb: TLB model preset
	strict   bool   // --strict: unimplemented kernel functions stop the call
	json     bool   // --json: machine-readable output

	// The kernel's module-loading policy.
	sigCerts         []string // --sig-cert: trusted module-signing certificates (PEM or DER)
	sigEnforce       bool     // --sig-enforce: module.sig_enforce=1
	forceVermagic    bool     // --force-vermagic: finit_module MODULE_INIT_IGNORE_VERMAGIC
	forceModversions bool     // --force-modversion: finit_module MODULE_INIT_IGNORE_MODVERSIONS
}

var global globalFlags

var rootCmd = &cobra.Command{
	Use:   "kemu",
	Short: "Run Linux kernel modules on an emulated x86-64 machine",
	Long: `kemu loads Linux kernel modules (.ko) the way the Linux 6.1 loader does, runs their code on an
emulated x86-64 CPU with an emulated kernel around it, and measures where the module lives in memory.`,
	SilenceUsage:  true,
	SilenceErrors: true,
}

func init() {
	pf := rootCmd.PersistentFlags()
	pf.StringVar(&global.kernel, "kernel", "", "kernel profile file or kernel directory (default: the embedded profile)")
	pf.StringVar(&global.strategy, "strategy", "vmalloc", "module placement strategy: vmalloc, kmalloc, hugepack, kmalloc-directmap (shows why the direct map cannot hold x86-64 modules)")
	pf.StringVar(&global.tlb, "tlb", "skylake", "TLB model preset: skylake, goldencove, zen2")
	pf.BoolVar(&global.strict, "strict", false, "stop a call into an unimplemented kernel function with an oops-style report")
	pf.BoolVar(&global.json, "json", false, "print machine-readable JSON")
	pf.StringArrayVar(&global.sigCerts, "sig-cert", nil, "trust this module-signing certificate (PEM or DER `FILE`; repeatable)")
	pf.BoolVar(&global.sigEnforce, "sig-enforce", false, "refuse modules without a valid signature by a --sig-cert key (module.sig_enforce=1)")
	pf.BoolVar(&global.forceVermagic, "force-vermagic", false, "ignore the version magic when loading (taints F)")
	pf.BoolVar(&global.forceModversions, "force-modversion", false, "ignore symbol version CRCs when loading (taints F)")
}

// bootConfig is what every module-loading command boots from the global flags: the kernel profile
// (--kernel) and the machine's placement, strictness and module-loading policy.
func bootConfig() (*profile.Profile, machine.Options, error) {
	prof, err := loadProfile()
	if err != nil {
		return nil, machine.Options{}, err
	}
	opts := machine.Options{Strict: global.strict, Strategy: global.strategy, SigEnforce: global.sigEnforce}
	if len(global.sigCerts) > 0 {
		certs, err := modsign.LoadCerts(global.sigCerts...)
		if err != nil {
			return nil, opts, fmt.Errorf("--sig-cert: %w", err)
		}
		opts.Certs = certs
	}
	if global.forceVermagic {
		opts.LoadFlags |= loader.IgnoreVermagic
	}
	if global.forceModversions {
		opts.LoadFlags |= loader.IgnoreModversions
	}
	return prof, opts, nil
}

// addCommand registers a subcommand; call it from the init function of the file that defines it.
func addCommand(c *cobra.Command) { rootCmd.AddCommand(c) }

// exitError carries a process exit status and an optional message, for commands whose exit codes
// follow a convention (insmod returns 1 on failure, decode returns 2 when it finds no report, ...).
type exitError struct {
	code int
	msg  string
}

func (e *exitError) Error() string { return e.msg }

func main() {
	err := rootCmd.Execute()
	if err == nil {
		return
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.msg != "" {
			fmt.Fprintln(os.Stderr, ee.msg)
		}
		os.Exit(ee.code)
	}
	fmt.Fprintf(os.Stderr, "kemu: %v\n", err)
	os.Exit(1)
}
