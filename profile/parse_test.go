package profile

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseSymvers(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    []Export
		wantErr string
	}{
		{
			name: "five columns, namespace empty and set",
			in: "0x92997ed8\t_printk\tvmlinux\tEXPORT_SYMBOL\t\n" +
				"0xeade228f\tdma_buf_export\tvmlinux\tEXPORT_SYMBOL_GPL\tDMA_BUF\n" +
				"0x74a3cb0d\tusb_register_driver\tdrivers/usb/core/usbcore\tEXPORT_SYMBOL_GPL\t\n",
			want: []Export{
				{Name: "_printk", CRC: 0x92997ed8, HasCRC: true, Module: "vmlinux"},
				{Name: "dma_buf_export", CRC: 0xeade228f, HasCRC: true, Module: "vmlinux", GPLOnly: true, Namespace: "DMA_BUF"},
				{Name: "usb_register_driver", CRC: 0x74a3cb0d, HasCRC: true, Module: "drivers/usb/core/usbcore", GPLOnly: true},
			},
		},
		{
			name: "four columns (kernels before namespaces), blank lines skipped",
			in:   "\n0x00000000\tfoo\tvmlinux\tEXPORT_SYMBOL\n\n",
			want: []Export{{Name: "foo", HasCRC: true, Module: "vmlinux"}},
		},
		{name: "empty file", in: "", want: nil},
		{name: "three columns", in: "0x1\tfoo\tvmlinux\n", wantErr: "line 1: 3 tab-separated columns"},
		{name: "spaces are not tabs", in: "0x1 foo vmlinux EXPORT_SYMBOL\n", wantErr: "1 tab-separated columns"},
		{name: "crc without 0x", in: "12345678\tfoo\tvmlinux\tEXPORT_SYMBOL\t\n", wantErr: "bad CRC"},
		{name: "crc too wide", in: "0x123456789\tfoo\tvmlinux\tEXPORT_SYMBOL\t\n", wantErr: "bad CRC"},
		{name: "unknown export type", in: "0x1\tfoo\tvmlinux\tEXPORT_SYMBOL_GPL_FUTURE\t\n", wantErr: "unknown export type"},
		{name: "empty name", in: "0x1\t\tvmlinux\tEXPORT_SYMBOL\t\n", wantErr: "empty symbol name"},
		{name: "error names the line", in: "0x1\tfoo\tvmlinux\tEXPORT_SYMBOL\t\nbad\n", wantErr: "Module.symvers line 2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseSymvers(strings.NewReader(tt.in))
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestParseSystemMap(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    []Symbol
		wantErr string
	}{
		{
			name: "file order kept, per-cpu and absolute symbols too",
			in: "0000000000000000 D __per_cpu_start\n00000000000001ea A kexec_control_code_size\n" +
				"ffffffff81a07e3d T _printk\nffffffff8242e200 D kmalloc_caches\n",
			want: []Symbol{
				{Addr: 0, Type: 'D', Name: "__per_cpu_start"},
				{Addr: 0x1ea, Type: 'A', Name: "kexec_control_code_size"},
				{Addr: 0xffffffff81a07e3d, Type: 'T', Name: "_printk"},
				{Addr: 0xffffffff8242e200, Type: 'D', Name: "kmalloc_caches"},
			},
		},
		{name: "Debian's placeholder line", in: "ffffffffffffffff B The real System.map is in the linux-image-<version>-dbg package\n", wantErr: "want \"address type name\""},
		{name: "bad address", in: "ffffffffg1000000 T x\n", wantErr: "bad address"},
		{name: "two-letter type", in: "ffffffff81000000 TT x\n", wantErr: "line 1"},
		{name: "missing name", in: "ffffffff81000000 T\n", wantErr: "line 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseSystemMap(strings.NewReader(tt.in))
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestParseConfig(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    map[string]string
		wantErr string
	}{
		{
			name: "set options kept as written, unset and comments dropped",
			in: "#\n# Automatically generated file; DO NOT EDIT.\n#\nCONFIG_SMP=y\nCONFIG_KVM=m\n" +
				"# CONFIG_PREEMPT is not set\nCONFIG_NR_CPUS=8192\nCONFIG_MODULE_SIG_HASH=\"sha256\"\nCONFIG_LOCALVERSION=\"\"\n",
			want: map[string]string{
				"CONFIG_SMP": "y", "CONFIG_KVM": "m", "CONFIG_NR_CPUS": "8192",
				"CONFIG_MODULE_SIG_HASH": `"sha256"`, "CONFIG_LOCALVERSION": `""`,
			},
		},
		{name: "not CONFIG_", in: "FOO=y\n", wantErr: "config line 1"},
		{name: "no value", in: "CONFIG_SMP\n", wantErr: "want CONFIG_NAME=value"},
		{name: "empty name", in: "CONFIG_=y\n", wantErr: "want CONFIG_NAME=value"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseConfig(strings.NewReader(tt.in))
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestConfigValue(t *testing.T) {
	p := New(&Profile{Config: map[string]string{"CONFIG_MODULE_SIG_HASH": `"sha256"`, "CONFIG_HZ": "250", "CONFIG_KVM": "m"}})
	tests := []struct {
		name   string
		want   string
		wantOK bool
		isSet  bool
	}{
		{"CONFIG_MODULE_SIG_HASH", "sha256", true, false},
		{"HZ", "250", true, false},
		{"CONFIG_KVM", "m", true, true},
		{"CONFIG_PREEMPT_RT", "", false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := p.ConfigValue(tt.name)
			assert.Equal(t, tt.wantOK, ok)
			assert.Equal(t, tt.want, got)
			assert.Equal(t, tt.isSet, p.ConfigBool(tt.name))
		})
	}
}

func TestVermagic(t *testing.T) {
	cfg := func(opts ...string) map[string]string {
		m := map[string]string{}
		for _, o := range opts {
			m["CONFIG_"+o] = "y"
		}
		return m
	}
	tests := []struct {
		name       string
		config     map[string]string
		randstruct string
		want       string
	}{
		{"Debian amd64", cfg("SMP", "PREEMPT_BUILD", "PREEMPT_DYNAMIC", "MODULE_UNLOAD", "MODVERSIONS"), "",
			"6.1.0-56-amd64 SMP preempt mod_unload modversions "},
		{"Debian rt", cfg("SMP", "PREEMPT_RT", "MODULE_UNLOAD", "MODVERSIONS"), "",
			"6.1.0-56-amd64 SMP preempt_rt mod_unload modversions "},
		{"voluntary preemption, no modversions", cfg("SMP", "MODULE_UNLOAD"), "", "6.1.0-56-amd64 SMP mod_unload "},
		{"uniprocessor minimal", cfg(), "", "6.1.0-56-amd64 "},
		{"module option only", map[string]string{"CONFIG_SMP": "m"}, "", "6.1.0-56-amd64 "},
		{"randstruct with its hash", cfg("SMP", "RANDSTRUCT"), "0123abcd", "6.1.0-56-amd64 SMP RANDSTRUCT_0123abcd"},
		{"randstruct hash ignored without the option", cfg("SMP"), "0123abcd", "6.1.0-56-amd64 SMP "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, Vermagic("6.1.0-56-amd64", tt.config, tt.randstruct))
		})
	}
}

func TestParseBanner(t *testing.T) {
	const debian = "Linux version 6.1.0-56-amd64 (debian-kernel@lists.debian.org) (gcc-12 (Debian 12.2.0-14+deb12u1) 12.2.0, GNU ld (GNU Binutils for Debian) 2.40) "
	tests := []struct {
		name        string
		data        string
		wantRelease string
		wantVersion string
		wantOK      bool
	}{
		{"nested parentheses", "\x00" + debian + "#1 SMP PREEMPT_DYNAMIC Debian 6.1.192-2 (2026-11-16)\n\x00",
			"6.1.0-56-amd64", "#1 SMP PREEMPT_DYNAMIC Debian 6.1.192-2 (2026-11-16)", true},
		{"the numbered banner wins over the pre-link one", debian + "# SMP PREEMPT_DYNAMIC x\n\x00" + debian + "#1 SMP PREEMPT_DYNAMIC x\n",
			"6.1.0-56-amd64", "#1 SMP PREEMPT_DYNAMIC x", true},
		{"simple", "Linux version 6.9.0 (me@host) (gcc 13) #7 SMP\n", "6.9.0", "#7 SMP", true},
		{"printk format string is not a banner", "Linux version %s (%s)\n", "", "", false},
		{"unbalanced", "Linux version 6.1 (a (b) #1\n", "", "", false},
		{"no banner", "nothing here", "", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rel, ver, ok := parseBanner([]byte(tt.data))
			assert.Equal(t, tt.wantOK, ok)
			assert.Equal(t, tt.wantRelease, rel)
			assert.Equal(t, tt.wantVersion, ver)
		})
	}
}
