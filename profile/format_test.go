package profile

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/klauspost/compress/zstd"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"kemu"
)

// sample is a small profile with every kind of content, including awkward values: duplicate
// addresses, per-CPU zero addresses, empty namespaces and modules sharing names.
func sample() *Profile {
	return New(&Profile{
		Release:  "6.1.0-56-amd64",
		Version:  "#1 SMP PREEMPT_DYNAMIC Debian 6.1.192-2 (2026-11-16)",
		Vermagic: "6.1.0-56-amd64 SMP preempt mod_unload modversions ",
		Config:   map[string]string{"CONFIG_SMP": "y", "CONFIG_HZ": "250", "CONFIG_MODULE_SIG_HASH": `"sha256"`},
		Symbols: []Symbol{
			{Addr: 0xffffffff81a07e3d, Type: 'T', Name: "_printk"},
			{Addr: 0, Type: 'D', Name: "fixed_percpu_data"},
			{Addr: 0, Type: 'D', Name: "__per_cpu_start"},
			{Addr: 0x1ea, Type: 'A', Name: "kexec_control_code_size"},
			{Addr: 0xffffffff81000000, Type: 'T', Name: "_text"},
			{Addr: 0xffffffff81000000, Type: 'T', Name: "startup_64"},
			{Addr: 0xffffffffffffffff, Type: 'B', Name: "last"},
		},
		Exports: []Export{
			{Name: "usb_register_driver", CRC: 0x74a3cb0d, HasCRC: true, Module: "drivers/usb/core/usbcore", GPLOnly: true},
			{Name: "_printk", CRC: 0x92997ed8, HasCRC: true, Module: "vmlinux"},
			{Name: "dma_buf_export", CRC: 0xeade228f, HasCRC: true, Module: "vmlinux", GPLOnly: true, Namespace: "DMA_BUF"},
			{Name: "no_crc", Module: "vmlinux"},
		},
		BTF: []byte{0x9f, 0xeb, 1, 0, 24, 0, 0, 0},
	})
}

func encode(t *testing.T, p *Profile) []byte {
	t.Helper()
	var buf bytes.Buffer
	require.NoError(t, Write(&buf, p))
	return buf.Bytes()
}

// assertSameProfile compares everything a Profile carries (the unexported indexes are derived).
func assertSameProfile(t *testing.T, want, got *Profile) {
	t.Helper()
	assert.Equal(t, want.Release, got.Release)
	assert.Equal(t, want.Version, got.Version)
	assert.Equal(t, want.Vermagic, got.Vermagic)
	assert.Equal(t, want.Config, got.Config)
	assert.Equal(t, want.Symbols, got.Symbols)
	assert.Equal(t, want.Exports, got.Exports)
	assert.Equal(t, want.BTF, got.BTF)
	assert.True(t, want.Equal(got))
}

func TestWriteReadRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		p    *Profile
	}{
		{"full", sample()},
		{"empty", New(&Profile{Config: map[string]string{}})},
		{"no BTF", func() *Profile { p := sample(); p.BTF = nil; return New(p) }()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data := encode(t, tt.p)
			got, err := Read(bytes.NewReader(data))
			require.NoError(t, err)
			assertSameProfile(t, tt.p, got)
			assert.Equal(t, data, encode(t, got), "re-encoding a decoded profile gives the same bytes")
			if len(tt.p.Symbols) > 0 {
				s, ok := got.Lookup("_printk")
				require.True(t, ok, "decoded profiles are indexed")
				assert.Equal(t, uint64(0xffffffff81a07e3d), s.Addr)
			}
		})
	}
}

