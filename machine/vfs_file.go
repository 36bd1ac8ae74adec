package machine

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"syscall"

	"kemu/loader"
)

// Open files of the user process. Open builds struct file, inode and dentry in guest memory with
// the profile's BTF layouts and runs what the kernel's open path runs (chrdev_open, misc_open,
// proc_reg_open, debugfs's proxy open); each operation then calls the module's method with a user
// buffer, as the read/write/ioctl/poll system calls do. Errors are syscall.Errno; an oops inside
// the module's method is in the kernel log and the operation fails with EFAULT wrapping ErrKilled.

// File is a file the user process has open.
type File struct {
	m     *Machine
	path  string
	flags int

	file, inode, dentry uint64 // guest objects
	inodeBase           uint64 // what was allocated for the inode (a proc_inode for /proc files)
	fops                uint64 // f_op: file_operations, or proc_ops for /proc entries
	entry               *fsEntry
	tree                *fsTree          // the filesystem of entry
	owners              []*loader.Module // module references open took: cdev->owner, fops->owner

	served *servedFile // content kemu renders itself (kernel /proc files, debugfs values)
	closed bool
	waits  []uint64 // wait queue heads ->poll registered (poll_wait)
}

// open(2) flags and file modes the open path sets.
const (
	oAccMode    = 3
	oWronly     = 1
	oRdwr       = 2
	fmodeRead   = 0x1
	fmodeWrite  = 0x2
	fmodeLseek  = 0x4
	fmodePread  = 0x8
	fmodePwrite = 0x10
	fmodeCanRd  = 0x20000
	fmodeCanWr  = 0x40000
	sIFCHR      = 0o020000
	sIFREG      = 0o100000
)

// Method offsets come from BTF: file_operations for devices and debugfs, proc_ops for /proc.
type method struct{ fops, procOps string }

var (
	mOpen    = method{"open", "proc_open"}
	mRead    = method{"read", "proc_read"}
	mReadIt  = method{"read_iter", "proc_read_iter"}
	mWrite   = method{"write", "proc_write"}
	mWriteIt = method{"write_iter", ""} // proc_ops has no write_iter
	mIoctl   = method{"unlocked_ioctl", "proc_ioctl"}
	mPoll    = method{"poll", "proc_poll"}
	mRelease = method{"release", "proc_release"}
)

// Open opens path as the user process's open(2) would: /dev/NAME, /proc/PATH,
// /sys/kernel/debug/PATH, /sys/class/CLASS/DEVICE/ATTRIBUTE, /sys/.../ATTRIBUTE of a kobject.
func (m *Machine) Open(path string, flags int) (*File, error) {
	if m.cpu == nil {
		return nil, fmt.Errorf("open %s: machine closed: %w", path, syscall.EBADF)
	}
	if m.dead {
		return nil, fmt.Errorf("open %s: %w", path, errMachineHalted)
	}
	v := m.files()
	if render, ok := kernelProcFiles[path]; ok {
		text := render(m)
		return &File{m: m, path: path, flags: flags, served: &servedFile{
			render: func() ([]byte, error) { return []byte(text), nil },
			store:  func([]byte) (int, error) { return 0, syscall.EIO }, // no proc_write: pde_write's -EIO
		}}, nil
	}
	switch {
	case strings.HasPrefix(path, devRoot):
		dev, ok := v.node(strings.TrimPrefix(path, devRoot))
		if !ok {
			return nil, syscall.ENOENT
		}
		return m.openChrdev(path, flags, dev)
	case strings.HasPrefix(path, procRoot):
		return m.openEntry(path, flags, &v.proc, strings.TrimPrefix(path, procRoot))
	case strings.HasPrefix(path, debugfsRoot):
		return m.openEntry(path, flags, &v.debug, strings.TrimPrefix(path, debugfsRoot))
	case strings.HasPrefix(path, sysfsRoot):
		if f, err := m.openAttr(path, flags); err != syscall.ENOENT {
			return f, err
		}
		return m.openKobjFile(path, flags)
	}
	return nil, syscall.ENOENT
}

func (m *Machine) openEntry(path string, flags int, tree *fsTree, rel string) (*File, error) {
	e := tree.lookup(rel)
	switch {
	case e == nil:
		return nil, syscall.ENOENT
	case e.kind == entryDir:
		return nil, syscall.EISDIR
	case e.kind == debugValue:
		return m.openValue(path, flags, e), nil
	case e.kind == debugBlob:
		return m.openBlob(path, flags, e), nil
	case e.kind == debugFops:
		return m.openDebugfs(path, flags, tree, e)
	}
	return m.openProc(path, flags, tree, e)
}

