package session

import (
	"kemu/machine"
)

// openMachineFile opens path through the machine's files of user processes (DEVELOPERS.md, "files
// opened by an emulated user process"): device nodes, the modules' /proc entries and the kernel's own
// /proc files. The machine builds the struct file, takes the module reference and calls ->open.
func openMachineFile(m *machine.Machine, path string, flags int) (file, error) {
	f, err := m.Open(path, flags)
	if err != nil {
		return nil, err // a nil *machine.File must not become a non-nil file
	}
	return f, nil
}
