package depmod

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/ulikunitz/xz"

	"kemu/internal/kmodtest"
)

// Differential tests: kmod's depmod and ours run on the same tree must write the same bytes.

const (
	fixtureDir = "../testdata/modules"
	release    = "6.1.0-test"
)

// result is one depmod run.
type result struct {
	stdout, stderr string
	code           int
	files          map[string][]byte // the index files it left in the modules directory
}

func kmodDepmod(t testing.TB) string { return kmodtest.Tool(t, "depmod") }

// takeFiles reads and removes the index files of dir, so the next run starts from the same tree.
func takeFiles(t testing.TB, dir string) map[string][]byte {
	t.Helper()
	files := map[string][]byte{}
	for _, name := range FileNames() {
		data, err := os.ReadFile(filepath.Join(dir, name))
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		require.NoError(t, err)
		files[name] = data
		require.NoError(t, os.Remove(filepath.Join(dir, name)))
	}
	return files
}

func runKmod(t testing.TB, modDir string, args ...string) result {
	t.Helper()
	o := kmodtest.Run(t, kmodDepmod(t), "depmod", "", args...)
	return result{o.Stdout, withoutLibkmodDebug(o.Stderr), o.Code, takeFiles(t, modDir)}
}

// withoutLibkmodDebug drops the lines libkmod itself logs at -vv about its context ("custom logging
// function 0x... registered"): they print pointers, and kemu has no libkmod context to report.
func withoutLibkmodDebug(stderr string) string {
	var kept []string
	for _, line := range strings.SplitAfter(stderr, "\n") {
		if !strings.Contains(line, "libkmod/libkmod.c:") {
			kept = append(kept, line)
		}
	}
	return strings.Join(kept, "")
}

func runKemu(t testing.TB, modDir string, args ...string) result {
	t.Helper()
	var out, errb bytes.Buffer
	code := Main(args, &out, &errb)
	return result{out.String(), errb.String(), code, takeFiles(t, modDir)}
}

// fixture reads a fixture module.
func fixture(t testing.TB, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(fixtureDir, name+".ko"))
	require.NoError(t, err)
	return data
}

func compressXZ(t testing.TB, data []byte) []byte {
	var b bytes.Buffer
	w, err := xz.NewWriter(&b)
	require.NoError(t, err)
	_, err = w.Write(data)
	require.NoError(t, err)
	require.NoError(t, w.Close())
	return b.Bytes()
}

func compressZstd(t testing.TB, data []byte) []byte {
	e, err := zstd.NewWriter(nil)
	require.NoError(t, err)
	defer e.Close()
	return e.EncodeAll(data, nil)
}

// allFixtures lays every fixture out under extra/.
func allFixtures(t testing.TB) map[string][]byte {
	paths, err := filepath.Glob(filepath.Join(fixtureDir, "*.ko"))
	require.NoError(t, err)
	require.NotEmpty(t, paths)
	files := map[string][]byte{}
	for _, p := range paths {
		files["extra/"+filepath.Base(p)] = fixture(t, strings.TrimSuffix(filepath.Base(p), ".ko"))
	}
	return files
}

// makeTree writes files (relative to the modules directory) into base/lib/modules/release.
func makeTree(t testing.TB, files map[string][]byte) (base, modDir string) {
	t.Helper()
	base = t.TempDir()
	modDir = filepath.Join(base, "lib/modules", release)
	require.NoError(t, os.MkdirAll(modDir, 0o755))
	for rel, data := range files {
		p := filepath.Join(modDir, rel)
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		require.NoError(t, os.WriteFile(p, data, 0o644))
	}
	return base, modDir
}

