package machine

import (
	"bytes"
	"fmt"
	"strings"
	"sync"

	uc "github.com/unicorn-engine/unicorn/bindings/go/unicorn"
)

// The machine's CPU and what the kernel makes of it.
//
// Which CPU. Unicorn 2.0.1 takes a QEMU CPU model (UC_CTL_CPU_MODEL) for the identity CPUID reports
// (vendor, family/model/stepping, brand string, leaf limits, cache leaves), but its x86 reset
// (x86_reg_reset in qemu/target/i386/unicorn.c) then overwrites the feature leaves with one fixed
// set whatever the model: CPUID.1 EDX = CX8 CMOV CLFLUSH FXSR SSE SSE2, ECX = SSSE3 CX16 SSE4.1
// SSE4.2 AES; CPUID.7.0 EBX = BMI1 BMI2 ADX SMAP; CPUID.80000001 EDX = LM RDTSCP 3DNow!, ECX =
// LAHF_LM CR8_LEGACY ABM SKINIT. TCG executes all of these. It advertises neither PCLMULQDQ and
// POPCNT (which TCG could run) nor AVX/AVX2 (which QEMU 5's TCG cannot), so a module probing for
// them takes its fallback, as it would on a CPU without them.
//
// The model is Skylake-Client (Intel Core i7-6700 class: family 6, model 94, stepping 3): the
// fixed set needs an Intel CPU of Broadwell or later (ADX, SMAP), Skylake is the newest such model
// whose identity QEMU 5 offers with the client cache layout, and it is the machine the TLB presets
// and the reference notes describe. The kernel's view is then derived from CPUID exactly as 6.1's
// identify_cpu does it (cpu_detect, get_cpu_cap, the scattered bits, init_intel's synthetic bits,
// cpu_set_bug_bits with IA32_ARCH_CAPABILITIES absent) and as bugs.c picks mitigations on it
// (cpufeatures_bugs.go): Spectre v2 without IBRS means generic retpolines (X86_FEATURE_RETPOLINE), so
// apply_retpolines leaves the thunk calls alone; on Intel, Retbleed selects no return thunk
// (X86_FEATURE_RETHUNK stays clear), so apply_returns turns every `jmp __x86_return_thunk` into ret.

// cpuModel is the Unicorn CPU model every machine runs.
const cpuModel = uc.CPU_X86_SKYLAKE_CLIENT

// Vendors as cpuinfo_x86.x86_vendor numbers them (arch/x86/include/asm/processor.h).
const (
	vendorIntel   = 0
	vendorAMD     = 2
	vendorHygon   = 9
	vendorUnknown = 0xff
)

var vendorIDs = map[string]uint8{
	"GenuineIntel": vendorIntel, "AuthenticAMD": vendorAMD, "HygonGenuine": vendorHygon,
}

// cpuidFunc answers CPUID for a leaf and subleaf: eax, ebx, ecx, edx.
type cpuidFunc func(leaf, subleaf uint32) [4]uint32

// CPUInfo is the kernel's struct cpuinfo_x86 for the boot CPU, as identify_cpu fills it.
type CPUInfo struct {
	Family, Model, Stepping uint8
	Vendor                  uint8  // x86_vendor
	VendorID                string // "GenuineIntel"
	ModelID                 string // the brand string, leading spaces removed
	CPUIDLevel              uint32 // CPUID.0 eax
	ExtendedLevel           uint32 // CPUID.80000000 eax
	ClflushSize             uint16 // bytes
	CacheAlignment          uint32
	CacheSizeKB             uint32 // x86_cache_size: L3, else L2, else L1 (init_intel_cacheinfo)
	PhysBits, VirtBits      uint8
	Power                   uint32 // CPUID.80000007 edx
	Features                FeatureSet
}

