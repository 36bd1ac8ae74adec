package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"kemu/loader"
	"kemu/machine"
)

// insmodIdle is how long the machine runs after init returns, so queued work and timers the
// module armed show up in the log.
var insmodIdle time.Duration

func init() {
	cmd := &cobra.Command{
		Use:   "insmod FILE [name=value ...]",
		Short: "Boot a fresh machine, load a module, run its init and print the kernel log",
		Long: `insmod boots a fresh emulated machine, loads FILE with the given parameters as finit_module() does,
runs the module's init function, lets --idle of virtual time pass (work items and timers run) and
prints the kernel log (dmesg) with any oops. On failure it prints kmod insmod's message and exits 1;
if init crashes, the task is killed (exit 137), as the shell shows it.`,
		Args: cobra.MinimumNArgs(1),
		RunE: runInsmod,
	}
	cmd.Flags().DurationVar(&insmodIdle, "idle", time.Second, "virtual time to let pass after init (timers, work)")
	addCommand(cmd)
}

// insmodReport is the --json output.
type insmodReport struct {
	Module        string             `json:"module"`
	OK            bool               `json:"ok"`
	Error         string             `json:"error,omitempty"`
	Dmesg         []string           `json:"dmesg"`
	Calls         []machine.CallStat `json:"calls"`
	Unimplemented []machine.CallStat `json:"unimplemented"`
}

func runInsmod(cmd *cobra.Command, args []string) error {
	file := args[0]
	prof, err := loadProfile()
	if err != nil {
		return err
	}
	m, err := machine.New(prof, machine.Options{Strict: global.strict, Strategy: global.strategy})
	if err != nil {
		return err
	}
	defer m.Close()

	image, err := os.ReadFile(file)
	if err != nil {
		return &exitError{code: 1, msg: fmt.Sprintf("insmod: ERROR: could not load module %s: %s", file, strerror(err))}
	}
	// kmod's insmod joins the parameters with spaces into one string for finit_module.
	_, insErr := m.Insmod(image, strings.Join(args[1:], " "), file)
	if insErr == nil && insmodIdle > 0 {
		if _, err := m.Idle(uint64(insmodIdle)); err != nil {
			return err
		}
	}

	out := cmd.OutOrStdout()
	if global.json {
		rep := insmodReport{Module: file, OK: insErr == nil, Dmesg: m.Messages(), Calls: m.CallStats(), Unimplemented: m.Unimplemented()}
		if insErr != nil {
			rep.Error = insmodMessage(file, insErr)
		}
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			return err
		}
	} else {
		fmt.Fprint(out, m.Dmesg())
		// Calls the emulated kernel could not serve returned 0; say so where the log cannot.
		for _, u := range m.Unimplemented() {
			fmt.Fprintf(cmd.ErrOrStderr(), "kemu: unimplemented kernel function %s returned 0 (%d calls, first from %s)\n",
				u.Name, u.Count, u.FirstCaller)
		}
	}
	switch {
	case insErr == nil:
		return nil
	case errors.Is(insErr, machine.ErrKilled):
		return &exitError{code: 137, msg: "Killed"}
	}
	return &exitError{code: 1, msg: insmodMessage(file, insErr)}
}

// insmodMessage is kmod insmod's report of a failed finit_module.
func insmodMessage(file string, err error) string {
	if errors.Is(err, machine.ErrKilled) {
		return "Killed"
	}
	if errno := loader.Errno(err); errno != 0 {
		return fmt.Sprintf("insmod: ERROR: could not insert module %s: %s", file, loader.InsmodReason(errno))
	}
	return fmt.Sprintf("insmod: ERROR: could not insert module %s: %v", file, err)
}

// strerror is the C library's message for a file error ("No such file or directory").
func strerror(err error) string {
	var pe *os.PathError
	if errors.As(err, &pe) {
		err = pe.Err
	}
	s := err.Error()
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}
