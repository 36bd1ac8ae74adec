package machine

import "syscall"

// Registration of what the user process can open: the kernel functions modules call to register
// and unregister character devices, misc devices, device nodes and proc entries record into the
// machine's vfs (vfs.go). Where handlers_dev.go already emulates the function's own effect (a
// dynamic major or minor, a kernel object), these wrap that handler and record its result.

// alloc_chrdev_region(dev_t *dev, baseminor, count, name).
func hAllocChrdevRegionVFS(m *Machine, t *Trap) (uint64, error) {
	ret, err := hAllocChrdevRegion(m, t)
	if err != nil || ret != 0 {
		return ret, err
	}
	dev, err := m.ReadU32(t.Arg(0))
	if err != nil {
		return 0, err
	}
	m.recordRegion(dev, t.Arg(2), t.Arg(3))
	return 0, nil
}

// register_chrdev_region(from, count, name): EBUSY when the numbers overlap a registered region.
func hRegisterChrdevRegion(m *Machine, t *Trap) (uint64, error) {
	if m.files().regionTaken(uint32(t.Arg(0)), uint32(t.Arg(1))) {
		return negErrno(syscall.EBUSY), nil
	}
	m.recordRegion(uint32(t.Arg(0)), t.Arg(1), t.Arg(2))
	return 0, nil
}

// unregister_chrdev_region(from, count).
func hUnregisterChrdevRegion(m *Machine, t *Trap) (uint64, error) {
	m.files().removeRegion(uint32(t.Arg(0)))
	return 0, nil
}

// recordRegion notes a region for /proc/devices, its name read from the driver's string.
func (m *Machine) recordRegion(dev uint32, count, nameAddr uint64) {
	name, _ := m.ReadCString(nameAddr, 64)
	m.files().addRegion(chrdevRegion{major: devMajor(dev), baseminor: devMinor(dev), count: uint32(count), name: name})
}

// __register_chrdev(major, baseminor, count, name, fops): a region and a kernel-made cdev over fops.
func hRegisterChrdevVFS(m *Machine, t *Trap) (uint64, error) {
	if t.Arg(0) != 0 && m.files().regionTaken(mkdev(uint32(t.Arg(0)), uint32(t.Arg(1))), uint32(t.Arg(2))) {
		return negErrno(syscall.EBUSY), nil
	}
	ret, err := hRegisterChrdev(m, t)
	if err != nil || isErrPtr(ret) {
		return ret, err
	}
	major := uint32(t.Arg(0))
	if major == 0 {
		major = uint32(ret)
	}
	dev := mkdev(major, uint32(t.Arg(1)))
	m.recordRegion(dev, t.Arg(2), t.Arg(3))
	m.files().addCdev(cdevEntry{dev: dev, count: uint32(t.Arg(2)), fops: t.Arg(4)})
	return ret, nil
}

// __unregister_chrdev(major, baseminor, count, name).
func hUnregisterChrdev(m *Machine, t *Trap) (uint64, error) {
	dev := mkdev(uint32(t.Arg(0)), uint32(t.Arg(1)))
	v := m.files()
	v.removeRegion(dev)
	v.cdevs = deleteWhere(v.cdevs, func(c cdevEntry) bool { return c.addr == 0 && c.dev == dev })
	return 0, nil
}

// cdev_add(cdev, dev, count): the cdev now serves its numbers (its ops are read at open).
func hCdevAdd(m *Machine, t *Trap) (uint64, error) {
	if t.Arg(2) == 0 {
		return negErrno(syscall.EINVAL), nil
	}
	m.files().addCdev(cdevEntry{addr: t.Arg(0), dev: uint32(t.Arg(1)), count: uint32(t.Arg(2))})
	return 0, nil
}

// cdev_del(cdev).
func hCdevDel(m *Machine, t *Trap) (uint64, error) {
	m.files().removeCdev(t.Arg(0))
	return 0, m.releaseDynamicCdev(t, t.Arg(0))
}

// device_create(class, parent, devt, drvdata, fmt, ...): devtmpfs makes /dev/<name> for a devt.
func hDeviceCreate(m *Machine, t *Trap) (uint64, error) {
	dev, err := hNewObject("device")(m, t)
	if err != nil || isErrPtr(dev) {
		return dev, err
	}
	name, err := m.format(t.Arg(4), t.VarArgs(5))
	if err != nil {
		return 0, err
	}
	v := m.files()
	v.addNode(devNode{name: string(name), dev: uint32(t.Arg(2)), device: dev})
	v.devices = append(v.devices, &sysDevice{addr: dev, name: string(name), class: m.className(t.Arg(0)), dev: uint32(t.Arg(2))})
	return dev, nil
}

