package machine

import "encoding/binary"

// Checked guest memory access for the emulated kernel. Every read or write a handler makes on a
// pointer the module passed goes through these, so a bad pointer becomes a *Fault (and then an oops),
// never a host panic.

// ReadAt fills b from guest memory at addr.
func (m *Machine) ReadAt(b []byte, addr uint64) error {
	if len(b) == 0 {
		return nil
	}
	if addr+uint64(len(b)) < addr {
		return &Fault{Addr: addr, Access: AccessRead}
	}
	if err := m.cpu.MemReadInto(b, addr); err != nil {
		return m.locateFault(addr, uint64(len(b)), AccessRead)
	}
	return nil
}

// WriteAt copies b into guest memory at addr.
func (m *Machine) WriteAt(b []byte, addr uint64) error {
	if len(b) == 0 {
		return nil
	}
	if addr+uint64(len(b)) < addr {
		return &Fault{Addr: addr, Access: AccessWrite}
	}
	if err := m.cpu.MemWrite(addr, b); err != nil {
		return m.locateFault(addr, uint64(len(b)), AccessWrite)
	}
	return nil
}

// locateFault finds the first page of [addr, addr+n) that is not mapped, for the fault address.
func (m *Machine) locateFault(addr, n uint64, acc Access) *Fault {
	var one [1]byte
	for p := addr; p < addr+n; p = pageDown(p) + pageSize {
		if m.cpu.MemReadInto(one[:], p) != nil {
			return &Fault{Addr: p, Access: acc}
		}
		if pageDown(p)+pageSize < p { // wrapped
			break
		}
	}
	return &Fault{Addr: addr, Access: acc}
}

// Read returns n bytes of guest memory at addr.
func (m *Machine) Read(addr, n uint64) ([]byte, error) {
	b := make([]byte, n)
	return b, m.ReadAt(b, addr)
}

// ReadU64 reads a little-endian 64-bit value.
func (m *Machine) ReadU64(addr uint64) (uint64, error) {
	var b [8]byte
	err := m.ReadAt(b[:], addr)
	return binary.LittleEndian.Uint64(b[:]), err
}

// ReadU32 reads a little-endian 32-bit value.
func (m *Machine) ReadU32(addr uint64) (uint32, error) {
	var b [4]byte
	err := m.ReadAt(b[:], addr)
	return binary.LittleEndian.Uint32(b[:]), err
}

// WriteU64 writes a little-endian 64-bit value.
func (m *Machine) WriteU64(addr, v uint64) error {
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], v)
	return m.WriteAt(b[:], addr)
}

// WriteU32 writes a little-endian 32-bit value.
func (m *Machine) WriteU32(addr uint64, v uint32) error {
	var b [4]byte
	binary.LittleEndian.PutUint32(b[:], v)
	return m.WriteAt(b[:], addr)
}

// ReadCString reads a NUL-terminated string of at most max bytes (without the NUL). A string that
// runs into unmapped memory faults there, as strlen would.
func (m *Machine) ReadCString(addr uint64, max int) (string, error) {
	var out []byte
	var chunk [64]byte
	for len(out) < max {
		// Read up to the end of the page so a string ending just before a hole does not fault.
		n := min(uint64(len(chunk)), pageDown(addr)+pageSize-addr, uint64(max-len(out)))
		if err := m.ReadAt(chunk[:n], addr); err != nil {
			return string(out), err
		}
		for i := uint64(0); i < n; i++ {
			if chunk[i] == 0 {
				return string(append(out, chunk[:i]...)), nil
			}
		}
		out = append(out, chunk[:n]...)
		addr += n
	}
	return string(out), nil
}

// StrLen is the length of the NUL-terminated string at addr.
func (m *Machine) StrLen(addr uint64, max int) (uint64, error) {
	s, err := m.ReadCString(addr, max)
	return uint64(len(s)), err
}
