package machine

import (
	"fmt"
	"syscall"

	"kemu/mmu"
)

// Kernel services that real Debian modules call from init and exit, found by loading them (see
// debian_test.go): notifier chains, sysctl tables, block device majors, LED triggers, CPU hotplug
// states, text search algorithms, kobjects and ksets, reader-writer semaphores, scatterlists. Each
// registration is recorded like a driver's (drivers.go), so that what a module forgets to undo shows
// in Registrations.

func init() {
	// No RCU callback is ever deferred in kemu (kvfree_call_rcu frees at once, call_rcu has no
	// handler), so there is nothing for rcu_barrier to wait for.
	register("rcu_barrier", hNop)
	// One task runs module code: a reader-writer semaphore is never contended.
	for _, name := range []string{"down_read", "up_read", "down_write", "up_write", "downgrade_write", "__init_rwsem"} {
		register(name, hNop)
	}
	register("down_read_trylock", hTrue)
	register("down_write_trylock", hTrue)
	register("down_read_killable", hZero)
	register("down_write_killable", hZero)

	for _, name := range []string{"register_netdevice_notifier", "bus_register_notifier", "blocking_notifier_chain_register",
		"atomic_notifier_chain_register", "raw_notifier_chain_register", "register_reboot_notifier",
		"register_inetaddr_notifier", "register_inet6addr_notifier"} {
		register(name, hNotifierRegister)
	}
	for _, name := range []string{"unregister_netdevice_notifier", "bus_unregister_notifier", "blocking_notifier_chain_unregister",
		"atomic_notifier_chain_unregister", "raw_notifier_chain_unregister", "unregister_reboot_notifier",
		"unregister_inetaddr_notifier", "unregister_inet6addr_notifier"} {
		register(name, hNotifierUnregister)
	}

	register("register_sysctl", hRegisterSysctl(true))
	register("register_sysctl_table", hRegisterSysctl(false))
	register("unregister_sysctl_table", hUnregisterSysctl)
	register("__register_blkdev", hRegisterBlkdev)
	register("unregister_blkdev", hUnregisterBlkdev)
	register("led_trigger_register_simple", hLedTriggerRegisterSimple)
	register("led_trigger_unregister_simple", hLedTriggerUnregisterSimple)
	register("led_trigger_register", hNamedRegister("led-trigger", "led_trigger", "name"))
	register("led_trigger_unregister", hNamedUnregister("led-trigger", 0))
	register("led_trigger_event", hNop)
	register("textsearch_register", hNamedRegister("textsearch", "ts_ops", "name"))
	register("textsearch_unregister", hNamedUnregister("textsearch", syscall.ENOENT))
	register("input_register_handler", hNamedRegister("input-handler", "input_handler", "name"))
	register("input_unregister_handler", hNamedUnregister("input-handler", 0))
	register("__class_register", hNamedRegister("class", "class", "name"))
	register("register_acpi_bus_type", hNamedRegister("acpi-bus-type", "acpi_bus_type", "name"))
	register("unregister_acpi_bus_type", hNamedUnregister("acpi-bus-type", 0))
	register("__serio_register_driver", hBusDriverRegister(serioBus))
	register("serio_unregister_driver", hBusDriverUnregister(serioBus))
	register("bus_for_each_drv", hBusForEachDrv)
	register("bus_for_each_dev", hZero) // no devices on any bus
	register("cn_add_callback", hCnAddCallback)
	register("cn_del_callback", hCnDelCallback)
	register("kset_create_and_add", hKobjectCreate("kset", "kset"))
	register("kset_unregister", hKobjectRelease("kset"))
	register("kobject_create_and_add", hKobjectCreate("kobject", "kobject"))
	register("__cpuhp_setup_state", hCpuhpSetupState)
	register("__cpuhp_setup_state_cpuslocked", hCpuhpSetupState)
	register("__cpuhp_remove_state", hCpuhpRemoveState)
	register("__cpuhp_remove_state_cpuslocked", hCpuhpRemoveState)
	register("sg_init_table", hSgInitTable)
	register("sg_init_one", hSgInitOne)
	// phylib hands ethtool its PHY operations; ethtool only calls them for a netlink request.
	register("ethtool_set_ethtool_phy_ops", hNop)
}

