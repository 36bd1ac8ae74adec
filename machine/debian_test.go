package machine

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"kemu/corpus"
	"kemu/depmod"
	"kemu/loader"
	"kemu/profile"
)

// Real modules from Debian's 6.1 amd64 kernel, each loaded with its dependencies (as modprobe
// orders them) into a fresh machine, initialised, then removed with its dependencies. The set is
// fixed so that the figures compare across changes; it spans the kinds of module the emulated
// kernel has to serve: library code, crypto algorithms and templates, filesystems, network
// devices, PCI/USB/I2C/SPI/platform drivers, input and HID.
var debianModuleSet = []struct{ name, kind string }{
	// library code
	{"crc-itu-t", "lib"}, {"crc7", "lib"}, {"crc8", "lib"}, {"crc16", "lib"}, {"libcrc32c", "lib"},
	{"lz4_compress", "lib"}, {"lz4hc_compress", "lib"}, {"ts_kmp", "lib"}, {"ts_bm", "lib"},
	{"ts_fsm", "lib"}, {"reed_solomon", "lib"}, {"bch", "lib"},
	// crypto algorithms and templates
	{"xxhash_generic", "crypto"}, {"blake2b_generic", "crypto"}, {"michael_mic", "crypto"},
	{"md4", "crypto"}, {"rmd160", "crypto"}, {"wp512", "crypto"}, {"sha3_generic", "crypto"},
	{"blowfish_generic", "crypto"}, {"twofish_generic", "crypto"}, {"serpent_generic", "crypto"},
	{"cast5_generic", "crypto"}, {"cast6_generic", "crypto"}, {"camellia_generic", "crypto"},
	{"des_generic", "crypto"}, {"fcrypt", "crypto"}, {"chacha_generic", "crypto"}, {"xts", "crypto"},
	{"lrw", "crypto"}, {"cmac", "crypto"}, {"xcbc", "crypto"}, {"vmac", "crypto"}, {"ccm", "crypto"},
	{"gcm", "crypto"}, {"ecb", "crypto"}, {"pcbc", "crypto"}, {"cts", "crypto"}, {"keywrap", "crypto"},
	{"seqiv", "crypto"}, {"echainiv", "crypto"}, {"essiv", "crypto"}, {"authenc", "crypto"},
	{"lz4", "crypto"}, {"lz4hc", "crypto"}, {"zstd", "crypto"}, {"ecdh_generic", "crypto"},
	{"curve25519-generic", "crypto"}, {"crc32_generic", "crypto"},
	{"crc32c_intel", "crypto"}, // SSE4.2: needs boot_cpu_data's capability bits
	// filesystems
	{"minix", "fs"}, {"qnx4", "fs"}, {"qnx6", "fs"}, {"romfs", "fs"}, {"efs", "fs"}, {"befs", "fs"},
	{"hfs", "fs"}, {"hfsplus", "fs"}, {"ufs", "fs"}, {"freevxfs", "fs"}, {"sysv", "fs"}, {"omfs", "fs"},
	{"bfs", "fs"}, {"adfs", "fs"}, {"affs", "fs"}, {"isofs", "fs"}, {"udf", "fs"}, {"nilfs2", "fs"},
	{"jfs", "fs"},
	// network devices
	{"dummy", "net"}, {"veth", "net"}, {"ifb", "net"}, {"macvlan", "net"}, {"vxlan", "net"},
	{"geneve", "net"}, {"nlmon", "net"}, {"vcan", "net"},
	// bus drivers
	{"8139cp", "pci"}, {"8139too", "pci"}, {"e1000", "pci"}, {"ne2k-pci", "pci"}, {"tulip", "pci"},
	{"r8169", "pci"}, {"pci-stub", "pci"}, {"ehci-pci", "pci"}, {"xhci-pci", "pci"},
	{"usb-storage", "usb"}, {"cdc-acm", "usb"}, {"pl2303", "usb"}, {"ftdi_sio", "usb"},
	{"lm75", "i2c"}, {"tmp102", "i2c"}, {"at24", "i2c"}, {"i2c-dev", "i2c"}, {"i2c-stub", "i2c"},
	{"mcp251x", "spi"}, {"hi311x", "spi"},
	{"leds-gpio", "platform"}, {"w1-gpio", "platform"}, {"ramoops", "platform"},
	// input and HID
	{"evdev", "input"}, {"joydev", "input"}, {"uinput", "input"}, {"serio_raw", "input"},
	{"psmouse", "input"}, {"pcspkr", "input"}, {"hid-generic", "hid"}, {"hid-apple", "hid"},
	{"usbhid", "hid"}, {"hid-logitech", "hid"},
	// block devices
	{"loop", "block"}, {"nbd", "block"}, {"zram", "block"}, {"brd", "block"},
}

