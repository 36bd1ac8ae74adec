package mmu

import "fmt"

// Caller says who asked for memory, for accounting and for allocation/free reports: the return address of the
// allocating call in module code (as Linux's _RET_IP_ / __builtin_return_address), a label the host side
// chose, or both. It is opaque to the allocators; the machine symbolizes Addr when it prints one.
type Caller struct {
	Addr  uint64
	Label string
}

func (c Caller) String() string {
	switch {
	case c.Label != "" && c.Addr != 0:
		return fmt.Sprintf("%s (%#x)", c.Label, c.Addr)
	case c.Label != "":
		return c.Label
	}
	return fmt.Sprintf("%#x", c.Addr)
}
