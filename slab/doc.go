// Package slab is the kernel's small-object allocator as module code sees it: kmalloc with SLUB's size classes,
// kmem_cache_create/alloc/free, ksize, and the page allocator behind kmalloc for sizes above 8 KiB. All memory
// comes from the direct map (mmu.Kernel.AllocPages), as it does in Linux.
//
// On top of allocating it keeps the books a debugging kernel would: every live object with its requested size
// and the caller that allocated it (per-caller accounting of requested against allocated bytes, the leak list),
// and every freed object with who allocated and who freed it. A freed object is poisoned (SLUB's 0x6b bytes
// ending in 0xa5) and held in a FIFO quarantine before its slot can be reused, as KASAN's quarantine does, so
//   - freeing it again is reported as a double free, with the allocating and both freeing callers;
//   - writes to it while quarantined are found when the poison is checked (on eviction, or by Audit);
//   - reads and writes the machine observes can be checked with Check, which names the freed object;
//   - freeing a pointer that is not the start of a live object (a foreign, interior or large-page pointer
//     mismatch, or an object of another kmem_cache) is reported, never acted on.
//
// These are returned as *Report errors; nothing panics and no bookkeeping is corrupted by a bad free.
//
// Not modelled: per-CPU slabs (one partial list per cache), cache merging, slab orders beyond the rule in
// slabOrder, use-after-free detection once a slab's pages went back to the page allocator (a cache keeps one
// empty slab; further emptied slabs are freed when their last object leaves the quarantine), freelist pointers
// inside free objects (the free list is kept outside guest memory, so a module cannot corrupt it), red zones,
// memory cgroups. Not safe for concurrent use (one CPU).
package slab
