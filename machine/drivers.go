package machine

import (
	"bytes"
	"fmt"
	"slices"
	"syscall"
)

// Driver registration: the calls through which modules offer drivers to the buses (PCI, platform,
// I2C, USB, SPI, HID), create input and network devices, and register crypto algorithms,
// templates, filesystems, buses and classes. kemu's machine has no hardware, so as in a Linux 6.1
// kernel that finds no matching device, a driver registers and its probe never runs. What the
// kernel checks at registration (duplicate names, bad arguments) is checked with the kernel's
// errno, and every registration is recorded with its owner and match IDs: Registrations lists
// what is registered now, and an entry left after its module was removed is what would be a
// dangling pointer into freed module memory in a real kernel.
//
// A handler serves only a function the kernel image has: in Debian's 6.1 the USB and HID cores
// (usbcore.ko, hid.ko) are modules themselves, so there usb_register_driver and
// __hid_register_driver are their real code, loaded as dependencies, and these handlers serve
// kernels that build them in.

// Registration is one thing a module registered with a kernel subsystem and has not unregistered.
type Registration struct {
	Module string   `json:"module"` // the module whose code registered it ("" for kernel code)
	Kind   string   `json:"kind"`   // bus or subsystem: pci, platform, i2c, usb, spi, hid, input, net, crypto, fs, ...
	Name   string   `json:"name"`
	IDs    []string `json:"ids,omitempty"` // match table entries, in the table's order
	addr   uint64   // the registered kernel object, which unregistration names
	driver bool     // addr is a struct device_driver on a bus
}

// driverTable holds a machine's registrations and the subsystem objects the machine allocated for
// them (net devices, tty drivers, disks, ...).
type driverTable struct {
	regs      []Registration
	netdevs   map[uint64]*netdev // allocated net_devices by address
	ifindex   uint64             // the last interface index handed out (lo is 1)
	platforms map[uint64]bool    // platform_devices kemu allocated
	inputDevs map[uint64]bool    // input_devs kemu allocated
	// cpuhpStates are the CPU hotplug states modules set up, with their callbacks.
	cpuhpStates map[uint64]cpuhpState
	pernetIDs   uint64                // net_generic ids handed out
	idrs        map[uint64]idTable    // IDR and IDA entries by the struct idr/ida address
	idrNext     map[uint64]uint64     // where idr_alloc_cyclic continues, by idr
	ttys        map[uint64]*ttyDriver // tty_drivers the machine allocated
	mempools    map[uint64]*mempool   // mempool_t by address
	disks       map[uint64]disk       // gendisks the machine allocated
	extMinors   uint64                // BLOCK_EXT_MAJOR minors handed out
	bdis        map[uint64]bool       // backing_dev_infos the machine allocated
}

// netdev is what the machine allocated for one net_device.
type netdev struct {
	base   uint64   // what kmalloc returned (kmalloc's alignment puts the net_device right there)
	queues []uint64 // transmit queues and address storage, freed with the device
}

// drivers is the machine's registration table, made on first use.
func (m *Machine) drivers() *driverTable {
	if m.driverTable == nil {
		m.driverTable = &driverTable{netdevs: map[uint64]*netdev{}, ifindex: 1, platforms: map[uint64]bool{}}
	}
	return m.driverTable
}

// Registrations lists what modules have registered and not unregistered, oldest first.
func (m *Machine) Registrations() []Registration {
	regs := m.drivers().regs
	out := make([]Registration, len(regs))
	for i, r := range regs {
		out[i] = r
		out[i].IDs = slices.Clone(r.IDs)
	}
	return out
}

// record adds a registration made by the code that called t.
func (m *Machine) record(t *Trap, kind, name string, addr uint64, ids []string) {
	owner := ""
	if g := m.moduleAt(t.Return); g != nil {
		owner = g.name
	}
	d := m.drivers()
	d.regs = append(d.regs, Registration{Module: owner, Kind: kind, Name: name, IDs: ids, addr: addr})
}

