package profile_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"kemu/corpus"
	"kemu/profile"
)

// Debian's vmlinuz decompresses to the same bytes with kemu's xz+BCJ reader as with xz(1), and
// the result has the BTF and banner the profile needs.
func TestExtractDebianVmlinux(t *testing.T) {
	tree := corpus.ForTest(t, "amd64")
	vmlinuz, err := os.ReadFile(filepath.Join(tree.Root, "boot", "vmlinuz-"+tree.Release))
	require.NoError(t, err)

	vmlinux, err := profile.ExtractVmlinux(vmlinuz)
	require.NoError(t, err)
	v, err := profile.ReadVmlinux(vmlinux)
	require.NoError(t, err)
	assert.Equal(t, tree.Release, v.Release)
	assert.Regexp(t, `^#\d+ SMP PREEMPT_DYNAMIC Debian `, v.Version)
	assert.Greater(t, len(v.BTF), 1<<20)

	if _, err := exec.LookPath("xz"); err != nil {
		t.Skip("xz not installed: cannot cross-check")
	}
	start := bytes.Index(vmlinuz, []byte{0xfd, '7', 'z', 'X', 'Z', 0})
	require.GreaterOrEqual(t, start, 0)
	cmd := exec.Command("xz", "-dc", "--single-stream")
	cmd.Stdin = bytes.NewReader(vmlinuz[start:])
	want, err := cmd.Output()
	require.NoError(t, err)
	assert.True(t, bytes.Equal(want, vmlinux), "kemu and xz(1) disagree on vmlinux")
}
