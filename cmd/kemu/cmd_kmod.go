package main

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"kemu/depmod"
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

// modprobeFlags are kemu modprobe's switches that modprobe itself has.
type modprobeFlags struct {
	verbose, quiet, showConfig, showDepends, resolveOnly, ignoreCommands, useBlacklist bool
	configs                                                                            []string
}

// line is the session's modprobe command line for args. Without -C, modprobe.d is read from the
// host's directories, as kmod reads them (the session's modprobe reads only what -C names).
func (f *modprobeFlags) line(args []string) string {
	words := []string{"modprobe"}
	for _, sw := range []struct {
		on   bool
		flag string
	}{{f.verbose, "-v"}, {f.quiet, "-q"}, {f.showConfig, "-c"}, {f.showDepends, "-D"}, {f.resolveOnly, "-R"},
		{f.ignoreCommands, "-i"}, {f.useBlacklist, "-b"}} {
		if sw.on {
			words = append(words, sw.flag)
		}
	}
	configs := f.configs
	if configs == nil {
		for _, d := range depmod.DefaultModprobeDirs {
			if _, err := os.Stat(d); err == nil {
				configs = append(configs, d)
			}
		}
	}
	for _, c := range configs {
		words = append(words, "-C", c)
	}
	return commandLine(words[0], append(words[1:], args...))
}

func init() {
	var sf sessionFlags
	var f modprobeFlags
	c := &cobra.Command{
		Use:   "modprobe [-C DIR]... [-i] [-b] NAME [name=value ...] | -c | -D NAME | -R NAME",
		Short: "Boot a fresh machine, load a module with its dependencies and print the kernel log",
		Long: `modprobe boots a fresh machine and runs "modprobe NAME [name=value ...]" on it: the module's
dependencies (from the module directory, --modules, or the embedded fixtures) load first, deepest first, then
the module with the parameters. It prints modprobe's messages and then the kernel log, and exits as modprobe
does (1 on failure, 137 when module code oopsed and killed the task).

modprobe.d is read as kmod reads it: the -C files or directories, else /etc/modprobe.d, /run/modprobe.d,
/usr/local/lib/modprobe.d and /lib/modprobe.d (*.conf, by name; a name in an earlier directory hides it in
later ones). Aliases, options (ahead of the command line's), blacklist (aliases only; -b: names too) and
softdep apply; kemu runs no shell, so a module with an install command is refused unless -i is given.
-c prints the configuration and the alias indexes, -D the load plan, -R the modules NAME means. The
kernel command line's MODULE.PARAM= options are not read (the machine has none).`,
		Args: func(cmd *cobra.Command, args []string) error {
			if f.showConfig {
				return nil
			}
			return cobra.MinimumNArgs(1)(cmd, args)
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			line := f.line(args)
			f = modprobeFlags{} // cobra keeps flag values between executions of one process (tests)
			return runOnFreshMachine(cmd, &sf, line, 0)
		},
	}
	sf.register(c)
	fl := c.Flags()
	fl.BoolVarP(&f.verbose, "verbose", "v", false, "print the insmod commands modprobe runs")
	fl.BoolVarP(&f.quiet, "quiet", "q", false, "do not print modprobe's error messages")
	fl.StringArrayVarP(&f.configs, "config", "C", nil, "read modprobe.d configuration from `PATH` (a file or directory; repeatable) instead of the default directories")
	fl.BoolVarP(&f.showConfig, "showconfig", "c", false, "print the configuration and the alias indexes, load nothing")
	fl.BoolVar(&f.showConfig, "show-config", false, "same as --showconfig")
	fl.BoolVarP(&f.showDepends, "show-depends", "D", false, "print the insmod (or install) commands of the load plan, load nothing")
	fl.BoolVarP(&f.resolveOnly, "resolve-alias", "R", false, "print the modules NAME means, load nothing")
	fl.BoolVarP(&f.ignoreCommands, "ignore-install", "i", false, "insert the module even if an install command names it")
	fl.BoolVar(&f.ignoreCommands, "ignore-remove", false, "same as --ignore-install")
	fl.BoolVarP(&f.useBlacklist, "use-blacklist", "b", false, "apply the blacklist to module names too, not only to aliases")
	addCommand(c)
}

// shellQuote quotes an argument for a session command line when it holds blanks, quotes or >.
func shellQuote(a string) string {
	if a != "" && !strings.ContainsAny(a, " \t'\"\\>") {
		return a
	}
	return "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
}
