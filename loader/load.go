package loader

import (
	"fmt"
	"strings"
	"syscall"
)

// Flags are finit_module()'s flags.
type Flags uint32

const (
	IgnoreModversions Flags = 1 // MODULE_INIT_IGNORE_MODVERSIONS (modprobe --force-modversion): taints F
	IgnoreVermagic    Flags = 2 // MODULE_INIT_IGNORE_VERMAGIC (modprobe --force-vermagic): taints F
	CompressedFile    Flags = 4 // MODULE_INIT_COMPRESSED_FILE: the image is compressed (kemu detects it anyway)
)

// LoadOptions are the arguments of one finit_module() call.
type LoadOptions struct {
	Flags  Flags
	Params string // the parameter string: "name=value name2 ..."
	Path   string // the file, for the Module's record
}

// tempImageBase is where the kernel's temporary copy of the file would live (vmalloc space). Sections the
// loader does not lay out keep an address in it, as their sh_addr points into that copy in the kernel.
const tempImageBase = 0xffffc90000000000

// loadInfo is struct load_info: the file and everything learnt about it while loading.
type loadInfo struct {
	k      *Kernel
	opts   LoadOptions
	f      *elfFile
	name   string
	mod    *Module
	syms   []elfSym
	strtab string // the symbol names, one string the names are substrings of

	// Section indexes, 0 when absent.
	idxInfo, idxSym, idxStr, idxMod, idxVers, idxPcpu int

	addr   []uint64 // sh_addr of every section once placed
	place  []placed // where layout_sections put each section
	layout struct{ core, init layoutSizes }
	// layout_symtab's results: core kallsyms copy offsets.
	symoffs, stroffs, coreTypeoffs uint64

	usingGPLOnly bool // mod->using_gplonly_symbols
	sigOK        bool

	versionsIndexed bool         // k.versions indexes mod.Versions (findVersion)
	scratch         *loadScratch // where f.secs and syms are decoded, from Prepare to the end of LoadPrepared
}

// placed is a section's place in a region (sh_entsize with INIT_OFFSET_MASK in the kernel).
type placed struct {
	ok     bool
	region RegionKind
	off    uint64
}

// Load runs load_module() up to the point where init would run: the returned module is COMING, its
// regions hold the relocated bytes and its parameters are applied. The caller maps the regions, runs
// InitFunc and reports the outcome with MarkLive or FailInit. On failure nothing stays allocated or
// registered and the error is an *Error with the kernel's errno and message.
func (k *Kernel) Load(image []byte, opts LoadOptions) (*Module, error) {
	p, err := k.Prepare(image, opts)
	if err != nil {
		k.report(err)
		return nil, err
	}
	return k.LoadPrepared(p)
}

// Prepared is a module file taken as far as load_module() goes without the registry: decompressed,
// its signature checked, the ELF validated and setup_load_info() done. It is used by one LoadPrepared.
type Prepared struct {
	info *loadInfo
}

// Name is the module's name as setup_load_info() found it.
func (p *Prepared) Name() string { return p.info.name }

// Prepare does the registry-independent first steps of Load (flags, decompression, module_sig_check,
// elf_validity_check, setup_load_info). It only reads the Kernel's configuration, so several
// goroutines may prepare files while one loads them; it prints nothing (Load prints a failure's kernel
// line; callers of Prepare who want it in the log pass the error to Report).
func (k *Kernel) Prepare(image []byte, opts LoadOptions) (*Prepared, error) {
	if opts.Flags&^(IgnoreModversions|IgnoreVermagic|CompressedFile) != 0 {
		return nil, &Error{Errno: syscall.EINVAL, Detail: fmt.Sprintf("finit_module flags %#x", opts.Flags)}
	}
	img, err := Decompress(image)
	if err != nil {
		return nil, err
	}
	info := &loadInfo{k: k, opts: opts}
	if img, err = info.sigCheck(img); err != nil {
		return nil, err
	}
	info.takeScratch()
	if info.f, err = parseELF(img, info.scratch.secs); err == nil {
		err = info.setup()
	}
	if err != nil {
		info.releaseScratch()
		return nil, err
	}
	return &Prepared{info: info}, nil
}

// LoadPrepared finishes what Prepare began; see Load.
func (k *Kernel) LoadPrepared(p *Prepared) (mod *Module, err error) {
	info := p.info
	if info == nil || info.k != k {
		return nil, fmt.Errorf("loader: module prepared for another kernel or already loaded")
	}
	p.info = nil
	defer func() {
		// A fault reading a mapped module file (CheckFiles maps them, see mapped.go) fails the load;
		// any other panic goes on.
		if r := recover(); r != nil {
			err = faultError(r, info.name)
		}
		if err != nil {
			k.report(err)
			info.cleanup()
			mod = nil
		}
		info.releaseScratch()
	}()
	// The rest of load_module(), in the kernel's order.
	for _, step := range loadSteps {
		if err = step(info); err != nil {
			return nil, err
		}
	}
	return info.mod, nil
}

