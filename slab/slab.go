package slab

import (
	"cmp"
	"fmt"
	"math/bits"
	"slices"
	"syscall"

	"kemu/mmu"
)

// KmallocSizes are SLUB's kmalloc size classes on x86-64 (kmalloc-8 .. kmalloc-8k); larger requests go to the
// page allocator in power-of-two orders.
var KmallocSizes = []uint64{8, 16, 32, 64, 96, 128, 192, 256, 512, 1024, 2048, 4096, 8192}

// KmallocMaxCacheSize is the largest size served from a kmalloc cache (KMALLOC_MAX_CACHE_SIZE: two pages).
const KmallocMaxCacheSize = 8192

// ZeroSizePtr is what kmalloc(0) returns (ZERO_SIZE_PTR): not NULL, but faults on any access; kfree ignores it.
const ZeroSizePtr = 16

// DefaultQuarantine is how many freed objects wait before their slots can be reused.
const DefaultQuarantine = 256

// Poison bytes SLUB writes into freed objects (include/linux/poison.h).
const (
	PoisonFree = 0x6b // every byte of a freed object
	PoisonEnd  = 0xa5 // its last byte
)

// Allocator is the kmalloc/kmem_cache allocator of one kernel address space.
type Allocator struct {
	k          *mmu.Kernel
	kmalloc    []*Cache
	caches     []*Cache         // every cache, kmalloc ones first, in creation order
	slabs      map[uint64]*slab // by frame number, for each frame of each slab
	large      map[uint64]*object
	freedLarge map[uint64]*object // last free of each large address, for double-free reports
	quarantine []*object
	qMax       int
	callers    map[mmu.Caller]*CallerStats
	reports    []*Report
}

// Option configures an Allocator.
type Option func(*Allocator)

// WithQuarantine sets how many freed objects are held before reuse (0 reuses slots at once).
func WithQuarantine(n int) Option { return func(a *Allocator) { a.qMax = max(n, 0) } }

// New returns an allocator with the kmalloc caches created (empty: slabs are allocated on demand).
func New(k *mmu.Kernel, opts ...Option) *Allocator {
	a := &Allocator{
		k:          k,
		slabs:      map[uint64]*slab{},
		large:      map[uint64]*object{},
		freedLarge: map[uint64]*object{},
		qMax:       DefaultQuarantine,
		callers:    map[mmu.Caller]*CallerStats{},
	}
	for _, o := range opts {
		o(a)
	}
	for _, size := range KmallocSizes {
		c := a.newCache(kmallocName(size), size, size, 8)
		a.kmalloc = append(a.kmalloc, c)
	}
	return a
}

func kmallocName(size uint64) string {
	if size >= 1024 {
		return fmt.Sprintf("kmalloc-%dk", size/1024)
	}
	return fmt.Sprintf("kmalloc-%d", size)
}

// Cache is one kmem_cache: objects of one size carved out of slabs of 2^Order pages.
type Cache struct {
	Name    string
	ObjSize uint64 // the size asked for at creation
	Size    uint64 // the slot size: ObjSize rounded up to the alignment
	Align   uint64
	Order   int // pages per slab = 2^Order

	a         *Allocator
	slabs     []*slab // every slab of the cache
	partial   []*slab // the slabs with a free slot; allocation takes from the last
	kmalloc   bool
	destroyed bool
}

// PerSlab is how many objects one slab holds.
func (c *Cache) PerSlab() int { return int((mmu.PageSize << c.Order) / c.Size) }

// slabOrder is the smallest order up to 3 (PAGE_ALLOC_COSTLY_ORDER) whose slab holds at least 16 objects, as
// SLUB's calculate_order settles for a machine with a few CPUs; order 3 when none does.
func slabOrder(size uint64) int {
	for o := 0; o < 3; o++ {
		if (mmu.PageSize<<o)/size >= 16 {
			return o
		}
	}
	return 3
}

func (a *Allocator) newCache(name string, objSize, size, align uint64) *Cache {
	c := &Cache{Name: name, ObjSize: objSize, Size: size, Align: align, Order: slabOrder(size), a: a, kmalloc: true}
	a.caches = append(a.caches, c)
	return c
}

// KmemCacheCreate creates a cache of objects of size bytes aligned to align (a power of two; 0 means 8).
func (a *Allocator) KmemCacheCreate(name string, size, align uint64) (*Cache, error) {
	if align == 0 {
		align = 8
	}
	if size == 0 || size > mmu.PageSize<<3 || align&(align-1) != 0 || align > mmu.PageSize {
		return nil, fmt.Errorf("kmem_cache_create(%q, %d, %d): %w", name, size, align, syscall.EINVAL)
	}
	slot := (max(size, 8) + align - 1) &^ (align - 1)
	c := a.newCache(name, size, slot, align)
	c.kmalloc = false
	return c, nil
}

