package machine

import (
	"sort"
	"strings"
)

// The VFS side of devices and pseudo filesystems: what modules registered (character device
// regions and cdevs, misc devices, device nodes, proc and debugfs entries, device attributes) and
// the paths the user process opens through them. Registration handlers record here
// (vfs_register.go, vfs_debugfs.go, vfs_sysfs.go); Open (vfs_file.go) resolves paths the way the
// kernel does: /dev/NAME is the node devtmpfs made from device_create's name, whose dev_t finds the
// cdev (chrdev_open) or, for major 10, the misc device (misc_open); /proc/PATH is a proc_dir_entry,
// /sys/kernel/debug/PATH a debugfs file, /sys/class/CLASS/DEVICE/ATTR a device attribute, other
// /sys paths the attribute files of kobjects (vfs_kobj.go). The
// kernel's own /proc files are in procfs.go, seq_file in vfs_seq.go, lseek in vfs_llseek.go, the
// user process and its memory in uproc.go.

// vfs is the machine's registry of openable things and the user process using them.
type vfs struct {
	regions []chrdevRegion
	cdevs   []cdevEntry
	misc    []*miscEntry // newest first, as misc_list
	nodes   []devNode
	proc    fsTree // /proc
	debug   fsTree // /sys/kernel/debug
	devices []*sysDevice
	attrs   []sysAttr // /sys/class/<class>/<device>/<attribute>
	sysfs   sysfsTree // kobject directories and attribute files (vfs_kobj.go)
	user    userProcess
	polling *File       // the file whose ->poll is running: __pollwait records its wait queues
	linking *pollWaiter // and links wait entries for this sleeping poll (its first ->poll call)
	waiter  *pollWaiter // the poll the user process is in, which pollwake triggers
	iter    *iterLayout // struct iov_iter's layout, once known (vfs_iter.go)
}

// files is the machine's vfs, created on first use.
func (m *Machine) files() *vfs {
	if m.vfs == nil {
		m.vfs = &vfs{
			user: userProcess{pid: userPID, comm: "cat", next: userBufferBase},
		}
	}
	return m.vfs
}

// dev_t as the kernel keeps it: 12 bits of major above 20 bits of minor.
func mkdev(major, minor uint32) uint32 { return major<<minorBits | minor }
func devMajor(dev uint32) uint32       { return dev >> minorBits }
func devMinor(dev uint32) uint32       { return dev & (1<<minorBits - 1) }

// miscMajor is MISC_MAJOR: every misc device is a minor of it.
const miscMajor = 10

// chrdevRegion is a range of device numbers a driver owns (register_chrdev_region and friends),
// what /proc/devices lists.
type chrdevRegion struct {
	major, baseminor, count uint32
	name                    string
}

// cdevEntry is a cdev_add()ed struct cdev: the guest object whose ops serve [dev, dev+count).
type cdevEntry struct {
	addr       uint64
	dev, count uint32
	fops       uint64 // for __register_chrdev, whose cdev the kernel allocates: its fops directly
}

// miscEntry is a misc_register()ed struct miscdevice.
type miscEntry struct {
	addr  uint64
	minor uint32
	name  string // misc->name, for /proc/misc
	node  string // the /dev name: misc->nodename, else misc->name
}

// devNode is a /dev entry devtmpfs would create for a device with a dev_t.
type devNode struct {
	name   string
	dev    uint32
	device uint64 // the struct device, for device_destroy
}

// entryKind is how the files of a /proc or debugfs entry are served.
type entryKind int

const (
	entryDir   entryKind = iota // proc_mkdir, debugfs_create_dir
	procOps                     // proc_create(_data): the module's proc_ops
	procSingle                  // proc_create_single_data: single_open over a show function
	procSeq                     // proc_create_seq_private: seq_open_private over seq_operations
	debugFops                   // debugfs_create_file: the module's file_operations
	debugValue                  // debugfs_create_u32 and friends: a value kemu renders and parses
	debugBlob                   // debugfs_create_blob: a read-only debugfs_blob_wrapper
)

// fsEntry is a node of a pseudo filesystem a module created: a proc_dir_entry or a debugfs dentry.
type fsEntry struct {
	addr      uint64 // the guest struct proc_dir_entry or dentry
	name      string
	parent    uint64 // parent's guest address, 0 for the filesystem's root
	kind      entryKind
	ops       uint64      // proc_ops, seq_operations, the show function or file_operations, by kind
	data      uint64      // pde->data, inode->i_private, or the value's address
	stateSize uint64      // procSeq: the private state seq_open_private allocates
	value     valueFormat // debugValue: the variable's type
	mode      uint64      // debugValue: the permission bits (read-only and write-only values)
	open      []*File     // /proc files open on the entry (released when it is removed)
}

// fsTree is the entries of one pseudo filesystem, in creation order.
type fsTree struct {
	entries []*fsEntry
}

func (t *fsTree) add(e *fsEntry) { t.entries = append(t.entries, e) }

// byAddr is the entry at a guest address.
func (t *fsTree) byAddr(addr uint64) *fsEntry {
	for _, e := range t.entries {
		if e.addr == addr {
			return e
		}
	}
	return nil
}

