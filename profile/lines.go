package profile

import (
	"bufio"
	"fmt"
	"io"
	"strings"
)

// eachLine calls fn with every non-blank line of r and its 1-based number; what names the file in
// errors ("System.map line 12: ...").
func eachLine(r io.Reader, what string, fn func(text string) error) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
	for line := 1; sc.Scan(); line++ {
		text := sc.Text()
		if strings.TrimSpace(text) == "" {
			continue
		}
		if err := fn(text); err != nil {
			return fmt.Errorf("%s line %d: %w", what, line, err)
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}
