package loader

import (
	"crypto/x509"
	"fmt"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"kemu/mmu"
	"kemu/modsign"
)

// loadLive loads a fixture and completes its init as the machine would on success.
func loadLive(t *testing.T, k *Kernel, name string) *Module {
	t.Helper()
	m, err := k.Load(fixture(t, name), LoadOptions{})
	require.NoError(t, err)
	require.NoError(t, k.MarkLive(m, 0))
	return m
}

func TestFixtures(t *testing.T) {
	cases := []struct {
		name   string
		deps   []string
		errno  syscall.Errno
		msg    string
		taints string
	}{
		{name: "hello", taints: "OE"},
		{name: "chardev", taints: "OE"},
		{name: "producer", taints: "OE"},
		{name: "consumer", deps: []string{"producer"}, taints: "OE"},
		{name: "consumer_nons", deps: []string{"producer"}, errno: syscall.EINVAL,
			msg: "consumer_nons: module uses symbol (producer_secret) from namespace KEMU_DEMO, but does not import it."},
		{name: "consumer", errno: syscall.ENOENT, msg: "consumer: Unknown symbol producer_describe (err -2)"},
		{name: "proprietary", errno: syscall.ENOENT, msg: "proprietary: Unknown symbol ktime_get (err -2)"},
		{name: "compute", taints: "OE"},
		{name: "timers", taints: "OE"},
		{name: "procfs", taints: "OE"},
		{name: "fault_null", taints: "OE"},
		{name: "hot8", deps: []string{"hot9"}, taints: "OE"},
	}
	for _, c := range cases {
		t.Run(strings.Join(append(c.deps, c.name), "+"), func(t *testing.T) {
			var log []string
			k, _ := testKernel(t, &log)
			for _, d := range c.deps {
				loadLive(t, k, d)
			}
			m, err := k.Load(fixture(t, c.name), LoadOptions{})
			if c.errno != 0 {
				require.Error(t, err)
				assert.Equal(t, c.errno, Errno(err))
				assert.Contains(t, err.Error(), c.msg)
				assert.Contains(t, log, c.msg)
				_, found := k.Find(c.name)
				assert.False(t, found)
				return
			}
			require.NoError(t, err, "log %q", log)
			assert.Equal(t, c.name, m.Name)
			assert.Equal(t, Coming, m.State)
			assert.Equal(t, c.taints, m.Taints.String())
			assert.NotZero(t, m.InitFunc, "init_module found through .rela.gnu.linkonce.this_module")
			assert.True(t, m.Core.Contains(m.ThisModule))
			// Every range is page aligned, covers its region exactly once and text is never writable.
			for _, r := range []Region{m.Core, m.Init} {
				next := r.Addr
				for _, rg := range r.Ranges {
					assert.Equal(t, next, rg.Addr)
					assert.Zero(t, rg.Addr%PageSize)
					assert.Zero(t, rg.Size%PageSize)
					assert.False(t, rg.Perm&mmu.Write != 0 && rg.Perm&mmu.Exec != 0, "W^X")
					next += rg.Size
				}
				assert.Equal(t, r.Addr+r.Size, next)
				assert.Len(t, r.Bytes, int(r.Size))
			}
			checkLayout(t, m)
			s, ok := m.Lookup("init_module")
			require.True(t, ok)
			assert.Equal(t, m.InitFunc, s.Addr)
			assert.True(t, s.Init)
		})
	}
}

