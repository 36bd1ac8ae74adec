package session

import (
	"syscall"

	"kemu/machine"
)

// openMachineFile opens path through the machine's files of user processes (DEVELOPERS.md, "files
// opened by an emulated user process"). Until the machine serves them, no device, /proc or /sys
// entry of a module can be opened: every path but the session's own /proc files is ENOENT.
func openMachineFile(m *machine.Machine, path string, flags int) (file, error) {
	return nil, syscall.ENOENT
}
