package machine

import (
	"fmt"
	"syscall"
)

// TTY drivers (drivers/tty/tty_io.c): a module allocates a struct tty_driver with per-line arrays,
// fills in its names and operations, and registers it, which gives it a character major. No line is
// ever opened here, so the operations never run.

// tty_driver flags (include/linux/tty_driver.h).
const (
	ttyDriverDynamicDev     = 0x08
	ttyDriverDevptsMem      = 0x10
	ttyDriverDynamicAlloc   = 0x40
	ttyDriverUnnumberedNode = 0x80
)

func init() {
	register("__tty_alloc_driver", hTtyAllocDriver)
	register("tty_register_driver", hTtyRegisterDriver)
	register("tty_unregister_driver", hTtyUnregisterDriver)
	register("tty_driver_kref_put", hTtyDriverPut)
}

// ttyDriver is what the machine allocated for one tty_driver, freed with it.
type ttyDriver struct{ arrays []uint64 }

// __tty_alloc_driver(lines, owner, flags): the driver with its ttys and termios arrays (unless
// devpts provides them) and its ports and cdevs arrays (unless allocated dynamically);
// ERR_PTR(-EINVAL) for no lines or several lines on an unnumbered node, ERR_PTR(-ENOMEM).
func hTtyAllocDriver(m *Machine, t *Trap) (uint64, error) {
	const s = "tty_driver"
	lines, flags := uint64(uint32(t.Arg(0))), t.Arg(2)
	if lines == 0 || flags&ttyDriverUnnumberedNode != 0 && lines > 1 {
		return negErrno(syscall.EINVAL), nil
	}
	size, ok := m.structSize(s)
	if !ok || lines > 1<<20 {
		return negErrno(syscall.ENOMEM), nil
	}
	drv := m.kmalloc(size, t.caller(), gfpZero)
	if drv == 0 {
		return negErrno(syscall.ENOMEM), nil
	}
	td := &ttyDriver{}
	array := func(field string, n uint64) bool {
		p := m.kmalloc(8*n, t.caller(), gfpZero)
		if p == 0 {
			return false
		}
		td.arrays = append(td.arrays, p)
		m.setField(s, field, drv, 8, p)
		return true
	}
	ok = true
	if flags&ttyDriverDevptsMem == 0 {
		ok = array("ttys", lines) && array("termios", lines)
	}
	if ok && flags&ttyDriverDynamicAlloc == 0 {
		cdevs := lines
		if flags&ttyDriverDynamicDev != 0 {
			cdevs = 1
		}
		ok = array("ports", lines) && array("cdevs", cdevs)
	}
	if !ok {
		return negErrno(syscall.ENOMEM), m.freeTtyDriver(t, drv, td)
	}
	m.setField(s, "kref.refcount.refs.counter", drv, 4, 1)
	m.setField(s, "num", drv, 4, lines)
	m.setField(s, "owner", drv, 8, t.Arg(1))
	m.setField(s, "flags", drv, 8, flags)
	d := m.drivers()
	if d.ttys == nil {
		d.ttys = map[uint64]*ttyDriver{}
	}
	d.ttys[drv] = td
	return drv, nil
}

func (m *Machine) freeTtyDriver(t *Trap, drv uint64, td *ttyDriver) error {
	var err error
	for _, p := range td.arrays {
		err = firstErr(err, m.kfree(p, t.caller()))
	}
	return firstErr(err, m.kfree(drv, t.caller()))
}

// tty_register_driver(driver): a driver without a major gets a dynamic one (alloc_chrdev_region),
// written back with its minor_start; the registration is recorded under its name.
func hTtyRegisterDriver(m *Machine, t *Trap) (uint64, error) {
	const s = "tty_driver"
	drv := t.Arg(0)
	name, err := m.readPtrString(s, "name", drv)
	if err != nil {
		return 0, err
	}
	major, err := m.readField(s, "major", drv, 4)
	if err != nil {
		return 0, err
	}
	if m.registered("tty", drv, "") >= 0 {
		return negErrno(syscall.EBUSY), nil
	}
	if major == 0 {
		var ok bool
		if major, ok = m.kernel.nextMajor(); !ok {
			return negErrno(syscall.EBUSY), nil
		}
		m.setField(s, "major", drv, 4, major)
	}
	m.record(t, "tty", name, drv, []string{fmt.Sprintf("major=%d", major)})
	return 0, nil
}

func hTtyUnregisterDriver(m *Machine, t *Trap) (uint64, error) {
	m.unrecord("tty", t.Arg(0))
	return 0, nil
}

// tty_driver_kref_put(driver): the last reference frees a driver the machine allocated.
func hTtyDriverPut(m *Machine, t *Trap) (uint64, error) {
	d := m.drivers()
	drv := t.Arg(0)
	td, ok := d.ttys[drv]
	if !ok {
		return 0, nil
	}
	off, ok := m.fieldOffset("tty_driver", "kref.refcount.refs.counter")
	if ok {
		refs, err := m.ReadU32(drv + off)
		if err != nil {
			return 0, err
		}
		if refs > 1 {
			return 0, m.WriteU32(drv+off, refs-1)
		}
	}
	delete(d.ttys, drv)
	return 0, m.freeTtyDriver(t, drv, td)
}