func TestProducerConsumer(t *testing.T) {
	var log []string
	k, _ := testKernel(t, &log)
	prod := loadLive(t, k, "producer")

	byName := map[string]Export{}
	for _, e := range prod.Exports {
		byName[e.Name] = e
	}
	require.Contains(t, byName, "producer_secret")
	assert.Equal(t, "KEMU_DEMO", byName["producer_secret"].Namespace)
	assert.True(t, byName["producer_secret"].GPLOnly)
	assert.True(t, byName["producer_describe"].GPLOnly)
	assert.False(t, byName["producer_add"].GPLOnly)
	assert.True(t, byName["producer_add"].HasCRC)
	add, ok := prod.Lookup("producer_add")
	require.True(t, ok)
	assert.Equal(t, add.Addr, byName["producer_add"].Addr, "PREL32 kernel_symbol value resolves to the function")
	assert.Equal(t, byte('T'), add.Type, "non-GPL exports are upper-case in kallsyms")
	desc, _ := prod.Lookup("producer_describe")
	assert.Equal(t, byte('t'), desc.Type, "GPL-only exports stay lower-case")

	cons, err := k.Load(fixture(t, "consumer"), LoadOptions{})
	require.NoError(t, err)
	assert.Equal(t, []*Module{cons}, prod.UsedBy())
	assert.Equal(t, 1, prod.Refcount())
	assert.Equal(t, 1, cons.Refcount(), "init reference while COMING")
	assert.Contains(t, k.ProcModules(), "consumer "+itoa(cons.Core.Size+cons.Init.Size)+" 1 - Loading 0x")
	assert.Contains(t, k.ProcModules(), " (OE+)\n")
	require.NoError(t, k.MarkLive(cons, 0))
	assert.Equal(t, 0, cons.Refcount())

	// The consumer's relocated call reaches the producer's function.
	assert.Equal(t, "producer "+itoa(prod.Core.Size)+" 1 consumer, Live 0x"+hex16(prod.Core.Addr)+" (OE)\n", prod.ProcModulesLine())
	assert.Equal(t, "Module                  Size  Used by\n"+
		padLsmod("consumer", cons.Core.Size, 0, "")+
		padLsmod("producer", prod.Core.Size, 1, " consumer"), k.Lsmod())

	// delete_module's rules.
	_, err = k.Delete("producer", false)
	assert.Equal(t, syscall.EWOULDBLOCK, Errno(err), "in use by consumer")
	_, err = k.Delete("nosuch", false)
	assert.Equal(t, syscall.ENOENT, Errno(err))
	k.Get(cons)
	_, err = k.Delete("consumer", false)
	assert.Equal(t, syscall.EWOULDBLOCK, Errno(err), "refcount held")
	got, err := k.Delete("consumer", true)
	require.NoError(t, err, "forced")
	assert.NotZero(t, k.Taint()&TaintForcedRmmod)
	assert.Equal(t, Going, got.State)
	k.Remove(got)
	assert.Empty(t, prod.UsedBy())
	assert.Equal(t, 0, prod.Refcount())
	got, err = k.Delete("producer", false)
	require.NoError(t, err)
	k.Remove(got)
	assert.Empty(t, k.Modules())
}

func TestRegistryRules(t *testing.T) {
	var log []string
	k, _ := testKernel(t, &log)
	hello, err := k.Load(fixture(t, "hello"), LoadOptions{})
	require.NoError(t, err)

	_, err = k.Load(fixture(t, "hello"), LoadOptions{})
	assert.Equal(t, syscall.EBUSY, Errno(err), "same name still loading")
	_, err = k.Delete("hello", false)
	assert.Equal(t, syscall.EBUSY, Errno(err), "not live yet")

	require.NoError(t, k.MarkLive(hello, 0))
	assert.True(t, hello.InitFreed)
	_, ok := hello.Lookup("init_module")
	assert.True(t, ok)
	assert.NotContains(t, k.Kallsyms(), "init_module", "init symbols leave kallsyms after init")
	assert.Contains(t, k.Kallsyms(), "\t[hello]\n")

	_, err = k.Load(fixture(t, "hello"), LoadOptions{})
	assert.Equal(t, syscall.EEXIST, Errno(err))

	// Taint messages are printed once per kernel, the taint accumulates.
	assert.Equal(t, 1, count(log, "loading out-of-tree module taints kernel."))
	loadLive(t, k, "chardev")
	assert.Equal(t, 1, count(log, "loading out-of-tree module taints kernel."))
	assert.Equal(t, 1, count(log, "module verification failed"))
	assert.Equal(t, TaintOOTModule|TaintUnsigned, k.Taint())
	assert.Equal(t, "Tainted: G           OE     ", k.Taint().KernelString())

	// A positive return is warned about and accepted.
	odd, err := k.Load(fixture(t, "timers"), LoadOptions{})
	require.NoError(t, err)
	require.NoError(t, k.MarkLive(odd, 3))
	assert.Contains(t, log, "do_init_module: 'timers'->init suspiciously returned 3, it should follow 0/-E convention")
	assert.Contains(t, log, "do_init_module: loading module anyway...")

	// A failing init unwinds everything.
	m, err := k.Load(fixture(t, "fault_enodev"), LoadOptions{})
	require.NoError(t, err)
	err = k.FailInit(m, -int(syscall.ENODEV))
	assert.Equal(t, syscall.ENODEV, Errno(err))
	_, found := k.Find("fault_enodev")
	assert.False(t, found)
}

