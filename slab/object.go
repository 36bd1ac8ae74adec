package slab

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"slices"
	"syscall"

	"kemu/mmu"
)

type objState uint8

const (
	stateFree        objState = iota // never used, or evicted from quarantine: may be handed out
	stateLive                        // allocated
	stateQuarantined                 // freed and poisoned, not yet reusable
)

// object is the bookkeeping of one slot (or one large allocation), kept outside guest memory.
type object struct {
	addr      uint64
	size      uint64 // slot size, or pages for a large allocation
	requested uint64
	state     objState
	alloc     mmu.Caller
	free      mmu.Caller
	slab      *slab // nil for large allocations
	order     int   // large allocations: page order
}

func (o *object) cacheName() string {
	if o.slab == nil {
		return "page allocator"
	}
	return o.slab.cache.Name
}

// slab is 2^order pages of one cache cut into slots.
type slab struct {
	cache *Cache
	base  uint64 // direct-map address
	objs  []object
	free  []int // free slot indices, lowest last so that slots are handed out in address order
	inuse int   // live objects
}

// empty reports whether every slot is free (none live, none quarantined).
func (s *slab) empty() bool { return len(s.free) == len(s.objs) }

func (a *Allocator) newSlab(c *Cache) (*slab, error) {
	base, err := a.k.AllocPages(c.Order, false)
	if err != nil {
		return nil, fmt.Errorf("new slab for %s: %w", c.Name, err)
	}
	s := &slab{cache: c, base: base, objs: make([]object, c.PerSlab())}
	for i := range s.objs {
		s.objs[i] = object{addr: base + uint64(i)*c.Size, size: c.Size, slab: s}
	}
	for i := len(s.objs) - 1; i >= 0; i-- {
		s.free = append(s.free, i)
	}
	pa, _ := a.k.DirectMapPA(base)
	for f := range uint64(1) << c.Order {
		a.slabs[pa>>mmu.PageShift+f] = s
	}
	for addr := range a.freedLarge { // that memory is a slab now: its old life is over
		if addr >= base && addr < base+mmu.PageSize<<c.Order {
			delete(a.freedLarge, addr)
		}
	}
	c.slabs = append(c.slabs, s)
	c.partial = append(c.partial, s)
	return s, nil
}

func (a *Allocator) freeSlab(s *slab) error {
	pa, _ := a.k.DirectMapPA(s.base)
	for f := range uint64(1) << s.cache.Order {
		delete(a.slabs, pa>>mmu.PageShift+f)
	}
	s.cache.slabs = slices.DeleteFunc(s.cache.slabs, func(x *slab) bool { return x == s })
	s.cache.partial = slices.DeleteFunc(s.cache.partial, func(x *slab) bool { return x == s })
	return a.k.FreePages(s.base, s.cache.Order)
}

// Alloc takes an object from the cache (kmem_cache_alloc); zero clears it (kmem_cache_zalloc).
func (c *Cache) Alloc(caller mmu.Caller, zero bool) (uint64, error) {
	return c.a.allocFrom(c, c.ObjSize, caller, zero)
}

// Free returns an object to the cache it came from (kmem_cache_free).
func (c *Cache) Free(addr uint64, caller mmu.Caller) error {
	return c.a.free(addr, caller, c)
}

func (a *Allocator) allocFrom(c *Cache, requested uint64, caller mmu.Caller, zero bool) (uint64, error) {
	if c.destroyed {
		return 0, fmt.Errorf("kmem_cache_alloc(%s): cache destroyed: %w", c.Name, syscall.EINVAL)
	}
	if len(c.partial) == 0 {
		if _, err := a.newSlab(c); err != nil {
			return 0, err
		}
	}
	s := c.partial[len(c.partial)-1]
	i := s.free[len(s.free)-1]
	s.free = s.free[:len(s.free)-1]
	if len(s.free) == 0 {
		c.partial = c.partial[:len(c.partial)-1]
	}
	s.inuse++
	o := &s.objs[i]
	*o = object{addr: o.addr, size: o.size, slab: s, requested: requested, state: stateLive, alloc: caller}
	if zero {
		if err := a.fill(o.addr, c.Size, 0); err != nil {
			return 0, err
		}
	}
	a.account(caller, requested, c.Size, true)
	return o.addr, nil
}

