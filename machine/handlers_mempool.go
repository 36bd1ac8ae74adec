package machine

import "syscall"

// Memory pools (mm/mempool.c): a reserve of min_nr elements, taken from the pool's own allocator
// when it is created, that mempool_alloc falls back on when the allocator fails and that
// mempool_free refills first. The allocator and free functions are usually the kernel's
// mempool_alloc_slab/mempool_free_slab or mempool_kmalloc/mempool_kfree, which are emulated here
// like any kernel function the pool calls; a module's own functions run as guest code.

func init() {
	register("mempool_create", hMempoolCreate)
	register("mempool_create_node", hMempoolCreate)
	register("mempool_init", hMempoolInit)
	register("mempool_init_node", hMempoolInit)
	register("mempool_alloc", hMempoolAlloc)
	register("mempool_free", hMempoolFree)
	register("mempool_destroy", hMempoolDestroy)
	register("mempool_exit", hMempoolExit)
	register("mempool_alloc_slab", func(m *Machine, t *Trap) (uint64, error) { // (gfp, cache)
		return hKmemCacheAlloc(m, t.withArgs(t.Arg(1), t.Arg(0)))
	})
	register("mempool_free_slab", func(m *Machine, t *Trap) (uint64, error) { // (element, cache)
		return hKmemCacheFree(m, t.withArgs(t.Arg(1), t.Arg(0)))
	})
	register("mempool_kmalloc", func(m *Machine, t *Trap) (uint64, error) { // (gfp, size)
		return m.kmalloc(t.Arg(1), t.caller(), t.Arg(0)), nil
	})
	register("mempool_kfree", hKfree) // (element, size)
}

// withArgs is the same call with other arguments, for a handler that is another function with its
// arguments rearranged.
func (t *Trap) withArgs(args ...uint64) *Trap {
	c := *t
	c.regs = [6]uint64{}
	copy(c.regs[:], args)
	return &c
}

// mempool is the machine's side of a mempool_t: its callbacks and reserve.
type mempool struct {
	allocFn, freeFn, data uint64
	minNr                 uint64
	reserve               []uint64
	allocated             bool // mempool_create allocated the mempool_t itself
}

const gfpKernel = 0xcc0 // GFP_KERNEL

func (d *driverTable) pools() map[uint64]*mempool {
	if d.mempools == nil {
		d.mempools = map[uint64]*mempool{}
	}
	return d.mempools
}

// mempool_create(min_nr, alloc_fn, free_fn, pool_data[, gfp, node]): a pool with min_nr elements in
// reserve, or NULL when they cannot all be allocated.
func hMempoolCreate(m *Machine, t *Trap) (uint64, error) {
	size, ok := m.structSize("mempool_s")
	if !ok {
		return 0, nil
	}
	pool := m.kmalloc(size, t.caller(), gfpZero)
	if pool == 0 {
		return 0, nil
	}
	ret, err := m.mempoolInit(t, pool, t.Arg(0), t.Arg(1), t.Arg(2), t.Arg(3))
	if err != nil || ret != 0 {
		return 0, firstErr(err, m.kfree(pool, t.caller()))
	}
	m.drivers().pools()[pool].allocated = true
	return pool, nil
}

// mempool_init(pool, min_nr, alloc_fn, free_fn, pool_data[, gfp, node]): 0 or -ENOMEM.
func hMempoolInit(m *Machine, t *Trap) (uint64, error) {
	return m.mempoolInit(t, t.Arg(0), t.Arg(1), t.Arg(2), t.Arg(3), t.Arg(4))
}

func (m *Machine) mempoolInit(t *Trap, pool, minNr, allocFn, freeFn, data uint64) (uint64, error) {
	minNr = uint64(uint32(minNr))
	if minNr > 1<<16 {
		return negErrno(syscall.ENOMEM), nil
	}
	p := &mempool{allocFn: allocFn, freeFn: freeFn, data: data, minNr: minNr}
	const s = "mempool_s"
	m.setField(s, "min_nr", pool, 4, minNr)
	m.setField(s, "pool_data", pool, 8, data)
	m.setField(s, "alloc", pool, 8, allocFn)
	m.setField(s, "free", pool, 8, freeFn)
	for uint64(len(p.reserve)) < minNr {
		e, err := m.Call(allocFn, gfpKernel, data)
		if err != nil {
			return 0, err
		}
		if e == 0 {
			return negErrno(syscall.ENOMEM), m.drainPool(p)
		}
		p.reserve = append(p.reserve, e)
	}
	m.setField(s, "curr_nr", pool, 4, uint64(len(p.reserve)))
	m.drivers().pools()[pool] = p
	return 0, nil
}

// drainPool gives the reserve back to the pool's free function.
func (m *Machine) drainPool(p *mempool) error {
	for len(p.reserve) > 0 {
		e := p.reserve[len(p.reserve)-1]
		p.reserve = p.reserve[:len(p.reserve)-1]
		if _, err := m.Call(p.freeFn, e, p.data); err != nil {
			return err
		}
	}
	return nil
}

// mempool_alloc(pool, gfp): from the allocator, else from the reserve; NULL when both are empty
// (the kernel would wait for a free when the caller may sleep; nothing else runs to free one).
func hMempoolAlloc(m *Machine, t *Trap) (uint64, error) {
	p, ok := m.drivers().pools()[t.Arg(0)]
	if !ok {
		return 0, nil
	}
	e, err := m.Call(p.allocFn, t.Arg(1), p.data)
	if err != nil || e != 0 {
		return e, err
	}
	if n := len(p.reserve); n > 0 {
		e = p.reserve[n-1]
		p.reserve = p.reserve[:n-1]
		m.setField("mempool_s", "curr_nr", t.Arg(0), 4, uint64(len(p.reserve)))
	}
	return e, nil
}

// mempool_free(element, pool): refills the reserve first, else frees.
func hMempoolFree(m *Machine, t *Trap) (uint64, error) {
	e := t.Arg(0)
	p, ok := m.drivers().pools()[t.Arg(1)]
	if !ok || e == 0 {
		return 0, nil
	}
	if uint64(len(p.reserve)) < p.minNr {
		p.reserve = append(p.reserve, e)
		m.setField("mempool_s", "curr_nr", t.Arg(1), 4, uint64(len(p.reserve)))
		return 0, nil
	}
	_, err := m.Call(p.freeFn, e, p.data)
	return 0, err
}

// mempool_exit(pool): the reserve goes back to the allocator.
func hMempoolExit(m *Machine, t *Trap) (uint64, error) {
	d := m.drivers()
	p, ok := d.pools()[t.Arg(0)]
	if !ok {
		return 0, nil
	}
	delete(d.mempools, t.Arg(0))
	return 0, m.drainPool(p)
}

// mempool_destroy(pool): mempool_exit, then the pool itself; NULL is ignored.
func hMempoolDestroy(m *Machine, t *Trap) (uint64, error) {
	p, ok := m.drivers().pools()[t.Arg(0)]
	if !ok {
		return 0, nil
	}
	if _, err := hMempoolExit(m, t); err != nil {
		return 0, err
	}
	if p.allocated {
		return 0, m.kfree(t.Arg(0), t.caller())
	}
	return 0, nil
}
