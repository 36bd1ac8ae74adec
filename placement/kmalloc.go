package placement

import (
	"errors"
	"fmt"
	"math/bits"
	"syscall"

	"kemu/mmu"
)

var errUnknown = fmt.Errorf("not placed by this strategy (or already freed): %w", syscall.EINVAL)

// Kmalloc places each region in the direct map, in pages from the page allocator: kmalloc's path for large
// sizes, a power-of-two order, or with Exact the trimmed run alloc_pages_exact gives. The memory starts out
// covered by the direct map's 2M/1G pages; applying the ranges' rights splits those pages down to 4K around the
// region, which Stats counts, and which is what made Linux give up on the idea.
type Kmalloc struct {
	k      *mmu.Kernel
	exact  bool
	live   map[*Placed]kmallocBlock
	splits int
}

type kmallocBlock struct {
	pa    uint64
	pages uint64 // with exact; otherwise 1<<order
	order int
}

// NewKmalloc returns the kmalloc strategy; exact trims each block to whole pages instead of a power of two.
func NewKmalloc(k *mmu.Kernel, exact bool) *Kmalloc {
	return &Kmalloc{k: k, exact: exact, live: map[*Placed]kmallocBlock{}}
}

func (s *Kmalloc) Name() string { return "kmalloc" }

func (s *Kmalloc) Place(module string, regions []Region) ([]*Placed, error) {
	return placeAll(s, module, regions, func(r Region) (*Placed, error) {
		pages := pageUp(r.Size) / mmu.PageSize
		b := kmallocBlock{order: bits.Len64(pages - 1)}
		var err error
		if s.exact {
			b.pages = pages
			b.pa, err = s.k.Frames.AllocExact(pages)
		} else {
			b.pages = 1 << b.order
			b.pa, err = s.k.Frames.Alloc(b.order)
		}
		if err != nil {
			return nil, err
		}
		if align := max(r.Align, mmu.PageSize); b.pa%align != 0 {
			return nil, errors.Join(fmt.Errorf("block at %#x not aligned to %#x: %w", b.pa, align, syscall.EINVAL), s.release(b))
		}
		if err := s.k.Mem.Zero(b.pa, b.pages*mmu.PageSize); err != nil {
			return nil, errors.Join(err, s.release(b))
		}
		addr := s.k.DirectMap(b.pa)
		if err := s.protect(func() error { return protectRanges(s.k.Tables, addr, r) }); err != nil {
			return nil, errors.Join(err, s.restore(addr, b), s.release(b))
		}
		p := &Placed{Module: module, Region: r, Pieces: []Piece{{Offset: 0, Size: r.Size, Addr: addr}}}
		s.live[p] = b
		return p, nil
	})
}

// protect runs a change of direct-map rights and counts the large pages it split.
func (s *Kmalloc) protect(change func() error) error {
	before := s.k.Tables.Stats()
	err := change()
	after := s.k.Tables.Stats()
	s.splits += after.Split1G - before.Split1G + after.Split2M - before.Split2M
	return err
}

func (s *Kmalloc) release(b kmallocBlock) error {
	if s.exact {
		return s.k.Frames.FreeExact(b.pa, b.pages)
	}
	return s.k.Frames.Free(b.pa, b.order)
}

// restore gives the block's direct-map pages back their PAGE_KERNEL rights before the pages are reused
// (set_memory_rw + set_memory_nx). The split large pages stay split, as in Linux.
func (s *Kmalloc) restore(addr uint64, b kmallocBlock) error {
	return s.protect(func() error { return s.k.Tables.Protect(addr, b.pages*mmu.PageSize, mmu.PermRW) })
}

func (s *Kmalloc) SetPerm(p *Placed, off, size uint64, perm mmu.Perm) error {
	if _, ok := s.live[p]; !ok {
		return errNotPlaced(p)
	}
	size, err := checkPerm(p, off, size)
	if err != nil {
		return err
	}
	return s.protect(func() error { return s.k.Tables.Protect(p.Base()+off, size, perm) })
}

func (s *Kmalloc) Seal(p *Placed) error {
	return sealRanges(p, func(off, size uint64) error { return s.SetPerm(p, off, size, mmu.PermRO) })
}

func (s *Kmalloc) Free(p *Placed) error {
	b, ok := s.live[p]
	if !ok {
		return errNotPlaced(p)
	}
	delete(s.live, p)
	return errors.Join(s.restore(p.Base(), b), s.release(b))
}

func (s *Kmalloc) Stats() Stats {
	st := Stats{DirectMapSplits: s.splits}
	seen := map[uint64]bool{}
	for p, b := range s.live {
		st.Regions++
		st.Requested += p.Region.Size
		st.Used += b.pages * mmu.PageSize
		countLeaves(s.k.Tables, seen, &st, p.Base(), b.pages*mmu.PageSize)
	}
	return st
}
