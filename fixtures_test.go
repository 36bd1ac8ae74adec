package kemu

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"io/fs"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fixtureVermagic is the vermagic of Debian bookworm's 6.1.0-56-amd64, which the fixtures are built against.
const fixtureVermagic = "6.1.0-56-amd64 SMP preempt mod_unload modversions "

// fixture is what a fixture module must contain.
type fixture struct {
	name     string            // module name, and file name without .ko
	license  string            // .modinfo license
	modinfo  map[string]string // further .modinfo keys that must have exactly this (single) value
	exports  map[string]string // exported symbol -> section of its struct kernel_symbol
	imports  []string          // undefined symbols the module must reference
	sections []string          // sections the module must have beyond those every module has
	absentNS bool              // the module must not import any namespace
}

func fixtures() []fixture {
	fs := []fixture{
		{name: "hello", license: "GPL", modinfo: map[string]string{"version": "1.0", "depends": ""},
			sections: []string{"__param"}},
		{name: "chardev", license: "GPL", imports: []string{
			"alloc_chrdev_region", "cdev_init", "cdev_add", "__class_create", "device_create", "misc_register",
			"kmalloc_trace", "kfree", "mutex_lock", "_copy_to_user", "_copy_from_user"}},
		{name: "producer", license: "GPL", exports: map[string]string{
			"producer_add": "__ksymtab", "producer_counter": "__ksymtab",
			"producer_describe": "__ksymtab_gpl", "producer_secret": "__ksymtab_gpl"}},
		{name: "consumer", license: "GPL",
			modinfo: map[string]string{"import_ns": "KEMU_DEMO", "depends": "producer"},
			imports: []string{"producer_add", "producer_describe", "producer_counter", "producer_secret"}},
		{name: "consumer_nons", license: "GPL", modinfo: map[string]string{"depends": "producer"},
			imports: []string{"producer_secret"}, absentNS: true},
		{name: "proprietary", license: "Proprietary", imports: []string{"ktime_get"}},
		{name: "fault_null", license: "GPL"},
		{name: "fault_bug", license: "GPL", sections: []string{"__bug_table"}},
		{name: "fault_warn", license: "GPL", sections: []string{"__bug_table"}},
		{name: "fault_uaf_init", license: "GPL", exports: map[string]string{"fault_uaf_init_call": "__ksymtab_gpl"},
			imports: []string{"mod_timer", "init_timer_key"}, sections: []string{".init.data"}},
		{name: "fault_loop", license: "GPL"},
		{name: "fault_recursion", license: "GPL"},
		{name: "fault_usercopy", license: "GPL", imports: []string{"_copy_from_user"},
			sections: []string{"__ex_table", ".altinstructions"}},
		{name: "fault_enodev", license: "GPL"},
		{name: "timers", license: "GPL", imports: []string{
			"init_timer_key", "mod_timer", "timer_delete_sync", "queue_work_on", "cancel_work_sync"}},
		{name: "procfs", license: "GPL", imports: []string{"proc_create", "single_open", "seq_read", "proc_remove"}},
		{name: "compute", license: "GPL", exports: map[string]string{"compute_crc_loop": "__ksymtab_gpl"}},
		{name: "leaky", license: "GPL", imports: []string{"__kmalloc", "kmalloc_trace", "kstrdup", "kfree"}},
		{name: "kthreads", license: "GPL", imports: []string{"kthread_create_on_node", "wake_up_process",
			"kthread_should_stop", "kthread_stop", "prepare_to_wait_event", "schedule", "__wake_up", "msleep"}},
		{name: "busywait", license: "GPL", imports: []string{"jiffies", "ktime_get", "jiffies_to_msecs"}},
		{name: "kthread_leak", license: "GPL", imports: []string{"kthread_create_on_node", "wake_up_process", "msleep"}},
		{name: "kworker", license: "GPL", imports: []string{"kthread_create_worker", "kthread_queue_work",
			"kthread_queue_delayed_work", "kthread_delayed_work_timer_fn", "kthread_flush_worker",
			"kthread_cancel_delayed_work_sync", "kthread_destroy_worker", "out_of_line_wait_on_bit", "bit_wait",
			"wake_up_bit", "init_wait_var_entry", "__var_waitqueue", "wake_up_var"}},
		{name: "iterdev", license: "GPL", imports: []string{"misc_register", "_copy_to_iter", "_copy_from_iter",
			"iov_iter_revert", "prepare_to_wait_event", "__wake_up"}},
		{name: "kobj", license: "GPL", imports: []string{"kernel_kobj", "kobject_create_and_add", "kobject_put",
			"sysfs_create_group", "sysfs_create_bin_file", "sysfs_create_file_ns", "sysfs_emit"}},
	}
	for i := 0; i <= 9; i++ {
		f := fixture{name: hotName(i), license: "GPL", modinfo: map[string]string{"depends": ""},
			exports: map[string]string{hotName(i) + "_step": "__ksymtab_gpl"}}
		if i < 9 {
			f.modinfo["depends"] = hotName(i + 1)
			f.imports = []string{hotName(i+1) + "_step"}
		}
		if i == 0 {
			f.exports["hot_bench"] = "__ksymtab_gpl"
		}
		fs = append(fs, f)
	}
	return fs
}

