package machine

// class_unregister (drivers/base/class.c) unregisters the class's kset; with no device left
// holding it, that drops the last reference, and class_release calls the class's own
// class_release(cls). Drivers rely on it: pcmcia_core's exit waits on a completion that its
// class_release completes, so an unregistration that skipped the callback would hang rmmod.

func init() {
	register("class_unregister", hClassUnregister)
}

func hClassUnregister(m *Machine, t *Trap) (uint64, error) {
	cls := t.Arg(0)
	if !m.unrecord("class", cls) {
		return 0, nil // never registered: no kset, nothing to release
	}
	release, err := m.readField("class", "class_release", cls, 8)
	if err != nil || release == 0 {
		return 0, err
	}
	_, err = m.Call(release, cls)
	return 0, err
}
