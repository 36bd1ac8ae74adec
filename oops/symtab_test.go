package oops

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestReadSymbolTable(t *testing.T) {
	const systemMap = `0000000000000000 A fixed_percpu_data
ffffffff81000000 T _text
ffffffff81000000 T startup_64
ffffffff81000070 T secondary_startup_64
ffffffff810001a0 t verify_cpu
ffffffff81000300 W weak_thing
`
	const kallsyms = `ffffffffc0a00000 t hello_init	[hello]
ffffffffc0a00030 t hello_exit	[hello]
ffffffffc0b00000 t other_fn	[other]
`
	tests := []struct {
		name  string
		in    string
		addr  uint64
		want  string // "name+off/size [mod]", "" for no symbol
		error string
	}{
		{name: "System.map start", in: systemMap, addr: 0xffffffff81000010, want: "startup_64+0x10/0x70"},
		{name: "size runs to the next symbol", in: systemMap, addr: 0xffffffff81000100, want: "secondary_startup_64+0x90/0x130"},
		{name: "absolute and weak-undefined skipped", in: systemMap, addr: 0x10, want: ""},
		{name: "last symbol covers a little", in: systemMap, addr: 0xffffffff810001a8, want: "verify_cpu+0x8"},
		{name: "last symbol does not cover far", in: systemMap, addr: 0xffffffff82000000, want: ""},
		{name: "module symbols keep their module", in: kallsyms, addr: 0xffffffffc0a00004, want: "hello_init+0x4/0x30 [hello]"},
		{name: "a module's last symbol is not sized by the next module", in: kallsyms, addr: 0xffffffffc0a00034, want: "hello_exit+0x4 [hello]"},
		{name: "hidden addresses", in: "0000000000000000 T _text\n0000000000000000 t hello_init [hello]\n", error: "all 2 addresses are zero"},
		{name: "not a symbol table", in: "hello\x00\xff world\n", error: "no symbols found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			table, err := readSymbolTable(strings.NewReader(tt.in))
			if tt.error != "" {
				require.ErrorContains(t, err, tt.error)
				return
			}
			require.NoError(t, err)
			sym, ok := table.lookup(tt.addr)
			got := ""
			if ok {
				got = symbolString(Frame{Symbol: sym.name, Offset: tt.addr - sym.addr, Size: sym.size, Module: sym.module})
			}
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestReadProcModules(t *testing.T) {
	mods, err := readProcModules(strings.NewReader(
		"fault_null 16384 1 - Loading 0xffffffffc0a00000 (OE+)\next4 1007616 1 - Live 0xffffffffc0b00000\n"))
	require.NoError(t, err)
	assert.Equal(t, []loadedModule{
		{name: "fault_null", base: 0xffffffffc0a00000, size: 16384},
		{name: "ext4", base: 0xffffffffc0b00000, size: 1007616},
	}, mods)

	_, err = readProcModules(strings.NewReader("ext4 1007616 1 - Live 0x0000000000000000\n"))
	assert.ErrorContains(t, err, "load address 0")
	_, err = readProcModules(strings.NewReader("garbage\n"))
	assert.ErrorContains(t, err, "no modules")
}
