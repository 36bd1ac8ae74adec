package machine

import (
	"encoding/binary"
	"fmt"
	"strconv"
	"strings"
)

// The boot CPU as kernel data: boot_cpu_data and CPU 0's per-CPU cpu_info (struct cpuinfo_x86,
// layout from BTF) written from the machine's CPUInfo, which boot_cpu_has(), this_cpu_has() and
// cpu_data(0) read in module code, and /proc/cpuinfo rendered from the same CPUInfo.

func init() { kernelProcFiles["/proc/cpuinfo"] = (*Machine).procCPUInfo }

// CPUInfo is the kernel's view of the machine's CPU (vendor, model, capability and bug bits).
func (m *Machine) CPUInfo() *CPUInfo { return &m.cpuInfo }

// setupCPUData writes boot_cpu_data and cpu_info; a kernel without the symbols or without BTF for
// struct cpuinfo_x86 is left as it is (zeroed memory).
func (m *Machine) setupCPUData() error {
	if s, ok := m.prof.Lookup("boot_cpu_data"); ok && m.inImage(s.Addr) {
		if err := m.writeCPUInfo(s.Addr); err != nil {
			return fmt.Errorf("boot_cpu_data: %w", err)
		}
	}
	if s, ok := m.prof.Lookup("cpu_info"); ok && m.perCPUSymbol(s) {
		if err := m.writeCPUInfo(m.percpu + s.Addr); err != nil {
			return fmt.Errorf("cpu_info: %w", err)
		}
	}
	return nil
}

// writeCPUInfo fills the struct cpuinfo_x86 at addr: identify_cpu's fields for a single-core,
// single-thread CPU 0.
func (m *Machine) writeCPUInfo(addr uint64) error {
	const name = "cpuinfo_x86"
	st, err := m.prof.Struct(name)
	if err != nil {
		return nil
	}
	c := &m.cpuInfo
	fields := []struct {
		field string
		value uint64
	}{
		{"x86", uint64(c.Family)},
		{"x86_vendor", uint64(c.Vendor)},
		{"x86_model", uint64(c.Model)},
		{"x86_stepping", uint64(c.Stepping)},
		{"x86_virt_bits", uint64(c.VirtBits)},
		{"x86_phys_bits", uint64(c.PhysBits)},
		{"x86_cache_bits", uint64(c.PhysBits)},
		{"extended_cpuid_level", uint64(c.ExtendedLevel)},
		{"cpuid_level", uint64(c.CPUIDLevel)},
		{"x86_cache_size", uint64(c.CacheSizeKB)},
		{"x86_cache_alignment", uint64(c.CacheAlignment)},
		{"x86_power", uint64(c.Power)},
		{"x86_max_cores", 1},
		{"booted_cores", 1},
		{"x86_clflush_size", uint64(c.ClflushSize)},
		{"loops_per_jiffy", m.loopsPerJiffy()},
	}
	for _, f := range fields {
		fl, err := st.Field(f.field)
		if err != nil || fl.Size == 0 || fl.Size > 8 {
			continue // a kernel without this field
		}
		var b [8]byte
		binary.LittleEndian.PutUint64(b[:], f.value)
		if err := m.WriteAt(b[:fl.Size], addr+fl.Offset); err != nil {
			return fmt.Errorf("%s.%s: %w", name, f.field, err)
		}
	}
	for _, s := range []struct{ field, text string }{{"x86_vendor_id", c.VendorID}, {"x86_model_id", c.ModelID}} {
		fl, err := st.Field(s.field)
		if err != nil || fl.Size == 0 {
			continue
		}
		b := make([]byte, fl.Size) // NUL-padded, always terminated
		copy(b[:fl.Size-1], s.text)
		if err := m.WriteAt(b, addr+fl.Offset); err != nil {
			return fmt.Errorf("%s.%s: %w", name, s.field, err)
		}
	}
	if fl, err := st.Field("x86_capability"); err == nil {
		words := min(int(fl.Size/4), len(c.Features))
		b := make([]byte, 4*words)
		for i := 0; i < words; i++ {
			binary.LittleEndian.PutUint32(b[4*i:], c.Features[i])
		}
		if err := m.WriteAt(b, addr+fl.Offset); err != nil {
			return fmt.Errorf("%s.x86_capability: %w", name, err)
		}
	}
	return nil
}

