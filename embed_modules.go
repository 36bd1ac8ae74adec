// Package kemu holds the assets the rest of kemu embeds: the fixture kernel modules and the default
// kernel profile. It imports nothing of the project.
package kemu

import "embed"

// Modules holds the fixture kernel modules, built from testdata/modules/*.c against Debian bookworm's
// 6.1.0-56-amd64 headers by scripts/build-fixtures, at testdata/modules/<name>.ko (e.g.
// "testdata/modules/hello.ko"). testdata/modules/README.md lists each fixture, what it does and the
// exact log lines it prints; hello_signed.ko is hello.ko signed with the test-only key in testdata/keys.
//
//go:embed testdata/modules/*.ko
var Modules embed.FS
