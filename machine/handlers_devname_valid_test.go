package machine

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestDevValidName(t *testing.T) {
	m, a := bootArena(t)
	tests := []struct {
		name string
		want uint64
	}{
		{"gre0", 1}, {"eth0.100", 1}, {"a", 1}, {"fifteen-chars-x", 1},
		{"", 0}, {".", 0}, {"..", 0}, {"sixteen-chars-xx", 0},
		{"a/b", 0}, {"a:b", 0}, {"a b", 0}, {"a\tb", 0}, {"a\xa0b", 0},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, call(t, m, hDevValidName, a.str(tt.name)), "%q", tt.name)
	}
}
