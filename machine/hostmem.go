package machine

import (
	"fmt"
	"unsafe"

	"golang.org/x/sys/unix"
)

// hostMemory is anonymous host memory outside the Go heap, which is what Unicorn's MemMapPtr needs:
// the garbage collector must never move or free bytes the emulated CPU addresses directly.
type hostMemory struct {
	bytes []byte // the mmap'd range; len is a multiple of the page size
}

// allocHost maps size bytes (rounded up to pages) of zeroed anonymous memory. The kernel commits
// pages on first touch, so large sparse regions such as the kernel image cost little.
func allocHost(size uint64) (*hostMemory, error) {
	size = pageUp(size)
	b, err := unix.Mmap(-1, 0, int(size), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS|unix.MAP_NORESERVE)
	if err != nil {
		return nil, fmt.Errorf("mmap %d bytes of host memory: %w", size, err)
	}
	return &hostMemory{bytes: b}, nil
}

func (h *hostMemory) ptr() unsafe.Pointer { return unsafe.Pointer(&h.bytes[0]) }
func (h *hostMemory) size() uint64        { return uint64(len(h.bytes)) }

func (h *hostMemory) free() error {
	if h.bytes == nil {
		return nil
	}
	err := unix.Munmap(h.bytes)
	h.bytes = nil
	return err
}

const pageSize = 4096

func pageDown(v uint64) uint64 { return v &^ (pageSize - 1) }
func pageUp(v uint64) uint64   { return (v + pageSize - 1) &^ (pageSize - 1) }
