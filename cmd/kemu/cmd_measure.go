package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"kemu"
	"kemu/machine"
	"kemu/modinfo"
	"kemu/placement"
	"kemu/tlb"
)

// measureFlags are kemu measure's own options.
var measureFlags struct {
	call    string
	by      string
	iters   int
	warmup  bool
	l2Hit   float64
	walk    float64
	walkRef float64
}

func init() {
	cmd := &cobra.Command{
		Use:   "measure MODULE... --call 'SYMBOL [ARG...]' [ARG...]",
		Short: "Load modules, call a function under a TLB model and report TLB misses, page walks and placement",
		Long: `measure boots a machine with the --strategy placement, loads the modules (files, or the names of the
fixtures embedded in kemu such as hot0) with the modules they depend on, in dependency order, then calls
SYMBOL (a function of a loaded module) --iters times with the integer arguments given, while a TLB model
(--tlb: skylake, goldencove, zen2, a comma-separated list, or all) watches every instruction fetch and data
access of the guest code. It prints per module:symbol the instructions, fetches, data accesses, iTLB, dTLB
and STLB misses, page walks and their memory references, misses per 1000 instructions and the estimated
translation cycles, then the placement's cost: pages per size, wasted bytes, direct-map splits.

The model starts cold at the first call; --warmup runs one call first and counts from the second.
Kernel functions run in Go and touch no TLB beyond fetching their entry (see machine.Measurement).

Example: kemu measure hot0 --call 'hot_bench 1000'`,
		Args: cobra.MinimumNArgs(1),
		RunE: runMeasure,
	}
	f := cmd.Flags()
	f.StringVar(&measureFlags.call, "call", "", "function to call and its integer arguments, e.g. 'hot_bench 1000' (required)")
	f.StringVar(&measureFlags.by, "by", "symbol", "rows of the report: symbol (module:symbol) or module")
	f.IntVar(&measureFlags.iters, "iters", 1, "number of measured calls")
	f.BoolVar(&measureFlags.warmup, "warmup", false, "make one unmeasured call first (a warm TLB)")
	f.Float64Var(&measureFlags.l2Hit, "l2-hit", -1, "cycles of a second-level TLB lookup (default: the preset's)")
	f.Float64Var(&measureFlags.walk, "walk", -1, "fixed cycles of a page walk (default: the preset's)")
	f.Float64Var(&measureFlags.walkRef, "walk-ref", -1, "cycles per paging-structure read of a walk (default: the preset's)")
	_ = cmd.MarkFlagRequired("call")
	addCommand(cmd)
}

// measureReport is the --json output.
type measureReport struct {
	Kernel    string           `json:"kernel"`
	Strategy  string           `json:"strategy"`
	Modules   []string         `json:"modules"` // in load order
	Call      measureCall      `json:"call"`
	TLB       []machine.Result `json:"tlb"`
	Placement placementReport  `json:"placement"`
}

type measureCall struct {
	Symbol  string   `json:"symbol"`
	Args    []uint64 `json:"args"`
	Iters   int      `json:"iters"`
	Warmup  bool     `json:"warmup"`
	Results []uint64 `json:"results"` // rax of each measured call
}

type placementReport struct {
	placement.Stats
	Wasted uint64 `json:"wasted"`
}