// loadSteps are the rest of load_module() after setup_load_info(), in the kernel's order. Method
// expressions, not method values: a table of values bound to one load would be built for every module.
var loadSteps = [...]func(*loadInfo) error{
	(*loadInfo).checkBlacklist,
	(*loadInfo).rewriteSectionHeaders,
	(*loadInfo).checkModstructVersion,
	(*loadInfo).layoutAndAllocate,
	(*loadInfo).addUnformed,
	(*loadInfo).taintUnsigned,
	(*loadInfo).checkLicenseAndVersions,
	(*loadInfo).simplifySymbols,
	(*loadInfo).applyRelocations,
	(*loadInfo).postRelocation,
	(*loadInfo).completeFormation,
	(*loadInfo).parseArgs,
}

// checkBlacklist is blacklisted(): module_blacklist= names modules that may not load.
func (info *loadInfo) checkBlacklist() error {
	for _, b := range info.k.cfg.Blacklist {
		if b == info.name {
			return kerr(syscall.EPERM, "Module %s is blacklisted", info.name)
		}
	}
	return nil
}

// taintUnsigned: a module whose signature was not verified taints the kernel E (the message once).
func (info *loadInfo) taintUnsigned() error {
	k := info.k
	if !info.sigOK && k.config("CONFIG_MODULE_SIG", true) {
		k.printkOnce(LogNotice, "%s: module verification failed: signature and/or required key missing - tainting kernel", info.mod.Name)
		k.addTaint(info.mod, TaintUnsigned)
	}
	return nil
}

// cleanup undoes a failed load: uses, memory, registry entry.
func (info *loadInfo) cleanup() {
	if info.mod == nil {
		return
	}
	m := info.mod
	m.State = Going
	info.k.free(m)
}

// setup is setup_load_info(): the module's name, symbol table, struct module and optional sections.
func (info *loadInfo) setup() error {
	f := info.f
	if info.idxInfo = f.findSec(".modinfo"); info.idxInfo != 0 {
		info.mod = &Module{Modinfo: parseModinfo(f.sectionData(info.idxInfo))}
		info.name, _ = info.mod.Modinfo.Get("name")
	} else {
		info.mod = &Module{}
	}
	nameForLog := func() string {
		if info.name != "" {
			return info.name
		}
		return "(missing .modinfo section or name field)"
	}
	for i := 1; i < len(f.secs); i++ {
		if f.secs[i].Type == shtSymtab {
			info.idxSym, info.idxStr = i, int(f.secs[i].Link)
			break
		}
	}
	if info.idxSym == 0 {
		return kerr(syscall.ENOEXEC, "%s: module has no symbols (stripped?)", nameForLog()).at(LogWarning)
	}
	if info.idxMod = f.findSec(".gnu.linkonce.this_module"); info.idxMod == 0 {
		return kerr(syscall.ENOEXEC, "%s: No module found in object", nameForLog()).at(LogWarning)
	}
	// struct module's name[56] is at offset 24; kemu insists the section holds at least that much.
	const nameOff, nameLen = 24, 56
	modData := f.sectionData(info.idxMod)
	if len(modData) < nameOff+nameLen {
		return kerr(syscall.ENOEXEC, "").withDetail("%s: .gnu.linkonce.this_module is %d bytes, too small for struct module", nameForLog(), len(modData))
	}
	if info.name == "" {
		info.name = cstring(modData[nameOff:nameOff+nameLen], 0)
	}
	info.mod.Name = info.name
	info.mod.Path = info.opts.Path
	info.mod.SigOK = info.sigOK
	if info.opts.Flags&IgnoreModversions == 0 {
		info.idxVers = f.findSec("__versions")
	}
	info.idxPcpu = f.findSec(".data..percpu")
	var err error
	if info.syms, info.strtab, err = f.symbols(info.idxSym, info.scratch.syms); err != nil {
		return err
	}
	if info.idxVers != 0 {
		info.mod.Versions = parseVersions(f.sectionData(info.idxVers))
	}
	return nil
}

// rewriteSectionHeaders: every section's address is its place in the temporary copy; .modinfo and
// __versions lose SHF_ALLOC (they are read, not kept).
func (info *loadInfo) rewriteSectionHeaders() error {
	f := info.f
	info.addr = make([]uint64, len(f.secs))
	for i := 1; i < len(f.secs); i++ {
		info.addr[i] = tempImageBase + f.secs[i].Offset
	}
	f.secs[info.idxVers].Flags &^= shfAlloc
	f.secs[info.idxInfo].Flags &^= shfAlloc
	return nil
}

