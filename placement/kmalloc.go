package placement

import (
	"bytes"
	"errors"
	"fmt"
	"math/bits"
	"slices"
	"syscall"

	"kemu/mmu"
	"kemu/vmalloc"
)

var errUnknown = fmt.Errorf("not placed by this strategy (or already freed): %w", syscall.EINVAL)

// Kmalloc places module memory in pages from the page allocator, kept in 2M chunks by rights: text goes to
// read-exec chunks, rodata to read-only chunks, ro_after_init and data to read-write chunks, each chunk a
// physically contiguous, 2M-aligned block mapped by one 2M page of a linear mapping. Modules share chunks (the
// page allocator's memory is carved as kmalloc carves it), so their ranges keep large pages; a large page is
// split only where one module's rights change inside it (ro_after_init sealed in a data chunk), which Stats counts
// (DirectMapSplits).
//
// Which linear mapping addresses the chunks is the strategy's one choice (see the package doc): the kernel
// image's high alias, which -mcmodel=kernel code can reach (NewKmalloc), or the direct map, which it cannot
// (NewKmallocDirectMap: i386's kmalloc idea, whose x86-64 loads fail with a relocation overflow).
type Kmalloc struct {
	k      *mmu.Kernel
	direct bool // address chunks through the direct map instead of the high alias
	chunks []*chunk
	live   map[*Placed][]*kpiece
	splits int
}

// chunkClass is the rights a chunk is mapped with.
type chunkClass uint8

const (
	textChunk   chunkClass = iota // RX
	rodataChunk                   // R, NX
	dataChunk                     // RW, NX: data, and ro_after_init until it is sealed
)

func classOf(k Kind) chunkClass {
	switch k {
	case Text:
		return textChunk
	case Rodata:
		return rodataChunk
	}
	return dataChunk
}

func (c chunkClass) perm() mmu.Perm { return [...]mmu.Perm{mmu.PermRX, mmu.PermRO, mmu.PermRW}[c] }

// chunk is one block of the page allocator mapped with one class's rights.
type chunk struct {
	class     chunkClass
	pa, va    uint64
	size      uint64 // 2M, or more for a range that does not fit one 2M page
	order     int
	free      *vmalloc.Spans // offsets within the chunk
	protected bool           // direct map only: the chunk's rights were changed from PAGE_KERNEL
}

// kpiece is where one run of same-class ranges of a region went.
type kpiece struct {
	chunk     *chunk
	off, size uint64 // within the chunk; size is whole pages
	changed   bool   // rights changed since placement (sealed, SetPerm): restored on free
}

// NewKmalloc returns the kmalloc strategy as x86-64 can have it: chunks from the page allocator addressed through
// the high alias of low physical memory at StartKernelMap (where Linux maps its image), within reach of the
// kernel's text.
func NewKmalloc(k *mmu.Kernel) *Kmalloc {
	return &Kmalloc{k: k, live: map[*Placed][]*kpiece{}}
}

// NewKmallocDirectMap returns the kmalloc strategy addressing its chunks through the direct map, as the i386 patch
// did. On x86-64 the direct map is more than 2 GiB away from kernel text, so a module's relocations to the kernel
// cannot reach and the loader rejects it with ENOEXEC: this strategy exists to show that.
func NewKmallocDirectMap(k *mmu.Kernel) *Kmalloc {
	s := NewKmalloc(k)
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
		p := &Placed{Module: module, Region: r}
		var pieces []*kpiece
		for _, g := range classRuns(r) {
			pc, err := s.take(g.class, pageUp(g.Size))
			if err != nil {
				return nil, errors.Join(err, s.release(pieces))
			}
			pieces = append(pieces, pc)
			p.Pieces = append(p.Pieces, Piece{Offset: g.Offset, Size: g.Size, Addr: pc.chunk.va + pc.off})
		}
		s.live[p] = pieces
		return p, nil
	})
}

// classRun is a run of a region's ranges that go to chunks of one class, kept together.
type classRun struct {
	Range
	class chunkClass
}

