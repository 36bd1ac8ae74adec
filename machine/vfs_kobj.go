package machine

import (
	"fmt"
	"strings"
	"syscall"

	"kemu/mmu"
)

// Kobjects and their attribute files in sysfs (lib/kobject.c, fs/sysfs/group.c and file.c).
//
// A kobject added to sysfs is a directory: below its parent's (kobject_create_and_add(name,
// kernel_kobj) is /sys/kernel/NAME once initSysfs has given kernel_kobj and the other top-level
// kobjects their objects; a NULL parent is /sys/NAME), or, for the kobject inside a
// device device_create made, that device's /sys/class/CLASS/DEVICE. sysfs_create_group adds the
// group's visible attributes (is_visible decides each mode) to the directory, or to a subdirectory
// for a named group; sysfs_create_file adds one. Reading a file calls the directory's show with a
// page (sysfs_kf_seq_show), writing calls store with a NUL-terminated kernel copy
// (sysfs_kf_write), through the kobject's sysfs_ops: kobj_sysfs_ops for kobject_create_and_add's
// dynamic kobjects and modules that use it (kobj_attr_show: the kobj_attribute's own show), the
// device's for a device (dev_attr_show), else the module's ktype->sysfs_ops. Opening for a
// direction the file's mode lacks is EACCES (kernfs_fop_open), even for root.
//
// Kobjects kemu does not create (a module's own inside a structure registered some other way, a
// bus device's) have no directory here: groups and files on them are recorded (Registrations) and
// succeed, as on the real kernel, but show no files.
//
// A kobject lives until its last kobject_put: then it leaves sysfs with everything below it
// (kobject_del) and is released, by ktype->release, or by kfree for dynamic kobjects.

func init() {
	register("kobject_create_and_add", hKobjectCreateAndAdd)
	register("kset_create_and_add", hKsetCreateAndAdd)
	register("kset_unregister", hKsetUnregister)
	register("kobject_init_and_add", hKobjectInitAndAdd)
	register("kobject_get", hKobjectGet)
	register("kobject_put", hKobjectPut)
	register("kobject_del", hKobjectDel)
	register("sysfs_create_group", hSysfsCreateGroup)
	register("sysfs_create_groups", hSysfsCreateGroups)
	register("sysfs_remove_group", hSysfsRemoveGroup)
	register("sysfs_remove_groups", hSysfsRemoveGroups)
	register("sysfs_create_file_ns", hSysfsCreateFile)
	register("sysfs_remove_file_ns", hSysfsRemoveFile)
}

// sysfsRoot is where sysfs is mounted.
const sysfsRoot = "/sys/"

// The kernel's own top-level kobjects, published in these pointer variables, and their directories.
var rootKobjects = []struct{ symbol, name string }{
	{"kernel_kobj", "kernel"}, {"mm_kobj", "mm"}, {"fs_kobj", "fs"}, {"firmware_kobj", "firmware"},
	{"power_kobj", "power"}, {"hypervisor_kobj", "hypervisor"},
}

// How the files of a directory reach their show and store (the kobject's sysfs_ops).
type attrOps int

const (
	kobjAttrOps   attrOps = iota // kobj_sysfs_ops: struct kobj_attribute's show(kobj, kattr, buf)
	deviceAttrOps                // dev_sysfs_ops: struct device_attribute's show(dev, dattr, buf)
	moduleOps                    // the module's sysfs_ops: show(kobj, attr, buf)
)

// kobjDir is a sysfs directory: a kobject's, or a named attribute group's inside one.
type kobjDir struct {
	kobj   uint64 // the struct kobject the files belong to
	name   string
	parent *kobjDir // nil at the top of sysfs
	group  uint64   // a named group's directory: its attribute_group
	base   string   // a device's directory: its path, instead of parent/name
	ops    attrOps
	sysOps uint64 // moduleOps: the struct sysfs_ops
}