// registered finds the registration of kind for the object at addr, or with the name.
func (m *Machine) registered(kind string, addr uint64, name string) int {
	for i, r := range m.drivers().regs {
		if r.Kind == kind && (addr != 0 && r.addr == addr || name != "" && r.Name == name) {
			return i
		}
	}
	return -1
}

// unrecord drops the registration of kind for the object at addr; false if there is none.
func (m *Machine) unrecord(kind string, addr uint64) bool {
	d := m.drivers()
	i := m.registered(kind, addr, "")
	if i < 0 {
		return false
	}
	d.regs = slices.Delete(d.regs, i, i+1)
	return true
}

func init() {
	register("driver_register", hDriverRegister)
	register("driver_unregister", hDriverUnregister)
	register("__pci_register_driver", hBusDriverRegister(pciBus))
	register("pci_unregister_driver", hBusDriverUnregister(pciBus))
	register("__platform_driver_register", hBusDriverRegister(platformBus))
	register("__platform_driver_probe", hPlatformDriverProbe)
	register("platform_driver_unregister", hBusDriverUnregister(platformBus))
	register("__platform_register_drivers", hPlatformRegisterDrivers)
	register("platform_unregister_drivers", hPlatformUnregisterDrivers)
	register("i2c_register_driver", hBusDriverRegister(i2cBus))
	register("i2c_del_driver", hBusDriverUnregister(i2cBus))
	register("usb_register_driver", hBusDriverRegister(usbBus))
	register("usb_deregister", hBusDriverUnregister(usbBus))
	register("__spi_register_driver", hBusDriverRegister(spiBus))
	register("__hid_register_driver", hBusDriverRegister(hidBus))
	register("hid_unregister_driver", hBusDriverUnregister(hidBus))
	register("platform_device_register", hPlatformDeviceRegister)
	register("platform_device_add", hPlatformDeviceRegister)
	register("platform_device_alloc", hPlatformDeviceAlloc)
	register("platform_device_register_full", hPlatformDeviceRegisterFull)
	register("platform_device_unregister", hPlatformDeviceUnregister)
	register("platform_device_del", hPlatformDeviceDel)
	register("platform_device_put", hPlatformDevicePut)
	register("bus_register", hNamedRegister("bus", "bus_type", "name"))
	register("bus_unregister", hNamedUnregister("bus", 0))
	register("register_filesystem", hRegisterFilesystem)
	register("unregister_filesystem", hUnregisterFilesystem)
}

// busDriver describes how one bus's driver structure holds the generic struct device_driver, its
// name and its match table.
type busDriver struct {
	bus        string // the kind recorded, and the bus_type symbol's prefix
	structName string // pci_driver, platform_driver, ...
	driverPath string // the embedded struct device_driver
	namePath   string // where the driver's name is ("" to use driver.name)
	idsPath    string // the id_table pointer ("" for none)
	driverArg  int    // which argument is the driver (i2c_register_driver(owner, driver))
	ownerArg   int    // which argument is THIS_MODULE, -1 for none
	ids        func(m *Machine, table uint64) []string
}

var (
	pciBus      = &busDriver{"pci", "pci_driver", "driver", "name", "id_table", 0, 1, pciIDs}
	platformBus = &busDriver{"platform", "platform_driver", "driver", "", "id_table", 0, 1, nameIDs("platform_device_id")}
	i2cBus      = &busDriver{"i2c", "i2c_driver", "driver", "", "id_table", 1, 0, nameIDs("i2c_device_id")}
	usbBus      = &busDriver{"usb", "usb_driver", "drvwrap.driver", "name", "id_table", 0, 1, usbIDs}
	spiBus      = &busDriver{"spi", "spi_driver", "driver", "", "id_table", 1, 0, nameIDs("spi_device_id")}
	hidBus      = &busDriver{"hid", "hid_driver", "driver", "name", "id_table", 0, 1, hidIDs}
)

// driverOf is the struct device_driver inside a bus driver.
func (m *Machine) driverOf(b *busDriver, drv uint64) uint64 {
	off, _ := m.fieldOffset(b.structName, b.driverPath)
	return drv + off
}

