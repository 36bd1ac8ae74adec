package machine

import (
	"errors"

	"kemu/mmu"
	"kemu/slab"
)

// Memory allocation: kmalloc and kmem_cache over the slab allocator, vmalloc over the vmalloc area.
// Allocation failure returns NULL as the kernel does. A bad free (double, invalid, wrong cache) is
// reported with the slab allocator's account of the object and then handled as SLUB's hardened
// freelist check does: a kernel BUG.

const gfpZero = 0x100 // ___GFP_ZERO

func init() {
	register("kmalloc_trace", hKmallocTrace)
	register("__kmalloc", hKmalloc)
	register("__kmalloc_node", hKmalloc)
	register("kmalloc_large", hKmalloc)
	register("kvmalloc_node", hKmalloc)
	register("kfree", hKfree)
	register("kvfree", hKfree)
	register("kfree_sensitive", hKfree)
	register("krealloc", hKrealloc)
	register("kmemdup", hKmemdup)
	register("kstrdup", hKstrdup)
	register("kstrndup", hKstrndup)
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

// caller is the module code that made the call, for the allocators' books.
func (t *Trap) caller() mmu.Caller { return mmu.Caller{Addr: t.Return, Label: t.m.describe(t.Return)} }

// kmalloc allocates size bytes of kernel heap; 0 (NULL) when memory is exhausted.
func (m *Machine) kmalloc(size uint64, caller mmu.Caller, flags uint64) uint64 {
	p, err := m.slab.Kmalloc(size, caller, flags&gfpZero != 0)
	if err != nil {
		return 0
	}
	return p
}

// kfree frees what kmalloc returned; NULL and ZERO_SIZE_PTR are ignored as the kernel does.
func (m *Machine) kfree(p uint64, caller mmu.Caller) error {
	return m.slabError(m.slab.Kfree(p, caller))
}

// slabError turns the slab allocator's finding into the kernel's reaction: the report, then BUG.
func (m *Machine) slabError(err error) error {
	var r *slab.Report
	if !errors.As(err, &r) {
		return err
	}
	for _, line := range splitLines(r.Error()) {
		m.logf(levelErr, "kemu: %s", line)
	}
	return &kernelBug{file: "mm/slub.c", line: 379}
}

func hKmallocTrace(m *Machine, t *Trap) (uint64, error) {
	return m.kmalloc(t.Arg(2), t.caller(), t.Arg(1)), nil
}
func hKmalloc(m *Machine, t *Trap) (uint64, error) {
	return m.kmalloc(t.Arg(0), t.caller(), t.Arg(1)), nil
}
func hKfree(m *Machine, t *Trap) (uint64, error) { return 0, m.kfree(t.Arg(0), t.caller()) }

// devm_kmalloc(dev, size, gfp): the device-managed allocation lives until the device goes away,
// which in kemu is never before the machine ends.
func hDevmKmalloc(m *Machine, t *Trap) (uint64, error) {
	return m.kmalloc(t.Arg(1), t.caller(), t.Arg(2)), nil
}

func hKsize(m *Machine, t *Trap) (uint64, error) {
	s, _ := m.slab.Ksize(t.Arg(0))
	return s, nil
}

// krealloc(p, new_size, gfp).
func hKrealloc(m *Machine, t *Trap) (uint64, error) {
	p, size := t.Arg(0), t.Arg(1)
	if size == 0 {
		return slab.ZeroSizePtr, m.kfree(p, t.caller())
	}
	if p == 0 || p == slab.ZeroSizePtr {
		return m.kmalloc(size, t.caller(), t.Arg(2)), nil
	}
	old, err := m.slab.Ksize(p)
	if err != nil {
		return 0, m.slabError(err)
	}
	if size <= old {
		return p, nil
	}
	q := m.kmalloc(size, t.caller(), t.Arg(2))
	if q == 0 {
		return 0, nil
	}
	b, err := m.Read(p, old)
	if err != nil {
		return 0, err
	}
	if err := m.WriteAt(b, q); err != nil {
		return 0, err
	}
	return q, m.kfree(p, t.caller())
}

// kmemdup(src, len, gfp): NULL when the allocation fails, as for any kmalloc.
func hKmemdup(m *Machine, t *Trap) (uint64, error) {
	q := m.kmalloc(t.Arg(1), t.caller(), t.Arg(2))
	if q == 0 || q == slab.ZeroSizePtr {
		return q, nil
	}
	return q, m.Copy(q, t.Arg(0), t.Arg(1))
}

func (m *Machine) kmallocBytes(b []byte, caller mmu.Caller) (uint64, error) {
	q := m.kmalloc(uint64(len(b)), caller, 0)
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
	s, err := m.ReadCString(t.Arg(0), maxString)
	if err != nil {
		return 0, err
	}
	return m.kmallocBytes(append([]byte(s), 0), t.caller())
}

// kstrndup(s, max, gfp).
func hKstrndup(m *Machine, t *Trap) (uint64, error) {
	if t.Arg(0) == 0 {
		return 0, nil
	}
	s, err := m.ReadCString(t.Arg(0), int(min(t.Arg(1), maxString)))
	if err != nil {
		return 0, err
	}
	return m.kmallocBytes(append([]byte(s), 0), t.caller())
}

// vmalloc(size) and vzalloc(size).
func hVmalloc(m *Machine, t *Trap) (uint64, error) {
	p, err := m.vmalloc.Vzalloc(t.Arg(0), t.caller())
	if err != nil {
		return 0, nil
	}
	return p, nil
}

// vfree(p): a pointer that starts no area is the kernel's "Trying to vfree() nonexistent vm area"
// warning, and is otherwise ignored.
func hVfree(m *Machine, t *Trap) (uint64, error) {
	if t.Arg(0) == 0 {
		return 0, nil
	}
	if err := m.vmalloc.Vfree(t.Arg(0)); err != nil {
		m.logf(levelErr, "Trying to vfree() nonexistent vm area (%016x)", t.Arg(0))
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
	sc, err := m.slab.KmemCacheCreate(name, t.Arg(1), t.Arg(2))
	if err != nil {
		return 0, nil
	}
	c, err := m.kernel.newCache(name, t.Arg(1), ctor)
	if err != nil {
		return 0, nil
	}
	c.slab = sc
	return c.addr, nil
}

func (m *Machine) cacheAt(addr uint64) (*kmemCache, error) {
	c, ok := m.kernel.caches[addr]
	if !ok || c.slab == nil {
		return nil, &kernelBug{file: "mm/slab.h", line: 668, msg: "kmem_cache_free: Wrong slab cache."}
	}
	return c, nil
}

// kmem_cache_alloc(cache, gfp): runs the cache's constructor on the new object, as SLUB does.
func hKmemCacheAlloc(m *Machine, t *Trap) (uint64, error) {
	c, err := m.cacheAt(t.Arg(0))
	if err != nil {
		return 0, err
	}
	p, err := c.slab.Alloc(t.caller(), t.Arg(1)&gfpZero != 0)
	if err != nil {
		return 0, nil
	}
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
	return 0, m.slabError(c.slab.Free(t.Arg(1), t.caller()))
}

// kmem_cache_destroy complains, as SLUB does, about objects still allocated, and keeps the cache.
func hKmemCacheDestroy(m *Machine, t *Trap) (uint64, error) {
	if t.Arg(0) == 0 {
		return 0, nil
	}
	c, err := m.cacheAt(t.Arg(0))
	if err != nil {
		return 0, err
	}
	if err := m.slab.KmemCacheDestroy(c.slab); err != nil {
		m.logf(levelErr, "kmem_cache_destroy %s: Slab cache still has objects when called from %s", c.name, m.formatB(t.Return))
		return 0, nil
	}
	delete(m.kernel.caches, c.addr)
	return 0, m.kfree(c.addr, t.caller())
}