// Kmalloc allocates size bytes (kmalloc); zero clears them (kzalloc). Sizes up to 8 KiB come from the smallest
// kmalloc cache that fits, larger ones from the page allocator. kmalloc(0) returns ZeroSizePtr.
func (a *Allocator) Kmalloc(size uint64, caller mmu.Caller, zero bool) (uint64, error) {
	switch {
	case size == 0:
		return ZeroSizePtr, nil
	case size <= KmallocMaxCacheSize:
		i, _ := slices.BinarySearch(KmallocSizes, size)
		return a.allocFrom(a.kmalloc[i], size, caller, zero)
	}
	order := largeOrder(size)
	if order > mmu.MaxOrder {
		return 0, fmt.Errorf("kmalloc(%d): larger than the page allocator's largest block: %w", size, syscall.ENOMEM)
	}
	addr, err := a.k.AllocPages(order, zero)
	if err != nil {
		return 0, fmt.Errorf("kmalloc(%d): %w", size, err)
	}
	for old, o := range a.freedLarge { // that memory has a new life: forget its old one
		if old < addr+mmu.PageSize<<order && addr < old+o.size {
			delete(a.freedLarge, old)
		}
	}
	a.large[addr] = &object{addr: addr, size: mmu.PageSize << order, requested: size, state: stateLive, alloc: caller, order: order}
	a.account(caller, size, mmu.PageSize<<order, true)
	return addr, nil
}

// Kfree frees what Kmalloc returned (kfree). NULL and ZeroSizePtr are ignored, as in Linux.
func (a *Allocator) Kfree(addr uint64, caller mmu.Caller) error {
	if addr == 0 || addr == ZeroSizePtr {
		return nil
	}
	return a.free(addr, caller, nil)
}

// free releases addr; want is the cache kmem_cache_free named, nil for kfree (any kmalloc'd object).
func (a *Allocator) free(addr uint64, caller mmu.Caller, want *Cache) error {
	if o, ok := a.large[addr]; ok && want == nil {
		delete(a.large, addr)
		a.account(o.alloc, o.requested, o.size, false)
		if err := a.k.FreePages(addr, o.order); err != nil {
			return fmt.Errorf("kfree(%#x): %w", addr, err)
		}
		o.state, o.free = stateFree, caller
		a.freedLarge[addr] = o
		return nil
	}
	if o := a.freedLargeAt(addr); o != nil && o.addr == addr && want == nil {
		return a.report(&Report{Kind: DoubleFree, Addr: addr, Object: o.addr, ObjectSize: o.requested, Cache: o.cacheName(), Alloc: o.alloc, Free: o.free, Culprit: caller})
	}
	o := a.objectAt(addr)
	if o == nil {
		o = a.liveLargeAt(addr) // an interior pointer into a large allocation
	}
	switch {
	case o == nil:
		return a.report(&Report{Kind: InvalidFree, Addr: addr, Culprit: caller})
	case o.addr != addr:
		return a.report(&Report{Kind: InvalidFree, Addr: addr, Object: o.addr, ObjectSize: o.requested, Cache: o.cacheName(), Alloc: o.alloc, Culprit: caller})
	case o.state != stateLive:
		return a.report(&Report{Kind: DoubleFree, Addr: addr, Object: o.addr, ObjectSize: o.requested, Cache: o.cacheName(), Alloc: o.alloc, Free: o.free, Culprit: caller})
	case want != nil && o.slab.cache != want:
		return a.report(&Report{Kind: CacheMismatch, Addr: addr, Object: o.addr, ObjectSize: o.requested, Cache: o.cacheName(), Alloc: o.alloc, Culprit: caller, Wanted: want.Name})
	}
	a.account(o.alloc, o.requested, o.size, false)
	o.state, o.free = stateQuarantined, caller
	o.slab.inuse--
	if err := a.poison(o); err != nil {
		return err
	}
	a.quarantine = append(a.quarantine, o)
	return a.drain(a.qMax)
}

// objectAt is the slot containing addr, if addr lies in a slab.
func (a *Allocator) objectAt(addr uint64) *object {
	pa, ok := a.k.DirectMapPA(addr)
	if !ok {
		return nil
	}
	s := a.slabs[pa>>mmu.PageShift]
	if s == nil {
		return nil
	}
	i := (addr - s.base) / s.cache.Size
	if i >= uint64(len(s.objs)) { // the tail of the slab no slot covers
		return nil
	}
	return &s.objs[i]
}

