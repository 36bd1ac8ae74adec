package machine

import (
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Registration handlers called directly on structures the test builds in guest memory with the
// embedded Debian profile's BTF layouts, as a module's static data would hold them.

// guestArena hands out zeroed guest memory and strings for building kernel structures.
type guestArena struct {
	t testing.TB
	m *Machine
}

func (a guestArena) alloc(size uint64) uint64 {
	p, err := a.m.slab.Kmalloc(size, callerForTest, true)
	require.NoError(a.t, err)
	return p
}

func (a guestArena) str(s string) uint64 {
	p := a.alloc(uint64(len(s)) + 1)
	require.NoError(a.t, a.m.WriteAt(append([]byte(s), 0), p))
	return p
}

// object allocates a zeroed struct name (count of them, as an array).
func (a guestArena) object(name string, count uint64) uint64 {
	size, ok := a.m.structSize(name)
	require.True(a.t, ok, "BTF has struct %s", name)
	return a.alloc(size * count)
}

// set stores v in a field of the i-th struct name of an array at base.
func (a guestArena) set(name, field string, base uint64, i uint64, size int, v uint64) {
	st, _ := a.m.structSize(name)
	_, ok := a.m.fieldOffset(name, field)
	require.True(a.t, ok, "BTF has %s.%s", name, field)
	require.NoError(a.t, a.m.setFieldN(name, field, base+i*st, size, v))
}

// setString writes s into an inline char array field.
func (a guestArena) setString(name, field string, base uint64, s string) {
	off, ok := a.m.fieldOffset(name, field)
	require.True(a.t, ok, "BTF has %s.%s", name, field)
	require.NoError(a.t, a.m.WriteAt(append([]byte(s), 0), base+off))
}

// call runs a handler with integer arguments, as module code calling the function would.
func call(t testing.TB, m *Machine, h Handler, args ...uint64) uint64 {
	t.Helper()
	tr := &Trap{Name: "test", m: m, rsp: m.stackTop - 64}
	copy(tr.regs[:], args)
	ret, err := h(m, tr)
	require.NoError(t, err)
	return ret
}

// bootArena boots the embedded Debian profile (whose BTF has the layouts) and an arena on it.
func bootArena(t *testing.T) (*Machine, guestArena) {
	if testing.Short() {
		t.Skip("boots the full Debian profile")
	}
	m := bootDefault(t, Options{})
	return m, guestArena{t, m}
}

func kinds(regs []Registration, kind string) []Registration {
	var out []Registration
	for _, r := range regs {
		if r.Kind == kind {
			out = append(out, r)
		}
	}
	return out
}

func TestBusDriverRegistration(t *testing.T) {
	m, a := bootArena(t)

	ids := a.object("pci_device_id", 3)
	a.set("pci_device_id", "vendor", ids, 0, 4, 0x10ec)
	a.set("pci_device_id", "device", ids, 0, 4, 0x8139)
	a.set("pci_device_id", "subvendor", ids, 0, 4, 0xffffffff)
	a.set("pci_device_id", "subdevice", ids, 0, 4, 0xffffffff)
	a.set("pci_device_id", "class", ids, 1, 4, 0x020000)
	a.set("pci_device_id", "class_mask", ids, 1, 4, 0xffff00)
	drv := a.object("pci_driver", 1)
	a.set("pci_driver", "name", drv, 0, 8, a.str("8139cp"))
	a.set("pci_driver", "id_table", drv, 0, 8, ids)

	require.Equal(t, uint64(0), call(t, m, hBusDriverRegister(pciBus), drv, 0, a.str("8139cp")))
	regs := kinds(m.Registrations(), "pci")
	require.Len(t, regs, 1)
	assert.Equal(t, "8139cp", regs[0].Name)
	assert.Equal(t, []string{"10ec:8139:*:*:000000:000000", "0000:0000:0000:0000:020000:ffff00"}, regs[0].IDs,
		"the table ends at the zero entry, not before the class-only one")
	name, err := m.readPtrString("device_driver", "name", m.driverOf(pciBus, drv))
	require.NoError(t, err)
	assert.Equal(t, "8139cp", name, "driver.name is filled in from pci_driver.name")

	// A second driver of the name on the same bus is refused, as driver_register does.
	other := a.object("pci_driver", 1)
	a.set("pci_driver", "name", other, 0, 8, a.str("8139cp"))
	assert.Equal(t, negErrno(syscall.EBUSY), call(t, m, hBusDriverRegister(pciBus), other, 0, 0))
	assert.Contains(t, m.Dmesg(), "Error: Driver '8139cp' is already registered, aborting...")

	call(t, m, hBusDriverUnregister(pciBus), drv)
	assert.Empty(t, kinds(m.Registrations(), "pci"))

	// i2c_register_driver(owner, driver): names from the id_table.
	i2cIDs := a.object("i2c_device_id", 3)
	a.setString("i2c_device_id", "name", i2cIDs, "lm75")
	size, _ := m.structSize("i2c_device_id")
	a.setString("i2c_device_id", "name", i2cIDs+size, "lm75a")
	i2c := a.object("i2c_driver", 1)
	a.set("i2c_driver", "driver.name", i2c, 0, 8, a.str("lm75"))
	a.set("i2c_driver", "id_table", i2c, 0, 8, i2cIDs)
	require.Equal(t, uint64(0), call(t, m, hBusDriverRegister(i2cBus), 0, i2c))
	regs = kinds(m.Registrations(), "i2c")
	require.Len(t, regs, 1)
	assert.Equal(t, []string{"lm75", "lm75a"}, regs[0].IDs)

	// __platform_driver_probe: no device binds, so the driver is dropped again with ENODEV.
	pdrv := a.object("platform_driver", 1)
	a.set("platform_driver", "driver.name", pdrv, 0, 8, a.str("pcspkr"))
	assert.Equal(t, negErrno(syscall.ENODEV), call(t, m, hPlatformDriverProbe, pdrv, 0, 0))
	assert.Empty(t, kinds(m.Registrations(), "platform"))
}

func TestCryptoRegistration(t *testing.T) {
	m, a := bootArena(t)
	shash, _ := m.structSize("shash_alg")
	base, ok := m.fieldOffset("shash_alg", "base")
	require.True(t, ok)
	alg := func(algs uint64, i uint64, name, driver string, prio uint64) {
		p := algs + i*shash + base
		a.setString("crypto_alg", "cra_name", p, name)
		a.setString("crypto_alg", "cra_driver_name", p, driver)
		a.set("crypto_alg", "cra_priority", p, 0, 4, prio)
	}
	two := a.object("shash_alg", 2)
	alg(two, 0, "sha3-256", "sha3-256-generic", 100)
	alg(two, 1, "sha3-512", "sha3-512-generic", 100)
	shashes := hCryptoRegister(cryptoType{"shash_alg", "base"}, true)
	require.Equal(t, uint64(0), call(t, m, shashes, two, 2))
	regs := kinds(m.Registrations(), "crypto")
	require.Len(t, regs, 2)
	assert.Equal(t, Registration{Kind: "crypto", Name: "sha3-512", IDs: []string{"sha3-512-generic", "priority=100"}},
		Registration{Kind: regs[1].Kind, Name: regs[1].Name, IDs: regs[1].IDs, Module: regs[1].Module})

	cases := []struct {
		name, cra, driver string
		prio              uint64
		want              uint64
	}{
		{"driver name is another's name", "sha3", "sha3-256", 100, negErrno(syscall.EEXIST)},
		{"same driver name again (allowed in 6.1)", "sha3-256", "sha3-256-generic", 100, 0},
		{"name is another's driver name", "sha3-512-generic", "other", 100, negErrno(syscall.EEXIST)},
		{"no driver name", "md4", "", 0, negErrno(syscall.EINVAL)},
		{"negative priority", "md4", "md4-generic", uint64(0xffffffff), negErrno(syscall.EINVAL)},
		{"same name, other driver", "sha3-256", "sha3-256-fast", 300, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			one := a.object("shash_alg", 1)
			alg(one, 0, c.cra, c.driver, c.prio)
			assert.Equal(t, c.want, call(t, m, hCryptoRegister(cryptoType{"shash_alg", "base"}, false), one))
		})
	}

	call(t, m, hCryptoUnregister(cryptoType{"shash_alg", "base"}, true), two, 2)
	assert.Len(t, kinds(m.Registrations(), "crypto"), 2, "the two registered singly are left")
}