// classRuns divides a region into runs of consecutive ranges of one chunk class (ro_after_init and data stay
// together). A region without ranges is one data run.
func classRuns(r Region) []classRun {
	if len(r.Ranges) == 0 {
		return []classRun{{Range: Range{Size: r.Size, Kind: Data}, class: dataChunk}}
	}
	var runs []classRun
	for _, rg := range r.Ranges {
		c := classOf(rg.Kind)
		if n := len(runs); n > 0 && runs[n-1].class == c && pageUp(runs[n-1].Offset+runs[n-1].Size) == rg.Offset {
			runs[n-1].Size = rg.Offset + rg.Size - runs[n-1].Offset
			continue
		}
		runs = append(runs, classRun{Range: rg, class: c})
	}
	return runs
}

// take finds size bytes (whole pages) in a chunk of class, making a chunk when none has room, and zeroes them.
func (s *Kmalloc) take(class chunkClass, size uint64) (*kpiece, error) {
	var ck *chunk
	var off uint64
	for _, c := range s.chunks {
		if c.class != class {
			continue
		}
		if o, err := c.free.Take(size, mmu.PageSize); err == nil {
			ck, off = c, o
			break
		}
	}
	if ck == nil {
		var err error
		if ck, err = s.newChunk(class, size); err != nil {
			return nil, err
		}
		if off, err = ck.free.Take(size, mmu.PageSize); err != nil {
			return nil, err
		}
	}
	if err := s.k.Mem.Zero(ck.pa+off, size); err != nil {
		ck.free.Give(off, size)
		return nil, err
	}
	return &kpiece{chunk: ck, off: off, size: size}, nil
}

// newChunk takes a 2M-aligned block (bigger when size needs it) from the page allocator and maps it with the
// class's rights. For the high alias, blocks whose alias cannot be used (beyond its reach, or where the kernel
// image itself is mapped: kemu's image pages are not at the physical addresses their alias would give) are held
// while another is taken, and given back at the end.
func (s *Kmalloc) newChunk(class chunkClass, size uint64) (*chunk, error) {
	order := max(bits.Len64((size+mmu.Size2M-1)/mmu.Size2M-1)+9, 9)
	if order > mmu.MaxOrder {
		return nil, fmt.Errorf("%#x bytes of %v memory: more than the page allocator's largest block: %w",
			size, class.perm(), syscall.ENOMEM)
	}
	var held []uint64
	defer func() {
		for _, pa := range held {
			_ = s.k.Frames.Free(pa, order) // blocks this call just took and never used
		}
	}()
	for {
		pa, err := s.k.Frames.Alloc(order)
		if err != nil {
			return nil, err
		}
		ck := &chunk{class: class, pa: pa, size: mmu.PageSize << order, order: order}
		ck.free = vmalloc.NewSpans(0, ck.size)
		if s.direct {
			ck.va = s.k.DirectMap(pa)
			if class.perm() != mmu.PermRW {
				ck.protected = true
				if err := s.protect(ck.va, ck.size, class.perm()); err != nil {
					return nil, errors.Join(err, s.freeChunk(ck))
				}
			}
		} else {
			ck.va = mmu.StartKernelMap + pa
			if pa+ck.size > mmu.KernelImageSize || len(s.k.Tables.Leaves(ck.va, ck.size)) != 0 {
				held = append(held, pa)
				continue
			}
			if err := s.k.Tables.Map(ck.va, pa, ck.size, mmu.Size2M, class.perm(), mmu.AttrGlobal); err != nil {
				return nil, errors.Join(fmt.Errorf("high alias of %#x: %w", pa, err), s.k.Frames.Free(pa, order))
			}
		}
		s.chunks = append(s.chunks, ck)
		return ck, nil
	}
}

