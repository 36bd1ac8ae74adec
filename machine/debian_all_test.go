package machine

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"kemu/depmod"
	"kemu/profile"
)

// Every module of Debian's linux-image-amd64 (4023 of them), each loaded with its dependencies
// into a fresh machine, initialised and removed, in lenient mode: the whole corpus as the test of
// the emulated kernel. It takes minutes, so it runs only when asked:
//
//	KEMU_DEBIAN_ALL=1 KEMU_DEBIAN_ALL_OUT=/tmp/all.tsv go test ./machine -run TestDebianAllModules -v -timeout 2h
//
// It logs the totals per result, the unimplemented kernel functions and the oops sites that the
// most modules hit, and writes one line per module (module, result, detail) to
// $KEMU_DEBIAN_ALL_OUT when that is set. KEMU_DEBIAN_ALL_ONLY=<substring> narrows the run to the
// modules whose name contains it.

// resultTimeout is a module whose load, init or exit did not finish within debianModuleTimeout of
// host time: the per-call watchdog bounds guest code, so this is the emulation itself looping.
const resultTimeout = "timeout"

// debianModuleTimeout bounds one module's load, init and removal (its dependencies included).
const debianModuleTimeout = 2 * time.Minute

// debianAllFloor is how many modules of the whole corpus completed when last measured (Debian
// 6.1.0-56-amd64: 3646 of 4023, up from 3258 when the test was written); the test fails below it,
// so that a regression anywhere in the emulated kernel shows.
const debianAllFloor = 3646

func TestDebianAllModules(t *testing.T) {
	if testing.Short() {
		t.Skip("loads every Debian module into a fresh machine each")
	}
	if os.Getenv("KEMU_DEBIAN_ALL") == "" {
		t.Skip("set KEMU_DEBIAN_ALL=1 to run every module of the Debian corpus (minutes)")
	}
	prof, db := debianCorpus(t)
	names, err := debianModuleOrder(db.Dir)
	require.NoError(t, err)
	require.NotEmpty(t, names)
	if only := os.Getenv("KEMU_DEBIAN_ALL_ONLY"); only != "" {
		names = filterNames(names, only)
	}

	// Each module runs in a subtest of its own; the subtests run in parallel up to -parallel
	// (GOMAXPROCS by default), since every machine is independent of the others.
	outcomes := make([]debianOutcome, len(names))
	started := time.Now()
	t.Run("modules", func(t *testing.T) {
		for i, name := range names {
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				outcomes[i] = runDebianModuleGuarded(t, prof, db, name)
			})
		}
	})
	elapsed := time.Since(started)

	report := summarizeDebianAll(outcomes)
	t.Logf("\n%d modules in %v (GOMAXPROCS %d)\n%s", len(outcomes), elapsed.Round(time.Second),
		runtime.GOMAXPROCS(0), report.String())
	if path := os.Getenv("KEMU_DEBIAN_ALL_OUT"); path != "" {
		require.NoError(t, writeDebianTSV(path, outcomes))
	}
	if os.Getenv("KEMU_DEBIAN_ALL_ONLY") == "" {
		assert.GreaterOrEqual(t, report.totals[resultComplete], debianAllFloor,
			"modules of the corpus that load, init and unload")
	}
}

// debianModuleOrder is every module of the tree in modules.order order, which is the order depmod
// writes modules.dep in.
func debianModuleOrder(dir string) ([]string, error) {
	f, err := os.Open(filepath.Join(dir, "modules.order"))
	if err != nil {
		return nil, fmt.Errorf("debian corpus: %w", err)
	}
	defer f.Close()
	var names []string
	s := bufio.NewScanner(f)
	for s.Scan() {
		if line := strings.TrimSpace(s.Text()); line != "" {
			names = append(names, depmod.ModuleName(line))
		}
	}
	if err := s.Err(); err != nil {
		return nil, fmt.Errorf("debian corpus: reading modules.order: %w", err)
	}
	return names, nil
}

func filterNames(names []string, substr string) []string {
	var kept []string
	for _, n := range names {
		if strings.Contains(n, substr) {
			kept = append(kept, n)
		}
	}
	return kept
}