func hotName(i int) string { return "hot" + string(rune('0'+i)) }

// readFixture returns the bytes of testdata/modules/<name>.ko from Modules.
func readFixture(t *testing.T, name string) []byte {
	t.Helper()
	data, err := fs.ReadFile(Modules, "testdata/modules/"+name+".ko")
	require.NoError(t, err)
	return data
}

// modinfoOf parses .modinfo: NUL-separated key=value strings, keys may repeat (parm, parmtype).
func modinfoOf(t *testing.T, f *elf.File) map[string][]string {
	t.Helper()
	sec := f.Section(".modinfo")
	require.NotNil(t, sec, ".modinfo")
	data, err := sec.Data()
	require.NoError(t, err)
	info := map[string][]string{}
	for _, entry := range bytes.Split(data, []byte{0}) {
		if len(entry) == 0 {
			continue // padding between entries
		}
		key, value, ok := strings.Cut(string(entry), "=")
		require.True(t, ok, "modinfo entry %q has no '='", entry)
		info[key] = append(info[key], value)
	}
	return info
}

func TestModulesHoldsExactlyTheFixtures(t *testing.T) {
	want := []string{"hello_signed.ko"}
	for _, f := range fixtures() {
		want = append(want, f.name+".ko")
	}
	sort.Strings(want)
	entries, err := fs.ReadDir(Modules, "testdata/modules")
	require.NoError(t, err)
	var got []string
	for _, e := range entries {
		got = append(got, e.Name())
	}
	assert.Equal(t, want, got)
}

func TestFixtureModules(t *testing.T) {
	for _, fx := range fixtures() {
		t.Run(fx.name, func(t *testing.T) {
			f, err := elf.NewFile(bytes.NewReader(readFixture(t, fx.name)))
			require.NoError(t, err)
			assert.Equal(t, elf.ET_REL, f.Type)
			assert.Equal(t, elf.EM_X86_64, f.Machine)
			assert.Equal(t, elf.ELFCLASS64, f.Class)

			this := f.Section(".gnu.linkonce.this_module")
			require.NotNil(t, this, ".gnu.linkonce.this_module")
			assert.NotZero(t, this.Flags&elf.SHF_ALLOC, ".gnu.linkonce.this_module must be SHF_ALLOC")
			assert.NotNil(t, f.Section(".debug_info"), "debug info must be kept")
			for _, name := range fx.sections {
				assert.NotNil(t, f.Section(name), "section %s", name)
			}

			info := modinfoOf(t, f)
			assert.Equal(t, []string{fx.license}, info["license"])
			assert.Equal(t, []string{fixtureVermagic}, info["vermagic"])
			assert.Equal(t, []string{fx.name}, info["name"])
			assert.Equal(t, []string{"kemu fixtures"}, info["author"])
			assert.Len(t, info["description"], 1)
			for key, value := range fx.modinfo {
				assert.Equal(t, []string{value}, info[key], "modinfo %s", key)
			}
			if fx.absentNS {
				assert.Empty(t, info["import_ns"])
			}

			versions := versionsOf(t, f)
			assert.Contains(t, versions, "module_layout")

			syms, err := f.Symbols()
			require.NoError(t, err)
			bySym := map[string]elf.Symbol{}
			for _, s := range syms {
				bySym[s.Name] = s
			}
			for _, name := range fx.imports {
				s, ok := bySym[name]
				if assert.True(t, ok, "symbol %s", name) {
					assert.Equal(t, elf.SHN_UNDEF, s.Section, "%s must be undefined", name)
					assert.Contains(t, versions, name, "%s needs a CRC in __versions", name)
				}
			}
			for name, section := range fx.exports {
				s, ok := bySym["__ksymtab_"+name]
				if assert.True(t, ok, "export %s", name) && assert.Less(t, int(s.Section), len(f.Sections)) {
					assert.Equal(t, section, f.Sections[s.Section].Name, "export %s", name)
				}
			}
		})
	}
}

