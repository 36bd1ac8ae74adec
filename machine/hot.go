package machine

import "bytes"

// Hot thunks. Nearly every module function starts with `call __fentry__`, returns through
// `jmp __x86_return_thunk` and makes indirect calls through `__x86_indirect_thunk_<reg>`. Trapping each
// of those into Go would cost a CPU stop and restart (microseconds) per guest function call, so the
// pages holding them are executable and carry real instructions with the thunks' behaviour. Every other
// byte of such a page is int3, so a call to another kernel function that shares the page still traps,
// through a CPU exception instead of a fetch fault (trapAddress in run.go accounts for both).

// int3 fills the executable thunk pages.
const int3 = 0xcc

// hotThunks is the machine code each hot symbol gets: x86-64 encodings of `ret` and `jmp *%reg`.
var hotThunks = map[string][]byte{
	"__fentry__":               {0xc3}, // ftrace is off: the call returns at once
	"__x86_return_thunk":       {0xc3}, // return-thunk mitigation off: a plain ret
	"__x86_indirect_thunk_rax": {0xff, 0xe0},
	"__x86_indirect_thunk_rcx": {0xff, 0xe1},
	"__x86_indirect_thunk_rdx": {0xff, 0xe2},
	"__x86_indirect_thunk_rbx": {0xff, 0xe3},
	"__x86_indirect_thunk_rsp": {0xff, 0xe4},
	"__x86_indirect_thunk_rbp": {0xff, 0xe5},
	"__x86_indirect_thunk_rsi": {0xff, 0xe6},
	"__x86_indirect_thunk_rdi": {0xff, 0xe7},
	"__x86_indirect_thunk_r8":  {0x41, 0xff, 0xe0},
	"__x86_indirect_thunk_r9":  {0x41, 0xff, 0xe1},
	"__x86_indirect_thunk_r10": {0x41, 0xff, 0xe2},
	"__x86_indirect_thunk_r11": {0x41, 0xff, 0xe3},
	"__x86_indirect_thunk_r12": {0x41, 0xff, 0xe4},
	"__x86_indirect_thunk_r13": {0x41, 0xff, 0xe5},
	"__x86_indirect_thunk_r14": {0x41, 0xff, 0xe6},
	"__x86_indirect_thunk_r15": {0x41, 0xff, 0xe7},
}

// mapHotThunks writes the thunks into the image and makes their pages executable.
func (m *Machine) mapHotThunks() error {
	pages := map[uint64]bool{}
	for name := range hotThunks {
		if s, ok := m.prof.Lookup(name); ok && m.inImage(s.Addr) {
			pages[pageDown(s.Addr)] = true
		}
	}
	for p := range pages {
		if err := m.mem.WriteVirt(p, bytes.Repeat([]byte{int3}, pageSize)); err != nil {
			return err
		}
	}
	for name, code := range hotThunks {
		if s, ok := m.prof.Lookup(name); ok && m.inImage(s.Addr) {
			if err := m.mem.WriteVirt(s.Addr, code); err != nil {
				return err
			}
		}
	}
	for p := range pages {
		if err := m.protect(p, pageSize, PermRead|PermExec); err != nil {
			return err
		}
	}
	return nil
}

// onHotPage reports whether addr lies on one of the executable thunk pages.
func (m *Machine) onHotPage(addr uint64) bool {
	if m.image == nil || addr < m.image.start || addr >= m.image.end {
		return false
	}
	var b [1]byte
	return m.ReadAt(b[:], addr) == nil && b[0] == int3 && m.isHotPage(pageDown(addr))
}

func (m *Machine) isHotPage(p uint64) bool {
	for name := range hotThunks {
		if s, ok := m.prof.Lookup(name); ok && pageDown(s.Addr) == p {
			return true
		}
	}
	return false
}
