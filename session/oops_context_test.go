package session

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"kemu/oops"
	"kemu/printk"
)

// TestReportOopsContext: the report names each module the session had loaded at a problem or at the
// end, unloaded ones included, with the file decode should read and the loader's addresses, and
// carries each problem's log text from its first line to its end marker.
func TestReportOopsContext(t *testing.T) {
	hostNull, err := filepath.Abs("../testdata/modules/fault_null.ko")
	require.NoError(t, err)
	tests := []struct {
		name      string
		script    []string
		module    string
		path      string
		loaded    bool   // still loaded at the end: its addresses are checked against the registry
		textStart string // the first line of the problem's text
	}{
		{"insmod of a bare fixture name", []string{"insmod fault_null.ko"}, "fault_null", "embedded:fault_null.ko", true,
			"BUG: kernel NULL pointer dereference, address: 0000000000000008"},
		{"insmod of a host file", []string{"insmod ../testdata/modules/fault_null.ko"}, "fault_null", hostNull, true,
			"BUG: kernel NULL pointer dereference, address: 0000000000000008"},
		{"modprobe from the embedded tree", []string{"modprobe fault_bug"}, "fault_bug", "embedded:fault_bug.ko", true,
			"kernel BUG at /work/main/testdata/modules/fault_bug.c:19!"},
		{"unloaded after its warning", []string{"insmod fault_warn.ko", "rmmod fault_warn"}, "fault_warn", "embedded:fault_warn.ko", false,
			"WARNING: CPU: 0 PID: 1000 at /work/main/testdata/modules/fault_warn.c:16"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newTestSession(t)
			run(t, s, tt.script...)
			data, err := json.Marshal(s.Report())
			require.NoError(t, err)
			var r Report
			require.NoError(t, json.Unmarshal(data, &r))

			require.NotNil(t, r.Context)
			assert.Equal(t, s.prof.Release, r.Context.Kernel)
			var cm *oops.ContextModule
			for i := range r.Context.Modules {
				if r.Context.Modules[i].Name == tt.module {
					cm = &r.Context.Modules[i]
				}
			}
			require.NotNil(t, cm, "context modules: %+v", r.Context.Modules)
			assert.Equal(t, tt.path, cm.Path)
			assert.NotZero(t, cm.Base)
			assert.NotZero(t, cm.Size)
			assert.Contains(t, cm.Sections, ".text")
			assert.Contains(t, cm.Sections, ".init.text")
			mod, ok := s.m.Registry().Find(tt.module)
			require.Equal(t, tt.loaded, ok)
			if ok {
				assert.Equal(t, mod.Core.Addr, cm.Base)
				for _, sec := range mod.Sections {
					assert.Equal(t, sec.Addr, cm.Sections[sec.Name], sec.Name)
				}
			}

			require.Len(t, r.Problems, 1)
			text := r.Problems[0].Text
			assert.True(t, strings.HasPrefix(text, tt.textStart), text)
			assert.True(t, strings.HasSuffix(text, "---[ end trace 0000000000000000 ]---\n"), text)
			assert.Contains(t, text, "\n"+r.Problems[0].RIP+"\n")
		})
	}
}

// TestProblemText: a report's text stops at its end marker, or else before the next report.
func TestProblemText(t *testing.T) {
	tests := []struct {
		name  string
		lines []string
		want  string
	}{
		{"end marker", []string{"BUG: x", "RIP: 0010:f+0x1/0x2 [m]", "---[ end trace 0000000000000000 ]---", "after"},
			"BUG: x\nRIP: 0010:f+0x1/0x2 [m]\n---[ end trace 0000000000000000 ]---\n"},
		{"next report", []string{"watchdog: BUG: soft lockup - CPU#0 stuck for 22s! [insmod:1000]", " </TASK>",
			"------------[ cut here ]------------", "WARNING: CPU: 0 PID: 1 at a.c:1"},
			"watchdog: BUG: soft lockup - CPU#0 stuck for 22s! [insmod:1000]\n </TASK>\n"},
		{"end of the log", []string{"BUG: y", "Call Trace:"}, "BUG: y\nCall Trace:\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var recs []printk.Record
			for _, l := range tt.lines {
				recs = append(recs, printk.Record{Text: l})
			}
			assert.Equal(t, tt.want, problemText(recs))
		})
	}
}