// Floors measured on Debian 6.1.0-56-amd64 (see TestDebianModules); a drop is a regression.
const (
	debianFloorLenient = 113
	debianFloorStrict  = 113
)

// debianOutcome is how one module fared: the first thing that went wrong, if anything.
type debianOutcome struct {
	module, kind string
	result       string // complete, load, init, oops, unimplemented, exit
	detail       string // the loader's reason, the errno, the missing function, ...
	missing      []CallStat
	log          string         // the kernel log
	left         []Registration // registrations still there after every module was removed
}

const (
	resultComplete      = "complete"
	resultLoad          = "load"          // the loader refused a module (its reason in detail)
	resultInit          = "init"          // an init function returned an error
	resultOops          = "oops"          // module code oopsed in init or exit
	resultUnimplemented = "unimplemented" // Strict: a kernel function without a handler was called
	resultExit          = "exit"          // rmmod refused
)

// runDebianModule loads name with its dependencies into a fresh machine, then removes them all.
func runDebianModule(t *testing.T, prof *profile.Profile, db *depmod.DB, name, kind string, strict bool) (out debianOutcome) {
	out = debianOutcome{module: name, kind: kind, result: resultComplete}
	loads, err := db.Resolve(name)
	if err != nil {
		out.result, out.detail = resultLoad, err.Error()
		return out
	}
	m, err := New(prof, Options{Strict: strict})
	require.NoError(t, err)
	defer m.Close()
	defer func() { out.missing, out.log = m.Unimplemented(), m.Dmesg() }()

	killed := func(stage string) {
		out.result, out.detail = resultOops, stage
		for _, line := range m.Messages() {
			if fn, ok := strings.CutPrefix(line, "kemu: unimplemented kernel function "); ok {
				out.result, out.detail = resultUnimplemented, strings.Fields(fn)[0]
				return
			}
		}
	}
	required := requiredModules(t, db, name, loads)
	var loaded []string
	for _, l := range loads {
		if l.Builtin || slices.Contains(loaded, l.Name) { // modprobe skips what is loaded (kmod lists repeats)
			continue
		}
		image, err := os.ReadFile(l.Path)
		require.NoError(t, err)
		_, err = m.Insmod(image, "", l.Path)
		switch {
		case errors.Is(err, ErrKilled):
			killed("init of " + l.Name)
			return out
		case err != nil && !required[l.Name]:
			continue // modprobe ignores a soft dependency that fails to load
		case err != nil && initFailed(err):
			out.result, out.detail = resultInit, fmt.Sprintf("%s: %v", l.Name, loader.Errno(err))
			return out
		case err != nil:
			out.result, out.detail = resultLoad, fmt.Sprintf("%s: %v", l.Name, err)
			return out
		}
		loaded = append(loaded, l.Name)
	}
	defer func() {
		if out.result == resultComplete {
			out.left = m.Registrations()
		}
	}()
	for i := len(loaded) - 1; i >= 0; i-- {
		err := m.Rmmod(loaded[i], false)
		switch {
		case errors.Is(err, ErrKilled):
			killed("exit of " + loaded[i])
			return out
		case err != nil:
			out.result, out.detail = resultExit, fmt.Sprintf("%s: %v", loaded[i], err)
			return out
		}
	}
	return out
}

// requiredModules are the modules modprobe must load for name: those it means and their
// dependencies (modinfo's depends=, transitively). The others in the load list are soft
// dependencies, whose failures kmod ignores (kmod_module_probe_insert_module).
func requiredModules(t *testing.T, db *depmod.DB, name string, loads []depmod.Load) map[string]bool {
	var paths []string
	for _, l := range loads {
		if !l.Builtin {
			paths = append(paths, l.Path)
		}
	}
	depends, err := loader.DependsFromModinfo(paths)
	require.NoError(t, err)
	required := map[string]bool{}
	var add func(string)
	add = func(mod string) {
		if required[mod] {
			return
		}
		required[mod] = true
		for _, d := range depends[mod] {
			add(d)
		}
	}
	for _, mod := range db.Lookup(name) {
		add(mod)
	}
	return required
}

// initFailed tells an errno an init function returned (the registry's FailInit names it "init
// returned") from a refusal by the loader (format, symbols, versions, memory).
func initFailed(err error) bool {
	var le *loader.Error
	return errors.As(err, &le) && strings.Contains(le.Detail, "init returned")
}

// debianCorpus is the Debian kernel's profile and its module tree's depmod database (no modprobe.d),
// fetched into the cache if need be.
func debianCorpus(t *testing.T) (*profile.Profile, *depmod.DB) {
	t.Helper()
	tree, err := corpus.Debian("amd64")
	require.NoError(t, err)
	prof, err := tree.Profile()
	require.NoError(t, err)
	db, err := depmod.OpenDB(depmod.Options{BaseDir: tree.Root, Version: tree.Release, ConfigPaths: []string{}})
	require.NoError(t, err)
	return prof, db
}

