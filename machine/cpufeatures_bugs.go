package machine

// The X86_BUG_* bits and the mitigations 6.1 picks for them at boot, with the default command
// line: cpu_set_bug_bits() in arch/x86/kernel/cpu/common.c classifies the CPU by vendor, family and
// model against its vulnerability whitelist and blacklist and by IA32_ARCH_CAPABILITIES (which the
// emulated CPU does not enumerate, so every "*_NO" bit of it reads as 0); the *_select_mitigation()
// functions of bugs.c then force the synthetic bits that module code and the load-time patching see.

// Whitelist properties (cpu_vuln_whitelist).
const (
	noSpeculation = 1 << iota
	noMeltdown
	noSSB
	noL1TF
	noMDS
	msbdsOnly
	noSwapgs
	noITLBMultihit
	noSpectreV2
	noMMIO
	noEIBRSPBRSB
)

// Blacklist properties (cpu_vuln_blacklist).
const (
	blSRBDS = 1 << iota
	blMMIO
	blMMIOSBDS
	blRetbleed
)

// vulnEntry matches a vendor, family (anyFamily: any) and model (anyModel: any).
type vulnEntry struct {
	vendor  uint8
	family  uint8
	model   uint8
	anyFam  bool
	anyMod  bool
	anyVend bool
	props   int
}

const (
	vendorCentaur = 5
	vendorNSC     = 8
	vendorVortex  = 11
	vendorZhaoxin = 10
)

// intel6 is an Intel family-6 model entry.
func intel6(model uint8, props int) vulnEntry {
	return vulnEntry{vendor: vendorIntel, family: 6, model: model, props: props}
}

// vulnWhitelist is cpu_vuln_whitelist (Intel family-6 model numbers from intel-family.h).
var vulnWhitelist = []vulnEntry{
	{anyVend: true, family: 4, anyMod: true, props: noSpeculation},
	{vendor: vendorCentaur, family: 5, anyMod: true, props: noSpeculation},
	{vendor: vendorIntel, family: 5, anyMod: true, props: noSpeculation},
	{vendor: vendorNSC, family: 5, anyMod: true, props: noSpeculation},
	{vendor: vendorVortex, family: 5, anyMod: true, props: noSpeculation},
	{vendor: vendorVortex, family: 6, anyMod: true, props: noSpeculation},

	intel6(0x8d, noMMIO), intel6(0x8c, noMMIO), intel6(0x97, noMMIO), intel6(0x9a, noMMIO), // Tiger Lake, Alder Lake

	intel6(0x36, noSpeculation|noITLBMultihit), intel6(0x35, noSpeculation|noITLBMultihit), // Saltwell
	intel6(0x27, noSpeculation|noITLBMultihit), intel6(0x1c, noSpeculation|noITLBMultihit), // Saltwell mid, Bonnell
	intel6(0x26, noSpeculation|noITLBMultihit), // Bonnell mid

	intel6(0x37, noSSB|noL1TF|msbdsOnly|noSwapgs|noITLBMultihit), // Silvermont
	intel6(0x4d, noSSB|noL1TF|msbdsOnly|noSwapgs|noITLBMultihit),
	intel6(0x4a, noSSB|noL1TF|msbdsOnly|noSwapgs|noITLBMultihit),
	intel6(0x4c, noSSB|noL1TF|msbdsOnly|noSwapgs|noITLBMultihit), // Airmont
	intel6(0x57, noSSB|noL1TF|msbdsOnly|noSwapgs|noITLBMultihit), // Xeon Phi
	intel6(0x85, noSSB|noL1TF|msbdsOnly|noSwapgs|noITLBMultihit),

	intel6(0x0e, noSSB), // Core Yonah

	intel6(0x5a, noL1TF|msbdsOnly|noSwapgs|noITLBMultihit), // Airmont mid
	intel6(0x75, noL1TF|noSwapgs|noITLBMultihit),           // Airmont NP

	intel6(0x5c, noMDS|noL1TF|noSwapgs|noITLBMultihit|noMMIO), // Goldmont
	intel6(0x5f, noMDS|noL1TF|noSwapgs|noITLBMultihit|noMMIO),
	intel6(0x7a, noMDS|noL1TF|noSwapgs|noITLBMultihit|noMMIO|noEIBRSPBRSB), // Goldmont plus

	intel6(0x96, noEIBRSPBRSB), intel6(0x9c, noEIBRSPBRSB), // Tremont
	intel6(0x86, noITLBMultihit|noEIBRSPBRSB), // Tremont D

	{vendor: vendorAMD, family: 0x0f, anyMod: true, props: noMeltdown | noSSB | noL1TF | noMDS | noSwapgs | noITLBMultihit | noMMIO},
	{vendor: vendorAMD, family: 0x10, anyMod: true, props: noMeltdown | noSSB | noL1TF | noMDS | noSwapgs | noITLBMultihit | noMMIO},
	{vendor: vendorAMD, family: 0x11, anyMod: true, props: noMeltdown | noSSB | noL1TF | noMDS | noSwapgs | noITLBMultihit | noMMIO},
	{vendor: vendorAMD, family: 0x12, anyMod: true, props: noMeltdown | noSSB | noL1TF | noMDS | noSwapgs | noITLBMultihit | noMMIO},
	{vendor: vendorAMD, anyFam: true, anyMod: true, props: noMeltdown | noL1TF | noMDS | noSwapgs | noITLBMultihit | noMMIO},
	{vendor: vendorHygon, anyFam: true, anyMod: true, props: noMeltdown | noL1TF | noMDS | noSwapgs | noITLBMultihit | noMMIO},

	{vendor: vendorCentaur, family: 7, anyMod: true, props: noSpectreV2 | noSwapgs | noMMIO},
	{vendor: vendorZhaoxin, family: 7, anyMod: true, props: noSpectreV2 | noSwapgs | noMMIO},
}