// readPtrString reads the string a char * field points at ("" when the field or pointer is absent).
func (m *Machine) readPtrString(structName, field string, addr uint64) (string, error) {
	off, ok := m.fieldOffset(structName, field)
	if !ok {
		return "", nil
	}
	p, err := m.ReadU64(addr + off)
	if err != nil || p == 0 {
		return "", err
	}
	return m.ReadCString(p, 256)
}

// readArrayString reads an inline char array field of n bytes up to its NUL.
func (m *Machine) readArrayString(structName, field string, addr, n uint64) (string, error) {
	off, ok := m.fieldOffset(structName, field)
	if !ok {
		return "", nil
	}
	b, err := m.Read(addr+off, n)
	if err != nil {
		return "", err
	}
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return string(b), nil
}

func (m *Machine) readField(structName, field string, addr uint64, size int) (uint64, error) {
	off, ok := m.fieldOffset(structName, field)
	if !ok {
		return 0, nil
	}
	b, err := m.Read(addr+off, uint64(size))
	if err != nil {
		return 0, err
	}
	var v uint64
	for i := size - 1; i >= 0; i-- {
		v = v<<8 | uint64(b[i])
	}
	return v, nil
}

// maxTableEntries bounds a match table walk: a table without its terminator is a module bug, and
// the walk stops at the first unreadable entry or after this many.
const maxTableEntries = 4096

// eachEntry walks a zero-terminated match table of struct name: done says an entry is the
// terminator, format renders the others.
func (m *Machine) eachEntry(name string, table uint64, done func(e uint64) (bool, error), format func(e uint64) (string, error)) []string {
	size, ok := m.structSize(name)
	if !ok || table == 0 {
		return nil
	}
	var out []string
	for i := uint64(0); i < maxTableEntries; i++ {
		e := table + i*size
		end, err := done(e)
		if err != nil || end {
			break
		}
		s, err := format(e)
		if err != nil {
			break
		}
		out = append(out, s)
	}
	return out
}

// anyID prints a match field, with the ANY wildcard (all ones) as "*".
func anyID(v uint64, width int) string {
	if v == 1<<(4*width)-1 || width == 4 && v == 0xffffffff {
		return "*"
	}
	return fmt.Sprintf("%0*x", width, v)
}

// pciIDs renders a pci_device_id table as vendor:device:subvendor:subdevice:class:class_mask; the
// table ends at the entry with vendor, subvendor and class_mask all zero (pci_match_id's test).
func pciIDs(m *Machine, table uint64) []string {
	const s = "pci_device_id"
	return m.eachEntry(s, table, func(e uint64) (bool, error) {
		var sum uint64
		for _, f := range []string{"vendor", "subvendor", "class_mask"} {
			v, err := m.readField(s, f, e, 4)
			if err != nil {
				return true, err
			}
			sum |= v
		}
		return sum == 0, nil
	}, func(e uint64) (string, error) {
		var parts []string
		for _, f := range []struct {
			name  string
			width int
		}{{"vendor", 4}, {"device", 4}, {"subvendor", 4}, {"subdevice", 4}, {"class", 6}, {"class_mask", 6}} {
			v, err := m.readField(s, f.name, e, 4)
			if err != nil {
				return "", err
			}
			parts = append(parts, anyID(v, f.width))
		}
		return fmt.Sprintf("%s:%s:%s:%s:%s:%s", parts[0], parts[1], parts[2], parts[3], parts[4], parts[5]), nil
	})
}

