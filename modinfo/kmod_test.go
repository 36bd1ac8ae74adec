package modinfo

import (
	"bytes"
	"compress/gzip"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/binary"
	"fmt"
	"math/big"
	mrand "math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/smallstep/pkcs7"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/ulikunitz/xz"

	"kemu/modsign"

	"kemu/internal/kmodtest"
)

const (
	fixtureDir  = "../testdata/modules"
	fixtureKey  = "../testdata/keys/kemu-test-signing-key.pem"
	fixtureCert = "../testdata/keys/kemu-test-signing-cert.pem"
	signFile    = "/usr/src/linux-kbuild-6.1/scripts/sign-file"
)

// result is what one modinfo run produced.
type result struct {
	stdout, stderr string
	code           int
}

// kmodModinfo finds kmod's modinfo, or skips the test.
func kmodModinfo(t *testing.T) string { return kmodtest.Tool(t, "modinfo") }

// runKmod runs kmod's modinfo in dir with argv[0] "modinfo", as a user typing it would.
func runKmod(t *testing.T, bin, dir string, args []string) result {
	t.Helper()
	o := kmodtest.Run(t, bin, "modinfo", dir, args...)
	return result{o.Stdout, o.Stderr, o.Code}
}

// runKemu runs Main in dir (the caller must not run in parallel: it changes directory).
func runKemu(t *testing.T, dir string, args []string) result {
	t.Helper()
	t.Chdir(dir)
	var out, errb bytes.Buffer
	code := Main(args, &out, &errb)
	return result{out.String(), errb.String(), code}
}

func readFixture(t *testing.T, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(fixtureDir, name))
	if os.IsNotExist(err) {
		t.Skipf("fixture %s not built", name)
	}
	require.NoError(t, err)
	return data
}

// TestMatchesKmodOnFixtures compares kemu's modinfo with kmod's on every fixture module, in
// every output mode.
func TestMatchesKmodOnFixtures(t *testing.T) {
	bin := kmodModinfo(t)
	mods, err := filepath.Glob(filepath.Join(fixtureDir, "*.ko"))
	require.NoError(t, err)
	if len(mods) == 0 {
		t.Skip("no fixture modules built")
	}
	dir, err := filepath.Abs(fixtureDir)
	require.NoError(t, err)
	modes := [][]string{nil, {"-0"}, {"-F", "parm"}, {"-p", "-0"}, {"-F", "name"}, {"-F", "signature"}, {"-n"}, {"-a"}, {"-F", "depends"}}
	for _, mod := range mods {
		for _, mode := range modes {
			args := append(append([]string{}, mode...), filepath.Base(mod))
			t.Run(strings.Join(args, " "), func(t *testing.T) {
				assert.Equal(t, runKmod(t, bin, dir, args), runKemu(t, dir, args))
			})
		}
	}
}