// bogoMIPSKHz is the clock the delay loop is calibrated against when the kernel has no figure.
const bogoMIPSKHz = 2_000_000

// loopsPerJiffy is the delay-loop calibration: the kernel's loops_per_jiffy when the emulated kernel
// set it, else what a 2 GHz clock gives at the profile's HZ.
func (m *Machine) loopsPerJiffy() uint64 {
	if s, ok := m.prof.Lookup("loops_per_jiffy"); ok && m.inImage(s.Addr) {
		if v, err := m.ReadU64(s.Addr); err == nil && v != 0 {
			return v
		}
	}
	return bogoMIPSKHz * 1000 / m.hz()
}

// hz is the profile's CONFIG_HZ (250 when it does not say).
func (m *Machine) hz() uint64 {
	if v, err := strconv.ParseUint(m.prof.Config["CONFIG_HZ"], 10, 32); err == nil && v > 0 {
		return v
	}
	return 250
}

// x86PowerFlags names CPUID.80000007 edx bits as /proc/cpuinfo does (x86_power_flags in powerflags.c).
var x86PowerFlags = []string{"ts", "fid", "vid", "ttp", "tm", "stc", "100mhzsteps", "hwpstate", "",
	"cpb", "eff_freq_ro", "proc_feedback", "acc_power"}

// procCPUInfo is /proc/cpuinfo for the one CPU, in show_cpuinfo's format (x86-64, SMP).
func (m *Machine) procCPUInfo() string {
	c := &m.cpuInfo
	var b strings.Builder
	orUnknown := func(s string) string {
		if s == "" {
			return "unknown"
		}
		return s
	}
	fmt.Fprintf(&b, "processor\t: 0\nvendor_id\t: %s\ncpu family\t: %d\nmodel\t\t: %d\nmodel name\t: %s\n",
		orUnknown(c.VendorID), c.Family, c.Model, orUnknown(c.ModelID))
	fmt.Fprintf(&b, "stepping\t: %d\n", c.Stepping)
	if c.Features.Has(nameFeature("X86_FEATURE_TSC")) {
		fmt.Fprintf(&b, "cpu MHz\t\t: %d.%03d\n", bogoMIPSKHz/1000, bogoMIPSKHz%1000)
	}
	if c.CacheSizeKB != 0 {
		fmt.Fprintf(&b, "cache size\t: %d KB\n", c.CacheSizeKB)
	}
	b.WriteString("physical id\t: 0\nsiblings\t: 1\ncore id\t\t: 0\ncpu cores\t: 1\napicid\t\t: 0\ninitial apicid\t: 0\n")
	fmt.Fprintf(&b, "fpu\t\t: yes\nfpu_exception\t: yes\ncpuid level\t: %d\nwp\t\t: yes\n", c.CPUIDLevel)
	b.WriteString("flags\t\t:" + spaced(c.Features.ProcFlags(false)) + "\n")
	b.WriteString("bugs\t\t:" + spaced(c.Features.ProcFlags(true)) + "\n")
	lpj, hz := m.loopsPerJiffy(), m.hz()
	fmt.Fprintf(&b, "bogomips\t: %d.%02d\n", lpj/(500000/hz), lpj/(5000/hz)%100)
	fmt.Fprintf(&b, "clflush size\t: %d\ncache_alignment\t: %d\n", c.ClflushSize, c.CacheAlignment)
	fmt.Fprintf(&b, "address sizes\t: %d bits physical, %d bits virtual\n", c.PhysBits, c.VirtBits)
	b.WriteString("power management:")
	for i := 0; i < 32; i++ {
		if c.Power&(1<<i) == 0 {
			continue
		}
		if i < len(x86PowerFlags) {
			b.WriteString(spaced(x86PowerFlags[i])) // bit 8 is shown as constant_tsc instead
		} else {
			fmt.Fprintf(&b, " [%d]", i)
		}
	}
	b.WriteString("\n\n")
	return b.String()
}

// spaced is s after a space, or nothing for an empty s: seq_printf(" %s") per name.
func spaced(s string) string {
	if s == "" {
		return ""
	}
	return " " + s
}