// usbIDs renders a usb_device_id table as the fields its match_flags select, in modalias order;
// the table ends where idVendor, idProduct, bDeviceClass, bInterfaceClass and driver_info are all
// zero (usb_match_id's test).
func usbIDs(m *Machine, table uint64) []string {
	const s = "usb_device_id"
	fields := []struct {
		flag   uint64
		name   string
		prefix string
		size   int
	}{
		{0x0001, "idVendor", "v", 2}, {0x0002, "idProduct", "p", 2},
		{0x0004, "bcdDevice_lo", "dl", 2}, {0x0008, "bcdDevice_hi", "dh", 2},
		{0x0010, "bDeviceClass", "dc", 1}, {0x0020, "bDeviceSubClass", "dsc", 1}, {0x0040, "bDeviceProtocol", "dp", 1},
		{0x0080, "bInterfaceClass", "ic", 1}, {0x0100, "bInterfaceSubClass", "isc", 1},
		{0x0200, "bInterfaceProtocol", "ip", 1}, {0x0400, "bInterfaceNumber", "in", 1},
	}
	return m.eachEntry(s, table, func(e uint64) (bool, error) {
		var sum uint64
		for _, f := range []struct {
			name string
			size int
		}{{"idVendor", 2}, {"idProduct", 2}, {"bDeviceClass", 1}, {"bInterfaceClass", 1}, {"driver_info", 8}} {
			v, err := m.readField(s, f.name, e, f.size)
			if err != nil {
				return true, err
			}
			sum |= v
		}
		return sum == 0, nil
	}, func(e uint64) (string, error) {
		flags, err := m.readField(s, "match_flags", e, 2)
		if err != nil {
			return "", err
		}
		var b []byte
		for _, f := range fields {
			if flags&f.flag == 0 {
				continue
			}
			v, err := m.readField(s, f.name, e, f.size)
			if err != nil {
				return "", err
			}
			b = fmt.Appendf(b, "%s%0*x", f.prefix, 2*f.size, v)
		}
		return string(b), nil
	})
}

// hidIDs renders a hid_device_id table as bus:group:vendor:product; it ends at bus 0.
func hidIDs(m *Machine, table uint64) []string {
	const s = "hid_device_id"
	return m.eachEntry(s, table, func(e uint64) (bool, error) {
		bus, err := m.readField(s, "bus", e, 2)
		return bus == 0, err
	}, func(e uint64) (string, error) {
		var v [4]uint64
		for i, f := range []struct {
			name string
			size int
		}{{"bus", 2}, {"group", 2}, {"vendor", 4}, {"product", 4}} {
			x, err := m.readField(s, f.name, e, f.size)
			if err != nil {
				return "", err
			}
			v[i] = x
		}
		return fmt.Sprintf("%04x:%04x:%s:%s", v[0], v[1], anyID(v[2], 4), anyID(v[3], 4)), nil
	})
}

// nameIDs renders a table of name-matched IDs (platform_device_id, i2c_device_id, spi_device_id):
// it ends at an empty name.
func nameIDs(structName string) func(m *Machine, table uint64) []string {
	return func(m *Machine, table uint64) []string {
		var name string
		return m.eachEntry(structName, table, func(e uint64) (bool, error) {
			var err error
			name, err = m.readArrayString(structName, "name", e, 32)
			return name == "", err
		}, func(uint64) (string, error) { return name, nil })
	}
}

// firmwareIDs renders the device_driver's of_match_table compatibles ("of:" prefix) and
// acpi_match_table IDs ("acpi:" prefix).
func (m *Machine) firmwareIDs(drv uint64) []string {
	var out []string
	if of, err := m.readField("device_driver", "of_match_table", drv, 8); err == nil && of != 0 {
		const s = "of_device_id"
		var name, typ, compat string
		out = append(out, m.eachEntry(s, of, func(e uint64) (bool, error) {
			var err error
			if name, err = m.readArrayString(s, "name", e, 32); err != nil {
				return true, err
			}
			if typ, err = m.readArrayString(s, "type", e, 32); err != nil {
				return true, err
			}
			compat, err = m.readArrayString(s, "compatible", e, 128)
			return name == "" && typ == "" && compat == "", err
		}, func(uint64) (string, error) {
			if compat != "" {
				return "of:" + compat, nil
			}
			return "of:" + name + "/" + typ, nil
		})...)
	}
	if acpi, err := m.readField("device_driver", "acpi_match_table", drv, 8); err == nil && acpi != 0 {
		const s = "acpi_device_id"
		var id string
		out = append(out, m.eachEntry(s, acpi, func(e uint64) (bool, error) {
			var err error
			id, err = m.readArrayString(s, "id", e, 16)
			return id == "", err
		}, func(uint64) (string, error) { return "acpi:" + id, nil })...)
	}
	return out
}