// craftedFiles writes modules that take every branch of kmod's reading and printing into dir.
func craftedFiles(t *testing.T, dir string) {
	t.Helper()
	hello := readFixture(t, "hello.ko")
	signed := readFixture(t, "hello_signed.ko")
	write := func(name string, data []byte) {
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), data, 0o644))
	}
	write("hello.ko", hello)
	write("hello-dash.name.ko", hello)
	write("not-a-module.txt", hello)
	require.NoError(t, os.Mkdir(filepath.Join(dir, "dir.ko"), 0o755))
	require.NoError(t, os.Symlink("hello.ko", filepath.Join(dir, "link.ko")))

	// Compression, recognised by content.
	write("hello.ko.xz", xzBytes(t, hello))
	write("hello.ko.zst", zstdBytes(t, hello))
	write("xz-named-plain.ko", xzBytes(t, hello))
	zst, xzd := zstdBytes(t, signed), xzBytes(t, signed)
	for _, cut := range []int{1, 3, 4, 5, 10, 100, 1000, len(zst) / 2} {
		write(fmt.Sprintf("zst-cut%d.ko", cut), zst[:len(zst)-cut])
	}
	for _, cut := range []int{1, 4, 12, 100} {
		write(fmt.Sprintf("xz-cut%d.ko", cut), xzd[:len(xzd)-cut])
	}
	write("zst-twice.ko", append(append([]byte{}, zst...), zst...))
	write("zst-garbage-after.ko", append(append([]byte{}, zst...), "garbage"...))
	write("zst-zeros-after.ko", append(append([]byte{}, zst...), 0, 0, 0, 0))
	write("xz-twice.ko", append(append([]byte{}, xzd...), xzd...))
	write("xz-padding-after.ko", append(append([]byte{}, xzd...), 0, 0, 0, 0))
	write("xz-garbage-after.ko", append(append([]byte{}, xzd...), "garbage"...))
	write("xz-truncated.ko", xzBytes(t, hello)[:300])
	write("xz-corrupt.ko", corrupt(xzBytes(t, hello), 200))
	write("hello.ko.gz", gzipBytes(t, hello))
	write("gzip-content.ko", gzipBytes(t, hello))
	write("empty.ko", nil)
	write("five.ko", []byte("\x7fELF\x02"))
	write("ident-only.ko", append([]byte("\x7fELF\x02\x01\x01"), make([]byte, 9)...))
	write("header-only.ko", hello[:64])
	write("truncated.ko", hello[:len(hello)/2])

	// ELF layouts built from scratch.
	entries := []string{"license=GPL", "name=crafted", "vermagic=6.1.0 SMP mod_unload "}
	write("plain.ko", buildELF(elfSpec{modinfo: modinfoSection(entries...)}))
	write("elf32.ko", buildELF(elfSpec{class32: true, modinfo: modinfoSection(entries...)}))
	write("bigendian.ko", buildELF(elfSpec{bigEndian: true, modinfo: modinfoSection(entries...)}))
	write("bigendian32.ko", buildELF(elfSpec{class32: true, bigEndian: true, modinfo: modinfoSection(entries...)}))
	write("long-keys.ko", buildELF(elfSpec{modinfo: modinfoSection(
		"a=1", "exactly15chars_=x", "sixteen_chars_ab=y", "a_key_of_twenty_char=z", "nokeyvalue", "empty=", "=novalue", "name=longkeys")}))
	write("params.ko", buildELF(elfSpec{modinfo: modinfoSection(
		"parm=first:the first", "parmtype=first:int", "parmtype=typeonly:bool", "parm=noType:described",
		"parm=nocolon", "parmtype=also-no-colon", "parm=first:overridden", "parm=empty:", "parmtype=empty:charp",
		"parm=:unnamed", "name=params")}))
	write("padding.ko", buildELF(elfSpec{modinfo: append(make([]byte, 7), []byte("license=GPL\x00\x00\x00name=pad\x00\x00")...)}))
	write("unterminated.ko", buildELF(elfSpec{modinfo: []byte("license=GPL\x00name=unterminated")}))
	write("one-byte.ko", buildELF(elfSpec{modinfo: []byte("x")}))
	write("empty-modinfo.ko", buildELF(elfSpec{modinfo: []byte{}}))
	write("no-modinfo.ko", buildELF(elfSpec{modinfoName: ".modinfX", modinfo: modinfoSection(entries...)}))
	write("bad-shentsize.ko", buildELF(elfSpec{shentsize: 60, modinfo: modinfoSection(entries...)}))
	write("shoff-past-end.ko", buildELF(elfSpec{shoffDelta: 1 << 20, modinfo: modinfoSection(entries...)}))
	write("shstrndx-zero.ko", buildELF(elfSpec{shstrndx: ptr(uint16(0)), modinfo: modinfoSection(entries...)}))
	write("shstrndx-past.ko", buildELF(elfSpec{shstrndx: ptr(uint16(9)), modinfo: modinfoSection(entries...)}))
	write("shstrtab-unterminated.ko", buildELF(elfSpec{unterminatedNames: true, modinfo: modinfoSection(entries...)}))
	write("modinfo-out-of-file.ko", buildELF(elfSpec{modinfoOutOfFile: true, modinfo: modinfoSection(entries...)}))
	write("class3.ko", mutate(buildELF(elfSpec{modinfo: modinfoSection(entries...)}), 4, 3))
	write("data3.ko", mutate(buildELF(elfSpec{modinfo: modinfoSection(entries...)}), 5, 3))

	// Signature trailers on the real module.
	pgp := append([]byte("Signer Name"), []byte{0xAA, 0xBB, 0xCC}...)
	pgp = append(pgp, bytes.Repeat([]byte{0x5A}, 45)...)
	write("sig-pgp.ko", withTrailer(hello, pgp, modsign.Trailer{Algo: 1, Hash: 4, IDType: modsign.IDPGP, SignerLen: 11, KeyIDLen: 3, SigLen: 45}))
	write("sig-x509.ko", withTrailer(hello, pgp, modsign.Trailer{Algo: 0, Hash: 8, IDType: modsign.IDX509, SignerLen: 11, KeyIDLen: 3, SigLen: 45}))
	write("sig-nul-signer.ko", withTrailer(hello, append([]byte("ab\x00cd"), 1, 2), modsign.Trailer{IDType: modsign.IDX509, SignerLen: 5, SigLen: 2}))
	write("sig-no-keyid.ko", withTrailer(hello, []byte{1, 2, 3}, modsign.Trailer{IDType: modsign.IDPGP, SigLen: 3}))
	write("sig-bad-algo.ko", withTrailer(hello, pgp, modsign.Trailer{Algo: 2, IDType: modsign.IDPGP, SignerLen: 11, KeyIDLen: 3, SigLen: 45}))
	write("sig-bad-hash.ko", withTrailer(hello, pgp, modsign.Trailer{Hash: 9, IDType: modsign.IDPGP, SigLen: 45}))
	write("sig-bad-idtype.ko", withTrailer(hello, pgp, modsign.Trailer{IDType: 3, SigLen: 45}))
	write("sig-zero-len.ko", withTrailer(hello, nil, modsign.Trailer{IDType: modsign.IDPKCS7}))
	write("sig-too-long.ko", withTrailer(hello, nil, modsign.Trailer{IDType: modsign.IDPKCS7, SigLen: uint32(len(hello) + 1)}))
	write("sig-garbage-pkcs7.ko", withTrailer(hello, []byte("garbage!"), modsign.Trailer{IDType: modsign.IDPKCS7, SigLen: 8}))
	write("marker-only.ko", append(append([]byte{}, hello...), modsign.Marker...))
	ecSig := ecdsaSignature(t, hello)
	write("sig-ecdsa.ko", withTrailer(hello, ecSig, modsign.Trailer{IDType: modsign.IDPKCS7, SigLen: uint32(len(ecSig))}))
	write("sig-ecdsa-tail.ko", withTrailer(hello, append(ecSig, 0, 0), modsign.Trailer{IDType: modsign.IDPKCS7, SigLen: uint32(len(ecSig) + 2)}))
	write("signed.ko.xz", xzBytes(t, signed))
	write("signed.ko.zst", zstdBytes(t, signed))

	// scripts/sign-file itself, by issuer and serial and by subjectKeyIdentifier (-k).
	if _, err := os.Stat(signFile); err == nil {
		for name, flags := range map[string][]string{"signfile.ko": nil, "signfile-keyid.ko": {"-k"}, "signfile-sha512.ko": nil} {
			write(name, hello)
			hash := "sha256"
			if strings.Contains(name, "sha512") {
				hash = "sha512"
			}
			args := append(append([]string{}, flags...), hash, absPath(t, fixtureKey), absPath(t, fixtureCert), filepath.Join(dir, name))
			out, err := exec.Command(signFile, args...).CombinedOutput()
			require.NoError(t, err, "sign-file: %s", out)
		}
	}
}