func (d *kobjDir) path() string {
	if d.base != "" {
		return d.base
	}
	if d.parent == nil {
		return sysfsRoot + d.name
	}
	return d.parent.path() + "/" + d.name
}

// kobjFile is an attribute file of a kobject.
type kobjFile struct {
	dir  *kobjDir
	attr uint64 // struct attribute (inside a kobj_attribute or device_attribute), or bin_attribute
	bin  bool   // a binary attribute (vfs_kobj_bin.go)
	name string
	mode uint32
}

func (f *kobjFile) path() string { return f.dir.path() + "/" + f.name }

// sysfsTree is the kobject directories and files, in creation order.
type sysfsTree struct {
	dirs  []*kobjDir
	files []*kobjFile
	// counted is the kobjects kemu initialised (kobject_init and the _create_ functions), true
	// until released: only their reference counts are kept. Other kobjects (inside a device
	// another handler made, say) have no count here, and kobject_get/put leave them alone.
	counted map[uint64]bool
}

// count starts keeping the reference count of kobj.
func (s *sysfsTree) count(kobj uint64) {
	if s.counted == nil {
		s.counted = map[uint64]bool{}
	}
	s.counted[kobj] = true
}

// dirOf is the directory of the kobject at kobj (not a group's), nil when it is not in sysfs.
func (s *sysfsTree) dirOf(kobj uint64) *kobjDir {
	for _, d := range s.dirs {
		if d.kobj == kobj && d.group == 0 {
			return d
		}
	}
	return nil
}

// child is the subdirectory name of parent (nil: the top of sysfs).
func (s *sysfsTree) child(parent *kobjDir, name string) *kobjDir {
	for _, d := range s.dirs {
		if d.parent == parent && d.name == name && d.base == "" {
			return d
		}
	}
	return nil
}

func (s *sysfsTree) file(dir *kobjDir, name string) *kobjFile {
	for _, f := range s.files {
		if f.dir == dir && f.name == name {
			return f
		}
	}
	return nil
}

// removeDir takes d, its files and every directory below it out of sysfs (kernfs_remove).
func (s *sysfsTree) removeDir(d *kobjDir) {
	var below func(x *kobjDir) bool
	below = func(x *kobjDir) bool {
		for ; x != nil; x = x.parent {
			if x == d {
				return true
			}
		}
		return false
	}
	s.files = deleteWhere(s.files, func(f *kobjFile) bool { return below(f.dir) })
	s.dirs = deleteWhere(s.dirs, below)
}

// initSysfs gives the kernel's top-level kobjects (kernel_kobj and friends) objects and sysfs
// directories. It is a boot step: it must run before any module code reads those variables (until
// then they are NULL). A second call does nothing.
func (m *Machine) initSysfs() error {
	size, ok := m.structSize("kobject")
	if !ok {
		return nil // no BTF: modules see NULL parents, as before sysfs is up
	}
	s := &m.files().sysfs
	for _, r := range rootKobjects {
		sym, ok := m.prof.Lookup(r.symbol)
		if !ok {
			continue
		}
		if cur, err := m.ReadU64(sym.Addr); err != nil || cur != 0 {
			continue
		}
		obj, err := m.newKobject(size, 0, r.name, kemuCaller)
		if err != nil {
			return fmt.Errorf("sysfs: %s: %w", r.symbol, err)
		}
		if err := m.WriteU64(sym.Addr, obj); err != nil {
			return err
		}
		s.dirs = append(s.dirs, &kobjDir{kobj: obj, name: r.name})
	}
	return nil
}