// openChrdev is chrdev_open, and misc_open for major 10: find the file operations, pin their
// owner, install them as f_op and call ->open.
func (m *Machine) openChrdev(path string, flags int, dev uint32) (*File, error) {
	v := m.files()
	var fops, private, cdev uint64
	if devMajor(dev) == miscMajor {
		e, ok := v.miscFor(devMinor(dev))
		if !ok {
			return nil, syscall.ENODEV // misc_open finds no such minor
		}
		fops = m.field("miscdevice", "fops", e.addr)
		private = e.addr // misc_open: the driver finds its miscdevice in private_data
	} else {
		c, ok := v.cdevFor(dev)
		if !ok {
			return nil, syscall.ENXIO
		}
		fops, cdev = c.fops, c.addr
		if fops == 0 {
			fops = m.field("cdev", "ops", c.addr)
		}
	}
	f, err := m.newFile(path, flags, fops, sIFCHR|0o666, false)
	if err != nil {
		return nil, err
	}
	m.setField("inode", "i_rdev", f.inode, 4, uint64(dev))
	m.setField("inode", "i_cdev", f.inode, 8, cdev)
	m.setField("file", "private_data", f.file, 8, private)
	// chrdev_open holds the cdev (cdev_get: its owner) and the operations (fops_get) while open.
	owners := []uint64{m.field("file_operations", "owner", fops)}
	if cdev != 0 {
		owners = append(owners, m.field("cdev", "owner", cdev))
	}
	if err := f.pinOwners(owners...); err != nil {
		return nil, err
	}
	return f, f.callOpen()
}

// openProc is proc_reg_open: the inode is a proc_inode pointing at the entry (pde_data reads
// PDE(inode)->data), and the entry's open runs.
func (m *Machine) openProc(path string, flags int, tree *fsTree, e *fsEntry) (*File, error) {
	fops := uint64(0)
	if e.kind == procOps {
		fops = e.ops
	}
	f, err := m.newFile(path, flags, fops, sIFREG|0o444, true)
	if err != nil {
		return nil, err
	}
	f.entry, f.tree = e, tree
	m.setField("proc_inode", "pde", f.inodeBase, 8, e.addr)
	var errno int64
	switch e.kind {
	case procOps:
		err = f.callOpen()
	case procSingle:
		errno, err = m.singleOpen(f.file, e.ops, e.data)
	case procSeq:
		errno, err = m.seqOpenPrivate(f.file, e.ops, e.stateSize)
	}
	if err == nil && errno < 0 {
		err = syscall.Errno(-errno)
		f.free()
	}
	if err != nil {
		return nil, err
	}
	e.open = append(e.open, f)
	return f, nil
}

// openDebugfs is debugfs's proxy open: inode->i_private is the data given at creation, the real
// file operations' owner is pinned, their open runs.
func (m *Machine) openDebugfs(path string, flags int, tree *fsTree, e *fsEntry) (*File, error) {
	f, err := m.newFile(path, flags, e.ops, sIFREG|0o600, false)
	if err != nil {
		return nil, err
	}
	f.entry, f.tree = e, tree
	m.setField("inode", "i_private", f.inode, 8, e.data)
	if err := f.pinOwners(m.field("file_operations", "owner", e.ops)); err != nil {
		return nil, err
	}
	return f, f.callOpen()
}

