package machine

import "syscall"

// Binary sysfs attributes (struct bin_attribute): files read and written at their position through
// the attribute's own read(filp, kobj, attr, buf, off, count) and write, a page at most per call
// (kernfs's buffer), kept inside the attribute's size when it has one: a read at or past the size
// is the end of the file, a write there EFBIG (sysfs_kf_bin_read, sysfs_kf_bin_write). A missing
// method is EIO. The methods get the open file's struct file (kernfs's of->file) as filp.

func init() {
	register("sysfs_create_bin_file", hSysfsCreateBinFile) // createFile in vfs_kobj.go
	register("sysfs_remove_bin_file", hSysfsRemoveFile)    // the same file, recorded the same way
}

// openBinFile opens a binary attribute: a struct file for the methods, and reads and writes at
// the file position.
func (m *Machine) openBinFile(path string, flags int, kf *kobjFile) (*File, error) {
	f, err := m.newFile(path, flags, 0, sIFREG|uint64(kf.mode), false)
	if err != nil {
		return nil, err
	}
	f.served = &servedFile{
		readAt:  func(off int64, n int) ([]byte, error) { return f.binRead(kf, off, n) },
		writeAt: func(off int64, b []byte) (int, error) { return f.binWrite(kf, off, b) },
	}
	return f, nil
}

// binLimit is how much of a request at off the attribute's size leaves (at most a page); past the
// size, atEnd.
func (m *Machine) binLimit(battr uint64, off int64, n int) (limit uint64, atEnd bool) {
	limit = uint64(min(max(n, 0), pageSize))
	if size := m.field("bin_attribute", "size", battr); size != 0 {
		if off < 0 || uint64(off) >= size {
			return 0, true
		}
		limit = min(limit, size-uint64(off))
	}
	return limit, false
}

// binRead is sysfs_kf_bin_read: up to n bytes at off, nothing at the end.
func (f *File) binRead(kf *kobjFile, off int64, n int) ([]byte, error) {
	m := f.m
	if !m.live(kf) {
		return nil, syscall.ENODEV
	}
	count, atEnd := m.binLimit(kf.attr, off, n)
	if atEnd || count == 0 {
		return nil, nil
	}
	read := m.field("bin_attribute", "read", kf.attr)
	if read == 0 {
		return nil, syscall.EIO
	}
	page, err := m.mem.AllocPages(0, true)
	if err != nil {
		return nil, syscall.ENOMEM
	}
	defer func() { _ = m.mem.FreePages(page, 0) }()
	ret, err := f.call(read, f.file, kf.dir.kobj, kf.attr, page, uint64(off), count)
	if err != nil {
		return nil, err
	}
	got, err := ssize(ret)
	if err != nil || got == 0 {
		return nil, err
	}
	return m.Read(page, min(uint64(got), count))
}

// binWrite is sysfs_kf_bin_write: b (a page at most, NUL-terminated in kernel memory) at off.
func (f *File) binWrite(kf *kobjFile, off int64, b []byte) (int, error) {
	m := f.m
	if !m.live(kf) {
		return 0, syscall.ENODEV
	}
	count, atEnd := m.binLimit(kf.attr, off, len(b))
	if atEnd {
		return 0, syscall.EFBIG
	}
	if count == 0 {
		return 0, nil
	}
	write := m.field("bin_attribute", "write", kf.attr)
	if write == 0 {
		return 0, syscall.EIO
	}
	buf, err := m.kmallocBytes(append(append([]byte(nil), b[:count]...), 0), kemuCaller)
	if err != nil || buf == 0 {
		return 0, syscall.ENOMEM
	}
	defer func() { _ = m.kfree(buf, kemuCaller) }()
	ret, err := f.call(write, f.file, kf.dir.kobj, kf.attr, buf, uint64(off), count)
	if err != nil {
		return 0, err
	}
	n, err := ssize(ret)
	return int(n), err
}
