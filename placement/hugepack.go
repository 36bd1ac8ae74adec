package placement

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"slices"
	"syscall"

	"kemu/mmu"
	"kemu/vmalloc"
)

// packAlign is the least alignment of text in a pack: a cache line, so packing never costs a function its
// alignment (x86 functions are 16-byte aligned; the loader asks for more through Region.Align).
const packAlign = 64

// int3 fills freed pack space, so stale calls into an unloaded module's text trap (as execmem does).
const int3 = 0xcc

// Hugepack packs module text into shared read-only-exec 2M pages in the module area (the execmem ROX cache and
// bpf_prog_pack idea) and places the other ranges in 4K pages in the module area, as vmalloc does. Text that
// does not fit a 2M pack gets a pack of its own, a whole number of 2M pages.
type Hugepack struct {
	k     *mmu.Kernel
	v     *vmalloc.Allocator
	packs []*pack
	live  map[*Placed]*packed
}

type pack struct {
	area *vmalloc.Area
	free *vmalloc.Spans // offsets within the pack
}

// packed is where one region went: its text slots and the area holding the rest.
type packed struct {
	slots []slot
	rest  *vmalloc.Area // nil when the region is all text
	base  uint64        // region offset that rest.Addr maps
}

type slot struct {
	pack       *pack
	off, size  uint64 // within the pack
	regionOffs uint64 // within the region
}

// NewHugepack returns the hugepack strategy over a kernel's module area.
func NewHugepack(k *mmu.Kernel, v *vmalloc.Allocator) *Hugepack {
	return &Hugepack{k: k, v: v, live: map[*Placed]*packed{}}
}

func (s *Hugepack) Name() string { return "hugepack" }

func (s *Hugepack) Place(module string, regions []Region) ([]*Placed, error) {
	return placeAll(s, module, regions, func(r Region) (*Placed, error) {
		pk := &packed{}
		p := &Placed{Module: module, Region: r}
		fail := func(err error) (*Placed, error) { return nil, errors.Join(err, s.release(pk)) }
		text, rest := split(r)
		for _, t := range text {
			sl, err := s.take(t.Size, max(r.Align, packAlign))
			if err != nil {
				return fail(err)
			}
			sl.regionOffs = t.Offset
			pk.slots = append(pk.slots, sl)
			addr := sl.pack.area.Addr + sl.off
			if err := s.k.WriteVirt(addr, make([]byte, t.Size)); err != nil { // fresh text starts zeroed
				return fail(err)
			}
			p.Pieces = append(p.Pieces, Piece{Offset: t.Offset, Size: t.Size, Addr: addr})
		}
		if len(rest) > 0 {
			pk.base = rest[0].Offset &^ (mmu.PageSize - 1)
			area, err := s.v.Alloc(vmalloc.Request{
				Size: r.Size - pk.base, Align: max(r.Align, mmu.PageSize), Space: vmalloc.SpaceModules, Zero: true,
				Caller: mmu.Caller{Label: module},
			})
			if err != nil {
				return fail(err)
			}
			pk.rest = area
			for _, rg := range r.Ranges {
				if rg.Kind == Text {
					continue
				}
				if err := s.k.Tables.Protect(area.Addr+rg.Offset-pk.base, pageUp(rg.Size), rg.Kind.Perm()); err != nil {
					return fail(fmt.Errorf("region %s: %s range: %w", r.Name, rg.Kind, err))
				}
			}
			for _, g := range rest {
				p.Pieces = append(p.Pieces, Piece{Offset: g.Offset, Size: g.Size, Addr: area.Addr + g.Offset - pk.base})
			}
		}
		slices.SortFunc(p.Pieces, func(a, b Piece) int { return cmp.Compare(a.Offset, b.Offset) })
		s.live[p] = pk
		return p, nil
	})
}

// split divides a region into its text ranges and the rest (every other byte, gaps between other ranges
// included, except the padding that ends a text range's last page), in order.
func split(r Region) (text, rest []Range) {
	var at uint64
	addRest := func(end uint64) {
		if end > at {
			rest = append(rest, Range{Offset: at, Size: end - at, Kind: Data})
		}
	}
	for _, rg := range r.Ranges {
		if rg.Kind == Text {
			addRest(rg.Offset)
			text = append(text, rg)
			at = pageUp(rg.Offset + rg.Size) // the padding after text is in no range and gets no address
		}
	}
	addRest(r.Size)
	return text, rest
}

