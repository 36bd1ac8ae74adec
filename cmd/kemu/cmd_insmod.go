package main

import (
	"time"

	"github.com/spf13/cobra"
)

func init() {
	var sf sessionFlags
	var idle time.Duration
	c := &cobra.Command{
		Use:   "insmod FILE [name=value ...]",
		Short: "Boot a fresh machine, load a module, run its init and print the kernel log",
		Long: `insmod boots a fresh emulated machine, loads FILE with the given parameters as finit_module() does,
runs the module's init function, lets --idle of virtual time pass (work items and timers run) and
prints the kernel log (dmesg) with any oops. A bare file name that is not on disk is looked up among the
embedded fixture modules (kemu insmod hello.ko). On failure it prints kmod insmod's message and exits 1;
if init crashes, the task is killed (exit 137), as the shell shows it.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runOnFreshMachine(cmd, &sf, commandLine("insmod", args), idle)
		},
	}
	sf.register(c)
	c.Flags().DurationVar(&idle, "idle", time.Second, "virtual time to let pass after init (timers, work)")
	addCommand(c)
}
