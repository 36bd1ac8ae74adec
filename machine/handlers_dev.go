package machine

import (
	"fmt"
	"syscall"
)

// Character devices, device classes, misc devices and procfs entries. Registrations are recorded
// in the machine's vfs (vfs_register.go), through which the user process opens them.

func init() {
	register("alloc_chrdev_region", hAllocChrdevRegionVFS)
	register("register_chrdev_region", hRegisterChrdevRegion)
	register("unregister_chrdev_region", hUnregisterChrdevRegion)
	register("__register_chrdev", hRegisterChrdevVFS)
	register("__unregister_chrdev", hUnregisterChrdev)
	register("cdev_init", hCdevInit)
	register("cdev_add", hCdevAdd)
	register("cdev_del", hCdevDel)
	register("__class_create", hClassCreateVFS)
	register("class_destroy", hReleaseObject)
	register("device_create", hDeviceCreate)
	register("device_destroy", hDeviceDestroy)
	register("misc_register", hMiscRegisterVFS)
	register("misc_deregister", hMiscDeregister)
	register("proc_create", procCreate(procOps))
	register("proc_create_data", procCreate(procOps))
	register("proc_create_single_data", procCreate(procSingle))
	register("proc_create_seq_private", procCreate(procSeq))
	register("proc_mkdir", procCreate(entryDir))
	register("proc_remove", hProcRemove)
	register("remove_proc_entry", hRemoveProcEntry)
	register("_copy_from_user", hCopyFromUser)
	register("_copy_to_user", hCopyToUser)
	register("__check_object_size", hNop)
}

func hZero(m *Machine, t *Trap) (uint64, error) { return 0, nil }

// Dynamic character majors are handed out from 254 downwards (CHRDEV_MAJOR_DYN_END is 234), misc
// minors from 127 downwards (DYNAMIC_MINORS).
const (
	firstDynamicMajor = 254
	lastDynamicMajor  = 234
	firstDynamicMinor = 127
	miscDynamicMinor  = 255
	minorBits         = 20
)

func (k *kernelState) nextMajor() (uint64, bool) {
	major := uint64(firstDynamicMajor - k.majors)
	if major < lastDynamicMajor {
		return 0, false
	}
	k.majors++
	return major, true
}

// alloc_chrdev_region(dev_t *dev, baseminor, count, name).
func hAllocChrdevRegion(m *Machine, t *Trap) (uint64, error) {
	major, ok := m.kernel.nextMajor()
	if !ok {
		return negErrno(syscall.EBUSY), nil
	}
	return 0, m.WriteU32(t.Arg(0), uint32(major<<minorBits|t.Arg(1)&(1<<minorBits-1)))
}

// __register_chrdev(major, baseminor, count, name, fops): major 0 asks for a dynamic one, returned.
func hRegisterChrdev(m *Machine, t *Trap) (uint64, error) {
	if t.Arg(0) != 0 {
		return 0, nil
	}
	major, ok := m.kernel.nextMajor()
	if !ok {
		return negErrno(syscall.EBUSY), nil
	}
	return major, nil
}

// cdev_init(cdev, fops): zero the cdev and set its ops, as the kernel does.
func hCdevInit(m *Machine, t *Trap) (uint64, error) {
	if size, ok := m.structSize("cdev"); ok {
		if err := m.WriteAt(make([]byte, size), t.Arg(0)); err != nil {
			return 0, err
		}
	}
	m.setField("cdev", "ops", t.Arg(0), 8, t.Arg(1))
	return 0, nil
}

// misc_register(misc): a dynamic minor is written back into misc->minor.
func hMiscRegister(m *Machine, t *Trap) (uint64, error) {
	off, ok := m.fieldOffset("miscdevice", "minor")
	if !ok {
		return 0, nil
	}
	minor, err := m.ReadU32(t.Arg(0) + off)
	if err != nil {
		return 0, err
	}
	if minor == miscDynamicMinor {
		if m.kernel.miscMinors > firstDynamicMinor {
			return negErrno(syscall.EBUSY), nil
		}
		minor = uint32(firstDynamicMinor - m.kernel.miscMinors)
		m.kernel.miscMinors++
		return 0, m.WriteU32(t.Arg(0)+off, minor)
	}
	return 0, nil
}

// hNewObject returns a handler that creates a zeroed kernel object of the named struct (class,
// device, proc_dir_entry) and returns its address, standing in for the registered thing.
func hNewObject(structName string) Handler {
	return func(m *Machine, t *Trap) (uint64, error) {
		size, ok := m.structSize(structName)
		if !ok {
			size = 512
		}
		p := m.kmalloc(size, t.caller(), gfpZero)
		if p == 0 {
			return negErrno(syscall.ENOMEM), nil
		}
		m.kernel.objects = append(m.kernel.objects,
			kernelObject{addr: p, desc: fmt.Sprintf("%s@%#x from %s", structName, p, m.describe(t.Return))})
		return p, nil
	}
}

// hReleaseObject destroys a kernel object the module got from the kernel (class_destroy).
func hReleaseObject(m *Machine, t *Trap) (uint64, error) {
	if isErrPtr(t.Arg(0)) {
		return 0, nil
	}
	return 0, m.releaseObject(t.Arg(0), t.caller())
}

// userEnd is TASK_SIZE_MAX: the end of the user half of the address space.
const userEnd = 0x00007ffffffff000

// User copies go through the user process's address space (uproc.go): access_ok, then the user
// mappings; the result is the count of bytes not copied.
func hCopyFromUser(m *Machine, t *Trap) (uint64, error) {
	return m.copyFromUser(t.Arg(0), t.Arg(1), t.Arg(2))
}

func hCopyToUser(m *Machine, t *Trap) (uint64, error) {
	return m.copyToUser(t.Arg(0), t.Arg(1), t.Arg(2)), nil
}
