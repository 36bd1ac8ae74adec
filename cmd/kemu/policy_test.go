package main

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const testCert = "../../testdata/keys/kemu-test-signing-cert.pem"

// withBadVermagic writes a copy of hello.ko whose vermagic differs from the kernel's after the release
// (same_magic ignores the release when the module has __versions).
func withBadVermagic(t *testing.T) string {
	b, err := os.ReadFile("../../testdata/modules/hello.ko")
	require.NoError(t, err)
	magic := []byte("6.1.0-56-amd64 SMP preempt mod_unload")
	bad := []byte("6.1.0-56-amd64 SMP voluntr mod_unload")
	i := bytes.Index(b, magic)
	require.GreaterOrEqual(t, i, 0)
	copy(b[i:], bad)
	p := filepath.Join(t.TempDir(), "hello.ko")
	require.NoError(t, os.WriteFile(p, b, 0o644))
	return p
}

// The kernel's module-loading policy flags reach the loader through every module-running command.
func TestLoadingPolicyFlags(t *testing.T) {
	out, err := runKemu(t, "--sig-enforce", "insmod", "hello.ko")
	require.Error(t, err)
	assert.Contains(t, out, "Loading of unsigned module is rejected")
	assert.Contains(t, out, "insmod: ERROR: could not insert module hello.ko: Key was rejected by service")

	out, err = runKemu(t, "--sig-enforce", "--sig-cert", testCert, "insmod", "hello_signed.ko")
	require.NoError(t, err, out)
	assert.Contains(t, out, "hello: hello, world")
	assert.NotContains(t, out, "module verification failed", "a verified signature does not taint E")

	out, err = runKemu(t, "--sig-enforce", "--sig-cert", testCert, "check",
		"../../testdata/modules/hello.ko", "../../testdata/modules/hello_signed.ko")
	require.Error(t, err)
	assert.Contains(t, out, "hello.ko: Loading of unsigned module is rejected")
	assert.Contains(t, out, "hello_signed.ko: OK")

	bad := withBadVermagic(t)
	out, err = runKemu(t, "insmod", bad)
	require.Error(t, err)
	assert.Contains(t, out, "hello: version magic '6.1.0-56-amd64 SMP voluntr mod_unload modversions ' should be '6.1.0-56-amd64 SMP preempt mod_unload modversions '")

	out, err = runKemu(t, "--force-vermagic", "insmod", bad)
	require.NoError(t, err, out)
	assert.Contains(t, out, "hello: bad vermagic: kernel tainted.")
	assert.Contains(t, out, "hello: hello, world")

	// finit_module's IGNORE_MODVERSIONS: as if the module had no __versions, the first symbol
	// checked (module_layout) forces the load.
	out, err = runKemu(t, "--force-modversion", "insmod", "hello.ko")
	require.NoError(t, err, out)
	assert.Contains(t, out, "hello: module_layout: kernel tainted.")

	_, err = runKemu(t, "--sig-cert", "/nonexistent/cert.pem", "insmod", "hello.ko")
	require.ErrorContains(t, err, "--sig-cert")
}
