package corpus

import "testing"

// ForTest is Debian for tests and benchmarks: it skips the caller under -short (the corpus is a
// large download) and fails it when the tree cannot be fetched.
func ForTest(tb testing.TB, flavor string) *Tree {
	tb.Helper()
	if testing.Short() {
		tb.Skip("needs the Debian kernel corpus (scripts/fetch-debian-kernel); skipped with -short")
	}
	tree, err := Debian(flavor)
	if err != nil {
		tb.Fatalf("Debian kernel corpus: %v", err)
	}
	return tree
}
