// Package mmutest provides a fake CPU for tests of the memory model: a Mirror that keeps its own flat
// page -> (host pointer, rights) map, as Unicorn's MemMapPtr regions would, and reads and writes guest virtual
// memory through it. Tests compare it with the page tables to prove the mirror follows them.
package mmutest

import (
	"fmt"
	"maps"
	"slices"
	"unsafe"

	"kemu/mmu"
)

// Page is what the fake CPU knows about one 4K guest page.
type Page struct {
	Host unsafe.Pointer
	Perm mmu.Perm
}

// Mirror is a strict fake CPU: mapping a mapped page, or unmapping or protecting an unmapped one, is an error,
// as it is for Unicorn.
type Mirror struct {
	Pages   map[uint64]Page // by page-aligned guest virtual address
	Calls   int             // Map, Unmap and Protect calls received
	Flushes []Flush         // FlushTLB calls received, in order
}

// Flush is one FlushTLB call.
type Flush struct {
	Start, End uint64
	All        bool
}

// NewMirror returns an empty fake CPU.
func NewMirror() *Mirror { return &Mirror{Pages: map[uint64]Page{}} }

func (m *Mirror) Map(va uint64, host unsafe.Pointer, size uint64, perm mmu.Perm) error {
	m.Calls++
	if host == nil || va%mmu.PageSize != 0 || size%mmu.PageSize != 0 {
		return fmt.Errorf("fake map %#x+%#x: bad arguments", va, size)
	}
	for off := uint64(0); off < size; off += mmu.PageSize {
		if _, ok := m.Pages[va+off]; ok {
			return fmt.Errorf("fake map: %#x already mapped", va+off)
		}
	}
	for off := uint64(0); off < size; off += mmu.PageSize {
		m.Pages[va+off] = Page{Host: unsafe.Add(host, off), Perm: perm}
	}
	return nil
}

func (m *Mirror) Unmap(va, size uint64) error {
	m.Calls++
	if err := m.mapped(va, size); err != nil {
		return err
	}
	for off := uint64(0); off < size; off += mmu.PageSize {
		delete(m.Pages, va+off)
	}
	return nil
}

func (m *Mirror) FlushTLB(start, end uint64, all bool) {
	m.Flushes = append(m.Flushes, Flush{Start: start, End: end, All: all})
}

func (m *Mirror) Protect(va, size uint64, perm mmu.Perm) error {
	m.Calls++
	if err := m.mapped(va, size); err != nil {
		return err
	}
	for off := uint64(0); off < size; off += mmu.PageSize {
		p := m.Pages[va+off]
		p.Perm = perm
		m.Pages[va+off] = p
	}
	return nil
}

func (m *Mirror) mapped(va, size uint64) error {
	for off := uint64(0); off < size; off += mmu.PageSize {
		if _, ok := m.Pages[va+off]; !ok {
			return fmt.Errorf("fake mirror: %#x not mapped", va+off)
		}
	}
	return nil
}

// Bytes is the host memory behind guest [va, va+n), which must lie in one page.
func (m *Mirror) Bytes(va uint64, n int) ([]byte, error) {
	p, ok := m.Pages[va&^(mmu.PageSize-1)]
	off := va & (mmu.PageSize - 1)
	if !ok || off+uint64(n) > mmu.PageSize {
		return nil, fmt.Errorf("fake mirror: [%#x, +%#x) not in one mapped page", va, n)
	}
	return unsafe.Slice((*byte)(unsafe.Add(p.Host, off)), n), nil
}

// VAs lists the mapped pages in address order.
func (m *Mirror) VAs() []uint64 { return slices.Sorted(maps.Keys(m.Pages)) }