// driverRegister is driver_register() on a bus: a second driver of the same name on the bus is
// refused with EBUSY, as driver_find() makes the kernel do; no device matches, so nothing probes.
func (m *Machine) driverRegister(t *Trap, bus string, drv uint64, ids []string) (uint64, error) {
	name, err := m.readPtrString("device_driver", "name", drv)
	if err != nil {
		return 0, err
	}
	if i := m.registered(bus, drv, ""); i >= 0 || m.registered(bus, 0, name) >= 0 {
		m.logf(levelErr, "Error: Driver '%s' is already registered, aborting...", name)
		return negErrno(syscall.EBUSY), nil
	}
	m.record(t, bus, name, drv, append(ids, m.firmwareIDs(drv)...))
	d := m.drivers()
	d.regs[len(d.regs)-1].driver = true
	return 0, nil
}

// driver_register(drv): a driver on the bus drv->bus names (a module's own bus_type).
func hDriverRegister(m *Machine, t *Trap) (uint64, error) {
	drv := t.Arg(0)
	bus := "driver"
	if b, err := m.readField("device_driver", "bus", drv, 8); err == nil && b != 0 {
		if name, err := m.readPtrString("bus_type", "name", b); err == nil && name != "" {
			bus = name
		}
	}
	return m.driverRegister(t, bus, drv, nil)
}

func hDriverUnregister(m *Machine, t *Trap) (uint64, error) {
	d := m.drivers()
	if i := slices.IndexFunc(d.regs, func(r Registration) bool { return r.driver && r.addr == t.Arg(0) }); i >= 0 {
		d.regs = slices.Delete(d.regs, i, i+1)
	}
	return 0, nil
}

// hBusDriverRegister is a bus's register function: like __pci_register_driver(drv, owner,
// mod_name), it fills in the embedded device_driver (name from the bus driver's own name field,
// bus, owner, mod_name) and registers it.
func hBusDriverRegister(b *busDriver) Handler {
	return func(m *Machine, t *Trap) (uint64, error) {
		drv := t.Arg(b.driverArg)
		if drv == 0 {
			return negErrno(syscall.EINVAL), nil
		}
		dd := m.driverOf(b, drv)
		if b.namePath != "" {
			if off, ok := m.fieldOffset(b.structName, b.namePath); ok {
				name, err := m.ReadU64(drv + off)
				if err != nil {
					return 0, err
				}
				m.setField("device_driver", "name", dd, 8, name)
			}
		}
		if sym, ok := m.prof.Lookup(b.bus + "_bus_type"); ok {
			m.setField("device_driver", "bus", dd, 8, sym.Addr)
		}
		if b.ownerArg >= 0 {
			m.setField("device_driver", "owner", dd, 8, t.Arg(b.ownerArg))
		}
		if b.bus == "pci" || b.bus == "usb" || b.bus == "hid" || b.bus == "serio" {
			m.setField("device_driver", "mod_name", dd, 8, t.Arg(2))
		}
		var ids []string
		if off, ok := m.fieldOffset(b.structName, b.idsPath); ok {
			table, err := m.ReadU64(drv + off)
			if err != nil {
				return 0, err
			}
			ids = b.ids(m, table)
		}
		return m.driverRegister(t, b.bus, dd, ids)
	}
}

func hBusDriverUnregister(b *busDriver) Handler {
	return func(m *Machine, t *Trap) (uint64, error) {
		m.unrecord(b.bus, m.driverOf(b, t.Arg(0)))
		return 0, nil
	}
}