// TestMatchesKmodOnCraftedFiles compares kemu's modinfo with kmod's on malformed, compressed and
// oddly signed modules, and on command lines with mistakes.
func TestMatchesKmodOnCraftedFiles(t *testing.T) {
	bin := kmodModinfo(t)
	dir := t.TempDir()
	craftedFiles(t, dir)
	names, err := os.ReadDir(dir)
	require.NoError(t, err)

	var cases [][]string
	for _, e := range names {
		cases = append(cases, []string{e.Name()}, []string{"-0", e.Name()}, []string{"-F", "parm", e.Name()})
	}
	cases = append(cases,
		[]string{filepath.Join(dir, "hello.ko")},
		[]string{"./hello.ko"},
		[]string{"../" + filepath.Base(dir) + "/hello.ko"},
		[]string{"missing.ko"},
		[]string{"-n", "missing.ko"},
		[]string{"-F", "filename", "truncated.ko"},
		[]string{"hello"},
		[]string{"-m", "hello"},
		[]string{"-m", "hello.ko"},
		[]string{"hello.ko", "truncated.ko", "missing.ko", "plain.ko"},
		[]string{"hello.ko", "hello.ko"},
		[]string{},
		[]string{"-F"},
		[]string{"--field"},
		[]string{"-q", "hello.ko"},
		[]string{"-0q", "hello.ko"},
		[]string{"--f", "hello.ko"},
		[]string{"--f=x", "hello.ko"},
		[]string{"--foo=bar", "hello.ko"},
		[]string{"--null=1", "hello.ko"},
		[]string{"--fie=name", "hello.ko"},
		[]string{"--field", "license", "hello.ko"},
		[]string{"-Flicense", "hello.ko"},
		[]string{"-0Flicense", "hello.ko"},
		[]string{"hello.ko", "-F", "name"},
		[]string{"--", "-F", "name", "hello.ko"},
		[]string{"-F", "name", "--", "hello.ko"},
		[]string{"-k", "6.1.0", "-b", "/nonexistent", "hello.ko"},
		[]string{"--set-version=6.1.0", "--basedir", "/x", "-F", "name", "hello.ko"},
		[]string{"-a", "-d", "-l", "hello.ko"},
		[]string{"-F", "", "hello.ko", "long-keys.ko"},
		[]string{"-F=", "long-keys.ko"},
		[]string{"--field=", "-0", "long-keys.ko"},
		[]string{"-p", "params.ko"},
		[]string{"-", "hello.ko"},
	)
	for _, args := range cases {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			want, got := runKmod(t, bin, dir, args), runKemu(t, dir, args)
			if want.code < 0 {
				// kmod died on a signal: libkmod asserts a section index (e_shstrndx 0 or past
				// e_shnum) rather than checking it. kemu reports the file as invalid instead.
				assert.Contains(t, want.stderr, "Assertion")
				assert.Equal(t, 1, got.code)
				assert.Contains(t, got.stderr, "modinfo: ERROR: could not get modinfo from")
				assert.Contains(t, got.stderr, ": Invalid argument\n")
				return
			}
			assert.Equal(t, want, got)
		})
	}
}

