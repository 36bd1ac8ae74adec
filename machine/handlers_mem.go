package machine

import "fmt"

// Memory allocation: kmalloc and friends over the kernel heap, vmalloc over the vmalloc area, and
// kmem_cache objects. Allocation failure returns NULL as the kernel does; freeing a pointer the
// kernel never handed out is a kernel BUG.

const gfpZero = 0x100 // ___GFP_ZERO

func init() {
	register("kmalloc_trace", hKmallocTrace)
	register("__kmalloc", hKmalloc)
	register("__kmalloc_node", hKmalloc)
	register("kmalloc_large", hKmalloc)
	register("kfree", hKfree)
	register("kvfree", hKfree)
	register("kfree_sensitive", hKfree)
	register("krealloc", hKrealloc)
	register("kmemdup", hKmemdup)
	register("kstrdup", hKstrdup)
	register("kstrndup", hKstrndup)
	register("kvmalloc_node", hKmalloc)
	register("devm_kmalloc", hDevmKmalloc)
	register("vmalloc", hVmalloc)
	register("vzalloc", hVmalloc)
	register("vfree", hVfree)
	register("kmem_cache_create", hKmemCacheCreate)
	register("kmem_cache_create_usercopy", hKmemCacheCreate)
	register("kmem_cache_alloc", hKmemCacheAlloc)
	register("kmem_cache_free", hKmemCacheFree)
	register("kmem_cache_destroy", hKmemCacheDestroy)
	register("ksize", hKsize)
}

// kmalloc allocates size bytes of kernel heap; 0 (NULL) when the heap is exhausted.
func (m *Machine) kmalloc(size uint64) uint64 {
	if size == 0 {
		return 16 // ZERO_SIZE_PTR
	}
	p, err := m.kernel.heap.alloc(size)
	if err != nil {
		return 0
	}
	return p
}

// kfree frees what kmalloc returned; NULL and ZERO_SIZE_PTR are ignored as the kernel does.
func (m *Machine) kfree(p uint64) error {
	if p <= 16 {
		return nil
	}
	if err := m.kernel.heap.free(p); err != nil {
		return &kernelBug{file: "mm/slub.c", line: 4357, msg: fmt.Sprintf("kfree: invalid or double free of %#x", p)}
	}
	return nil
}

func hKmallocTrace(m *Machine, t *Trap) (uint64, error) { return m.kmalloc(t.Arg(2)), nil }
func hKmalloc(m *Machine, t *Trap) (uint64, error)      { return m.kmalloc(t.Arg(0)), nil }
func hKfree(m *Machine, t *Trap) (uint64, error)        { return 0, m.kfree(t.Arg(0)) }

// devm_kmalloc(dev, size, gfp): the device-managed allocation lives until the device goes away,
// which in kemu is never before the machine ends.
func hDevmKmalloc(m *Machine, t *Trap) (uint64, error) { return m.kmalloc(t.Arg(1)), nil }

func hKsize(m *Machine, t *Trap) (uint64, error) {
	s, _ := m.kernel.heap.sizeOf(t.Arg(0))
	return s, nil
}

// krealloc(p, new_size, gfp).
func hKrealloc(m *Machine, t *Trap) (uint64, error) {
	p, size := t.Arg(0), t.Arg(1)
	if size == 0 {
		return 16, m.kfree(p)
	}
	q := m.kmalloc(size)
	if q == 0 || p <= 16 {
		return q, nil
	}
	old, ok := m.kernel.heap.sizeOf(p)
	if !ok {
		return 0, &kernelBug{file: "mm/slab_common.c", line: 1383, msg: fmt.Sprintf("krealloc: invalid pointer %#x", p)}
	}
	b, err := m.Read(p, min(old, size))
	if err != nil {
		return 0, err
	}
	if err := m.WriteAt(b, q); err != nil {
		return 0, err
	}
	return q, m.kfree(p)
}

// kmemdup(src, len, gfp).
func hKmemdup(m *Machine, t *Trap) (uint64, error) {
	b, err := m.Read(t.Arg(0), t.Arg(1))
	if err != nil {
		return 0, err
	}
	return m.kmallocBytes(b)
}