func TestMatchesKmod(t *testing.T) {
	kmodDepmod(t)
	emptyConf := t.TempDir() // -C to a directory without files: no host depmod.d can interfere
	hot := func() map[string][]byte {
		files := map[string][]byte{}
		for _, n := range []string{"hot0", "hot1", "hot2", "hot3", "hot4", "hot5", "hot6", "hot7", "hot8", "hot9", "producer", "consumer", "consumer_nons", "hello"} {
			files["extra/"+n+".ko"] = fixture(t, n)
		}
		return files
	}
	withConfig := func() map[string][]byte {
		f := hot()
		f["updates/producer.ko"] = f["extra/producer.ko"]
		f["kernel/producer.ko"] = f["extra/producer.ko"]
		f["kernel/hot3.ko"] = f["extra/hot3.ko"]
		f["updates/hot3.ko"] = f["extra/hot3.ko"]
		f["kernel/hot4.ko"] = f["extra/hot4.ko"]
		f["weak/hot4.ko"] = f["extra/hot4.ko"]
		f["skipped/hot9.ko"] = f["extra/hot9.ko"]
		f["depmod.d/a.conf"] = []byte("# comment\nsearch extra built-in updates\noverride producer * kernel\n" +
			"override hot3 6\\.1.* kernel\noverride hot4 ^5 weak\nexclude skipped\nbogus line\noverride short\ninclude x\n")
		f["depmod.d/b.conf"] = []byte("search weak\n")
		f["depmod.d/not-conf.txt"] = []byte("search kernel\n")
		return f
	}
	tests := []struct {
		name  string
		files func() map[string][]byte
		args  []string // after -b BASE; RELEASE is appended
	}{
		{"all fixtures", func() map[string][]byte { return allFixtures(t) }, nil},
		{"dry run prints the text files", func() map[string][]byte { return allFixtures(t) }, []string{"-n"}},
		{"modules.order puts listed modules first in its order", func() map[string][]byte {
			f := hot()
			f["modules.order"] = []byte("extra/hot9.ko\nextra/consumer.ko\nextra/missing.ko\nextra/hot0.ko\nextra/producer.ko\n")
			return f
		}, nil},
		{"corrupt modules.order is ignored", func() map[string][]byte {
			f := hot()
			f["modules.order"] = []byte("extra/hot9.ko\nextra/consumer.ko")
			return f
		}, nil},
		{"compressed modules keep their names, modules.order names them .ko", func() map[string][]byte {
			f := hot()
			f["extra/hot3.ko.xz"] = compressXZ(t, f["extra/hot3.ko"])
			f["extra/producer.ko.zst"] = compressZstd(t, f["extra/producer.ko"])
			f["extra/hello.ko.gz"] = f["extra/hello.ko"] // not a module extension for Debian's kmod
			delete(f, "extra/hot3.ko")
			delete(f, "extra/producer.ko")
			delete(f, "extra/hello.ko")
			f["modules.order"] = []byte("extra/producer.ko\nextra/hot3.ko\n")
			return f
		}, nil},
		{"updates/ outranks other directories", func() map[string][]byte {
			f := hot()
			f["updates/producer.ko"] = f["extra/producer.ko"]
			f["kernel/hot5.ko"] = f["extra/hot5.ko"]
			f["build/hot6.ko"] = f["extra/hot6.ko"] // build and source are never searched
			return f
		}, nil},
		{"builtin indexes", func() map[string][]byte {
			f := hot()
			f["modules.builtin"] = []byte("kernel/fs/ext4/ext4.ko\nkernel/drivers/usb/usb-common.ko\n/bad/line.ko\n")
			f["modules.builtin.modinfo"] = []byte("ext4.alias=fs-ext4\x00ext4.license=GPL\x00usb_common.alias=usb:v*p*d*dc[0-9]*\x00usb_common.alias=bad]\x00noalias\x00")
			return f
		}, nil},
		{"odd file names", func() map[string][]byte {
			f := hot()
			f["extra/.hidden.ko"] = f["extra/hello.ko"]
			f["extra/a.b.ko"] = f["extra/hot0.ko"]
			f["extra/x-y.ko.xz"] = []byte("\xfd7zXZ\x00 but not xz data")
			f["extra/z.ko.zst"] = []byte("\x28\xb5\x2f\xfd truncated")
			f["extra/sub/dir/deep-name.ko"] = f["extra/consumer.ko"]
			f["extra/plain.txt"] = []byte("not a module")
			f["modules.order"] = []byte("extra/a.b.ko\nextra/x_y.ko\nextra/x-y.ko\nextra/sub/dir/deep-name.ko\n")
			return f
		}, nil},
		{"not a module", func() map[string][]byte {
			f := hot()
			f["extra/junk.ko"] = []byte("this is not an ELF file")
			f["extra/empty.ko"] = nil
			return f
		}, nil},
		{"unknown symbols with -e -F", func() map[string][]byte {
			f := hot()
			delete(f, "extra/hot5.ko")
			f["System.map"] = []byte("ffffffff81000000 T _stext\nffffffff82000000 r __ksymtab_printk\nbad line\nffffffff82000010 r __ksymtab__printk\n")
			return f
		}, []string{"-e", "-F", "SYSTEM_MAP"}},
		{"depmod.d search order and overrides", withConfig, []string{"-C", "CONFDIR"}},
		{"depmod.d messages at -vv", withConfig, []string{"-v", "-v", "-C", "CONFDIR"}},
		{"depmod.d external directories", func() map[string][]byte {
			f := hot()
			f["../../../ext/hot5.ko"] = f["extra/hot5.ko"]
			f["../../../ext/hot6.ko"] = f["extra/hot6.ko"]
			delete(f, "extra/hot6.ko")
			f["depmod.d/ext.conf"] = []byte("search external updates\nexternal * EXTDIR\nexternal 5.* /nonexistent\nexternal * /missing\n")
			return f
		}, []string{"-C", "CONFDIR"}},
		{"symbol versions with -e -E", func() map[string][]byte {
			f := hot()
			delete(f, "extra/hot8.ko")
			f["Module.symvers"] = []byte("0x12345678\t_printk\tvmlinux\tEXPORT_SYMBOL\n" +
				"0xzz\tbroken\tvmlinux\tEXPORT_SYMBOL\n" +
				"0x00000001\tother\tdrivers/x\tEXPORT_SYMBOL_GPL\n" +
				"0x1 __fentry__ vmlinux EXPORT_SYMBOL\n" +
				"short\tline\n")
			return f
		}, []string{"-e", "-E", "SYMVERS"}},
		{"aliases, soft dependencies and device names", func() map[string][]byte {
			f := hot()
			f["extra/hello.ko"] = patchModinfo(t, f["extra/hello.ko"], "description",
				"alias=devname:kemu", "alias=char-major-10-250", "softdep=pre: hot9")
			f["extra/hello.ko"] = patchModinfo(t, f["extra/hello.ko"], "author", "alias=pci:v*d[0-9]*")
			f["extra/hot9.ko"] = patchModinfo(t, f["extra/hot9.ko"], "description", "alias=a-b]", "alias=dup")
			f["extra/hot5.ko"] = patchModinfo(t, f["extra/hot5.ko"], "description", "alias=dup", "alias=dup")
			f["extra/hot6.ko"] = patchModinfo(t, f["extra/hot6.ko"], "description", "alias=block-major-8-1", "softdep=post: hot5 x")
			f["extra/hot4.ko"] = patchModinfo(t, f["extra/hot4.ko"], "description", "alias=devname:sda")
			return f
		}, []string{"-w"}},
		{"dependency cycle", func() map[string][]byte {
			f := hot()
			// hot8 now exports _printk instead of hot8_step: hot9 and hot8 itself need it, and
			// hot8 needs hot9.
			hot8 := bytes.Replace(f["extra/hot8.ko"], []byte("\x00__crc_hot8_step\x00"), []byte("\x00__crc__printk\x00\x00\x00"), 1)
			require.NotEqual(t, f["extra/hot8.ko"], hot8)
			f["extra/hot8.ko"] = hot8
			return f
		}, nil},
		{"base directory with a trailing slash", func() map[string][]byte { return hot() }, []string{"-b", "BASESLASH"}},
		{"-e without -E or -F", func() map[string][]byte { return hot() }, []string{"-e"}},
		{"named modules only", func() map[string][]byte { return hot() }, []string{"MODULES"}},
		{"verbose", func() map[string][]byte { return hot() }, []string{"-v"}},
		{"bad version", func() map[string][]byte { return hot() }, []string{"BADVERSION"}},
		{"invalid option", func() map[string][]byte { return hot() }, []string{"-x"}},
		{"ambiguous long option", func() map[string][]byte { return hot() }, []string{"--s"}},
		{"abbreviated long option", func() map[string][]byte { return hot() }, []string{"--dry"}},
		{"option without its argument", func() map[string][]byte { return hot() }, []string{"--verbose=2"}},
		{"deprecated options", func() map[string][]byte { return hot() }, []string{"-q", "--map", "-n"}},
		{"prefix of more than one char", func() map[string][]byte { return hot() }, []string{"-P", "ab"}},
		{"version", func() map[string][]byte { return hot() }, []string{"-V"}},
		{"missing directory", func() map[string][]byte { return hot() }, []string{"MISSINGVERSION"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			base, modDir := makeTree(t, tt.files())
			args := []string{"-C", emptyConf, "-b", base}
			ver := release
			var operands []string
			for _, a := range tt.args {
				switch a {
				case "CONFDIR":
					conf := filepath.Join(modDir, "depmod.d")
					for _, name := range []string{"a.conf", "ext.conf"} {
						if data, err := os.ReadFile(filepath.Join(conf, name)); err == nil {
							text := strings.ReplaceAll(string(data), "EXTDIR", filepath.Join(base, "ext"))
							require.NoError(t, os.WriteFile(filepath.Join(conf, name), []byte(text), 0o644))
						}
					}
					args = append(args, conf)
				case "BASESLASH":
					args = append(args, base+"/")
				case "SYMVERS":
					args = append(args, filepath.Join(modDir, "Module.symvers"))
				case "SYSTEM_MAP":
					args = append(args, filepath.Join(modDir, "System.map"))
				case "MODULES":
					operands = append(operands, filepath.Join(modDir, "extra/hot0.ko"), filepath.Join(modDir, "extra/hot1.ko"), filepath.Join(modDir, "extra/hot2.ko"))
				case "BADVERSION":
					ver = "notaversion"
				case "MISSINGVERSION":
					ver = "9.9.9"
				default:
					args = append(args, a)
				}
			}
			args = append(append(args, ver), operands...)
			want := runKmod(t, modDir, args...)
			got := runKemu(t, modDir, args...)
			assert.Equal(t, want.code, got.code, "exit status")
			assert.Equal(t, want.stderr, got.stderr, "stderr")
			assert.Equal(t, want.stdout, got.stdout, "stdout")
			require.Equal(t, keys(want.files), keys(got.files), "files written")
			for name, data := range want.files {
				assert.Equal(t, string(data), string(got.files[name]), name)
			}
		})
	}
}

