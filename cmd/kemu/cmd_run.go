package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"kemu/session"
)

// sessionFlags are the options of every command that drives a session.
type sessionFlags struct {
	modules string // --modules: module directory modprobe searches ("" = the embedded fixtures)
	report  string // --report: write the JSON behaviour report here
	measure bool   // --measure: a --tlb model sees every guest access; its statistics go in the report
}

func (f *sessionFlags) register(c *cobra.Command) {
	c.Flags().StringVar(&f.modules, "modules", "", "module directory for modprobe: a tree with modules.dep, or a directory of .ko files (default: the embedded fixtures)")
	c.Flags().StringVar(&f.report, "report", "", "write a JSON behaviour report of the session to `FILE`")
	c.Flags().BoolVar(&f.measure, "measure", false, "feed every guest memory access to the --tlb model and put its statistics in the report (slow)")
}

// open boots a fresh machine and a session over it.
func (f *sessionFlags) open() (*session.Session, error) {
	prof, mopts, err := bootConfig()
	if err != nil {
		return nil, err
	}
	opts := session.Options{Machine: mopts}
	if f.measure {
		opts.TLB = global.tlb
	}
	if f.modules != "" {
		if opts.Tree, err = session.DirTree(f.modules); err != nil {
			return nil, err
		}
	}
	return session.New(prof, opts)
}

// finish ends a script or shell session: with --json it prints the records (one per command: command,
// output, status), with --report it writes the report, and it turns the session's status into the
// process's exit status.
func (f *sessionFlags) finish(s *session.Session, out io.Writer, status int) error {
	if global.json {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		recs := s.Records()
		if recs == nil {
			recs = []session.Record{}
		}
		if err := enc.Encode(recs); err != nil {
			return err
		}
	}
	if err := f.writeReport(s); err != nil {
		return err
	}
	return statusError(status)
}

// writeReport writes the behaviour report, if one was asked for.
func (f *sessionFlags) writeReport(s *session.Session) error {
	if f.report == "" {
		return nil
	}
	data, err := json.MarshalIndent(s.Report(), "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(f.report, append(data, '\n'), 0o644); err != nil {
		return fmt.Errorf("report: %w", err)
	}
	return nil
}

// statusError turns a session's exit status into the process's.
func statusError(status int) error {
	if status == 0 {
		return nil
	}
	return &exitError{code: status}
}

func init() {
	var sf sessionFlags
	var errexit bool
	c := &cobra.Command{
		Use:   "run SCRIPT|-",
		Short: "Boot one machine and run a session script on it",
		Long: `run boots one machine and executes SCRIPT (or standard input for -) on it, one command a line:
insmod, rmmod, lsmod, modprobe, dmesg, cat, echo TEXT > PATH, ioctl, sleep; # starts a comment. Each command
prints what the real tool prints on Linux; a failing command does not stop the script. The transcript shows
each command after a "# " prompt. The exit status is the last command's, as sh's (with -e: the first failure's).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			in := cmd.InOrStdin()
			if args[0] != "-" {
				f, err := os.Open(args[0])
				if err != nil {
					return err
				}
				defer f.Close()
				in = f
			}
			s, err := sf.open()
			if err != nil {
				return err
			}
			defer s.Close()
			out := cmd.OutOrStdout()
			transcript := out
			if global.json {
				transcript = io.Discard
			}
			status, err := s.Script(in, transcript, errexit)
			if err != nil {
				return err
			}
			return sf.finish(s, out, status)
		},
	}
	sf.register(c)
	c.Flags().BoolVarP(&errexit, "errexit", "e", false, "stop at the first command that fails, as sh -e")
	addCommand(c)
}
