package main

import (
	"bytes"
	"debug/elf"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"kemu/machine"
	"kemu/oops"
	"kemu/profile"
	"kemu/session"
)

// TestDecodeOwnOopses: every fault fixture that oopses is run in a session; its report, and the oops
// text alone, decode with no flags, and every module frame's source lines (inline chain included)
// equal what addr2line -i -f gives for the same fixture .ko, section and offset.
func TestDecodeOwnOopses(t *testing.T) {
	if _, err := exec.LookPath("addr2line"); err != nil {
		t.Skip("addr2line (binutils) not installed")
	}
	tests := []struct {
		fixture string
		script  []string
		ripSym  string
	}{
		{"fault_null", []string{"insmod fault_null.ko"}, "fault_null_init"},
		{"fault_bug", []string{"insmod fault_bug.ko"}, "fault_bug_init"},
		{"fault_warn", []string{"insmod fault_warn.ko", "rmmod fault_warn"}, "fault_warn_init"},
		{"fault_uaf_init", []string{"insmod fault_uaf_init.ko", "sleep 100ms"}, "fault_uaf_timer_fn"},
		{"fault_recursion", []string{"insmod fault_recursion.ko"}, "fault_recurse"},
		{"fault_loop", []string{"insmod fault_loop.ko"}, "fault_loop_init"},
	}
	prof, err := profile.Default()
	require.NoError(t, err)
	for _, tt := range tests {
		t.Run(tt.fixture, func(t *testing.T) {
			s, err := session.New(prof, session.Options{Machine: machine.Options{Watchdog: 200 * time.Millisecond}})
			require.NoError(t, err)
			defer s.Close()
			for _, line := range tt.script {
				s.Exec(line)
			}
			rep := s.Report()
			require.NotEmpty(t, rep.Problems)
			data, err := json.Marshal(rep)
			require.NoError(t, err)
			reportPath := filepath.Join(t.TempDir(), "report.json")
			require.NoError(t, os.WriteFile(reportPath, data, 0o644))
			ko := filepath.Join("..", "..", "testdata", "modules", tt.fixture+".ko")

			t.Run("report", func(t *testing.T) {
				dec := decodeJSON(t, nil, []string{reportPath})
				checkDecoded(t, dec, ko, tt.fixture, tt.ripSym)
			})
			t.Run("plain text", func(t *testing.T) {
				// What a user copies from the terminal: dmesg's output, time stamps and all.
				dmesg, ok := s.Exec("dmesg")
				require.True(t, ok)
				require.Contains(t, dmesg.Output, rep.Problems[0].Title)
				dec := decodeJSON(t, strings.NewReader(dmesg.Output), nil)
				checkDecoded(t, dec, ko, tt.fixture, tt.ripSym)
			})
		})
	}
}

type decodeOutput struct {
	Reports []*oops.Report      `json:"reports"`
	Sources []oops.ModuleSource `json:"module_sources"`
}

// decodeJSON runs `kemu --json decode` with no symbol flags.
func decodeJSON(t *testing.T, stdin *strings.Reader, args []string) decodeOutput {
	t.Helper()
	saved := global.json
	global.json = true
	defer func() { global.json = saved }()
	var out, errOut bytes.Buffer
	if stdin == nil {
		stdin = strings.NewReader("")
	}
	require.NoError(t, runDecode(&out, &errOut, stdin, args, decodeFlags{}), errOut.String())
	var dec decodeOutput
	require.NoError(t, json.Unmarshal(out.Bytes(), &dec))
	return dec
}

// checkDecoded compares every frame of the fixture's module with addr2line.
func checkDecoded(t *testing.T, dec decodeOutput, ko, module, ripSym string) {
	t.Helper()
	require.NotEmpty(t, dec.Reports)
	assert.Contains(t, dec.Sources, oops.ModuleSource{Module: module, Path: oops.EmbeddedPrefix + module + ".ko"})
	r := dec.Reports[0]
	require.NotNil(t, r.RIP)
	assert.Equal(t, ripSym, r.RIP.Symbol)
	assert.Equal(t, module, r.RIP.Module)
	frames := []oops.Frame{*r.RIP}
	for _, rep := range dec.Reports {
		frames = append(frames, rep.Trace...)
	}
	checked := 0
	seen := map[string][]oops.SourceLine{} // a deep recursion repeats one frame many times
	for _, f := range frames {
		if f.Module != module {
			continue
		}
		key := fmt.Sprintf("%s+%#x/%#x ip=%v", f.Symbol, f.Offset, f.Size, f.IsIP)
		want, ok := seen[key]
		if !ok {
			want = addr2line(t, ko, f)
			seen[key] = want
		}
		assert.Equal(t, want, f.Source, "%s+%#x/%#x", f.Symbol, f.Offset, f.Size)
		checked++
	}
	assert.NotZero(t, checked)
	t.Logf("%d frames of %s checked against addr2line", checked, module)
}

var discriminator = regexp.MustCompile(` \(discriminator \d+\)$`)

