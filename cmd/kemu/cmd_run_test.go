package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"kemu/session"
)

// exitCode is the process exit status a command's error stands for.
func exitCode(err error) int {
	if err == nil {
		return 0
	}
	if ee, ok := err.(*exitError); ok {
		return ee.code
	}
	return -1
}

func writeScript(t *testing.T, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "s.kemu")
	require.NoError(t, os.WriteFile(p, []byte(text), 0o644))
	return p
}

func TestRunTranscriptAndStatus(t *testing.T) {
	script := writeScript(t, "# comment\ninsmod producer.ko\n\nrmmod nosuch\n")
	out, err := runKemu(t, "run", script, "--report", "", "--errexit=false")
	assert.Equal(t, 1, exitCode(err), "the last command failed")
	assert.Equal(t, "# insmod producer.ko\n# rmmod nosuch\nrmmod: ERROR: Module nosuch is not currently loaded\n", out)
}

func TestRunJSONAndReport(t *testing.T) {
	script := writeScript(t, "insmod hello.ko\nlsmod\nrmmod hello\n")
	report := filepath.Join(t.TempDir(), "report.json")
	out, err := runKemu(t, "run", script, "--json", "--report", report, "--errexit=false")
	require.NoError(t, err)
	var recs []session.Record
	require.NoError(t, json.Unmarshal([]byte(out), &recs))
	require.Len(t, recs, 3)
	assert.Equal(t, session.Record{Command: "lsmod", Output: "Module                  Size  Used by\nhello                  16384  0\n"}, recs[1])

	data, err := os.ReadFile(report)
	require.NoError(t, err)
	var r session.Report
	require.NoError(t, json.Unmarshal(data, &r))
	assert.Equal(t, []string{"hello"}, r.Unloaded)
	assert.Len(t, r.Commands, 3)
	assert.NotEmpty(t, r.Calls)
	assert.Empty(t, r.Modules)
}

func TestRunStdinErrexit(t *testing.T) {
	rootCmd.SetIn(strings.NewReader("insmod nosuch.ko\ninsmod hello.ko\n"))
	t.Cleanup(func() { rootCmd.SetIn(nil) })
	out, err := runKemu(t, "run", "-", "-e", "--report", "")
	assert.Equal(t, 1, exitCode(err))
	assert.NotContains(t, out, "hello.ko\n# ", "stopped after the first failure")
}

func TestShellPiped(t *testing.T) {
	rootCmd.SetIn(strings.NewReader("insmod hello.ko\nlsmod\nexit\nrmmod hello\n"))
	t.Cleanup(func() { rootCmd.SetIn(nil) })
	out, err := runKemu(t, "shell", "--report", "")
	require.NoError(t, err)
	assert.Equal(t, "# insmod hello.ko\n# lsmod\nModule                  Size  Used by\nhello                  16384  0\n", out)
}

func TestModprobeCommand(t *testing.T) {
	out, err := runKemu(t, "modprobe", "consumer", "--report", "", "--modules", "")
	require.NoError(t, err)
	assert.Contains(t, out, "producer: ready, counter=0\n")
	assert.Contains(t, out, "consumer: producer_add(2, 3) = 5\n")

	out, err = runKemu(t, "modprobe", "proprietary", "--report", "", "--modules", "")
	assert.Equal(t, 1, exitCode(err))
	assert.True(t, strings.HasPrefix(out, "modprobe: ERROR: could not insert 'proprietary': Unknown symbol in module, or unknown parameter (see dmesg)\n"), out)
}

func TestModprobeModulesDir(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{"producer.ko", "consumer.ko"} {
		data, err := os.ReadFile(filepath.Join("..", "..", "testdata", "modules", name))
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), data, 0o644))
	}
	out, err := runKemu(t, "modprobe", "-v", "consumer", "--report", "", "--modules", dir)
	require.NoError(t, err)
	var buf bytes.Buffer
	buf.WriteString("insmod " + dir + "/producer.ko \ninsmod " + dir + "/consumer.ko \n")
	assert.True(t, strings.HasPrefix(out, buf.String()), out)

	_, err = runKemu(t, "modprobe", "hello", "--report", "", "--modules", dir)
	assert.Equal(t, 1, exitCode(err))
}