// versionsOf parses __versions: {u64 crc; char name[56]} records.
func versionsOf(t *testing.T, f *elf.File) map[string]uint64 {
	t.Helper()
	sec := f.Section("__versions")
	require.NotNil(t, sec, "__versions")
	data, err := sec.Data()
	require.NoError(t, err)
	require.Zero(t, len(data)%64, "__versions size %d is not a multiple of 64", len(data))
	crcs := map[string]uint64{}
	for rec := data; len(rec) > 0; rec = rec[64:] {
		name, _, _ := bytes.Cut(rec[8:64], []byte{0})
		crcs[string(name)] = binary.LittleEndian.Uint64(rec[:8])
	}
	return crcs
}

// proprietary.ko is built as if ktime_get were a plain export (testdata/modules/Kbuild); its CRC must still be
// the one in Debian's 6.1.0-56-amd64 Module.symvers ("0xb43f9365\tktime_get\tvmlinux\tEXPORT_SYMBOL_GPL"), or
// the loader would reject it for the wrong reason.
func TestProprietaryKeepsTheRealCRC(t *testing.T) {
	f, err := elf.NewFile(bytes.NewReader(readFixture(t, "proprietary")))
	require.NoError(t, err)
	assert.Equal(t, uint64(0xb43f9365), versionsOf(t, f)["ktime_get"])
}

func TestHelloParameters(t *testing.T) {
	f, err := elf.NewFile(bytes.NewReader(readFixture(t, "hello")))
	require.NoError(t, err)
	info := modinfoOf(t, f)
	assert.ElementsMatch(t, []string{
		"count:int", "limit:uint", "verbose:bool", "whom:charp", "tag:string", "values:array of int",
	}, info["parmtype"])
	var described []string
	for _, parm := range info["parm"] {
		name, desc, _ := strings.Cut(parm, ":")
		assert.NotEmpty(t, desc, "parameter %s has no description", name)
		described = append(described, name)
	}
	assert.ElementsMatch(t, []string{"count", "limit", "verbose", "whom", "tag", "values"}, described)
}

func TestHelloSigned(t *testing.T) {
	const marker = "~Module signature appended~\n"
	hello := readFixture(t, "hello")
	signed := readFixture(t, "hello_signed")
	require.True(t, bytes.HasSuffix(signed, []byte(marker)), "signature marker")
	require.True(t, bytes.HasPrefix(signed, hello), "hello_signed.ko must be hello.ko plus a signature")

	// struct module_signature precedes the marker: algo, hash, id_type, signer_len, key_id_len, pad[3],
	// __be32 sig_len; the PKCS#7 message precedes it and follows hello.ko's bytes exactly.
	trailer := signed[len(signed)-len(marker)-12 : len(signed)-len(marker)]
	assert.Equal(t, []byte{0, 0, 2, 0, 0, 0, 0, 0}, trailer[:8], "PKCS#7 signature header")
	sigLen := binary.BigEndian.Uint32(trailer[8:])
	assert.Equal(t, len(hello)+int(sigLen)+12+len(marker), len(signed))
	pkcs7 := signed[len(hello) : len(hello)+int(sigLen)]
	require.NotEmpty(t, pkcs7)
	assert.Equal(t, byte(0x30), pkcs7[0], "PKCS#7 message must be a DER SEQUENCE")

	_, err := elf.NewFile(bytes.NewReader(signed))
	assert.NoError(t, err, "the signed file is still a readable ELF object")
}

// The hot chain's modules must each span several text pages, or placement benchmarks measure nothing.
func TestHotModulesSpanPages(t *testing.T) {
	for i := 0; i <= 9; i++ {
		name := hotName(i)
		f, err := elf.NewFile(bytes.NewReader(readFixture(t, name)))
		require.NoError(t, err)
		var pageAligned []string
		for _, s := range f.Sections {
			if s.Flags&elf.SHF_EXECINSTR != 0 && !strings.HasPrefix(s.Name, ".init") && s.Addralign >= 4096 {
				pageAligned = append(pageAligned, s.Name)
			}
		}
		assert.Len(t, pageAligned, 3, "%s: page-aligned text sections %v", name, pageAligned)
	}
}