// newKobject allocates a zeroed object of size bytes whose kobject is at kobjOff, with the name
// stored after the object and a reference count of one (kobject_init). It returns the object.
func (m *Machine) newKobject(size, kobjOff uint64, name string, caller mmu.Caller) (uint64, error) {
	obj := m.kmalloc(size+uint64(len(name))+1, caller, gfpZero)
	if obj == 0 {
		return 0, syscall.ENOMEM
	}
	if err := m.WriteAt(append([]byte(name), 0), obj+size); err != nil {
		return 0, err
	}
	m.setField("kobject", "name", obj+kobjOff, 8, obj+size)
	m.setField("kobject", "kref.refcount.refs.counter", obj+kobjOff, 4, 1)
	m.files().sysfs.count(obj + kobjOff)
	return obj, nil
}

// kobjectName is kobject_name(kobj).
func (m *Machine) kobjectName(kobj uint64) string {
	name, _ := m.ReadCString(m.field("kobject", "name", kobj), 256)
	return name
}

// addKobject is kobject_add's sysfs part: the kobject's directory below its parent's (the top of
// sysfs for NULL), with the ops of its ktype, then the ktype's default groups. A taken name is
// EEXIST, reported as sysfs_warn_dup does.
func (m *Machine) addKobject(t *Trap, kobj, parent uint64) (int64, error) {
	s := &m.files().sysfs
	name := m.kobjectName(kobj)
	m.setField("kobject", "parent", kobj, 8, parent)
	d := &kobjDir{kobj: kobj, name: name, parent: s.dirOf(parent)}
	if parent != 0 && d.parent == nil {
		if dev := m.files().deviceByAddr(parent - m.offset("device", "kobj")); dev != nil {
			d.parent = m.deviceDir(dev)
		}
	}
	if s.child(d.parent, name) != nil || (d.parent != nil && s.file(d.parent, name) != nil) {
		m.logf(levelErr, "sysfs: cannot create duplicate filename '%s'", strings.TrimPrefix(d.path(), "/sys"))
		return -int64(syscall.EEXIST), nil
	}
	ktype := m.field("kobject", "ktype", kobj)
	if ops := m.field("kobj_type", "sysfs_ops", ktype); ops != 0 && ops != m.kobjSysfsOps() {
		d.ops, d.sysOps = moduleOps, ops
	}
	s.dirs = append(s.dirs, d)
	if groups := m.field("kobj_type", "default_groups", ktype); groups != 0 {
		if errno, err := m.createGroups(t, kobj, groups); err != nil || errno != 0 {
			s.removeDir(d)
			return errno, err
		}
	}
	return 0, nil
}

// kobjSysfsOps is the address of the kernel's kobj_sysfs_ops, whose show and store kemu runs in Go;
// 0 when the profile lacks it.
func (m *Machine) kobjSysfsOps() uint64 {
	if s, ok := m.prof.Lookup("kobj_sysfs_ops"); ok {
		return s.Addr
	}
	return 0
}

// deviceDir is the sysfs directory of a device device_create made, created on first use.
func (m *Machine) deviceDir(dev *sysDevice) *kobjDir {
	s := &m.files().sysfs
	kobj := dev.addr + m.offset("device", "kobj")
	if d := s.dirOf(kobj); d != nil {
		return d
	}
	d := &kobjDir{kobj: kobj, name: dev.name, base: sysfsClassRoot + dev.class + "/" + dev.name, ops: deviceAttrOps}
	s.dirs = append(s.dirs, d)
	return d
}

// kobjDirFor is the directory files of kobj go in: its own, or its device's.
func (m *Machine) kobjDirFor(kobj uint64) *kobjDir {
	if d := m.files().sysfs.dirOf(kobj); d != nil {
		return d
	}
	if dev := m.files().deviceByAddr(kobj - m.offset("device", "kobj")); dev != nil {
		return m.deviceDir(dev)
	}
	return nil
}

// kobject_create_and_add(name, parent): a dynamic kobject (kfree'd on its last put) in sysfs;
// NULL when the name is taken or memory runs out.
func hKobjectCreateAndAdd(m *Machine, t *Trap) (uint64, error) {
	return m.createAndAdd(t, "kobject", t.Arg(1))
}

