package session

import (
	"testing"

	"kemu/machine"
	"kemu/profile"
)

// BenchmarkNewSession is the cost of a session: booting the machine and indexing the embedded tree.
func BenchmarkNewSession(b *testing.B) {
	prof, err := profile.Default()
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		s, err := New(prof, Options{Machine: machine.Options{}})
		if err != nil {
			b.Fatal(err)
		}
		s.Close()
	}
}

// BenchmarkEmbeddedTree is the cost of extracting and indexing the fixtures alone.
func BenchmarkEmbeddedTree(b *testing.B) {
	for b.Loop() {
		t, err := EmbeddedTree("6.1.0-56-amd64")
		if err != nil {
			b.Fatal(err)
		}
		t.Close()
	}
}
