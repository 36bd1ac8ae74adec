package printk

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
		m := Message{TimeNS: timeNS, Level: level, Dev: true, Caller: caller}
		return m, append([]byte(prefix), text...)
	}
	line := append([]byte{kernSOH, byte('0' + level&7)}, prefix...)
	return Message{TimeNS: timeNS, Level: LevelDefault, Caller: caller}, append(line, text...)
}