// KmemCacheDestroy removes an empty cache. A cache with live objects is not destroyed: Linux complains
// "Slab cache still has objects" and keeps it, and so does this.
func (a *Allocator) KmemCacheDestroy(c *Cache) error {
	if c == nil || c.kmalloc {
		return fmt.Errorf("kmem_cache_destroy: not a cache created by kmem_cache_create: %w", syscall.EINVAL)
	}
	i := slices.Index(a.caches, c)
	if i < 0 {
		return fmt.Errorf("kmem_cache_destroy(%s): already destroyed: %w", c.Name, syscall.EINVAL)
	}
	if n := c.live(); n > 0 {
		return fmt.Errorf("kmem_cache_destroy %s: Slab cache still has objects (%d): %w", c.Name, n, syscall.EBUSY)
	}
	// Drop its quarantined objects: their slots die with the slabs.
	a.quarantine = slices.DeleteFunc(a.quarantine, func(o *object) bool { return o.slab.cache == c })
	for _, s := range slices.Clone(c.slabs) {
		if err := a.freeSlab(s); err != nil {
			return fmt.Errorf("kmem_cache_destroy %s: %w", c.Name, err)
		}
	}
	a.caches = slices.Delete(a.caches, i, i+1)
	c.destroyed = true
	return nil
}

func (c *Cache) live() int {
	n := 0
	for _, s := range c.slabs {
		n += s.inuse
	}
	return n
}

// Caches lists every cache, kmalloc caches first.
func (a *Allocator) Caches() []*Cache { return slices.Clone(a.caches) }

// CacheStats is one cache's occupancy.
type CacheStats struct {
	Name               string
	Size               uint64
	Slabs, Pages       int
	Live, Quarantined  int
	Requested, InSlots uint64 // live bytes asked for, live bytes of slots given
}

// Stats reports one cache, as /proc/slabinfo would.
func (c *Cache) Stats() CacheStats {
	s := CacheStats{Name: c.Name, Size: c.Size, Slabs: len(c.slabs)}
	for _, sl := range c.slabs {
		s.Pages += 1 << c.Order
		for i := range sl.objs {
			switch o := &sl.objs[i]; o.state {
			case stateLive:
				s.Live++
				s.Requested += o.requested
				s.InSlots += c.Size
			case stateQuarantined:
				s.Quarantined++
			}
		}
	}
	return s
}

// CallerStats is the accounting for one caller.
type CallerStats struct {
	Caller                   mmu.Caller
	Allocs, Frees            int
	Live                     int
	Requested, Allocated     uint64 // live bytes: asked for, and taken (slot or pages)
	TotalRequested, TotalAll uint64 // over all allocations ever made
}

// Wasted is the live bytes allocated beyond what was asked for.
func (s CallerStats) Wasted() uint64 { return s.Allocated - s.Requested }

// Callers lists the accounting per caller, largest live allocation first.
func (a *Allocator) Callers() []CallerStats {
	out := make([]CallerStats, 0, len(a.callers))
	for _, s := range a.callers {
		out = append(out, *s)
	}
	slices.SortFunc(out, func(x, y CallerStats) int {
		if c := cmp.Compare(y.Allocated, x.Allocated); c != 0 {
			return c
		}
		return cmp.Compare(x.Caller.String(), y.Caller.String())
	})
	return out
}

func (a *Allocator) account(c mmu.Caller, requested, allocated uint64, alloc bool) {
	s := a.callers[c]
	if s == nil {
		s = &CallerStats{Caller: c}
		a.callers[c] = s
	}
	if alloc {
		s.Allocs++
		s.Live++
		s.Requested += requested
		s.Allocated += allocated
		s.TotalRequested += requested
		s.TotalAll += allocated
		return
	}
	s.Frees++
	s.Live--
	s.Requested -= requested
	s.Allocated -= allocated
}

// largeOrder is the page-allocator order for a kmalloc above KmallocMaxCacheSize: the smallest power of two
// pages that holds it (so 12 KiB takes 16 KiB).
func largeOrder(size uint64) int {
	pages := (size + mmu.PageSize - 1) / mmu.PageSize
	return bits.Len64(pages - 1)
}

// Totals sums the allocator's state: what /proc/meminfo's Slab line and the page allocator's share of kmalloc
// would show.
type Totals struct {
	Live, Quarantined    int
	Requested, Allocated uint64 // live bytes: asked for, and taken (slots or pages)
	SlabPages            int    // pages held by slabs of every cache
	LargePages           int    // pages held by kmalloc allocations above KmallocMaxCacheSize
}

// Totals reports the whole allocator.
func (a *Allocator) Totals() Totals {
	var t Totals
	for _, c := range a.caches {
		s := c.Stats()
		t.Live += s.Live
		t.Quarantined += s.Quarantined
		t.Requested += s.Requested
		t.Allocated += s.InSlots
		t.SlabPages += s.Pages
	}
	for _, o := range a.large {
		t.Live++
		t.Requested += o.requested
		t.Allocated += o.size
		t.LargePages += int(o.size / mmu.PageSize)
	}
	return t
}
