package main

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"kemu/machine"
	"kemu/session"
)

// insmodReport is kemu insmod --json.
type insmodReport struct {
	Command       session.Record     `json:"command"`
	Dmesg         string             `json:"dmesg"`
	Unimplemented []machine.CallStat `json:"unimplemented"`
}

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
			s, err := sf.open()
			if err != nil {
				return err
			}
			defer s.Close()
			line := "insmod"
			for _, a := range args {
				line += " " + shellQuote(a)
			}
			out, errOut := cmd.OutOrStdout(), cmd.ErrOrStderr()
			var rec session.Record
			if global.json {
				rec, _ = s.Exec(line)
			} else {
				rec, _ = s.ExecTo(line, out, errOut)
			}
			if rec.Status == 0 && idle > 0 {
				// Virtual time: timers and work the module armed run now, in order.
				if _, ok := s.Exec(fmt.Sprintf("sleep %dns", idle.Nanoseconds())); !ok {
					return fmt.Errorf("letting %v pass after init failed", idle)
				}
			}
			m := s.Machine()
			if global.json {
				enc := json.NewEncoder(out)
				enc.SetIndent("", "  ")
				rep := insmodReport{Command: rec, Dmesg: m.Dmesg(), Unimplemented: m.Unimplemented()}
				if err := enc.Encode(rep); err != nil {
					return err
				}
			} else {
				fmt.Fprint(out, m.Dmesg())
				// Calls the emulated kernel could not serve returned 0; say so where the log cannot.
				for _, u := range m.Unimplemented() {
					fmt.Fprintf(errOut, "kemu: unimplemented kernel function %s returned 0 (%d calls, first from %s)\n",
						u.Name, u.Count, u.FirstCaller)
				}
			}
			if err := sf.writeReport(s); err != nil {
				return err
			}
			return statusError(rec.Status)
		},
	}
	sf.register(c)
	c.Flags().DurationVar(&idle, "idle", time.Second, "virtual time to let pass after init (timers, work)")
	addCommand(c)
}