// TestMatchesKmodOnCorpus compares kemu's modinfo with kmod's on every module of Debian's kernel,
// running both over the same batches of files.
func TestMatchesKmodOnCorpus(t *testing.T) {
	if testing.Short() {
		t.Skip("corpus test skipped under -short")
	}
	bin := kmodModinfo(t)
	mods := corpusModules(t)
	const batch = 400
	var kmodTime, kemuTime time.Duration
	for _, mode := range [][]string{nil, {"-0"}, {"-F", "parm"}} {
		for i := 0; i < len(mods); i += batch {
			args := append(append([]string{}, mode...), mods[i:min(i+batch, len(mods))]...)
			start := time.Now()
			want := runKmod(t, bin, "/", args)
			kmodTime += time.Since(start)
			start = time.Now()
			got := runKemu(t, "/", args)
			kemuTime += time.Since(start)
			at := fmt.Sprintf("%q batch at %s", mode, mods[i])
			if !assert.Equal(t, want.code, got.code, "exit code, %s", at) ||
				!assert.Equal(t, want.stderr, got.stderr, "stderr, %s", at) ||
				!assert.Equal(t, want.stdout, got.stdout, "stdout, %s", at) {
				return
			}
		}
	}
	t.Logf("kemu modinfo == kmod modinfo on %d corpus modules, default, -0 and -F parm (kmod %v, kemu %v)",
		len(mods), kmodTime.Round(time.Millisecond), kemuTime.Round(time.Millisecond))
}