func (a *Allocator) fill(addr, n uint64, b byte) error {
	pa, _ := a.k.DirectMapPA(addr)
	mem, err := a.k.Mem.Slice(pa, n)
	if err != nil {
		return err
	}
	for i := range mem {
		mem[i] = b
	}
	return nil
}

// poisonBytes is a freed object's poison for the largest slot; objects take a prefix of it.
var poisonBytes = bytes.Repeat([]byte{PoisonFree}, KmallocMaxCacheSize<<3)

func (a *Allocator) poison(o *object) error {
	pa, _ := a.k.DirectMapPA(o.addr)
	mem, err := a.k.Mem.Slice(pa, o.size)
	if err != nil {
		return err
	}
	copy(mem, poisonBytes)
	mem[len(mem)-1] = PoisonEnd
	return nil
}

// poisonIntact reports whether a quarantined object still holds its poison, and the first changed offset.
func (a *Allocator) poisonIntact(o *object) (bool, uint64) {
	pa, _ := a.k.DirectMapPA(o.addr)
	mem, err := a.k.Mem.Slice(pa, o.size)
	if err != nil {
		return false, 0
	}
	last := len(mem) - 1
	if bytes.Equal(mem[:last], poisonBytes[:last]) && mem[last] == PoisonEnd {
		return true, 0
	}
	for i, b := range mem[:last] {
		if b != PoisonFree {
			return false, uint64(i)
		}
	}
	return false, uint64(last)
}

