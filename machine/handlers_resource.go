package machine

import (
	"fmt"
	"strconv"
)

// I/O port and memory regions (kernel/resource.c): __request_region claims [start, start+n) of a
// root resource (ioport_resource, iomem_resource) for a driver and returns the struct resource
// that records it, marked busy; __release_region gives it back. kemu's machine has no firmware
// or bus claims under the roots, so a request conflicts only with another driver's claim or with
// a range the root does not cover, and the kernel's answer to that is NULL (release: a warning).
//
// Two claims of one range that are both IORESOURCE_MUXED (request_muxed_region, for Super I/O
// index/data ports) make the second caller sleep until the first releases it; with one task that
// never happens, which kemu reports instead of waiting forever.

func init() {
	register("__request_region", hRequestRegion)
	register("__release_region", hReleaseRegion)
}

const (
	ioresourceMuxed = 0x00400000
	ioresourceBusy  = 0x80000000
	resourceKind    = "resource"
)

// region is one claim, kept in its registration's IDs: the root, then the range.
type region struct{ root, start, end uint64 }

func (r region) ids() []string {
	return []string{fmt.Sprintf("%#x", r.root), fmt.Sprintf("%#x", r.start), fmt.Sprintf("%#x", r.end)}
}

func regionOf(reg Registration) (region, bool) {
	if reg.Kind != resourceKind || len(reg.IDs) != 3 {
		return region{}, false
	}
	var v [3]uint64
	for i, s := range reg.IDs {
		n, err := strconv.ParseUint(s, 0, 64)
		if err != nil {
			return region{}, false
		}
		v[i] = n
	}
	return region{v[0], v[1], v[2]}, true
}

// __request_region(parent, start, n, name, flags): the new busy resource, or NULL when the range
// is outside parent or taken.
func hRequestRegion(m *Machine, t *Trap) (uint64, error) {
	parent, start, n, name, flags := t.Arg(0), t.Arg(1), t.Arg(2), t.Arg(3), t.Arg(4)
	want := region{root: parent, start: start, end: start + n - 1}
	if err := m.initResourceRoots(); err != nil {
		return 0, err
	}
	rootStart, err := m.readField("resource", "start", parent, 8)
	if err != nil {
		return 0, err
	}
	rootEnd, err := m.readField("resource", "end", parent, 8)
	if err != nil {
		return 0, err
	}
	if n == 0 || want.end < want.start || want.start < rootStart || want.end > rootEnd {
		return 0, nil
	}
	for _, reg := range m.drivers().regs {
		have, ok := regionOf(reg)
		if !ok || have.root != parent || have.end < want.start || have.start > want.end {
			continue
		}
		if flags&ioresourceMuxed != 0 {
			if hflags, err := m.readField("resource", "flags", reg.addr, 8); err == nil && hflags&ioresourceMuxed != 0 {
				m.logf(levelErr, "kemu: %s: muxed region %#x-%#x is held by %s: the one task would wait for it forever",
					m.describe(t.Return), want.start, want.end, reg.Name)
			}
		}
		return 0, nil
	}
	label := ""
	if name != 0 {
		if label, err = m.ReadCString(name, 256); err != nil {
			return 0, err
		}
	}
	res, err := hNewObject("resource")(m, t)
	if err != nil || isErrPtr(res) {
		return 0, err
	}
	rootFlags, err := m.readField("resource", "flags", parent, 8)
	if err != nil {
		return 0, err
	}
	const typeBits = 0x00001f00 | 0x0002e000 // IORESOURCE_TYPE_BITS | the extended type bits
	m.setField("resource", "name", res, 8, name)
	m.setField("resource", "start", res, 8, want.start)
	m.setField("resource", "end", res, 8, want.end)
	m.setField("resource", "flags", res, 8, rootFlags&typeBits|ioresourceBusy|flags)
	m.setField("resource", "parent", res, 8, parent)
	m.record(t, resourceKind, label, res, want.ids())
	return res, nil
}

// initResourceRoots gives ioport_resource and iomem_resource their static initializers' ranges
// and types the first time a region is requested (the machine's kernel data starts zeroed):
// I/O ports 0-IO_SPACE_LIMIT, and memory up to the CPU's physical address width, as setup_arch
// sets it. A root already set is left alone.
func (m *Machine) initResourceRoots() error {
	roots := []struct {
		sym        string
		end, flags uint64
	}{
		{"ioport_resource", 0xffff, 0x100},                             // IORESOURCE_IO
		{"iomem_resource", 1<<uint64(m.CPUInfo().PhysBits) - 1, 0x200}, // IORESOURCE_MEM
	}
	for _, r := range roots {
		sym, ok := m.prof.Lookup(r.sym)
		if !ok {
			continue
		}
		end, err := m.readField("resource", "end", sym.Addr, 8)
		if err != nil || end != 0 {
			return err
		}
		m.setField("resource", "end", sym.Addr, 8, r.end)
		m.setField("resource", "flags", sym.Addr, 8, r.flags)
	}
	return nil
}

// __release_region(parent, start, n): frees the claim of exactly that range; any other range is
// the kernel's "Trying to free nonexistent resource" warning.
func hReleaseRegion(m *Machine, t *Trap) (uint64, error) {
	parent, start, n := t.Arg(0), t.Arg(1), t.Arg(2)
	want := region{root: parent, start: start, end: start + n - 1}
	for _, reg := range m.drivers().regs {
		if have, ok := regionOf(reg); ok && have == want {
			m.unrecord(resourceKind, reg.addr)
			return 0, m.releaseObject(reg.addr, t.caller())
		}
	}
	m.logf(levelWarning, "Trying to free nonexistent resource <%016x-%016x>", want.start, want.end)
	return 0, nil
}
