package printk

import "strings"

// DevPrefix is the text __dev_printk() puts before a dev_err()/dev_info()
// message: "<driver> <device>: " for a device (the driver string falls back
// to the bus or class name, or "", as dev_driver_string() does; the caller
// passes whichever applies), or "(NULL device *): " without one.
func DevPrefix(hasDevice bool, driver, device string) string {
	if !hasDevice {
		return "(NULL device *): "
	}
	return driver + " " + device + ": "
}

// DevMessage returns how a dev_printk of level with formatted message text
// reaches Log.Store: with a device, the level is passed in and the record is
// ended (dev_printk_emit); without one, it is a plain printk with the
// KERN_<level> prefix in the text.
func DevMessage(level int, hasDevice bool, driver, device string, text []byte, timeNS uint64, caller uint32) (Message, []byte) {
	prefix := DevPrefix(hasDevice, driver, device)
	if hasDevice {
		return devEmit(level, prefix, text, timeNS, caller)
	}
	return printkAt(level, prefix, text, timeNS, caller)
}

// devEmit is dev_printk_emit(): the level is given, and the record ends.
func devEmit(level int, prefix string, text []byte, timeNS uint64, caller uint32) (Message, []byte) {
	m := Message{TimeNS: timeNS, Level: level, Dev: true, Caller: caller}
	return m, append([]byte(prefix), text...)
}

// printkAt is printk("%s<prefix>%pV", KERN_<level>, ...).
func printkAt(level int, prefix string, text []byte, timeNS uint64, caller uint32) (Message, []byte) {
	line := append([]byte{kernSOH, byte('0' + level&7)}, prefix...)
	return Message{TimeNS: timeNS, Level: LevelDefault, Caller: caller}, append(line, text...)
}

// Registration states of a struct net_device (NETREG_*).
const (
	NetregUninitialized = iota
	NetregRegistered
	NetregUnregistering
	NetregUnregistered
	NetregReleased
	NetregDummy
)

// NetDevice is what netdev_printk() reads of a struct net_device.
type NetDevice struct {
	Name     string // dev->name
	RegState int    // dev->reg_state
	// Parent is set when dev->dev.parent is: the parent device's driver
	// string and name (see DevPrefix).
	Parent                   bool
	ParentDriver, ParentName string
}

// netdevName is netdev_name(): an unset or still templated ("eth%d") name
// prints as "(unnamed net_device)".
func netdevName(dev *NetDevice) string {
	if dev.Name == "" || strings.Contains(dev.Name, "%") {
		return "(unnamed net_device)"
	}
	return dev.Name
}

// netdevRegState is netdev_reg_state(): a suffix for devices that are not
// registered.
func netdevRegState(dev *NetDevice) string {
	switch dev.RegState {
	case NetregUninitialized:
		return " (uninitialized)"
	case NetregRegistered:
		return ""
	case NetregUnregistering:
		return " (unregistering)"
	case NetregUnregistered:
		return " (unregistered)"
	case NetregReleased:
		return " (released)"
	case NetregDummy:
		return " (dummy)"
	}
	return " (unknown)"
}

// NetdevMessage is __netdev_printk(): how netdev_err()/netdev_info() with
// formatted message text reach Log.Store. With a parent device it is a
// dev_printk_emit of "<driver> <device> <netdev>: "; without one, a printk
// of "<netdev>: "; for a NULL dev, "(NULL net_device): ".
func NetdevMessage(level int, dev *NetDevice, text []byte, timeNS uint64, caller uint32) (Message, []byte) {
	switch {
	case dev == nil:
		return printkAt(level, "(NULL net_device): ", text, timeNS, caller)
	case dev.Parent:
		prefix := dev.ParentDriver + " " + dev.ParentName + " " + netdevName(dev) + netdevRegState(dev) + ": "
		return devEmit(level, prefix, text, timeNS, caller)
	}
	return printkAt(level, netdevName(dev)+netdevRegState(dev)+": ", text, timeNS, caller)
}
