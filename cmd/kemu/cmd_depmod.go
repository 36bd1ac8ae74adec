package main

import (
	"os"

	"github.com/spf13/cobra"

	"kemu/depmod"
)

// kemu depmod writes the module indexes (modules.dep, modules.alias, modules.symbols, ... and their
// .bin tries) exactly as kmod's depmod does. It takes kmod's own command line, so cobra hands the
// arguments over unparsed.
func init() {
	addCommand(&cobra.Command{
		Use:                "depmod [-b BASEDIR] [-n] [-e -F System.map|-E Module.symvers] [VERSION [MODULE...]]",
		Short:              "Compute module dependencies and aliases exactly as kmod's depmod does",
		DisableFlagParsing: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			if code := depmod.Main(args, os.Stdout, os.Stderr); code != 0 {
				return &exitError{code: code}
			}
			return nil
		},
	})
}
