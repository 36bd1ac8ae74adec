package machine

import "syscall"

// The rest of the kobject and sysfs API modules call: the two-step kobject_init + kobject_add,
// renaming before the add, attribute arrays, groups on a device (plain and devm_), and what sysfs
// does that kemu has no observer for (uevents to udev, poll notifications, symbolic links).

func init() {
	register("kobject_init", hKobjectInit)
	register("kobject_add", hKobjectAdd)
	register("kobject_set_name", hKobjectSetName)
	register("sysfs_create_files", hSysfsCreateFiles)
	register("sysfs_remove_files", hSysfsRemoveFiles)
	register("device_add_groups", hDeviceAddGroups)
	register("device_remove_groups", hDeviceRemoveGroups)
	register("devm_device_add_group", hDeviceAddGroup)
	register("devm_device_add_groups", hDeviceAddGroups)
	// No udev listens for uevents and no process polls a sysfs attribute here.
	register("kobject_uevent", hZero)
	register("kobject_uevent_env", hZero)
	register("sysfs_notify", hNop)
	// Links would only alias directories that exist already; kemu lists no links.
	register("sysfs_create_link", hZero)
	register("sysfs_remove_link", hNop)
}

// kobject_init(kobj, ktype).
func hKobjectInit(m *Machine, t *Trap) (uint64, error) {
	m.initKobject(t, t.Arg(0), t.Arg(1))
	return 0, nil
}

// initKobject is kobject_init: one reference and the ktype. A NULL kobject or ktype is an error
// the kernel reports (and then ignores); it reports whether the kobject was initialised.
func (m *Machine) initKobject(t *Trap, kobj, ktype uint64) bool {
	if kobj == 0 || ktype == 0 {
		m.logf(levelErr, "kobject: invalid kobject or ktype (%s)", m.describe(t.Return))
		return false
	}
	m.setField("kobject", "ktype", kobj, 8, ktype)
	m.setField("kobject", "kref.refcount.refs.counter", kobj, 4, 1)
	m.files().sysfs.count(kobj)
	return true
}

// setKobjectName is kobject_set_name_vargs: the name formatted from fmt and the arguments from
// first on, in kernel memory the kobject owns (freed when it is released).
func (m *Machine) setKobjectName(t *Trap, kobj uint64, first int) (string, int64, error) {
	name, err := m.format(t.Arg(first), t.VarArgs(first+1))
	if err != nil {
		return "", 0, err
	}
	p, err := m.kmallocBytes(append(name, 0), kemuCaller)
	if err != nil || p == 0 {
		return "", -int64(syscall.ENOMEM), nil
	}
	if old := m.field("kobject", "name", kobj); old != 0 {
		_ = m.kfree(old, kemuCaller)
	}
	m.setField("kobject", "name", kobj, 8, p)
	return string(name), 0, nil
}

// kobject_set_name(kobj, fmt, ...).
func hKobjectSetName(m *Machine, t *Trap) (uint64, error) {
	_, errno, err := m.setKobjectName(t, t.Arg(0), 1)
	return uint64(errno), err
}

// kobject_add(kobj, parent, fmt, ...).
func hKobjectAdd(m *Machine, t *Trap) (uint64, error) {
	if t.Arg(0) == 0 {
		return negErrno(syscall.EINVAL), nil
	}
	return m.nameAndAdd(t, t.Arg(0), t.Arg(1), 2)
}

// nameAndAdd is kobject_add's work: the name formatted from argument fmtArg on, then the kobject
// into sysfs below parent, recorded as the caller's.
func (m *Machine) nameAndAdd(t *Trap, kobj, parent uint64, fmtArg int) (uint64, error) {
	name, errno, err := m.setKobjectName(t, kobj, fmtArg)
	if err != nil || errno != 0 {
		return uint64(errno), err
	}
	if errno, err = m.addKobject(t, kobj, parent); err != nil || errno != 0 {
		return uint64(errno), err
	}
	m.record(t, "kobject", name, kobj, nil)
	return 0, nil
}

// attrArray calls fn on each attribute of a NULL-terminated array of struct attribute pointers,
// stopping at the first failure.
func (m *Machine) attrArray(attrs uint64, fn func(attr uint64) (uint64, error)) (uint64, error) {
	for i := uint64(0); attrs != 0 && i < maxTableEntries; i++ {
		attr, err := m.ReadU64(attrs + 8*i)
		if err != nil || attr == 0 {
			return 0, err
		}
		if ret, err := fn(attr); err != nil || ret != 0 {
			return ret, err
		}
	}
	return 0, nil
}

// sysfs_create_files(kobj, attrs): each file; a failure removes those made before it.
func hSysfsCreateFiles(m *Machine, t *Trap) (uint64, error) {
	kobj, attrs := t.Arg(0), t.Arg(1)
	var made []uint64
	ret, err := m.attrArray(attrs, func(attr uint64) (uint64, error) {
		ret, err := hSysfsCreateFile(m, m.retrap(t, kobj, attr))
		if err == nil && ret == 0 {
			made = append(made, attr)
		}
		return ret, err
	})
	if err != nil || ret != 0 {
		for _, attr := range made {
			_, _ = hSysfsRemoveFile(m, m.retrap(t, kobj, attr))
		}
	}
	return ret, err
}

// sysfs_remove_files(kobj, attrs).
func hSysfsRemoveFiles(m *Machine, t *Trap) (uint64, error) {
	kobj := t.Arg(0)
	return m.attrArray(t.Arg(1), func(attr uint64) (uint64, error) {
		return hSysfsRemoveFile(m, m.retrap(t, kobj, attr))
	})
}

// retrap is the trap t with other arguments: a handler called on the caller's behalf (the caller
// stays the module's call site, for Registrations).
func (m *Machine) retrap(t *Trap, args ...uint64) *Trap {
	c := *t
	c.regs = [6]uint64{}
	copy(c.regs[:], args)
	return &c
}

// device_add_groups(dev, groups) and devm_device_add_groups: sysfs_create_groups on the device's
// kobject (the devm_ form is undone when the device goes, as device_destroy does here).
func hDeviceAddGroups(m *Machine, t *Trap) (uint64, error) {
	if t.Arg(1) == 0 {
		return 0, nil
	}
	errno, err := m.createGroups(t, t.Arg(0)+m.offset("device", "kobj"), t.Arg(1))
	return uint64(errno), err
}

// devm_device_add_group(dev, grp).
func hDeviceAddGroup(m *Machine, t *Trap) (uint64, error) {
	errno, err := m.createGroup(t, t.Arg(0)+m.offset("device", "kobj"), t.Arg(1))
	return uint64(errno), err
}

// device_remove_groups(dev, groups).
func hDeviceRemoveGroups(m *Machine, t *Trap) (uint64, error) {
	return hSysfsRemoveGroups(m, m.retrap(t, t.Arg(0)+m.offset("device", "kobj"), t.Arg(1)))
}