func TestDebianModules(t *testing.T) {
	if testing.Short() {
		t.Skip("loads real Debian modules into a fresh machine each")
	}
	prof, db := debianCorpus(t)
	require.GreaterOrEqual(t, len(debianModuleSet), 50)
	if only := os.Getenv("KEMU_DEBIAN_MODULE"); only != "" {
		// One module, its kernel log and its unimplemented calls: for finding out why it fails.
		o := runDebianModule(t, prof, db, only, "", os.Getenv("KEMU_DEBIAN_STRICT") != "")
		t.Logf("%s: %s %s\n%s", only, o.result, o.detail, o.log)
		for _, s := range o.missing {
			t.Logf("unimplemented %s x%d, first from %s", s.Name, s.Count, s.FirstCaller)
		}
		return
	}

	for _, mode := range []struct {
		name   string
		strict bool
		floor  int
	}{{"lenient", false, debianFloorLenient}, {"strict", true, debianFloorStrict}} {
		t.Run(mode.name, func(t *testing.T) {
			var outcomes []debianOutcome
			for _, mod := range debianModuleSet {
				outcomes = append(outcomes, runDebianModule(t, prof, db, mod.name, mod.kind, mode.strict))
			}
			complete := logDebianTable(t, outcomes)
			assert.GreaterOrEqual(t, complete, mode.floor, "modules that load, init and unload (%s)", mode.name)
		})
	}
}

// logDebianTable logs one line per module, the totals per result and the unimplemented kernel
// functions the most modules called; it returns how many completed.
func logDebianTable(t *testing.T, outcomes []debianOutcome) int {
	var b strings.Builder
	totals := map[string]int{}
	type miss struct{ modules, calls int }
	missing := map[string]*miss{}
	for _, o := range outcomes {
		totals[o.result]++
		detail := o.detail
		for _, r := range o.left {
			detail += fmt.Sprintf(" left registered: %s %s (%s)", r.Kind, r.Name, r.Module)
		}
		fmt.Fprintf(&b, "%-20s %-9s %-13s %s\n", o.module, o.kind, o.result, detail)
		for _, s := range o.missing {
			if missing[s.Name] == nil {
				missing[s.Name] = &miss{}
			}
			missing[s.Name].modules++
			missing[s.Name].calls += s.Count
		}
	}
	fmt.Fprintf(&b, "totals:")
	for _, r := range []string{resultComplete, resultLoad, resultInit, resultOops, resultUnimplemented, resultExit} {
		fmt.Fprintf(&b, " %s=%d", r, totals[r])
	}
	names := make([]string, 0, len(missing))
	for n := range missing {
		names = append(names, n)
	}
	sort.Slice(names, func(i, j int) bool {
		a, c := missing[names[i]], missing[names[j]]
		if a.modules != c.modules {
			return a.modules > c.modules
		}
		return names[i] < names[j]
	})
	fmt.Fprintf(&b, "\nunimplemented kernel functions hit (modules, calls):")
	for i, n := range names {
		if i == 30 {
			break
		}
		fmt.Fprintf(&b, "\n  %-36s %3d %6d", n, missing[n].modules, missing[n].calls)
	}
	t.Log("\n" + b.String())
	return totals[resultComplete]
}

