package mmu

import (
	"errors"
	"fmt"
	"syscall"
)

// PageTables is one x86-64 4-level page-table tree kept in emulated physical memory, in the hardware format, with
// its table frames taken from the frame allocator. It is the source of truth for translation; every change is
// passed on to the Mirror so the CPU's flat map follows.
//
// Invariants:
//   - Root (CR3) is a zeroed-at-birth PGD frame; every present non-leaf entry points to a table frame allocated
//     from the frame allocator and owned by this tree; a table that becomes empty on Unmap is freed.
//   - Leaves are written with P, A and D set and the rights in RW and NX; intermediate entries grant RW and
//     execute (and US when a user page lies below), so a leaf alone decides a page's rights.
//   - Map never overwrites a present translation, Unmap and Protect never touch a hole: each checks the whole
//     range first and changes nothing when the check fails.
//   - When Unmap or Protect covers only part of a 2M or 1G leaf, the leaf is split into a table of the next
//     smaller pages carrying the same translation and bits (Linux's split_large_page), and the split is counted.
//   - After every successful call the Mirror has been told the same change, with the host pointer of the frames
//     for Map; splitting is invisible to the Mirror.
type PageTables struct {
	mem    *PhysMem
	frames *FrameAllocator
	mirror Mirror
	root   uint64
	stats  TableStats
}

// TableStats counts what building the tables cost.
type TableStats struct {
	Tables   int // table frames in use, the root included
	Split1G  int // 1G leaves split into 2M leaves
	Split2M  int // 2M leaves split into 4K leaves
	Mappings struct {
		Size4K, Size2M, Size1G int // leaves currently present, per page size
	}
}

// NewPageTables allocates an empty PGD. A nil mirror means no CPU follows these tables.
func NewPageTables(mem *PhysMem, frames *FrameAllocator, mirror Mirror) (*PageTables, error) {
	if mirror == nil {
		mirror = NopMirror{}
	}
	pt := &PageTables{mem: mem, frames: frames, mirror: mirror}
	root, err := pt.newTable()
	if err != nil {
		return nil, fmt.Errorf("page-table root: %w", err)
	}
	pt.root = root
	return pt, nil
}

// Root is the physical address of the PGD, what CR3 holds.
func (pt *PageTables) Root() uint64 { return pt.root }

// Stats reports table frames, splits and leaf counts.
func (pt *PageTables) Stats() TableStats { return pt.stats }

// Mem is the physical memory the tables (and the pages they map) live in.
func (pt *PageTables) Mem() *PhysMem { return pt.mem }

func (pt *PageTables) newTable() (uint64, error) {
	pa, err := pt.frames.Alloc(0)
	if err != nil {
		return 0, err
	}
	if err := pt.mem.Zero(pa, PageSize); err != nil {
		return 0, errors.Join(err, pt.frames.Free(pa, 0))
	}
	pt.stats.Tables++
	return pa, nil
}

func (pt *PageTables) freeTable(pa uint64) error {
	pt.stats.Tables--
	return pt.frames.Free(pa, 0)
}

// read loads entry idx of the table at pa. An address outside RAM reads as all ones, as a PC's floating bus
// does, which is a present entry with reserved bits set: a corrupted table faults instead of crashing kemu.
func (pt *PageTables) read(table, idx uint64) PTE {
	v, err := pt.mem.ReadU64(table + idx*8)
	if err != nil {
		return ^PTE(0)
	}
	return PTE(v)
}

func (pt *PageTables) write(table, idx uint64, e PTE) error {
	return pt.mem.WriteU64(table+idx*8, uint64(e))
}

func (pt *PageTables) countLeaf(level Level, delta int) {
	switch level {
	case LevelPTE:
		pt.stats.Mappings.Size4K += delta
	case LevelPMD:
		pt.stats.Mappings.Size2M += delta
	case LevelPUD:
		pt.stats.Mappings.Size1G += delta
	}
}

