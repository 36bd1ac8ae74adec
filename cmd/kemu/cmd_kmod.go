package main

import (
	"encoding/json"
	"strings"

	"github.com/spf13/cobra"

	"kemu/session"
)

// The kmod tools as top-level commands, where they make sense on a freshly booted machine: modprobe
// loads a module with its dependencies and shows the kernel log. rmmod, lsmod and dmesg only mean
// something on a machine that already ran commands: they are session commands (kemu run, kemu shell).

// modprobeReport is kemu modprobe --json.
type modprobeReport struct {
	Command session.Record `json:"command"`
	Dmesg   string         `json:"dmesg"`
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
			s, err := sf.open()
			if err != nil {
				return err
			}
			defer s.Close()
			var rec session.Record
			line := "modprobe"
			if verbose {
				line += " -v"
			}
			if quiet {
				line += " -q"
			}
			for _, a := range args {
				line += " " + shellQuote(a)
			}
			out := cmd.OutOrStdout()
			if global.json {
				rec, _ = s.Exec(line)
				dmesg, _ := s.Exec("dmesg")
				enc := json.NewEncoder(out)
				enc.SetIndent("", "  ")
				if err := enc.Encode(modprobeReport{Command: rec, Dmesg: dmesg.Output}); err != nil {
					return err
				}
			} else {
				rec, _ = s.ExecTo(line, out, cmd.ErrOrStderr())
				s.ExecTo("dmesg", out, cmd.ErrOrStderr())
			}
			if err := sf.writeReport(s); err != nil {
				return err
			}
			return statusError(rec.Status)
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
