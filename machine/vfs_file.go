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
// proc_reg_open); each operation then calls the module's method with a user buffer, as the
// read/write/ioctl/poll system calls do. Errors are syscall.Errno; an oops inside the module's
// method is in the kernel log and the operation fails with EFAULT wrapping ErrKilled.

// File is a file the user process has open.
type File struct {
	m     *Machine
	path  string
	flags int

	file, inode, dentry uint64 // guest objects
	inodeBase           uint64 // what was allocated for the inode (a proc_inode for /proc files)
	fops                uint64 // f_op: file_operations, or proc_ops for /proc entries
	proc                *procEntry
	owners              []*loader.Module // module references open took: cdev->owner, fops->owner

	text   []byte // a kernel-served /proc file's content, rendered at open
	off    int
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
	sIFDIR      = 0o040000
)

// Method offsets come from BTF: file_operations for devices, proc_ops for /proc entries.
type method struct{ fops, procOps string }

var (
	mOpen    = method{"open", "proc_open"}
	mRead    = method{"read", "proc_read"}
	mWrite   = method{"write", "proc_write"}
	mIoctl   = method{"unlocked_ioctl", "proc_ioctl"}
	mPoll    = method{"poll", "proc_poll"}
	mRelease = method{"release", "proc_release"}
)

// Open opens path as the user process's open(2) would: /dev/NAME, /proc/PATH.
func (m *Machine) Open(path string, flags int) (*File, error) {
	if m.dead {
		return nil, fmt.Errorf("open %s: %w", path, errMachineHalted)
	}
	v := m.files()
	if render, ok := kernelProcFiles[path]; ok {
		if flags&oAccMode != 0 {
			return nil, syscall.EACCES
		}
		return &File{m: m, path: path, flags: flags, text: []byte(render(m))}, nil
	}
	switch {
	case strings.HasPrefix(path, "/dev/"):
		dev, ok := v.node(strings.TrimPrefix(path, "/dev/"))
		if !ok {
			return nil, syscall.ENOENT
		}
		return m.openChrdev(path, flags, dev)
	case strings.HasPrefix(path, "/proc/"):
		e := v.procLookup(strings.TrimPrefix(path, "/proc/"))
		if e == nil {
			return nil, syscall.ENOENT
		}
		if e.kind == procDir {
			return nil, syscall.EISDIR
		}
		return m.openProc(path, flags, e)
	}
	return nil, syscall.ENOENT
}

// openChrdev is chrdev_open, and misc_open for major 10: find the file operations, pin their
// owner, install them as f_op and call ->open.
func (m *Machine) openChrdev(path string, flags int, dev uint32) (*File, error) {
	v := m.files()
	var fops, private uint64
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
		fops = c.fops
		if fops == 0 {
			fops = m.field("cdev", "ops", c.addr)
		}
	}
	f, err := m.newFile(path, flags, fops, sIFCHR|0o666)
	if err != nil {
		return nil, err
	}
	m.setField("inode", "i_rdev", f.inode, 4, uint64(dev))
	if c, ok := v.cdevFor(dev); ok && devMajor(dev) != miscMajor {
		m.setField("inode", "i_cdev", f.inode, 8, c.addr)
	}
	m.setField("file", "private_data", f.file, 8, private)
	// chrdev_open holds the cdev (cdev_get: its owner) and the operations (fops_get) while open.
	owners := []uint64{m.field("file_operations", "owner", fops)}
	if c, ok := v.cdevFor(dev); ok && devMajor(dev) != miscMajor && c.addr != 0 {
		owners = append(owners, m.field("cdev", "owner", c.addr))
	}
	for _, owner := range owners {
		if err := f.pinOwner(owner); err != nil {
			f.free()
			return nil, err
		}
	}
	if err := f.callOpen(); err != nil {
		return nil, err
	}
	return f, nil
}

// openProc is proc_reg_open: the inode is a proc_inode pointing at the entry (pde_data reads
// PDE(inode)->data), and the entry's open runs.
func (m *Machine) openProc(path string, flags int, e *procEntry) (*File, error) {
	fops := uint64(0)
	if e.kind == procOps {
		fops = e.ops
	}
	f, err := m.newFile(path, flags, fops, sIFREG|0o444)
	if err != nil {
		return nil, err
	}
	f.proc = e
	var errno int64
	switch e.kind {
	case procOps:
		if err := f.callOpen(); err != nil {
			return nil, err
		}
	case procSingle:
		errno, err = m.singleOpen(f.file, e.ops, e.data)
	case procSeq:
		errno, err = m.seqOpenPrivate(f.file, e.ops, e.stateSize)
	}
	if err == nil && errno < 0 {
		err = syscall.Errno(-errno)
	}
	if err != nil {
		f.free()
		return nil, err
	}
	e.open = append(e.open, f)
	return f, nil
}