// Canonical reports whether va is a canonical 48-bit address (bits 63..47 all equal).
func Canonical(va uint64) bool {
	top := va >> 47
	return top == 0 || top == 1<<17-1
}

// checkRange validates [va, va+size) for a page-table operation at page granularity align and returns its last byte.
func checkRange(op string, va, size, align uint64) (uint64, error) {
	if size == 0 || va%align != 0 || size%align != 0 {
		return 0, fmt.Errorf("%s [%#x, +%#x): not aligned to %#x: %w", op, va, size, align, syscall.EINVAL)
	}
	last := va + size - 1
	if last < va || !Canonical(va) || !Canonical(last) || va>>47 != last>>47 {
		return 0, fmt.Errorf("%s [%#x, +%#x): not a canonical range: %w", op, va, size, syscall.EINVAL)
	}
	return last, nil
}

// Map translates [va, va+size) to physical [pa, pa+size) with pages of pageSize (4K, 2M or 1G), granting perm.
// Nothing in the range may be mapped yet (EEXIST). The whole range reaches the Mirror as one call.
func (pt *PageTables) Map(va, pa, size, pageSize uint64, perm Perm, attr Attr) error {
	level, ok := levelForSize(pageSize)
	if !ok {
		return fmt.Errorf("map %#x: page size %#x: %w", va, pageSize, syscall.EINVAL)
	}
	last, err := checkRange("map", va, size, pageSize)
	if err != nil {
		return err
	}
	if pa%pageSize != 0 || !pt.mem.contains(pa, size) {
		return fmt.Errorf("map %#x: physical [%#x, +%#x) not %#x-aligned RAM: %w", va, pa, size, pageSize, syscall.EINVAL)
	}
	if pt.anyMapped(pt.root, LevelPGD, va, last) {
		return fmt.Errorf("map [%#x, +%#x): already mapped: %w", va, size, syscall.EEXIST)
	}
	for off := uint64(0); off < size; off += pageSize {
		if err := pt.setLeaf(va+off, leafEntry(pa+off, level, perm, attr), level); err != nil {
			// Leave no half-built mapping behind: undo what was set (tables only, the mirror never saw it).
			if off > 0 {
				err = errors.Join(err, pt.change(pt.root, LevelPGD, va, va+off-1, nil))
			}
			return fmt.Errorf("map %#x: %w", va+off, err)
		}
	}
	if err := pt.mirror.Map(va, pt.mem.HostPtr(pa), size, perm|Read); err != nil {
		return errors.Join(fmt.Errorf("mirror map [%#x, +%#x): %w", va, size, err), pt.change(pt.root, LevelPGD, va, last, nil))
	}
	return nil
}

// setLeaf writes a leaf for va at level, creating missing tables on the way down.
func (pt *PageTables) setLeaf(va uint64, leaf PTE, level Level) error {
	table := pt.root
	for l := LevelPGD; l > level; l-- {
		idx := l.index(va)
		e := pt.read(table, idx)
		switch {
		case !e.Present():
			child, err := pt.newTable()
			if err != nil {
				return err
			}
			e = PTE(child) | tableEntry | leaf&PTEUser
			if err := pt.write(table, idx, e); err != nil {
				return err
			}
		case e.leafAt(l):
			return fmt.Errorf("%s entry for %#x is a leaf: %w", l, va, syscall.EEXIST)
		case leaf&PTEUser != 0 && e&PTEUser == 0:
			e |= PTEUser
			if err := pt.write(table, idx, e); err != nil {
				return err
			}
		}
		table = e.Addr()
	}
	pt.countLeaf(level, 1)
	return pt.write(table, level.index(va), leaf)
}