func TestFilesystemAndBlkdevRegistration(t *testing.T) {
	m, a := bootArena(t)
	fs := a.object("file_system_type", 1)
	a.set("file_system_type", "name", fs, 0, 8, a.str("minix"))
	assert.Equal(t, uint64(0), call(t, m, hRegisterFilesystem, fs))
	assert.Equal(t, negErrno(syscall.EBUSY), call(t, m, hRegisterFilesystem, fs), "registered twice")
	dup := a.object("file_system_type", 1)
	a.set("file_system_type", "name", dup, 0, 8, a.str("minix"))
	assert.Equal(t, negErrno(syscall.EBUSY), call(t, m, hRegisterFilesystem, dup), "name taken")
	assert.Equal(t, uint64(0), call(t, m, hUnregisterFilesystem, fs))
	assert.Equal(t, negErrno(syscall.EINVAL), call(t, m, hUnregisterFilesystem, fs), "not registered")

	loop := a.str("loop")
	cases := []struct {
		name  string
		major uint64
		want  uint64
	}{
		{"fixed major", 7, 0},
		{"fixed major taken", 7, negErrno(syscall.EBUSY)},
		{"dynamic major", 0, 254},
		{"next dynamic major", 0, 253},
		{"beyond the table", 512, negErrno(syscall.EINVAL)},
	}
	for _, c := range cases {
		assert.Equal(t, c.want, call(t, m, hRegisterBlkdev, c.major, loop), c.name)
	}
	call(t, m, hUnregisterBlkdev, 254, loop)
	assert.Equal(t, uint64(254), call(t, m, hRegisterBlkdev, 0, loop), "a freed dynamic major is reused")
}