// kset_create_and_add(name, uevent_ops, parent_kobj): a kset, whose kobject is a directory like
// any other.
func hKsetCreateAndAdd(m *Machine, t *Trap) (uint64, error) {
	return m.createAndAdd(t, "kset", t.Arg(2))
}

// createAndAdd makes a zeroed struct (kobject or kset) named by argument 0, adds its kobject to
// sysfs below parent and records it under the struct's name; NULL when the name is taken or memory
// runs out (kobject_add's error is logged, as kobject_create_and_add does).
func (m *Machine) createAndAdd(t *Trap, structName string, parent uint64) (uint64, error) {
	size, ok := m.structSize(structName)
	if !ok {
		return 0, nil
	}
	name, err := m.ReadCString(t.Arg(0), 256)
	if err != nil {
		return 0, err
	}
	kobjOff := uint64(0)
	if structName == "kset" {
		kobjOff = m.offset("kset", "kobj")
	}
	obj, err := m.newKobject(size, kobjOff, name, t.caller())
	if err != nil {
		return 0, nil
	}
	if errno, err := m.addKobject(t, obj+kobjOff, parent); err != nil || errno != 0 {
		m.logf(levelWarning, "%s: kobject_add error: %d", t.Name, errno)
		_ = m.kfree(obj, t.caller())
		return 0, err
	}
	m.record(t, structName, name, obj, nil)
	return obj, nil
}

// kset_unregister(kset): out of sysfs and freed (its kobject's last reference).
func hKsetUnregister(m *Machine, t *Trap) (uint64, error) {
	kset := t.Arg(0)
	if !m.unrecord("kset", kset) {
		return 0, nil
	}
	m.removeKobjectDir(kset + m.offset("kset", "kobj"))
	return 0, m.kfree(kset, t.caller())
}

// kobject_init_and_add(kobj, ktype, parent, fmt, ...): kobject_init, then kobject_add. On a
// failure the caller still owns its reference: its kobject_put cleans up.
func hKobjectInitAndAdd(m *Machine, t *Trap) (uint64, error) {
	if !m.initKobject(t, t.Arg(0), t.Arg(1)) {
		return negErrno(syscall.EINVAL), nil
	}
	return m.nameAndAdd(t, t.Arg(0), t.Arg(2), 3)
}

// refcountSubUAF is REFCOUNT_SUB_UAF, the saturation kind of a put on a zero count.
const refcountSubUAF = 3

// kobjectRefs is the address of kobj->kref's counter.
func (m *Machine) kobjectRefs(kobj uint64) uint64 {
	return kobj + m.offset("kobject", "kref.refcount.refs.counter")
}

// kobject_get(kobj): one more reference; returns kobj.
func hKobjectGet(m *Machine, t *Trap) (uint64, error) {
	kobj := t.Arg(0)
	if _, known := m.files().sysfs.counted[kobj]; !known {
		return kobj, nil
	}
	n, err := m.ReadU32(m.kobjectRefs(kobj))
	if err != nil {
		return 0, err
	}
	return kobj, m.WriteU32(m.kobjectRefs(kobj), n+1)
}

// kobject_put(kobj): the last reference removes it from sysfs and releases it; a put on a count
// already at zero is the refcount underflow warning (and nothing else).
func hKobjectPut(m *Machine, t *Trap) (uint64, error) {
	kobj := t.Arg(0)
	if _, known := m.files().sysfs.counted[kobj]; !known {
		return 0, nil
	}
	refs := m.kobjectRefs(kobj)
	n, err := m.ReadU32(refs)
	if err != nil {
		return 0, err
	}
	if n == 0 || !m.files().sysfs.counted[kobj] { // kref_put on a dead kobject: refcount_warn_saturate(r, REFCOUNT_SUB_UAF)
		warn := *t
		warn.regs = [6]uint64{refs, refcountSubUAF}
		return hRefcountWarnSaturate(m, &warn)
	}
	if err := m.WriteU32(refs, n-1); err != nil || n > 1 {
		return 0, err
	}
	return 0, m.releaseKobject(t, kobj)
}