func runMeasure(cmd *cobra.Command, args []string) error {
	modArgs, callArgs, err := splitMeasureArgs(args)
	if err != nil {
		return err
	}
	symbol, callArgs, err := parseCall(measureFlags.call, callArgs)
	if err != nil {
		return err
	}
	if measureFlags.iters < 1 {
		return fmt.Errorf("measure: --iters %d: at least one call", measureFlags.iters)
	}
	if measureFlags.by != "symbol" && measureFlags.by != "module" {
		return fmt.Errorf("measure: --by %q: symbol or module", measureFlags.by)
	}
	models, err := measureModels(global.tlb)
	if err != nil {
		return err
	}
	mods, err := measureLoadOrder(modArgs)
	if err != nil {
		return err
	}

	prof, mopts, err := bootConfig()
	if err != nil {
		return err
	}
	m, err := machine.New(prof, mopts)
	if err != nil {
		return err
	}
	defer m.Close()
	rep := measureReport{Kernel: prof.String(), Strategy: m.Placement().Name(),
		Call: measureCall{Symbol: symbol, Args: callArgs, Iters: measureFlags.iters, Warmup: measureFlags.warmup}}
	for _, mod := range mods {
		if _, err := m.Insmod(mod.image, "", mod.path); err != nil {
			return fmt.Errorf("measure: insmod %s: %w\n%s", mod.path, err, m.Dmesg())
		}
		rep.Modules = append(rep.Modules, mod.name)
	}
	fn, err := lookupModuleSymbol(m, symbol)
	if err != nil {
		return err
	}

	ms, err := m.Measure(models...)
	if err != nil {
		return err
	}
	call := func() (uint64, error) {
		v, err := m.Call(fn, callArgs...)
		if err != nil {
			return 0, fmt.Errorf("measure: %s: %w\n%s", symbol, err, m.Dmesg())
		}
		return v, nil
	}
	if measureFlags.warmup {
		if _, err := call(); err != nil {
			return err
		}
		ms.Reset()
	}
	for i := 0; i < measureFlags.iters; i++ {
		v, err := call()
		if err != nil {
			return err
		}
		rep.Call.Results = append(rep.Call.Results, v)
	}
	if err := ms.Stop(); err != nil {
		return err
	}
	rep.TLB = ms.Results()
	if measureFlags.by == "module" {
		for i := range rep.TLB {
			rep.TLB[i] = rep.TLB[i].ByModule()
		}
	}
	st := m.Placement().Stats()
	rep.Placement = placementReport{Stats: st, Wasted: st.Wasted()}

	out := cmd.OutOrStdout()
	if global.json {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	return writeMeasureText(out, &rep, ms.DecodeErr())
}

func writeMeasureText(w io.Writer, rep *measureReport, decodeErr error) error {
	fmt.Fprintf(w, "kemu measure: %s, placement %s\n", rep.Kernel, rep.Strategy)
	fmt.Fprintf(w, "loaded: %s\n", strings.Join(rep.Modules, " "))
	last := rep.Call.Results[len(rep.Call.Results)-1]
	fmt.Fprintf(w, "%s(%s) = %#x (%d measured call(s)%s)\n\n", rep.Call.Symbol, joinUints(rep.Call.Args), last,
		rep.Call.Iters, map[bool]string{true: ", after a warm-up call"}[rep.Call.Warmup])
	for i := range rep.TLB {
		if err := rep.TLB[i].WriteText(w); err != nil {
			return err
		}
		fmt.Fprintln(w)
	}
	if decodeErr != nil {
		fmt.Fprintf(w, "note: some blocks count no instructions: %v\n\n", decodeErr)
	}
	st := rep.Placement
	fmt.Fprintf(w, "== module placement (%s)\n", rep.Strategy)
	fmt.Fprintf(w, "live regions %d, requested %d bytes, backed by %d bytes (%d wasted)\n",
		st.Regions, st.Requested, st.Used, st.Wasted)
	_, err := fmt.Fprintf(w, "leaf mappings over module memory: %d x 4K, %d x 2M, %d x 1G; direct-map pages split: %d\n",
		st.Pages4K, st.Pages2M, st.Pages1G, st.DirectMapSplits)
	return err
}

func joinUints(v []uint64) string {
	s := make([]string, len(v))
	for i, x := range v {
		s[i] = strconv.FormatUint(x, 10)
	}
	return strings.Join(s, ", ")
}

// splitMeasureArgs separates module arguments from trailing integer arguments of the call, so that
// `kemu measure hot0 --call hot_bench 1000` reads as the user means it.
func splitMeasureArgs(args []string) (mods []string, callArgs []uint64, err error) {
	for _, a := range args {
		if v, err := strconv.ParseUint(a, 0, 64); err == nil && len(mods) > 0 {
			callArgs = append(callArgs, v)
			continue
		}
		if len(callArgs) > 0 {
			return nil, nil, fmt.Errorf("measure: module %q after the call's arguments", a)
		}
		mods = append(mods, a)
	}
	if len(mods) == 0 {
		return nil, nil, errors.New("measure: no module given")
	}
	return mods, callArgs, nil
}

// parseCall reads --call's "SYMBOL [ARG...]"; extra holds arguments given after the modules.
func parseCall(spec string, extra []uint64) (string, []uint64, error) {
	fields := strings.Fields(spec)
	if len(fields) == 0 {
		return "", nil, errors.New("measure: --call needs a function name")
	}
	var args []uint64
	for _, f := range fields[1:] {
		v, err := strconv.ParseUint(f, 0, 64)
		if err != nil {
			n, err2 := strconv.ParseInt(f, 0, 64)
			if err2 != nil {
				return "", nil, fmt.Errorf("measure: --call argument %q is not an integer", f)
			}
			v = uint64(n)
		}
		args = append(args, v)
	}
	args = append(args, extra...)
	if len(args) > 6 {
		return "", nil, fmt.Errorf("measure: %s: %d arguments, at most 6 (the register arguments)", fields[0], len(args))
	}
	return fields[0], args, nil
}

// measureModels builds the TLB models --tlb names, with the cost flags applied.
func measureModels(spec string) ([]tlb.Config, error) {
	names := strings.Split(spec, ",")
	if spec == "all" {
		names = tlb.PresetNames()
	}
	var out []tlb.Config
	for _, n := range names {
		c, err := tlb.Preset(strings.TrimSpace(n))
		if err != nil {
			return nil, fmt.Errorf("measure: --tlb: %w", err)
		}
		if measureFlags.l2Hit >= 0 {
			c.Costs.L2Hit = measureFlags.l2Hit
		}
		if measureFlags.walk >= 0 {
			c.Costs.Walk = measureFlags.walk
		}
		if measureFlags.walkRef >= 0 {
			c.Costs.WalkRef = measureFlags.walkRef
		}
		out = append(out, c)
	}
	return out, nil
}

// measureModule is a module to load: its name (modinfo's), where it came from and what it needs.
type measureModule struct {
	name, path string
	image      []byte
	depends    []string
}

// readMeasureModule reads a module file, or the embedded fixture of that name when no such file
// exists (hot0, hot0.ko).
func readMeasureModule(arg string) (*measureModule, error) {
	image, err := modinfo.ReadModule(arg)
	path := arg
	if errors.Is(err, fs.ErrNotExist) && !strings.ContainsRune(arg, os.PathSeparator) {
		path = "testdata/modules/" + strings.TrimSuffix(arg, ".ko") + ".ko"
		var err2 error
		if image, err2 = fs.ReadFile(kemu.Modules, path); err2 != nil {
			return nil, fmt.Errorf("measure: %s: %w (and no embedded fixture of that name)", arg, err)
		}
		err = nil
	}
	if err != nil {
		return nil, fmt.Errorf("measure: %s: %w", arg, err)
	}
	entries, err := modinfo.Entries(image)
	if err != nil {
		return nil, fmt.Errorf("measure: %s: modinfo: %w", arg, err)
	}
	mod := &measureModule{path: path, image: image}
	for _, e := range entries {
		switch e.Key {
		case "name":
			mod.name = e.Value
		case "depends":
			for _, d := range strings.Split(e.Value, ",") {
				if d != "" {
					mod.depends = append(mod.depends, d)
				}
			}
		}
	}
	if mod.name == "" {
		mod.name = strings.TrimSuffix(filepath.Base(arg), ".ko")
	}
	return mod, nil
}

// measureLoadOrder reads the modules given and the ones they depend on (looked up next to the
// module that needs them, then among the embedded fixtures) and orders them so that every module
// comes after its dependencies, keeping the given order where it is free.
func measureLoadOrder(args []string) ([]*measureModule, error) {
	byName := map[string]*measureModule{}
	var given []*measureModule
	for _, a := range args {
		mod, err := readMeasureModule(a)
		if err != nil {
			return nil, err
		}
		if _, dup := byName[mod.name]; !dup {
			byName[mod.name] = mod
			given = append(given, mod)
		}
	}
	var order []*measureModule
	state := map[string]int{} // 1: visiting, 2: placed
	var visit func(mod *measureModule) error
	visit = func(mod *measureModule) error {
		switch state[mod.name] {
		case 1:
			return fmt.Errorf("measure: dependency cycle through %s", mod.name)
		case 2:
			return nil
		}
		state[mod.name] = 1
		for _, d := range mod.depends {
			dep, ok := byName[d]
			if !ok {
				var err error
				if dep, err = readMeasureModule(filepath.Join(filepath.Dir(mod.path), d+".ko")); err != nil {
					if dep, err = readMeasureModule(d); err != nil {
						return fmt.Errorf("measure: %s needs %s: %w", mod.name, d, err)
					}
				}
				byName[d] = dep
			}
			if err := visit(dep); err != nil {
				return err
			}
		}
		state[mod.name] = 2
		order = append(order, mod)
		return nil
	}
	for _, mod := range given {
		if err := visit(mod); err != nil {
			return nil, err
		}
	}
	return order, nil
}

// lookupModuleSymbol finds a function of a loaded module by name, the most recently loaded first.
func lookupModuleSymbol(m *machine.Machine, name string) (uint64, error) {
	mods := m.Registry().Modules()
	for i := len(mods) - 1; i >= 0; i-- {
		if s, ok := mods[i].Lookup(name); ok {
			return s.Addr, nil
		}
	}
	return 0, fmt.Errorf("measure: no loaded module defines %s", name)
}

// demoTLBIters is the hot_bench run kemu demo measures: enough for the steady state to dominate the
// cold misses, short enough to add well under a second.
const demoTLBIters = 100

// writeDemoTLB is kemu demo's TLB section: the hot chain loaded into the demo's machine (after its
// session) and hot_bench(demoTLBIters) measured under the --tlb model, summarised per module.
func writeDemoTLB(w io.Writer, m *machine.Machine) {
	cfgs, err := measureModels(global.tlb)
	if err == nil {
		err = demoTLB(w, m, cfgs[0])
	}
	if err != nil {
		fmt.Fprintf(w, "\n== TLB (%s): not measured: %v\n", global.tlb, err)
	}
}

func demoTLB(w io.Writer, m *machine.Machine, cfg tlb.Config) error {
	res, sum, err := measureHotChain(m, cfg)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "\n== TLB (%s): the hot chain hot9..hot0 loaded, hot_bench(%d) = %#x, from a cold TLB, per module\n",
		cfg.Name, demoTLBIters, sum)
	r := res.ByModule()
	return r.WriteText(w)
}

