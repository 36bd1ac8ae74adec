package machine

import (
	"fmt"
	"slices"
	"strings"
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

	for name, c := range notifierChains {
		register(name, hNotifierRegister(c.nbArg))
		register(c.unregister, hNotifierUnregister(c.nbArg))
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
	// kobjects, ksets and sysfs groups and files are in vfs_kobj.go.
	register("__cpuhp_setup_state", hCpuhpSetupState)
	register("__cpuhp_setup_state_cpuslocked", hCpuhpSetupState)
	register("__cpuhp_remove_state", hCpuhpRemoveState)
	register("__cpuhp_remove_state_cpuslocked", hCpuhpRemoveState)
	register("sg_init_table", hSgInitTable)
	register("sg_init_one", hSgInitOne)
	register("__alloc_percpu", hAllocPercpu)
	register("__alloc_percpu_gfp", hAllocPercpu)
	register("free_percpu", hNop) // the per-CPU area is not reused, as for modules' static per-CPU data
	register("driver_create_file", hSysfsCreate("driver-attr", "attribute", "name", 1))
	register("driver_remove_file", hSysfsRemove("driver-attr", 1))
	// rtnetlink message handlers: no netlink socket ever delivers a message here.
	register("__rtnl_register_many", hZero)
	register("__rtnl_unregister_many", hNop)
	register("rtnl_register_module", hZero)
	register("rtnl_unregister", hZero)
	register("rtnl_unregister_all", hNop)
	register("register_pernet_subsys", hRegisterPernet)
	register("register_pernet_device", hRegisterPernet)
	register("unregister_pernet_subsys", hUnregisterPernet)
	register("unregister_pernet_device", hUnregisterPernet)
	// phylib hands ethtool its PHY operations; ethtool only calls them for a netlink request.
	register("ethtool_set_ethtool_phy_ops", hNop)
	register("tasklet_setup", hTaskletInit(true))
	register("tasklet_init", hTaskletInit(false))
	register("tasklet_kill", hNop) // kemu never schedules a tasklet behind the module's back
	register("strsep", hStrsep)
	register("driver_attach", hZero)    // no device on any bus for the driver to bind
	register("i2c_for_each_dev", hZero) // no I2C adapters or clients
	register("zlib_inflate_workspacesize", hStructSize("inflate_workspace"))
	register("x86_match_cpu", hX86MatchCPU)
	register("si_meminfo", hSiMeminfo)
	register("zpool_register_driver", hNamedRegister("zpool", "zpool_driver", "type"))
	register("zpool_unregister_driver", hNamedUnregister("zpool", 0))
	register("genl_register_family", hGenlRegisterFamily)
	register("genl_unregister_family", hGenlUnregisterFamily)
	register("__netlink_kernel_create", hNetlinkKernelCreate)
	register("netlink_kernel_release", hNetlinkKernelRelease)
	register("dmi_check_system", hDmiMatch(false))
	register("dmi_first_match", hDmiMatch(true))
}

// notifierChains are the notifier register functions, their unregister functions and which
// argument is the notifier_block. Where the first argument is the chain itself, the record names the
// chain by its kernel symbol.
var notifierChains = map[string]struct {
	unregister string
	nbArg      int
}{
	"register_netdevice_notifier":          {"unregister_netdevice_notifier", 0},
	"register_reboot_notifier":             {"unregister_reboot_notifier", 0},
	"register_inetaddr_notifier":           {"unregister_inetaddr_notifier", 0},
	"register_inet6addr_notifier":          {"unregister_inet6addr_notifier", 0},
	"register_netevent_notifier":           {"unregister_netevent_notifier", 0},
	"register_switchdev_notifier":          {"unregister_switchdev_notifier", 0},
	"register_switchdev_blocking_notifier": {"unregister_switchdev_blocking_notifier", 0},
	"register_die_notifier":                {"unregister_die_notifier", 0},
	"register_oom_notifier":                {"unregister_oom_notifier", 0},
	"register_nexthop_notifier":            {"unregister_nexthop_notifier", 1},
	"bus_register_notifier":                {"bus_unregister_notifier", 1},
	"blocking_notifier_chain_register":     {"blocking_notifier_chain_unregister", 1},
	"atomic_notifier_chain_register":       {"atomic_notifier_chain_unregister", 1},
	"raw_notifier_chain_register":          {"raw_notifier_chain_unregister", 1},
}

// hNotifierRegister records a notifier_block on its chain; one already there is EEXIST, as
// notifier_chain_register warns and refuses it.
func hNotifierRegister(nbArg int) Handler {
	return func(m *Machine, t *Trap) (uint64, error) {
		nb, chain := t.Arg(nbArg), t.Name
		if nbArg == 1 {
			if name, off, _, _, ok := m.symbolize(t.Arg(0)); ok && off == 0 {
				chain = name
			}
		}
		if m.registered("notifier", nb, "") >= 0 {
			m.logf(levelWarning, "notifier callback %s already registered", m.formatS(nb))
			return negErrno(syscall.EEXIST), nil
		}
		m.record(t, "notifier", chain, nb, nil)
		return 0, nil
	}
}

// hNotifierUnregister: ENOENT for a block not on the chain (notifier_chain_unregister).
func hNotifierUnregister(nbArg int) Handler {
	return func(m *Machine, t *Trap) (uint64, error) {
		if !m.unrecord("notifier", t.Arg(nbArg)) {
			return negErrno(syscall.ENOENT), nil
		}
		return 0, nil
	}
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
		if !r.driver || bus == 0 {
			continue
		}
		if b, err := m.readField("device_driver", "bus", r.addr, 8); err == nil && b == bus {
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

// __alloc_percpu(size, align) and __alloc_percpu_gfp(size, align, gfp): zeroed per-CPU memory
// from the chunk modules' per-CPU data comes from; the pointer is an offset from the per-CPU base,
// as the kernel's per-CPU pointers are. NULL when the chunk is full or the request is bad.
func hAllocPercpu(m *Machine, t *Trap) (uint64, error) {
	size, align := t.Arg(0), t.Arg(1)
	if size == 0 || size > modulePerCPU || align == 0 || align&(align-1) != 0 || align > pageSize {
		return 0, nil
	}
	k := m.kernel
	off := (k.percpuNext + align - 1) &^ (align - 1)
	if off+size > k.percpuEnd {
		return 0, nil
	}
	k.percpuNext = off + size
	return off, m.Fill(m.percpu+off, 0, size)
}

// hSysfsCreate records a sysfs file or group created on an object (argument obj is its name-bearing
// structure: struct attribute or attribute_group); kemu has no sysfs tree for drivers, so the record
// is what the machine keeps, and what a module that forgets to remove it leaves behind.
func hSysfsCreate(kind, structName, field string, arg int) Handler {
	return func(m *Machine, t *Trap) (uint64, error) {
		name, err := m.readPtrString(structName, field, t.Arg(arg))
		if err != nil {
			return 0, err
		}
		m.record(t, kind, name, t.Arg(arg), nil)
		return 0, nil
	}
}

func hSysfsRemove(kind string, arg int) Handler {
	return func(m *Machine, t *Trap) (uint64, error) {
		m.unrecord(kind, t.Arg(arg))
		return 0, nil
	}
}

// Network namespaces: only init_net exists. A pernet_operations with an id and a size gets an id
// (from MIN_PERNET_OPS_ID, the first net_generic slot after its header) and zeroed data in
// init_net's net_generic array, which net_generic(net, id) reads inline; then ops->init(&init_net).
const maxPernetIDs = 64

func hRegisterPernet(m *Machine, t *Trap) (uint64, error) {
	ops := t.Arg(0)
	net, ok := m.prof.Lookup("init_net")
	if !ok {
		return 0, nil
	}
	if err := m.initNetLists(net.Addr); err != nil {
		return 0, err
	}
	const s = "pernet_operations"
	read := func(f string) (uint64, error) { return m.readField(s, f, ops, 8) }
	idPtr, err := read("id")
	if err != nil {
		return 0, err
	}
	size, err := m.readField(s, "size", ops, 8)
	if err != nil {
		return 0, err
	}
	var data uint64
	if idPtr != 0 {
		gen, id, err := m.pernetSlot(t, net.Addr)
		if err != nil || gen == 0 {
			return negErrno(syscall.ENOMEM), err
		}
		if err := m.WriteU32(idPtr, uint32(id)); err != nil {
			return 0, err
		}
		if size != 0 {
			if data = m.kmalloc(size, t.caller(), gfpZero); data == 0 {
				return negErrno(syscall.ENOMEM), nil
			}
			if err := m.WriteU64(gen+8*id, data); err != nil {
				return 0, err
			}
		}
	}
	if init, err := read("init"); err == nil && init != 0 {
		ret, err := m.Call(init, net.Addr)
		if err != nil {
			return 0, err
		}
		if int32(ret) < 0 {
			return uint64(int64(int32(ret))), firstErr(nil, m.kfree(data, t.caller()))
		}
	}
	m.record(t, "pernet", m.describe(ops), ops, nil)
	return 0, nil
}

// pernetSlot returns init_net's net_generic array (allocating it on first use) and the next free
// id in it.
func (m *Machine) pernetSlot(t *Trap, net uint64) (gen, id uint64, err error) {
	hdr, ok := m.structSize("net_generic")
	if !ok {
		return 0, 0, nil
	}
	first := (hdr + 7) / 8 // MIN_PERNET_OPS_ID
	gen, err = m.readField("net", "gen", net, 8)
	if err != nil {
		return 0, 0, err
	}
	if gen == 0 {
		if gen = m.kmalloc(8*(first+maxPernetIDs), t.caller(), gfpZero); gen == 0 {
			return 0, 0, nil
		}
		if err := m.WriteU32(gen, uint32(first+maxPernetIDs)); err != nil { // s.len
			return 0, 0, err
		}
		m.setField("net", "gen", net, 8, gen)
	}
	d := m.drivers()
	if d.pernetIDs >= maxPernetIDs {
		return 0, 0, nil
	}
	id = first + d.pernetIDs
	d.pernetIDs++
	return gen, id, nil
}

// unregister_pernet_subsys(ops): ops->pre_exit, ->exit and ->exit_batch for init_net, then the
// data goes (the id is not reused).
func hUnregisterPernet(m *Machine, t *Trap) (uint64, error) {
	ops := t.Arg(0)
	net, ok := m.prof.Lookup("init_net")
	if !ok || !m.unrecord("pernet", ops) {
		return 0, nil
	}
	const s = "pernet_operations"
	for _, f := range []string{"pre_exit", "exit"} {
		if fn, err := m.readField(s, f, ops, 8); err == nil && fn != 0 {
			if _, err := m.Call(fn, net.Addr); err != nil {
				return 0, err
			}
		}
	}
	if fn, err := m.readField(s, "exit_batch", ops, 8); err == nil && fn != 0 {
		// exit_batch gets a list of namespaces linked through net->exit_list: init_net alone.
		head, err := m.emptyListHead(t)
		if err != nil {
			return 0, err
		}
		if off, ok := m.fieldOffset("net", "exit_list"); ok {
			node := net.Addr + off
			for _, w := range [][2]uint64{{head, node}, {head + 8, node}, {node, head}, {node + 8, head}} {
				if err := m.WriteU64(w[0], w[1]); err != nil {
					return 0, err
				}
			}
		}
		_, err = m.Call(fn, head)
		if err := firstErr(err, m.kfree(head, t.caller())); err != nil {
			return 0, err
		}
	}
	idPtr, err := m.readField(s, "id", ops, 8)
	if err != nil || idPtr == 0 {
		return 0, err
	}
	id, err := m.ReadU32(idPtr)
	if err != nil {
		return 0, err
	}
	gen, err := m.readField("net", "gen", net.Addr, 8)
	if err != nil || gen == 0 {
		return 0, err
	}
	data, err := m.ReadU64(gen + 8*uint64(id))
	if err != nil || data == 0 {
		return 0, err
	}
	if err := m.WriteU64(gen+8*uint64(id), 0); err != nil {
		return 0, err
	}
	return 0, m.kfree(data, t.caller())
}

// initNetLists makes init_net's device list an empty list the first time a module may walk it
// (for_each_netdev): the kernel image's data is zero, and kemu links no device into it.
func (m *Machine) initNetLists(net uint64) error {
	if err := m.linkNetNamespaceList(net); err != nil {
		return err
	}
	off, ok := m.fieldOffset("net", "dev_base_head")
	if !ok {
		return nil
	}
	head := net + off
	next, err := m.ReadU64(head)
	if err != nil || next != 0 {
		return err
	}
	if err := m.WriteU64(head, head); err != nil {
		return err
	}
	return m.WriteU64(head+8, head)
}

// IDR and IDA (lib/idr.c): integer ids mapped to pointers. The machine keeps each idr's entries by
// the idr's address; the radix tree inside struct idr stays empty, so inline helpers that peek at
// it (idr_is_empty) see an empty tree.
const idMax = 1<<31 - 1 // INT_MAX

type idTable map[uint32]uint64 // id -> pointer (1 for an IDA's allocated ids)

func (d *driverTable) ids(idr uint64) idTable {
	if d.idrs == nil {
		d.idrs = map[uint64]idTable{}
	}
	if d.idrs[idr] == nil {
		d.idrs[idr] = idTable{}
	}
	return d.idrs[idr]
}

// lowestFree is the smallest id in [from, to] not in use, or false.
func (ids idTable) lowestFree(from, to uint64) (uint32, bool) {
	for id := from; id <= to; id++ {
		if _, used := ids[uint32(id)]; !used {
			return uint32(id), true
		}
	}
	return 0, false
}

func init() {
	register("idr_alloc", hIdrAlloc)
	register("idr_alloc_cyclic", hIdrAlloc)
	register("idr_find", hIdrFind)
	register("idr_remove", hIdrRemove)
	register("idr_replace", hIdrReplace)
	register("idr_for_each", hIdrForEach)
	register("idr_get_next", hIdrGetNext)
	register("idr_destroy", hIdrDestroy)
	register("idr_preload", hNop)
	register("ida_alloc_range", hIdaAllocRange)
	register("ida_free", hIdaFree)
	register("ida_destroy", hIdrDestroy)
}

// idr_alloc(idr, ptr, start, end, gfp): the lowest free id in [start, end) (end <= 0: no limit)
// and not below the idr's base,
// EINVAL for a negative start, ENOSPC when the range is full. idr_alloc_cyclic continues after the
// last id it handed out, wrapping to start.
func hIdrAlloc(m *Machine, t *Trap) (uint64, error) {
	start, end := int64(int32(t.Arg(2))), int64(int32(t.Arg(3)))
	if start < 0 {
		return negErrno(syscall.EINVAL), nil
	}
	last := uint64(idMax)
	if end > 0 {
		last = uint64(end - 1)
	}
	base, err := m.readField("idr", "idr_base", t.Arg(0), 4) // idr_init_base()
	if err != nil {
		return 0, err
	}
	d := m.drivers()
	ids := d.ids(t.Arg(0))
	from := max(uint64(start), base)
	if t.Name == "idr_alloc_cyclic" {
		from = max(from, d.idrNext[t.Arg(0)])
	}
	id, ok := ids.lowestFree(from, last)
	if !ok && from > uint64(start) {
		id, ok = ids.lowestFree(uint64(start), last)
	}
	if !ok {
		return negErrno(syscall.ENOSPC), nil
	}
	ids[id] = t.Arg(1)
	if t.Name == "idr_alloc_cyclic" {
		if d.idrNext == nil {
			d.idrNext = map[uint64]uint64{}
		}
		d.idrNext[t.Arg(0)] = uint64(id) + 1
	}
	return uint64(id), nil
}

func hIdrFind(m *Machine, t *Trap) (uint64, error) {
	return m.drivers().ids(t.Arg(0))[uint32(t.Arg(1))], nil
}

// idr_remove(idr, id): the pointer that was stored, NULL if none.
func hIdrRemove(m *Machine, t *Trap) (uint64, error) {
	ids := m.drivers().ids(t.Arg(0))
	p := ids[uint32(t.Arg(1))]
	delete(ids, uint32(t.Arg(1)))
	return p, nil
}

// idr_replace(idr, ptr, id): the old pointer, or ERR_PTR(-ENOENT) for an id not allocated.
func hIdrReplace(m *Machine, t *Trap) (uint64, error) {
	ids := m.drivers().ids(t.Arg(0))
	old, ok := ids[uint32(t.Arg(2))]
	if !ok {
		return negErrno(syscall.ENOENT), nil
	}
	ids[uint32(t.Arg(2))] = t.Arg(1)
	return old, nil
}

// sorted lists the ids in order.
func (ids idTable) sorted() []uint32 {
	out := make([]uint32, 0, len(ids))
	for id := range ids {
		out = append(out, id)
	}
	slices.Sort(out)
	return out
}

// idr_for_each(idr, fn, data): fn(id, ptr, data) in id order until one returns non-zero.
func hIdrForEach(m *Machine, t *Trap) (uint64, error) {
	ids := m.drivers().ids(t.Arg(0))
	for _, id := range ids.sorted() {
		p, ok := ids[id]
		if !ok {
			continue // fn removed it
		}
		ret, err := m.Call(t.Arg(1), uint64(id), p, t.Arg(2))
		if err != nil || int32(ret) != 0 {
			return uint64(int64(int32(ret))), err
		}
	}
	return 0, nil
}

// idr_get_next(idr, &id): the entry at the lowest id >= *id, storing that id; NULL at the end.
func hIdrGetNext(m *Machine, t *Trap) (uint64, error) {
	from, err := m.ReadU32(t.Arg(1))
	if err != nil {
		return 0, err
	}
	ids := m.drivers().ids(t.Arg(0))
	for _, id := range ids.sorted() {
		if id >= from {
			return ids[id], m.WriteU32(t.Arg(1), id)
		}
	}
	return 0, nil
}

func hIdrDestroy(m *Machine, t *Trap) (uint64, error) {
	d := m.drivers()
	delete(d.idrs, t.Arg(0))
	delete(d.idrNext, t.Arg(0))
	return 0, nil
}

// ida_alloc_range(ida, min, max, gfp): the lowest free id in [min, max]; EINVAL for a bad range,
// ENOSPC when it is full.
func hIdaAllocRange(m *Machine, t *Trap) (uint64, error) {
	lo, hi := int64(int32(t.Arg(1))), int64(int32(t.Arg(2)))
	if lo < 0 || hi < 0 || lo > hi {
		return negErrno(syscall.EINVAL), nil
	}
	ids := m.drivers().ids(t.Arg(0))
	id, ok := ids.lowestFree(uint64(lo), uint64(hi))
	if !ok {
		return negErrno(syscall.ENOSPC), nil
	}
	ids[id] = 1
	return uint64(id), nil
}

// ida_free(ida, id): freeing an id not allocated is the kernel's "ida_free called for id=%d which
// is not allocated." warning.
func hIdaFree(m *Machine, t *Trap) (uint64, error) {
	ids := m.drivers().ids(t.Arg(0))
	id := uint32(t.Arg(1))
	if _, ok := ids[id]; !ok {
		m.logf(levelWarning, "ida_free called for id=%d which is not allocated.", int32(id))
		return 0, nil
	}
	delete(ids, id)
	return 0, nil
}

// tasklet_setup(t, callback) / tasklet_init(t, func, data): an idle, enabled tasklet.
func hTaskletInit(callback bool) Handler {
	return func(m *Machine, t *Trap) (uint64, error) {
		const s = "tasklet_struct"
		tl := t.Arg(0)
		for _, f := range []string{"next", "state", "data"} {
			m.setField(s, f, tl, 8, 0)
		}
		m.setField(s, "count", tl, 4, 0)
		if callback {
			m.setField(s, "callback", tl, 8, t.Arg(1))
			return 0, m.setFieldN(s, "use_callback", tl, 1, 1)
		}
		m.setField(s, "func", tl, 8, t.Arg(1))
		m.setField(s, "data", tl, 8, t.Arg(2))
		return 0, m.setFieldN(s, "use_callback", tl, 1, 0)
	}
}

// strsep(&s, delim): the token at *s, ending it at the first delimiter with a NUL and moving *s
// past it (NULL when there was none); NULL when *s is NULL.
func hStrsep(m *Machine, t *Trap) (uint64, error) {
	start, err := m.ReadU64(t.Arg(0))
	if err != nil || start == 0 {
		return 0, err
	}
	delim, err := m.ReadCString(t.Arg(1), maxString)
	if err != nil {
		return 0, err
	}
	str, err := m.ReadCString(start, maxString)
	if err != nil {
		return 0, err
	}
	next := uint64(0)
	if i := strings.IndexAny(str, delim); i >= 0 && delim != "" {
		if err := m.WriteAt([]byte{0}, start+uint64(i)); err != nil {
			return 0, err
		}
		next = start + uint64(i) + 1
	}
	return start, m.WriteU64(t.Arg(0), next)
}

// dmiStrings is the machine's SMBIOS identity, QEMU's i440FX PC with SeaBIOS as in DefaultHardware,
// by dmi_field enumerator; fields not listed are absent.
var dmiStrings = map[string]string{
	"DMI_BIOS_VENDOR":    "SeaBIOS",
	"DMI_BIOS_VERSION":   "1.16.2-debian-1.16.2-1",
	"DMI_BIOS_DATE":      "04/01/2014",
	"DMI_SYS_VENDOR":     "QEMU",
	"DMI_PRODUCT_NAME":   "Standard PC (i440FX + PIIX, 1996)",
	"DMI_CHASSIS_VENDOR": "QEMU",
}

// dmiField is the machine's string for a dmi_field slot number.
func (m *Machine) dmiField(slot uint64) (string, bool) {
	e, err := m.prof.Enum("dmi_field")
	if err != nil {
		return "", false
	}
	for _, v := range e.Values {
		if uint64(v.Value) == slot {
			s, ok := dmiStrings[v.Name]
			return s, ok
		}
	}
	return "", false
}

// hDmiMatch is dmi_check_system(list) (the number of matching entries, each one's callback run
// until one returns non-zero) and dmi_first_match(list) (the first matching entry or NULL). An
// entry matches when each of its up to four conditions (slot, exact flag, string) holds; the list
// ends at an entry whose first slot is DMI_NONE (0).
func hDmiMatch(first bool) Handler {
	return func(m *Machine, t *Trap) (uint64, error) {
		const s = "dmi_system_id"
		size, ok := m.structSize(s)
		matchesOff, ok2 := m.fieldOffset(s, "matches")
		matchSize, ok3 := m.structSize("dmi_strmatch")
		if !ok || !ok2 || !ok3 {
			return 0, nil
		}
		count := uint64(0)
		for i := uint64(0); i < maxTableEntries; i++ {
			entry := t.Arg(0) + i*size
			matched, end, err := m.dmiEntryMatches(entry+matchesOff, matchSize)
			if err != nil || end {
				return count, err
			}
			if !matched {
				continue
			}
			if first {
				return entry, nil
			}
			count++
			if cb, err := m.readField(s, "callback", entry, 8); err == nil && cb != 0 {
				ret, err := m.Call(cb, entry)
				if err != nil {
					return 0, err
				}
				if int32(ret) != 0 {
					break
				}
			}
		}
		if first {
			return 0, nil
		}
		return count, nil
	}
}

// dmiEntryMatches checks one dmi_system_id's matches[4]; end reports the list's terminator.
func (m *Machine) dmiEntryMatches(matches, matchSize uint64) (matched, end bool, err error) {
	for j := uint64(0); j < 4; j++ {
		b, err := m.Read(matches+j*matchSize, matchSize)
		if err != nil {
			return false, false, err
		}
		slot, exact := uint64(b[0]&0x7f), b[0]&0x80 != 0 // slot:7, exact_match:1
		if slot == 0 {
			return j > 0, j == 0, nil
		}
		want := string(b[1:])
		if i := strings.IndexByte(want, 0); i >= 0 {
			want = want[:i]
		}
		have, ok := m.dmiField(slot)
		if !ok || exact && have != want || !exact && !strings.Contains(have, want) {
			return false, false, nil
		}
	}
	return true, false, nil
}

// hStructSize returns a handler for a function whose answer is sizeof(struct name).
func hStructSize(name string) Handler {
	return func(m *Machine, t *Trap) (uint64, error) {
		size, _ := m.structSize(name)
		return size, nil
	}
}

// x86_match_cpu(match): the first x86_cpu_id entry the boot CPU (the machine's CPUInfo, which
// boot_cpu_data holds) satisfies, or NULL. Wildcards: vendor X86_VENDOR_ANY (0xffff), family,
// model, steppings and feature 0. The table ends at an entry with vendor, family, model and
// feature all zero.
func hX86MatchCPU(m *Machine, t *Trap) (uint64, error) {
	const s = "x86_cpu_id"
	size, ok := m.structSize(s)
	if !ok {
		return 0, nil
	}
	c := &m.cpuInfo
	for i := uint64(0); i < maxTableEntries; i++ {
		e := t.Arg(0) + i*size
		var id [5]uint64 // vendor, family, model, steppings, feature
		for j, f := range []string{"vendor", "family", "model", "steppings", "feature"} {
			v, err := m.readField(s, f, e, 2)
			if err != nil {
				return 0, err
			}
			id[j] = v
		}
		if id[0]|id[1]|id[2]|id[4] == 0 {
			return 0, nil
		}
		if id[0] != 0xffff && id[0] != uint64(c.Vendor) || id[1] != 0 && id[1] != uint64(c.Family) ||
			id[2] != 0 && id[2] != uint64(c.Model) || id[3] != 0 && id[3]&(1<<c.Stepping) == 0 {
			continue
		}
		if id[4] != 0 && !c.Features.Has(Feature(id[4])) {
			continue
		}
		return e, nil
	}
	return 0, nil
}

// Generic netlink family ids (include/uapi/linux/genetlink.h, net/netlink/genetlink.c): the first
// three after NLMSG_MIN_TYPE are fixed, the rest allocated up to GENL_MAX_ID. kemu boots without
// the kernel's own families, so a module's family gets the first free id.
const (
	genlIDVfsDquot   = 0x11
	genlIDPmcraid    = 0x12
	genlStartAlloc   = 0x13
	genlMaxID        = 1023
	genlFamilyNameSz = 16 // GENL_NAMSIZ
)

// genl_register_family(family): EEXIST for a name already registered; the family's id is written
// back ("pmcraid" and "VFS_DQUOT" have fixed ones).
func hGenlRegisterFamily(m *Machine, t *Trap) (uint64, error) {
	const s = "genl_family"
	fam := t.Arg(0)
	name, err := m.readArrayString(s, "name", fam, genlFamilyNameSz)
	if err != nil {
		return 0, err
	}
	if m.registered("genl", fam, name) >= 0 {
		return negErrno(syscall.EEXIST), nil
	}
	id := uint64(0)
	switch name {
	case "pmcraid":
		id = genlIDPmcraid
	case "VFS_DQUOT":
		id = genlIDVfsDquot
	default:
		used := map[string]bool{}
		for _, r := range m.drivers().regs {
			if r.Kind == "genl" && len(r.IDs) > 0 {
				used[r.IDs[0]] = true
			}
		}
		for id = genlStartAlloc; id <= genlMaxID && used[fmt.Sprintf("id=%d", id)]; id++ {
		}
		if id > genlMaxID {
			return negErrno(syscall.ENOSPC), nil
		}
	}
	m.setField(s, "id", fam, 4, id)
	m.record(t, "genl", name, fam, []string{fmt.Sprintf("id=%d", id)})
	return 0, nil
}

// genl_unregister_family(family): ENOENT for one not registered.
func hGenlUnregisterFamily(m *Machine, t *Trap) (uint64, error) {
	if !m.unrecord("genl", t.Arg(0)) {
		return negErrno(syscall.ENOENT), nil
	}
	return 0, nil
}

// __netlink_kernel_create(net, unit, module, cfg): the kernel side socket of a netlink protocol,
// a zeroed struct netlink_sock; nothing ever sends on it here.
func hNetlinkKernelCreate(m *Machine, t *Trap) (uint64, error) {
	size, ok := m.structSize("netlink_sock")
	if !ok {
		return 0, nil
	}
	unit := int64(int32(t.Arg(1)))
	if unit < 0 || unit >= 32 { // MAX_LINKS
		return 0, nil
	}
	if m.registered("netlink", 0, fmt.Sprintf("unit %d", unit)) >= 0 {
		return 0, nil // the protocol has its kernel socket already
	}
	sk := m.kmalloc(size, t.caller(), gfpZero)
	if sk != 0 {
		m.record(t, "netlink", fmt.Sprintf("unit %d", unit), sk, nil)
	}
	return sk, nil
}

func hNetlinkKernelRelease(m *Machine, t *Trap) (uint64, error) {
	if !m.unrecord("netlink", t.Arg(0)) {
		return 0, nil
	}
	return 0, m.kfree(t.Arg(0), t.caller())
}

// si_meminfo(&info): RAM totals in pages (mem_unit PAGE_SIZE) from the machine's frame allocator;
// no high memory on x86-64, and no page cache or shared memory to count.
func hSiMeminfo(m *Machine, t *Trap) (uint64, error) {
	st := m.mem.Frames.Stats()
	info := t.Arg(0)
	for _, f := range []struct {
		name string
		v    uint64
	}{{"totalram", st.Frames}, {"freeram", st.Free}, {"sharedram", 0}, {"bufferram", 0}, {"totalhigh", 0}, {"freehigh", 0}} {
		if err := m.setFieldN("sysinfo", f.name, info, 8, f.v); err != nil {
			return 0, err
		}
	}
	return 0, m.setFieldN("sysinfo", "mem_unit", info, 4, pageSize)
}