// vulnBlacklist is cpu_vuln_blacklist (every stepping).
var vulnBlacklist = []vulnEntry{
	intel6(0x3a, blSRBDS), intel6(0x3c, blSRBDS), intel6(0x45, blSRBDS), intel6(0x46, blSRBDS), // Ivy Bridge, Haswell
	intel6(0x3f, blMMIO), intel6(0x56, blMMIO), intel6(0x47, blSRBDS), intel6(0x4f, blMMIO), // Haswell X, Broadwell
	intel6(0x3d, blSRBDS),
	intel6(0x4e, blSRBDS|blMMIO|blRetbleed), intel6(0x55, blMMIO|blRetbleed), intel6(0x5e, blSRBDS|blMMIO|blRetbleed), // Skylake
	intel6(0x8e, blSRBDS|blMMIO|blRetbleed), intel6(0x9e, blSRBDS|blMMIO|blRetbleed), // Kaby Lake
	intel6(0x66, blRetbleed),                                                               // Cannon Lake
	intel6(0x7e, blMMIO|blMMIOSBDS|blRetbleed), intel6(0x6c, blMMIO), intel6(0x6a, blMMIO), // Ice Lake
	intel6(0xa5, blMMIO|blMMIOSBDS|blRetbleed), intel6(0xa6, blMMIO|blMMIOSBDS|blRetbleed), // Comet Lake
	intel6(0x8a, blMMIO|blMMIOSBDS|blRetbleed), intel6(0xa7, blMMIO|blRetbleed), // Lakefield, Rocket Lake
	intel6(0x96, blMMIO|blMMIOSBDS), intel6(0x86, blMMIO), intel6(0x9c, blMMIO|blMMIOSBDS), // Tremont
	{vendor: vendorAMD, family: 0x15, anyMod: true, props: blRetbleed},
	{vendor: vendorAMD, family: 0x16, anyMod: true, props: blRetbleed},
	{vendor: vendorAMD, family: 0x17, anyMod: true, props: blRetbleed},
	{vendor: vendorHygon, family: 0x18, anyMod: true, props: blRetbleed},
}

