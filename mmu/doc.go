// Package mmu is kemu's memory model: the machine's RAM, the page allocator over its frames, x86-64 4-level
// page tables kept in that RAM in the hardware format, the walker that translates through them, and the Linux
// 6.1 kernel address-space layout built on top (Kernel).
//
// # Model
//
// PhysMem is one anonymous host mapping (never Go-managed memory), so the CPU emulator can map guest pages
// straight onto it; physical address pa is byte pa of it. FrameAllocator is a binary buddy allocator over its
// 4K frames, orders 0..MaxOrder, with /proc/buddyinfo-style statistics and the unusable-free-space index.
// PageTables writes real PGD/PUD/PMD/PTE entries (P RW US PWT PCD A D PS G NX) into frames it allocates; Map,
// Unmap and Protect work on 4K, 2M and 1G pages and split a large page when only part of it changes, counting
// the splits. Walk reads the entries as the CPU would, returning the translation, the entries read and, for an
// access the page does not allow, the #PF error code. Every change is handed to a Mirror (the CPU), because
// Unicorn 2.0.1 cannot translate through guest page tables: the tables are the truth, the Mirror follows.
//
// Kernel builds the address space Linux 6.1 has on x86-64 with 4-level paging: all RAM mapped at
// PageOffsetBase with 1G/2M pages, the kernel image area at StartKernelMap (2M pages), the vmalloc area and the
// module area with a KASLR-style random load offset from a seed. Allocators (packages vmalloc, slab) sit on it.
//
// Nothing here is safe for concurrent use: the machine has one CPU and serialises every change.
//
// # What real hardware does that this model does not
//
//   - The walker never sets Accessed or Dirty bits: entries are created with A and D set, as the kernel's
//     PAGE_KERNEL protections do, so no access would change them.
//   - No caching of translations here (package tlb models TLBs and paging-structure caches); a change is
//     visible to the next walk at once, with no INVLPG or CR3 reload needed.
//   - Control registers are fixed as Linux 6.1 sets them: CR0.WP, EFER.NXE, CR4.SMEP and CR4.SMAP on, EFLAGS.AC
//     clear, CR4.PGE on, no 5-level paging, no PCIDs, no protection keys, no PAT memory types (PWT and PCD are
//     stored, not acted on). MAXPHYADDR is PhysAddrBits; higher address bits in an entry are reserved.
//   - A table pointer outside RAM reads as all ones (present, reserved bits set), so a corrupted entry gives an
//     RSVD fault where hardware would read whatever the bus returns.
//   - One zone, no per-CPU page lists, no migrate types, no memory hotplug: the page allocator is the buddy
//     system alone.
package mmu