// newFile allocates struct file with its inode (inside a proc_inode for /proc) and dentry.
func (m *Machine) newFile(path string, flags int, fops uint64, mode uint64, procInode bool) (*File, error) {
	f := &File{m: m, path: path, flags: flags, fops: fops}
	var err error
	alloc := func(name string) uint64 {
		if err != nil {
			return 0
		}
		size, ok := m.structSize(name)
		if !ok {
			err = fmt.Errorf("no layout of struct %s", name)
			return 0
		}
		var p uint64
		p, err = m.kernel.kzalloc(size)
		return p
	}
	f.file, f.dentry = alloc("file"), alloc("dentry")
	if procInode {
		f.inodeBase = alloc("proc_inode")
		f.inode = f.inodeBase + m.offset("proc_inode", "vfs_inode")
	} else {
		f.inodeBase = alloc("inode")
		f.inode = f.inodeBase
	}
	name, nerr := m.kmallocBytes(append([]byte(path[strings.LastIndex(path, "/")+1:]), 0), kemuCaller)
	if err == nil && (nerr != nil || name == 0) {
		err = errors.New("no memory for the name")
	}
	if err != nil {
		f.free()
		return nil, fmt.Errorf("open %s: %v: %w", path, err, syscall.ENOMEM)
	}
	fmode := uint64(fmodeLseek | fmodePread | fmodePwrite)
	switch flags & oAccMode {
	case 0:
		fmode |= fmodeRead | fmodeCanRd
	case oWronly:
		fmode |= fmodeWrite | fmodeCanWr
	case oRdwr:
		fmode |= fmodeRead | fmodeWrite | fmodeCanRd | fmodeCanWr
	}
	m.setField("file", "f_op", f.file, 8, fops)
	m.setField("file", "f_flags", f.file, 4, uint64(uint32(flags)))
	m.setField("file", "f_mode", f.file, 4, fmode)
	m.setField("file", "f_iocb_flags", f.file, 4, iocbFlags(flags))
	m.setField("file", "f_inode", f.file, 8, f.inode)
	m.setField("file", "f_path.dentry", f.file, 8, f.dentry)
	m.setField("dentry", "d_inode", f.dentry, 8, f.inode)
	m.setField("dentry", "d_name.name", f.dentry, 8, name)
	_ = m.WriteAt([]byte{byte(mode), byte(mode >> 8)}, f.inode+m.offset("inode", "i_mode"))
	return f, nil
}

// kemuCaller labels the kernel objects the VFS allocates.
var kemuCaller = kernelCaller("vfs")

// free releases the guest objects and module references of a file that is no longer open.
func (f *File) free() {
	m := f.m
	if name := m.field("dentry", "d_name.name", f.dentry); name != 0 {
		_ = m.kfree(name, kemuCaller)
	}
	for _, p := range []uint64{f.file, f.dentry, f.inodeBase} {
		if p != 0 {
			_ = m.kfree(p, kemuCaller)
		}
	}
	f.file, f.dentry, f.inode, f.inodeBase = 0, 0, 0, 0
	for _, mod := range f.owners {
		m.registry.Put(mod)
	}
	f.owners = nil
}

// pinOwners is try_module_get on each owner for the file's lifetime; a module being removed
// cannot be opened (ENXIO, and the file is freed).
func (f *File) pinOwners(owners ...uint64) error {
	for _, owner := range owners {
		if owner == 0 {
			continue
		}
		for _, mod := range f.m.registry.Modules() {
			if mod.ThisModule != owner {
				continue
			}
			if !f.m.registry.Get(mod) {
				f.free()
				return syscall.ENXIO
			}
			f.owners = append(f.owners, mod)
		}
	}
	return nil
}

// method is the address of a file method, 0 if the module left it NULL.
func (f *File) method(mt method) uint64 {
	if f.entry != nil && f.entry.kind == procOps {
		return f.m.field("proc_ops", mt.procOps, f.fops)
	}
	return f.m.field("file_operations", mt.fops, f.fops)
}

// isProc says the file is a /proc entry's, whose missing methods fail with EIO (pde_read, ...).
func (f *File) isProc() bool { return f.entry != nil && f.tree == &f.m.files().proc }

// callOpen runs ->open(inode, file); a failure undoes the open.
func (f *File) callOpen() error {
	fn := f.method(mOpen)
	if fn == 0 {
		return nil
	}
	ret, err := f.call(fn, f.inode, f.file)
	if err == nil && int32(ret) < 0 {
		err = syscall.Errno(-int32(ret))
	}
	if err != nil {
		f.free()
		return err
	}
	return nil
}

// call runs a module method as the user process.
func (f *File) call(fn uint64, args ...uint64) (uint64, error) {
	m := f.m
	var ret uint64
	err := m.asUser(func() error {
		var err error
		ret, err = m.Call(fn, args...)
		return err
	})
	if err != nil {
		if errors.Is(err, errTaskDied) || errors.Is(err, errMachineHalted) {
			return 0, fmt.Errorf("%s: %w: %w", f.path, ErrKilled, syscall.EFAULT)
		}
		return 0, fmt.Errorf("%s: %w", f.path, err)
	}
	return ret, nil
}

// usable checks the file may still be used: open, and its /proc or debugfs entry not removed
// (such files then fail with EIO, as proc_reg_* and debugfs's proxy do).
func (f *File) usable() error {
	if f.closed || f.m.cpu == nil { // closed, or the machine itself was closed
		return syscall.EBADF
	}
	if f.entry != nil && f.tree.byAddr(f.entry.addr) != f.entry {
		return syscall.EIO
	}
	return nil
}