// A notifier registration: the chain (by its kernel symbol when it has one) and the block.
func hNotifierRegister(m *Machine, t *Trap) (uint64, error) {
	nb, chain := t.Arg(0), t.Name
	if t.Name == "blocking_notifier_chain_register" || t.Name == "atomic_notifier_chain_register" ||
		t.Name == "raw_notifier_chain_register" || t.Name == "bus_register_notifier" {
		nb = t.Arg(1)
		if name, off, _, _, ok := m.symbolize(t.Arg(0)); ok && off == 0 {
			chain = name
		}
	}
	if m.registered("notifier", nb, "") >= 0 {
		// notifier_chain_register: "notifier callback %ps already registered" and EEXIST.
		m.logf(levelWarning, "notifier callback %s already registered", m.formatS(nb))
		return negErrno(syscall.EEXIST), nil
	}
	m.record(t, "notifier", chain, nb, nil)
	return 0, nil
}

func hNotifierUnregister(m *Machine, t *Trap) (uint64, error) {
	nb := t.Arg(0)
	if t.Name != "unregister_netdevice_notifier" && t.Name != "unregister_reboot_notifier" &&
		t.Name != "unregister_inetaddr_notifier" && t.Name != "unregister_inet6addr_notifier" {
		nb = t.Arg(1)
	}
	if !m.unrecord("notifier", nb) {
		return negErrno(syscall.ENOENT), nil // notifier_chain_unregister
	}
	return 0, nil
}

// register_sysctl(path, table) / register_sysctl_table(table): a ctl_table_header the module
// unregisters later; NULL when memory runs out.
func hRegisterSysctl(withPath bool) Handler {
	return func(m *Machine, t *Trap) (uint64, error) {
		size, ok := m.structSize("ctl_table_header")
		if !ok {
			size = 128
		}
		name := "/proc/sys"
		table := t.Arg(0)
		if withPath {
			path, err := m.ReadCString(t.Arg(0), 256)
			if err != nil {
				return 0, err
			}
			name += "/" + path
			table = t.Arg(1)
		}
		if entry, err := m.readPtrString("ctl_table", "procname", table); err == nil && entry != "" {
			name += "/" + entry
		}
		h := m.kmalloc(size, t.caller(), gfpZero)
		if h != 0 {
			m.record(t, "sysctl", name, h, nil)
		}
		return h, nil
	}
}

func hUnregisterSysctl(m *Machine, t *Trap) (uint64, error) {
	if !m.unrecord("sysctl", t.Arg(0)) {
		return 0, nil
	}
	return 0, m.kfree(t.Arg(0), t.caller())
}

// Block device majors (block/genhd.c): BLKDEV_MAJOR_MAX of them, dynamic ones taken from 254 down.
const (
	blkdevMajorMax     = 512
	blkdevDynamicFirst = 254
)

// __register_blkdev(major, name, probe): 0 for a fixed major, the major for a dynamic one (major
// 0), EBUSY when taken or none is free, EINVAL beyond the table.
func hRegisterBlkdev(m *Machine, t *Trap) (uint64, error) {
	major := uint64(uint32(t.Arg(0)))
	name, err := m.ReadCString(t.Arg(1), 64)
	if err != nil {
		return 0, err
	}
	taken := func(n uint64) bool { return m.registered("blkdev", n, "") >= 0 }
	ret := uint64(0)
	switch {
	case major == 0:
		for major = blkdevDynamicFirst; major > 0 && taken(major); major-- {
		}
		if major == 0 {
			m.logf(levelErr, "%s: failed to get major for %s", "__register_blkdev", name)
			return negErrno(syscall.EBUSY), nil
		}
		ret = major
	case major >= blkdevMajorMax:
		m.logf(levelErr, "%s: major requested (%d) is greater than the maximum (%d) for %s",
			"__register_blkdev", major, blkdevMajorMax-1, name)
		return negErrno(syscall.EINVAL), nil
	case taken(major):
		m.logf(levelErr, "%s: cannot get major %d for %s", "__register_blkdev", major, name)
		return negErrno(syscall.EBUSY), nil
	}
	m.record(t, "blkdev", name, major, []string{fmt.Sprintf("major=%d", major)})
	return ret, nil
}

func hUnregisterBlkdev(m *Machine, t *Trap) (uint64, error) {
	m.unrecord("blkdev", uint64(uint32(t.Arg(0))))
	return 0, nil
}

// led_trigger_register_simple(name, &trigger): allocates and registers a trigger and stores it;
// on failure it warns and stores NULL.
func hLedTriggerRegisterSimple(m *Machine, t *Trap) (uint64, error) {
	size, ok := m.structSize("led_trigger")
	if !ok {
		return 0, nil
	}
	name, err := m.ReadCString(t.Arg(0), 64)
	if err != nil {
		return 0, err
	}
	trig := m.kmalloc(size, t.caller(), gfpZero)
	if trig != 0 {
		m.setField("led_trigger", "name", trig, 8, t.Arg(0))
		if m.registered("led-trigger", 0, name) >= 0 {
			m.logf(levelWarning, "LED trigger %s failed to register (%d)", name, -int(syscall.EEXIST))
			if err := m.kfree(trig, t.caller()); err != nil {
				return 0, err
			}
			trig = 0
		} else {
			m.record(t, "led-trigger", name, trig, nil)
		}
	}
	return 0, m.WriteU64(t.Arg(1), trig)
}

