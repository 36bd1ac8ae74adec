package machine

// Port I/O delays under paravirt (arch/x86/kernel/io_delay.c): Debian's kernel is built with
// CONFIG_PARAVIRT_XXL, so inb_p/outb_p and friends call slow_down_io(), an indirect call through
// pv_ops.cpu.io_delay, which native boot points at native_io_delay. That writes port 0x80 (the
// POST code port), which no device of kemu's machine decodes, so the delay does nothing here.
// The kernel image's data starts zeroed: boot fills the pointer in (initParavirt), or every
// legacy driver's paused port access would call address 0.
//
// Not done: pv_ops.cpu.cpuid (native_cpuid), which kvm's xstate sizing calls; answering CPUID
// from a handler needs the CPU model's leaves outside of boot.

func init() {
	register("native_io_delay", hNop)
}

// initParavirt points pv_ops.cpu.io_delay at native_io_delay when the kernel has both.
func (m *Machine) initParavirt() error {
	ops, ok := m.prof.Lookup("pv_ops")
	if !ok {
		return nil
	}
	delay, ok := m.prof.Lookup("native_io_delay")
	if !ok {
		return nil
	}
	off, ok := m.fieldOffset("paravirt_patch_template", "cpu.io_delay")
	if !ok {
		return nil
	}
	return m.WriteU64(ops.Addr+off, delay.Addr)
}
