package main

import (
	_ "embed"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"kemu/machine"
	"kemu/session"
)

// demoScript is the session `kemu demo` runs: kemu's fixture modules on the embedded kernel profile.
//
//go:embed demo.kemu
var demoScript string

func init() {
	addCommand(&cobra.Command{
		Use:   "demo",
		Short: "Run the bundled sample modules on the embedded kernel and summarize the machine",
		Long: `demo boots one machine on the embedded kernel profile, runs a session over the fixture modules
embedded in kemu (parameters, exports between modules, devices, timers, an oops, unloading), prints what each
command prints, then summarizes the machine: kernel calls, module placement, page tables and memory.
The session script is printed as it runs; ` + "`kemu run`" + ` runs scripts of your own.`,
		Args: cobra.NoArgs,
		RunE: runDemo,
	})
}

func runDemo(cmd *cobra.Command, _ []string) error {
	prof, mopts, err := bootConfig()
	if err != nil {
		return err
	}
	s, err := session.New(prof, session.Options{Machine: mopts})
	if err != nil {
		return err
	}
	defer s.Close()
	out := cmd.OutOrStdout()
	fmt.Fprintf(out, "kemu demo: %s, placement %s\n\n", prof, global.strategy)
	// The script goes on past failing commands: the oops and the refused rmmod are part of the show.
	if _, err := s.Script(strings.NewReader(demoScript), out, false); err != nil {
		return err
	}
	fmt.Fprintln(out)
	writeMachineSummary(out, s.Machine())
	writeDemoPlacement(out)          // cmd_measure.go
	writeDemoDecode(out, s.Report()) // cmd_decode.go
	return nil
}

// writeMachineSummary prints what the machine did and what its memory looks like afterwards.
func writeMachineSummary(w io.Writer, m *machine.Machine) {
	fmt.Fprintln(w, "== kernel calls")
	fmt.Fprint(w, m.Summary())

	st := m.Placement().Stats()
	fmt.Fprintf(w, "\n== module placement (%s)\n", global.strategy)
	fmt.Fprintf(w, "live regions %d, requested %d bytes, backed by %d bytes (%d wasted)\n",
		st.Regions, st.Requested, st.Used, st.Wasted())
	fmt.Fprintf(w, "leaf mappings over module memory: %d x 4K, %d x 2M, %d x 1G; direct-map pages split: %d\n",
		st.Pages4K, st.Pages2M, st.Pages1G, st.DirectMapSplits)

	mem := m.Memory()
	ts := mem.Tables.Stats()
	fmt.Fprintln(w, "\n== page tables")
	fmt.Fprintf(w, "table frames %d; leaves %d x 4K, %d x 2M, %d x 1G; splits 1G->2M %d, 2M->4K %d\n",
		ts.Tables, ts.Mappings.Size4K, ts.Mappings.Size2M, ts.Mappings.Size1G, ts.Split1G, ts.Split2M)
	fs := mem.Frames.Stats()
	fmt.Fprintf(w, "physical memory: %d frames, %d used, %d free; largest free block order %d\n",
		fs.Frames, fs.Used, fs.Free, fs.LargestFreeOrder)
	fmt.Fprintf(w, "buddyinfo:")
	for _, n := range fs.FreeBlocks {
		fmt.Fprintf(w, " %d", n)
	}
	fmt.Fprintln(w)

	writeDemoTLB(w, m) // cmd_measure.go: loads the hot chain and measures it, so it comes last
}
