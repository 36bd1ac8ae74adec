package loader

import (
	"crypto/x509"
	"fmt"
	"strings"
	"syscall"

	"kemu/profile"
)

// Log levels of the lines the loader prints (printk's KERN_* numbers).
const (
	LogErr     = 3
	LogWarning = 4
	LogNotice  = 5
	LogInfo    = 6
)

// Config describes the kernel modules are loaded into.
type Config struct {
	Profile    *profile.Profile    // the kernel: vermagic, exports with CRCs, System.map, config, BTF
	Memory     Memory              // where regions go; nil means a fresh FlatMemory
	SigEnforce bool                // module.sig_enforce=1: unsigned or unverifiable modules are rejected
	Certs      []*x509.Certificate // trusted module signing keys (the kernel's builtin keyring)
	Blacklist  []string            // module_blacklist=
	// Printk receives every line the kernel would log while loading and unloading modules.
	Printk func(level int, line string)
}

// Kernel is the registry of loaded modules of one kernel: it loads modules (Load), tracks their states,
// uses and reference counts, unloads them (Delete, Remove) and keeps the accumulated taint.
// It is not safe for concurrent use; a machine drives it from one goroutine.
type Kernel struct {
	cfg     Config
	prof    *profile.Profile
	mem     Memory
	modules []*Module                // in load order; the kernel's list is the reverse (list_add_rcu at the head)
	byName  map[string]*Module       // every registered module, formed or not
	exports map[string][]*Export     // the exports of registered modules by name, for find_symbol
	vmlinux map[string]vmlinuxExport // the profile's vmlinux exports (shared per profile), on first use
	taint   Taint
	once    map[string]bool // pr_*_once() sites already printed

	debugLocksOff bool         // debug_locks is 0: "Disabling lock debugging" was printed
	params        *paramLayout // struct kernel_param & co, from BTF on first use
	stateOff      *uint64      // offset of struct module's state, from BTF on first use
	spare         *regionPool  // region buffers to reuse while CheckFiles runs, nil otherwise
	versions      versionIndex // the __versions index of the module being linked (findVersion)
	orcScratch    []ORCEntry   // the buffer readORC sorts through, kept for the next module
}

// NewKernel returns an empty registry for the kernel described by cfg.
func NewKernel(cfg Config) (*Kernel, error) {
	if cfg.Profile == nil {
		return nil, fmt.Errorf("loader: no kernel profile")
	}
	k := &Kernel{cfg: cfg, prof: cfg.Profile, mem: cfg.Memory, once: map[string]bool{},
		byName: map[string]*Module{}, exports: map[string][]*Export{}}
	if k.mem == nil {
		k.mem = NewFlatMemory()
	}
	return k, nil
}

// Profile is the kernel description the registry links against.
func (k *Kernel) Profile() *profile.Profile { return k.prof }

// Taint is the kernel-wide taint: every taint a module ever added, plus forced unloads.
func (k *Kernel) Taint() Taint { return k.taint }

// Modules returns the formed modules in list order (most recently loaded first), as /proc/modules shows them.
func (k *Kernel) Modules() []*Module {
	var out []*Module
	for i := len(k.modules) - 1; i >= 0; i-- {
		if m := k.modules[i]; m.State != Unformed {
			out = append(out, m)
		}
	}
	return out
}

// Find returns the module called name in any state but UNFORMED (find_module).
func (k *Kernel) Find(name string) (*Module, bool) {
	if m, ok := k.byName[name]; ok && m.State != Unformed {
		return m, true
	}
	return nil, false
}

// ModuleAt returns the module whose core or init region contains addr (__module_address).
func (k *Kernel) ModuleAt(addr uint64) (*Module, bool) {
	for _, m := range k.modules {
		if m.State != Unformed && (m.Core.Contains(addr) || (!m.InitFreed && m.Init.Contains(addr))) {
			return m, true
		}
	}
	return nil, false
}

func (k *Kernel) printk(level int, format string, args ...any) {
	if k.cfg.Printk != nil {
		k.cfg.Printk(level, fmt.Sprintf(format, args...))
	}
}