func TestForceFlags(t *testing.T) {
	var log []string
	k, _ := testKernel(t, &log)
	e := editFixture(t, "hello")
	e.replace(".modinfo", "SMP", "XMP")
	_, err := k.Load(e.b, LoadOptions{})
	require.Error(t, err)
	m, err := k.Load(e.b, LoadOptions{Flags: IgnoreVermagic})
	require.NoError(t, err)
	assert.Equal(t, "FOE", m.Taints.String())
	assert.Contains(t, log, "hello: bad vermagic: kernel tainted.")
	k.FailInit(m, -1)

	log = nil
	k, _ = testKernel(t, &log)
	m, err = k.Load(fixture(t, "hello"), LoadOptions{Flags: IgnoreModversions})
	require.NoError(t, err)
	assert.Nil(t, m.Versions)
	assert.Equal(t, "FOE", m.Taints.String())
	assert.Contains(t, log, "hello: module_layout: kernel tainted.")
}

func TestSignatures(t *testing.T) {
	signed := fixture(t, "hello_signed")
	certs := fixtureCerts(t)
	cases := []struct {
		name    string
		enforce bool
		certs   []*x509.Certificate
		file    []byte
		errno   syscall.Errno
		taints  string
	}{
		{"signed, trusted key", true, certs, signed, 0, "O"},
		{"signed, unknown key, not enforced", false, nil, signed, 0, "OE"},
		{"signed, unknown key, enforced", true, nil, signed, syscall.EKEYREJECTED, ""},
		{"unsigned, enforced", true, certs, fixture(t, "hello"), syscall.EKEYREJECTED, ""},
		{"signature corrupted", false, certs, corruptSig(signed), syscall.EKEYREJECTED, ""},
	}
	// A forced load counts as mangled: the signature is not looked at (and stays appended).
	t.Run("forced load of a signed module", func(t *testing.T) {
		k, _ := testKernel(t, nil)
		k.cfg.Certs = certs
		m, err := k.Load(signed, LoadOptions{Flags: IgnoreVermagic})
		require.NoError(t, err)
		assert.False(t, m.SigOK)
		assert.Equal(t, "FOE", m.Taints.String())
	})
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var log []string
			k, _ := testKernel(t, &log)
			k.cfg.SigEnforce, k.cfg.Certs = c.enforce, c.certs
			m, err := k.Load(c.file, LoadOptions{})
			if c.errno != 0 {
				assert.Equal(t, c.errno, Errno(err), "%v", err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, c.taints, m.Taints.String())
			assert.Equal(t, c.certs != nil, m.SigOK)
		})
	}
}

// corruptSig flips a byte of the signature's payload so the digest no longer matches.
func corruptSig(b []byte) []byte {
	out := append([]byte(nil), b...)
	out[100] ^= 0xff
	return out
}

func fixtureCerts(t *testing.T) []*x509.Certificate {
	certs, err := modsign.LoadCerts(filepath.Join("..", "testdata", "keys", "kemu-test-signing-cert.der"))
	require.NoError(t, err)
	return certs
}

func count(log []string, sub string) int {
	n := 0
	for _, l := range log {
		if strings.Contains(l, sub) {
			n++
		}
	}
	return n
}

