package machine

import "syscall"

// Shrinkers (mm/vmscan.c): a cache hands the kernel callbacks to count and free its objects under
// memory pressure. kemu never runs short of memory in a way that reclaims, so a registered
// shrinker is never called; what registration does to the shrinker itself is done as the kernel
// does it (Debian 6.1 has no CONFIG_SHRINKER_DEBUG, so the name is not kept): a memcg-aware one
// gets an id in the shrinker idr, any other a zeroed nr_deferred counter (one per node when
// NUMA-aware, with one node here), and the SHRINKER_REGISTERED flag marks it for
// unregister_shrinker, which undoes it all and ignores a shrinker that was never registered.

func init() {
	register("register_shrinker", hRegisterShrinker)
	register("unregister_shrinker", hUnregisterShrinker)
}

const (
	shrinkerRegistered  = 1 << 0
	shrinkerMemcgAware  = 1 << 2
	shrinkerKind        = "shrinker"
	shrinkerIDRegistrar = "shrinker_idr"
)

// register_shrinker(shrinker, fmt, ...): 0, or ENOMEM.
func hRegisterShrinker(m *Machine, t *Trap) (uint64, error) {
	s := t.Arg(0)
	flags, err := m.readField("shrinker", "flags", s, 4)
	if err != nil {
		return 0, err
	}
	name, err := m.format(t.Arg(1), t.VarArgs(2))
	if err != nil {
		return 0, err
	}
	if flags&shrinkerMemcgAware != 0 {
		ids := m.drivers().ids(m.shrinkerIDR())
		id := uint32(0)
		for ids[id] != 0 {
			id++
		}
		ids[id] = s
		m.setField("shrinker", "id", s, 4, uint64(id))
	} else {
		deferred := m.kmalloc(8, t.caller(), gfpZero)
		if deferred == 0 {
			return negErrno(syscall.ENOMEM), nil
		}
		m.setField("shrinker", "nr_deferred", s, 8, deferred)
	}
	m.setField("shrinker", "flags", s, 4, flags|shrinkerRegistered)
	m.record(t, shrinkerKind, string(name), s, nil)
	return 0, nil
}

// unregister_shrinker(shrinker).
func hUnregisterShrinker(m *Machine, t *Trap) (uint64, error) {
	s := t.Arg(0)
	flags, err := m.readField("shrinker", "flags", s, 4)
	if err != nil || flags&shrinkerRegistered == 0 {
		return 0, err
	}
	m.unrecord(shrinkerKind, s)
	m.setField("shrinker", "flags", s, 4, flags&^shrinkerRegistered)
	if flags&shrinkerMemcgAware != 0 {
		id, err := m.readField("shrinker", "id", s, 4)
		if err != nil {
			return 0, err
		}
		delete(m.drivers().ids(m.shrinkerIDR()), uint32(id))
	}
	deferred, err := m.readField("shrinker", "nr_deferred", s, 8)
	if err != nil {
		return 0, err
	}
	m.setField("shrinker", "nr_deferred", s, 8, 0)
	return 0, m.kfree(deferred, t.caller())
}

// shrinkerIDR is the kernel's shrinker_idr, the key of the memcg-aware shrinkers' ids.
func (m *Machine) shrinkerIDR() uint64 {
	if s, ok := m.prof.Lookup(shrinkerIDRegistrar); ok {
		return s.Addr
	}
	return 0
}
