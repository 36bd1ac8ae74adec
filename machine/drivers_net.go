package machine

import (
	"fmt"
	"strings"
	"syscall"
)

// Network and input devices (net/core/dev.c, net/ethernet/eth.c, drivers/input/input.c). These are
// real objects modules write into: the machine allocates them with their BTF sizes (a net_device
// with its private area and transmit queues), runs the module's setup and ndo_init/ndo_uninit
// callbacks where the kernel does, hands out interface names and indexes, and records each
// registered device.

const (
	netdevAlign   = 32 // NETDEV_ALIGN: netdev_priv() is dev + ALIGN(sizeof(struct net_device), 32)
	ifNameSize    = 16 // IFNAMSIZ
	maxAddrLen    = 32 // MAX_ADDR_LEN
	arphrdEther   = 1  // ARPHRD_ETHER
	ethHeaderLen  = 14 // ETH_HLEN
	ethAddrLen    = 6  // ETH_ALEN
	ethDataLen    = 1500
	ethMinMTU     = 68
	ethTxQueueLen = 1000 // DEFAULT_TX_QUEUE_LEN
	iffBroadcast  = 0x2
	iffMulticast  = 0x1000
)

func init() {
	register("alloc_netdev_mqs", hAllocNetdev)
	register("alloc_etherdev_mqs", hAllocEtherdev)
	register("ether_setup", hEtherSetup)
	register("dev_addr_mod", hDevAddrMod)
	register("free_netdev", hFreeNetdev)
	register("register_netdev", hRegisterNetdev)
	register("register_netdevice", hRegisterNetdev)
	register("unregister_netdev", hUnregisterNetdev)
	register("unregister_netdevice_queue", hUnregisterNetdev)
	// unregister_netdevice_queue unregisters at once rather than batching on the caller's list,
	// so the batch is already done.
	register("unregister_netdevice_many", hNop)
	register("rtnl_link_register", hNamedRegister("rtnl-link", "rtnl_link_ops", "kind"))
	register("__rtnl_link_register", hNamedRegister("rtnl-link", "rtnl_link_ops", "kind"))
	register("rtnl_link_unregister", hRtnlLinkUnregister)
	register("__rtnl_link_unregister", hRtnlLinkUnregister)
	register("input_allocate_device", hInputAllocate)
	register("devm_input_allocate_device", hInputAllocate)
	register("input_register_device", hInputRegister)
	register("input_unregister_device", hInputUnregister)
	register("input_free_device", hInputFree)
}

// setFieldN stores the low size bytes of v into a field, when the layout is known.
func (m *Machine) setFieldN(structName, field string, addr uint64, size int, v uint64) error {
	off, ok := m.fieldOffset(structName, field)
	if !ok {
		return nil
	}
	b := make([]byte, size)
	for i := range b {
		b[i] = byte(v >> (8 * i))
	}
	return m.WriteAt(b, addr+off)
}