// measureHotChain loads the hot chain (hot9..hot0) into m and calls hot_bench(demoTLBIters) under
// the TLB model cfg, from a cold TLB: the model's account and the checksum hot_bench returned.
func measureHotChain(m *machine.Machine, cfg tlb.Config) (machine.Result, uint64, error) {
	mods, err := measureLoadOrder([]string{"hot0"})
	if err != nil {
		return machine.Result{}, 0, err
	}
	for _, mod := range mods {
		if _, err := m.Insmod(mod.image, "", mod.path); err != nil {
			return machine.Result{}, 0, fmt.Errorf("insmod %s: %w", mod.name, err)
		}
	}
	fn, err := lookupModuleSymbol(m, "hot_bench")
	if err != nil {
		return machine.Result{}, 0, err
	}
	ms, err := m.Measure(cfg)
	if err != nil {
		return machine.Result{}, 0, err
	}
	sum, err := m.Call(fn, demoTLBIters)
	if stopErr := ms.Stop(); err == nil {
		err = stopErr
	}
	if err != nil {
		return machine.Result{}, 0, err
	}
	return ms.Results()[0], sum, nil
}

// writeDemoPlacement runs the hot chain on a fresh machine per placement strategy under the --tlb
// model and prints one line each: the research question of where module memory should live.
func writeDemoPlacement(w io.Writer) {
	cfgs, err := measureModels(global.tlb)
	if err != nil {
		fmt.Fprintf(w, "\n== placement strategies: not measured: %v\n", err)
		return
	}
	prof, opts, err := bootConfig()
	if err != nil {
		fmt.Fprintf(w, "\n== placement strategies: not measured: %v\n", err)
		return
	}
	fmt.Fprintf(w, "\n== placement strategies, hot_bench(%d) on a fresh machine each, TLB model %s\n", demoTLBIters, cfgs[0].Name)
	fmt.Fprintf(w, "%-9s %8s %8s %9s %9s %7s %10s  %s\n", "strategy", "4K maps", "2M maps", "iTLB miss", "dTLB miss", "walks", "cycles", "checksum")
	for _, strategy := range []string{"vmalloc", "kmalloc", "hugepack"} {
		opts.Strategy = strategy
		m, err := machine.New(prof, opts)
		if err != nil {
			fmt.Fprintf(w, "%-9s not measured: %v\n", strategy, err)
			continue
		}
		res, sum, err := measureHotChain(m, cfgs[0])
		st := m.Placement().Stats()
		m.Close()
		if err != nil {
			fmt.Fprintf(w, "%-9s not measured: %v\n", strategy, err)
			continue
		}
		t := res.Total
		fmt.Fprintf(w, "%-9s %8d %8d %9d %9d %7d %10.0f  %#x\n", strategy, st.Pages4K, st.Pages2M,
			t.ITLBMisses(), t.DTLBMisses(), t.Counters.TotalWalks(), t.Cycles, sum)
	}
}
