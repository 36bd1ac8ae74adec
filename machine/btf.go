package machine

// Kernel struct layouts. Offsets come from the profile's BTF, never typed by hand; until the profile
// offers struct layouts these report "unknown" and callers fall back to leaving the field zero.

// structSize is sizeof(struct name).
func (m *Machine) structSize(name string) (uint64, bool) { return 0, false }

// fieldOffset is offsetof(struct name, field).
func (m *Machine) fieldOffset(name, field string) (uint64, bool) { return 0, false }

// setField stores v (size 4 or 8 bytes) into field of the struct name at addr, when the layout is known.
func (m *Machine) setField(name, field string, addr uint64, size int, v uint64) {
	off, ok := m.fieldOffset(name, field)
	if !ok {
		return
	}
	if size == 4 {
		_ = m.WriteU32(addr+off, uint32(v))
		return
	}
	_ = m.WriteU64(addr+off, v)
}