// newFile allocates struct file with its inode and dentry.
func (m *Machine) newFile(path string, flags int, fops uint64, mode uint64) (*File, error) {
	f := &File{m: m, path: path, flags: flags, fops: fops}
	var err error
	alloc := func(name string) uint64 {
		if err != nil {
			return 0
		}
		size, ok := m.structSize(name)
		if !ok {
			size = 1024
		}
		var p uint64
		p, err = m.kernel.kzalloc(size)
		return p
	}
	f.file, f.dentry = alloc("file"), alloc("dentry")
	if strings.HasPrefix(path, "/proc/") {
		f.inodeBase = alloc("proc_inode")
		off, _ := m.fieldOffset("proc_inode", "vfs_inode")
		f.inode = f.inodeBase + off
	} else {
		f.inodeBase = alloc("inode")
		f.inode = f.inodeBase
	}
	name, nerr := m.kmallocBytes(append([]byte(path[strings.LastIndex(path, "/")+1:]), 0), kemuCaller)
	if err != nil || nerr != nil {
		f.free()
		return nil, fmt.Errorf("open %s: %w", path, syscall.ENOMEM)
	}
	mode32 := uint64(fmodeLseek | fmodePread | fmodePwrite)
	switch flags & oAccMode {
	case 0:
		mode32 |= fmodeRead | fmodeCanRd
	case oWronly:
		mode32 |= fmodeWrite | fmodeCanWr
	case oRdwr:
		mode32 |= fmodeRead | fmodeWrite | fmodeCanRd | fmodeCanWr
	}
	m.setField("file", "f_op", f.file, 8, fops)
	m.setField("file", "f_flags", f.file, 4, uint64(uint32(flags)))
	m.setField("file", "f_mode", f.file, 4, mode32)
	m.setField("file", "f_inode", f.file, 8, f.inode)
	m.setField("file", "f_path.dentry", f.file, 8, f.dentry)
	m.setField("dentry", "d_inode", f.dentry, 8, f.inode)
	m.setField("dentry", "d_name.name", f.dentry, 8, name)
	if off, ok := m.fieldOffset("inode", "i_mode"); ok {
		var b [2]byte
		b[0], b[1] = byte(mode), byte(mode>>8)
		_ = m.WriteAt(b[:], f.inode+off)
	}
	if f.inodeBase != f.inode {
		m.setField("proc_inode", "pde", f.inodeBase, 8, 0)
	}
	return f, nil
}

// kemuCaller labels the kernel objects the VFS allocates.
var kemuCaller = kernelCaller("vfs")