// printkOnce is pr_*_once(): the site (its format) prints only the first time.
func (k *Kernel) printkOnce(level int, format string, args ...any) {
	if k.once[format] {
		return
	}
	k.once[format] = true
	k.printk(level, format, args...)
}

// config reads a boolean kernel option, with Debian's value when the profile carries no configuration.
func (k *Kernel) config(name string, debian bool) bool {
	if len(k.prof.Config) == 0 {
		return debian
	}
	return k.prof.ConfigBool(name)
}

// lockdepUnreliable are the taints the kernel adds with LOCKDEP_NOW_UNRELIABLE: after a proprietary
// module, a forced load or unload, or an oops, lock debugging can no longer be trusted.
const lockdepUnreliable = TaintProprietary | TaintForcedModule | TaintForcedRmmod | TaintDie

// AddTaint is add_taint(): it sets t kernel-wide. The first taint that makes lock debugging unreliable
// turns debug_locks off, which the kernel announces once per boot.
func (k *Kernel) AddTaint(t Taint) {
	if t&lockdepUnreliable != 0 && !k.debugLocksOff {
		k.debugLocksOff = true
		k.printk(LogWarning, "Disabling lock debugging due to kernel taint")
	}
	k.taint |= t
}

// addTaint is add_taint_module(): the module carries the taint too (its /proc/modules letters).
func (k *Kernel) addTaint(m *Module, t Taint) {
	m.Taints |= t
	k.AddTaint(t)
}

// tryForceLoad is try_to_force_load(): with CONFIG_MODULE_FORCE_LOAD it taints F and goes on.
func (k *Kernel) tryForceLoad(m *Module, reason string) error {
	if !k.config("CONFIG_MODULE_FORCE_LOAD", true) {
		return kerr(syscall.ENOEXEC, "").withDetail("%s: %s and CONFIG_MODULE_FORCE_LOAD is off", m.Name, reason)
	}
	if k.taint&TaintForcedModule == 0 {
		k.printk(LogWarning, "%s: %s: kernel tainted.", m.Name, reason)
	}
	k.addTaint(m, TaintForcedModule)
	return nil
}

// MarkLive is the success path of do_init_module(): init returned 0 (or a positive value, which the
// kernel warns about and accepts). The module becomes LIVE, its init region is freed, ro_after_init
// becomes read-only (the caller applies Range.AfterInit) and kallsyms keeps only core symbols.
func (k *Kernel) MarkLive(m *Module, initRet int) error {
	if m.State != Coming {
		return fmt.Errorf("mark %s live: state is %s, not COMING", m.Name, m.State)
	}
	if initRet > 0 { // one pr_warn of two lines
		k.printk(LogWarning, "do_init_module: '%s'->init suspiciously returned %d, it should follow 0/-E convention", m.Name, initRet)
		k.printk(LogWarning, "do_init_module: loading module anyway...")
	}
	m.State = Live
	m.refcnt-- // drop the init reference: module_put() after init
	// trim_init_extable(): entries for init code go with it.
	kept := m.ExTable[:0]
	for _, e := range m.ExTable {
		if !m.Init.Contains(e.Insn) {
			kept = append(kept, e)
		}
	}
	m.ExTable = kept
	if m.Init.Size != 0 {
		k.mem.ModuleFree(m.Init.Addr, m.Init.Size)
	}
	m.InitFreed = true
	return nil
}

// FailInit is the failure path of do_init_module(): init returned a negative errno. The module goes
// GOING, its uses are dropped and its memory freed; the kernel logs nothing. It returns the errno the
// syscall returns.
func (k *Kernel) FailInit(m *Module, initRet int) error {
	if initRet >= 0 {
		return fmt.Errorf("fail init of %s: init returned %d, not a negative errno", m.Name, initRet)
	}
	m.State = Going
	k.free(m)
	return &Error{Errno: syscall.Errno(-initRet), Detail: fmt.Sprintf("%s: init returned %d", m.Name, initRet)}
}

