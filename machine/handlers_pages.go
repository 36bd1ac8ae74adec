package machine

import (
	"kemu/loader"
	"kemu/mmu"
)

// The page allocator by address (mm/page_alloc.c): __get_free_pages, get_zeroed_page and
// free_pages hand out and take back 2^order physically contiguous pages through their direct-map
// address, from the same buddy allocator as the rest of the machine's memory. Freeing what was
// not allocated with that order is the kernel's "Bad page state" report (taint B), not a crash.

func init() {
	register("__get_free_pages", hGetFreePages)
	register("get_zeroed_page", hGetZeroedPage)
	register("free_pages", hFreePages)
}

const gfpNoWarn = 0x2000 // ___GFP_NOWARN

// __get_free_pages(gfp, order): the pages' address, or 0 (NULL) when memory runs out or order is
// beyond MAX_ORDER-1, which the kernel also warns about unless __GFP_NOWARN.
func hGetFreePages(m *Machine, t *Trap) (uint64, error) {
	return m.getFreePages(t, t.Arg(0), t.Arg(1)), nil
}

// get_zeroed_page(gfp) is __get_free_pages(gfp | __GFP_ZERO, 0).
func hGetZeroedPage(m *Machine, t *Trap) (uint64, error) {
	return m.getFreePages(t, t.Arg(0)|gfpZero, 0), nil
}

func (m *Machine) getFreePages(t *Trap, gfp, order uint64) uint64 {
	if order > mmu.MaxOrder {
		if gfp&gfpNoWarn == 0 {
			m.logf(levelWarning, "WARNING: CPU: 0 PID: %d at mm/page_alloc.c:5534 __alloc_pages+0x1d8/0x2e0", m.pid)
			m.logf(levelWarning, "kemu: %s: page allocation of order %d is beyond MAX_ORDER", m.describe(t.Return), order)
			m.taint |= loader.TaintWarn
		}
		return 0
	}
	va, err := m.mem.AllocPages(int(order), gfp&gfpZero != 0)
	if err != nil {
		return 0
	}
	return va
}

// free_pages(addr, order): 0 is ignored.
func hFreePages(m *Machine, t *Trap) (uint64, error) {
	addr, order := t.Arg(0), t.Arg(1)
	if addr == 0 {
		return 0, nil
	}
	if err := m.mem.FreePages(addr, int(order)); err != nil {
		pfn := uint64(0)
		if pa, ok := m.mem.DirectMapPA(addr); ok {
			pfn = pa >> mmu.PageShift
		}
		m.logf(levelAlert, "BUG: Bad page state in process %s  pfn:%05x", m.comm, pfn)
		m.logf(levelAlert, "kemu: %s: %v", m.describe(t.Return), err)
		m.taint |= loader.TaintBadPage
	}
	return 0, nil
}
