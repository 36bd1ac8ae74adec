package placement

import (
	"errors"
	"fmt"

	"kemu/mmu"
	"kemu/vmalloc"
)

// Vmalloc places each region in its own module-area vmalloc area of 4K pages: Linux's module_alloc.
type Vmalloc struct {
	k    *mmu.Kernel
	v    *vmalloc.Allocator
	live map[*Placed]*vmalloc.Area
}

// NewVmalloc returns the vmalloc strategy over a kernel's module area.
func NewVmalloc(k *mmu.Kernel, v *vmalloc.Allocator) *Vmalloc {
	return &Vmalloc{k: k, v: v, live: map[*Placed]*vmalloc.Area{}}
}

func (s *Vmalloc) Name() string { return "vmalloc" }

func (s *Vmalloc) Place(module string, regions []Region) ([]*Placed, error) {
	return placeAll(s, module, regions, func(r Region) (*Placed, error) {
		area, err := s.v.Alloc(vmalloc.Request{
			Size: r.Size, Align: max(r.Align, mmu.PageSize), Space: vmalloc.SpaceModules, Zero: true,
			Caller: mmu.Caller{Label: module},
		})
		if err != nil {
			return nil, err
		}
		if err := protectRanges(s.k.Tables, area.Addr, r); err != nil {
			return nil, errors.Join(err, s.v.Vfree(area.Addr))
		}
		p := &Placed{Module: module, Region: r, Pieces: []Piece{{Offset: 0, Size: r.Size, Addr: area.Addr}}}
		s.live[p] = area
		return p, nil
	})
}

// placeAll validates every region, then places them in order; on failure it frees what it placed.
func placeAll(s Strategy, module string, regions []Region, place func(Region) (*Placed, error)) ([]*Placed, error) {
	for _, r := range regions {
		if err := validate(r); err != nil {
			return nil, fmt.Errorf("place %s (%s): %w", module, s.Name(), err)
		}
	}
	var out []*Placed
	for _, r := range regions {
		p, err := place(r)
		if err != nil {
			errs := []error{fmt.Errorf("place %s region %s (%s): %w", module, r.Name, s.Name(), err)}
			for _, q := range out {
				errs = append(errs, s.Free(q))
			}
			return nil, errors.Join(errs...)
		}
		out = append(out, p)
	}
	return out, nil
}

func (s *Vmalloc) SetPerm(p *Placed, off, size uint64, perm mmu.Perm) error {
	area, ok := s.live[p]
	if !ok {
		return errNotPlaced(p)
	}
	size, err := checkPerm(p, off, size)
	if err != nil {
		return err
	}
	return s.k.Tables.Protect(area.Addr+off, size, perm)
}

func (s *Vmalloc) Seal(p *Placed) error {
	return sealRanges(p, func(off, size uint64) error { return s.SetPerm(p, off, size, mmu.PermRO) })
}

func (s *Vmalloc) Free(p *Placed) error {
	area, ok := s.live[p]
	if !ok {
		return errNotPlaced(p)
	}
	delete(s.live, p)
	return s.v.Vfree(area.Addr)
}

func (s *Vmalloc) Stats() Stats {
	st := Stats{}
	seen := map[uint64]bool{}
	for p, area := range s.live {
		st.Regions++
		st.Requested += p.Region.Size
		st.Used += area.Size
		countLeaves(s.k.Tables, seen, &st, area.Addr, area.Size)
	}
	return st
}

func errNotPlaced(p *Placed) error {
	if p == nil {
		return fmt.Errorf("no placed region: %w", errUnknown)
	}
	return fmt.Errorf("module %s region %s: %w", p.Module, p.Region.Name, errUnknown)
}
