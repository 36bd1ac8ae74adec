package profile

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const (
	testRelease = "6.1.0-56-amd64"
	testSymvers = "0x92997ed8\t_printk\tvmlinux\tEXPORT_SYMBOL\t\n" +
		"0x7a7caba8\tkmalloc_caches\tvmlinux\tEXPORT_SYMBOL\t\n" +
		"0x74a3cb0d\tusb_register_driver\tdrivers/usb/core/usbcore\tEXPORT_SYMBOL_GPL\t\n"
	testSystemMap = "ffffffff81000000 T _text\nffffffff81a07e3d T _printk\nffffffff8242e200 D kmalloc_caches\n"
	testConfig    = "CONFIG_SMP=y\nCONFIG_PREEMPT_BUILD=y\nCONFIG_MODULE_UNLOAD=y\nCONFIG_MODVERSIONS=y\n# CONFIG_PREEMPT_RT is not set\n"
	testBanner    = "Linux version " + testRelease + " (debian-kernel@lists.debian.org) (gcc-12 (Debian 12.2.0-14+deb12u1) 12.2.0) #1 SMP PREEMPT_DYNAMIC Debian 6.1.192-2 (2026-11-16)\n"
)

// writeTree creates files (path -> content) under a new temporary directory.
func writeTree(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		path := filepath.Join(dir, name)
		require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
		require.NoError(t, os.WriteFile(path, []byte(content), 0o644))
	}
	return dir
}

// tinyELF builds a minimal ELF64 file with a .rodata section holding rodata and a .BTF section.
func tinyELF(rodata, btf []byte) []byte {
	shstr := []byte("\x00.rodata\x00.BTF\x00.shstrtab\x00")
	var data bytes.Buffer
	data.Write(make([]byte, 64)) // ELF header, filled in below
	offRodata := data.Len()
	data.Write(rodata)
	offBTF := data.Len()
	data.Write(btf)
	offStr := data.Len()
	data.Write(shstr)
	for data.Len()%8 != 0 {
		data.WriteByte(0)
	}
	shoff := data.Len()
	le := binary.LittleEndian
	section := func(name, typ uint32, flags uint64, off, size int) {
		var sh [64]byte
		le.PutUint32(sh[0:], name)
		le.PutUint32(sh[4:], typ)
		le.PutUint64(sh[8:], flags)
		le.PutUint64(sh[24:], uint64(off))
		le.PutUint64(sh[32:], uint64(size))
		le.PutUint64(sh[48:], 1)
		data.Write(sh[:])
	}
	section(0, 0, 0, 0, 0)
	section(1, 1, 2, offRodata, len(rodata)) // PROGBITS, SHF_ALLOC
	section(9, 1, 0, offBTF, len(btf))
	section(14, 3, 0, offStr, len(shstr)) // STRTAB
	b := data.Bytes()
	copy(b, "\x7fELF\x02\x01\x01")
	le.PutUint16(b[16:], 2)    // ET_EXEC
	le.PutUint16(b[18:], 0x3e) // EM_X86_64
	le.PutUint32(b[20:], 1)
	le.PutUint64(b[40:], uint64(shoff))
	le.PutUint16(b[52:], 64)
	le.PutUint16(b[58:], 64)
	le.PutUint16(b[60:], 4)
	le.PutUint16(b[62:], 3)
	return b
}