// identifyCPU derives the kernel's view of the CPU from its CPUID answers.
func identifyCPU(cpuid cpuidFunc) CPUInfo {
	var c CPUInfo
	c.cpuDetect(cpuid)
	c.getCPUCap(cpuid)
	c.addressSizes(cpuid)
	c.Features.Set(featCPUID)  // CPUID exists (identify_cpu: have_cpuid_p)
	c.Features.Set(featAlways) // setup_force_cpu_cap(X86_FEATURE_ALWAYS) in early_identify_cpu
	c.Features.Set(nameFeature("X86_FEATURE_NOPL"))
	c.Features.Set(nameFeature("X86_FEATURE_SYSCALL32"))
	switch c.Vendor {
	case vendorIntel:
		c.initIntel(cpuid)
	default:
		c.cacheSizesExtended(cpuid)
	}
	c.setBugBits()
	c.selectMitigations()
	return c
}

// cpuDetect is cpu_detect(): vendor, level, family/model/stepping and the CLFLUSH line size.
func (c *CPUInfo) cpuDetect(cpuid cpuidFunc) {
	r := cpuid(0, 0)
	c.CPUIDLevel = r[0]
	c.VendorID = regString(r[1], r[3], r[2])
	c.Vendor = vendorUnknown
	if v, ok := vendorIDs[c.VendorID]; ok {
		c.Vendor = v
	}
	c.Family = 4
	if c.CPUIDLevel >= 1 {
		r = cpuid(1, 0)
		sig := r[0]
		c.Family = uint8(sig >> 8 & 0xf)
		if c.Family == 0xf {
			c.Family += uint8(sig >> 20 & 0xff)
		}
		c.Model = uint8(sig >> 4 & 0xf)
		if c.Family >= 6 {
			c.Model += uint8(sig>>16&0xf) << 4
		}
		c.Stepping = uint8(sig & 0xf)
		if r[3]&(1<<featCLFLUSH.Bit()) != 0 {
			c.ClflushSize = uint16(r[1]>>8&0xff) * 8
			c.CacheAlignment = uint32(c.ClflushSize)
		}
	}
	c.ExtendedLevel = cpuid(0x80000000, 0)[0]
	if c.ExtendedLevel >= 0x80000004 {
		var b []byte
		for leaf := uint32(0x80000002); leaf <= 0x80000004; leaf++ {
			r := cpuid(leaf, 0)
			b = append(b, []byte(regString(r[0], r[1], r[2], r[3]))...)
		}
		c.ModelID = strings.TrimLeft(string(b), " ")
	}
}

// capability words in x86_capability[] (enum cpuid_leafs) that CPUID leaves fill directly.
const (
	wordCPUID1EDX     = 0
	wordCPUID80000001 = 1 // edx
	wordCPUID1ECX     = 4
	wordCPUID8000ECX  = 6 // CPUID.80000001 ecx
	wordCPUID7EBX     = 9
	wordCPUIDD1EAX    = 10
	wordCPUID71EAX    = 12
	wordCPUID80000008 = 13 // ebx
	wordCPUID6EAX     = 14
	wordCPUID8000000A = 15 // edx
	wordCPUID7ECX     = 16
	wordCPUID80000007 = 17 // ebx
	wordCPUID7EDX     = 18
	wordCPUID8000001F = 19 // eax
	wordCPUID80000021 = 20 // eax
)

// getCPUCap is get_cpu_cap(): each CPUID word the kernel keeps, read when the leaf exists, then
// the scattered bits.
func (c *CPUInfo) getCPUCap(cpuid cpuidFunc) {
	f := &c.Features
	if c.CPUIDLevel >= 1 {
		r := cpuid(1, 0)
		f[wordCPUID1ECX], f[wordCPUID1EDX] = r[2], r[3]
	}
	if c.CPUIDLevel >= 6 {
		f[wordCPUID6EAX] = cpuid(6, 0)[0]
	}
	if c.CPUIDLevel >= 7 {
		r := cpuid(7, 0)
		f[wordCPUID7EBX], f[wordCPUID7ECX], f[wordCPUID7EDX] = r[1], r[2], r[3]
		if r[0] >= 1 {
			f[wordCPUID71EAX] = cpuid(7, 1)[0]
		}
	}
	if c.CPUIDLevel >= 0xd {
		f[wordCPUIDD1EAX] = cpuid(0xd, 1)[0]
	}
	xl := c.ExtendedLevel
	if xl&0xffff0000 == 0x80000000 && xl >= 0x80000001 {
		r := cpuid(0x80000001, 0)
		f[wordCPUID8000ECX], f[wordCPUID80000001] = r[2], r[3]
	}
	if xl >= 0x80000007 {
		r := cpuid(0x80000007, 0)
		f[wordCPUID80000007], c.Power = r[1], r[3]
	}
	if xl >= 0x80000008 {
		f[wordCPUID80000008] = cpuid(0x80000008, 0)[1]
	}
	if xl >= 0x8000000a {
		f[wordCPUID8000000A] = cpuid(0x8000000a, 0)[3]
	}
	if xl >= 0x8000001f {
		f[wordCPUID8000001F] = cpuid(0x8000001f, 0)[0]
	}
	if xl >= 0x80000021 {
		f[wordCPUID80000021] = cpuid(0x80000021, 0)[0]
	}
	c.scatteredFeatures(cpuid)
	c.speculationControl()
}

