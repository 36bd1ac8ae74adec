package machine

import "syscall"

// dev_set_name (drivers/base/core.c): a device's name is its kobject's, formatted from a printf
// format, replacing any name it had; ENOMEM when the string cannot be allocated.

func init() {
	register("dev_set_name", hDevSetName)
}

// dev_set_name(dev, fmt, ...).
func hDevSetName(m *Machine, t *Trap) (uint64, error) {
	off, ok := m.fieldOffset("device", "kobj")
	if !ok {
		return negErrno(syscall.ENOMEM), nil
	}
	_, errno, err := m.setKobjectName(t, t.Arg(0)+off, 1)
	return uint64(errno), err
}
