package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"kemu/oops"
)

const decodeOops = `[   42.1] BUG: kernel NULL pointer dereference, address: 0000000000000008
[   42.2] Oops: 0002 [#1] PREEMPT SMP NOPTI
[   42.3] RIP: 0010:0xffffffffc0b00022
[   42.4] Code: 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 f3 90 <48> c7 40 08 2a 00 00 00 c3 cc cc cc cc cc cc cc cc cc cc cc cc
[   42.5] Call Trace:
[   42.6]  <TASK>
[   42.7]  do_one_initcall+0x56/0x220
[   42.8]  </TASK>
[   42.9] ---[ end trace 0000000000000000 ]---
`

func TestDecodeCommand(t *testing.T) {
	dir := t.TempDir()
	logPath := filepath.Join(dir, "session.log")
	require.NoError(t, os.WriteFile(logPath, []byte(decodeOops), 0o644))
	ko, err := filepath.Abs("../../testdata/modules/fault_null.ko")
	require.NoError(t, err)
	haveFixture := true
	if _, err := os.Stat(ko); err != nil {
		haveFixture = false
	}

	t.Run("no report is exit 2 with a message", func(t *testing.T) {
		var out, errOut bytes.Buffer
		err := runDecode(&out, &errOut, strings.NewReader("[ 0.0] Linux version 6.1.0\n"), nil, decodeFlags{})
		var ee *exitError
		require.True(t, errors.As(err, &ee))
		assert.Equal(t, 2, ee.code)
		assert.Contains(t, ee.msg, "no kernel crash report")
	})
	t.Run("binary garbage is exit 2, not a crash", func(t *testing.T) {
		err := runDecode(&bytes.Buffer{}, &bytes.Buffer{}, bytes.NewReader([]byte("\x7fELF\x00\xff\xfe\x00RIP: 0010:")), nil, decodeFlags{})
		var ee *exitError
		require.True(t, errors.As(err, &ee))
		assert.Equal(t, 2, ee.code)
	})
	t.Run("missing file is an error", func(t *testing.T) {
		err := runDecode(&bytes.Buffer{}, &bytes.Buffer{}, nil, []string{filepath.Join(dir, "nope")}, decodeFlags{})
		require.Error(t, err)
		var ee *exitError
		assert.False(t, errors.As(err, &ee))
	})
	t.Run("unreadable symbol source is an error", func(t *testing.T) {
		err := runDecode(&bytes.Buffer{}, &bytes.Buffer{}, nil, []string{logPath}, decodeFlags{kallsyms: filepath.Join(dir, "nope")})
		require.ErrorContains(t, err, "--kallsyms")
	})
	t.Run("text from stdin", func(t *testing.T) {
		var out bytes.Buffer
		require.NoError(t, runDecode(&out, &bytes.Buffer{}, strings.NewReader(decodeOops), []string{"-"}, decodeFlags{}))
		assert.Contains(t, out.String(), "=== BUG: kernel NULL pointer dereference")
		assert.Contains(t, out.String(), "movq $0x2a, 8(%rax)")
		assert.Contains(t, out.String(), "<===== trapping instruction")
	})
	t.Run("sidecar context is read with no flags", func(t *testing.T) {
		if !haveFixture {
			t.Skip("fixture fault_null.ko not built")
		}
		require.NoError(t, oops.WriteContext(logPath+oops.ContextSuffix, &oops.Context{Modules: []oops.ContextModule{{
			Name: "fault_null", Path: ko, Sections: map[string]uint64{".init.text": 0xffffffffc0b00000},
		}}}))
		defer os.Remove(logPath + oops.ContextSuffix)
		var out bytes.Buffer
		global.json = true
		defer func() { global.json = false }()
		require.NoError(t, runDecode(&out, &bytes.Buffer{}, nil, []string{logPath}, decodeFlags{}))
		var got struct {
			Reports []oops.Report `json:"reports"`
		}
		require.NoError(t, json.Unmarshal(out.Bytes(), &got))
		require.Len(t, got.Reports, 1)
		rip := got.Reports[0].RIP
		require.NotNil(t, rip)
		assert.Equal(t, "fault_null_init", rip.Symbol)
		assert.Equal(t, uint64(0x22), rip.Offset)
		assert.Equal(t, "fault_null", rip.Module)
		require.NotEmpty(t, rip.Source)
		assert.Equal(t, "fault_null.c", filepath.Base(rip.Source[0].File))
	})
}