func absPath(t *testing.T, p string) string {
	a, err := filepath.Abs(p)
	require.NoError(t, err)
	return a
}

func ptr[T any](v T) *T { return &v }

func mutate(b []byte, off int, v byte) []byte {
	b[off] = v
	return b
}

func corrupt(b []byte, off int) []byte {
	b = append([]byte{}, b...)
	for i := off; i < off+16 && i < len(b); i++ {
		b[i] ^= 0xA5
	}
	return b
}

func xzBytes(t *testing.T, data []byte) []byte {
	var buf bytes.Buffer
	w, err := xz.NewWriter(&buf)
	require.NoError(t, err)
	_, err = w.Write(data)
	require.NoError(t, err)
	require.NoError(t, w.Close())
	return buf.Bytes()
}

func zstdBytes(t *testing.T, data []byte) []byte {
	enc, err := zstd.NewWriter(nil)
	require.NoError(t, err)
	defer enc.Close()
	return enc.EncodeAll(data, nil)
}

func gzipBytes(t *testing.T, data []byte) []byte {
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	_, err := w.Write(data)
	require.NoError(t, err)
	require.NoError(t, w.Close())
	return buf.Bytes()
}

// withTrailer appends signature bytes, a struct module_signature and the marker.
func withTrailer(mod, sig []byte, tr modsign.Trailer) []byte {
	out := append(append([]byte{}, mod...), sig...)
	out = append(out, tr.Algo, tr.Hash, tr.IDType, tr.SignerLen, tr.KeyIDLen, tr.Pad[0], tr.Pad[1], tr.Pad[2])
	out = binary.BigEndian.AppendUint32(out, tr.SigLen)
	return append(out, modsign.Marker...)
}

// ecdsaSignature signs payload with a fresh P-256 key whose certificate has an issuer without a
// commonName, so kmod shows the last name attribute.
func ecdsaSignature(t *testing.T, payload []byte) []byte {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(0x00FF00),
		Subject:      pkix.Name{Organization: []string{"No CN Org"}, Country: []string{"DE"}},
		NotBefore:    time.Unix(0, 0),
		NotAfter:     time.Unix(1<<32, 0),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	require.NoError(t, err)
	cert, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	sd, err := pkcs7.NewSignedData(payload)
	require.NoError(t, err)
	sd.SetDigestAlgorithm(pkcs7.OIDDigestAlgorithmSHA384)
	require.NoError(t, sd.SignWithoutAttr(cert, key, pkcs7.SignerInfoConfig{}))
	sd.Detach()
	out, err := sd.Finish()
	require.NoError(t, err)
	return out
}