// matches is cpu_matches(): the first entry of table that fits the CPU decides, and it counts when
// it has any of the asked properties.
func (c *CPUInfo) matches(table []vulnEntry, which int) bool {
	for _, e := range table {
		if (e.anyVend || e.vendor == c.Vendor) && (e.anyFam || e.family == c.Family) && (e.anyMod || e.model == c.Model) {
			return e.props&which != 0
		}
	}
	return false
}

// setBugBits is cpu_set_bug_bits() with IA32_ARCH_CAPABILITIES reading 0.
func (c *CPUInfo) setBugBits() {
	f := &c.Features
	if !c.matches(vulnWhitelist, noITLBMultihit) {
		f.Set(bugITLBMultihit)
	}
	if c.matches(vulnWhitelist, noSpeculation) {
		return
	}
	f.Set(bugSpectreV1)
	if !c.matches(vulnWhitelist, noSpectreV2) {
		f.Set(bugSpectreV2)
	}
	if !c.matches(vulnWhitelist, noSSB) && !f.Has(nameFeature("X86_FEATURE_AMD_SSB_NO")) {
		f.Set(bugSpecStoreBypass)
	}
	if !c.matches(vulnWhitelist, noMDS) {
		f.Set(bugMDS)
		if c.matches(vulnWhitelist, msbdsOnly) {
			f.Set(bugMSBDSOnly)
		}
	}
	if !c.matches(vulnWhitelist, noSwapgs) {
		f.Set(bugSwapgs)
	}
	if f.Has(featRTM) {
		f.Set(bugTAA)
	}
	if (f.Has(featRDRAND) || f.Has(nameFeature("X86_FEATURE_RDSEED"))) && c.matches(vulnBlacklist, blSRBDS|blMMIOSBDS) {
		f.Set(bugSRBDS)
	}
	switch {
	case c.matches(vulnBlacklist, blMMIO):
		f.Set(bugMMIOStaleData)
	case !c.matches(vulnWhitelist, noMMIO):
		f.Set(bugMMIOUnknown)
	}
	if !f.Has(nameFeature("X86_FEATURE_BTC_NO")) && c.matches(vulnBlacklist, blRetbleed) {
		f.Set(bugRetbleed)
	}
	if c.matches(vulnWhitelist, noMeltdown) {
		return
	}
	f.Set(bugCPUMeltdown)
	if !c.matches(vulnWhitelist, noL1TF) {
		f.Set(bugL1TF)
	}
}

// selectMitigations is what bugs.c forces with the default command line, as far as it shows in
// capability bits modules and the patcher read:
//   - Meltdown: the kernel would isolate page tables (X86_FEATURE_PTI), but kemu's kernel and user
//     process share one address space, so the machine runs as with `nopti`, which is also what its
//     oops banners print ("PREEMPT SMP NOPTI"); X86_FEATURE_PTI stays clear;
//   - Spectre v2 (spectre_v2_select_mitigation, auto): enhanced IBRS when enumerated; IBRS on an
//     Intel CPU with Retbleed and IBRS; otherwise retpolines (X86_FEATURE_RETPOLINE);
//   - Retbleed (retbleed_select_mitigation, auto): on AMD and Hygon the untrained return thunk
//     (X86_FEATURE_RETHUNK and X86_FEATURE_UNRET); on Intel the Spectre v2 choice covers it and
//     no return thunk is used.
func (c *CPUInfo) selectMitigations() {
	f := &c.Features
	if f.Has(bugSpectreV2) {
		switch {
		case f.Has(featIBRSEnhanced):
		case f.Has(bugRetbleed) && f.Has(featIBRS) && c.Vendor == vendorIntel:
			f.Set(nameFeature("X86_FEATURE_KERNEL_IBRS"))
		default:
			f.Set(featRetpoline)
		}
	}
	if f.Has(bugRetbleed) && (c.Vendor == vendorAMD || c.Vendor == vendorHygon) {
		f.Set(featRethunk)
		f.Set(featUnret)
	}
}