// drain evicts the oldest quarantined objects until at most keep remain, checking their poison; the slots
// become reusable and empty slabs go back to the page allocator.
func (a *Allocator) drain(keep int) error {
	var errs []error
	for len(a.quarantine) > keep {
		o := a.quarantine[0]
		a.quarantine = a.quarantine[1:]
		if ok, off := a.poisonIntact(o); !ok {
			errs = append(errs, a.report(&Report{Kind: UseAfterFree, Write: true, Addr: o.addr + off, Object: o.addr, ObjectSize: o.requested, Cache: o.cacheName(), Alloc: o.alloc, Free: o.free}))
		}
		o.state = stateFree
		s := o.slab
		if len(s.free) == 0 {
			s.cache.partial = append(s.cache.partial, s)
		}
		s.free = append(s.free, int((o.addr-s.base)/s.cache.Size))
		if s.empty() && slices.ContainsFunc(s.cache.slabs, func(x *slab) bool { return x != s && x.empty() }) {
			// Keep one empty slab per cache, as SLUB keeps partial slabs, so alloc/free churn does not
			// allocate and free pages every time.
			if err := a.freeSlab(s); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// Flush empties the quarantine (checking every object's poison), making all freed slots reusable.
func (a *Allocator) Flush() error { return a.drain(0) }

// Audit checks the poison of every quarantined object without evicting any: a changed byte is a write after
// free. Each finding is reported once per check.
func (a *Allocator) Audit() []*Report {
	var out []*Report
	for _, o := range a.quarantine {
		if ok, off := a.poisonIntact(o); !ok {
			r := &Report{Kind: UseAfterFree, Write: true, Addr: o.addr + off, Object: o.addr, ObjectSize: o.requested, Cache: o.cacheName(), Alloc: o.alloc, Free: o.free}
			a.reports = append(a.reports, r)
			out = append(out, r)
		}
	}
	return out
}

// Check reports an access of size bytes at addr that touches a freed object (quarantined, or a freed large
// allocation not reused since), as KASAN would for an access the machine observed. Accesses elsewhere are nil.
func (a *Allocator) Check(addr, size uint64, write bool, culprit mmu.Caller) error {
	for _, at := range []uint64{addr, addr + max(size, 1) - 1} {
		if o := a.objectAt(at); o != nil && o.state == stateQuarantined {
			return a.report(&Report{Kind: UseAfterFree, Write: write, Addr: addr, Object: o.addr, ObjectSize: o.requested, Cache: o.cacheName(), Alloc: o.alloc, Free: o.free, Culprit: culprit})
		}
		if o := a.freedLargeAt(at); o != nil {
			return a.report(&Report{Kind: UseAfterFree, Write: write, Addr: addr, Object: o.addr, ObjectSize: o.requested, Cache: o.cacheName(), Alloc: o.alloc, Free: o.free, Culprit: culprit})
		}
	}
	return nil
}

// freedLargeAt is the freed large allocation covering addr, if its memory has not been handed out again since
// (to a slab or to another large allocation).
func (a *Allocator) freedLargeAt(addr uint64) *object {
	if a.objectAt(addr) != nil {
		return nil
	}
	if a.liveLargeAt(addr) != nil {
		return nil
	}
	for _, o := range a.freedLarge {
		if addr >= o.addr && addr < o.addr+o.size {
			return o
		}
	}
	return nil
}

// liveLargeAt is the live large allocation covering addr, if any.
func (a *Allocator) liveLargeAt(addr uint64) *object {
	for _, o := range a.large {
		if addr >= o.addr && addr < o.addr+o.size {
			return o
		}
	}
	return nil
}

// Ksize is the usable size of a live allocation (ksize): the slot, or the pages of a large one.
func (a *Allocator) Ksize(addr uint64) (uint64, error) {
	if o, ok := a.large[addr]; ok {
		return o.size, nil
	}
	if o := a.objectAt(addr); o != nil && o.addr == addr && o.state == stateLive {
		return o.size, nil
	}
	return 0, fmt.Errorf("ksize(%#x): not a live kmalloc object: %w", addr, syscall.EINVAL)
}

// Allocation is one live allocation, for the leak list.
type Allocation struct {
	Addr, Requested, Size uint64
	Cache                 string
	Caller                mmu.Caller
}

// Leaks lists every live allocation in address order: what a module left behind when it is unloaded.
func (a *Allocator) Leaks() []Allocation {
	var out []Allocation
	add := func(o *object) {
		out = append(out, Allocation{Addr: o.addr, Requested: o.requested, Size: o.size, Cache: o.cacheName(), Caller: o.alloc})
	}
	for _, c := range a.caches {
		for _, s := range c.slabs {
			for i := range s.objs {
				if s.objs[i].state == stateLive {
					add(&s.objs[i])
				}
			}
		}
	}
	for _, o := range a.large {
		add(o)
	}
	slices.SortFunc(out, func(x, y Allocation) int { return cmp.Compare(x.Addr, y.Addr) })
	return out
}

// Reports lists every problem found so far, in order.
func (a *Allocator) Reports() []*Report { return slices.Clone(a.reports) }

func (a *Allocator) report(r *Report) error {
	a.reports = append(a.reports, r)
	return r
}

// ReportKind is what went wrong.
type ReportKind uint8

const (
	DoubleFree    ReportKind = iota + 1 // freeing an object already freed
	InvalidFree                         // freeing a pointer that is not the start of an allocation
	CacheMismatch                       // kmem_cache_free with another cache than the object's
	UseAfterFree                        // touching a freed object
)

// Report is a memory-safety finding with the callers involved, in the spirit of a KASAN report.
type Report struct {
	Kind       ReportKind
	Addr       uint64 // the address freed or accessed
	Write      bool   // UseAfterFree: the access was a write
	Object     uint64 // start of the object involved (0 when the pointer is in no object)
	ObjectSize uint64 // bytes requested for it
	Cache      string
	Wanted     string     // CacheMismatch: the cache the free named
	Alloc      mmu.Caller // who allocated the object
	Free       mmu.Caller // who freed it (DoubleFree, UseAfterFree)
	Culprit    mmu.Caller // who made the bad free or access (unknown for writes found by poison checks)
}

func (r *Report) Error() string {
	var b bytes.Buffer
	switch r.Kind {
	case DoubleFree:
		fmt.Fprintf(&b, "double-free of %#x", r.Addr)
	case InvalidFree:
		fmt.Fprintf(&b, "invalid-free of %#x", r.Addr)
	case CacheMismatch:
		fmt.Fprintf(&b, "kmem_cache_free(%s) of %#x, which belongs to %s", r.Wanted, r.Addr, r.Cache)
	case UseAfterFree:
		kind := "read"
		if r.Write {
			kind = "write"
		}
		fmt.Fprintf(&b, "use-after-free %s at %#x", kind, r.Addr)
	}
	if r.Culprit != (mmu.Caller{}) {
		fmt.Fprintf(&b, " by %s", r.Culprit)
	}
	if r.Object == 0 {
		b.WriteString(": not an allocated object")
		return b.String()
	}
	fmt.Fprintf(&b, ": %d-byte object at %#x (offset %d) in %s, allocated by %s", r.ObjectSize, r.Object, r.Addr-r.Object, r.Cache, r.Alloc)
	if r.Free != (mmu.Caller{}) {
		fmt.Fprintf(&b, ", freed by %s", r.Free)
	}
	return b.String()
}
