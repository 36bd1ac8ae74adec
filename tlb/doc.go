// Package tlb models the address-translation caches of an x86-64 core, for
// asking how module placement (4K vmalloc pages versus 2M direct-map or
// packed pages) changes translation cost.
//
// # The model
//
// A TLB consumes a stream of accesses: a virtual address, a kind (instruction
// fetch, read, write) and an attribution tag. Fetches look up the L1 iTLB,
// reads and writes the L1 dTLB; a miss there looks up the second level (a
// unified STLB, or AMD's separate L2 iTLB for fetches); a miss there is a
// page walk, which asks a Walker for the translation (page size, physical
// frame, global bit). Each level is made of set-associative arrays with true
// LRU replacement (or, per array, a one-bit pseudo-LRU); an array holds one or more page sizes, probing each, and a
// translation of a size an array cannot hold is stored as entries of the
// largest smaller size it can (1G pages fractured into 2M entries, as Zen 2's
// L2 TLB and Skylake's iTLB do).
//
// A walk reads one entry per paging level: PML4E, PDPTE, PDE and PTE for a
// 4K page, one fewer for 2M, two fewer for 1G. The paging-structure caches
// (PML4E, PDPTE and PDE caches, Intel SDM vol. 3 §4.10.3) hold non-leaf
// entries and let a walk start below the top: a PDE-cache hit leaves only
// the PTE read. Walks fill the caches, the second level and the first level.
//
// Invalidation follows the SDM: Flush (a CR3 write without PCIDs) drops
// non-global TLB entries and all paging-structure caches; FlushAll (toggling
// CR4.PGE) drops everything; Invlpg drops the entries for one page, global
// or not, and all paging-structure caches.
//
// Counters are kept per tag (a module or symbol the caller registers), per
// structure and page size, with page-walk references per level.
// Counters.Cycles turns them into an estimated cycle count from parameters the caller may change:
// the model counts events exactly, while the cycles are only as good as the
// latencies given.
//
// # Speed
//
// Access is called for every instruction fetch and data access of a
// measured run, so its common case is kept short: a hit in a first-level
// array's smallest page size is found through a direct-mapped table of
// hints (page number to slot), each checked against the array's key before
// use, so the model's state and results are exactly those of a full search
// (FuzzHintsAgree compares the two). Everything else (other page sizes, the
// second level, walks) takes the general path. BenchmarkAccessHit measures
// the hit path on each preset.
//
// # Limits
//
// Real hardware does more than this model: undocumented replacement
// policies (the model offers LRU and a one-bit pseudo-LRU), hashed set indexing, prefetching and speculative walks, several walks in
// flight (Golden Cove has four), walks whose reads hit or miss the data
// caches (the model charges one latency per reference), accessed/dirty-bit
// assists, PCIDs, and competition from a sibling hyperthread. The sizes of
// the paging-structure caches are undocumented; the presets' values are
// assumptions, stated where they are set. Fill policy (walks fill both
// levels, STLB hits fill L1) is a simplification of inclusive behaviour.
package tlb