// __platform_driver_probe(drv, probe, module): for drivers of devices that cannot be hot-plugged;
// with no matching device bound at once the driver is unregistered again and the call fails with
// ENODEV.
func hPlatformDriverProbe(m *Machine, t *Trap) (uint64, error) {
	drv := t.Arg(0)
	m.setField("platform_driver", "probe", drv, 8, t.Arg(1))
	ret, err := hBusDriverRegister(&busDriver{"platform", "platform_driver", "driver", "", "id_table", 0, 2,
		nameIDs("platform_device_id")})(m, t)
	if err != nil || ret != 0 {
		return ret, err
	}
	m.unrecord("platform", m.driverOf(platformBus, drv))
	return negErrno(syscall.ENODEV), nil
}

// __platform_register_drivers(drivers, count, owner): each in turn; on a failure the ones already
// registered are unregistered and the error returned.
func hPlatformRegisterDrivers(m *Machine, t *Trap) (uint64, error) {
	drivers, count := t.Arg(0), t.Arg(1)
	for i := uint64(0); i < count && i < maxTableEntries; i++ {
		drv, err := m.ReadU64(drivers + 8*i)
		if err != nil {
			return 0, err
		}
		sub := &Trap{Name: t.Name, Addr: t.Addr, Return: t.Return, rsp: t.rsp, m: m, regs: [6]uint64{drv, t.Arg(2)}}
		ret, err := hBusDriverRegister(platformBus)(m, sub)
		if err != nil || ret != 0 {
			for j := i; j > 0; j-- {
				if prev, err := m.ReadU64(drivers + 8*(j-1)); err == nil {
					m.unrecord("platform", m.driverOf(platformBus, prev))
				}
			}
			return ret, err
		}
	}
	return 0, nil
}

func hPlatformUnregisterDrivers(m *Machine, t *Trap) (uint64, error) {
	for i := t.Arg(1); i > 0 && i <= maxTableEntries; i-- {
		drv, err := m.ReadU64(t.Arg(0) + 8*(i-1))
		if err != nil {
			return 0, err
		}
		m.unrecord("platform", m.driverOf(platformBus, drv))
	}
	return 0, nil
}

// platformDeviceName is pdev->name, with ".id" as the device is named when id is not -1 (none).
func (m *Machine) platformDeviceName(pdev uint64) (string, error) {
	name, err := m.readPtrString("platform_device", "name", pdev)
	if err != nil {
		return "", err
	}
	id, err := m.readField("platform_device", "id", pdev, 4)
	if err != nil {
		return "", err
	}
	if int32(id) != -1 {
		name = fmt.Sprintf("%s.%d", name, int32(id))
	}
	return name, nil
}

// platform_device_register(pdev) and platform_device_add(pdev): the device appears on the platform
// bus; a second device of the same name is refused with EEXIST, as device_add does.
func hPlatformDeviceRegister(m *Machine, t *Trap) (uint64, error) {
	name, err := m.platformDeviceName(t.Arg(0))
	if err != nil {
		return 0, err
	}
	if m.registered("platform-device", 0, name) >= 0 {
		m.logf(levelErr, "sysfs: cannot create duplicate filename '/devices/platform/%s'", name)
		return negErrno(syscall.EEXIST), nil
	}
	m.record(t, "platform-device", name, t.Arg(0), nil)
	return 0, nil
}

// platform_device_alloc(name, id): a zeroed platform_device with a copy of the name.
func hPlatformDeviceAlloc(m *Machine, t *Trap) (uint64, error) {
	size, ok := m.structSize("platform_device")
	if !ok {
		return 0, nil
	}
	name, err := m.ReadCString(t.Arg(0), 256)
	if err != nil {
		return 0, err
	}
	pdev := m.kmalloc(size+uint64(len(name))+1, t.caller(), gfpZero)
	if pdev == 0 {
		return 0, nil
	}
	if err := m.WriteAt(append([]byte(name), 0), pdev+size); err != nil {
		return 0, err
	}
	m.setField("platform_device", "name", pdev, 8, pdev+size)
	m.setField("platform_device", "id", pdev, 4, t.Arg(1))
	m.drivers().platforms[pdev] = true
	return pdev, nil
}

