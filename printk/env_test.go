package printk

import (
	"encoding/binary"
	"errors"
)

// fakeEnv is guest memory as a few regions plus a symbol table.
type fakeEnv struct {
	regions map[uint64][]byte
	symbols []fakeSymbol
	// last is the region of the previous hit: reads are mostly sequential.
	lastBase uint64
	last     []byte
}

type fakeSymbol struct {
	name   string
	addr   uint64
	size   uint64
	module string
}

var errUnmapped = errors.New("unmapped")

func newFakeEnv() *fakeEnv { return &fakeEnv{regions: map[uint64][]byte{}} }

// put maps bytes at addr.
func (e *fakeEnv) put(addr uint64, b []byte) uint64 {
	e.regions[addr] = append([]byte(nil), b...)
	e.last = nil
	return addr
}

// putString maps a NUL-terminated string at addr.
func (e *fakeEnv) putString(addr uint64, s string) uint64 {
	return e.put(addr, append([]byte(s), 0))
}

func (e *fakeEnv) putWords(addr uint64, words ...uint64) uint64 {
	b := make([]byte, 8*len(words))
	for i, w := range words {
		binary.LittleEndian.PutUint64(b[8*i:], w)
	}
	return e.put(addr, b)
}

func (e *fakeEnv) byteAt(addr uint64) (byte, bool) {
	if addr >= e.lastBase && addr-e.lastBase < uint64(len(e.last)) {
		return e.last[addr-e.lastBase], true
	}
	for base, b := range e.regions {
		if addr >= base && addr-base < uint64(len(b)) {
			e.lastBase, e.last = base, b
			return b[addr-base], true
		}
	}
	return 0, false
}

func (e *fakeEnv) Read(addr uint64, buf []byte) error {
	for i := range buf {
		c, ok := e.byteAt(addr + uint64(i))
		if !ok {
			return errUnmapped
		}
		buf[i] = c
	}
	return nil
}

func (e *fakeEnv) ReadString(addr uint64, max int) (string, error) {
	var s []byte
	for i := 0; i < max; i++ {
		c, ok := e.byteAt(addr + uint64(i))
		if !ok {
			return "", errUnmapped
		}
		if c == 0 {
			break
		}
		s = append(s, c)
	}
	return string(s), nil
}

func (e *fakeEnv) Symbolize(addr uint64) (string, uint64, uint64, string, bool) {
	for _, s := range e.symbols {
		if addr >= s.addr && addr < s.addr+s.size {
			return s.name, addr - s.addr, s.size, s.module, true
		}
	}
	return "", 0, 0, "", false
}
