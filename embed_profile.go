package kemu

import _ "embed"

// DefaultProfile is the compact profile (profile/format.go) of the kernel kemu emulates when no
// --kernel is given: Debian bookworm's 6.1.0-56-amd64. testdata/profile/README.md says how it was
// generated; profile.Default decodes it.
//
//go:embed testdata/profile/6.1.0-56-amd64.kprof
var DefaultProfile []byte