func TestNetdevLifecycle(t *testing.T) {
	if testing.Short() {
		t.Skip("boots the full Debian profile")
	}
	m := bootDefault(t, Options{})
	before := m.slab.Totals().Live
	dev := call(t, m, hAllocEtherdev, 64, 1, 1)
	require.NotZero(t, dev)
	mtu, err := m.readField("net_device", "mtu", dev, 4)
	require.NoError(t, err)
	assert.Equal(t, uint64(1500), mtu, "ether_setup ran")

	assert.Equal(t, uint64(0), call(t, m, hRegisterNetdev, dev))
	name, err := m.netdevName(dev)
	require.NoError(t, err)
	assert.Equal(t, "eth0", name, "eth%d gets the lowest free number")
	dev2 := call(t, m, hAllocEtherdev, 0, 1, 1)
	assert.Equal(t, uint64(0), call(t, m, hRegisterNetdev, dev2))
	name, err = m.netdevName(dev2)
	require.NoError(t, err)
	assert.Equal(t, "eth1", name)
	index, err := m.readField("net_device", "ifindex", dev2, 4)
	require.NoError(t, err)
	assert.Equal(t, uint64(3), index, "lo is 1, eth0 2")
	assert.Equal(t, uint64(0), call(t, m, hAllocEtherdev, 0, 0, 1), "zero queues")

	for _, d := range []uint64{dev, dev2} {
		call(t, m, hUnregisterNetdev, d)
		call(t, m, hFreeNetdev, d)
	}
	assert.Empty(t, kinds(m.Registrations(), "net"))
	assert.Equal(t, before, m.slab.Totals().Live, "devices and queues are freed")
}

