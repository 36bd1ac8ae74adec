package mmu

import (
	"errors"
	"fmt"
	"syscall"
)

// MaxOrder is the largest block the frame allocator hands out: 2^10 frames (4 MiB), as Linux 6.1's MAX_ORDER-1.
const MaxOrder = 10

// FrameAllocator is a binary buddy allocator over the frames of physical memory, the model of Linux's page
// allocator (one zone, no per-CPU lists, no migrate types). A block of order k is 2^k frames aligned to 2^k
// frames; freeing a block merges it with its buddy (the block whose address differs in bit k) while the buddy is
// free and of the same order.
//
// Invariants: every frame is in exactly one block; a block is either free (on the free list of its order, and
// freeOrder at its first frame says so) or allocated (allocOrder at its first frame); two free buddies of the same
// order never coexist (they are merged). Freeing anything but the first frame of an allocated block, with its
// order, is an error: that is how double frees and foreign frees are caught.
type FrameAllocator struct {
	frames     uint64
	freeOrder  []int8  // order of the free block starting at this frame, -1 if none starts here
	allocOrder []int8  // order of the allocated block starting at this frame, -1 if none starts here
	next, prev []int32 // free-list links by frame number, -1 terminated
	heads      [MaxOrder + 1]int32
	counts     [MaxOrder + 1]uint64 // free blocks per order
	free       uint64               // free frames
}

// NewFrameAllocator manages frames [0, frames): all free, gathered in the largest aligned blocks that fit.
func NewFrameAllocator(frames uint64) (*FrameAllocator, error) {
	if frames == 0 || frames >= 1<<31 {
		return nil, fmt.Errorf("frame allocator over %d frames: %w", frames, syscall.EINVAL)
	}
	a := &FrameAllocator{
		frames:     frames,
		freeOrder:  make([]int8, frames),
		allocOrder: make([]int8, frames),
		next:       make([]int32, frames),
		prev:       make([]int32, frames),
	}
	for i := range a.freeOrder {
		a.freeOrder[i], a.allocOrder[i] = -1, -1
	}
	for i := range a.heads {
		a.heads[i] = -1
	}
	for f := uint64(0); f < frames; {
		order := MaxOrder
		for f&(1<<order-1) != 0 || f+1<<order > frames {
			order--
		}
		a.push(f, order)
		f += 1 << order
	}
	return a, nil
}

// Frames is how many frames the allocator manages.
func (a *FrameAllocator) Frames() uint64 { return a.frames }

// Alloc takes a block of 2^order frames and returns its physical address.
// It fails with ENOMEM when no free block is large enough (fragmentation included).
func (a *FrameAllocator) Alloc(order int) (uint64, error) {
	if order < 0 || order > MaxOrder {
		return 0, fmt.Errorf("alloc frames of order %d: %w", order, syscall.EINVAL)
	}
	o := order
	for o <= MaxOrder && a.heads[o] < 0 {
		o++
	}
	if o > MaxOrder {
		return 0, fmt.Errorf("alloc frames of order %d (%d frames free, largest order %d): %w",
			order, a.free, a.largestFreeOrder(), syscall.ENOMEM)
	}
	f := uint64(a.heads[o])
	a.remove(f, o)
	for o > order { // keep the lower half, give the upper half back at one order less
		o--
		a.push(f+1<<o, o)
	}
	a.allocOrder[f] = int8(order)
	return f << PageShift, nil
}

// Free gives back the block at pa, which Alloc returned for the same order.
func (a *FrameAllocator) Free(pa uint64, order int) error {
	f := pa >> PageShift
	switch {
	case order < 0 || order > MaxOrder:
		return fmt.Errorf("free frames at %#x: order %d: %w", pa, order, syscall.EINVAL)
	case pa&(PageSize-1) != 0 || f >= a.frames:
		return fmt.Errorf("free frames at %#x: not a frame address: %w", pa, syscall.EINVAL)
	case a.allocOrder[f] < 0:
		return fmt.Errorf("free frames at %#x order %d: block is not allocated (double free?): %w", pa, order, syscall.EINVAL)
	case int(a.allocOrder[f]) != order:
		return fmt.Errorf("free frames at %#x: allocated with order %d, freed with order %d: %w", pa, a.allocOrder[f], order, syscall.EINVAL)
	}
	a.allocOrder[f] = -1
	for order < MaxOrder {
		buddy := f ^ 1<<order
		if buddy >= a.frames || int(a.freeOrder[buddy]) != order {
			break
		}
		a.remove(buddy, order)
		f = min(f, buddy)
		order++
	}
	a.push(f, order)
	return nil
}

// AllocatedOrder is the order of the allocated block starting at pa, if one does.
func (a *FrameAllocator) AllocatedOrder(pa uint64) (int, bool) {
	f := pa >> PageShift
	if pa&(PageSize-1) != 0 || f >= a.frames || a.allocOrder[f] < 0 {
		return 0, false
	}
	return int(a.allocOrder[f]), true
}