// take finds room for size bytes of text in a pack, making a new pack when none has room.
func (s *Hugepack) take(size, align uint64) (slot, error) {
	for _, pk := range s.packs {
		if off, err := pk.free.Take(size, align); err == nil {
			return slot{pack: pk, off: off, size: size}, nil
		}
	}
	area, err := s.v.Alloc(vmalloc.Request{
		Size: max(size, mmu.Size2M), Space: vmalloc.SpaceModules, Huge: true, Perm: mmu.PermRX, Zero: true,
		Caller: mmu.Caller{Label: "hugepack"},
	})
	if err != nil {
		return slot{}, fmt.Errorf("new text pack: %w", err)
	}
	pk := &pack{area: area, free: vmalloc.NewSpans(0, area.Size)}
	s.packs = append(s.packs, pk)
	off, err := pk.free.Take(size, align)
	if err != nil {
		return slot{}, err
	}
	return slot{pack: pk, off: off, size: size}, nil
}

// release gives back a region's slots (filled with int3) and its rest area; packs left empty are freed.
func (s *Hugepack) release(pk *packed) error {
	var errs []error
	for _, sl := range pk.slots {
		errs = append(errs, s.k.WriteVirt(sl.pack.area.Addr+sl.off, bytes.Repeat([]byte{int3}, int(sl.size))))
		sl.pack.free.Give(sl.off, sl.size)
		if sl.pack.free.Free() == sl.pack.area.Size {
			errs = append(errs, s.v.Vfree(sl.pack.area.Addr))
			s.packs = slices.DeleteFunc(s.packs, func(x *pack) bool { return x == sl.pack })
		}
	}
	pk.slots = nil
	if pk.rest != nil {
		errs = append(errs, s.v.Vfree(pk.rest.Addr))
		pk.rest = nil
	}
	return errors.Join(errs...)
}

// SetPerm changes rights outside text freely; text lives in shared ROX pages, so its rights can only stay RX
// (EPERM otherwise: changing them would change every module sharing the pack).
func (s *Hugepack) SetPerm(p *Placed, off, size uint64, perm mmu.Perm) error {
	pk, ok := s.live[p]
	if !ok {
		return errNotPlaced(p)
	}
	size, err := checkPerm(p, off, size)
	if err != nil {
		return err
	}
	for _, rg := range p.Region.Ranges {
		if rg.Kind == Text && rg.Offset < off+size && off < rg.Offset+rg.Size && perm != mmu.PermRX {
			return fmt.Errorf("module %s: text at %#x is in a shared read-only-exec pack: cannot make it %v: %w",
				p.Module, rg.Offset, perm, syscall.EPERM)
		}
	}
	if pk.rest == nil {
		return nil
	}
	lo, hi := max(off, pk.base), min(off+size, pk.base+pk.rest.Size)
	if lo >= hi {
		return nil
	}
	return s.k.Tables.Protect(pk.rest.Addr+lo-pk.base, pageUp(hi-lo), perm)
}

func (s *Hugepack) Seal(p *Placed) error {
	return sealRanges(p, func(off, size uint64) error { return s.SetPerm(p, off, size, mmu.PermRO) })
}

func (s *Hugepack) Free(p *Placed) error {
	pk, ok := s.live[p]
	if !ok {
		return errNotPlaced(p)
	}
	delete(s.live, p)
	return s.release(pk)
}

// Stats counts whole packs as used: their free space is this strategy's waste.
func (s *Hugepack) Stats() Stats {
	st := Stats{}
	seen := map[uint64]bool{}
	for _, pk := range s.packs {
		st.Used += pk.area.Size
		countLeaves(s.k.Tables, seen, &st, pk.area.Addr, pk.area.Size)
	}
	for p, pk := range s.live {
		st.Regions++
		st.Requested += p.Region.Size
		if pk.rest != nil {
			st.Used += pk.rest.Size
			countLeaves(s.k.Tables, seen, &st, pk.rest.Addr, pk.rest.Size)
		}
	}
	return st
}
