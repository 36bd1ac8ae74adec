package machine

// cdev_alloc (fs/char_dev.c): a zeroed struct cdev from the heap with its list empty, whose
// kobject's release (ktype_cdev_dynamic) frees it when cdev_del drops the last reference. The
// kernel tells the two kinds of cdev apart by the kobject's ktype; kemu, which has no such symbol
// to point at, remembers the allocated ones as registrations, so that one a module never deletes
// shows as left behind.

func init() {
	register("cdev_alloc", hCdevAlloc)
}

const cdevDynamic = "cdev-dynamic"

func hCdevAlloc(m *Machine, t *Trap) (uint64, error) {
	size, ok := m.structSize("cdev")
	if !ok {
		size = 256
	}
	p := m.kmalloc(size, t.caller(), gfpZero)
	if p == 0 {
		return 0, nil
	}
	if off, ok := m.fieldOffset("cdev", "list"); ok {
		if err := firstErr(m.WriteU64(p+off, p+off), m.WriteU64(p+off+8, p+off)); err != nil {
			return 0, err
		}
	}
	m.record(t, cdevDynamic, "cdev", p, nil)
	return p, nil
}

// releaseDynamicCdev frees a cdev that cdev_alloc made, once cdev_del has taken it off the
// device table (the kobject's last reference); a cdev embedded in the module's own data is not
// the kernel's to free.
func (m *Machine) releaseDynamicCdev(t *Trap, cdev uint64) error {
	if !m.unrecord(cdevDynamic, cdev) {
		return nil
	}
	return m.kfree(cdev, t.caller())
}
