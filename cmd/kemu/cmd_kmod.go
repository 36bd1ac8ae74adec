package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"kemu/machine"
	"kemu/session"
)

// The kmod tools as top-level commands, where they make sense on a freshly booted machine: modprobe
// loads a module with its dependencies and shows the kernel log. rmmod, lsmod and dmesg only mean
// something on a machine that already ran commands: they are session commands (kemu run, kemu shell).

// freshReport is the --json output of a kmod command run on a fresh machine.
type freshReport struct {
	Command       session.Record     `json:"command"`
	Dmesg         string             `json:"dmesg"`
	Unimplemented []machine.CallStat `json:"unimplemented"`
}

// runOnFreshMachine boots a machine, runs one kmod command line on it, lets idle virtual time pass
// if the command succeeded (timers and work the module armed run), and prints what the command
// printed followed by the kernel log, or with --json one record of both. It writes --report and
// returns the command's exit status, as the tool would.
func runOnFreshMachine(cmd *cobra.Command, sf *sessionFlags, line string, idle time.Duration) error {
	s, err := sf.open()
	if err != nil {
		return err
	}
	defer s.Close()
	out, errOut := cmd.OutOrStdout(), cmd.ErrOrStderr()
	var rec session.Record
	if global.json {
		rec, _ = s.Exec(line)
	} else {
		rec, _ = s.ExecTo(line, out, errOut)
	}
	if rec.Status == 0 && idle > 0 {
		if _, ok := s.Exec(fmt.Sprintf("sleep %dns", idle.Nanoseconds())); !ok {
			return fmt.Errorf("letting %v pass after %q failed", idle, line)
		}
	}
	m := s.Machine()
	if global.json {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		rep := freshReport{Command: rec, Dmesg: m.Dmesg(), Unimplemented: m.Unimplemented()}
		if rep.Unimplemented == nil {
			rep.Unimplemented = []machine.CallStat{}
		}
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
}

// commandLine is a session command line: name and the arguments, quoted where they need it.
func commandLine(name string, args []string) string {
	for _, a := range args {
		name += " " + shellQuote(a)
	}
	return name
}

func init() {
	var sf sessionFlags
	var verbose, quiet bool
	c := &cobra.Command{
		Use:   "modprobe NAME [name=value ...]",
		Short: "Boot a fresh machine, load a module with its dependencies and print the kernel log",
		Long: `modprobe boots a fresh machine and runs "modprobe NAME [name=value ...]" on it: the module's
dependencies (from the module directory, --modules, or the embedded fixtures) load first, deepest first, then
the module with the parameters. It prints modprobe's messages and then the kernel log, and exits as modprobe
does (1 on failure, 137 when module code oopsed and killed the task).`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var flags []string
			if verbose {
				flags = append(flags, "-v")
			}
			if quiet {
				flags = append(flags, "-q")
			}
			return runOnFreshMachine(cmd, &sf, commandLine("modprobe", append(flags, args...)), 0)
		},
	}
	sf.register(c)
	c.Flags().BoolVarP(&verbose, "verbose", "v", false, "print the insmod commands modprobe runs")
	c.Flags().BoolVarP(&quiet, "quiet", "q", false, "do not print modprobe's error messages")
	addCommand(c)
}

// shellQuote quotes an argument for a session command line when it holds blanks, quotes or >.
func shellQuote(a string) string {
	if a != "" && !strings.ContainsAny(a, " \t'\"\\>") {
		return a
	}
	return "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
}