// ssize turns a method's ssize_t/long return into a count or an errno. The restart errnos a
// method returns when a signal interrupted its sleep (ERESTARTSYS and friends, 512-516) never reach
// user space: the signal's delivery ends the system call with EINTR.
func ssize(ret uint64) (int64, error) {
	r := int64(ret)
	switch {
	case r >= -errRestartMax && r <= -errRestartMin:
		return 0, syscall.EINTR
	case r < 0 && r >= -maxErrno:
		return 0, syscall.Errno(-r)
	}
	return r, nil
}

// The kernel-internal restart errnos: ERESTARTSYS (512) to ERESTART_RESTARTBLOCK (516).
const (
	errRestartMin = 512
	errRestartMax = 516
)

// missing is what calling an absent read or write method gives: EIO for /proc files (pde_read,
// pde_write), EINVAL elsewhere (vfs_read without FMODE_CAN_READ).
func (f *File) missing() error {
	if f.isProc() {
		return syscall.EIO
	}
	return syscall.EINVAL
}

// Read reads up to n bytes at the file position: ->read with a user buffer. The end of the file is
// (nil, io.EOF).
func (f *File) Read(n int) ([]byte, error) {
	if err := f.usable(); err != nil {
		return nil, err
	}
	if f.flags&oAccMode == oWronly {
		return nil, syscall.EBADF
	}
	if f.served != nil {
		return f.served.read(n)
	}
	fn, readIter := f.method(mRead), f.method(mReadIt)
	seqRead := f.m.kernelFunc("seq_read")
	switch {
	case f.entry != nil && (f.entry.kind == procSingle || f.entry.kind == procSeq):
		fn = seqRead
	case fn == 0 && readIter != 0 && readIter == f.m.kernelFunc("seq_read_iter"):
		fn = seqRead // the same records through the read(2) form of seq_file
	case fn == 0 && readIter != 0:
		return f.readIter(readIter, n) // new_sync_read (vfs_iter.go)
	case fn == 0:
		return nil, f.missing()
	}
	n = min(max(n, 0), maxUserBuffer)
	buf, err := f.m.mapUserBuffer(uint64(n), nil)
	if err != nil {
		return nil, err
	}
	defer f.m.unmapUserBuffer(buf)
	ret, err := f.call(fn, f.file, buf.addr, uint64(n), f.file+f.m.offset("file", "f_pos"))
	if err != nil {
		return nil, err
	}
	got, err := ssize(ret)
	if err != nil {
		return nil, err
	}
	if got == 0 {
		return nil, io.EOF
	}
	return f.m.Read(buf.addr, uint64(min(got, int64(n))))
}

// Write writes b at the file position: ->write with a user buffer holding b. It returns what the
// driver accepted.
func (f *File) Write(b []byte) (int, error) {
	if err := f.usable(); err != nil {
		return 0, err
	}
	if f.flags&oAccMode == 0 {
		return 0, syscall.EBADF
	}
	if f.served != nil {
		return f.served.write(b)
	}
	if len(b) > maxUserBuffer {
		b = b[:maxUserBuffer] // a short write, as for any write(2)
	}
	fn := f.method(mWrite)
	if writeIter := f.method(mWriteIt); fn == 0 && writeIter != 0 {
		return f.writeIter(writeIter, b) // new_sync_write (vfs_iter.go)
	}
	if fn == 0 {
		return 0, f.missing()
	}
	buf, err := f.m.mapUserBuffer(uint64(len(b)), b)
	if err != nil {
		return 0, err
	}
	defer f.m.unmapUserBuffer(buf)
	ret, err := f.call(fn, f.file, buf.addr, uint64(len(b)), f.file+f.m.offset("file", "f_pos"))
	if err != nil {
		return 0, err
	}
	n, err := ssize(ret)
	return int(n), err
}

// Ioctl is ioctl(fd, cmd, arg) with arg passed as is: ->unlocked_ioctl.
func (f *File) Ioctl(cmd uint64, arg uint64) (int64, error) {
	if err := f.usable(); err != nil {
		return 0, err
	}
	fn := uint64(0)
	if f.served == nil {
		fn = f.method(mIoctl)
	}
	if fn == 0 {
		return 0, syscall.ENOTTY
	}
	ret, err := f.call(fn, f.file, uint64(uint32(cmd)), arg)
	if err != nil {
		return 0, err
	}
	return ssize(ret)
}