func keys(m map[string][]byte) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	return sortedStrings(ks)
}

func sortedStrings(s []string) []string {
	out := append([]string(nil), s...)
	slices.Sort(out)
	return out
}

// TestQuick checks -A against kmod: nothing is written while modules.dep is newer than every
// module, everything once a module is newer, and -A -n does nothing at all.
func TestQuick(t *testing.T) {
	kmodDepmod(t)
	runners := map[string]func(args ...string) (stdout string, code int){
		"kmod": func(args ...string) (string, int) {
			out, err := exec.Command(kmodDepmod(t), args...).Output()
			code := 0
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				code = ee.ExitCode()
			}
			return string(out), code
		},
		"kemu": func(args ...string) (string, int) {
			var out, errb bytes.Buffer
			code := Main(args, &out, &errb)
			return out.String(), code
		},
	}
	for name, run := range runners {
		t.Run(name, func(t *testing.T) {
			base, modDir := makeTree(t, map[string][]byte{"extra/producer.ko": fixture(t, "producer"), "extra/consumer.ko": fixture(t, "consumer")})
			args := []string{"-C", t.TempDir(), "-b", base}
			_, code := run(append(args, release)...)
			require.Equal(t, 0, code)
			alias := filepath.Join(modDir, "modules.alias")
			require.NoError(t, os.WriteFile(alias, []byte("marker\n"), 0o644))
			future := time.Now().Add(time.Hour)
			require.NoError(t, os.Chtimes(filepath.Join(modDir, "modules.dep"), future, future))

			out, code := run(append(args, "-A", release)...)
			assert.Equal(t, 0, code)
			assert.Empty(t, out)
			data, _ := os.ReadFile(alias)
			assert.Equal(t, "marker\n", string(data), "up to date: nothing rewritten")

			out, code = run(append(args, "-A", "-n", release)...)
			assert.Equal(t, 0, code)
			assert.Empty(t, out, "-A -n prints nothing")

			later := future.Add(time.Hour)
			require.NoError(t, os.Chtimes(filepath.Join(modDir, "extra/consumer.ko"), later, later))
			_, code = run(append(args, "-A", release)...)
			assert.Equal(t, 0, code)
			data, _ = os.ReadFile(alias)
			assert.Equal(t, "# Aliases extracted from modules themselves.\n", string(data), "a newer module: rewritten")
		})
	}
}

// patchModinfo replaces the .modinfo entry of key in a module with the strings repl, padded with
// NULs to the same length (kmod skips empty strings), so a fixture can carry keys it was not built
// with.
func patchModinfo(t testing.TB, data []byte, key string, repl ...string) []byte {
	t.Helper()
	start := bytes.Index(data, []byte("\x00"+key+"="))
	require.GreaterOrEqual(t, start, 0, "no %s= entry", key)
	start++
	end := start + bytes.IndexByte(data[start:], 0)
	joined := strings.Join(repl, "\x00")
	require.LessOrEqual(t, len(joined), end-start, "replacement longer than %q", data[start:end])
	out := bytes.Clone(data)
	copy(out[start:end], joined+strings.Repeat("\x00", end-start-len(joined)))
	return out
}