// allocNetdev is alloc_netdev_mqs: the device, its private area and txqs transmit queues (each
// pointing back at the device), name copied in, then the module's setup(dev). NULL on failure.
func (m *Machine) allocNetdev(t *Trap, priv uint64, name string, setup, txqs, rxqs uint64) (uint64, error) {
	const s = "net_device"
	size, ok := m.structSize(s)
	if !ok {
		return 0, nil
	}
	if txqs < 1 || rxqs < 1 {
		m.logf(levelErr, "alloc_netdev: Unable to allocate device with zero queues")
		return 0, nil
	}
	if txqs > 4096 || rxqs > 4096 || priv > 1<<24 {
		return 0, nil
	}
	dev := m.kmalloc((size+netdevAlign-1)&^(netdevAlign-1)+priv, t.caller(), gfpZero)
	if dev == 0 {
		return 0, nil
	}
	nd := &netdev{base: dev}
	if qsize, ok := m.structSize("netdev_queue"); ok {
		tx := m.kmalloc(qsize*txqs, t.caller(), gfpZero)
		if tx == 0 {
			return 0, m.kfree(dev, t.caller())
		}
		nd.queues = append(nd.queues, tx)
		for i := uint64(0); i < txqs; i++ {
			m.setField("netdev_queue", "dev", tx+i*qsize, 8, dev)
		}
		m.setField(s, "_tx", dev, 8, tx)
	}
	m.setField(s, "num_tx_queues", dev, 4, txqs)
	m.setField(s, "real_num_tx_queues", dev, 4, txqs)
	m.setField(s, "num_rx_queues", dev, 4, rxqs)
	m.setField(s, "real_num_rx_queues", dev, 4, rxqs)
	if net, ok := m.prof.Lookup("init_net"); ok {
		m.setField(s, "nd_net.net", dev, 8, net.Addr)
	}
	if off, ok := m.fieldOffset(s, "name"); ok {
		b := make([]byte, ifNameSize)
		copy(b[:ifNameSize-1], name)
		if err := m.WriteAt(b, dev+off); err != nil {
			return 0, err
		}
	}
	// dev->dev_addr points at the first entry of the device's address list (dev_addr_init).
	if addr := m.kmalloc(maxAddrLen, t.caller(), gfpZero); addr != 0 {
		nd.queues = append(nd.queues, addr)
		m.setField(s, "dev_addr", dev, 8, addr)
	}
	m.drivers().netdevs[dev] = nd
	if setup != 0 {
		if _, err := m.Call(setup, dev); err != nil {
			return 0, err
		}
	}
	return dev, nil
}

// alloc_netdev_mqs(sizeof_priv, name, name_assign_type, setup, txqs, rxqs).
func hAllocNetdev(m *Machine, t *Trap) (uint64, error) {
	name, err := m.ReadCString(t.Arg(1), ifNameSize)
	if err != nil {
		return 0, err
	}
	return m.allocNetdev(t, uint64(uint32(t.Arg(0))), name, t.Arg(3), uint64(uint32(t.Arg(4))), uint64(uint32(t.Arg(5))))
}

// alloc_etherdev_mqs(sizeof_priv, txqs, rxqs): "eth%d" set up by ether_setup.
func hAllocEtherdev(m *Machine, t *Trap) (uint64, error) {
	dev, err := m.allocNetdev(t, uint64(uint32(t.Arg(0))), "eth%d", 0, uint64(uint32(t.Arg(1))), uint64(uint32(t.Arg(2))))
	if err != nil || dev == 0 {
		return dev, err
	}
	return dev, m.etherSetup(dev)
}

func hEtherSetup(m *Machine, t *Trap) (uint64, error) { return 0, m.etherSetup(t.Arg(0)) }