// path is the entry's path below the root ("driver/foo").
func (t *fsTree) path(e *fsEntry) string {
	parts := []string{e.name}
	for p := t.byAddr(e.parent); p != nil && len(parts) < 64; p = t.byAddr(p.parent) {
		parts = append([]string{p.name}, parts...)
	}
	return strings.Join(parts, "/")
}

// lookup finds the entry at rel below the root.
func (t *fsTree) lookup(rel string) *fsEntry {
	for _, e := range t.entries {
		if t.path(e) == rel {
			return e
		}
	}
	return nil
}

// subtree is e and every entry below it, children first (the order removal takes them down).
func (t *fsTree) subtree(e *fsEntry) []*fsEntry {
	var out []*fsEntry
	for _, c := range t.entries {
		if c.parent == e.addr && c != e {
			out = append(out, t.subtree(c)...)
		}
	}
	return append(out, e)
}

func (t *fsTree) remove(e *fsEntry) {
	t.entries = deleteWhere(t.entries, func(x *fsEntry) bool { return x == e })
}

// files is every non-directory entry's path below root.
func (t *fsTree) files(root string) []string {
	var out []string
	for _, e := range t.entries {
		if e.kind != entryDir {
			out = append(out, root+t.path(e))
		}
	}
	return out
}

func (v *vfs) addRegion(r chrdevRegion) { v.regions = append(v.regions, r) }

// regionTaken reports whether [dev, dev+count) overlaps a registered region of the same major.
func (v *vfs) regionTaken(dev, count uint32) bool {
	lo, hi := uint64(devMinor(dev)), uint64(devMinor(dev))+uint64(count)
	for _, r := range v.regions {
		if r.major == devMajor(dev) && lo < uint64(r.baseminor)+uint64(r.count) && uint64(r.baseminor) < hi {
			return true
		}
	}
	return false
}

// removeRegion drops the region starting at dev (unregister_chrdev_region).
func (v *vfs) removeRegion(dev uint32) {
	v.regions = deleteWhere(v.regions, func(r chrdevRegion) bool {
		return mkdev(r.major, r.baseminor) == dev
	})
}

func (v *vfs) addCdev(c cdevEntry) { v.cdevs = append(v.cdevs, c) }

func (v *vfs) removeCdev(addr uint64) {
	v.cdevs = deleteWhere(v.cdevs, func(c cdevEntry) bool { return c.addr == addr })
}

// cdevFor is the cdev serving dev (kobj_lookup over cdev_map), newest registration first.
func (v *vfs) cdevFor(dev uint32) (cdevEntry, bool) {
	for i := len(v.cdevs) - 1; i >= 0; i-- {
		c := v.cdevs[i]
		if dev >= c.dev && dev-c.dev < c.count {
			return c, true
		}
	}
	return cdevEntry{}, false
}

func (v *vfs) addMisc(e *miscEntry) { v.misc = append([]*miscEntry{e}, v.misc...) }

func (v *vfs) removeMisc(addr uint64) {
	v.misc = deleteWhere(v.misc, func(e *miscEntry) bool { return e.addr == addr })
}

func (v *vfs) miscFor(minor uint32) (*miscEntry, bool) {
	for _, e := range v.misc {
		if e.minor == minor {
			return e, true
		}
	}
	return nil, false
}

func (v *vfs) addNode(n devNode) {
	if n.dev != 0 && n.name != "" {
		v.nodes = append(v.nodes, n)
	}
}

func (v *vfs) removeNode(dev uint32) {
	v.nodes = deleteWhere(v.nodes, func(n devNode) bool { return n.dev == dev })
}

// node is the dev_t of /dev/name: device_create's nodes and the misc devices' (misc_register
// creates its device in the same way).
func (v *vfs) node(name string) (uint32, bool) {
	for i := len(v.nodes) - 1; i >= 0; i-- {
		if v.nodes[i].name == name {
			return v.nodes[i].dev, true
		}
	}
	for _, e := range v.misc {
		if e.node == name {
			return mkdev(miscMajor, e.minor), true
		}
	}
	return 0, false
}

// Where the pseudo filesystems are mounted.
const (
	devRoot     = "/dev/"
	procRoot    = "/proc/"
	debugfsRoot = "/sys/kernel/debug/"
)

// Paths is every path the user process can open, sorted: the device nodes, the modules' /proc,
// debugfs and sysfs attribute files (directories excluded) and the kernel's own /proc files.
func (m *Machine) Paths() []string {
	v := m.files()
	seen := map[string]bool{}
	for _, n := range v.nodes {
		seen[devRoot+n.name] = true
	}
	for _, e := range v.misc {
		seen[devRoot+e.node] = true
	}
	for _, p := range append(v.proc.files(procRoot), v.debug.files(debugfsRoot)...) {
		seen[p] = true
	}
	for _, a := range v.attrs {
		seen[a.path()] = true
	}
	for _, p := range v.sysfs.paths() {
		seen[p] = true
	}
	for path := range kernelProcFiles {
		seen[path] = true
	}
	out := make([]string, 0, len(seen))
	for p := range seen {
		out = append(out, p)
	}
	sort.Strings(out)
	return out
}

// deleteWhere returns s without the elements drop selects, keeping the order.
func deleteWhere[T any](s []T, drop func(T) bool) []T {
	out := s[:0]
	for _, x := range s {
		if !drop(x) {
			out = append(out, x)
		}
	}
	return out
}
