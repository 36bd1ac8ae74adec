package machine

import (
	"fmt"
	"strings"
	"sync"
)

// The CPU's capabilities as the kernel keeps them: boot_cpu_data.x86_capability[], NCAPINTS words
// of feature bits followed by NBUGINTS words of bug bits, each bit named in cpufeatures.h. One
// FeatureSet is the machine's single source of truth for "does this CPU have X": boot_cpu_data and
// the per-CPU cpu_info are written from it, x86_match_cpu and /proc/cpuinfo read it, and the
// load-time code patching (alternatives, retpolines, return thunks) decides with it.

const (
	capWords = 22 // NCAPINTS of the profile's kernel
	bugWords = 2  // NBUGINTS
)

// Feature is a bit of x86_capability: word*32 + bit, as X86_FEATURE_* and X86_BUG_* spell them.
type Feature uint16

// Word and Bit locate the feature in x86_capability[].
func (f Feature) Word() int { return int(f) / 32 }
func (f Feature) Bit() int  { return int(f) % 32 }

// IsBug reports whether f is an X86_BUG_* bit (a word after the NCAPINTS capability words).
func (f Feature) IsBug() bool { return f.Word() >= capWords }

// String is the kernel's macro name ("X86_FEATURE_XMM4_2") or "word*32+bit" for an unnamed bit.
func (f Feature) String() string {
	if n, ok := featureIndex().byNumber[f]; ok {
		return n.macro
	}
	return fmt.Sprintf("%d*32+%d", f.Word(), f.Bit())
}

// The features the machine's own code tests or sets by name; a test checks them against the table.
const (
	featCLFLUSH         Feature = 0*32 + 19
	featXMM2            Feature = 0*32 + 26
	featREPGood         Feature = 3*32 + 16
	featLfenceRdtsc     Feature = 3*32 + 18
	featAlways          Feature = 3*32 + 21
	featCPUID           Feature = 3*32 + 25
	featConstantTSC     Feature = 3*32 + 8
	featXMM4_2          Feature = 4*32 + 20
	featPTI             Feature = 7*32 + 11
	featIBRS            Feature = 7*32 + 25
	featRetpoline       Feature = 11*32 + 12
	featRetpolineLfence Feature = 11*32 + 13
	featRethunk         Feature = 11*32 + 14
	featUnret           Feature = 11*32 + 15
	featIBRSEnhanced    Feature = 7*32 + 30
	featSpecCtrl        Feature = 18*32 + 26
	featRTM             Feature = 9*32 + 11
	featRDRAND          Feature = 4*32 + 30
	featAVX             Feature = 4*32 + 28

	bugCPUMeltdown     Feature = (capWords+0)*32 + 14
	bugSpectreV1       Feature = (capWords+0)*32 + 15
	bugSpectreV2       Feature = (capWords+0)*32 + 16
	bugSpecStoreBypass Feature = (capWords+0)*32 + 17
	bugL1TF            Feature = (capWords+0)*32 + 18
	bugMDS             Feature = (capWords+0)*32 + 19
	bugMSBDSOnly       Feature = (capWords+0)*32 + 20
	bugSwapgs          Feature = (capWords+0)*32 + 21
	bugTAA             Feature = (capWords+0)*32 + 22
	bugITLBMultihit    Feature = (capWords+0)*32 + 23
	bugSRBDS           Feature = (capWords+0)*32 + 24
	bugMMIOStaleData   Feature = (capWords+0)*32 + 25
	bugMMIOUnknown     Feature = (capWords+0)*32 + 26
	bugRetbleed        Feature = (capWords+0)*32 + 27
)

// FeatureSet is x86_capability[]: the capability words, then the bug words.
type FeatureSet [capWords + bugWords]uint32

// Has reports whether f is set; a number beyond the array (a corrupt table entry) is not.
func (s *FeatureSet) Has(f Feature) bool {
	return f.Word() < len(s) && s[f.Word()]&(1<<f.Bit()) != 0
}

// Set and Clear change one bit; numbers beyond the array are ignored.
func (s *FeatureSet) Set(f Feature) {
	if f.Word() < len(s) {
		s[f.Word()] |= 1 << f.Bit()
	}
}

func (s *FeatureSet) Clear(f Feature) {
	if f.Word() < len(s) {
		s[f.Word()] &^= 1 << f.Bit()
	}
}

// List is every set bit, in x86_capability order.
func (s *FeatureSet) List() []Feature {
	var out []Feature
	for w, word := range s {
		for b := 0; b < 32; b++ {
			if word&(1<<b) != 0 {
				out = append(out, Feature(w*32+b))
			}
		}
	}
	return out
}

// ProcFlags is /proc/cpuinfo's "flags" (bugs false) or "bugs" (bugs true) line: the names of the
// set bits that have one, in bit order, space-separated, as show_cpuinfo prints them.
func (s *FeatureSet) ProcFlags(bugs bool) string {
	var names []string
	for _, f := range s.List() {
		if f.IsBug() != bugs {
			continue
		}
		if n, ok := featureIndex().byNumber[f]; ok && n.proc != "" {
			names = append(names, n.proc)
		}
	}
	return strings.Join(names, " ")
}

// FeatureByName finds a feature by its macro name ("X86_FEATURE_XMM4_2", "X86_BUG_SPECTRE_V2") or
// its /proc/cpuinfo name ("sse4_2").
func FeatureByName(name string) (Feature, bool) {
	ix := featureIndex()
	if f, ok := ix.byMacro[name]; ok {
		return f, true
	}
	f, ok := ix.byProc[name]
	return f, ok
}

// featureName is one row of cpufeatures.h.
type featureName struct {
	number Feature
	macro  string // X86_FEATURE_* or X86_BUG_*
	proc   string // the /proc/cpuinfo name, "" when the kernel hides the bit
}

type featureNameIndex struct {
	byNumber map[Feature]featureName
	byMacro  map[string]Feature
	byProc   map[string]Feature
}

// featureIndex indexes featureNames once.
var featureIndex = sync.OnceValue(func() *featureNameIndex {
	ix := &featureNameIndex{
		byNumber: make(map[Feature]featureName, len(featureNames)),
		byMacro:  make(map[string]Feature, len(featureNames)),
		byProc:   make(map[string]Feature, len(featureNames)),
	}
	for _, n := range featureNames {
		ix.byNumber[n.number] = n
		ix.byMacro[n.macro] = n.number
		if n.proc != "" {
			ix.byProc[n.proc] = n.number
		}
	}
	return ix
})