// speculationControl is init_speculation_control(): the vendor-specific speculation-control
// enumeration bits imply the generic ones (IBRS, IBPB, STIBP, SSBD, MSR_SPEC_CTRL).
func (c *CPUInfo) speculationControl() {
	f := &c.Features
	implies := []struct {
		if_  string
		then []string
	}{
		{"X86_FEATURE_SPEC_CTRL", []string{"X86_FEATURE_IBRS", "X86_FEATURE_IBPB", "X86_FEATURE_MSR_SPEC_CTRL"}},
		{"X86_FEATURE_INTEL_STIBP", []string{"X86_FEATURE_STIBP"}},
		{"X86_FEATURE_SPEC_CTRL_SSBD", []string{"X86_FEATURE_SSBD"}},
		{"X86_FEATURE_VIRT_SSBD", []string{"X86_FEATURE_SSBD"}},
		{"X86_FEATURE_AMD_IBRS", []string{"X86_FEATURE_IBRS", "X86_FEATURE_MSR_SPEC_CTRL"}},
		{"X86_FEATURE_AMD_IBPB", []string{"X86_FEATURE_IBPB"}},
		{"X86_FEATURE_AMD_STIBP", []string{"X86_FEATURE_STIBP", "X86_FEATURE_MSR_SPEC_CTRL"}},
		{"X86_FEATURE_AMD_SSBD", []string{"X86_FEATURE_SSBD", "X86_FEATURE_MSR_SPEC_CTRL"}},
	}
	for _, i := range implies {
		if f.Has(nameFeature(i.if_)) {
			for _, t := range i.then {
				f.Set(nameFeature(t))
			}
		}
	}
	if f.Has(nameFeature("X86_FEATURE_AMD_SSBD")) {
		f.Clear(nameFeature("X86_FEATURE_VIRT_SSBD"))
	}
}

// scatteredBit is one row of scattered.c's table: a feature kept in a Linux-defined word whose
// CPUID home is register reg (0-3: eax..edx), bit, of leaf.subleaf.
type scatteredBit struct {
	feature       string
	reg, bit      int
	leaf, subleaf uint32
}

var scatteredBits = []scatteredBit{
	{"X86_FEATURE_APERFMPERF", 2, 0, 0x6, 0},
	{"X86_FEATURE_EPB", 2, 3, 0x6, 0},
	{"X86_FEATURE_INTEL_PPIN", 1, 0, 0x7, 1},
	{"X86_FEATURE_RRSBA_CTRL", 3, 2, 0x7, 2},
	{"X86_FEATURE_CQM_LLC", 3, 1, 0xf, 0},
	{"X86_FEATURE_CQM_OCCUP_LLC", 3, 0, 0xf, 1},
	{"X86_FEATURE_CQM_MBM_TOTAL", 3, 1, 0xf, 1},
	{"X86_FEATURE_CQM_MBM_LOCAL", 3, 2, 0xf, 1},
	{"X86_FEATURE_CAT_L3", 1, 1, 0x10, 0},
	{"X86_FEATURE_CAT_L2", 1, 2, 0x10, 0},
	{"X86_FEATURE_CDP_L3", 2, 2, 0x10, 1},
	{"X86_FEATURE_CDP_L2", 2, 2, 0x10, 2},
	{"X86_FEATURE_MBA", 1, 3, 0x10, 0},
	{"X86_FEATURE_PER_THREAD_MBA", 2, 0, 0x10, 3},
	{"X86_FEATURE_SGX1", 0, 0, 0x12, 0},
	{"X86_FEATURE_SGX2", 0, 1, 0x12, 0},
	{"X86_FEATURE_HW_PSTATE", 3, 7, 0x80000007, 0},
	{"X86_FEATURE_CPB", 3, 9, 0x80000007, 0},
	{"X86_FEATURE_PROC_FEEDBACK", 3, 11, 0x80000007, 0},
	{"X86_FEATURE_MBA", 1, 6, 0x80000008, 0},
	{"X86_FEATURE_PERFMON_V2", 0, 0, 0x80000022, 0},
	{"X86_FEATURE_AMD_LBR_V2", 0, 1, 0x80000022, 0},
}