// addr2line runs addr2line -i -f -e ko -j SECTION OFFSET for a frame printed as name+off/size: the
// symbol of that name (and a size the printed one covers) gives section and offset; a return address
// is looked up at the call before it, as the decoder does.
func addr2line(t *testing.T, ko string, f oops.Frame) []oops.SourceLine {
	t.Helper()
	file, err := elf.Open(ko)
	require.NoError(t, err)
	defer file.Close()
	syms, err := file.Symbols()
	require.NoError(t, err)
	var sym *elf.Symbol
	for i, s := range syms {
		if s.Name == f.Symbol && s.Size <= f.Size && f.Offset < f.Size && (sym == nil || s.Size > sym.Size) {
			sym = &syms[i]
		}
	}
	require.NotNil(t, sym, "no symbol %s of size <= %#x in %s", f.Symbol, f.Size, ko)
	off := sym.Value + f.Offset
	if !f.IsIP {
		off--
	}
	section := file.Sections[sym.Section].Name
	out, err := exec.Command("addr2line", "-i", "-f", "-e", ko, "-j", section, fmt.Sprintf("%#x", off)).Output()
	require.NoError(t, err)
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	require.Zero(t, len(lines)%2, "addr2line output: %q", out)
	var src []oops.SourceLine
	for i := 0; i < len(lines); i += 2 {
		loc := discriminator.ReplaceAllString(lines[i+1], "")
		colon := strings.LastIndexByte(loc, ':')
		require.Positive(t, colon, loc)
		n, err := strconv.Atoi(loc[colon+1:])
		require.NoError(t, err, loc)
		src = append(src, oops.SourceLine{Function: lines[i], File: loc[:colon], Line: n, Inlined: i+2 < len(lines)})
	}
	return src
}

// TestReadSessionReport: a session report is recognized by its content, any other input is a log.
func TestReadSessionReport(t *testing.T) {
	tests := []struct {
		name  string
		input string
		ok    bool
		text  string
	}{
		{"report with a context", `{"commands":[],"problems":[{"text":"BUG: a\n"},{"text":"BUG: b"}],"context":{"kernel":"6.1"}}`, true, "BUG: a\nBUG: b\n"},
		{"report of no problem", `  {"commands":[],"problems":[],"context":null}`, true, ""},
		{"report without a context", `{"commands":[],"problems":[{"text":"BUG: a\n"}]}`, true, "BUG: a\n"},
		{"other JSON", `{"problems":[]}`, false, ""},
		{"JSON array", `[{"problems":[],"context":{}}]`, false, ""},
		{"a log", "[    1.0] BUG: kernel NULL pointer dereference\n", false, ""},
		{"broken JSON", `{"problems":[`, false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, ok := readSessionReport([]byte(tt.input))
			require.Equal(t, tt.ok, ok)
			if ok {
				assert.Equal(t, tt.text, r.text())
			}
		})
	}
}

// TestDecodeReportText: the text output of a report names the fixture file the symbols came from;
// the demo's section shows the oops's frames with their source lines.
func TestDecodeReportText(t *testing.T) {
	prof, err := profile.Default()
	require.NoError(t, err)
	s, err := session.New(prof, session.Options{})
	require.NoError(t, err)
	defer s.Close()
	s.Exec("insmod fault_null.ko")
	rep := s.Report()
	data, err := json.Marshal(rep)
	require.NoError(t, err)
	reportPath := filepath.Join(t.TempDir(), "report.json")
	require.NoError(t, os.WriteFile(reportPath, data, 0o644))

	var out, errOut bytes.Buffer
	require.NoError(t, runDecode(&out, &errOut, nil, []string{reportPath}, decodeFlags{}))
	assert.Empty(t, errOut.String())
	assert.Contains(t, out.String(), ">>RIP: fault_null_init+0x")
	assert.Contains(t, out.String(), "fault_null_init at /work/main/testdata/modules/fault_null.c:")
	assert.True(t, strings.HasSuffix(out.String(),
		"\nModule symbols:\n  fault_null: embedded:fault_null.ko (kemu's embedded fixture)\n"), out.String())

	var demo bytes.Buffer
	writeDemoDecode(&demo, rep)
	assert.Regexp(t, `(?m)^  RIP fault_null_init\+0x[0-9a-f]+/0x[0-9a-f]+ \[fault_null\]\n      fault_null_init at \S+/fault_null\.c:\d+$`, demo.String())
}

// TestDecodeFixtureNameMismatch: a frame that names a fixture module but not that file's symbols
// stays unresolved, and no symbol source is claimed for it.
func TestDecodeFixtureNameMismatch(t *testing.T) {
	log := "[ 1.0] BUG: kernel NULL pointer dereference, address: 0000000000000008\n" +
		"[ 1.1] Oops: 0002 [#1] PREEMPT SMP NOPTI\n" +
		"[ 1.2] RIP: 0010:fault_null_init+0x22/0x9000 [fault_null]\n"
	var out, errOut bytes.Buffer
	require.NoError(t, runDecode(&out, &errOut, strings.NewReader(log), nil, decodeFlags{}))
	assert.Contains(t, out.String(), ">>RIP: fault_null_init+0x22/0x9000 [fault_null]")
	assert.NotContains(t, out.String(), "fault_null.c:")
	assert.NotContains(t, out.String(), "Module symbols:")
}