// Debian's crc32c-intel probes SSE4.2 through x86_match_cpu and registers the "crc32c" shash as
// "crc32c-intel"; without PCLMULQDQ (which the machine's CPU does not report) its digest is the
// plain loop of crc32q/crc32b instructions, which the CPU then runs: CRC-32C("123456789") is the
// standard check value 0xe3069283.
func TestDebianCRC32CIntel(t *testing.T) {
	if testing.Short() {
		t.Skip("loads a real Debian module")
	}
	prof, db := debianCorpus(t)
	loads, err := db.Resolve("crc32c_intel")
	require.NoError(t, err)
	m, err := New(prof, Options{Strict: true})
	require.NoError(t, err)
	defer m.Close()
	for _, l := range loads {
		image, err := os.ReadFile(l.Path)
		require.NoError(t, err)
		_, err = m.Insmod(image, "", l.Path)
		require.NoError(t, err, m.Dmesg())
	}

	var alg uint64 // the registered struct crypto_alg, inside the module's shash_alg
	for _, r := range m.Registrations() {
		if r.Kind == "crypto" && r.Name == "crc32c" {
			assert.Equal(t, []string{"crc32c-intel", "priority=200"}, r.IDs)
			alg = r.addr
		}
	}
	require.NotZero(t, alg, "crc32c-intel registered its shash")
	base, ok := m.fieldOffset("shash_alg", "base")
	require.True(t, ok)
	shash := alg - base
	digest, err := m.readField("shash_alg", "digest", shash, 8)
	require.NoError(t, err)
	craInit, err := m.readField("crypto_alg", "cra_init", alg, 8)
	require.NoError(t, err)
	require.NotZero(t, digest)
	require.NotZero(t, craInit)

	// A transform and a descriptor as crypto_alloc_shash and SHASH_DESC_ON_STACK would make them.
	tfm, err := m.kernel.kzalloc(256)
	require.NoError(t, err)
	tfmBase, ok := m.fieldOffset("crypto_shash", "base")
	require.True(t, ok)
	_, err = m.Call(craInit, tfm+tfmBase) // crc32c_cra_init: the key (seed) is ~0
	require.NoError(t, err)
	desc, err := m.kernel.kzalloc(256)
	require.NoError(t, err)
	descTfm, ok := m.fieldOffset("shash_desc", "tfm")
	require.True(t, ok)
	require.NoError(t, m.WriteU64(desc+descTfm, tfm))
	data, err := m.kernel.kzalloc(64)
	require.NoError(t, err)
	require.NoError(t, m.WriteAt([]byte("123456789"), data))
	out := data + 32
	ret, err := m.Call(digest, desc, data, 9, out)
	require.NoError(t, err)
	assert.Zero(t, ret)
	crc, err := m.ReadU32(out)
	require.NoError(t, err)
	assert.Equal(t, uint32(0xe3069283), crc)
}

// Debian's libcrc32c allocates the "crc32c" shash at init (its soft dependency loads the
// providers first) and computes through crypto_shash_update: the transform pins the provider of
// highest priority, crc32c-intel, until libcrc32c frees it.
func TestDebianLibcrc32cThroughTheCryptoAPI(t *testing.T) {
	if testing.Short() {
		t.Skip("loads real Debian modules")
	}
	prof, db := debianCorpus(t)
	loads, err := db.Resolve("libcrc32c")
	require.NoError(t, err)
	m, err := New(prof, Options{Strict: true})
	require.NoError(t, err)
	defer m.Close()
	var names []string
	for _, l := range loads {
		if l.Builtin || slices.Contains(names, l.Name) {
			continue
		}
		image, err := os.ReadFile(l.Path)
		require.NoError(t, err)
		_, err = m.Insmod(image, "", l.Path)
		require.NoError(t, err, m.Dmesg())
		names = append(names, l.Name)
	}
	require.Contains(t, names, "crc32c_intel", "the soft dependency on crc32c loads its providers")
	require.Equal(t, "libcrc32c", names[len(names)-1])

	var crc32c uint64
	for _, mod := range m.registry.Modules() {
		if mod.Name == "libcrc32c" {
			sym, ok := mod.Lookup("crc32c")
			require.True(t, ok)
			crc32c = sym.Addr
		}
	}
	require.NotZero(t, crc32c)
	data, err := m.kernel.kzalloc(64)
	require.NoError(t, err)
	require.NoError(t, m.WriteAt([]byte("123456789"), data))
	got, err := m.Call(crc32c, 0xffffffff, data, 9)
	require.NoError(t, err)
	assert.Equal(t, uint32(0xe3069283), ^uint32(got), "CRC-32C check value")

	assert.Error(t, m.Rmmod("crc32c_intel", false), "libcrc32c's transform holds its provider")
	require.NoError(t, m.Rmmod("libcrc32c", false))
	assert.NoError(t, m.Rmmod("crc32c_intel", false), "crypto_free_shash let it go")
	assert.Empty(t, m.Unimplemented())
}

// Debian's watchdog core creates its kthread worker "watchdogd" at init (kthread_create_worker, then
// sched_set_fifo on its task) and destroys it at exit.
func TestDebianWatchdogWorker(t *testing.T) {
	if testing.Short() {
		t.Skip("loads a real Debian module")
	}
	prof, db := debianCorpus(t)
	loads, err := db.Resolve("watchdog")
	require.NoError(t, err)
	m, err := New(prof, Options{Strict: true})
	require.NoError(t, err)
	defer m.Close()
	for _, l := range loads {
		if l.Builtin {
			continue
		}
		image, err := os.ReadFile(l.Path)
		require.NoError(t, err)
		_, err = m.Insmod(image, "", l.Path)
		require.NoError(t, err, m.Dmesg())
	}
	assert.Equal(t, []Thread{{PID: 1002, Comm: "watchdogd", State: "S", Module: "watchdog", Func: "kthread_worker_fn+0x0"}},
		m.Threads())
	require.NoError(t, m.Rmmod("watchdog", false), m.Dmesg())
	assert.Empty(t, m.Threads(), "exit destroyed the worker")
	assert.Empty(t, m.Unimplemented(), m.Summary())
}