// releaseKobject is kobject_cleanup: out of sysfs, then ktype->release, or kfree for the
// kobjects kobject_create_and_add made (dynamic_kobj_release).
func (m *Machine) releaseKobject(t *Trap, kobj uint64) error {
	m.removeKobjectDir(kobj)
	m.files().sysfs.counted[kobj] = false // a later put is the underflow it is
	dynamic := m.unrecord("kobject", kobj) && m.field("kobject", "ktype", kobj) == 0
	if dynamic {
		return m.kfree(kobj, t.caller())
	}
	name := m.field("kobject", "name", kobj)
	release := m.field("kobj_type", "release", m.field("kobject", "ktype", kobj))
	if release == 0 {
		m.logf(levelErr, "kobject: '%s' (%016x): does not have a release() function, it is broken and must be fixed. See Documentation/core-api/kobject.rst.",
			m.kobjectName(kobj), kobj)
	} else if _, err := m.Call(release, kobj); err != nil {
		return err
	}
	if name != 0 {
		_ = m.kfree(name, kemuCaller)
	}
	return nil
}

// removeKobjectDir is kobject_del's sysfs part: the directory, its groups and files go, and so do
// the registrations of groups and files that went with them.
func (m *Machine) removeKobjectDir(kobj uint64) {
	s := &m.files().sysfs
	d := s.dirOf(kobj)
	if d == nil {
		return
	}
	for _, f := range s.files {
		if f.dir == d {
			m.unrecord("sysfs-file", f.attr)
		}
	}
	for _, g := range s.dirs {
		if g.parent == d && g.group != 0 {
			m.unrecord("sysfs-group", g.group)
		}
	}
	s.removeDir(d)
}

// kobject_del(kobj): out of sysfs; the references stay.
func hKobjectDel(m *Machine, t *Trap) (uint64, error) {
	m.removeKobjectDir(t.Arg(0))
	return 0, nil
}

// sysfsModeMask is what create_files lets through of an attribute's mode: SYSFS_PREALLOC | 0664.
const (
	sysfsPrealloc = 0o10000
	sysfsModeMask = sysfsPrealloc | 0o664
)

// createGroup is internal_create_group(kobj, 0, grp).
func (m *Machine) createGroup(t *Trap, kobj, grp uint64) (int64, error) {
	s := &m.files().sysfs
	if kobj == 0 || grp == 0 {
		m.logf(levelWarning, "WARNING: sysfs_create_group: no kobject or group (%s)", m.describe(t.Return))
		return -int64(syscall.EINVAL), nil
	}
	dir := m.kobjDirFor(kobj)
	attrs := m.field("attribute_group", "attrs", grp)
	groupName, _ := m.ReadCString(m.field("attribute_group", "name", grp), 256)
	if attrs == 0 && m.field("attribute_group", "bin_attrs", grp) == 0 {
		m.logf(levelWarning, "sysfs: (bin_)attrs not set by subsystem for group: %s/%s", m.kobjectName(kobj), groupName)
		return -int64(syscall.EINVAL), nil
	}
	if dir == nil { // a kobject kemu has no directory for (see the file comment)
		m.record(t, "sysfs-group", groupName, grp, nil)
		return 0, nil
	}
	if groupName != "" {
		if s.child(dir, groupName) != nil || s.file(dir, groupName) != nil {
			m.logf(levelErr, "sysfs: cannot create duplicate filename '%s/%s'", strings.TrimPrefix(dir.path(), "/sys"), groupName)
			return -int64(syscall.EEXIST), nil
		}
		sub := &kobjDir{kobj: kobj, name: groupName, parent: dir, group: grp, ops: dir.ops, sysOps: dir.sysOps}
		s.dirs = append(s.dirs, sub)
		dir = sub
	}
	var added []*kobjFile
	for _, list := range []struct {
		array, visible uint64
		bin            bool
	}{
		{attrs, m.field("attribute_group", "is_visible", grp), false},
		{m.field("attribute_group", "bin_attrs", grp), m.field("attribute_group", "is_bin_visible", grp), true},
	} {
		files, errno, err := m.addGroupFiles(dir, kobj, list.array, list.visible, list.bin)
		added = append(added, files...)
		if err != nil || errno != 0 {
			s.files = deleteWhere(s.files, func(f *kobjFile) bool { return containsFile(added, f) })
			if groupName != "" {
				s.removeDir(dir)
			}
			return errno, err
		}
	}
	m.record(t, "sysfs-group", groupName, grp, nil)
	return 0, nil
}