// Unmap removes every translation in [va, va+size), page-aligned; all of it must be mapped (ENOENT otherwise).
// Large pages partly covered are split first. Tables left empty are freed. Like vunmap_range_noflush it flushes
// no TLB, except for a split (as __split_large_page does): the caller flushes with FlushTLB when the kernel would.
func (pt *PageTables) Unmap(va, size uint64) error {
	last, err := checkRange("unmap", va, size, PageSize)
	if err != nil {
		return err
	}
	if !pt.allMapped(pt.root, LevelPGD, va, last) {
		return fmt.Errorf("unmap [%#x, +%#x): not all mapped: %w", va, size, syscall.ENOENT)
	}
	splits := pt.splits()
	if err := pt.change(pt.root, LevelPGD, va, last, nil); err != nil {
		return fmt.Errorf("unmap [%#x, +%#x): %w", va, size, err)
	}
	if err := pt.mirror.Unmap(va, size); err != nil {
		return fmt.Errorf("mirror unmap [%#x, +%#x): %w", va, size, err)
	}
	if pt.splits() != splits {
		pt.mirror.FlushTLB(va, va+size, true)
	}
	return nil
}

// Protect sets the rights of every page in [va, va+size), page-aligned; all of it must be mapped (ENOENT).
// Large pages partly covered are split first. It is change_page_attr: the TLB is flushed after the change, for
// the range, or entirely if a large page was split.
func (pt *PageTables) Protect(va, size uint64, perm Perm) error {
	last, err := checkRange("protect", va, size, PageSize)
	if err != nil {
		return err
	}
	if !pt.allMapped(pt.root, LevelPGD, va, last) {
		return fmt.Errorf("protect [%#x, +%#x): not all mapped: %w", va, size, syscall.ENOENT)
	}
	rights := permBits(perm)
	set := func(e PTE) PTE { return e&^(PTEWrite|PTENX) | rights }
	splits := pt.splits()
	if err := pt.change(pt.root, LevelPGD, va, last, set); err != nil {
		return fmt.Errorf("protect [%#x, +%#x): %w", va, size, err)
	}
	if err := pt.mirror.Protect(va, size, perm|Read); err != nil {
		return fmt.Errorf("mirror protect [%#x, +%#x): %w", va, size, err)
	}
	pt.mirror.FlushTLB(va, va+size, pt.splits() != splits)
	return nil
}

// FlushTLB invalidates the CPU's cached translations of [start, end) (flush_tlb_kernel_range): what a caller
// of Unmap does when the kernel would.
func (pt *PageTables) FlushTLB(start, end uint64) { pt.mirror.FlushTLB(start, end, false) }

// splits counts large pages split so far.
func (pt *PageTables) splits() int { return pt.stats.Split1G + pt.stats.Split2M }

// forEntries calls fn for each entry of the table at level that overlaps [va, last], with the part of the range
// that entry covers ([lo, hi]) and whether the range covers the whole entry. It stops at the first error.
func forEntries(level Level, va, last uint64, fn func(idx, lo, hi uint64, whole bool) error) error {
	span := level.Span()
	for cur := va; ; {
		base := cur &^ (span - 1)
		end := base + span - 1
		hi := min(last, end)
		if err := fn(level.index(cur), cur, hi, cur == base && hi == end); err != nil {
			return err
		}
		if hi == last {
			return nil
		}
		cur = hi + 1
	}
}

var errStop = errors.New("stop")

// anyMapped reports whether some page in [va, last] has a translation.
func (pt *PageTables) anyMapped(table uint64, level Level, va, last uint64) bool {
	err := forEntries(level, va, last, func(idx, lo, hi uint64, _ bool) error {
		e := pt.read(table, idx)
		if e.Present() && (e.leafAt(level) || pt.anyMapped(e.Addr(), level-1, lo, hi)) {
			return errStop
		}
		return nil
	})
	return err != nil
}

// allMapped reports whether every page in [va, last] has a translation.
func (pt *PageTables) allMapped(table uint64, level Level, va, last uint64) bool {
	err := forEntries(level, va, last, func(idx, lo, hi uint64, _ bool) error {
		e := pt.read(table, idx)
		if !e.Present() || (!e.leafAt(level) && !pt.allMapped(e.Addr(), level-1, lo, hi)) {
			return errStop
		}
		return nil
	})
	return err == nil
}

