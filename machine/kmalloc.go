package machine

import (
	"fmt"

	"kemu/slab"
)

// kmemCache is the emulated kernel's side of a struct kmem_cache whose guest address modules hold
// (kmalloc_caches[type][index] for kmalloc, or what kmem_cache_create returned).
type kmemCache struct {
	name string
	size uint64
	ctor uint64      // guest constructor, 0 for none
	addr uint64      // the guest struct kmem_cache
	slab *slab.Cache // the allocator's cache; nil for the kmalloc caches (kmalloc serves those)
}

// kmallocSizes maps kmalloc_index() to the size class, as SLUB's kmalloc_info table: index 1 and 2 are
// the 96- and 192-byte classes, index n >= 3 is 2^n bytes, up to 8 KiB (KMALLOC_SHIFT_HIGH = 13).
var kmallocSizes = map[int]uint64{1: 96, 2: 192, 3: 8, 4: 16, 5: 32, 6: 64, 7: 128, 8: 256, 9: 512, 10: 1024, 11: 2048, 12: 4096, 13: 8192}

const (
	kmallocShiftHigh = 13
	kmallocTypes     = 4   // NR_KMALLOC_TYPES in Debian's 6.1: NORMAL, CGROUP, RECLAIM, DMA
	kmemCacheObject  = 256 // bytes reserved for a struct kmem_cache when BTF cannot say
)

// initKmallocCaches creates the kmalloc caches and publishes them in kmalloc_caches, which inlined
// kmalloc() indexes directly before calling kmalloc_trace(cache, flags, size).
func (k *kernelState) initKmallocCaches() error {
	sym, ok := k.m.prof.Lookup("kmalloc_caches")
	if !ok || !k.m.inImage(sym.Addr) {
		return nil
	}
	slots := uint64(kmallocTypes * (kmallocShiftHigh + 1))
	if size, ok := k.m.prof.SizeOf("kmalloc_caches"); ok && size/8 < slots {
		slots = size / 8
	}
	byIndex := map[int]uint64{}
	for idx, size := range kmallocSizes {
		c, err := k.newCache(fmt.Sprintf("kmalloc-%s", sizeName(size)), size, 0)
		if err != nil {
			return err
		}
		byIndex[idx] = c.addr
	}
	for slot := uint64(0); slot < slots; slot++ {
		if addr, ok := byIndex[int(slot%(kmallocShiftHigh+1))]; ok {
			if err := k.m.WriteU64(sym.Addr+8*slot, addr); err != nil {
				return err
			}
		}
	}
	return nil
}

func sizeName(size uint64) string {
	if size >= 1024 {
		return fmt.Sprintf("%dk", size/1024)
	}
	return fmt.Sprint(size)
}

// newCache creates a kmem_cache with a guest object behind it.
func (k *kernelState) newCache(name string, size, ctor uint64) (*kmemCache, error) {
	objSize := uint64(kmemCacheObject)
	if s, ok := k.m.structSize("kmem_cache"); ok {
		objSize = s
	}
	addr, err := k.kzalloc(objSize)
	if err != nil {
		return nil, fmt.Errorf("kmem_cache %s: %w", name, err)
	}
	k.m.setField("kmem_cache", "size", addr, 4, size)
	k.m.setField("kmem_cache", "object_size", addr, 4, size)
	c := &kmemCache{name: name, size: size, ctor: ctor, addr: addr}
	k.caches[addr] = c
	return c, nil
}