func hLedTriggerUnregisterSimple(m *Machine, t *Trap) (uint64, error) {
	if !m.unrecord("led-trigger", t.Arg(0)) {
		return 0, nil
	}
	return 0, m.kfree(t.Arg(0), t.caller())
}

var serioBus = &busDriver{"serio", "serio_driver", "driver", "", "", 0, 1, nil}

// bus_for_each_drv(bus, start, data, fn): fn(drv, data) for each driver registered on bus, in
// registration order, until one returns non-zero, which is returned.
func hBusForEachDrv(m *Machine, t *Trap) (uint64, error) {
	bus, fn := t.Arg(0), t.Arg(3)
	var drivers []uint64
	for _, r := range m.drivers().regs {
		if b, err := m.readField("device_driver", "bus", r.addr, 8); err == nil && b == bus && bus != 0 && isDriverKind(r.Kind) {
			drivers = append(drivers, r.addr)
		}
	}
	if start := t.Arg(1); start != 0 {
		for i, d := range drivers {
			if d == start {
				drivers = drivers[i+1:]
				break
			}
		}
	}
	for _, drv := range drivers {
		ret, err := m.Call(fn, drv, t.Arg(2))
		if err != nil || int32(ret) != 0 {
			return uint64(int64(int32(ret))), err
		}
	}
	return 0, nil
}

// isDriverKind reports whether a registration is a struct device_driver (kinds that name a bus).
func isDriverKind(kind string) bool {
	switch kind {
	case "pci", "platform", "i2c", "usb", "spi", "hid", "serio", "driver":
		return true
	}
	return false
}

// cn_add_callback(id, name, callback): a connector callback keyed by its cb_id {idx, val}.
func hCnAddCallback(m *Machine, t *Trap) (uint64, error) {
	id, err := m.ReadU64(t.Arg(0))
	if err != nil {
		return 0, err
	}
	name, err := m.ReadCString(t.Arg(1), 64)
	if err != nil {
		return 0, err
	}
	if m.registered("connector", id, "") >= 0 {
		return negErrno(syscall.EINVAL), nil
	}
	m.record(t, "connector", name, id, []string{fmt.Sprintf("%d:%d", uint32(id), uint32(id>>32))})
	return 0, nil
}

func hCnDelCallback(m *Machine, t *Trap) (uint64, error) {
	id, err := m.ReadU64(t.Arg(0))
	if err != nil {
		return 0, err
	}
	m.unrecord("connector", id)
	return 0, nil
}

// hKobjectCreate is kset_create_and_add(name, uevent_ops, parent) / kobject_create_and_add(name,
// parent): a zeroed object named with a copy of name; NULL when memory runs out.
func hKobjectCreate(kind, structName string) Handler {
	return func(m *Machine, t *Trap) (uint64, error) {
		size, ok := m.structSize(structName)
		if !ok {
			return 0, nil
		}
		name, err := m.ReadCString(t.Arg(0), 256)
		if err != nil {
			return 0, err
		}
		obj := m.kmalloc(size+uint64(len(name))+1, t.caller(), gfpZero)
		if obj == 0 {
			return 0, nil
		}
		if err := m.WriteAt(append([]byte(name), 0), obj+size); err != nil {
			return 0, err
		}
		field := "name"
		if structName == "kset" {
			field = "kobj.name"
		}
		m.setField(structName, field, obj, 8, obj+size)
		m.record(t, kind, name, obj, nil)
		return obj, nil
	}
}

func hKobjectRelease(kind string) Handler {
	return func(m *Machine, t *Trap) (uint64, error) {
		if !m.unrecord(kind, t.Arg(0)) {
			return 0, nil
		}
		return 0, m.kfree(t.Arg(0), t.caller())
	}
}

// CPU hotplug states: the machine has one CPU, 0, which is online.
type cpuhpState struct{ startup, teardown uint64 }