// addGroupFiles is create_files for one NULL-terminated array of a group: struct attribute
// pointers, or struct bin_attribute pointers (bin), each with its mode or what the group's
// visibility callback says (0: not created). It returns the files it made, also on a failure.
func (m *Machine) addGroupFiles(dir *kobjDir, kobj, array, visible uint64, bin bool) ([]*kobjFile, int64, error) {
	var added []*kobjFile
	for i := uint64(0); array != 0 && i < maxTableEntries; i++ {
		entry, err := m.ReadU64(array + 8*i)
		if err != nil || entry == 0 {
			return added, 0, err
		}
		mode, err := m.readField("attribute", "mode", m.attributeOf(entry, bin), 2)
		if err != nil {
			return added, 0, err
		}
		if visible != 0 {
			if mode, err = m.Call(visible, kobj, entry, i); err != nil {
				return added, 0, err
			}
			if mode = uint64(uint16(mode)); mode == 0 {
				continue
			}
		}
		f, errno, err := m.addAttrFile(dir, entry, bin, mode)
		if err != nil || errno != 0 {
			return added, errno, err
		}
		added = append(added, f)
	}
	return added, 0, nil
}

// attributeOf is the struct attribute of an attribute-array entry: the entry itself, or the attr
// member of a struct bin_attribute.
func (m *Machine) attributeOf(entry uint64, bin bool) uint64 {
	if bin {
		return entry + m.offset("bin_attribute", "attr")
	}
	return entry
}

func containsFile(list []*kobjFile, f *kobjFile) bool {
	for _, x := range list {
		if x == f {
			return true
		}
	}
	return false
}

// addAttrFile is sysfs_add_file_mode_ns (sysfs_add_bin_file_mode_ns for bin): the file of attr (a
// struct attribute, or a struct bin_attribute) in dir, with mode (masked, with a warning for bits
// a sysfs file may not have); a taken name is EEXIST.
func (m *Machine) addAttrFile(dir *kobjDir, attr uint64, bin bool, mode uint64) (*kobjFile, int64, error) {
	s := &m.files().sysfs
	name, err := m.ReadCString(m.field("attribute", "name", m.attributeOf(attr, bin)), 256)
	if err != nil {
		return nil, 0, err
	}
	if mode&^sysfsModeMask != 0 {
		m.logf(levelWarning, "Attribute %s: Invalid permissions 0%o", name, mode)
	}
	if s.file(dir, name) != nil || s.child(dir, name) != nil || m.deviceAttrTaken(dir, name) {
		m.logf(levelErr, "sysfs: cannot create duplicate filename '%s/%s'", strings.TrimPrefix(dir.path(), "/sys"), name)
		return nil, -int64(syscall.EEXIST), nil
	}
	f := &kobjFile{dir: dir, attr: attr, bin: bin, name: name, mode: uint32(mode & sysfsModeMask)}
	s.files = append(s.files, f)
	return f, 0, nil
}

