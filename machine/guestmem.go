package machine

import (
	"encoding/binary"
	"fmt"
	"syscall"
)

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

// maxRead bounds Read: larger guest buffers are handled in chunks (Copy, Fill, Compare, Index).
const maxRead = 16 << 20

// Read returns n bytes of guest memory at addr (at most maxRead; more is an error, not a host
// allocation of the module's choosing).
func (m *Machine) Read(addr, n uint64) ([]byte, error) {
	if n > maxRead {
		return nil, fmt.Errorf("read %d bytes at %#x: larger than %d: %w", n, addr, maxRead, syscall.EFBIG)
	}
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

// chunk bounds the host buffer of bulk guest operations: a module asking memset or memcpy for
// terabytes faults at the first unmapped page instead of exhausting host memory.
const chunk = 64 << 10

// Copy is memmove in guest memory: n bytes from src to dst, correct for overlapping ranges, in
// bounded chunks. It stops at the first fault.
func (m *Machine) Copy(dst, src, n uint64) error {
	buf := make([]byte, min(n, chunk))
	if dst > src && dst-src < n { // overlapping with dst above src: copy from the end
		for done := uint64(0); done < n; {
			k := min(n-done, chunk)
			off := n - done - k
			if err := m.ReadAt(buf[:k], src+off); err != nil {
				return err
			}
			if err := m.WriteAt(buf[:k], dst+off); err != nil {
				return err
			}
			done += k
		}
		return nil
	}
	for off := uint64(0); off < n; {
		k := min(n-off, chunk)
		if err := m.ReadAt(buf[:k], src+off); err != nil {
			return err
		}
		if err := m.WriteAt(buf[:k], dst+off); err != nil {
			return err
		}
		off += k
	}
	return nil
}

// Fill is memset in guest memory, in bounded chunks.
func (m *Machine) Fill(dst uint64, c byte, n uint64) error {
	buf := make([]byte, min(n, chunk))
	for i := range buf {
		buf[i] = c
	}
	for off := uint64(0); off < n; {
		k := min(n-off, chunk)
		if err := m.WriteAt(buf[:k], dst+off); err != nil {
			return err
		}
		off += k
	}
	return nil
}

// Compare is memcmp over guest memory, in bounded chunks: the difference of the first differing
// bytes, or 0.
func (m *Machine) Compare(a, b, n uint64) (int, error) {
	x, y := make([]byte, min(n, chunk)), make([]byte, min(n, chunk))
	for off := uint64(0); off < n; {
		k := min(n-off, chunk)
		if err := m.ReadAt(x[:k], a+off); err != nil {
			return 0, err
		}
		if err := m.ReadAt(y[:k], b+off); err != nil {
			return 0, err
		}
		for i := uint64(0); i < k; i++ {
			if x[i] != y[i] {
				return int(x[i]) - int(y[i]), nil
			}
		}
		off += k
	}
	return 0, nil
}

// Index is memchr over guest memory: the address of the first byte c in [addr, addr+n), if any.
func (m *Machine) Index(addr uint64, c byte, n uint64) (uint64, bool, error) {
	buf := make([]byte, min(n, chunk))
	for off := uint64(0); off < n; {
		k := min(n-off, chunk)
		if err := m.ReadAt(buf[:k], addr+off); err != nil {
			return 0, false, err
		}
		for i := uint64(0); i < k; i++ {
			if buf[i] == c {
				return addr + off + i, true, nil
			}
		}
		off += k
	}
	return 0, false, nil
}

// mapped reports whether addr is readable guest memory.
func (m *Machine) mapped(addr uint64) bool {
	var b [1]byte
	return m.ReadAt(b[:], addr) == nil
}
