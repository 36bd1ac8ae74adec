package machine

import (
	"encoding/binary"
	"fmt"

	"kemu/loader"
)

// Load-time text patching the kernel applies to every module on this CPU, after relocation and
// before init runs:
//   - ftrace (CONFIG_DYNAMIC_FTRACE): every `call __fentry__` listed in __mcount_loc becomes a
//     5-byte NOP (ftrace_module_init -> ftrace_make_nop), as in every 6.1 oops Code: line;
//   - return thunks (apply_returns): on a CPU without the retbleed bug X86_FEATURE_RETHUNK is off,
//     so every `jmp __x86_return_thunk` listed in .return_sites becomes `ret; int3; int3; ...`.
// Besides matching the kernel's bytes, this keeps the hottest call sites of module code off the
// kernel's thunk pages.

var (
	nop5      = []byte{0x0f, 0x1f, 0x44, 0x00, 0x00} // BYTES_NOP5, x86_nops[5]
	retInt3x4 = []byte{0xc3, 0xcc, 0xcc, 0xcc, 0xcc} // RET_INSN_OPCODE then INT3_INSN_OPCODE
)

// patchModuleText applies the load-time patches to an installed module.
func (m *Machine) patchModuleText(mod *loader.Module) error {
	fentry, hasFentry := m.prof.Lookup("__fentry__")
	thunk, hasThunk := m.prof.Lookup("__x86_return_thunk")
	for _, sec := range mod.Sections {
		var err error
		switch {
		case sec.Name == "__mcount_loc" && hasFentry:
			err = m.patchSites(sec, 8, fentry.Addr, 0xe8, nop5)
		case sec.Name == ".return_sites" && hasThunk:
			err = m.patchSites(sec, 4, thunk.Addr, 0xe9, retInt3x4)
		}
		if err != nil {
			return fmt.Errorf("patch %s %s: %w", mod.Name, sec.Name, err)
		}
	}
	return nil
}

// patchSites rewrites each 5-byte rel32 call/jmp (opcode op) to target listed in sec: entries are
// absolute addresses (width 8) or 32-bit offsets from the entry itself (width 4). A site that is not
// such an instruction is left alone, as the kernel leaves it (after a WARN).
func (m *Machine) patchSites(sec loader.Section, width int, target uint64, op byte, with []byte) error {
	table, err := m.Read(sec.Addr, sec.Size)
	if err != nil {
		return err
	}
	for i := 0; i+width <= len(table); i += width {
		var site uint64
		if width == 8 {
			site = binary.LittleEndian.Uint64(table[i:])
		} else {
			site = sec.Addr + uint64(i) + uint64(int64(int32(binary.LittleEndian.Uint32(table[i:]))))
		}
		var insn [5]byte
		if m.ReadAt(insn[:], site) != nil || insn[0] != op {
			continue
		}
		if site+5+uint64(int64(int32(binary.LittleEndian.Uint32(insn[1:])))) != target {
			continue
		}
		if err := m.mem.WriteVirt(site, with); err != nil {
			return err
		}
		if err := m.dropTranslations(site, site+5); err != nil {
			return err
		}
	}
	return nil
}