func TestLoadDirPlain(t *testing.T) {
	btf := mustDefault(t).BTF
	tests := []struct {
		name        string
		files       map[string]string
		wantVersion string
		wantBTF     bool
	}{
		{"suffixed names, vmlinux ELF", map[string]string{
			"Module.symvers": testSymvers, "System.map-" + testRelease: testSystemMap, "config-" + testRelease: testConfig,
			"vmlinux-" + testRelease: string(tinyELF([]byte("\x00"+testBanner+"\x00"), btf)),
		}, "#1 SMP PREEMPT_DYNAMIC Debian 6.1.192-2 (2026-11-16)", true},
		{"plain names with .config, release from utsrelease.h, raw BTF", map[string]string{
			"Module.symvers": testSymvers, "System.map": testSystemMap, ".config": testConfig,
			"include/generated/utsrelease.h": `#define UTS_RELEASE "` + testRelease + `"` + "\n",
			"vmlinux.btf":                    string(btf),
		}, "", true},
		{"release from the vmlinux banner only, no BTF", map[string]string{
			"Module.symvers": testSymvers, "System.map": testSystemMap, "config": testConfig,
			"vmlinux": string(tinyELF([]byte(testBanner), nil)),
		}, "#1 SMP PREEMPT_DYNAMIC Debian 6.1.192-2 (2026-11-16)", false},
		{"vmlinux that is raw BTF, as /sys/kernel/btf/vmlinux", map[string]string{
			"Module.symvers": testSymvers, "System.map-" + testRelease: testSystemMap, "config": testConfig,
			"vmlinux": string(btf),
		}, "", true},
		{"release from include/config/kernel.release as a last resort", map[string]string{
			"Module.symvers": testSymvers, "System.map": testSystemMap, "config": testConfig,
			"include/config/kernel.release": testRelease + "\n",
		}, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := LoadDir(writeTree(t, tt.files))
			require.NoError(t, err)
			assert.Equal(t, testRelease, p.Release)
			assert.Equal(t, tt.wantVersion, p.Version)
			assert.Equal(t, testRelease+" SMP preempt mod_unload modversions ", p.Vermagic)
			assert.Len(t, p.Symbols, 3)
			assert.Len(t, p.Exports, 3)
			assert.Equal(t, "_printk", p.Exports[0].Name, "exports sorted by name")
			assert.Equal(t, "y", p.Config["CONFIG_SMP"])
			assert.Equal(t, tt.wantBTF, len(p.BTF) > 0)
			if tt.wantBTF {
				s, err := p.Struct("module")
				require.NoError(t, err)
				assert.Equal(t, "module", s.Name)
			}
		})
	}
}

func TestLoadDirDebianTree(t *testing.T) {
	files := map[string]string{
		"boot/config-" + testRelease:                                                     testConfig,
		"boot/System.map-" + testRelease:                                                 "ffffffffffffffff B The real System.map is in the linux-image-<version>-dbg package\n",
		"boot/vmlinux-" + testRelease:                                                    string(tinyELF([]byte(testBanner), nil)),
		"usr/lib/debug/boot/System.map-" + testRelease:                                   testSystemMap,
		"usr/src/linux-headers-" + testRelease + "/Module.symvers":                       testSymvers,
		"usr/src/linux-headers-" + testRelease + "/.config":                              testConfig,
		"usr/src/linux-headers-" + testRelease + "/include/generated/utsrelease.h":       `#define UTS_RELEASE "` + testRelease + "\"\n",
		"usr/src/linux-headers-" + testRelease + "/include/config/kernel.release":        "6.1.192\n", // Debian writes the upstream version here
		"usr/src/linux-headers-" + testRelease + "-common/include/linux/vermagic.h":      "",
		"usr/src/linux-headers-" + testRelease + "/include/generated/randstruct_hash.h":  "", // empty: no RANDSTRUCT
		"lib/modules/" + testRelease + "/kernel/drivers/net/dummy.ko":                    "",
		"usr/src/linux-headers-" + testRelease + "/arch/x86/include/generated/asm/foo.h": "",
	}
	root := writeTree(t, map[string]string{})
	for name, content := range files {
		path := filepath.Join(root, "root", name)
		require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
		require.NoError(t, os.WriteFile(path, []byte(content), 0o644))
	}
	for _, dir := range []string{filepath.Join(root, "root"), root} { // the tree and the cache directory above it
		p, err := LoadDir(dir)
		require.NoError(t, err, dir)
		assert.Equal(t, testRelease, p.Release)
		assert.Len(t, p.Symbols, 3, "the real map from usr/lib/debug, not the placeholder")
		assert.Equal(t, testRelease+" SMP preempt mod_unload modversions ", p.Vermagic)
	}

	require.NoError(t, os.Remove(filepath.Join(root, "root/usr/lib/debug/boot/System.map-"+testRelease)))
	_, err := LoadDir(root)
	assert.ErrorContains(t, err, "no System.map")
	assert.ErrorContains(t, err, "placeholder")
}

