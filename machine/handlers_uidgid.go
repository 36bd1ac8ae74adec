package machine

// User and group ids across namespaces (kernel/user_namespace.c). kemu has one user namespace,
// init_user_ns, whose uid and gid maps are the identity over 0..4294967294: make_kuid/make_kgid
// and from_kuid/from_kgid return the id itself, and (uid_t)-1, which no map covers, stays the
// invalid id. The _munged variants turn an unmapped id into the overflow id (65534) instead, as
// they would for a namespace that cannot see it.

func init() {
	register("make_kuid", hIdentityID)
	register("make_kgid", hIdentityID)
	register("from_kuid", hIdentityID)
	register("from_kgid", hIdentityID)
	register("from_kuid_munged", hIdentityIDMunged)
	register("from_kgid_munged", hIdentityIDMunged)
}

const (
	invalidID  = 0xffffffff // INVALID_UID, INVALID_GID
	overflowID = 65534      // overflowuid, overflowgid
)

// (ns, id): the id through init_user_ns's identity map.
func hIdentityID(m *Machine, t *Trap) (uint64, error) {
	return uint64(uint32(t.Arg(1))), nil
}

func hIdentityIDMunged(m *Machine, t *Trap) (uint64, error) {
	if id := uint32(t.Arg(1)); id != invalidID {
		return uint64(id), nil
	}
	return overflowID, nil
}