// checkVersion is check_version(): crc is the exporter's CRC, nil when it has none.
func (info *loadInfo) checkVersion(symname string, crc *uint32) bool {
	k, m := info.k, info.mod
	if crc == nil {
		return true
	}
	if info.idxVers == 0 {
		return k.tryForceLoad(m, symname) == nil
	}
	i, ok := info.findVersion(symname)
	if !ok {
		k.printkOnce(LogWarning, "%s: no symbol version for %s", info.name, symname)
		return true
	}
	if m.Versions[i].CRC == uint64(*crc) {
		return true
	}
	k.printk(LogWarning, "%s: disagrees about version of symbol %s", info.name, symname)
	return false
}

// checkModstructVersion is check_modstruct_version(): the module's idea of struct module must match.
func (info *loadInfo) checkModstructVersion() error {
	var crc *uint32
	if e, ok := info.k.prof.Export("module_layout"); ok && e.HasCRC {
		c := e.CRC
		crc = &c
	}
	if !info.checkVersion("module_layout", crc) {
		return kerr(syscall.ENOEXEC, "%s: disagrees about version of symbol %s", info.name, "module_layout").logged()
	}
	return nil
}

// writeState stores the module's state in its struct module, as mod->state = MODULE_STATE_COMING does,
// and records where it is (StateAddr) so the caller can follow the later transitions in guest memory.
// The offset of the field comes from BTF; it is 0 in every kernel layout when BTF is unavailable.
func (info *loadInfo) writeState() {
	m := info.mod
	off := info.k.moduleStateOffset()
	if b, ok := m.readAt(m.ThisModule+off, 4); ok {
		le.PutUint32(b, uint32(m.State))
		m.StateAddr = m.ThisModule + off
	}
}

// moduleStateOffset is the offset of state in struct module, from BTF on first use (0 without it).
func (k *Kernel) moduleStateOffset() uint64 {
	if k.stateOff == nil {
		var off uint64
		if st, err := k.prof.Struct("module"); err == nil {
			if o, err := st.Offset("state"); err == nil {
				off = o
			}
		}
		k.stateOff = &off
	}
	return *k.stateOff
}

// sameMagic is same_magic(): with modversions only the part from the first space on is compared.
func sameMagic(a, b string, hasCRCs bool) bool {
	if hasCRCs {
		if i := strings.IndexByte(a, ' '); i >= 0 {
			a = a[i:]
		} else {
			a = ""
		}
		if i := strings.IndexByte(b, ' '); i >= 0 {
			b = b[i:]
		} else {
			b = ""
		}
	}
	return a == b
}

// gplCompatible is license_is_gpl_compatible().
func gplCompatible(license string) bool {
	switch license {
	case "GPL", "GPL v2", "GPL and additional rights", "Dual BSD/GPL", "Dual MIT/GPL", "Dual MPL/GPL":
		return true
	}
	return false
}

// checkModinfo is check_modinfo(): vermagic, out-of-tree, retpoline, staging, livepatch, license, test.
func (info *loadInfo) checkModinfo() error {
	k, m := info.k, info.mod
	modmagic, ok := m.Modinfo.Get("vermagic")
	if info.opts.Flags&IgnoreVermagic != 0 {
		ok = false
	}
	if !ok {
		if err := k.tryForceLoad(m, "bad vermagic"); err != nil {
			return err
		}
	} else if !sameMagic(modmagic, k.prof.Vermagic, info.idxVers != 0) {
		return kerr(syscall.ENOEXEC, "%s: version magic '%s' should be '%s'", info.name, modmagic, k.prof.Vermagic)
	}
	if _, ok := m.Modinfo.Get("intree"); !ok {
		if k.taint&TaintOOTModule == 0 {
			k.printk(LogWarning, "%s: loading out-of-tree module taints kernel.", m.Name)
		}
		k.addTaint(m, TaintOOTModule)
	}
	// retpoline_module_ok(): the emulated CPU is taken to run with spectre v2 mitigations on.
	if _, ok := m.Modinfo.Get("retpoline"); !ok && k.config("CONFIG_RETPOLINE", true) {
		k.printk(LogErr, "System may be vulnerable to spectre v2")
		k.printk(LogWarning, "%s: loading module not compiled with retpoline compiler.", m.Name)
	}
	if _, ok := m.Modinfo.Get("staging"); ok {
		k.addTaint(m, TaintCrap)
		k.printk(LogWarning, "%s: module is from the staging directory, the quality is unknown, you have been warned.", m.Name)
	}
	if _, ok := m.Modinfo.Get("livepatch"); ok {
		if !k.config("CONFIG_LIVEPATCH", true) {
			return kerr(syscall.ENOEXEC, "%s: module is marked as livepatch module, but livepatch support is disabled", m.Name)
		}
		k.addTaint(m, TaintLivepatch)
		k.printkOnce(LogNotice, "%s: tainting kernel with TAINT_LIVEPATCH", m.Name)
	}
	license, ok := m.Modinfo.Get("license")
	if !ok {
		license = "unspecified"
	}
	if !gplCompatible(license) {
		if k.taint&TaintProprietary == 0 {
			k.printk(LogWarning, "%s: module license '%s' taints kernel.", m.Name, license)
		}
		k.addTaint(m, TaintProprietary)
	}
	if _, ok := m.Modinfo.Get("test"); ok {
		if k.taint&TaintTest == 0 {
			k.printk(LogWarning, "%s: loading test module taints kernel.", m.Name)
		}
		k.addTaint(m, TaintTest)
	}
	return nil
}