// scatteredFeatures is init_scattered_cpuid_features(): a bit counts only when its leaf is within
// the range's maximum (CPUID of the range's base leaf).
func (c *CPUInfo) scatteredFeatures(cpuid cpuidFunc) {
	for _, s := range scatteredBits {
		max := cpuid(s.leaf&0xffff0000, 0)[0]
		if max < s.leaf || max > s.leaf|0xffff {
			continue
		}
		if cpuid(s.leaf, s.subleaf)[s.reg]&(1<<s.bit) != 0 {
			c.Features.Set(nameFeature(s.feature))
		}
	}
}

// addressSizes is get_cpu_address_sizes(): CPUID.80000008 eax, or 36/48 bits without it.
func (c *CPUInfo) addressSizes(cpuid cpuidFunc) {
	c.PhysBits, c.VirtBits = 36, 48
	if c.ExtendedLevel >= 0x80000008 {
		r := cpuid(0x80000008, 0)
		c.VirtBits, c.PhysBits = uint8(r[0]>>8), uint8(r[0])
	}
}

// initIntel is what early_init_intel and init_intel add for an Intel CPU: synthetic capability
// bits and the cache size from the deterministic cache leaf. The firmware leaves fast strings
// enabled (IA32_MISC_ENABLE), so REP_GOOD stays.
func (c *CPUInfo) initIntel(cpuid cpuidFunc) {
	f := &c.Features
	if c.Family == 0xf && c.Model >= 3 || c.Family == 6 && c.Model >= 0xe {
		f.Set(featConstantTSC)
	}
	if c.Power&(1<<8) != 0 {
		f.Set(featConstantTSC)
		f.Set(nameFeature("X86_FEATURE_NONSTOP_TSC"))
	}
	if f.Has(featXMM2) {
		f.Set(featLfenceRdtsc)
	}
	// detect_extended_topology: leaf 0xb describes the SMT level.
	if c.CPUIDLevel >= 0xb {
		if r := cpuid(0xb, 0); r[1] != 0 && r[2]>>8&0xff == 1 {
			f.Set(nameFeature("X86_FEATURE_XTOPOLOGY"))
		}
	}
	if c.Family == 6 {
		f.Set(featREPGood)
	}
	if c.Family == 0xf {
		c.CacheAlignment = uint32(c.ClflushSize) * 2
	}
	c.cacheSizesDeterministic(cpuid)
}

// cacheSizesDeterministic is init_intel_cacheinfo() over CPUID leaf 4: x86_cache_size is the L3
// size in KB, else L2, else L1 instruction plus data.
func (c *CPUInfo) cacheSizesDeterministic(cpuid cpuidFunc) {
	if c.CPUIDLevel < 4 {
		c.cacheSizesExtended(cpuid)
		return
	}
	var l1i, l1d, l2, l3 uint32
	for i := uint32(0); i < 16; i++ {
		r := cpuid(4, i)
		typ, level := r[0]&0x1f, r[0]>>5&7
		if typ == 0 {
			break
		}
		ways, parts, line, sets := r[1]>>22+1, r[1]>>12&0x3ff+1, r[1]&0xfff+1, r[2]+1
		kb := ways * parts * line * sets / 1024
		switch {
		case level == 1 && typ == 1:
			l1d = kb
		case level == 1 && typ == 2:
			l1i = kb
		case level == 2:
			l2 = kb
		case level == 3:
			l3 = kb
		}
	}
	switch {
	case l3 != 0:
		c.CacheSizeKB = l3
	case l2 != 0:
		c.CacheSizeKB = l2
	default:
		c.CacheSizeKB = l1i + l1d
	}
}