// runDebianModuleGuarded is runDebianModule with a bound on host time. A module that overruns is
// reported as a timeout and its goroutine is left to finish on its own: nothing can stop emulation
// code from outside, and the result must not wait for it.
func runDebianModuleGuarded(t *testing.T, prof *profile.Profile, db *depmod.DB, name string) debianOutcome {
	done := make(chan debianOutcome, 1)
	go func() {
		out := debianOutcome{module: name, result: resultLoad, detail: "test harness stopped"}
		defer func() { done <- out }() // also when require stops this goroutine (runtime.Goexit)
		out = runDebianModule(t, prof, db, name, "", false)
	}()
	select {
	case out := <-done:
		return out
	case <-time.After(debianModuleTimeout):
		return debianOutcome{module: name, result: resultTimeout, detail: "over " + debianModuleTimeout.String()}
	}
}

// debianAllReport is the whole run in figures.
type debianAllReport struct {
	totals  map[string]int
	missing []debianCount // unimplemented kernel functions, by modules that called them
	oopses  []debianCount // where module code oopsed (the RIP's symbol), by modules
}

type debianCount struct {
	name           string
	modules, calls int
}

func summarizeDebianAll(outcomes []debianOutcome) debianAllReport {
	r := debianAllReport{totals: map[string]int{}}
	missing := map[string]*debianCount{}
	oopses := map[string]*debianCount{}
	count := func(in map[string]*debianCount, name string, calls int) {
		if in[name] == nil {
			in[name] = &debianCount{name: name}
		}
		in[name].modules++
		in[name].calls += calls
	}
	for _, o := range outcomes {
		r.totals[o.result]++
		for _, s := range o.missing {
			count(missing, s.Name, s.Count)
		}
		if o.result == resultOops {
			count(oopses, oopsSite(o.log), 1)
		}
	}
	r.missing, r.oopses = byModules(missing), byModules(oopses)
	return r
}

func byModules(in map[string]*debianCount) []debianCount {
	out := make([]debianCount, 0, len(in))
	for _, c := range in {
		out = append(out, *c)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].modules != out[j].modules {
			return out[i].modules > out[j].modules
		}
		return out[i].name < out[j].name
	})
	return out
}

// oopsSite is the symbolized RIP of the first oops in a kernel log ("RIP: 0010:fn+0x12/0x40 [mod]"),
// without the offsets so that one site counts once.
func oopsSite(log string) string {
	for _, line := range strings.Split(log, "\n") {
		_, rip, ok := strings.Cut(line, "RIP: ")
		if !ok {
			continue
		}
		_, sym, _ := strings.Cut(rip, ":")
		fields := strings.Fields(sym)
		if len(fields) == 0 {
			return "?"
		}
		fn, _, _ := strings.Cut(fields[0], "+")
		if len(fields) > 1 {
			fn += " " + fields[1]
		}
		return fn
	}
	return "(no RIP line)"
}

func (r debianAllReport) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "totals:")
	for _, k := range []string{resultComplete, resultLoad, resultInit, resultOops, resultUnimplemented, resultExit, resultTimeout} {
		fmt.Fprintf(&b, " %s=%d", k, r.totals[k])
	}
	fmt.Fprintf(&b, "\nunimplemented kernel functions hit (modules, calls):")
	for i, c := range r.missing {
		if i == 40 {
			break
		}
		fmt.Fprintf(&b, "\n  %-40s %4d %7d", c.name, c.modules, c.calls)
	}
	fmt.Fprintf(&b, "\noops sites (modules):")
	for i, c := range r.oopses {
		if i == 30 {
			break
		}
		fmt.Fprintf(&b, "\n  %-60s %4d", c.name, c.modules)
	}
	return b.String()
}

// writeDebianTSV writes module, result and detail, one module a line, in the run's order.
func writeDebianTSV(path string, outcomes []debianOutcome) error {
	var b strings.Builder
	b.WriteString("module\tresult\tdetail\n")
	for _, o := range outcomes {
		detail := o.detail
		if o.result == resultOops {
			detail += " at " + oopsSite(o.log)
		}
		detail = strings.NewReplacer("\t", " ", "\n", " ").Replace(detail)
		fmt.Fprintf(&b, "%s\t%s\t%s\n", o.module, o.result, detail)
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		return fmt.Errorf("writing the module table: %w", err)
	}
	return nil
}