// change rewrites every leaf over [va, last] with fn, or clears it when fn is nil, splitting large leaves the
// range only partly covers and freeing tables it empties. The range is known to be fully mapped.
func (pt *PageTables) change(table uint64, level Level, va, last uint64, fn func(PTE) PTE) error {
	return forEntries(level, va, last, func(idx, lo, hi uint64, whole bool) error {
		e := pt.read(table, idx)
		if !e.Present() {
			return nil
		}
		if e.leafAt(level) {
			if whole {
				if fn == nil {
					pt.countLeaf(level, -1)
					return pt.write(table, idx, 0)
				}
				return pt.write(table, idx, fn(e))
			}
			var err error
			if e, err = pt.split(table, idx, e, level); err != nil {
				return err
			}
		}
		child := e.Addr()
		if err := pt.change(child, level-1, lo, hi, fn); err != nil {
			return err
		}
		if fn == nil && pt.empty(child) {
			if err := pt.write(table, idx, 0); err != nil {
				return err
			}
			return pt.freeTable(child)
		}
		return nil
	})
}

// split replaces the large leaf e (entry idx of table, at level) with a table of 512 leaves one level down that
// translate the same range with the same bits, and returns the new table entry.
func (pt *PageTables) split(table, idx uint64, e PTE, level Level) (PTE, error) {
	child, err := pt.newTable()
	if err != nil {
		return 0, fmt.Errorf("split %s page at %#x: %w", level, e.Addr(), err)
	}
	sub := level - 1
	bits := e & flagMask
	if sub == LevelPTE {
		bits &^= PTEHuge
	}
	for i := uint64(0); i < 512; i++ {
		if err := pt.write(child, i, PTE(e.Addr()+i*sub.Span())&addrMask|bits); err != nil {
			return 0, err
		}
	}
	te := PTE(child) | tableEntry | e&PTEUser
	if err := pt.write(table, idx, te); err != nil {
		return 0, err
	}
	pt.countLeaf(level, -1)
	pt.countLeaf(sub, 512)
	if level == LevelPUD {
		pt.stats.Split1G++
	} else {
		pt.stats.Split2M++
	}
	return te, nil
}

func (pt *PageTables) empty(table uint64) bool {
	for i := uint64(0); i < 512; i++ {
		if pt.read(table, i) != 0 {
			return false
		}
	}
	return true
}

// Leaf is one present translation: a page of Size at VA backed by PA.
type Leaf struct {
	VA, PA, Size uint64
	Perm         Perm
	Attr         Attr
}

// Leaves lists the translations overlapping [va, va+size) in address order (whole pages, even where a large page
// starts before va). It is how tests compare the tables with a model and how placement counts pages.
func (pt *PageTables) Leaves(va, size uint64) []Leaf {
	start := va &^ (PageSize - 1)
	end := (va + size + PageSize - 1) &^ (PageSize - 1)
	last, err := checkRange("leaves", start, end-start, PageSize)
	if err != nil {
		return nil
	}
	var out []Leaf
	pt.leaves(pt.root, LevelPGD, start, last, &out)
	return out
}

func (pt *PageTables) leaves(table uint64, level Level, va, last uint64, out *[]Leaf) {
	_ = forEntries(level, va, last, func(idx, lo, hi uint64, _ bool) error {
		e := pt.read(table, idx)
		switch {
		case !e.Present() || e.reservedAt(level):
		case e.leafAt(level):
			*out = append(*out, Leaf{VA: lo &^ (level.Span() - 1), PA: e.Addr(), Size: level.Span(), Perm: e.Perm(), Attr: e.attr()})
		default:
			pt.leaves(e.Addr(), level-1, lo, hi, out)
		}
		return nil
	})
}