// cacheSizesExtended is cpu_detect_cache_sizes(): the L2 size from CPUID.80000006 ecx.
func (c *CPUInfo) cacheSizesExtended(cpuid cpuidFunc) {
	if c.ExtendedLevel >= 0x80000005 {
		r := cpuid(0x80000005, 0)
		c.CacheSizeKB = r[2]>>24 + r[3]>>24
	}
	if c.ExtendedLevel >= 0x80000006 {
		c.CacheSizeKB = cpuid(0x80000006, 0)[2] >> 16
	}
}

// regString is the ASCII of CPUID registers in the given order, NULs dropped.
func regString(regs ...uint32) string {
	var b []byte
	for _, r := range regs {
		b = append(b, byte(r), byte(r>>8), byte(r>>16), byte(r>>24))
	}
	return string(bytes.TrimRight(b, "\x00"))
}

// nameFeature is a feature the machine's code names; the table test proves every such name exists.
func nameFeature(macro string) Feature {
	f, ok := FeatureByName(macro)
	if !ok {
		return ^Feature(0) // beyond every FeatureSet: Has is false, Set is a no-op
	}
	return f
}

// probed caches the first probe's result: every engine runs the same library with the same model
// and nothing the machine does before probing changes what CPUID reports, so later machines skip
// the ~2 ms of emulation runs it costs (BenchmarkProbeCPU).
var probed struct {
	sync.Mutex
	info CPUInfo
	ok   bool
}

// identifyMachineCPU is the machine's CPUInfo: probed once per process, from the first engine.
func identifyMachineCPU(cpu uc.Unicorn) (CPUInfo, error) {
	probed.Lock()
	defer probed.Unlock()
	if probed.ok {
		return probed.info, nil
	}
	info, err := probeCPU(cpu)
	if err != nil {
		return CPUInfo{}, err
	}
	probed.info, probed.ok = info, true
	return info, nil
}

// probeCPU identifies the CPU by asking it: it maps a scratch page at probeBase, runs the CPUID
// instruction for each leaf and subleaf identifyCPU asks about, and unmaps the page. It must run
// before the machine maps anything there.
func probeCPU(cpu uc.Unicorn) (CPUInfo, error) {
	const probeBase = 0x1000
	if err := cpu.MemMap(probeBase, pageSize); err != nil {
		return CPUInfo{}, fmt.Errorf("map CPUID probe page: %w", err)
	}
	defer cpu.MemUnmap(probeBase, pageSize)
	if err := cpu.MemWrite(probeBase, []byte{0x0f, 0xa2}); err != nil { // cpuid
		return CPUInfo{}, fmt.Errorf("write CPUID probe: %w", err)
	}
	var probeErr error
	ask := func(leaf, subleaf uint32) [4]uint32 {
		if probeErr != nil {
			return [4]uint32{}
		}
		_ = cpu.RegWrite(uc.X86_REG_RAX, uint64(leaf))
		_ = cpu.RegWrite(uc.X86_REG_RCX, uint64(subleaf))
		if err := cpu.Start(probeBase, probeBase+2); err != nil {
			probeErr = fmt.Errorf("CPUID %#x.%d: %w", leaf, subleaf, err)
			return [4]uint32{}
		}
		var r [4]uint32
		for i, reg := range []int{uc.X86_REG_RAX, uc.X86_REG_RBX, uc.X86_REG_RCX, uc.X86_REG_RDX} {
			v, _ := cpu.RegRead(reg)
			r[i] = uint32(v)
		}
		return r
	}
	info := identifyCPU(ask)
	return info, probeErr
}
