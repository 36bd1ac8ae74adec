package machine

// Kernel struct layouts come from the profile's BTF, never typed by hand. A profile without BTF
// (hand-built test kernels) reports every layout unknown, and callers leave such fields zero.

// structSize is sizeof(struct name).
func (m *Machine) structSize(name string) (uint64, bool) {
	s, err := m.prof.Struct(name)
	if err != nil {
		return 0, false
	}
	return s.Size, true
}

// fieldOffset is offsetof(struct name, path); path may be dotted ("kobj.name").
func (m *Machine) fieldOffset(name, path string) (uint64, bool) {
	s, err := m.prof.Struct(name)
	if err != nil {
		return 0, false
	}
	off, err := s.Offset(path)
	return off, err == nil
}

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