// Delete is delete_module()'s checks: on success the module is GOING and the caller runs its exit
// function (ExitFunc, when non-zero) and then calls Remove. force is O_TRUNC (rmmod -f).
func (k *Kernel) Delete(name string, force bool) (*Module, error) {
	m, ok := k.Find(name)
	if !ok {
		return nil, &Error{Errno: syscall.ENOENT, Detail: fmt.Sprintf("Module %s is not currently loaded", name)}
	}
	if len(m.usedBy) != 0 {
		holders := make([]string, len(m.usedBy))
		for i, h := range m.usedBy {
			holders[i] = h.Name
		}
		return nil, &Error{Errno: syscall.EWOULDBLOCK, Detail: fmt.Sprintf("Module %s is in use by: %s", name, strings.Join(holders, " "))}
	}
	if m.State != Live {
		return nil, &Error{Errno: syscall.EBUSY, Detail: fmt.Sprintf("%s already dying", name)}
	}
	forced := false
	if m.Permanent() {
		if !force || !k.config("CONFIG_MODULE_FORCE_UNLOAD", true) {
			return nil, &Error{Errno: syscall.EBUSY, Detail: fmt.Sprintf("Module %s is permanent (init without exit)", name)}
		}
		forced = true
	}
	// try_stop_module(): a held reference blocks unless forced.
	if m.refcnt != 0 {
		if !force || !k.config("CONFIG_MODULE_FORCE_UNLOAD", true) {
			return nil, &Error{Errno: syscall.EWOULDBLOCK, Detail: fmt.Sprintf("Module %s is in use", name)}
		}
		forced = true
	}
	if forced {
		k.AddTaint(TaintForcedRmmod)
	}
	m.State = Going
	return m, nil
}

// Remove is free_module() after the exit function ran: the module leaves the registry and its memory is freed.
func (k *Kernel) Remove(m *Module) {
	k.free(m)
}

// free drops m's uses and memory and unlinks it.
func (k *Kernel) free(m *Module) {
	for _, t := range m.uses { // module_unload_free()
		t.refcnt--
		t.usedBy = removeModule(t.usedBy, m)
	}
	m.uses = nil
	for _, heap := range m.charps { // destroy_params()
		k.mem.KernelFree(heap)
	}
	m.charps = nil
	if m.Init.Size != 0 && !m.InitFreed {
		k.mem.ModuleFree(m.Init.Addr, m.Init.Size)
	}
	if m.Core.Size != 0 {
		k.mem.ModuleFree(m.Core.Addr, m.Core.Size)
	}
	if m.Percpu.Size != 0 {
		k.mem.ModuleFree(m.Percpu.Addr, m.Percpu.Size)
	}
	k.modules = removeModule(k.modules, m)
	if k.byName[m.Name] == m {
		delete(k.byName, m.Name)
	}
	for _, e := range m.Exports {
		list := k.exports[e.Name]
		for i, x := range list {
			if x.Owner == m {
				list = append(list[:i:i], list[i+1:]...)
				break
			}
		}
		if len(list) == 0 {
			delete(k.exports, e.Name)
		} else {
			k.exports[e.Name] = list
		}
	}
}

func removeModule(list []*Module, m *Module) []*Module {
	for i, x := range list {
		if x == m {
			return append(list[:i:i], list[i+1:]...)
		}
	}
	return list
}

// Get is try_module_get(): it fails for a module that is GOING.
func (k *Kernel) Get(m *Module) bool {
	if m.State == Going {
		return false
	}
	m.refcnt++
	return true
}

// Put is module_put().
func (k *Kernel) Put(m *Module) {
	if m.refcnt > 0 {
		m.refcnt--
	}
}

// refModule is ref_module(a, b): a uses b. Each pair is recorded once.
func (k *Kernel) refModule(a, b *Module) error {
	if b == nil {
		return nil
	}
	for _, u := range b.usedBy {
		if u == a {
			return nil
		}
	}
	switch b.State { // strong_try_module_get()
	case Coming:
		return syscall.EBUSY
	case Going:
		return syscall.ENOENT
	}
	b.refcnt++
	b.usedBy = append([]*Module{a}, b.usedBy...) // list_add: newest first
	a.uses = append([]*Module{b}, a.uses...)
	return nil
}