func TestLoadDirErrors(t *testing.T) {
	base := map[string]string{
		"Module.symvers": testSymvers, "System.map-" + testRelease: testSystemMap, "config-" + testRelease: testConfig,
	}
	with := func(changes map[string]string) map[string]string {
		m := map[string]string{}
		for k, v := range base {
			m[k] = v
		}
		for k, v := range changes {
			if v == "<delete>" {
				delete(m, k)
			} else {
				m[k] = v
			}
		}
		return m
	}
	tests := []struct {
		name    string
		files   map[string]string
		wantErr []string
	}{
		{"no Module.symvers", with(map[string]string{"Module.symvers": "<delete>"}), []string{"no Module.symvers"}},
		{"no System.map nor config", with(map[string]string{"System.map-" + testRelease: "<delete>", "config-" + testRelease: "<delete>"}),
			[]string{"no System.map[-<release>], no config"}},
		{"release mismatch between names", with(map[string]string{"config-" + testRelease: "<delete>", "config-6.1.0-55-amd64": testConfig}),
			[]string{"inconsistent kernel release", "6.1.0-55-amd64", testRelease}},
		{"release mismatch with utsrelease.h", with(map[string]string{"include/generated/utsrelease.h": `#define UTS_RELEASE "6.2.0"`}),
			[]string{"inconsistent kernel release", "utsrelease.h says 6.2.0"}},
		{"release mismatch with the vmlinux banner", with(map[string]string{"vmlinux": string(tinyELF([]byte("Linux version 6.5.0 (a@b) (gcc) #3 SMP\n"), nil))}),
			[]string{"the banner of vmlinux says 6.5.0"}},
		{"no release anywhere", map[string]string{"Module.symvers": testSymvers, "System.map": testSystemMap, "config": testConfig},
			[]string{"cannot tell the kernel release"}},
		{"two System.map files", with(map[string]string{"System.map-6.1.0-55-amd64": testSystemMap}), []string{"several System.map-<release> files"}},
		{"Module.symvers from another build", with(map[string]string{"Module.symvers": "0x1\tnot_in_map\tvmlinux\tEXPORT_SYMBOL\t\n" + testSymvers}),
			[]string{"from different builds", "1 of 3 vmlinux exports", "not_in_map"}},
		{"malformed System.map names the file", with(map[string]string{"System.map-" + testRelease: "garbage\n"}),
			[]string{"System.map-" + testRelease, "line 1"}},
		{"randstruct without its seed hash", with(map[string]string{"config-" + testRelease: testConfig + "CONFIG_RANDSTRUCT=y\n"}),
			[]string{"CONFIG_RANDSTRUCT", "randstruct_hash.h"}},
		{"vmlinux that is not ELF", with(map[string]string{"vmlinux": "not an elf"}), []string{"vmlinux"}},
		{"vmlinuz that is not a bzImage", with(map[string]string{"vmlinuz": "not a kernel"}), []string{"not a bzImage"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := LoadDir(writeTree(t, tt.files))
			require.Error(t, err)
			for _, want := range tt.wantErr {
				assert.ErrorContains(t, err, want)
			}
		})
	}

	_, err := LoadDir(filepath.Join(t.TempDir(), "missing"))
	assert.ErrorIs(t, err, os.ErrNotExist)
}

func TestLoad(t *testing.T) {
	dir := writeTree(t, map[string]string{
		"Module.symvers": testSymvers, "System.map-" + testRelease: testSystemMap, "config-" + testRelease: testConfig,
	})
	fromDir, err := Load(dir)
	require.NoError(t, err)

	file := filepath.Join(t.TempDir(), "k.kprof")
	var buf bytes.Buffer
	require.NoError(t, Write(&buf, fromDir))
	require.NoError(t, os.WriteFile(file, buf.Bytes(), 0o644))
	fromFile, err := Load(file)
	require.NoError(t, err)
	assertSameProfile(t, fromDir, fromFile)

	_, err = Load(filepath.Join(dir, "System.map-"+testRelease))
	assert.ErrorContains(t, err, "not a kemu profile")
	_, err = Load(filepath.Join(dir, "nope"))
	assert.ErrorIs(t, err, os.ErrNotExist)
}

func FuzzReadVmlinux(f *testing.F) {
	f.Add(tinyELF([]byte(testBanner), []byte{0x9f, 0xeb, 1, 0}))
	f.Add([]byte("\x7fELF\x02\x01\x01"))
	f.Fuzz(func(t *testing.T, image []byte) {
		_, _ = ReadVmlinux(image)
		_, _ = ExtractVmlinux(image)
	})
}

func TestGuardTurnsPanicsIntoErrors(t *testing.T) {
	err := guard("thing", func() error { var m map[string]int; m["x"] = 1; return nil })
	assert.ErrorContains(t, err, "thing: malformed input")
	assert.NoError(t, guard("thing", func() error { return nil }))
}

func TestLoadDirRandstructVermagic(t *testing.T) {
	p, err := LoadDir(writeTree(t, map[string]string{
		"Module.symvers": testSymvers, "System.map-" + testRelease: testSystemMap,
		"config-" + testRelease:               testConfig + "CONFIG_RANDSTRUCT=y\n",
		"include/generated/randstruct_hash.h": "#define RANDSTRUCT_HASHED_SEED \\\n\"\"\n#define RANDSTRUCT_HASHED_SEED \"4a1b2c3d\"\n",
	}))
	require.NoError(t, err)
	assert.Equal(t, testRelease+" SMP preempt mod_unload modversions RANDSTRUCT_4a1b2c3d", p.Vermagic)
}
