// Package depmod is kmod 30's depmod: it reads every module of a tree (lib/modules/VERSION, plus
// depmod.d's external directories), works out which module needs which from their exported and
// undefined symbols, and writes the indexes modprobe reads, byte for byte as kmod writes them:
// modules.dep, modules.alias, modules.softdep, modules.symbols, modules.devname and the binary tries
// modules.dep.bin, modules.alias.bin, modules.symbols.bin, modules.builtin.bin and
// modules.builtin.alias.bin.
//
// Being equal to kmod means reproducing its incidental orders too: without a modules.order, and for
// modules.symbols always, kmod writes entries in the iteration order of its own hash table, which
// this package recomputes (khash.go). Modules are read with the modinfo package, which reads ELF
// files, compressed ones included, the way libkmod does.
//
// Build computes an Index; Write creates the files, WriteTo prints the text ones (depmod -n), Main
// is the whole command line. DB is the modprobe side: LoadDB reads the files back, Index.DB takes
// them from memory, OpenDB picks whichever a tree has; Lookup maps a name, alias or "symbol:NAME" to modules, Resolve gives the
// load list (dependencies first, soft dependencies around each module) and RemoveOrder the order of
// modprobe -r.
//
// modprobe.d is modprobeconf.go: LoadModprobeConfig reads the configuration as libkmod does (the
// module directory's modules.softdep among its files), ShowConfig prints "modprobe -c" (with the
// alias indexes dumped from the .bin files, indexdump.go), and DB.SetConfig makes lookups and plans
// follow it: Probe (probe.go) is "modprobe NAME OPTIONS" with the blacklist, each module's options
// and install commands. LookupName and BuiltinInfo serve modinfo's lookups (modinfo -m, built-in
// modules).
package depmod
