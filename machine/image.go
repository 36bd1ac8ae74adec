package machine

import (
	"fmt"
	"strings"

	"kemu/mmu"
	"kemu/profile"
)

// layout is the kernel address-space layout the machine's data and checks refer to: the mmu's
// (x86-64 with 4-level paging, Documentation/arch/x86/x86_64/mm.rst), named once here.
type layout struct {
	directMap   uint64 // page_offset_base
	vmallocBase uint64 // vmalloc_base
	vmemmapBase uint64 // vmemmap_base
	kernelMap   uint64 // __START_KERNEL_map
	modules     uint64 // MODULES_VADDR
	modulesEnd  uint64
}

func defaultLayout() layout {
	return layout{
		directMap:   mmu.PageOffsetBase,
		vmallocBase: mmu.VmallocStart,
		vmemmapBase: mmu.VmemmapBase,
		kernelMap:   mmu.StartKernelMap,
		modules:     mmu.ModulesVaddr,
		modulesEnd:  mmu.ModulesEnd,
	}
}

// kernelImage is the kernel's text and data at their System.map addresses.
type kernelImage struct {
	start, end         uint64 // span of every kernel-image symbol, in whole 2M pages where possible
	textStart, textEnd uint64 // [_text, _etext): readable, not executable: calls into it trap
}

// maxImage bounds the image to the kernel text mapping (1 GiB), whatever a profile claims.
const maxImage = 1 << 30

// inImage reports whether addr is a kernel-image address (as opposed to a per-CPU offset or an
// absolute symbol).
func (m *Machine) inImage(addr uint64) bool {
	return addr >= m.layout.kernelMap && addr < m.layout.modules
}

// mapImage backs every kernel-image symbol with zeroed memory. Data is read-write; [_text, _etext) is
// read-only and never executable, so a call to a kernel function faults at its address and reaches
// the dispatcher. Pages holding a hot thunk become executable and hold real instructions (hot.go).
func (m *Machine) mapImage() error {
	img := &kernelImage{}
	first := true
	for _, s := range m.prof.Symbols {
		if !m.inImage(s.Addr) {
			continue
		}
		if first {
			img.start, first = pageDown(s.Addr), false
		}
		img.end = s.Addr
	}
	if first {
		return fmt.Errorf("profile %s has no kernel-image symbols", m.prof.Release)
	}
	// The last symbol (normally _end) gets one page of its own. The image is mapped with 2M pages,
	// as Linux maps it, when its start is 2M aligned.
	img.end = pageUp(img.end + 1)
	if img.start%mmu.Size2M == 0 {
		img.end = (img.end + mmu.Size2M - 1) &^ (mmu.Size2M - 1)
	}
	if img.end-img.start > maxImage {
		return fmt.Errorf("kernel image %#x-%#x is larger than the kernel text mapping", img.start, img.end)
	}
	if _, err := m.mem.MapKernelImage(img.start-mmu.StartKernelMap, img.end-img.start, mmu.PermRW); err != nil {
		return err
	}
	m.image = img
	if t, ok := m.prof.Lookup("_text"); ok {
		if e, ok := m.prof.Lookup("_etext"); ok && e.Addr > t.Addr {
			img.textStart, img.textEnd = pageDown(t.Addr), pageUp(e.Addr)
			if err := m.protect(img.textStart, img.textEnd-img.textStart, PermRead); err != nil {
				return err
			}
		}
	}
	return m.mapHotThunks()
}

// isFunction reports whether a System.map symbol is code: text symbols and weak ones in the text.
func (m *Machine) isFunction(s profile.Symbol) bool {
	switch s.Type {
	case 'T', 't':
		return true
	case 'W', 'w':
		return m.image.textEnd == 0 || (s.Addr >= m.image.textStart && s.Addr < m.image.textEnd)
	}
	return false
}

// perCPUSymbol reports whether s is a per-CPU variable: its System.map value is an offset into the
// .data..percpu section (which starts at 0 on x86-64 SMP), not an address.
func (m *Machine) perCPUSymbol(s profile.Symbol) bool {
	if end, ok := m.prof.Lookup("__per_cpu_end"); ok {
		return s.Addr < end.Addr && !strings.HasPrefix(s.Name, "__per_cpu_end")
	}
	return s.Addr < 1<<24
}
