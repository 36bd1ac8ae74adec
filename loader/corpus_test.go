package loader

import (
	"runtime"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"kemu/corpus"
)

// TestCorpus links every module of Debian's kernel in dependency order. Every one must pass the
// kernel's validation; link failures are reported by reason and must be the kernel's own verdicts.
func TestCorpus(t *testing.T) {
	tree := corpus.ForTest(t, "amd64")
	prof, err := tree.Profile()
	require.NoError(t, err)
	dir := tree.ModulesDir
	files, err := FindModules(dir)
	require.NoError(t, err)
	start := time.Now()
	deps := map[string][]string{}
	if dep := FindModulesDep(dir); dep != "" {
		deps, err = ReadModulesDep(dep)
	} else {
		deps, err = DependsFromModinfo(files)
	}
	require.NoError(t, err)
	order := LoadOrder(files, deps)
	orderTime := time.Since(start)

	k, err := NewKernel(Config{Profile: prof})
	require.NoError(t, err)
	start = time.Now()
	var ok, invalid int
	reasons := map[string][]string{}
	var exports, roAfterInit int
	k.CheckFiles(order, runtime.NumCPU(), func(r CheckResult) {
		if r.Err == nil {
			ok++
			exports += len(r.Module.Exports)
			if r.Module.Core.Ranges[len(r.Module.Core.Ranges)-1].Class != "data" {
				t.Errorf("%s: core region does not end with data", r.Module.Name)
			}
			checkLayout(t, r.Module)
			roAfterInit += countClass(r.Module, "ro_after_init")
			return
		}
		msg := r.Err.Error()
		// Failures before layout mean the file itself is rejected: that must never happen here.
		if e := Errno(r.Err); e != 0 && r.Module == nil && isValidationError(msg) {
			invalid++
		}
		reason := msg
		if i := strings.Index(reason, ": "); i >= 0 {
			reason = reason[i+2:]
		}
		if i := strings.IndexAny(reason, "(0123456789"); i > 0 {
			reason = reason[:i]
		}
		reasons[reason] = append(reasons[reason], ModuleName(r.Path))
	})
	linkTime := time.Since(start)
	failed := len(order) - ok
	t.Logf("corpus: %d modules; ordering %v, linking %v (%.0f modules/s); %d linked, %d failed, %d exports, %d with ro_after_init",
		len(order), orderTime.Round(time.Millisecond), linkTime.Round(time.Millisecond),
		float64(len(order))/linkTime.Seconds(), ok, failed, exports, roAfterInit)
	keys := make([]string, 0, len(reasons))
	for r := range reasons {
		keys = append(keys, r)
	}
	sort.Strings(keys)
	for _, r := range keys {
		n := reasons[r]
		if len(n) > 8 {
			n = append(n[:8:8], "...")
		}
		t.Logf("  %4d %s: %v", len(reasons[r]), r, n)
	}
	assert.Equal(t, 4023, len(order))
	assert.Zero(t, invalid, "every Debian module passes the kernel's validation")
	assert.Equal(t, len(order), ok, "every Debian module links")
}

// isValidationError recognises the messages of elf_validity_check, setup_load_info and check_modinfo.
func isValidationError(msg string) bool {
	for _, s := range []string{"Invalid ELF", "ELF Spec violation", "section name table", "has no symbols", "No module found", "version magic", "disagrees about version of symbol module_layout", "both writable and executable"} {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
}

func countClass(m *Module, class string) int {
	for _, r := range m.Core.Ranges {
		if r.Class == class {
			return 1
		}
	}
	return 0
}