// enforceRWX is module_enforce_rwx_sections(): no section may be both writable and executable.
func (info *loadInfo) enforceRWX() error {
	for i, s := range info.f.secs {
		if s.Flags&shfWrite != 0 && s.Flags&shfExecinstr != 0 {
			return kerr(syscall.ENOEXEC, "").withDetail("%s: section %d %s is both writable and executable", info.name, i, s.Name)
		}
	}
	return nil
}

// layoutAndAllocate is layout_and_allocate(): check_modinfo, the RWX rule, layout_sections,
// layout_symtab and move_module.
func (info *loadInfo) layoutAndAllocate() error {
	if err := info.checkModinfo(); err != nil {
		return err
	}
	if err := info.enforceRWX(); err != nil {
		return err
	}
	f := info.f
	f.secs[info.idxPcpu].Flags &^= shfAlloc
	if i := f.findSec(".data..ro_after_init"); i != 0 {
		f.secs[i].Flags |= shfROAfterInit
	}
	if i := f.findSec("__jump_table"); i != 0 {
		f.secs[i].Flags |= shfROAfterInit
	}
	if err := info.layoutSections(); err != nil {
		return err
	}
	if err := info.layoutSymtab(); err != nil {
		return err
	}
	return info.moveModule()
}

// addUnformed is add_unformed_module(): a LIVE module of that name is EEXIST; one still loading (the
// kernel waits for it, and 6.1.y stable then fails) is EBUSY.
func (info *loadInfo) addUnformed() error {
	k, m := info.k, info.mod
	if old, ok := k.byName[m.Name]; ok {
		if old.State == Live {
			return &Error{Errno: syscall.EEXIST, Detail: fmt.Sprintf("module %s is already loaded", m.Name)}
		}
		return &Error{Errno: syscall.EBUSY, Detail: fmt.Sprintf("module %s is still loading or unloading", m.Name)}
	}
	m.State = Unformed
	k.modules = append(k.modules, m)
	k.byName[m.Name] = m
	return nil
}

// checkLicenseAndVersions is check_module_license_and_versions().
func (info *loadInfo) checkLicenseAndVersions() error {
	k, m := info.k, info.mod
	prev := k.taint & TaintProprietary
	switch m.Name {
	case "ndiswrapper":
		k.AddTaint(TaintProprietary)
	case "driverloader", "lve":
		k.addTaint(m, TaintProprietary)
	}
	if prev == 0 && k.taint&TaintProprietary != 0 {
		k.printk(LogWarning, "%s: module license taints kernel.", m.Name)
	}
	f := info.f
	hasSyms := func(tab, crc string) bool {
		i := f.findSec(tab)
		return i != 0 && f.secs[i].Size >= ksymSize && f.findSec(crc) == 0
	}
	if k.config("CONFIG_MODVERSIONS", true) && (hasSyms("__ksymtab", "__kcrctab") || hasSyms("__ksymtab_gpl", "__kcrctab_gpl")) {
		return k.tryForceLoad(m, "no versions for exported symbols")
	}
	return nil
}

// completeFormation is complete_formation(): no export may duplicate a visible one; the module becomes COMING.
func (info *loadInfo) completeFormation() error {
	k, m := info.k, info.mod
	for _, e := range m.Exports {
		if owner, found := k.findSymbol(e.Name, true); found {
			who := "kernel"
			if owner.Owner != nil {
				who = owner.Owner.Name
			}
			return kerr(syscall.ENOEXEC, "%s: exports duplicate symbol %s (owned by %s)", m.Name, e.Name, who)
		}
	}
	for i := range m.Exports {
		e := &m.Exports[i]
		k.exports[e.Name] = append(k.exports[e.Name], e)
	}
	m.State = Coming
	m.refcnt = 1 // the init reference: module_refcount() reads 1 until init finishes
	info.writeState()
	return nil
}