// free releases the guest objects of a file that is no longer open.
func (f *File) free() {
	m := f.m
	if f.dentry != 0 {
		if name := m.field("dentry", "d_name.name", f.dentry); name != 0 {
			_ = m.kfree(name, kemuCaller)
		}
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

// pinOwner is try_module_get(owner) for the file's lifetime; a module being removed cannot be
// opened.
func (f *File) pinOwner(owner uint64) error {
	if owner == 0 {
		return nil
	}
	for _, mod := range f.m.registry.Modules() {
		if mod.ThisModule == owner {
			if !f.m.registry.Get(mod) {
				return syscall.ENXIO
			}
			f.owners = append(f.owners, mod)
		}
	}
	return nil
}

// method is the address of a file method, 0 if the module left it NULL.
func (f *File) method(mt method) uint64 {
	if f.fops == 0 {
		return 0
	}
	if f.proc != nil {
		return f.m.field("proc_ops", mt.procOps, f.fops)
	}
	return f.m.field("file_operations", mt.fops, f.fops)
}

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
	u := &m.files().user
	var ret uint64
	err := m.in(taskContext{pid: u.pid, comm: u.comm}, func() error {
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

// usable checks the file may still be used: open, and for /proc, its entry not removed (proc
// files of a removed entry fail with EIO, as proc_reg_* do).
func (f *File) usable() error {
	if f.closed {
		return syscall.EBADF
	}
	if f.proc != nil && f.m.files().procByAddr(f.proc.addr) != f.proc {
		return syscall.EIO
	}
	return nil
}

// ssize turns a method's ssize_t/long return into a count or an errno.
func ssize(ret uint64) (int64, error) {
	if r := int64(ret); r < 0 && r >= -maxErrno {
		return 0, syscall.Errno(-r)
	}
	return int64(ret), nil
}

// Read reads up to n bytes at the file position: ->read with a user buffer. The end of the file is
// (nil, io.EOF).
func (f *File) Read(n int) ([]byte, error) {
	if f.text != nil || (f.fops == 0 && f.proc == nil) {
		return f.readText(n)
	}
	if err := f.usable(); err != nil {
		return nil, err
	}
	if f.flags&oAccMode == oWronly {
		return nil, syscall.EBADF
	}
	fn := f.method(mRead)
	if f.proc != nil && f.proc.kind != procOps {
		fn = f.m.kernelFunc("seq_read")
	}
	if fn == 0 {
		return nil, syscall.EINVAL // no ->read; ->read_iter is not supported yet
	}
	n = min(max(n, 0), maxUserBuffer)
	buf, err := f.m.mapUserBuffer(uint64(n), nil)
	if err != nil {
		return nil, err
	}
	defer f.m.unmapUserBuffer(buf)
	pos := f.file + f.m.offset("file", "f_pos")
	ret, err := f.call(fn, f.file, buf.addr, uint64(n), pos)
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

func (f *File) readText(n int) ([]byte, error) {
	if f.closed {
		return nil, syscall.EBADF
	}
	if f.off >= len(f.text) {
		return nil, io.EOF
	}
	end := min(f.off+max(n, 0), len(f.text))
	b := f.text[f.off:end]
	f.off = end
	return b, nil
}

// Write writes b at the file position: ->write with a user buffer holding b. It returns what the
// driver accepted.
func (f *File) Write(b []byte) (int, error) {
	if f.text != nil || (f.fops == 0 && f.proc == nil) {
		return 0, syscall.EBADF
	}
	if err := f.usable(); err != nil {
		return 0, err
	}
	if f.flags&oAccMode == 0 {
		return 0, syscall.EBADF
	}
	fn := f.method(mWrite)
	if fn == 0 {
		return 0, syscall.EINVAL
	}
	if len(b) > maxUserBuffer {
		b = b[:maxUserBuffer] // a short write, as for any write(2)
	}
	buf, err := f.m.mapUserBuffer(uint64(len(b)), b)
	if err != nil {
		return 0, err
	}
	defer f.m.unmapUserBuffer(buf)
	pos := f.file + f.m.offset("file", "f_pos")
	ret, err := f.call(fn, f.file, buf.addr, uint64(len(b)), pos)
	if err != nil {
		return 0, err
	}
	n, err := ssize(ret)
	return int(n), err
}

// Ioctl is ioctl(fd, cmd, arg) with arg passed as is: ->unlocked_ioctl.
func (f *File) Ioctl(cmd uint64, arg uint64) (int64, error) {
	if f.text != nil || (f.fops == 0 && f.proc == nil) {
		return 0, syscall.ENOTTY
	}
	if err := f.usable(); err != nil {
		return 0, err
	}
	fn := f.method(mIoctl)
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

// defaultPollMask is DEFAULT_POLLMASK: a file without ->poll is always readable and writable.
const defaultPollMask = 0x0001 | 0x0004 | 0x0040 | 0x0100 // EPOLLIN|EPOLLOUT|EPOLLRDNORM|EPOLLWRNORM

// Poll is poll(2) on the file: ->poll(file, wait) with a poll table whose queue procedure records
// the wait queue heads the driver registers (Waits). It returns the event mask.
func (f *File) Poll() (uint32, error) {
	if f.text != nil || (f.fops == 0 && f.proc == nil) {
		return defaultPollMask, nil
	}
	if err := f.usable(); err != nil {
		return 0, err
	}
	fn := f.method(mPoll)
	if fn == 0 {
		return defaultPollMask, nil
	}
	m := f.m
	pt, err := m.kernel.kzalloc(16)
	if err != nil {
		return 0, syscall.ENOMEM
	}
	defer func() { _ = m.kfree(pt, kemuCaller) }()
	m.setField("poll_table_struct", "_qproc", pt, 8, m.kernelFunc("__pollwait"))
	m.setField("poll_table_struct", "_key", pt, 4, 0xffffffff)
	v := m.files()
	v.polling = f
	defer func() { v.polling = nil }()
	ret, err := f.call(fn, f.file, pt)
	return uint32(ret), err
}

// Waits is the wait queue heads the driver's ->poll registered on this file so far.
func (f *File) Waits() []uint64 { return append([]uint64(nil), f.waits...) }

// Close is the last close: ->release(inode, file), then the module reference is dropped and the
// guest objects are freed. Closing twice is EBADF.
func (f *File) Close() error {
	if f.closed {
		return syscall.EBADF
	}
	f.closed = true
	if f.text != nil || f.file == 0 {
		return nil
	}
	var err error
	if f.proc != nil {
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
	e := f.proc
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
