package oops

import (
	"debug/dwarf"
	"debug/elf"
	"encoding/binary"
	"fmt"
	"strings"
)

// loadDWARF returns the object's DWARF. An executable's is used as it is, in place. A relocatable module's
// .debug_* sections hold zeros where addresses go, plus .rela.debug_* entries saying "section S +
// addend"; debug/elf applies those against section-relative symbol values, which puts .text,
// .init.text and .exit.text all at 0 on top of each other. Here each relocation is applied against the
// section bases of layoutSections instead, so every code address in the module is distinct and equal
// to the file address the symbol table gives.
func (o *objectFile) loadDWARF() (*dwarf.Data, error) {
	sections := map[string][]byte{}
	for i, s := range o.elf.Sections {
		if !strings.HasPrefix(s.Name, ".debug_") {
			continue
		}
		data, err := o.sectionBytes(s)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", s.Name, err)
		}
		if o.rel { // an executable's DWARF is final; its .rela.debug_* (if --emit-relocs kept them) are not applied
			data = append([]byte(nil), data...)
			if err := o.relocateSection(i, data); err != nil {
				return nil, fmt.Errorf("relocate %s: %w", s.Name, err)
			}
		}
		sections[s.Name] = data
	}
	if sections[".debug_info"] == nil {
		return nil, fmt.Errorf("no DWARF: module built without debug info")
	}
	d, err := dwarf.New(sections[".debug_abbrev"], sections[".debug_aranges"], sections[".debug_frame"],
		sections[".debug_info"], sections[".debug_line"], sections[".debug_pubnames"], sections[".debug_ranges"],
		sections[".debug_str"])
	if err != nil {
		return nil, fmt.Errorf("read DWARF: %w", err)
	}
	for _, name := range []string{".debug_addr", ".debug_line_str", ".debug_str_offsets", ".debug_rnglists"} {
		if data, ok := sections[name]; ok {
			if err := d.AddSection(name, data); err != nil {
				return nil, fmt.Errorf("read DWARF %s: %w", name, err)
			}
		}
	}
	return d, nil
}

// relocateSection applies every SHT_RELA section that targets section target to its bytes.
func (o *objectFile) relocateSection(target int, data []byte) error {
	syms, err := o.elf.Symbols()
	if err != nil {
		return fmt.Errorf("symbols: %w", err)
	}
	for _, rs := range o.elf.Sections {
		if rs.Type != elf.SHT_RELA || int(rs.Info) != target {
			continue
		}
		rela, err := rs.Data()
		if err != nil {
			return fmt.Errorf("read %s: %w", rs.Name, err)
		}
		for off := 0; off+24 <= len(rela); off += 24 {
			where := binary.LittleEndian.Uint64(rela[off:])
			info := binary.LittleEndian.Uint64(rela[off+8:])
			addend := int64(binary.LittleEndian.Uint64(rela[off+16:]))
			symIdx, typ := elf.R_SYM64(info), elf.R_X86_64(elf.R_TYPE64(info))
			var value uint64
			if symIdx > 0 {
				if int(symIdx) > len(syms) {
					return fmt.Errorf("%s+%#x: symbol index %d out of range", rs.Name, where, symIdx)
				}
				value = o.symbolValue(syms[symIdx-1]) // debug/elf drops the null symbol 0
			}
			if err := applyRela(data, where, typ, value+uint64(addend)); err != nil {
				return fmt.Errorf("%s+%#x: %w", rs.Name, where, err)
			}
		}
	}
	return nil
}

// symbolValue is a relocation symbol's address in the layout of layoutSections.
func (o *objectFile) symbolValue(s elf.Symbol) uint64 {
	if idx := int(s.Section); idx > 0 && idx < len(o.sections) && s.Section < elf.SHN_LORESERVE {
		return o.sections[idx].addr + s.Value
	}
	return s.Value
}

// debugRelaSize is the width each relocation type writes.
var debugRelaSize = map[elf.R_X86_64]uint64{elf.R_X86_64_64: 8, elf.R_X86_64_32: 4, elf.R_X86_64_32S: 4, elf.R_X86_64_NONE: 0}

// applyRela writes one relocated value. Debug sections only hold absolute references; a PC-relative
// one in them would have no meaning and is reported.
func applyRela(data []byte, where uint64, typ elf.R_X86_64, v uint64) error {
	n, ok := debugRelaSize[typ]
	if !ok {
		return fmt.Errorf("relocation type %v not supported in debug sections", typ)
	}
	if where+n > uint64(len(data)) || where+n < where {
		return fmt.Errorf("relocation at %#x past the section's %d bytes", where, len(data))
	}
	switch n {
	case 8:
		binary.LittleEndian.PutUint64(data[where:], v)
	case 4:
		binary.LittleEndian.PutUint32(data[where:], uint32(v))
	}
	return nil
}
