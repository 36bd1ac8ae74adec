package profile

import (
	"fmt"
	"io"
	"strconv"
	"strings"
)

// ParseSystemMap reads a System.map file: `nm -n` output of vmlinux, one "address type name" line per
// symbol, the address in hex without a prefix. Symbols come back in file order.
func ParseSystemMap(r io.Reader) ([]Symbol, error) {
	var syms []Symbol
	err := eachLine(r, "System.map", func(text string) error {
		f := strings.Fields(text)
		if len(f) != 3 || len(f[1]) != 1 {
			return fmt.Errorf("want \"address type name\", got %q", text)
		}
		addr, err := strconv.ParseUint(f[0], 16, 64)
		if err != nil {
			return fmt.Errorf("bad address %q", f[0])
		}
		syms = append(syms, Symbol{Addr: addr, Type: f[1][0], Name: f[2]})
		return nil
	})
	if err != nil {
		return nil, err
	}
	return syms, nil
}
