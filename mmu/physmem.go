package mmu

import (
	"encoding/binary"
	"fmt"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// PageSize is the base page size; frames, slabs and vmalloc areas are made of these.
const PageSize = 4096

// PageShift is log2(PageSize).
const PageShift = 12

// PhysMem is the machine's RAM: one anonymous host mapping, never Go-managed memory, so that the CPU can map it
// directly (Unicorn's MemMapPtr) and the garbage collector never moves or scans it. Physical address pa is byte
// pa of that mapping. Every access is bounds-checked; nothing here panics on a bad address.
type PhysMem struct {
	mem  []byte // from unix.Mmap; nil once closed
	size uint64
}

// NewPhysMem maps size bytes of zeroed host memory as RAM. size must be a positive multiple of PageSize.
func NewPhysMem(size uint64) (*PhysMem, error) {
	if size == 0 || size%PageSize != 0 {
		return nil, fmt.Errorf("physical memory size %#x: not a positive multiple of %#x: %w", size, PageSize, syscall.EINVAL)
	}
	if size > 1<<40 || uint64(int(size)) != size {
		return nil, fmt.Errorf("physical memory size %#x: too large: %w", size, syscall.EINVAL)
	}
	mem, err := unix.Mmap(-1, 0, int(size), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS|unix.MAP_NORESERVE)
	if err != nil {
		return nil, fmt.Errorf("mmap %#x bytes of physical memory: %w", size, err)
	}
	return &PhysMem{mem: mem, size: size}, nil
}

// Size is the amount of RAM in bytes.
func (m *PhysMem) Size() uint64 { return m.size }

// Close unmaps the host memory. Host pointers handed out before become invalid; the CPU must have unmapped them.
func (m *PhysMem) Close() error {
	if m.mem == nil {
		return nil
	}
	err := unix.Munmap(m.mem)
	m.mem, m.size = nil, 0
	if err != nil {
		return fmt.Errorf("munmap physical memory: %w", err)
	}
	return nil
}

// contains reports whether [pa, pa+n) lies inside RAM, without overflowing.
func (m *PhysMem) contains(pa, n uint64) bool {
	return pa <= m.size && n <= m.size-pa
}

// HostPtr is the host address of physical byte pa, for mapping into the CPU. It is nil when pa is outside RAM.
func (m *PhysMem) HostPtr(pa uint64) unsafe.Pointer {
	if !m.contains(pa, 1) {
		return nil
	}
	return unsafe.Pointer(&m.mem[pa])
}

// Slice is the RAM bytes [pa, pa+n) themselves (not a copy), for callers that fill or poison memory in place.
func (m *PhysMem) Slice(pa, n uint64) ([]byte, error) {
	if !m.contains(pa, n) {
		return nil, m.rangeError(pa, n)
	}
	return m.mem[pa : pa+n : pa+n], nil
}

// Read copies RAM at pa into buf.
func (m *PhysMem) Read(pa uint64, buf []byte) error {
	if !m.contains(pa, uint64(len(buf))) {
		return m.rangeError(pa, uint64(len(buf)))
	}
	copy(buf, m.mem[pa:])
	return nil
}

// Write copies buf into RAM at pa.
func (m *PhysMem) Write(pa uint64, buf []byte) error {
	if !m.contains(pa, uint64(len(buf))) {
		return m.rangeError(pa, uint64(len(buf)))
	}
	copy(m.mem[pa:], buf)
	return nil
}

// Zero clears [pa, pa+n).
func (m *PhysMem) Zero(pa, n uint64) error {
	b, err := m.Slice(pa, n)
	if err != nil {
		return err
	}
	clear(b)
	return nil
}

// ReadU64 loads the little-endian quadword at pa (a page-table entry, for instance).
func (m *PhysMem) ReadU64(pa uint64) (uint64, error) {
	if !m.contains(pa, 8) {
		return 0, m.rangeError(pa, 8)
	}
	return binary.LittleEndian.Uint64(m.mem[pa:]), nil
}

// WriteU64 stores v little-endian at pa.
func (m *PhysMem) WriteU64(pa, v uint64) error {
	if !m.contains(pa, 8) {
		return m.rangeError(pa, 8)
	}
	binary.LittleEndian.PutUint64(m.mem[pa:], v)
	return nil
}

func (m *PhysMem) rangeError(pa, n uint64) error {
	return fmt.Errorf("physical access [%#x, +%#x) outside RAM of %#x bytes: %w", pa, n, m.size, syscall.EFAULT)
}