// deviceAttrTaken says whether a device_create_file attribute already has the name in dir.
func (m *Machine) deviceAttrTaken(dir *kobjDir, name string) bool {
	for _, a := range m.files().attrs {
		if a.path() == dir.path()+"/"+name {
			return true
		}
	}
	return false
}

// createGroups is sysfs_create_groups(kobj, groups): each group of the NULL-terminated array;
// a failure removes the ones already made.
func (m *Machine) createGroups(t *Trap, kobj, groups uint64) (int64, error) {
	for i := uint64(0); i < maxTableEntries; i++ {
		grp, err := m.ReadU64(groups + 8*i)
		if err != nil || grp == 0 {
			return 0, err
		}
		if errno, err := m.createGroup(t, kobj, grp); err != nil || errno != 0 {
			for j := uint64(0); j < i; j++ {
				g, _ := m.ReadU64(groups + 8*j)
				m.removeGroup(kobj, g)
			}
			return errno, err
		}
	}
	return 0, nil
}

// removeGroup is sysfs_remove_group(kobj, grp): a named group's directory goes whole, an unnamed
// group's files one by one.
func (m *Machine) removeGroup(kobj, grp uint64) {
	s := &m.files().sysfs
	m.unrecord("sysfs-group", grp)
	dir := m.kobjDirFor(kobj)
	if dir == nil || grp == 0 {
		return
	}
	if name, _ := m.ReadCString(m.field("attribute_group", "name", grp), 256); name != "" {
		sub := s.child(dir, name)
		if sub == nil {
			m.logf(levelWarning, "sysfs group '%s' not found for kobject '%s'", name, m.kobjectName(kobj))
			return
		}
		s.removeDir(sub)
		return
	}
	for _, array := range []uint64{m.field("attribute_group", "attrs", grp), m.field("attribute_group", "bin_attrs", grp)} {
		for i := uint64(0); array != 0 && i < maxTableEntries; i++ {
			attr, err := m.ReadU64(array + 8*i)
			if err != nil || attr == 0 {
				break
			}
			s.files = deleteWhere(s.files, func(f *kobjFile) bool { return f.dir == dir && f.attr == attr })
		}
	}
}

// sysfs_create_group(kobj, grp).
func hSysfsCreateGroup(m *Machine, t *Trap) (uint64, error) {
	errno, err := m.createGroup(t, t.Arg(0), t.Arg(1))
	return uint64(errno), err
}

// sysfs_create_groups(kobj, groups).
func hSysfsCreateGroups(m *Machine, t *Trap) (uint64, error) {
	if t.Arg(1) == 0 {
		return 0, nil
	}
	errno, err := m.createGroups(t, t.Arg(0), t.Arg(1))
	return uint64(errno), err
}

// sysfs_remove_group(kobj, grp).
func hSysfsRemoveGroup(m *Machine, t *Trap) (uint64, error) {
	m.removeGroup(t.Arg(0), t.Arg(1))
	return 0, nil
}

// sysfs_remove_groups(kobj, groups).
func hSysfsRemoveGroups(m *Machine, t *Trap) (uint64, error) {
	for i := uint64(0); t.Arg(1) != 0 && i < maxTableEntries; i++ {
		grp, err := m.ReadU64(t.Arg(1) + 8*i)
		if err != nil || grp == 0 {
			return 0, err
		}
		m.removeGroup(t.Arg(0), grp)
	}
	return 0, nil
}

