package main

import (
	"os"

	"github.com/spf13/cobra"

	"kemu/modinfo"
)

// kemu modinfo prints what kmod's modinfo prints, byte for byte. It takes kmod's own command line
// (getopt-style options, -F/-0/-a/..., its error messages and exit codes), so cobra hands the
// arguments over unparsed; --json is understood there too.
func init() {
	addCommand(&cobra.Command{
		Use:                "modinfo [-F field] [-0] [--json] FILE...",
		Short:              "Show module information exactly as kmod's modinfo does",
		DisableFlagParsing: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			if global.json {
				args = append([]string{"--json"}, args...)
			}
			if code := modinfo.Main(args, os.Stdout, os.Stderr); code != 0 {
				return &exitError{code: code}
			}
			return nil
		},
	})
}
