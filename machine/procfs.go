package machine

import (
	"fmt"
	"sort"
	"strings"
)

// The /proc files the emulated kernel serves itself, rendered in the kernel's formats from what
// the machine knows: /proc/devices (fs/char_dev.c and block/genhd.c), /proc/misc
// (drivers/char/misc.c), /proc/modules and /proc/kallsyms (from the loader's registry).

// kernelProcFiles renders each kernel-served /proc file.
var kernelProcFiles = map[string]func(m *Machine) string{
	"/proc/devices":  (*Machine).procDevices,
	"/proc/misc":     (*Machine).procMisc,
	"/proc/modules":  func(m *Machine) string { return m.registry.ProcModules() },
	"/proc/kallsyms": (*Machine).procKallsyms,
}

// procDevices is /proc/devices: one line per registered character region ("%3d %s") by major
// and first minor, then the block majors. The emulated kernel registers only the misc major
// itself (misc_init); it has no block devices.
func (m *Machine) procDevices() string {
	regions := append([]chrdevRegion{{major: miscMajor, count: 256, name: "misc"}}, m.files().regions...)
	sort.SliceStable(regions, func(i, j int) bool { // the order of the kernel's chrdevs chains
		if regions[i].major != regions[j].major {
			return regions[i].major < regions[j].major
		}
		return regions[i].baseminor < regions[j].baseminor
	})
	var b strings.Builder
	b.WriteString("Character devices:\n")
	for _, r := range regions {
		fmt.Fprintf(&b, "%3d %s\n", r.major, r.name)
	}
	b.WriteString("\nBlock devices:\n")
	return b.String()
}

// procMisc is /proc/misc: "minor name" for each misc device, newest first as misc_list keeps them.
func (m *Machine) procMisc() string {
	var b strings.Builder
	for _, e := range m.files().misc {
		fmt.Fprintf(&b, "%3d %s\n", e.minor, e.name)
	}
	return b.String()
}

// procKallsyms is /proc/kallsyms as root reads it: the kernel's symbols, then the modules'.
func (m *Machine) procKallsyms() string {
	var b strings.Builder
	for _, s := range m.prof.Symbols {
		fmt.Fprintf(&b, "%016x %c %s\n", s.Addr, s.Type, s.Name)
	}
	b.WriteString(m.registry.Kallsyms())
	return b.String()
}
