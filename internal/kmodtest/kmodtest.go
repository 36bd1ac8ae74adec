// Package kmodtest runs kmod's own tools for tests that compare kemu's output with theirs.
package kmodtest

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"testing"

	"github.com/stretchr/testify/require"
)

// Tool finds one of kmod's programs (depmod, modinfo, modprobe, ...), or skips the test when kmod
// is not installed.
func Tool(t testing.TB, name string) string {
	t.Helper()
	for _, dir := range []string{"/usr/sbin/", "/sbin/"} {
		if _, err := os.Stat(dir + name); err == nil {
			return dir + name
		}
	}
	t.Skipf("kmod's %s is not installed", name)
	return ""
}

// Output is what one run of a tool printed and its exit status.
type Output struct {
	Stdout, Stderr string
	Code           int
}

// Run runs bin in dir ("" for the current one) with argv[0] set to name, as a user typing the
// command would, and returns what it printed. A tool that cannot be started fails the test.
func Run(t testing.TB, bin, name, dir string, args ...string) Output {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Args[0] = name
	cmd.Dir = dir
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else {
		require.NoError(t, err)
	}
	return Output{out.String(), errb.String(), code}
}