// platform_device_register_full(pdevinfo): alloc and add in one; ERR_PTR on failure.
func hPlatformDeviceRegisterFull(m *Machine, t *Trap) (uint64, error) {
	info := t.Arg(0)
	namePtr, err := m.readField("platform_device_info", "name", info, 8)
	if err != nil {
		return 0, err
	}
	id, err := m.readField("platform_device_info", "id", info, 4)
	if err != nil {
		return 0, err
	}
	sub := &Trap{Name: t.Name, Addr: t.Addr, Return: t.Return, rsp: t.rsp, m: m, regs: [6]uint64{namePtr, id}}
	pdev, err := hPlatformDeviceAlloc(m, sub)
	if err != nil || pdev == 0 {
		return negErrno(syscall.ENOMEM), err
	}
	sub.regs[0] = pdev
	ret, err := hPlatformDeviceRegister(m, sub)
	if err != nil || ret != 0 {
		delete(m.drivers().platforms, pdev)
		return ret, firstErr(err, m.kfree(pdev, t.caller()))
	}
	return pdev, nil
}

func firstErr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

func hPlatformDeviceDel(m *Machine, t *Trap) (uint64, error) {
	m.unrecord("platform-device", t.Arg(0))
	return 0, nil
}

// platform_device_put(pdev): frees a device kemu allocated (the last reference); a module's static
// platform_device is not freed.
func hPlatformDevicePut(m *Machine, t *Trap) (uint64, error) {
	d := m.drivers()
	if p := t.Arg(0); d.platforms[p] && m.registered("platform-device", p, "") < 0 {
		delete(d.platforms, p)
		return 0, m.kfree(p, t.caller())
	}
	return 0, nil
}

func hPlatformDeviceUnregister(m *Machine, t *Trap) (uint64, error) {
	m.unrecord("platform-device", t.Arg(0))
	return hPlatformDevicePut(m, t)
}

// hNamedRegister registers an object known by a char * name field (bus_type, class, led_trigger,
// ts_ops, ...): EEXIST when the object or another of the name is registered.
func hNamedRegister(kind, structName, field string) Handler {
	return func(m *Machine, t *Trap) (uint64, error) {
		name, err := m.readPtrString(structName, field, t.Arg(0))
		if err != nil {
			return 0, err
		}
		if m.registered(kind, t.Arg(0), name) >= 0 {
			return negErrno(syscall.EEXIST), nil
		}
		m.record(t, kind, name, t.Arg(0), nil)
		return 0, nil
	}
}

// hNamedUnregister undoes hNamedRegister; unregistering what is not registered fails with missing
// where the kernel reports it (textsearch_unregister: ENOENT), else is ignored (missing 0).
func hNamedUnregister(kind string, missing syscall.Errno) Handler {
	return func(m *Machine, t *Trap) (uint64, error) {
		if !m.unrecord(kind, t.Arg(0)) && missing != 0 {
			return negErrno(missing), nil
		}
		return 0, nil
	}
}

// register_filesystem(fs): EBUSY when fs is already on the list (its next is set) or another
// filesystem has the name, as the kernel's find_filesystem check.
func hRegisterFilesystem(m *Machine, t *Trap) (uint64, error) {
	fs := t.Arg(0)
	name, err := m.readPtrString("file_system_type", "name", fs)
	if err != nil {
		return 0, err
	}
	next, err := m.readField("file_system_type", "next", fs, 8)
	if err != nil {
		return 0, err
	}
	if next != 0 || m.registered("fs", fs, name) >= 0 {
		return negErrno(syscall.EBUSY), nil
	}
	m.record(t, "fs", name, fs, nil)
	return 0, nil
}

// unregister_filesystem(fs): EINVAL for one that is not registered.
func hUnregisterFilesystem(m *Machine, t *Trap) (uint64, error) {
	if !m.unrecord("fs", t.Arg(0)) {
		return negErrno(syscall.EINVAL), nil
	}
	return 0, nil
}