func itoa(v uint64) string  { return fmt.Sprint(v) }
func hex16(v uint64) string { return fmt.Sprintf("%016x", v) }
func padLsmod(name string, size uint64, used int, holders string) string {
	return fmt.Sprintf("%-19s %8d  %d%s\n", name, size, used, holders)
}

func TestDuplicateExport(t *testing.T) {
	var log []string
	k, _ := testKernel(t, &log)
	loadLive(t, k, "producer")
	// A second module exporting producer's symbols under another name.
	e := editFixture(t, "producer")
	e.replace(".modinfo", "name=producer", "name=producex")
	e.replace(".gnu.linkonce.this_module", "producer\x00", "producex\x00")
	_, err := k.Load(e.b, LoadOptions{})
	require.Error(t, err)
	assert.Equal(t, syscall.ENOEXEC, Errno(err))
	assert.Contains(t, err.Error(), "producex: exports duplicate symbol producer_add (owned by producer)")
	_, found := k.Find("producex")
	assert.False(t, found)

	// Exporting a vmlinux symbol is a duplicate too.
	e = editFixture(t, "producer")
	e.replace("__ksymtab_strings", "producer_add\x00", "kfree\x00\x00\x00\x00\x00\x00\x00\x00")
	e.replace(".modinfo", "name=producer", "name=producey")
	e.replace(".gnu.linkonce.this_module", "producer\x00", "producey\x00")
	_, err = k.Load(e.b, LoadOptions{})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "producey: exports duplicate symbol kfree (owned by kernel)")
}

func TestProprietaryTaint(t *testing.T) {
	var log []string
	k, _ := testKernel(t, &log)
	e := editFixture(t, "producer")
	e.replace(".modinfo", "license=GPL", "license=BSD")
	prod, err := k.Load(e.b, LoadOptions{})
	require.NoError(t, err)
	require.NoError(t, k.MarkLive(prod, 0))
	assert.Equal(t, "POE", prod.Taints.String())
	assert.Contains(t, log, "producer: module license 'BSD' taints kernel.")
	assert.Equal(t, "Tainted: P           OE     ", k.Taint().KernelString())
	// A module that uses GPL-only symbols may not use a proprietary module's exports.
	_, err = k.Load(fixture(t, "consumer"), LoadOptions{})
	require.Error(t, err)
	assert.Equal(t, syscall.ENOENT, Errno(err))
	assert.Contains(t, strings.Join(log, "\n"), "consumer: module using GPL-only symbols uses symbols")
	assert.Contains(t, strings.Join(log, "\n"), "from proprietary module producer.")
}

// checkLayout verifies layout_sections' invariants on a loaded module: every section lies inside the
// range of its class in its region, and sections of one class keep their section-header order.
func checkLayout(t testing.TB, m *Module) {
	t.Helper()
	lastIndex := map[string]int{}
	for _, s := range m.Sections {
		class := "data"
		switch {
		case s.Flags&shfExecinstr != 0:
			class = "text"
		case s.Flags&shfWrite == 0:
			class = "rodata"
		case s.Flags&shfROAfterInit != 0:
			class = "ro_after_init"
		}
		r := m.region(s.Region)
		var rg *Range
		for i := range r.Ranges {
			if s.Addr >= r.Ranges[i].Addr && s.Addr+s.Size <= r.Ranges[i].Addr+r.Ranges[i].Size {
				rg = &r.Ranges[i]
			}
		}
		if s.Size == 0 {
			continue
		}
		if !assert.NotNil(t, rg, "%s: section %s at %#x+%#x is in no range", m.Name, s.Name, s.Addr, s.Size) {
			continue
		}
		assert.Equal(t, class, rg.Class, "%s: section %s", m.Name, s.Name)
		key := s.Region.String() + "/" + class
		assert.Greater(t, s.Index, lastIndex[key], "%s: %s keeps section order", m.Name, s.Name)
		lastIndex[key] = s.Index
	}
}

