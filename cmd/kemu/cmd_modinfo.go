package main

import (
	"os"

	"github.com/spf13/cobra"
)

// kemu modinfo prints what kmod's modinfo prints, byte for byte. It takes kmod's own command line
// (getopt-style options, -F/-0/-a/..., its error messages and exit codes), so cobra hands the
// arguments over unparsed; --json is understood there too. Module names and aliases are looked up
// in the module directory first (modinfo_lookup.go).
func init() {
	addCommand(&cobra.Command{
		Use:                "modinfo [-F field] [-0] [-b ROOT] [-k VERSION] [-m] [--json] FILE|NAME|ALIAS...",
		Short:              "Show module information exactly as kmod's modinfo does",
		DisableFlagParsing: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			if global.json {
				args = append([]string{"--json"}, args...)
			}
			if code := planModinfo(args).run(os.Stdout, os.Stderr); code != 0 {
				return &exitError{code: code}
			}
			return nil
		},
	})
}
