package machine

// Attributes of a /proc entry (fs/proc/generic.c) and the network stack's grace period:
// proc_set_size and proc_set_user store what stat(2) on the entry reports (pde->size, pde->uid,
// pde->gid); synchronize_net is synchronize_rcu for the network stack, which waits for RCU readers
// that kemu's one task cannot have in flight while it calls it (synchronize_rcu's handler is a
// no-op for the same reason).

func init() {
	register("proc_set_size", hProcSetSize)
	register("proc_set_user", hProcSetUser)
	register("synchronize_net", hNop)
}

// proc_set_size(de, size).
func hProcSetSize(m *Machine, t *Trap) (uint64, error) {
	m.setField("proc_dir_entry", "size", t.Arg(0), 8, t.Arg(1))
	return 0, nil
}

// proc_set_user(de, uid, gid): kuid_t and kgid_t are 32 bits.
func hProcSetUser(m *Machine, t *Trap) (uint64, error) {
	m.setField("proc_dir_entry", "uid", t.Arg(0), 4, uint64(uint32(t.Arg(1))))
	m.setField("proc_dir_entry", "gid", t.Arg(0), 4, uint64(uint32(t.Arg(2))))
	return 0, nil
}