// createFile is sysfs_create_file_ns(kobj, attr, ns) and, for bin, sysfs_create_bin_file(kobj,
// attr): one file with the attribute's own mode.
func createFile(bin bool) Handler {
	return func(m *Machine, t *Trap) (uint64, error) {
		kobj, entry := t.Arg(0), t.Arg(1)
		if kobj == 0 || entry == 0 {
			m.logf(levelWarning, "WARNING: %s: no kobject or attribute (%s)", t.Name, m.describe(t.Return))
			return negErrno(syscall.EINVAL), nil
		}
		attr := m.attributeOf(entry, bin)
		name, err := m.ReadCString(m.field("attribute", "name", attr), 256)
		if err != nil {
			return 0, err
		}
		if dir := m.kobjDirFor(kobj); dir != nil { // else a kobject kemu has no directory for
			mode, err := m.readField("attribute", "mode", attr, 2)
			if err != nil {
				return 0, err
			}
			if _, errno, err := m.addAttrFile(dir, entry, bin, mode); err != nil || errno != 0 {
				return uint64(errno), err
			}
		}
		m.record(t, "sysfs-file", name, entry, nil)
		return 0, nil
	}
}

var (
	hSysfsCreateFile    = createFile(false)
	hSysfsCreateBinFile = createFile(true)
)

// sysfs_remove_file_ns(kobj, attr, ns).
func hSysfsRemoveFile(m *Machine, t *Trap) (uint64, error) {
	m.unrecord("sysfs-file", t.Arg(1))
	if dir := m.kobjDirFor(t.Arg(0)); dir != nil {
		s := &m.files().sysfs
		s.files = deleteWhere(s.files, func(f *kobjFile) bool { return f.dir == dir && f.attr == t.Arg(1) })
	}
	return 0, nil
}

// openKobjFile opens a kobject attribute file; it is served by the show and store of its
// directory's ops, each read and write checking that the file still exists.
func (m *Machine) openKobjFile(path string, flags int) (*File, error) {
	s := &m.files().sysfs
	for _, kf := range s.files {
		if kf.path() != path {
			continue
		}
		acc := flags & oAccMode
		if (acc != oWronly && kf.mode&0o444 == 0) || (acc != 0 && kf.mode&0o222 == 0) {
			return nil, syscall.EACCES
		}
		if kf.bin {
			return m.openBinFile(path, flags, kf)
		}
		f := &File{m: m, path: path, flags: flags}
		f.served = &servedFile{
			render: func() ([]byte, error) { return f.kobjShow(kf) },
			store:  func(b []byte) (int, error) { return f.kobjStore(kf, b) },
		}
		return f, nil
	}
	return nil, syscall.ENOENT
}

// live reports whether the file is still in sysfs (a removed one is ENODEV, as kernfs's
// deactivated nodes give).
func (m *Machine) live(kf *kobjFile) bool {
	return containsFile(m.files().sysfs.files, kf)
}

// showStore is the function a file's show or store goes to, and its first two arguments.
func (m *Machine) showStore(kf *kobjFile, field string) (fn, a0, a1 uint64) {
	switch kf.dir.ops {
	case deviceAttrOps:
		return m.field("device_attribute", field, kf.attr), kf.dir.kobj - m.offset("device", "kobj"), kf.attr
	case moduleOps:
		return m.field("sysfs_ops", field, kf.dir.sysOps), kf.dir.kobj, kf.attr
	}
	return m.field("kobj_attribute", field, kf.attr), kf.dir.kobj, kf.attr
}

// kobjShow is sysfs_kf_seq_show: show into a page.
func (f *File) kobjShow(kf *kobjFile) ([]byte, error) {
	if !f.m.live(kf) {
		return nil, syscall.ENODEV
	}
	fn, a0, a1 := f.m.showStore(kf, "show")
	return f.showPage(fn, a0, a1)
}

// kobjStore is sysfs_kf_write: store over a NUL-terminated copy.
func (f *File) kobjStore(kf *kobjFile, b []byte) (int, error) {
	if !f.m.live(kf) {
		return 0, syscall.ENODEV
	}
	fn, a0, a1 := f.m.showStore(kf, "store")
	return f.storeCopy(fn, a0, a1, b)
}

// paths is every kobject attribute file's path.
func (s *sysfsTree) paths() []string {
	out := make([]string, 0, len(s.files))
	for _, f := range s.files {
		out = append(out, f.path())
	}
	return out
}