func TestReadRejectsMalformedInput(t *testing.T) {
	good := encode(t, sample())
	body := func(sections ...[]byte) []byte {
		enc, err := zstd.NewWriter(nil)
		require.NoError(t, err)
		out := append([]byte(Magic), FormatVersion, 0)
		return enc.EncodeAll(bytes.Join(sections, nil), out)
	}
	section := func(tag byte, payload ...byte) []byte {
		return append(binary.AppendUvarint([]byte{tag}, uint64(len(payload))), payload...)
	}
	meta := section(secMeta, 0, 0, 0)
	tests := []struct {
		name    string
		data    []byte
		wantErr string
	}{
		{"empty", nil, "header"},
		{"wrong magic", append([]byte("NOTPROF!"), good[8:]...), "not a kemu profile"},
		{"newer version", append(append([]byte(Magic), 2, 0), good[10:]...), "format version 2"},
		{"truncated body", good[:len(good)/2], "decompress"},
		{"not zstd", append([]byte(Magic), 1, 0, 1, 2, 3, 4, 5, 6, 7, 8), "read profile"},
		{"no meta", body(section(secBTF, 1, 2)), "no meta section"},
		{"duplicate section", body(meta, meta), "appears twice"},
		{"section longer than the body", body(meta, []byte{secBTF, 100, 1}), "exceeds"},
		{"huge symbol count", body(meta, section(secSymbols, 0xff, 0xff, 0xff, 0xff, 0x0f)), "count"},
		{"truncated symbol", body(meta, section(secSymbols, 1, 5, 'T', 9)), "truncated"},
		{"trailing bytes", body(section(secMeta, 0, 0, 0, 9)), "trailing bytes"},
		{"module index out of range", body(meta, section(secExports, 0, 0, 1, 1, 'x', 0, 0, 0, 0, 0, 3, 0)), "index 3 out of range"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Read(bytes.NewReader(tt.data))
			require.ErrorContains(t, err, tt.wantErr)
		})
	}
}

func TestReadSkipsUnknownSections(t *testing.T) {
	enc, err := zstd.NewWriter(nil)
	require.NoError(t, err)
	raw := append([]byte{secMeta, 4, 1, 'x', 0, 0}, 99, 2, 0xaa, 0xbb)
	data := enc.EncodeAll(raw, append([]byte(Magic), FormatVersion, 0))
	p, err := Read(bytes.NewReader(data))
	require.NoError(t, err)
	assert.Equal(t, "x", p.Release)
}

// Every prefix and every single-byte corruption of a valid file is an error or a profile, never a panic.
func TestReadNeverPanics(t *testing.T) {
	good := encode(t, sample())
	for n := 0; n < len(good); n++ {
		assert.NotPanics(t, func() { _, _ = Read(bytes.NewReader(good[:n])) })
	}
	for i := 0; i < len(good); i++ {
		bad := bytes.Clone(good)
		bad[i] ^= 0x5a
		assert.NotPanics(t, func() { _, _ = Read(bytes.NewReader(bad)) })
	}
}

func FuzzRead(f *testing.F) {
	var buf bytes.Buffer
	if err := Write(&buf, sample()); err != nil {
		f.Fatal(err)
	}
	f.Add(buf.Bytes())
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := Read(bytes.NewReader(data))
		if err == nil {
			_, _ = p.Struct("module")
			var out bytes.Buffer
			require.NoError(t, Write(&out, p))
		}
	})
}

func TestProfileEqual(t *testing.T) {
	tests := []struct {
		name   string
		change func(p *Profile)
	}{
		{"release", func(p *Profile) { p.Release = "6.1.0-55-amd64" }},
		{"version", func(p *Profile) { p.Version = "" }},
		{"vermagic", func(p *Profile) { p.Vermagic += "x" }},
		{"config value", func(p *Profile) { p.Config["CONFIG_HZ"] = "1000" }},
		{"config option", func(p *Profile) { delete(p.Config, "CONFIG_SMP") }},
		{"symbol address", func(p *Profile) { p.Symbols[0].Addr++ }},
		{"symbol type", func(p *Profile) { p.Symbols[1].Type = 'd' }},
		{"export crc", func(p *Profile) { p.Exports[0].CRC ^= 1 }},
		{"export namespace", func(p *Profile) { p.Exports[1].Namespace = "X" }},
		{"btf", func(p *Profile) { p.BTF[0] ^= 1 }},
	}
	assert.True(t, sample().Equal(sample()))
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := sample()
			tt.change(p)
			assert.False(t, sample().Equal(p))
		})
	}
}

// BenchmarkReadDefault measures decoding the embedded 6.1 profile (what Default costs once).
func BenchmarkReadDefault(b *testing.B) {
	data := kemu.DefaultProfile
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := Read(bytes.NewReader(data)); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkFirstStruct measures parsing the 6.1 BTF and the first struct lookup.
func BenchmarkFirstStruct(b *testing.B) {
	p := mustDefault(b)
	for b.Loop() {
		fresh := New(&Profile{BTF: p.BTF})
		if _, err := fresh.Struct("module"); err != nil {
			b.Fatal(err)
		}
	}
}
