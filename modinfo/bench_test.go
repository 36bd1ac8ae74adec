package modinfo

import (
	"io"
	"os/exec"
	"path/filepath"
	"testing"
)

// BenchmarkMain measures kemu's modinfo on the signed fixture, the whole command: option
// parsing, reading, signature decoding and formatting.
func BenchmarkMain(b *testing.B) {
	path, err := filepath.Abs(filepath.Join(fixtureDir, "hello_signed.ko"))
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if Main([]string{path}, io.Discard, io.Discard) != 0 {
			b.Fatal("modinfo failed")
		}
	}
}

// BenchmarkKmodModinfo is kmod's modinfo on the same file, process start included, for scale.
func BenchmarkKmodModinfo(b *testing.B) {
	path, err := filepath.Abs(filepath.Join(fixtureDir, "hello_signed.ko"))
	if err != nil {
		b.Fatal(err)
	}
	bin, err := exec.LookPath("modinfo")
	if err != nil {
		b.Skip("kmod's modinfo is not installed")
	}
	for b.Loop() {
		if err := exec.Command(bin, path).Run(); err != nil {
			b.Fatal(err)
		}
	}
}