func (a *FrameAllocator) push(f uint64, order int) {
	a.freeOrder[f] = int8(order)
	a.prev[f] = -1
	a.next[f] = a.heads[order]
	if h := a.heads[order]; h >= 0 {
		a.prev[h] = int32(f)
	}
	a.heads[order] = int32(f)
	a.counts[order]++
	a.free += 1 << order
}

func (a *FrameAllocator) remove(f uint64, order int) {
	if p := a.prev[f]; p >= 0 {
		a.next[p] = a.next[f]
	} else {
		a.heads[order] = a.next[f]
	}
	if n := a.next[f]; n >= 0 {
		a.prev[n] = a.prev[f]
	}
	a.freeOrder[f] = -1
	a.counts[order]--
	a.free -= 1 << order
}

func (a *FrameAllocator) largestFreeOrder() int {
	for o := MaxOrder; o >= 0; o-- {
		if a.counts[o] > 0 {
			return o
		}
	}
	return -1
}

// FrameStats is a snapshot of the allocator, as /proc/buddyinfo and the extfrag debugfs files show it.
type FrameStats struct {
	Frames, Free, Used uint64
	FreeBlocks         [MaxOrder + 1]uint64 // free blocks of each order (/proc/buddyinfo)
	LargestFreeOrder   int                  // -1 when nothing is free
}

// Stats reports the allocator's state.
func (a *FrameAllocator) Stats() FrameStats {
	return FrameStats{
		Frames:           a.frames,
		Free:             a.free,
		Used:             a.frames - a.free,
		FreeBlocks:       a.counts,
		LargestFreeOrder: a.largestFreeOrder(),
	}
}

// Unusable is the unusable free space index for an order (Linux's unusable_free_index, as in
// /sys/kernel/debug/extfrag/unusable_index): the fraction of free memory that lies in blocks too small to satisfy
// a request of that order. 0 means every free frame could serve it, 1 means none could (or nothing is free).
func (s FrameStats) Unusable(order int) float64 {
	if order < 0 || order > MaxOrder || s.Free == 0 {
		return 1
	}
	var usable uint64
	for o := order; o <= MaxOrder; o++ {
		usable += s.FreeBlocks[o] << o
	}
	return float64(s.Free-usable) / float64(s.Free)
}

// AllocExact takes exactly pages contiguous frames (alloc_pages_exact): it takes the power-of-two block that
// holds them and gives the tail back at once, so a 12 KiB request costs 12 KiB, not 16. The run is owned as the
// aligned power-of-two blocks of its binary decomposition; FreeExact gives those back.
func (a *FrameAllocator) AllocExact(pages uint64) (uint64, error) {
	if pages == 0 || pages > 1<<MaxOrder {
		return 0, fmt.Errorf("alloc %d exact frames: %w", pages, syscall.EINVAL)
	}
	order := 0
	for 1<<order < pages {
		order++
	}
	pa, err := a.Alloc(order)
	if err != nil {
		return 0, err
	}
	f := pa >> PageShift
	a.allocOrder[f] = -1
	forBlocks(f, pages, func(b uint64, o int) { a.allocOrder[b] = int8(o) })
	// The tail [f+pages, f+2^order) splits into blocks of increasing order; each one's buddy lies in the kept
	// part, so none can merge yet.
	for cur, end := f+pages, f+1<<order; cur < end; {
		o := 0
		for cur&(1<<o) == 0 {
			o++
		}
		a.push(cur, o)
		cur += 1 << o
	}
	return pa, nil
}

// FreeExact gives back a run AllocExact returned for the same number of pages.
func (a *FrameAllocator) FreeExact(pa, pages uint64) error {
	if pages == 0 || pages > 1<<MaxOrder || pa&(PageSize-1) != 0 {
		return fmt.Errorf("free %d exact frames at %#x: %w", pages, pa, syscall.EINVAL)
	}
	f := pa >> PageShift
	ok := f+pages <= a.frames
	forBlocks(f, pages, func(b uint64, o int) { ok = ok && int(a.allocOrder[b]) == o })
	if !ok {
		return fmt.Errorf("free %d exact frames at %#x: not a run AllocExact returned: %w", pages, pa, syscall.EINVAL)
	}
	var err error
	forBlocks(f, pages, func(b uint64, o int) { err = errors.Join(err, a.Free(b<<PageShift, o)) })
	return err
}

// forBlocks calls fn for the aligned blocks, largest first, that make up pages frames from f (f aligned to the
// largest of them, as an allocation of the enclosing order is).
func forBlocks(f, pages uint64, fn func(block uint64, order int)) {
	for o := MaxOrder; o >= 0; o-- {
		if pages&(1<<o) != 0 {
			fn(f, o)
			f += 1 << o
		}
	}
}