// IoctlBuf is ioctl(fd, cmd, buf) with buf a user buffer holding in; it returns the buffer as the
// driver left it.
func (f *File) IoctlBuf(cmd uint64, in []byte) (int64, []byte, error) {
	buf, err := f.m.mapUserBuffer(uint64(len(in)), in)
	if err != nil {
		return 0, nil, err
	}
	defer f.m.unmapUserBuffer(buf)
	ret, err := f.Ioctl(cmd, buf.addr)
	if err != nil {
		return ret, nil, err
	}
	out, err := f.m.Read(buf.addr, uint64(len(in)))
	return ret, out, err
}

// Close is the last close: ->release(inode, file), then the module references are dropped and the
// guest objects are freed. Closing twice is EBADF.
func (f *File) Close() error {
	if f.closed {
		return syscall.EBADF
	}
	f.closed = true
	if f.m.cpu == nil {
		return nil // no machine left to run the release on
	}
	if f.served != nil {
		if f.file != 0 {
			f.free() // the struct file a served file hands to module code (sysfs binary attributes)
		}
		return nil // nothing to release
	}
	var err error
	if f.isProc() {
		err = f.m.releaseProc(f)
	} else if fn := f.method(mRelease); fn != 0 {
		_, err = f.call(fn, f.inode, f.file)
	}
	f.free()
	return err
}

// releaseProc is the release of a /proc file: the entry's release runs once, either here or when
// the entry is removed while the file is open (proc_entry_rundown).
func (m *Machine) releaseProc(f *File) error {
	e := f.entry
	idx := -1
	for i, o := range e.open {
		if o == f {
			idx = i
		}
	}
	if idx < 0 {
		return nil // already released when its entry went away
	}
	e.open = append(e.open[:idx:idx], e.open[idx+1:]...)
	switch e.kind {
	case procOps:
		if fn := f.method(mRelease); fn != 0 {
			_, err := f.call(fn, f.inode, f.file)
			return err
		}
	case procSingle:
		return m.seqRelease(f.file, true)
	case procSeq:
		return m.seqReleasePrivate(f.file)
	}
	return nil
}

// servedFile is a file whose content kemu renders itself and whose writes it parses, as the
// kernel's own seq_file and simple_attr files do: the content is rendered at the first read from
// the start and read sequentially from it.
type servedFile struct {
	render func() ([]byte, error)
	store  func([]byte) (int, error)
	text   []byte
	off    int

	// A file read and written at its position instead (sysfs binary attributes): readAt returns
	// up to n bytes at off, nothing at the end; writeAt stores b at off and returns how many bytes
	// it took. Either may be nil when the other is set: reading or writing it is then EIO.
	readAt  func(off int64, n int) ([]byte, error)
	writeAt func(off int64, b []byte) (int, error)
}

// positional says the file is read and written at its position (readAt, writeAt).
func (s *servedFile) positional() bool { return s.readAt != nil || s.writeAt != nil }

func (s *servedFile) read(n int) ([]byte, error) {
	if s.positional() {
		if s.readAt == nil {
			return nil, syscall.EIO
		}
		b, err := s.readAt(int64(s.off), max(n, 0))
		if err != nil {
			return nil, err
		}
		if len(b) == 0 {
			return nil, io.EOF
		}
		s.off += len(b)
		return b, nil
	}
	if s.off == 0 || s.text == nil { // from the start (again): rendered afresh, as a seq_file restarts
		text, err := s.render()
		if err != nil {
			return nil, err
		}
		s.text = text
	}
	if s.off >= len(s.text) {
		return nil, io.EOF
	}
	end := min(s.off+max(n, 0), len(s.text))
	b := s.text[s.off:end]
	s.off = end
	return b, nil
}

func (s *servedFile) write(b []byte) (int, error) {
	if !s.positional() {
		return s.store(b)
	}
	if s.writeAt == nil {
		return 0, syscall.EIO
	}
	n, err := s.writeAt(int64(s.off), b)
	if err == nil && n > 0 {
		s.off += n
	}
	return n, err
}

// field reads a pointer-sized field of a guest struct; 0 when the layout or memory is unknown.
func (m *Machine) field(structName, path string, addr uint64) uint64 {
	off, ok := m.fieldOffset(structName, path)
	if !ok || addr == 0 {
		return 0
	}
	v, err := m.ReadU64(addr + off)
	if err != nil {
		return 0
	}
	return v
}

// offset is offsetof(struct, path), 0 when unknown.
func (m *Machine) offset(structName, path string) uint64 {
	off, _ := m.fieldOffset(structName, path)
	return off
}

// kernelFunc is the address of a kernel function, 0 if the profile lacks it.
func (m *Machine) kernelFunc(name string) uint64 {
	if s, ok := m.prof.Lookup(name); ok {
		return s.Addr
	}
	return 0
}