// device_destroy(class, devt).
func hDeviceDestroy(m *Machine, t *Trap) (uint64, error) {
	m.files().removeNode(uint32(t.Arg(1)))
	return 0, m.removeDevice(uint32(t.Arg(1)))
}

// misc_register(misc): a minor of major 10 and /dev/<nodename or name>.
func hMiscRegisterVFS(m *Machine, t *Trap) (uint64, error) {
	ret, err := hMiscRegister(m, t)
	if err != nil || ret != 0 {
		return ret, err
	}
	misc := t.Arg(0)
	minor, err := m.ReadU32(misc + m.offset("miscdevice", "minor"))
	if err != nil {
		return 0, err
	}
	name, _ := m.ReadCString(m.field("miscdevice", "name", misc), 64)
	node := name
	if nodename := m.field("miscdevice", "nodename", misc); nodename != 0 {
		node, _ = m.ReadCString(nodename, 64)
	}
	m.files().addMisc(&miscEntry{addr: misc, minor: minor, name: name, node: node})
	return 0, nil
}

// misc_deregister(misc).
func hMiscDeregister(m *Machine, t *Trap) (uint64, error) {
	m.files().removeMisc(t.Arg(0))
	return 0, nil
}

// procCreate returns the handler of one proc_create* function: a proc_dir_entry object named
// by argument 0 under the parent in argument 2 (argument 1 for proc_mkdir), recorded with how its
// files are served. It returns NULL where the kernel fails (an unknown parent, a taken name).
func procCreate(kind entryKind) Handler {
	return func(m *Machine, t *Trap) (uint64, error) {
		name, err := m.ReadCString(t.Arg(0), 256)
		if err != nil {
			return 0, err
		}
		e := &fsEntry{name: name, kind: kind, parent: t.Arg(2)}
		switch kind {
		case entryDir: // proc_mkdir(name, parent); proc_mkdir_mode/_data(name, mode, parent[, data])
			if t.Name != "proc_mkdir_mode" && t.Name != "proc_mkdir_data" {
				e.parent = t.Arg(1)
			}
		case procOps: // proc_create_data(name, mode, parent, proc_ops, data); proc_create has no data
			e.ops = t.Arg(3)
			if t.Name == "proc_create_data" {
				e.data = t.Arg(4)
			}
		case procSingle: // proc_create_single_data(name, mode, parent, show, data)
			e.ops, e.data = t.Arg(3), t.Arg(4)
		case procSeq: // proc_create_seq_private(name, mode, parent, ops, state_size, data)
			e.ops, e.stateSize, e.data = t.Arg(3), t.Arg(4), t.Arg(5)
		}
		tree := &m.files().proc
		if (e.parent != 0 && tree.byAddr(e.parent) == nil) || tree.lookup(tree.path(e)) != nil {
			return 0, nil
		}
		pde, err := hNewObject("proc_dir_entry")(m, t)
		if err != nil || isErrPtr(pde) {
			return 0, err
		}
		e.addr = pde
		m.setField("proc_dir_entry", "data", pde, 8, e.data)
		if kind == procOps {
			m.setField("proc_dir_entry", "proc_ops", pde, 8, e.ops)
		}
		tree.add(e)
		return pde, nil
	}
}

// proc_remove(pde): the entry and everything below it.
func hProcRemove(m *Machine, t *Trap) (uint64, error) {
	if e := m.files().proc.byAddr(t.Arg(0)); e != nil {
		return 0, m.removeEntry(&m.files().proc, e)
	}
	return 0, nil
}

// remove_proc_entry(name, parent) and remove_proc_subtree(name, parent).
func hRemoveProcEntry(m *Machine, t *Trap) (uint64, error) {
	name, err := m.ReadCString(t.Arg(0), 256)
	if err != nil {
		return 0, err
	}
	tree := &m.files().proc
	for _, e := range tree.entries {
		if e.name == name && e.parent == t.Arg(1) {
			return 0, m.removeEntry(tree, e)
		}
	}
	return 0, nil
}

func init() {
	register("remove_proc_subtree", hRemoveProcEntry)
	register("proc_mkdir_mode", procCreate(entryDir))
	register("proc_mkdir_data", procCreate(entryDir))
}

// removeEntry takes down e and its subtree. /proc files still open on them are released now, by
// the entry's own release (proc_entry_rundown); their later use fails with EIO.
func (m *Machine) removeEntry(tree *fsTree, e *fsEntry) error {
	for _, x := range tree.subtree(e) {
		for len(x.open) > 0 {
			if err := m.releaseProc(x.open[0]); err != nil {
				return err
			}
		}
		tree.remove(x)
		if err := m.releaseObject(x.addr, kemuCaller); err != nil {
			return err
		}
	}
	return nil
}
