package main

import (
	"bufio"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"

	"kemu/session"
)

func init() {
	var sf sessionFlags
	c := &cobra.Command{
		Use:   "shell",
		Short: "An interactive root shell on one machine: insmod, rmmod, lsmod, modprobe, dmesg, cat, ...",
		Long: `shell boots one machine and reads commands from standard input, one a line, as kemu run does: on a
terminal it prompts "# " before each; with piped input it prints a transcript (each command after the prompt).
"help" lists the commands, "exit" or end of input ends the shell with the last command's status.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := sf.open()
			if err != nil {
				return err
			}
			defer s.Close()
			in, out := cmd.InOrStdin(), cmd.OutOrStdout()
			interactive := isTerminal(in)
			status := 0
			sc := bufio.NewScanner(in)
			for {
				if interactive && !global.json {
					fmt.Fprint(out, session.Prompt)
				}
				if !sc.Scan() {
					break
				}
				line := strings.TrimSpace(sc.Text())
				if line == "exit" || line == "quit" || line == "logout" {
					break
				}
				var rec session.Record
				var ok bool
				switch {
				case global.json:
					rec, ok = s.Exec(line)
				case interactive:
					rec, ok = s.ExecTo(line, out, cmd.ErrOrStderr())
				default:
					if rec, ok = s.Exec(line); ok {
						fmt.Fprintf(out, "%s%s\n%s", session.Prompt, rec.Command, rec.Output)
					}
				}
				if ok {
					status = rec.Status
				}
			}
			if interactive && !global.json {
				fmt.Fprintln(out)
			}
			if err := sc.Err(); err != nil {
				return err
			}
			return sf.finish(s, out, status)
		},
	}
	sf.register(c)
	addCommand(c)
}

// isTerminal reports whether r is a terminal (the shell then prompts instead of echoing commands).
func isTerminal(r any) bool {
	f, ok := r.(*os.File)
	if !ok {
		return false
	}
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}