func TestBlockDisk(t *testing.T) {
	m, a := bootArena(t)
	live := m.slab.Totals().Live
	gd := call(t, m, hBlkAllocDisk(false), 0, 0)
	require.NotZero(t, gd)
	q, err := m.readField("gendisk", "queue", gd, 8)
	require.NoError(t, err)
	require.NotZero(t, q)

	call(t, m, hBlkQueueBlockSize("logical_block_size"), q, 4096)
	phys, err := m.readField("request_queue", "limits.physical_block_size", q, 4)
	require.NoError(t, err)
	assert.Equal(t, uint64(4096), phys, "the physical block size follows a larger logical one")
	call(t, m, hBlkQueueMaxHwSectors, q, 100000)
	maxSectors, err := m.readField("request_queue", "limits.max_sectors", q, 4)
	require.NoError(t, err)
	assert.Equal(t, uint64(blkDefMaxSectors), maxSectors)
	call(t, m, hBlkQueueFlag(true), 12, q)
	flags, err := m.readField("request_queue", "queue_flags", q, 8)
	require.NoError(t, err)
	assert.Equal(t, uint64(1<<12), flags)

	a.setString("gendisk", "disk_name", gd, "ram0")
	a.set("gendisk", "minors", gd, 0, 4, 1)
	require.Equal(t, uint64(0), call(t, m, hDeviceAddDisk, 0, gd, 0))
	regs := kinds(m.Registrations(), "disk")
	require.Len(t, regs, 1)
	assert.Equal(t, Registration{Kind: "disk", Name: "ram0", IDs: []string{"259:0"}},
		Registration{Kind: regs[0].Kind, Name: regs[0].Name, IDs: regs[0].IDs}, "no major: BLOCK_EXT_MAJOR")
	call(t, m, hDelGendisk, gd)
	call(t, m, hPutDisk, gd)
	assert.Empty(t, kinds(m.Registrations(), "disk"))
	assert.Equal(t, live, m.slab.Totals().Live, "disk, queue and part0 are freed")
}

func TestPlatformAndInputDevices(t *testing.T) {
	m, a := bootArena(t)
	live := m.slab.Totals().Live
	name := a.str("pcspkr")
	pdev := call(t, m, hPlatformDeviceAlloc, name, uint64(0xffffffff)) // id -1: no instance number
	require.NotZero(t, pdev)
	require.Equal(t, uint64(0), call(t, m, hPlatformDeviceRegister, pdev))
	dup := call(t, m, hPlatformDeviceAlloc, name, uint64(0xffffffff))
	assert.Equal(t, negErrno(syscall.EEXIST), call(t, m, hPlatformDeviceRegister, dup), "same name on the bus")
	assert.Contains(t, m.Dmesg(), "sysfs: cannot create duplicate filename '/devices/platform/pcspkr'")
	second := call(t, m, hPlatformDeviceAlloc, name, 1)
	require.Equal(t, uint64(0), call(t, m, hPlatformDeviceRegister, second))
	regs := kinds(m.Registrations(), "platform-device")
	require.Len(t, regs, 2)
	assert.Equal(t, "pcspkr.1", regs[1].Name)
	for _, p := range []uint64{pdev, second} {
		call(t, m, hPlatformDeviceUnregister, p)
	}
	call(t, m, hPlatformDevicePut, dup)

	dev := call(t, m, hInputAllocate)
	require.NotZero(t, dev)
	a.set("input_dev", "name", dev, 0, 8, a.str("PC Speaker"))
	require.Equal(t, uint64(0), call(t, m, hInputRegister, dev))
	assert.Contains(t, m.Dmesg(), "input: PC Speaker as /devices/virtual/input/input0")
	call(t, m, hInputUnregister, dev)
	assert.Empty(t, m.Registrations())
	assert.Equal(t, live+2, m.slab.Totals().Live, "devices freed; the two name strings stay")
}
