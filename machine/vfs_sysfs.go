package machine

import (
	"errors"
	"syscall"
)

// Device attributes in sysfs: device_create_file(dev, attr) on a device made by device_create in
// a class made by class_create shows /sys/class/<class>/<device>/<attribute>. A read calls the
// attribute's show(dev, attr, buf) with a page-sized kernel buffer and serves what it wrote
// (dev_attr_show, sysfs_kf_seq_show); a write copies the bytes into a NUL-terminated kernel buffer
// and calls store(dev, attr, buf, count) (kernfs_fop_write_iter, dev_attr_store). A missing show
// or store is EIO, as dev_attr_show and dev_attr_store return.

func init() {
	register("device_create_file", hDeviceCreateFile)
	register("device_remove_file", hDeviceRemoveFile)
}

// sysfsRoot is where device classes are listed.
const sysfsClassRoot = "/sys/class/"

// sysDevice is a device device_create made, as sysfs names it.
type sysDevice struct {
	addr  uint64 // struct device
	name  string
	class string
	dev   uint32
}

// sysAttr is a device attribute file.
type sysAttr struct {
	device *sysDevice
	attr   uint64 // struct device_attribute
	name   string
}

func (a sysAttr) path() string {
	return sysfsClassRoot + a.device.class + "/" + a.device.name + "/" + a.name
}

// __class_create(owner, name, key): the class object, with its name for sysfs paths.
func hClassCreateVFS(m *Machine, t *Trap) (uint64, error) {
	class, err := hNewObject("class")(m, t)
	if err != nil || isErrPtr(class) || class == 0 {
		return class, err
	}
	m.setField("class", "name", class, 8, t.Arg(1))
	return class, nil
}

// className is the name of the class object at addr (class->name).
func (m *Machine) className(class uint64) string {
	name, _ := m.ReadCString(m.field("class", "name", class), 64)
	return name
}

// device_create_file(dev, attr).
func hDeviceCreateFile(m *Machine, t *Trap) (uint64, error) {
	v := m.files()
	d := v.deviceByAddr(t.Arg(0))
	if d == nil {
		return negErrno(syscall.EINVAL), nil // not a device kemu made: no sysfs directory for it
	}
	name, err := m.ReadCString(m.field("device_attribute", "attr.name", t.Arg(1)), 256)
	if err != nil {
		return 0, err
	}
	a := sysAttr{device: d, attr: t.Arg(1), name: name}
	for _, x := range v.attrs {
		if x.path() == a.path() {
			m.logf(levelErr, "sysfs: cannot create duplicate filename '/devices/virtual/%s/%s/%s'", d.class, d.name, name)
			return negErrno(syscall.EEXIST), nil
		}
	}
	v.attrs = append(v.attrs, a)
	return 0, nil
}

// device_remove_file(dev, attr).
func hDeviceRemoveFile(m *Machine, t *Trap) (uint64, error) {
	v := m.files()
	v.attrs = deleteWhere(v.attrs, func(a sysAttr) bool { return a.device.addr == t.Arg(0) && a.attr == t.Arg(1) })
	return 0, nil
}

func (v *vfs) deviceByAddr(addr uint64) *sysDevice {
	for _, d := range v.devices {
		if d.addr == addr {
			return d
		}
	}
	return nil
}

// removeDevice drops the device with dev_t dev, its attributes and the attribute groups made on
// its kobject (device_destroy).
func (m *Machine) removeDevice(dev uint32) error {
	v := m.files()
	gone := func(d *sysDevice) bool { return d.dev == dev }
	v.attrs = deleteWhere(v.attrs, func(a sysAttr) bool { return gone(a.device) })
	var errs []error
	for _, d := range v.devices {
		if gone(d) {
			m.removeKobjectDir(d.addr + m.offset("device", "kobj"))
			errs = append(errs, m.releaseObject(d.addr, kemuCaller))
		}
	}
	v.devices = deleteWhere(v.devices, gone)
	return errors.Join(errs...)
}

// openAttr opens a device attribute file.
func (m *Machine) openAttr(path string, flags int) (*File, error) {
	v := m.files()
	for i := range v.attrs {
		if a := v.attrs[i]; a.path() == path {
			f := &File{m: m, path: path, flags: flags}
			f.served = &servedFile{
				render: func() ([]byte, error) { return f.attrShow(a) },
				store:  func(b []byte) (int, error) { return f.attrStore(a, b) },
			}
			return f, nil
		}
	}
	return nil, syscall.ENOENT
}

// attrShow runs show(dev, attr, buf) into a fresh page.
func (f *File) attrShow(a sysAttr) ([]byte, error) {
	if f.m.files().deviceByAddr(a.device.addr) != a.device {
		return nil, syscall.ENODEV // the device went away while the file was open
	}
	return f.showPage(f.m.field("device_attribute", "show", a.attr), a.device.addr, a.attr)
}

// attrStore runs store(dev, attr, buf, count) over a NUL-terminated kernel copy of b.
func (f *File) attrStore(a sysAttr, b []byte) (int, error) {
	if f.m.files().deviceByAddr(a.device.addr) != a.device {
		return 0, syscall.ENODEV
	}
	return f.storeCopy(f.m.field("device_attribute", "store", a.attr), a.device.addr, a.attr, b)
}

// showPage is how sysfs reads an attribute: show(obj, attr, buf) with a page-sized kernel buffer,
// whose first bytes (as many as show returned, at most a page less the NUL) are the content. A
// missing show is EIO.
func (f *File) showPage(show, obj, attr uint64) ([]byte, error) {
	m := f.m
	if show == 0 {
		return nil, syscall.EIO
	}
	page, err := m.mem.AllocPages(0, true)
	if err != nil {
		return nil, syscall.ENOMEM
	}
	defer func() { _ = m.mem.FreePages(page, 0) }()
	ret, err := f.call(show, obj, attr, page)
	if err != nil {
		return nil, err
	}
	n, err := ssize(ret)
	if err != nil {
		return nil, err
	}
	return m.Read(page, uint64(min(n, pageSize-1)))
}

// storeCopy is how sysfs writes an attribute: store(obj, attr, buf, count) over a NUL-terminated
// kernel copy of at most a page of b. A missing store is EIO; an empty write calls nothing.
func (f *File) storeCopy(store, obj, attr uint64, b []byte) (int, error) {
	m := f.m
	if store == 0 {
		return 0, syscall.EIO
	}
	if len(b) == 0 {
		return 0, nil
	}
	b = b[:min(len(b), pageSize)]
	buf, err := m.kmallocBytes(append(append([]byte(nil), b...), 0), kemuCaller)
	if err != nil || buf == 0 {
		return 0, syscall.ENOMEM
	}
	defer func() { _ = m.kfree(buf, kemuCaller) }()
	ret, err := f.call(store, obj, attr, buf, uint64(len(b)))
	if err != nil {
		return 0, err
	}
	n, err := ssize(ret)
	return int(n), err
}
