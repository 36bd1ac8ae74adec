// Package loader links Linux kernel modules (.ko) the way Linux 6.1's load_module() does, without ever
// running them: it reads the file (compressed or not), applies every check of module_sig_check,
// elf_validity_check, setup_load_info, check_modinfo, the modversions and license rules, lays the
// sections out in core and init regions, resolves symbols against the kernel profile and the modules
// loaded before, applies the x86-64 relocations and parses the module's parameters. The result is a
// Module in state COMING whose regions hold the relocated bytes with their page permissions, plus
// everything a CPU needs to run it: init and exit entry points, the address of its struct module, its
// symbols, exception, bug and ORC tables.
//
// The Kernel type is the registry of loaded modules: states (UNFORMED, COMING, LIVE, GOING) with the
// kernel's transitions, the "used by" graph of ref_module, reference counts, delete_module's checks, the
// accumulated taint and the /proc/modules, lsmod and /proc/kallsyms text.
//
// # Driving it
//
// A machine (or any caller) uses it in the kernel's order:
//
//  1. NewKernel(Config{Profile, Memory, Printk, ...}) once per emulated kernel.
//  2. Load(image, LoadOptions{Params, Flags}) is finit_module() up to do_init_module(): on success the
//     module is COMING. Its Core and Init regions (and Percpu, when it has per-CPU data) carry the
//     relocated Bytes, the Pieces they were placed at and the Ranges with their permissions. The caller
//     copies the bytes to guest memory and maps each Range with Perm.
//  3. The caller runs InitFunc (when non-zero) and reports: MarkLive(m, ret) for ret >= 0 (the init
//     region is then freed through Memory.ModuleFree; the caller unmaps it and switches every Range to
//     its AfterInit permission, which makes ro_after_init read-only), or FailInit(m, ret) for ret < 0,
//     which unwinds the load and returns the errno the syscall returns.
//  4. Delete(name, force) is delete_module()'s checks; on success the module is GOING, the caller runs
//     ExitFunc and then calls Remove.
//
// Get/Put are try_module_get/module_put for module code that takes references; FindExport and ModuleAt
// answer symbol_get() and __module_address().
//
// # Memory
//
// The loader never touches a CPU or page tables. Memory gives it addresses: ModuleAlloc per region
// (core, init, per-CPU: for the per-CPU kind the address is whatever the machine's per-CPU pointers are,
// the loader only adds symbol offsets to it) and KernelAlloc for charp parameter values. A Memory that
// also implements PieceMemory may place a region's ranges apart (text in a shared pack): sections are
// then linked at the address of their piece. FlatMemory is a stand-alone Memory for `kemu check` and
// tests.
//
// # What the loader models and what it leaves out
//
// Layout follows layout_sections() and layout_symtab(): the init region ends with the symbol and
// string tables (symbol values resolved, as simplify_symbols leaves them), the core region with
// add_kallsyms' copy of the core symbols, so sizes and contents match the kernel's; the struct
// mod_kallsyms and init type table are sized but left zero. Module.Symbols and Kallsyms are the Go
// views. module_finalize()'s code patching (alternatives, retpoline and return-thunk sites) is not
// applied: the text keeps its calls to the thunks, which the machine provides. Struct layouts
// (kernel_param, module) come from the profile's BTF.
//
// # Batch checking
//
// CheckFiles links a whole tree (`kemu check`, the corpus test, bench/'s comparison with depmod):
// worker goroutines open (large uncompressed files are mapped read-only, as kmod maps them), verify
// and validate files ahead of one linker goroutine, which loads them in dependency order. File
// mappings and buffers, and the region bytes of checked modules, are released or reused as soon as a
// module is linked: what a check keeps is the registry (names, symbols, tables), not the files. The
// vmlinux export index (with System.map addresses) is built once per profile and shared by registries.
//
// What a load needs only while it runs is reused too, so that a tree's worth of it is neither
// allocated nor scanned by the garbage collector: the decoded section headers and symbols (a pooled
// loadScratch, from Prepare to the end of LoadPrepared), the index of a module's __versions that
// check_version() consults per imported symbol, and the buffer ORC tables are sorted through (both
// kept by the Kernel). The signature's PKCS#7 message is walked in place (package modsign).
//
// # Errors
//
// Errors carry the errno the kernel returns and, where the kernel prints one, its dmesg line (type
// Error), so callers can print insmod-style messages (InsmodError) and log what the kernel would have
// logged. Everything else the kernel prints on the way (taint notices, warnings) goes to Config.Printk.
// No input makes the loader panic: every offset and size is checked before use, and a region is
// capped at 64 MiB of host memory.
package loader