func (m *Machine) kmallocBytes(b []byte) (uint64, error) {
	q := m.kmalloc(uint64(len(b)))
	if q == 0 {
		return 0, nil
	}
	return q, m.WriteAt(b, q)
}

// kstrdup(s, gfp): NULL in, NULL out.
func hKstrdup(m *Machine, t *Trap) (uint64, error) {
	if t.Arg(0) == 0 {
		return 0, nil
	}
	s, err := m.ReadCString(t.Arg(0), 1<<20)
	if err != nil {
		return 0, err
	}
	return m.kmallocBytes(append([]byte(s), 0))
}

// kstrndup(s, max, gfp).
func hKstrndup(m *Machine, t *Trap) (uint64, error) {
	if t.Arg(0) == 0 {
		return 0, nil
	}
	s, err := m.ReadCString(t.Arg(0), int(min(t.Arg(1), 1<<20)))
	if err != nil {
		return 0, err
	}
	return m.kmallocBytes(append([]byte(s), 0))
}

func hVmalloc(m *Machine, t *Trap) (uint64, error) {
	p, err := m.kernel.vmalloc.alloc(t.Arg(0))
	if err != nil {
		return 0, nil
	}
	return p, nil
}

func hVfree(m *Machine, t *Trap) (uint64, error) {
	if t.Arg(0) == 0 {
		return 0, nil
	}
	if err := m.kernel.vmalloc.free(t.Arg(0)); err != nil {
		return 0, &kernelBug{file: "mm/vmalloc.c", line: 2638, msg: fmt.Sprintf("Trying to vfree() nonexistent vm area (%016x)", t.Arg(0))}
	}
	return 0, nil
}

// kmem_cache_create(name, size, align, flags, ctor) (the usercopy variant has two more arguments
// before ctor).
func hKmemCacheCreate(m *Machine, t *Trap) (uint64, error) {
	name, err := m.ReadCString(t.Arg(0), 64)
	if err != nil {
		return 0, err
	}
	ctor := t.Arg(4)
	if t.Name == "kmem_cache_create_usercopy" {
		ctor = t.Arg(6)
	}
	c, err := m.kernel.newCache(name, t.Arg(1), ctor)
	if err != nil {
		return 0, nil
	}
	return c.addr, nil
}

func (m *Machine) cacheAt(addr uint64) (*kmemCache, error) {
	c, ok := m.kernel.caches[addr]
	if !ok {
		return nil, &kernelBug{file: "mm/slab.h", line: 668, msg: fmt.Sprintf("kmem_cache %#x: not a cache", addr)}
	}
	return c, nil
}

// kmem_cache_alloc(cache, gfp): runs the cache's constructor on the new object, as SLUB does.
func hKmemCacheAlloc(m *Machine, t *Trap) (uint64, error) {
	c, err := m.cacheAt(t.Arg(0))
	if err != nil {
		return 0, err
	}
	p := m.kmalloc(c.size)
	if p == 0 {
		return 0, nil
	}
	c.alive++
	if c.ctor != 0 {
		if _, err := m.Call(c.ctor, p); err != nil {
			return 0, err
		}
	}
	return p, nil
}

func hKmemCacheFree(m *Machine, t *Trap) (uint64, error) {
	c, err := m.cacheAt(t.Arg(0))
	if err != nil {
		return 0, err
	}
	c.alive--
	return 0, m.kfree(t.Arg(1))
}

// kmem_cache_destroy complains, as SLUB does, about objects still allocated.
func hKmemCacheDestroy(m *Machine, t *Trap) (uint64, error) {
	if t.Arg(0) == 0 {
		return 0, nil
	}
	c, err := m.cacheAt(t.Arg(0))
	if err != nil {
		return 0, err
	}
	if c.alive > 0 {
		m.logf(levelErr, "kmem_cache_destroy %s: Slab cache still has objects when called from %s", c.name, m.formatB(t.Return))
	}
	delete(m.kernel.caches, c.addr)
	return 0, m.kfree(c.addr)
}
