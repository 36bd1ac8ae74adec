// Package oops reads Linux kernel crash reports (oopses, BUGs, WARNINGs, general protection faults,
// soft lockups, KASAN reports, panics) out of console or dmesg text and makes them readable: every
// address becomes "sym+off/size [module] file:line" with inline frames, and the Code: bytes become an
// assembly listing with the trapping instruction marked. It is what `kemu decode` runs, a ksymoops for
// today's kernels.
//
// The work is split in three steps, each usable alone:
//
//   - Parse segments text into Reports. It strips console prefixes (timestamps, syslog and journal
//     prefixes, printk caller ids), rejoins wrapped lines, skips lines interleaved from other CPUs and
//     reads Linux 4.x, 5.x and 6.x layouts. Parsing never fails on bad input: what cannot be read is
//     left out of the Report.
//   - A Symbolizer, built from any mix of /proc/kallsyms, System.map, /proc/modules, module files
//     (.ko, compressed or not) and vmlinux, resolves frames. Frames printed as "name+off/size [mod]"
//     resolve by name against the module's own symbol table, so no load address is needed. Source
//     lines come from DWARF through debug/dwarf; a relocatable module's DWARF is relocated here first
//     (see debugInfo), with every allocated section given its own base address.
//   - Format writes the annotated text report; Reports also marshal to JSON.
//
// kemu's own oopses decode with no flags: a session report (`kemu run --report`) and a Context sidecar
// carry a Context naming each module's file and addresses, and the fixture modules built into kemu are
// a last source of module files (AddModuleFS), so a fixture's oops pasted from a terminal decodes too.
package oops