// etherSetup is ether_setup(): the Ethernet defaults a driver builds on.
func (m *Machine) etherSetup(dev uint64) error {
	const s = "net_device"
	for _, f := range []struct {
		name string
		size int
		v    uint64
	}{
		{"type", 2, arphrdEther}, {"hard_header_len", 2, ethHeaderLen}, {"min_header_len", 1, ethHeaderLen},
		{"mtu", 4, ethDataLen}, {"min_mtu", 4, ethMinMTU}, {"max_mtu", 4, ethDataLen},
		{"addr_len", 1, ethAddrLen}, {"tx_queue_len", 4, ethTxQueueLen},
		{"flags", 4, iffBroadcast | iffMulticast},
	} {
		if err := m.setFieldN(s, f.name, dev, f.size, f.v); err != nil {
			return err
		}
	}
	if off, ok := m.fieldOffset(s, "broadcast"); ok {
		return m.WriteAt([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, dev+off)
	}
	return nil
}

// dev_addr_mod(dev, offset, addr, len): the hardware address changes, in dev->dev_addr and in
// the shadow copy the kernel checks it against.
func hDevAddrMod(m *Machine, t *Trap) (uint64, error) {
	dev, off, n := t.Arg(0), t.Arg(1), t.Arg(3)
	if off+n > maxAddrLen {
		return 0, nil
	}
	b, err := m.Read(t.Arg(2), n)
	if err != nil {
		return 0, err
	}
	if addr, err := m.readField("net_device", "dev_addr", dev, 8); err == nil && addr != 0 {
		if err := m.WriteAt(b, addr+off); err != nil {
			return 0, err
		}
	}
	if shadow, ok := m.fieldOffset("net_device", "dev_addr_shadow"); ok {
		return 0, m.WriteAt(b, dev+shadow+off)
	}
	return 0, nil
}

// netdevName reads dev->name.
func (m *Machine) netdevName(dev uint64) (string, error) {
	return m.readArrayString("net_device", "name", dev, ifNameSize)
}

// register_netdev(dev) and register_netdevice(dev): a name with a %d is given the lowest free
// number (dev_alloc_name), a taken name is EEXIST, ndo_init runs, and the device gets the next
// interface index.
func hRegisterNetdev(m *Machine, t *Trap) (uint64, error) {
	const s = "net_device"
	dev := t.Arg(0)
	name, err := m.netdevName(dev)
	if err != nil {
		return 0, err
	}
	if m.registered("net", dev, "") >= 0 {
		return negErrno(syscall.EEXIST), nil
	}
	if strings.Count(name, "%") == 1 && strings.Contains(name, "%d") {
		pattern := name
		for i := 0; ; i++ {
			if i >= 32768 {
				return negErrno(syscall.ENFILE), nil
			}
			name = fmt.Sprintf(pattern, i)
			if m.registered("net", 0, name) < 0 {
				break
			}
		}
		if off, ok := m.fieldOffset(s, "name"); ok {
			b := make([]byte, ifNameSize)
			copy(b[:ifNameSize-1], name)
			if err := m.WriteAt(b, dev+off); err != nil {
				return 0, err
			}
		}
	} else if name == "" || strings.Contains(name, "%") || strings.ContainsAny(name, "/: \t\n") {
		return negErrno(syscall.EINVAL), nil
	} else if m.registered("net", 0, name) >= 0 {
		return negErrno(syscall.EEXIST), nil
	}
	if ops, err := m.readField(s, "netdev_ops", dev, 8); err == nil && ops != 0 {
		if init, err := m.readField("net_device_ops", "ndo_init", ops, 8); err == nil && init != 0 {
			ret, err := m.Call(init, dev)
			if err != nil {
				return 0, err
			}
			if int32(ret) < 0 {
				return uint64(int64(int32(ret))), nil
			}
		}
	}
	d := m.drivers()
	d.ifindex++
	m.setField(s, "ifindex", dev, 4, d.ifindex)
	m.record(t, "net", name, dev, nil)
	return 0, nil
}

// unregister_netdev(dev) and unregister_netdevice_queue(dev, head): ndo_uninit runs, and a device
// that asked for it (needs_free_netdev) has its priv_destructor run and is freed.
func hUnregisterNetdev(m *Machine, t *Trap) (uint64, error) {
	const s = "net_device"
	dev := t.Arg(0)
	if !m.unrecord("net", dev) {
		m.logf(levelErr, "unregister_netdevice: device %#x/%#x never was registered", dev, dev)
		return 0, nil
	}
	if ops, err := m.readField(s, "netdev_ops", dev, 8); err == nil && ops != 0 {
		if uninit, err := m.readField("net_device_ops", "ndo_uninit", ops, 8); err == nil && uninit != 0 {
			if _, err := m.Call(uninit, dev); err != nil {
				return 0, err
			}
		}
	}
	free, err := m.readField(s, "needs_free_netdev", dev, 1)
	if err != nil || free == 0 {
		return 0, err
	}
	if destructor, err := m.readField(s, "priv_destructor", dev, 8); err == nil && destructor != 0 {
		if _, err := m.Call(destructor, dev); err != nil {
			return 0, err
		}
	}
	return 0, m.freeNetdev(t, dev)
}

func hFreeNetdev(m *Machine, t *Trap) (uint64, error) { return 0, m.freeNetdev(t, t.Arg(0)) }

// freeNetdev frees a device alloc_netdev made, queues included; one still registered is left
// alone, as the kernel only drops a reference then.
func (m *Machine) freeNetdev(t *Trap, dev uint64) error {
	d := m.drivers()
	nd, ok := d.netdevs[dev]
	if !ok || m.registered("net", dev, "") >= 0 {
		return nil
	}
	delete(d.netdevs, dev)
	for _, q := range nd.queues {
		if err := m.kfree(q, t.caller()); err != nil {
			return err
		}
	}
	return m.kfree(nd.base, t.caller())
}

// input_allocate_device() and devm_input_allocate_device(dev): a zeroed struct input_dev.
func hInputAllocate(m *Machine, t *Trap) (uint64, error) {
	size, ok := m.structSize("input_dev")
	if !ok {
		return 0, nil
	}
	dev := m.kmalloc(size, t.caller(), gfpZero)
	if dev != 0 {
		m.drivers().inputs()[dev] = true
	}
	return dev, nil
}

// inputs is the set of input_devs the machine allocated.
func (d *driverTable) inputs() map[uint64]bool {
	if d.inputDevs == nil {
		d.inputDevs = map[uint64]bool{}
	}
	return d.inputDevs
}

// input_register_device(dev): "input: NAME as /devices/virtual/input/inputN" and the record.
func hInputRegister(m *Machine, t *Trap) (uint64, error) {
	dev := t.Arg(0)
	if m.registered("input", dev, "") >= 0 {
		return negErrno(syscall.EINVAL), nil
	}
	name, err := m.readPtrString("input_dev", "name", dev)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, r := range m.drivers().regs {
		if r.Kind == "input" {
			n++
		}
	}
	shown := name
	if shown == "" {
		shown = "Unspecified device"
	}
	m.logf(levelInfo, "input: %s as /devices/virtual/input/input%d", shown, n)
	m.record(t, "input", name, dev, nil)
	return 0, nil
}

// input_unregister_device(dev): the device goes, and with it the last reference: one the machine
// allocated is freed.
func hInputUnregister(m *Machine, t *Trap) (uint64, error) {
	if !m.unrecord("input", t.Arg(0)) {
		return 0, nil
	}
	return hInputFree(m, t)
}

// input_free_device(dev): for a device never registered (or NULL).
func hInputFree(m *Machine, t *Trap) (uint64, error) {
	d := m.drivers()
	if dev := t.Arg(0); d.inputs()[dev] && m.registered("input", dev, "") < 0 {
		delete(d.inputDevs, dev)
		return 0, m.kfree(dev, t.caller())
	}
	return 0, nil
}

// rtnl_link_unregister(ops): the link kind goes, and with it every device of that kind: each is
// deleted through ops->dellink (which queues it on a kill list) or, without one, unregistered.
func hRtnlLinkUnregister(m *Machine, t *Trap) (uint64, error) {
	ops := t.Arg(0)
	if !m.unrecord("rtnl-link", ops) {
		return 0, nil
	}
	dellink, err := m.readField("rtnl_link_ops", "dellink", ops, 8)
	if err != nil {
		return 0, err
	}
	var devs []uint64
	for _, r := range m.drivers().regs {
		if r.Kind != "net" {
			continue
		}
		if o, err := m.readField("net_device", "rtnl_link_ops", r.addr, 8); err == nil && o == ops {
			devs = append(devs, r.addr)
		}
	}
	for _, dev := range devs {
		sub := &Trap{Name: t.Name, Addr: t.Addr, Return: t.Return, rsp: t.rsp, m: m, regs: [6]uint64{dev}}
		if dellink == 0 {
			if _, err := hUnregisterNetdev(m, sub); err != nil {
				return 0, err
			}
			continue
		}
		kill, err := m.emptyListHead(t)
		if err != nil {
			return 0, err
		}
		_, err = m.Call(dellink, dev, kill)
		if err := firstErr(err, m.kfree(kill, t.caller())); err != nil {
			return 0, err
		}
	}
	return 0, nil
}

// emptyListHead allocates an initialised, empty struct list_head (next and prev point at itself).
func (m *Machine) emptyListHead(t *Trap) (uint64, error) {
	head := m.kmalloc(16, t.caller(), gfpZero)
	if head == 0 {
		return 0, fmt.Errorf("list head: %w", syscall.ENOMEM)
	}
	if err := m.WriteU64(head, head); err != nil {
		return 0, err
	}
	return head, m.WriteU64(head+8, head)
}