// TestMatchesKmodOnMutants compares kemu's modinfo with kmod's on seeded random corruptions of
// the signed fixture, aimed at the ELF header, the section table and the signature. Where kmod
// itself dies on a signal (its assertions), only kemu's clean failure is checked.
func TestMatchesKmodOnMutants(t *testing.T) {
	if testing.Short() {
		t.Skip("mutant comparison skipped under -short")
	}
	bin := kmodModinfo(t)
	signed := readFixture(t, "hello_signed.ko")
	dir := t.TempDir()
	// KEMU_MUTANTS=count[,seed] searches longer or elsewhere.
	mutants, seed := 400, int64(1)
	if env := os.Getenv("KEMU_MUTANTS"); env != "" {
		_, err := fmt.Sscanf(strings.ReplaceAll(env, ",", " "), "%d %d", &mutants, &seed)
		if err != nil && mutants == 400 {
			t.Fatalf("KEMU_MUTANTS=%q: want count[,seed]", env)
		}
	}
	rng := mrand.New(mrand.NewSource(seed))
	shoff := int(binary.LittleEndian.Uint64(signed[0x28:]))
	zst := zstdBytes(t, signed)
	for i := range mutants {
		if i%4 == 3 {
			// A corrupt or cut zstd stream: libzstd's verdicts on bad and short input.
			m := append([]byte{}, zst...)
			for range 1 + rng.Intn(2) {
				m[rng.Intn(len(m))] = byte(rng.Intn(256))
			}
			if rng.Intn(3) == 0 {
				m = m[:rng.Intn(len(m))]
			}
			compare(t, bin, dir, fmt.Sprintf("mutant%03d.ko", i), m)
			continue
		}
		m := append([]byte{}, signed...)
		for range 1 + rng.Intn(3) {
			var off int
			switch rng.Intn(4) {
			case 0:
				off = rng.Intn(64)
			case 1:
				off = shoff + rng.Intn(len(m)-shoff)
			case 2:
				off = len(m) - 1 - rng.Intn(700) // the signature, its trailer and marker
			default:
				off = rng.Intn(len(m))
			}
			m[off] = byte(rng.Intn(256))
		}
		if rng.Intn(5) == 0 {
			m = m[:rng.Intn(len(m))]
		}
		compare(t, bin, dir, fmt.Sprintf("mutant%03d.ko", i), m)
	}
}

// compare writes a module into dir and checks kemu's modinfo against kmod's on it; where kmod
// dies on a signal, only kemu's clean failure is checked.
func compare(t *testing.T, bin, dir, name string, data []byte) {
	t.Helper()
	require.NoError(t, os.WriteFile(filepath.Join(dir, name), data, 0o644))
	want, got := runKmod(t, bin, dir, []string{name}), runKemu(t, dir, []string{name})
	if want.code < 0 {
		assert.Equal(t, 1, got.code, name)
		return
	}
	assert.Equal(t, want, got, name)
}

// TestMatchesKmodOnSignerNameTags retags the organizationName value in the fixture signature's
// issuer with every universal tag (and a few others): OpenSSL, hence kmod, drops the whole
// signature for tags its name decoder refuses, and so must kemu.
func TestMatchesKmodOnSignerNameTags(t *testing.T) {
	bin := kmodModinfo(t)
	signed := readFixture(t, "hello_signed.ko")
	tr, rest, ok := modsign.ParseTrailer(signed)
	require.True(t, ok)
	sigStart := len(rest) - int(tr.SigLen)
	org := bytes.Index(signed[sigStart:], []byte{0x06, 0x03, 0x55, 0x04, 0x0A}) // OID 2.5.4.10
	require.Positive(t, org, "fixture issuer has an organizationName")
	tagAt := sigStart + org + 5
	dir := t.TempDir()
	for _, tag := range append(seq(0, 32), 0x2C, 0x30, 0x31, 0x80, 0xA0) {
		name := fmt.Sprintf("tag%02x.ko", tag)
		m := append([]byte{}, signed...)
		m[tagAt] = byte(tag)
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), m, 0o644))
		t.Run(name, func(t *testing.T) {
			args := []string{"-F", "signer", name}
			assert.Equal(t, runKmod(t, bin, dir, args), runKemu(t, dir, args))
		})
	}
}

func seq(from, to int) []int {
	var s []int
	for i := from; i < to; i++ {
		s = append(s, i)
	}
	return s
}