// freeChunk unmaps a chunk (or gives the direct map back its PAGE_KERNEL rights) and frees its block.
func (s *Kmalloc) freeChunk(ck *chunk) error {
	var err error
	switch {
	case !s.direct:
		// Module memory is flushed at once when freed (VM_FLUSH_RESET_PERMS), not lazily.
		if err = s.k.Tables.Unmap(ck.va, ck.size); err == nil {
			s.k.Tables.FlushTLB(ck.va, ck.va+ck.size)
		}
	case ck.protected:
		err = s.protect(ck.va, ck.size, mmu.PermRW)
	}
	s.chunks = slices.DeleteFunc(s.chunks, func(c *chunk) bool { return c == ck })
	return errors.Join(err, s.k.Frames.Free(ck.pa, ck.order))
}

// release gives pieces back: text is filled with int3 so stale calls trap (the chunk stays executable), rights a
// piece changed return to its chunk's, and chunks left empty are freed.
func (s *Kmalloc) release(pieces []*kpiece) error {
	var errs []error
	for _, pc := range pieces {
		ck := pc.chunk
		if ck.class == textChunk {
			errs = append(errs, s.k.Mem.Write(ck.pa+pc.off, bytes.Repeat([]byte{int3}, int(pc.size))))
		}
		if pc.changed {
			errs = append(errs, s.protect(ck.va+pc.off, pc.size, ck.class.perm()))
		}
		ck.free.Give(pc.off, pc.size)
		if ck.free.Free() == ck.size {
			errs = append(errs, s.freeChunk(ck))
		}
	}
	return errors.Join(errs...)
}

// protect changes the rights of [va, va+size) and counts the large pages it split. Pages that already have the
// rights are left alone, so asking for what is there splits nothing.
func (s *Kmalloc) protect(va, size uint64, perm mmu.Perm) error {
	if !slices.ContainsFunc(s.k.Tables.Leaves(va, size), func(l mmu.Leaf) bool { return l.Perm != perm }) {
		return nil
	}
	before := s.k.Tables.Stats()
	err := s.k.Tables.Protect(va, size, perm)
	after := s.k.Tables.Stats()
	s.splits += after.Split1G - before.Split1G + after.Split2M - before.Split2M
	return err
}

// SetPerm changes the rights of part of one piece: only those 4K pages change (the chunk's 2M page is split when
// it was whole), so the other modules sharing the chunk keep theirs.
func (s *Kmalloc) SetPerm(p *Placed, off, size uint64, perm mmu.Perm) error {
	pieces, ok := s.live[p]
	if !ok {
		return errNotPlaced(p)
	}
	size, err := checkPerm(p, off, size)
	if err != nil {
		return err
	}
	i := slices.IndexFunc(p.Pieces, func(pc Piece) bool { return off >= pc.Offset && off < pc.Offset+pageUp(pc.Size) })
	if i < 0 || off+size > p.Pieces[i].Offset+pieces[i].size {
		return fmt.Errorf("module %s region %s: [%#x, +%#x) is not within one placed run of ranges: %w",
			p.Module, p.Region.Name, off, size, syscall.EINVAL)
	}
	pieces[i].changed = true
	return s.protect(p.Pieces[i].Addr+off-p.Pieces[i].Offset, size, perm)
}

func (s *Kmalloc) Seal(p *Placed) error {
	return sealRanges(p, func(off, size uint64) error { return s.SetPerm(p, off, size, mmu.PermRO) })
}

func (s *Kmalloc) Free(p *Placed) error {
	pieces, ok := s.live[p]
	if !ok {
		return errNotPlaced(p)
	}
	delete(s.live, p)
	return s.release(pieces)
}

// Stats counts whole chunks as used: their free space is this strategy's waste.
func (s *Kmalloc) Stats() Stats {
	st := Stats{DirectMapSplits: s.splits}
	seen := map[uint64]bool{}
	for _, ck := range s.chunks {
		st.Used += ck.size
		countLeaves(s.k.Tables, seen, &st, ck.va, ck.size)
	}
	for p := range s.live {
		st.Regions++
		st.Requested += p.Region.Size
	}
	return st
}