// __cpuhp_setup_state(state, name, invoke, startup, teardown, multi_instance): a dynamic state
// (CPUHP_AP_ONLINE_DYN, CPUHP_BP_PREPARE_DYN) is allocated and returned, a fixed one gives 0;
// with invoke the startup callback runs for CPU 0 and its failure is returned.
func hCpuhpSetupState(m *Machine, t *Trap) (uint64, error) {
	state := int64(int32(t.Arg(0)))
	name, err := m.ReadCString(t.Arg(1), 64)
	if err != nil {
		return 0, err
	}
	startup, teardown := t.Arg(3), t.Arg(4)
	ret := uint64(0)
	if first, last, ok := m.dynamicCpuhpRange(state); ok {
		for state = first; state <= last && m.registered("cpuhp", uint64(state), "") >= 0; state++ {
		}
		if state > last {
			return negErrno(syscall.ENOSPC), nil
		}
		ret = uint64(state)
	} else if m.registered("cpuhp", uint64(state), "") >= 0 {
		return negErrno(syscall.EBUSY), nil
	}
	if t.Arg(2)&0xff != 0 && startup != 0 && t.Arg(5)&0xff == 0 {
		r, err := m.Call(startup, 0)
		if err != nil {
			return 0, err
		}
		if int32(r) < 0 {
			return uint64(int64(int32(r))), nil
		}
	}
	m.record(t, "cpuhp", name, uint64(state), []string{fmt.Sprintf("state=%d", state)})
	m.drivers().cpuhp()[uint64(state)] = cpuhpState{startup, teardown}
	return ret, nil
}

// dynamicCpuhpRange is the range of states a dynamic request allocates from, by the cpuhp_state
// enumerators in the kernel's BTF.
func (m *Machine) dynamicCpuhpRange(state int64) (first, last int64, ok bool) {
	e, err := m.prof.Enum("cpuhp_state")
	if err != nil {
		return 0, 0, false
	}
	for _, dyn := range []string{"CPUHP_AP_ONLINE_DYN", "CPUHP_BP_PREPARE_DYN"} {
		v, ok1 := e.Value(dyn)
		end, ok2 := e.Value(dyn + "_END")
		if ok1 && ok2 && state == v {
			return v, end - 1, true
		}
	}
	return 0, 0, false
}

// __cpuhp_remove_state(state, invoke): with invoke the teardown callback runs for CPU 0.
func hCpuhpRemoveState(m *Machine, t *Trap) (uint64, error) {
	state := uint64(int64(int32(t.Arg(0))))
	d := m.drivers()
	st, ok := d.cpuhp()[state]
	if !ok {
		return 0, nil
	}
	delete(d.cpuhpStates, state)
	m.unrecord("cpuhp", state)
	if t.Arg(1)&0xff != 0 && st.teardown != 0 {
		if _, err := m.Call(st.teardown, 0); err != nil {
			return 0, err
		}
	}
	return 0, nil
}

func (d *driverTable) cpuhp() map[uint64]cpuhpState {
	if d.cpuhpStates == nil {
		d.cpuhpStates = map[uint64]cpuhpState{}
	}
	return d.cpuhpStates
}

// Scatterlist page_link flags (include/linux/scatterlist.h).
const sgEnd = 0x2

// sg_init_table(sgl, nents): zeroed entries, the last marked as the end.
func hSgInitTable(m *Machine, t *Trap) (uint64, error) {
	return 0, m.sgInitTable(t.Arg(0), t.Arg(1))
}

func (m *Machine) sgInitTable(sgl, nents uint64) error {
	size, ok := m.structSize("scatterlist")
	if !ok || nents == 0 || nents > 1<<16 {
		return nil
	}
	if err := m.Fill(sgl, 0, size*nents); err != nil {
		return err
	}
	m.setField("scatterlist", "page_link", sgl+size*(nents-1), 8, sgEnd)
	return nil
}

// sg_init_one(sg, buf, buflen): a one-entry table describing buf: its struct page (as
// virt_to_page computes it, from the direct map), offset in the page and length.
func hSgInitOne(m *Machine, t *Trap) (uint64, error) {
	sg, buf := t.Arg(0), t.Arg(1)
	if err := m.sgInitTable(sg, 1); err != nil {
		return 0, err
	}
	m.setField("scatterlist", "page_link", sg, 8, m.virtToPage(buf)|sgEnd)
	m.setField("scatterlist", "offset", sg, 4, buf%pageSize)
	m.setField("scatterlist", "length", sg, 4, uint64(uint32(t.Arg(2))))
	return 0, nil
}

// virtToPage is virt_to_page(): the struct page in vmemmap for a direct-map address. Other
// addresses get what the kernel's __pa() arithmetic gives them (for the kernel image, its
// physical load address is 0 here), which is as wrong as in the kernel.
func (m *Machine) virtToPage(va uint64) uint64 {
	pageStruct, ok := m.structSize("page")
	if !ok {
		pageStruct = 64
	}
	pa, ok := m.mem.DirectMapPA(va)
	if !ok {
		if va >= mmu.StartKernelMap {
			pa = va - mmu.StartKernelMap
		} else {
			pa = va - m.layout.directMap
		}
	}
	return m.layout.vmemmapBase + pa/pageSize*pageStruct
}
