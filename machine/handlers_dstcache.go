package machine

import "syscall"

// Route caches of tunnels (net/core/dst_cache.c): dst_cache_init gives a struct dst_cache its
// per-CPU slots (zeroed: no cached route) and stamps the reset time; dst_cache_destroy releases
// the routes the slots hold and frees them. Routes only enter a slot through dst_cache_set_*,
// which kemu does not emulate (no packet is ever routed), so a slot that holds one at destroy is
// reported rather than released.

func init() {
	register("dst_cache_init", hDstCacheInit)
	register("dst_cache_destroy", hDstCacheDestroy)
}

// dst_cache_init(dst_cache, gfp): 0, or ENOMEM without per-CPU memory.
func hDstCacheInit(m *Machine, t *Trap) (uint64, error) {
	size, ok := m.structSize("dst_cache_pcpu")
	if !ok {
		return negErrno(syscall.ENOMEM), nil
	}
	alloc := *t
	alloc.Name = "__alloc_percpu_gfp"
	alloc.regs = [6]uint64{size, 8, t.Arg(1) | gfpZero}
	cache, err := hAllocPercpu(m, &alloc)
	if err != nil || cache == 0 {
		return negErrno(syscall.ENOMEM), err
	}
	m.setField("dst_cache", "cache", t.Arg(0), 8, cache)
	m.setField("dst_cache", "reset_ts", t.Arg(0), 8, m.kernel.clock.jiffies())
	return 0, nil
}

// dst_cache_destroy(dst_cache): nothing for a cache never initialised.
func hDstCacheDestroy(m *Machine, t *Trap) (uint64, error) {
	cache, err := m.readField("dst_cache", "cache", t.Arg(0), 8)
	if err != nil || cache == 0 {
		return 0, err
	}
	// One possible CPU: its slot is the per-CPU offset from CPU 0's area.
	if dst, err := m.readField("dst_cache_pcpu", "dst", m.percpu+cache, 8); err == nil && dst != 0 {
		m.logf(levelWarning, "kemu: %s: dst_cache holds a route that kemu cannot release", m.describe(t.Return))
	}
	return 0, nil // free_percpu: the per-CPU area is not reused
}