func TestOwnerStates(t *testing.T) {
	// A COMING owner: the kernel waits for its init, gives up, and the symbol is EBUSY.
	var log []string
	k, _ := testKernel(t, &log)
	prod, err := k.Load(fixture(t, "producer"), LoadOptions{})
	require.NoError(t, err)
	_, err = k.Load(fixture(t, "consumer"), LoadOptions{})
	assert.Equal(t, syscall.EBUSY, Errno(err))
	assert.Contains(t, log, "consumer: gave up waiting for init of module producer.")
	assert.Contains(t, err.Error(), "(err -16)")

	// A GOING owner (being unloaded): ENOENT.
	require.NoError(t, k.MarkLive(prod, 0))
	_, err = k.Delete("producer", false)
	require.NoError(t, err)
	_, err = k.Load(fixture(t, "consumer"), LoadOptions{})
	assert.Equal(t, syscall.ENOENT, Errno(err))
	assert.Empty(t, prod.UsedBy())
	assert.False(t, k.Get(prod), "try_module_get fails on a GOING module")
}

func TestPermanentModule(t *testing.T) {
	var log []string
	k, _ := testKernel(t, &log)
	e := editFixture(t, "hello")
	// Drop the relocation that points struct module's exit at cleanup_module.
	for n := 0; n < 2; n++ {
		r := e.rela(".rela.gnu.linkonce.this_module", n)
		if le.Uint64(r[0:]) > 0x200 { // the exit pointer lies after init's in struct module
			e.put32(r[8:], rX86_64None)
		}
	}
	m, err := k.Load(e.b, LoadOptions{})
	require.NoError(t, err)
	require.NoError(t, k.MarkLive(m, 0))
	assert.Zero(t, m.ExitFunc)
	assert.True(t, m.Permanent())
	assert.Contains(t, m.ProcModulesLine(), " 0 [permanent], Live ")
	_, err = k.Delete("hello", false)
	assert.Equal(t, syscall.EBUSY, Errno(err))
	assert.Zero(t, k.Taint()&TaintForcedRmmod)
	_, err = k.Delete("hello", true)
	require.NoError(t, err)
	assert.NotZero(t, k.Taint()&TaintForcedRmmod, "rmmod -f taints R")
}

func TestKallsyms(t *testing.T) {
	k, _ := testKernel(t, nil)
	prod, err := k.Load(fixture(t, "producer"), LoadOptions{})
	require.NoError(t, err)
	mutex, ok := k.prof.Lookup("mutex_lock")
	require.True(t, ok)
	coming := k.Kallsyms()
	// While COMING: undefined symbols with their resolved address, init symbols, local symbols.
	assert.Contains(t, coming, fmt.Sprintf("%016x U mutex_lock\t[producer]\n", mutex.Addr))
	initFn, _ := prod.Lookup("init_module")
	assert.Contains(t, coming, fmt.Sprintf("%016x t init_module\t[producer]\n", initFn.Addr))
	add, _ := prod.Lookup("producer_add")
	assert.Contains(t, coming, fmt.Sprintf("%016x T producer_add\t[producer]\n", add.Addr), "exported: upper case")
	desc, _ := prod.Lookup("producer_describe")
	assert.Contains(t, coming, fmt.Sprintf("%016x t producer_describe\t[producer]\n", desc.Addr), "GPL-only: lower case")
	counter, _ := prod.Lookup("producer_counter")
	assert.Contains(t, coming, fmt.Sprintf("%016x B producer_counter\t[producer]\n", counter.Addr), "exported .bss object")

	require.NoError(t, k.MarkLive(prod, 0))
	live := k.Kallsyms()
	assert.NotContains(t, live, "init_module")
	assert.NotContains(t, live, " U mutex_lock")
	assert.Contains(t, live, fmt.Sprintf("%016x T producer_add\t[producer]\n", add.Addr))
	assert.Contains(t, live, " d __this_module\t[producer]\n")
	for _, line := range strings.Split(strings.TrimSuffix(live, "\n"), "\n") {
		assert.Regexp(t, `^[0-9a-f]{16} [a-zA-Z?] \S+\t\[producer\]$`, line)
	}
}
