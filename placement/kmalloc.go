package placement

import (
	"errors"
	"fmt"
	"math/bits"
	"syscall"

	"kemu/mmu"
)

var errUnknown = fmt.Errorf("not placed by this strategy (or already freed): %w", syscall.EINVAL)

// Kmalloc places each region in pages from the page allocator: kmalloc's path for large sizes, a power-of-two
// order, or with exact the trimmed run alloc_pages_exact gives. The pages are physically contiguous, so a linear
// mapping covers them with large pages; applying the ranges' rights splits those large pages down to 4K where
// rights change inside one, which Stats counts (DirectMapSplits).
//
// Which linear mapping addresses the pages is the strategy's one choice (see the package doc): the kernel
// image's high alias, which -mcmodel=kernel code can reach (NewKmalloc), or the direct map, which it cannot
// (NewKmallocDirectMap: i386's kmalloc idea, whose x86-64 loads fail with a relocation overflow).
type Kmalloc struct {
	k      *mmu.Kernel
	exact  bool
	direct bool            // address the pages through the direct map instead of the high alias
	alias  map[uint64]bool // 2M pages of the high alias mapped so far, by virtual address
	live   map[*Placed]kmallocBlock
	splits int
}

type kmallocBlock struct {
	pa    uint64
	pages uint64 // with exact; otherwise 1<<order
	order int
}

// NewKmalloc returns the kmalloc strategy as x86-64 can have it: module memory from the page allocator,
// addressed through the high alias of low physical memory at StartKernelMap (where Linux maps its image), within
// reach of the kernel's text. exact trims each block to whole pages instead of a power of two.
func NewKmalloc(k *mmu.Kernel, exact bool) *Kmalloc {
	return &Kmalloc{k: k, exact: exact, alias: map[uint64]bool{}, live: map[*Placed]kmallocBlock{}}
}

// NewKmallocDirectMap returns the kmalloc strategy addressing module memory through the direct map, as the i386
// patch did. On x86-64 the direct map is more than 2 GiB away from kernel text, so a module's PC32/32S
// relocations to the kernel overflow and the loader rejects it with ENOEXEC: this strategy exists to show that.
func NewKmallocDirectMap(k *mmu.Kernel, exact bool) *Kmalloc {
	s := NewKmalloc(k, exact)
	s.direct = true
	return s
}

func (s *Kmalloc) Name() string {
	if s.direct {
		return "kmalloc-directmap"
	}
	return "kmalloc"
}

func (s *Kmalloc) Place(module string, regions []Region) ([]*Placed, error) {
	return placeAll(s, module, regions, func(r Region) (*Placed, error) {
		b, addr, err := s.alloc(r)
		if err != nil {
			return nil, err
		}
		if err := s.protect(func() error { return protectRanges(s.k.Tables, addr, r) }); err != nil {
			return nil, errors.Join(err, s.restore(addr, b), s.release(b))
		}
		p := &Placed{Module: module, Region: r, Pieces: []Piece{{Offset: 0, Size: r.Size, Addr: addr}}}
		s.live[p] = b
		return p, nil
	})
}

// alloc takes a zeroed block for r from the page allocator and returns it with its virtual address. For the high
// alias, blocks whose alias cannot be used (beyond the alias's reach, or where the kernel image itself is mapped:
// kemu's image pages are not at the physical addresses their alias would give) are held while another is taken,
// and given back at the end.
func (s *Kmalloc) alloc(r Region) (kmallocBlock, uint64, error) {
	var held []kmallocBlock
	defer func() {
		for _, h := range held {
			_ = s.release(h) // blocks this call just took and never used
		}
	}()
	for {
		b, err := s.take(r.Size)
		if err != nil {
			return kmallocBlock{}, 0, err
		}
		if align := max(r.Align, mmu.PageSize); b.pa%align != 0 {
			return kmallocBlock{}, 0, errors.Join(fmt.Errorf("block at %#x not aligned to %#x: %w", b.pa, align, syscall.EINVAL), s.release(b))
		}
		addr := s.k.DirectMap(b.pa)
		if !s.direct {
			ok, err := s.mapAlias(b.pa, b.pages*mmu.PageSize)
			if err != nil {
				return kmallocBlock{}, 0, errors.Join(err, s.release(b))
			}
			if !ok {
				held = append(held, b)
				continue
			}
			addr = mmu.StartKernelMap + b.pa
		}
		if err := s.k.Mem.Zero(b.pa, b.pages*mmu.PageSize); err != nil {
			return kmallocBlock{}, 0, errors.Join(err, s.release(b))
		}
		return b, addr, nil
	}
}

// take allocates the frames for size bytes.
func (s *Kmalloc) take(size uint64) (kmallocBlock, error) {
	pages := pageUp(size) / mmu.PageSize
	b := kmallocBlock{order: bits.Len64(pages - 1)}
	var err error
	if s.exact {
		b.pages = pages
		b.pa, err = s.k.Frames.AllocExact(pages)
	} else {
		b.pages = 1 << b.order
		b.pa, err = s.k.Frames.Alloc(b.order)
	}
	return b, err
}

// mapAlias makes sure the high alias covers [pa, pa+size): each 2M page around it is mapped read-write, NX and
// global (PAGE_KERNEL, as Linux's level2_kernel_pgt maps low memory there before cleanup_highmap() trims it to the
// image) the first time a block needs it, and stays. It reports false, mapping nothing, when part of the alias is
// out of reach (physical memory beyond KernelImageSize) or already holds something else (the kernel image).
func (s *Kmalloc) mapAlias(pa, size uint64) (bool, error) {
	if pa+size > mmu.KernelImageSize {
		return false, nil
	}
	ram := s.k.Mem.Size()
	first, end := pa&^(mmu.Size2M-1), min((pa+size+mmu.Size2M-1)&^(mmu.Size2M-1), ram)
	for at := first; at < end; at += mmu.Size2M {
		if va := mmu.StartKernelMap + at; !s.alias[va] && len(s.k.Tables.Leaves(va, min(mmu.Size2M, ram-at))) != 0 {
			return false, nil
		}
	}
	for at := first; at < end; at += mmu.Size2M {
		va := mmu.StartKernelMap + at
		if s.alias[va] {
			continue
		}
		// RAM that does not end on a 2M boundary gets its last partial 2M page in 4K pages.
		size, page := mmu.Size2M, mmu.Size2M
		if ram-at < mmu.Size2M {
			size, page = ram-at, mmu.Size4K
		}
		if err := s.k.Tables.Map(va, at, size, page, mmu.PermRW, mmu.AttrGlobal); err != nil {
			return false, fmt.Errorf("high alias of %#x: %w", at, err)
		}
		s.alias[va] = true
	}
	return true, nil
}

// protect runs a change of linear-map rights and counts the large pages it split.
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

// restore gives the block's linear-map pages back their PAGE_KERNEL rights before the pages are reused
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
