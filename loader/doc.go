// Package loader links Linux kernel modules (.ko) the way Linux 6.1's load_module() does, without ever
// running them: it reads the file (compressed or not), applies every check of elf_validity_check,
// setup_load_info, check_modinfo, the modversions and license rules, lays the sections out in core and init
// regions, resolves symbols against the kernel profile and the modules loaded before, applies the x86-64
// relocations and parses the module's parameters. The result is a Module in state COMING whose regions hold
// the relocated bytes with their page permissions, plus everything a CPU needs to run it: init and exit
// entry points, the address of its struct module, its symbols, exception, bug and ORC tables.
//
// The Kernel type is the registry of loaded modules: states (UNFORMED, COMING, LIVE, GOING) with the
// kernel's transitions, the "used by" graph of ref_module, reference counts, delete_module's checks, the
// accumulated taint and the /proc/modules, lsmod and /proc/kallsyms text.
//
// The loader never touches a CPU or page tables. Its caller supplies addresses through the Memory interface
// (the machine backs it with the vmalloc module area; FlatMemory is a stand-alone fake for `kemu check`),
// copies the returned bytes into guest memory, runs init, and reports the outcome with MarkLive or FailInit.
//
// Errors carry the errno the kernel returns and, where the kernel prints one, its dmesg line (type Error),
// so callers can print insmod-style messages and log what the kernel would have logged.
package loader
